"""Command-line argument helpers shared by the ``econv`` subcommands.

``--input-shape`` (repeatable) on every subcommand that builds a net::

    --input-shape data=1,3,368,368 --input-shape label=1,1,368,368     # by top name
    --input-shape 1,3,224,224                                          # a net with one input
    --input-shape 1x3x224x224                                          # the same

``parse_input_shapes(args.input_shape, declared_inputs(net_dict, phase))`` gives the
``input_shapes`` dict of ``caffe_import.load_net``.
"""

from __future__ import annotations

__all__ = ["parse_input_shapes", "parse_dims", "INPUT_SHAPE_HELP"]

INPUT_SHAPE_HELP = ("NAME=N,C,H,W: the shape of input NAME (an Input top, or a data layer's top, "
                    "which then becomes an Input); repeatable; plain N,C,H,W for a net with one input; "
                    "default: the prototxt's")


def parse_dims(text: str, option: str = "--input-shape") -> tuple:
    """``"N,C,H,W"`` (or ``"NxCxHxW"``) as a tuple of positive ints; ValueError quoting ``text``."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"{option} {text!r}: expected positive integers such as 1,3,224,224")
    return dims


def parse_input_shapes(texts, net_input_names, option: str = "--input-shape") -> dict:
    """``{name: dims}`` from the ``--input-shape`` strings ``texts`` (None or a list).

    ``NAME=dims`` names an input; a plain ``dims`` is allowed when ``net_input_names`` has exactly
    one name.  ValueError (naming the option and the net's inputs) for a malformed shape, an unknown
    name, a name given twice, or a plain shape on a net with several inputs.
    """
    names = list(net_input_names)
    shapes: dict = {}
    for text in texts or []:
        name, sep, dims = text.rpartition("=")
        if not sep:
            if len(names) != 1:
                raise ValueError(f"{option} {text!r}: this net has {len(names)} inputs "
                                 f"({', '.join(names) or 'none'}); write NAME=N,C,H,W")
            name, dims = names[0], text
        name = name.strip()
        if name not in names:
            raise ValueError(f"{option} {text!r}: no input named {name!r} (this net's: "
                             f"{', '.join(names) or 'none'})")
        if name in shapes:
            raise ValueError(f"{option}: input {name!r} given twice")
        shapes[name] = parse_dims(dims, option) if sep else parse_dims(text, option)
    return shapes
