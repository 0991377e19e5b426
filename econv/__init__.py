"""econv: the command-line front of the project (``econv --help``)."""

__version__ = "0.1.0"
