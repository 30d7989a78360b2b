"""Reading the small text and array files the CLI takes besides models and sequences.

One reader per kind, each naming the file, the line or field, what was expected and what was found:

- :func:`read_names`: a text file of names, one per line (``--class-names``).
- :func:`read_labels`: a ``.npy`` label matrix (N, C) (``report --labels``), checked against the result's classes.
- :func:`read_motif_matches`: a tab-separated Tomtom table (``report --motifs``, written by ``deepresolve motifs``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._checks import existing_file
from ..errors import FileFormatError


def _text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FileFormatError(f"{what} {str(path)!r}: expected a UTF-8 text file, got bytes that are not text "
                              f"(at byte {err.start})") from None


def read_names(path: str | Path, what: str = "names file") -> list[str]:
    """The non-empty lines of a text file, stripped (e.g. one output name per line)."""
    path = existing_file(path, what)
    names = [line.strip() for line in _text(path, what).splitlines() if line.strip()]
    if not names:
        raise FileFormatError(f"{what} {str(path)!r}: expected one name per line, got no name")
    return names


def read_labels(path: str | Path, n_classes: int | None = None, what: str = "labels file") -> np.ndarray:
    """A label matrix (N, C) from a ``.npy`` file; with ``n_classes``, C must equal it.

    Returns
    -------
    (N, C) float64 array
    """
    path = existing_file(path, what)
    try:
        labels = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise FileFormatError(f"{what} {str(path)!r}: expected a .npy label matrix (N, C), got a file numpy cannot "
                              f"read ({' '.join(str(err).split())[:120]})") from None
    if isinstance(labels, np.lib.npyio.NpzFile):
        raise FileFormatError(f"{what} {str(path)!r}: expected a .npy label matrix (N, C), got a .npz archive")
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
        raise FileFormatError(f"{what} {str(path)!r}: expected a numeric label matrix (N, C), got a {labels.dtype} "
                              f"array of shape {labels.shape}")
    if n_classes is not None and labels.shape[1] != n_classes:
        raise FileFormatError(f"{what} {str(path)!r}: expected {n_classes} columns, one per class of the result, got "
                              f"{labels.shape[1]}")
    if not np.isfinite(labels.astype(np.float64)).all():
        raise FileFormatError(f"{what} {str(path)!r}: expected finite labels, got NaN or infinite values")
    return labels.astype(np.float64)


def read_motif_matches(path: str | Path, what: str = "motif table") -> pd.DataFrame:
    """A tab-separated table of motif matches with a header line (e.g. ``tomtom_JASPAR2024.tsv``)."""
    path = existing_file(path, what)
    _text(path, what)  # refuse binary files by name before pandas guesses at them
    try:
        table = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise FileFormatError(f"{what} {str(path)!r}: expected a tab-separated table with a header line, got text "
                              f"pandas cannot read ({' '.join(str(err).split())[:120]})") from None
    if table.shape[1] < 2:
        raise FileFormatError(f"{what} {str(path)!r}: expected a tab-separated table of several columns, got "
                              f"{table.shape[1]} column")
    return table
