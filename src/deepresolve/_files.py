"""Atomic file writes, one home for them: a file is whole or absent, never half-written.

Every file deepresolve writes (results, run-store chunks, tables, reports, figures) goes through
:func:`write_atomic`: it is written under a temporary name in the same folder, flushed to disk and renamed into
place. A rename is atomic, so a ``kill -9`` at any instant leaves either the old file, the whole new one, or
(for a new file) nothing; leftover temporary files start with ``.tmp-``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

#: Prefix of the temporary files :func:`write_atomic` writes (a killed write leaves one behind).
TMP_PREFIX = ".tmp-"


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` by calling ``write(f)`` on a temporary binary file beside it, then rename it into place.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder must exist.
    write : callable
        Called once with the open temporary file (binary mode).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "w+b") as f:  # readable too: h5py writes to a file object it can seek and read
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`write_atomic`)."""
    data = text.encode()
    return write_atomic(path, lambda f: f.write(data))
