"""``econv segment`` and ``econv evaluate``: FCNs (and their dense nets) on real images and on a
PASCAL VOC layout; the work is in :mod:`econv.segment` and :mod:`econv.evaluate`."""

from __future__ import annotations

import argparse
import sys

SEGMENT_DESCRIPTION = """\
Run an FCN on JPEG/PNG images of any size, with FCN's preprocessing (RGB to BGR, minus the mean
104.007/116.669/122.679, the net's own pad 100 and final Crop), and write OUT/<stem>.png (the label
map, class indices in a palette PNG with the VOC colours) and OUT/<stem>_overlay.png (the image with
the labels blended in, the bare label map, and a legend of the classes found).

--dense-from LAYER labels with the dense net densified at LAYER instead (pool3 for the paper's
dense-8s; FCN-8s's final upsampling is rebuilt for the dense grid, see `econv densify --help`).  A
dense FCN is built per image size; where a Crop cannot hold every fragment at the image's size the
image is padded (bottom/right, with the mean) to the nearest size that fits and the map cropped
back.  The output line of each image says how much of it the dense net labels as the original does."""

EVALUATE_DESCRIPTION = """\
Evaluate an FCN on a PASCAL VOC layout (JPEGImages/<id>.jpg, SegmentationClass/<id>.png with class
indices and 255 = ignore, ImageSets/Segmentation/<split>.txt): FCN's four metrics (pixel accuracy,
mean accuracy, mean IU, frequency-weighted IU, from the summed confusion matrix as FCN's score.py) for
the original net and, with --dense-from, the dense net and dpoa (the dense net's parameters in the
original architecture).  --json writes them with per-image results.

Across machines: --workers N starts a local Dask cluster of N processes; --scheduler ADDRESS uses a
running one (start it with `dask scheduler` on one machine and `dask worker tcp://HOST:8786
--nthreads 1` on each worker machine).  One task per image, the nets built once per worker; every
worker must see the dataset, prototxt and weights at the same paths and have econv installed
(pip install "econv[dask]").  The metrics equal the single-process run exactly."""


def cmd_segment(args) -> int:
    from .segment import segment_files

    records = segment_files(args.prototxt, args.weights, args.images, args.output,
                            dense_from=args.dense_from, dense_weights=args.dense_weights,
                            backend=args.backend, progress=not args.no_progress)
    for r in records:
        extra = ""
        if args.dense_from:
            extra = f", dense = original on {100 * r['dense_agrees_with_original']:.1f}% of pixels"
            if r["padded_to"] != r["size"]:
                extra += f", padded to {r['padded_to'][0]}x{r['padded_to'][1]} for the dense net"
        print(f"{r['image']}: {r['size'][0]}x{r['size'][1]}, {r['model']}: {', '.join(r['classes'])}{extra}")
    print(f"wrote {len(records)} label maps and overlays to {args.output}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, table, write_report

    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be at least 1")
    report = evaluate(args.prototxt, args.weights, args.voc, split=args.split, dense_from=args.dense_from,
                      dense_weights=args.dense_weights, limit=args.limit, workers=args.workers,
                      scheduler=args.scheduler, backend=args.backend, progress=not args.no_progress)
    print(f"{report['n_images']} images of {args.split}, {report['seconds']:.1f} s")
    print(table(report))
    if args.json:
        write_report(report, args.json)
        print(f"{args.json}: per-image results", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    """Register ``segment`` and ``evaluate`` on the ``econv`` subparsers."""
    p = sub.add_parser(
        "segment", help="label maps (VOC palette PNGs) and overlays of images, by an FCN or its dense net",
        description=SEGMENT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prototxt", help="a deploy FCN (one image input, e.g. voc-fcn8s/deploy.prototxt)")
    p.add_argument("weights", help=".caffemodel or .caffemodel.h5")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG/PNG images, any size")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="folder for the PNGs")
    p.add_argument("--dense-from", metavar="LAYER", help="label with the dense net densified at LAYER "
                                                         "(e.g. pool3: the paper's dense-8s)")
    p.add_argument("--dense-weights", metavar="W", help="the dense net's own parameters (default: the "
                                                        "original's, as densify carries them)")
    p.add_argument("--backend", choices=["numpy", "numba"], default="numba",
                   help="kernels (default numba)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser(
        "evaluate", help="FCN's four metrics on a PASCAL VOC layout: original, dense and dpoa nets",
        description=EVALUATE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prototxt", help="a deploy FCN (one image input)")
    p.add_argument("weights", help=".caffemodel or .caffemodel.h5")
    p.add_argument("--voc", required=True, metavar="DIR", help="VOC root: JPEGImages/, SegmentationClass/, "
                                                              "ImageSets/Segmentation/")
    p.add_argument("--split", default="val", help="ImageSets/Segmentation/<split>.txt (default val)")
    p.add_argument("--dense-from", metavar="LAYER", help="also the dense net densified at LAYER and dpoa")
    p.add_argument("--dense-weights", metavar="W", help="the dense net's own parameters (dpoa carries them "
                                                        "back); default: the original's")
    p.add_argument("--limit", type=int, help="only the first N images of the split")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, metavar="N", help="a local Dask cluster of N worker processes")
    group.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, tcp://host:8786")
    p.add_argument("--json", metavar="OUT", help="write the report with per-image results (JSON)")
    p.add_argument("--backend", choices=["numpy", "numba"], default="numba", help="kernels (default numba)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)
