"""Atomic file output, the one way econv writes a file (DESIGN.md section 6: no half-written output).

    with atomic_output("model.caffemodel.h5") as tmp:
        write_everything_to(tmp)

``tmp`` is a new file in the destination's folder (same file system, so the rename is atomic).
When the block ends normally the file gets the permissions of a freshly created file (``0666``
minus the umask; ``mkstemp``'s ``0600`` would otherwise outlive the rename) and replaces the
destination; when it raises (Ctrl-C included) the temporary file is removed and an existing
destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path, suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; rename it over ``path`` on success (module doc)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
