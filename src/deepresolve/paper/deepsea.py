"""DeepSEA's 919 outputs and the paper's analysis of them (Figs 7 and 8).

- ``feature_table``: the 919 outputs (cell type, assay or target, treatment) from a tab-separated table
  that you provide, one row per output (columns index, cell, assay, treatment).
- ``dnase_association``: for every TF or histone-mark output, how many DNase outputs it is strongly positively
  and strongly negatively similar to (the paper's Fig 8b; thresholds at the 85 % and 15 % quantiles of all
  similarities by default, 0.52 and 0 in the paper).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._checks import existing_file
from ..errors import ArgumentError, FileFormatError

#: Columns a DeepSEA feature table must have.
FEATURE_COLUMNS = ("index", "cell", "assay", "treatment")


def feature_table(path: str | Path) -> pd.DataFrame:
    """Read the table of DeepSEA outputs (tab-separated; columns index, cell, assay, treatment).

    Returns
    -------
    DataFrame indexed by output index, with a ``name`` column ``"<cell>|<assay>|<treatment>"`` and a ``category``
    column: ``"DNase"``, ``"histone mark"`` (H2A.Z and the H2A/H2B/H3/H4 modifications, e.g. H3K27ac) or ``"TF"``
    (every other target), the three kinds of output of the paper's Figs 7 and 8.
    """
    path = existing_file(path, "DeepSEA feature table")
    try:
        df = pd.read_csv(path, sep="\t", dtype={"treatment": str}, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as err:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise FileFormatError(f"DeepSEA feature table {str(path)!r}: expected a tab-separated table, got one pandas "
                              f"cannot read ({err})") from None
    missing = [c for c in FEATURE_COLUMNS if c not in df.columns]
    if missing:
        raise FileFormatError(f"DeepSEA feature table {str(path)!r}: expected columns {list(FEATURE_COLUMNS)}, got "
                              f"{list(df.columns)[:10]}, without {missing}")
    df = df.set_index("index").sort_index()
    df["name"] = df["cell"] + "|" + df["assay"] + "|" + df["treatment"]
    histone = df["assay"].str.fullmatch(r"H2A\.?Z|H(2A|2B|3|4)K\d+(ac|me\d)")
    df["category"] = np.where(df["assay"] == "DNase", "DNase", np.where(histone, "histone mark", "TF"))
    return df


def dnase_association(similarity: np.ndarray, assays: pd.Series | list[str], high: float | None = None,
                      low: float | None = None, quantiles: tuple[float, float] = (0.15, 0.85)) -> pd.DataFrame:
    """Count, for each non-DNase output, its strong positive and strong negative similarities with DNase outputs.

    Parameters
    ----------
    similarity : (C, C) array
        A class similarity matrix over outputs, e.g. :func:`deepresolve.class_similarity`.
    assays : sequence of str, length C
        The assay or target of each output (``"DNase"`` marks accessibility outputs).
    high, low : float, optional
        Thresholds of a strong positive / strong negative similarity. Default: the ``quantiles`` of all
        off-diagonal similarities (the paper: 0.52 = 85 %, 0 = 15 %).

    Returns
    -------
    DataFrame, one row per non-DNase output (position in the matrix as index), with columns ``assay``,
    ``positive``, ``negative`` and ``net`` = positive - negative, sorted by ``net`` (most accessibility-associated
    first).
    """
    a = np.asarray(similarity, dtype=np.float64)
    assays = np.asarray(list(assays), dtype=object)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] != len(assays):
        raise ArgumentError(f"similarity: expected shape (C, C) with C = len(assays) = {len(assays)}, got {a.shape}")
    dnase = assays == "DNase"
    if not dnase.any() or dnase.all():
        raise ArgumentError(f"assays: expected both 'DNase' outputs and other outputs, got "
                            f"{'only' if dnase.all() else 'no'} 'DNase' outputs")
    off = a[~np.eye(len(a), dtype=bool)]
    low = float(np.quantile(off, quantiles[0])) if low is None else low
    high = float(np.quantile(off, quantiles[1])) if high is None else high
    block = a[np.ix_(~dnase, dnase)]
    df = pd.DataFrame({
        "assay": assays[~dnase],
        "positive": (block > high).sum(axis=1),
        "negative": (block < low).sum(axis=1),
    }, index=np.flatnonzero(~dnase))
    df["net"] = df["positive"] - df["negative"]
    df.attrs.update(high=high, low=low)
    return df.sort_values("net", ascending=False, kind="stable")
