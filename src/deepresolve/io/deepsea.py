"""DeepSEA's 919 outputs: the table of what each one measures (cell type, assay or target, treatment).

:func:`feature_table` reads it from a tab-separated file such as the one published with DeepSEA; the DeepSEA
architecture (:mod:`deepresolve.io.architectures`) names its outputs from it, and the assay column marks the DNase
outputs of :func:`deepresolve.similarity.dnase_association`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._checks import existing_file
from ..errors import FileFormatError

__all__ = ["FEATURE_COLUMNS", "feature_table"]

#: Columns a DeepSEA feature table must have.
FEATURE_COLUMNS = ("index", "cell", "assay", "treatment")


def feature_table(path: str | Path) -> pd.DataFrame:
    """Read the table of DeepSEA outputs (tab-separated; columns index, cell, assay, treatment).

    Parameters
    ----------
    path : str or Path
        The table; other columns are kept, ``treatment`` is read as text (``"None"`` stays a string).

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
