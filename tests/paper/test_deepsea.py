from pathlib import Path

import numpy as np
import pytest

from deepresolve.errors import ArgumentError, FileFormatError, MissingFileError
from deepresolve.io.deepsea import feature_table
from deepresolve.similarity import dnase_association

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "deepsea" / "deepsea919_features.tsv"


def test_dnase_association_counts():
    assays = ["DNase", "DNase", "DNase", "CTCF", "EZH2"]
    a = np.eye(5)
    a[3, :3] = a[:3, 3] = [0.9, 0.8, 0.1]   # CTCF: similar to two DNase outputs
    a[4, :3] = a[:3, 4] = [-0.5, -0.6, 0.9]  # EZH2: dissimilar to two, similar to one
    df = dnase_association(a, assays, high=0.5, low=0.0)
    assert df.index.tolist() == [3, 4]
    assert df.loc[3, ["positive", "negative"]].tolist() == [2, 0]
    assert df.loc[4, ["positive", "negative", "net"]].tolist() == [1, 2, -1]
    with pytest.raises(ArgumentError,
                       match="^assays: expected both 'DNase' outputs and other outputs, got no 'DNase' outputs$"):
        dnase_association(np.eye(2), ["CTCF", "EZH2"])
    with pytest.raises(ArgumentError,
                       match=r"^similarity: expected shape \(C, C\) with C = len\(assays\) = 3, got \(2, 2\)$"):
        dnase_association(np.eye(2), ["DNase", "CTCF", "EZH2"])


def test_feature_table_reads_shared_file():
    if not SHARED.exists():
        pytest.skip(f"shared DeepSEA feature table not found at {SHARED} (../shared beside the checkout)")
    df = feature_table(SHARED)
    assert len(df) == 919 and (df["assay"] == "DNase").sum() == 125
    assert df.loc[0, "name"] == "8988T|DNase|None"
    # DeepSEA's outputs: 125 DNase, 690 TF and 104 histone-mark profiles (Zhou & Troyanskaya 2015)
    assert df["category"].value_counts().to_dict() == {"TF": 690, "DNase": 125, "histone mark": 104}


def test_feature_table_categories(tmp_path):
    assays = ["DNase", "H3K27ac", "H2AZ", "H4K20me1", "H2BK120ac", "HDAC2", "HA-E2F1", "HNF4A", "CTCF", "H3K9me3"]
    rows = "".join(f"{i}\tK562\t{a}\tNone\n" for i, a in enumerate(assays))
    (tmp_path / "t.tsv").write_text("index\tcell\tassay\ttreatment\n" + rows)
    assert feature_table(tmp_path / "t.tsv")["category"].tolist() == [
        "DNase", "histone mark", "histone mark", "histone mark", "histone mark", "TF", "TF", "TF", "TF", "histone mark"]


def test_feature_table_errors(tmp_path):
    with pytest.raises(MissingFileError, match=r"^DeepSEA feature table '.*none\.tsv' does not exist$"):
        feature_table(tmp_path / "none.tsv")
    (tmp_path / "bad.tsv").write_text("index\tcell\n0\tK562\n")
    with pytest.raises(FileFormatError, match=r"bad\.tsv': expected columns .*, got \['index', 'cell'\], without "
                                              r"\['assay', 'treatment'\]$"):
        feature_table(tmp_path / "bad.tsv")
