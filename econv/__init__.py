"""econv: the command-line front of the project (``econv --help``)."""

__version__ = "0.1.0"


def __getattr__(name):
    """``econv.compare(...)``: the compare function (its module, callable, is imported on first use)."""
    if name == "compare":
        import importlib

        return importlib.import_module(".compare", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
