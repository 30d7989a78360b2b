"""Which row of a result's arrays holds a class: one rule for every result type."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._checks import ClassKey
from ..errors import ArgumentError


def class_row(classes: np.ndarray, class_names: Sequence[str], cls: int | str, argument: str = "cls") -> int:
    """Row of ``cls`` (an output index or a class name) among ``classes`` (C,) named ``class_names``.

    A class name that several analysed outputs share is ambiguous and refused: pass the output index instead.
    ``argument`` names the caller's argument in the error message.
    """
    n = len(class_names)
    if isinstance(cls, str):
        rows = [i for i, name in enumerate(class_names) if name == cls]
        if not rows:
            shown = ", ".join(repr(name) for name in class_names[:10]) + (", ..." if n > 10 else "")
            raise ArgumentError(f"{argument}: expected a class name of this result ({shown}), got {cls!r}")
        if len(rows) > 1:
            outputs = ", ".join(str(int(classes[i])) for i in rows)
            raise ArgumentError(f"{argument}: expected a class name that names one output, got {cls!r}, which is "
                                f"ambiguous (outputs {outputs} share it); pass the output index instead")
        return rows[0]
    index = ClassKey().check(cls, argument)
    hits = np.flatnonzero(np.asarray(classes) == index)
    if len(hits) == 0:
        covered = ", ".join(str(c) for c in np.asarray(classes).tolist()[:20]) + (", ..." if len(classes) > 20 else "")
        raise ArgumentError(f"{argument}: expected an output index this result analysed ({covered}), "
                            f"got {index}, which was not analysed")
    return int(hits[0])
