"""Format tags and JSON attributes of deepresolve's HDF5 files, checked one way for every file kind."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any, Callable

import h5py

from .._files import write_atomic
from ..errors import FileFormatError


def check_format(tag: object, expected: str, where: str, what: str) -> None:
    """Refuse a file whose format tag is not ``expected`` (e.g. ``"deepresolve-result-1"``), naming why.

    A tag of the same kind with a higher version number was written by a newer deepresolve: the message says so
    instead of calling the file damaged.
    """
    if isinstance(tag, bytes):
        tag = tag.decode(errors="replace")
    if tag == expected:
        return
    kind, version = expected.rsplit("-", 1)
    found = re.fullmatch(re.escape(kind) + r"-(\d+)", str(tag)) if tag is not None else None
    if found and int(found.group(1)) > int(version):
        raise FileFormatError(f"{where}: expected a {what} in format {expected!r}, got format {tag!r}, written by a "
                              "newer deepresolve; upgrade deepresolve to read it")
    shown = "no format tag" if tag is None else f"format tag {tag!r}"
    raise FileFormatError(f"{where}: expected a deepresolve {what} (format tag {expected!r}), got {shown}")


def json_attribute(text: object, name: str, where: str) -> Any:
    """An HDF5 attribute holding JSON, parsed; a damaged one is a FileFormatError naming the file and the field."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as err:
        raise FileFormatError(f"{where}: expected JSON in the attribute {name!r}, got text that does not parse "
                              f"({err})") from None


_images = itertools.count()


def save_hdf5(path: str | Path, fill: Callable[[h5py.File], None]) -> Path:
    """Write an HDF5 file that ``fill`` builds, atomically: built in memory, then written through a temporary file.

    A full disk or a kill leaves the previous file (or none) and an OSError naming the problem, never half a file;
    HDF5 writing straight to a disk that fills up can crash the process instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(f"deepresolve-image-{next(_images)}.h5", "w", driver="core", backing_store=False) as f:
        fill(f)
        f.flush()
        image = f.id.get_file_image()
    return write_atomic(path, lambda out: out.write(image))
