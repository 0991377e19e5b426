"""Atomic file output, the one way econv writes a file (DESIGN.md section 6: no half-written output).

    with atomic_output("model.caffemodel.h5") as tmp:
        write_everything_to(tmp)

``tmp`` is a new file in the destination's folder (same file system, so the rename is atomic).
When the block ends normally the file gets the permissions of a freshly created file (``0666``
minus the umask; ``mkstemp``'s ``0600`` would otherwise outlive the rename) and replaces the
destination; when it raises (Ctrl-C included) the temporary file is removed and an existing
destination is untouched.  An ``OSError`` (a missing folder, no permission, a full disk, a
destination that is a folder) names the user's ``path``, never the hidden temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["atomic_output"]


def _naming(error: OSError, path: str, tmp: str | None) -> OSError:
    """``error`` as the user should read it: about ``path``, not about the temporary file."""
    if error.errno is not None and error.strerror:
        # (h5py puts the file name inside strerror; a rename's filename2 is the user's path already)
        strerror = error.strerror.replace(tmp, path) if tmp else error.strerror
        return type(error)(error.errno, strerror, path)
    text = str(error)
    return OSError(text.replace(tmp, path) if tmp else f"{path}: {text}")


@contextlib.contextmanager
def atomic_output(path, suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; rename it over ``path`` on success (module doc)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=folder)
    except OSError as e:
        raise _naming(e, path, None) from None
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and (tmp in str(e) or tmp in (e.filename, e.filename2)):
            raise _naming(e, path, tmp) from None
        raise
