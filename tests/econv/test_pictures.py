"""PNG pictures: palette, gray scaling, the panel's layout read back from the file, bad input."""

import os

import numpy as np
import pytest
from PIL import Image

from econv.pictures import GAP, PALETTE, TITLE_HEIGHT, gray_image, label_image, panel


def test_label_image_palette():
    rgb = label_image(np.array([[0, 1, 10], [255, 4, 0]], np.int32))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0]               # background black
    assert rgb[0, 1].tolist() == [31, 119, 180]          # digit 0
    assert rgb[0, 2].tolist() == [23, 190, 207]          # digit 9
    assert rgb[1, 0].tolist() == [255, 255, 255]         # ignore white
    assert rgb[1, 1].tolist() == [214, 39, 40]           # digit 3
    assert len(PALETTE) == 11 and len({tuple(c) for c in PALETTE}) == 11


def test_gray_image_min_max():
    assert gray_image(np.array([[-1.0, 0.0, 3.0]]))[0, :, 0].tolist() == [0, 64, 255]   # 255 * 1/4 = 63.75
    g = gray_image(np.full((1, 2, 2), 0.5, np.float32))
    assert g.shape == (2, 2, 3) and g.max() == 0


def test_panel_writes_png_with_layout_and_colors(tmp_path):
    image = np.zeros((1, 6, 5), np.float32)
    image[0, 2, 3] = 1.0
    truth = np.zeros((6, 5), np.int32)
    truth[1, 1] = 3                                      # digit 2, green
    pred = np.full((6, 5), 255, np.int32)
    pred[5, 4] = 10                                      # digit 9, cyan
    path = str(tmp_path / "panel.png")
    assert panel([(image, truth, pred), (image, pred, truth)], ["input", "truth", "model"], path,
                 scale=3) == path
    with Image.open(path) as f:
        assert f.format == "PNG"
        got = np.asarray(f.convert("RGB"))
    # width GAP + 3 (5*3 + GAP) = 4 + 57 = 61, height TITLE_HEIGHT + 2 (6*3 + GAP) = 16 + 44 = 60
    assert got.shape == (60, 61, 3)

    def at(row, col, y, x):                              # pixel (y, x) of tile (row, col), scale 3
        return got[TITLE_HEIGHT + row * (18 + GAP) + 3 * y + 1, GAP + col * (15 + GAP) + 3 * x + 1].tolist()

    assert at(0, 0, 2, 3) == [255, 255, 255] and at(0, 0, 0, 0) == [0, 0, 0]   # gray max / min
    assert at(0, 1, 1, 1) == [44, 160, 44] and at(0, 1, 0, 0) == [0, 0, 0]
    assert at(0, 2, 5, 4) == [23, 190, 207] and at(0, 2, 0, 0) == [255, 255, 255]
    assert at(1, 1, 5, 4) == [23, 190, 207] and at(1, 2, 1, 1) == [44, 160, 44]
    assert got[TITLE_HEIGHT + 18, GAP + 5].tolist() == [255, 255, 255]         # the gap between rows
    assert (got[:TITLE_HEIGHT] < 128).any()                                     # some title text drawn
    assert [n for n in os.listdir(tmp_path)] == ["panel.png"]                   # no temporary left


def test_panel_accepts_rgb_tiles_and_cuts_long_titles(tmp_path):
    tile = np.zeros((4, 4, 3), np.uint8)
    tile[..., 0] = 200
    path = str(tmp_path / "one.png")
    panel([[tile]], ["a title much wider than sixteen pixels"], path)
    with Image.open(path) as f:
        got = np.asarray(f.convert("RGB"))
    assert got.shape == (TITLE_HEIGHT + 16 + GAP, GAP + 16 + GAP, 3)
    assert got[TITLE_HEIGHT + 5, GAP + 5].tolist() == [200, 0, 0]
    assert (got[:TITLE_HEIGHT, GAP + 16:] == 255).all()                          # title stays in its column


def test_bad_input(tmp_path):
    path = str(tmp_path / "x.png")
    with pytest.raises(ValueError, match="label map holds 11; the palette covers 0..10 and the ignore label 255"):
        label_image(np.array([[0, 11]]))
    with pytest.raises(ValueError, match="label map must be a 2-D integer array"):
        label_image(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        gray_image(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 3\)"):
        gray_image(np.zeros((2, 3, 3)))
    labels = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match="row 0 has 2 tiles for 3 titles"):
        panel([(labels, labels)], ["a", "b", "c"], path)
    with pytest.raises(ValueError, match=r"row 1, column 0: tile is \(5, 4\), the first is \(4, 4\)"):
        panel([(labels,), (np.zeros((5, 4), np.int32),)], ["a"], path)
    with pytest.raises(ValueError, match="row 0, column 0: label map holds -3"):
        panel([(labels - 3,)], ["a"], path)
    with pytest.raises(ValueError, match="row 0, column 0: a tile is"):
        panel([(np.array(["x"]),)], ["a"], path)
    with pytest.raises(ValueError, match="scale must be a positive integer"):
        panel([(labels,)], ["a"], path, scale=0)
    with pytest.raises(ValueError, match="at least one row"):
        panel([], ["a"], path)
    assert not os.listdir(tmp_path)


def test_legend_title_and_two_line_titles(tmp_path):
    """The legend names every class next to its colour; dropping it (or the title) changes the
    picture's layout and fails here."""
    from econv.pictures import CLASS_LEGEND, CLASS_NAMES, LINE, SWATCH, layout

    assert CLASS_NAMES == ("background",) + tuple(f"digit {k}" for k in range(10))
    assert [c for c, _ in CLASS_LEGEND] == [tuple(int(v) for v in p) for p in PALETTE]
    labels = np.arange(11, dtype=np.int32).reshape(1, 11).repeat(4, axis=0)
    titles = ["truth", "dense\nmean IU 0.575"]
    path = str(tmp_path / "legend.png")
    panel([(labels, labels)], titles, path, scale=4, title="segmentation\nSMOKE TEST", legend=CLASS_LEGEND)
    geo = layout(1, titles, (4, 11), 4, "segmentation\nSMOKE TEST", CLASS_LEGEND)
    plain = layout(1, titles, (4, 11), 4)
    with Image.open(path) as f:
        got = np.asarray(f.convert("RGB"))
    assert got.shape == (geo.height, geo.width, 3)
    assert geo.grid_top == 2 * LINE + GAP + TITLE_HEIGHT + LINE     # two title lines, two-line titles
    assert geo.height > plain.height + LINE and plain.legend_top == plain.height
    assert [text for _, _, _, text in geo.swatches] == list(CLASS_NAMES)
    for x, y, colour, text in geo.swatches:
        assert geo.legend_top <= y and y + SWATCH <= geo.height and x + SWATCH <= geo.width, text
        assert got[y + SWATCH // 2, x + SWATCH // 2].tolist() == list(colour), text   # the swatch
        assert got[y, x].tolist() == [0, 0, 0], text                                 # its outline
        name = got[y:y + SWATCH, x + SWATCH + 4: x + SWATCH + 4 + len(text) * 4]
        assert (name.max(axis=2) < 100).sum() > 5 * len(text.replace(" ", "")), text  # its name in ink
    assert (got[:2 * LINE] < 100).any()                                                # title drawn
