"""PNG pictures of scenes, label maps and predictions (pillow).

Tiles are (H, W, 3) uint8 RGB arrays.  A label map becomes a tile through a fixed palette: label 0
(background) black, label ``k + 1`` (digit k) the k-th Tableau-10 colour, 255 (ignore) white.
A float image becomes a gray tile by min-max scaling: ``round(255 (x - min) / (max - min))``
(all 0 for a constant image), so ``[-1, 0, 3]`` gives ``[0, 64, 255]``.

:func:`panel` lays tiles out in a grid, one row per scene, under a band of column titles:
tile (r, c), scaled ``scale`` times, has its top-left corner at
``x = GAP + c (W scale + GAP)``, ``y = TITLE_HEIGHT + r (H scale + GAP)``; the picture is
``GAP + cols (W scale + GAP)`` wide and ``TITLE_HEIGHT + rows (H scale + GAP)`` high.  Optional
parts (:func:`layout` computes where everything goes): a ``title`` above the column titles (one
``LINE``-pixel line of text per line of the title), column titles of several lines (a model's name
and its score: the band grows by ``LINE`` per extra line), and a ``legend`` band below the grid: a
``SWATCH``-pixel square of each colour followed by its name (:data:`CLASS_LEGEND` names the label
colours: background and the ten digits), wrapped to the picture's width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from caffe_import.atomic import atomic_output

PALETTE = np.array([
    (0, 0, 0),         # 0: background
    (31, 119, 180),    # 1: digit 0, blue
    (255, 127, 14),    # 2: digit 1, orange
    (44, 160, 44),     # 3: digit 2, green
    (214, 39, 40),     # 4: digit 3, red
    (148, 103, 189),   # 5: digit 4, purple
    (140, 86, 75),     # 6: digit 5, brown
    (227, 119, 194),   # 7: digit 6, pink
    (127, 127, 127),   # 8: digit 7, gray
    (188, 189, 34),    # 9: digit 8, olive
    (23, 190, 207),    # 10: digit 9, cyan
], np.uint8)
IGNORE_LABEL, IGNORE_COLOR = 255, (255, 255, 255)
GAP, TITLE_HEIGHT = 4, 16
LINE, SWATCH = 12, 10            # a line of text; a legend's colour square
BACKGROUND, TEXT = (255, 255, 255), (0, 0, 0)
CLASS_NAMES = ("background",) + tuple(f"digit {k}" for k in range(10))
CLASS_LEGEND = tuple((tuple(int(v) for v in PALETTE[i]), name) for i, name in enumerate(CLASS_NAMES))


def label_image(labels) -> np.ndarray:
    """The (H, W, 3) uint8 picture of an (H, W) label map: ``PALETTE[label]``, white for 255."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"a label map must be a 2-D integer array, got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    ignored = labels == IGNORE_LABEL
    bad = ~ignored & ((labels < 0) | (labels >= len(PALETTE)))
    if bad.any():
        raise ValueError(f"label map holds {int(labels[bad][0])}; the palette covers "
                         f"0..{len(PALETTE) - 1} and the ignore label {IGNORE_LABEL}")
    rgb = PALETTE[np.where(ignored, 0, labels)]
    rgb[ignored] = IGNORE_COLOR
    return rgb


def gray_image(image) -> np.ndarray:
    """The (H, W, 3) uint8 gray picture of an (H, W) or (1, H, W) float image, min-max scaled."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise ValueError(f"a gray image must be (H, W) or (1, H, W), got shape {np.shape(image)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("a gray image must be finite (it holds nan or inf)")
    span = x.max() - x.min() if x.size else 0.0
    level = np.zeros(x.shape) if span == 0 else (x - x.min()) / span
    return np.repeat(np.rint(255 * level).astype(np.uint8)[..., None], 3, axis=2)


def _tile(x, where: str) -> np.ndarray:
    """An RGB tile from an RGB uint8 array, a float image (gray) or an integer label map."""
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
        return a
    try:
        if np.issubdtype(a.dtype, np.floating):
            return gray_image(a)
        if np.issubdtype(a.dtype, np.integer):
            return label_image(a)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    raise ValueError(f"{where}: a tile is an (H, W, 3) uint8 picture, a float image or an integer "
                     f"label map, got shape {a.shape} dtype {a.dtype}")


def _fit(draw, text: str, font, width: int) -> str:
    """``text``, cut and ending in '..' if it is wider than ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."


@dataclass
class Layout:
    """Where :func:`panel` puts everything (pixels, top-left origin)."""
    width: int
    height: int
    title_lines: list              # [(y, text)] of the picture's title, centred
    titles_top: int                # the band of column titles
    grid_top: int                  # tile (r, c) at (grid_top + r (th + GAP), GAP + c (tw + GAP))
    legend_top: int                # the legend band (== height when there is none)
    swatches: list = field(default_factory=list)   # [(x, y, colour, text)]: square at (x, y), text after


def _text_width(text: str) -> float:
    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=ImageFont.load_default())


def layout(n_rows: int, titles, tile_hw, scale: int = 4, title: str | None = None, legend=()) -> Layout:
    """The geometry of a :func:`panel` picture (module docstring) for ``n_rows`` rows of tiles of
    ``tile_hw`` pixels under ``titles``, with an optional ``title`` and ``legend`` ``[(rgb, name)]``."""
    th, tw = tile_hw[0] * scale, tile_hw[1] * scale
    width = GAP + len(titles) * (tw + GAP)
    heading = [] if not title else str(title).split("\n")
    title_lines = [(GAP + LINE * i, text) for i, text in enumerate(heading)]
    titles_top = GAP + LINE * len(heading) if heading else 0
    lines = max(str(t).count("\n") + 1 for t in titles)
    grid_top = titles_top + TITLE_HEIGHT + LINE * (lines - 1)
    legend_top = grid_top + n_rows * (th + GAP)
    swatches, x, y = [], GAP, legend_top + GAP
    for colour, text in legend:
        need = SWATCH + 4 + _text_width(str(text)) + 3 * GAP
        if x > GAP and x + need > width:
            x, y = GAP, y + LINE + GAP
        swatches.append((x, y, tuple(int(v) for v in colour), str(text)))
        x += int(need)
    height = legend_top + (y + LINE + GAP - legend_top if legend else 0)
    return Layout(width, height, title_lines, titles_top, grid_top, legend_top, swatches)


def panel(rows, titles, path, scale: int = 4, title: str | None = None, legend=()) -> str:
    """Write one PNG: a grid with a row of tiles per scene (e.g. input, ground truth, each model's
    prediction) under the column ``titles`` (a ``\n`` starts a second line: e.g. the model's score);
    every tile scaled ``scale`` times (nearest).  ``title``: text above it all (lines split at
    ``\n``); ``legend``: ``[(rgb, name)]`` drawn as colour squares with their names below the grid
    (:data:`CLASS_LEGEND` for label maps).  The file is written atomically (temporary file, then
    rename).  Returns ``path``; :func:`layout` says where each part went."""
    titles = [str(t) for t in titles]
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if not titles:
        raise ValueError("panel needs at least one column title")
    rows = [list(r) for r in rows]
    if not rows:
        raise ValueError("panel needs at least one row")
    for r, row in enumerate(rows):
        if len(row) != len(titles):
            raise ValueError(f"row {r} has {len(row)} tiles for {len(titles)} titles")
    tiles = [[_tile(x, f"row {r}, column {c}") for c, x in enumerate(row)] for r, row in enumerate(rows)]
    h, w = tiles[0][0].shape[:2]
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            if t.shape[:2] != (h, w):
                raise ValueError(f"row {r}, column {c}: tile is {t.shape[:2]}, the first is {(h, w)}")
    th, tw = h * scale, w * scale
    geo = layout(len(rows), titles, (h, w), scale, title, legend)
    canvas = np.empty((geo.height, geo.width, 3), np.uint8)
    canvas[:] = BACKGROUND
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            y, x = geo.grid_top + r * (th + GAP), GAP + c * (tw + GAP)
            canvas[y:y + th, x:x + tw] = t.repeat(scale, axis=0).repeat(scale, axis=1)
    for x, y, colour, _ in geo.swatches:
        canvas[y:y + SWATCH, x:x + SWATCH] = colour
        canvas[y, x:x + SWATCH] = canvas[y + SWATCH - 1, x:x + SWATCH] = TEXT    # outlined: black
        canvas[y:y + SWATCH, x] = canvas[y:y + SWATCH, x + SWATCH - 1] = TEXT    # shows on white
    picture = Image.fromarray(canvas, "RGB")
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default()

    def centred(text, left_x, width, top_y, height):
        text = _fit(draw, text, font, width)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = left_x + (width - (right - left)) / 2 - left
        draw.text((x, top_y + (height - (bottom - top)) / 2 - top), text, fill=TEXT, font=font)

    for y, text in geo.title_lines:
        centred(text, GAP, geo.width - 2 * GAP, y, LINE)
    for c, column_title in enumerate(titles):
        lines = column_title.split("\n")
        band = TITLE_HEIGHT if len(lines) == 1 else LINE
        for i, text in enumerate(lines):
            centred(text, GAP + c * (tw + GAP), tw, geo.titles_top + GAP * (len(lines) > 1) + i * LINE, band)
    for x, y, _, text in geo.swatches:
        draw.text((x + SWATCH + 4, y + SWATCH / 2), text, fill=TEXT, font=font, anchor="lm")
    _save(picture, path)
    return path


def _save(picture: Image.Image, path) -> None:
    with atomic_output(path) as tmp:
        picture.save(tmp, format="PNG")
