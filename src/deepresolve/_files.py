"""Atomic file writes, one home for them: a file is whole or absent, never half-written.

Every file deepresolve writes (results, run-store chunks, tables, reports, figures) goes through
:func:`write_atomic`: it is written under a temporary name in the same folder, flushed to disk and renamed into
place. A rename is atomic, so a ``kill -9`` at any instant leaves either the old file, the whole new one, or
(for a new file) nothing; leftover temporary files start with ``.tmp-``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from .errors import ArgumentError, CheckpointError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs there are not guarded against a second writer
    fcntl = None

#: Prefix of the temporary files :func:`write_atomic` writes (a killed write leaves one behind).
TMP_PREFIX = ".tmp-"
#: The lock file :func:`exclusive` holds inside a run's folder.
LOCK_NAME = ".lock"


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
        with os.fdopen(fd, "wb") as f:
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


@contextmanager
def exclusive(folder: str | Path, argument: str) -> Iterator[Path]:
    """Hold ``folder`` for one run: a second run on it, while this one is alive, is refused by name.

    The folder is created (with its parents) if needed, and an advisory lock (``flock``) is taken on ``folder/.lock``.
    The operating system releases the lock when its process dies, so a run killed with ``kill -9`` never leaves the
    folder locked. On leaving, the lock file is removed, and so is the folder when this call created it and nothing
    was written into it.

    Raises
    ------
    ArgumentError
        The folder cannot be created or written (read-only file system, permissions, a file in the way).
    CheckpointError
        Another live process holds the folder; the message names ``argument``, the folder and that process.
    """
    folder = Path(folder)
    created = not folder.exists()
    lock = folder / LOCK_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _lock(lock, argument)
    except OSError as err:  # read-only, under a file, permissions: the folder is refused before any work
        raise ArgumentError(f"{argument}: expected a folder that can be created and written, got {str(folder)!r} "
                            f"({err.strerror or err})") from None
    try:
        yield folder
    finally:
        lock.unlink(missing_ok=True)  # before the lock is released, so a waiting run re-checks (see _lock)
        os.close(fd)
        if created and not any(folder.iterdir()):
            folder.rmdir()


def _lock(lock: Path, argument: str) -> int:
    """An open descriptor of ``lock`` holding its flock; refused when another process holds it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointError(f"{argument}: expected a folder no other run is writing, got {str(lock.parent)!r}, "
                                  f"which a running deepresolve (process {holder}) holds; wait for it to finish or "
                                  "choose another folder") from None
        try:  # the holder may have removed the file between our open and our lock: lock the file that is there now
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


def check_free_space(folder: str | Path, needed: int, argument: str, what: str) -> None:
    """Refuse, before any work, a folder whose file system has less free space than ``needed`` bytes.

    ``what`` says what will be written (e.g. "the run store's maps"). The estimate is a floor: a run that passes
    can still fill a disk that others are filling too, which then ends in one OSError naming the file.
    """
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ArgumentError(f"{argument}: expected a folder with at least {_size(needed)} free for {what}, got "
                            f"{str(folder)!r} with {_size(free)} free; free some space or choose another folder")


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
