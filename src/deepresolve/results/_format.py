"""Format tags and JSON attributes of deepresolve's HDF5 files, checked one way for every file kind."""

from __future__ import annotations

import json
import re
from typing import Any

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
