"""One-hot encoding and FASTA files."""

import numpy as np
import pytest

from deepresolve.io.sequences import decode, load_inputs, one_hot, read_fasta, write_fasta


def test_one_hot_roundtrip_and_order():
    x = one_hot(["ACGTN", "TTGCA"])
    assert x.shape == (2, 4, 5) and x.dtype == np.float32
    # A, C, G, T rows: position 0 of "ACGTN" is A, position 1 is C ...
    assert x[0, :, 0].tolist() == [1, 0, 0, 0] and x[0, :, 3].tolist() == [0, 0, 0, 1]
    assert x[0, :, 4].sum() == 0  # N is all zeros
    assert decode(x) == ["ACGTN", "TTGCA"]
    assert one_hot("acgt").shape == (1, 4, 4)


@pytest.mark.parametrize("bad, match", [(["ACG", "AC"], "same length"), (["ACXG"], "'X' at position 2"),
                                        ([], "no sequences"), ([3], "must be a str")])
def test_one_hot_rejects_bad_input(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        one_hot(bad)


def test_decode_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        decode(np.zeros((2, 5, 3)))


def test_write_and_read_fasta(tmp_path):
    x = one_hot(["ACGT", "GGCC"])
    path = write_fasta(tmp_path / "a.fa", x, names=["a", "b"])
    assert read_fasta(path) == (["a", "b"], ["ACGT", "GGCC"])
    with pytest.raises(ValueError, match="2 sequences"):
        write_fasta(tmp_path / "b.fa", x, names=["a"])


def test_fasta_with_a_letter_outside_acgtn_names_file_sequence_and_letter(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_text(">a\nACGTN\n>b\nacgRt\n")
    with pytest.raises(ValueError, match=r"bad\.fa'?: sequence 1 has 'R' at position 3"):
        load_inputs(path)
    path.write_text(">a\nACGTN\n>b\nacgnt\n")
    x = load_inputs(path)
    assert x.shape == (2, 4, 5) and x[1, :, 3].sum() == 0 and decode(x) == ["ACGTN", "ACGNT"]
