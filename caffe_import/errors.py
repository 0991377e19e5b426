"""The one exception type for malformed Caffe files, and the weights-mismatch warning."""

from __future__ import annotations


class FormatError(ValueError):
    """A Caffe file (binary protobuf, prototxt, HDF5 weights, mean file) is malformed.

    Attributes:
        what: a short description of the problem ("truncated varint", "unknown field").
        where: the position, as a string: ``"byte 1234"`` for binary files, ``"12:7"``
            (line:column, both 1-based) for text files, or an HDF5 path; may be None.
        expected: what the reader expected instead, or None.
        path: the file name, when the reader knew it; None otherwise.

    ``str(err)`` reads e.g. ``"model.caffemodel: byte 1234: length 99999 runs past the end
    of the data (expected at most 17 bytes)"``.
    """

    def __init__(self, what: str, where: str | None = None, expected: str | None = None,
                 path: str | None = None):
        self.what = what
        self.where = where
        self.expected = expected
        self.path = path
        super().__init__(self._message())

    def _message(self) -> str:
        parts = []
        if self.path:
            parts.append(str(self.path))
        if self.where:
            parts.append(str(self.where))
        msg = self.what
        if self.expected:
            msg += f" (expected {self.expected})"
        parts.append(msg)
        return ": ".join(parts)

    def with_path(self, path) -> "FormatError":
        """Return a copy of this error that names the file ``path``."""
        return FormatError(self.what, self.where, self.expected, str(path))

    def __reduce__(self):  # keep picklable despite the custom __init__
        return (FormatError, (self.what, self.where, self.expected, self.path))


class WeightsMismatchWarning(UserWarning):
    """Weights and net do not fully match: layers of the weights file that match no layer of the
    net (their parameters are dropped), or layers of the net with parameters that the file does
    not cover (they keep their filler values).  ``load_net(..., strict=True)`` (``--strict`` on
    the command line) makes it a ValueError.

    Attributes: ``unused`` (file layers, with blobs, matching nothing) and ``missing`` (net layers
    with parameters that got no weights), both lists of names; ``source`` the file or None.
    """

    def __init__(self, message: str, unused=(), missing=(), source=None):
        super().__init__(message)
        self.unused = list(unused)
        self.missing = list(missing)
        self.source = source
