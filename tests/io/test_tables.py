"""The readers of names, label matrices and motif tables name the file and what was wrong."""

import numpy as np
import pytest

from deepresolve.errors import FileFormatError, MissingFileError
from deepresolve.io import read_labels, read_motif_matches, read_names


def test_names_are_the_non_empty_lines(tmp_path):
    (tmp_path / "n.txt").write_text("a\n\n b \n")
    assert read_names(tmp_path / "n.txt") == ["a", "b"]
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(FileFormatError, match="expected one name per line, got no name"):
        read_names(tmp_path / "empty.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(FileFormatError, match="expected a UTF-8 text file, got bytes that are not text"):
        read_names(tmp_path / "bin.txt")
    with pytest.raises(MissingFileError, match="expected a file, got the folder"):
        read_names(tmp_path)


def test_labels_are_checked_against_the_classes(tmp_path):
    np.save(tmp_path / "y.npy", np.ones((6, 5)))
    assert read_labels(tmp_path / "y.npy", 5).shape == (6, 5)
    with pytest.raises(FileFormatError, match=r"y\.npy'.*expected 1 columns, one per class of the result, got 5"):
        read_labels(tmp_path / "y.npy", 1)
    (tmp_path / "seqs.fa").write_text(">a\nACGT\n")
    with pytest.raises(FileFormatError, match=r"seqs\.fa'.*expected a \.npy label matrix \(N, C\), got a file numpy"):
        read_labels(tmp_path / "seqs.fa")
    np.save(tmp_path / "flat.npy", np.ones(4))
    with pytest.raises(FileFormatError,
                       match=r"expected a numeric label matrix \(N, C\), got a float64 array of shape \(4,\)"):
        read_labels(tmp_path / "flat.npy")
    np.save(tmp_path / "nan.npy", np.full((2, 2), np.nan))
    with pytest.raises(FileFormatError, match="expected finite labels"):
        read_labels(tmp_path / "nan.npy")


def test_motif_tables_refuse_bytes_and_single_columns(tmp_path):
    (tmp_path / "t.tsv").write_text("query\ttarget\tp-value\nch0\tMA0139.1\t0.001\n")
    assert list(read_motif_matches(tmp_path / "t.tsv").columns) == ["query", "target", "p-value"]
    (tmp_path / "r.tsv").write_bytes(bytes(range(256)))
    with pytest.raises(FileFormatError, match=r"r\.tsv'.*expected a UTF-8 text file"):
        read_motif_matches(tmp_path / "r.tsv")
    (tmp_path / "one.tsv").write_text("just words\nmore words\n")
    with pytest.raises(FileFormatError, match="expected a tab-separated table of several columns, got 1 column"):
        read_motif_matches(tmp_path / "one.tsv")
