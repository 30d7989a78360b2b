"""One-hot encoding and FASTA files."""

import numpy as np
import pytest

from deepresolve.errors import ArgumentError, FileFormatError, MissingFileError
from deepresolve.io.sequences import (
    decode,
    load_inputs,
    one_hot,
    read_fasta,
    write_fasta,
)


def test_one_hot_roundtrip_and_order():
    x = one_hot(["ACGTN", "TTGCA"])
    assert x.shape == (2, 4, 5) and x.dtype == np.float32
    # A, C, G, T rows: position 0 of "ACGTN" is A, position 1 is C ...
    assert x[0, :, 0].tolist() == [1, 0, 0, 0] and x[0, :, 3].tolist() == [0, 0, 0, 1]
    assert x[0, :, 4].sum() == 0  # N is all zeros
    assert decode(x) == ["ACGTN", "TTGCA"]
    assert one_hot("acgt").shape == (1, 4, 4)


@pytest.mark.parametrize("bad, match", [
    (["ACG", "AC"], r"^seqs: expected sequences of one common length, got lengths \[2, 3\]$"),
    (["ACXG"], r"^seqs: expected only A, C, G, T or N, got 'X' in sequence 0 at position 2$"),
    ([], r"^seqs: expected at least one sequence, got none$"),
    ([3], r"^seqs: expected every sequence to be a str, got a int$"),
])
def test_one_hot_rejects_bad_input(bad, match):
    with pytest.raises(ArgumentError, match=match):
        one_hot(bad)


def test_decode_rejects_wrong_shape():
    with pytest.raises(ArgumentError,
                       match=r"^x: expected a one-hot array of shape \(N, 4, L\) or \(4, L\), got shape"):
        decode(np.zeros((2, 5, 3)))


def test_write_and_read_fasta(tmp_path):
    x = one_hot(["ACGT", "GGCC"])
    path = write_fasta(tmp_path / "a.fa", x, names=["a", "b"])
    assert read_fasta(path) == (["a", "b"], ["ACGT", "GGCC"])
    with pytest.raises(ArgumentError, match=r"^names: expected one name per sequence \(2\), got 1$"):
        write_fasta(tmp_path / "b.fa", x, names=["a"])
    assert not (tmp_path / "b.fa").exists()


def test_fasta_with_a_letter_outside_acgtn_names_file_sequence_and_letter(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_text(">a\nACGTN\n>b\nacgRt\n")
    with pytest.raises(FileFormatError, match=r"bad\.fa': expected only A, C, G, T or N, got 'R' in sequence 1 at "
                                              r"position 3$"):
        load_inputs(path)
    path.write_text(">a\nACGTN\n>b\nacgnt\n")
    x = load_inputs(path)
    assert x.shape == (2, 4, 5) and x[1, :, 3].sum() == 0 and decode(x) == ["ACGTN", "ACGNT"]


@pytest.mark.parametrize("content, match", [
    ("ACGT\n>a\nACGT\n", r"expected a '>' header first, got sequence on line 1$"),
    ("", r"expected FASTA sequences, got none$"),
    (">a\nACGT\n>b\nACG\n", r"expected FASTA sequences of one common length, got lengths \[3, 4\]$"),
])
def test_broken_fasta_files_raise_one_line_naming_the_file(tmp_path, content, match):
    path = tmp_path / "in.fa"
    path.write_text(content)
    with pytest.raises(FileFormatError, match=r"^(FASTA|inputs) file '.*in\.fa': " + match):
        load_inputs(path)


def test_unreadable_and_missing_input_files(tmp_path):
    (tmp_path / "bin.fa").write_bytes(bytes(range(256)))
    with pytest.raises(FileFormatError, match=r"bin\.fa': expected a text file"):
        load_inputs(tmp_path / "bin.fa")
    (tmp_path / "x.npy").write_text("not numpy")
    with pytest.raises(FileFormatError, match=r"x\.npy': expected a numpy \.npy file"):
        load_inputs(tmp_path / "x.npy")
    with pytest.raises(MissingFileError, match=r"^inputs file '.*nope\.fa' does not exist$"):
        load_inputs(tmp_path / "nope.fa")
    with pytest.raises(MissingFileError, match=r"^inputs file: expected a file, got the folder"):
        load_inputs(tmp_path)


def test_keras_layout_helpers_refuse_what_they_cannot_do():
    import torch

    from deepresolve.errors import ModelError
    from deepresolve.io.keras import FromOneHot, sequence_input
    from deepresolve.io.keras.files import LayerSpec
    from deepresolve.io.keras.layers import Context, activation_module

    with pytest.raises(ArgumentError, match=r"^onehot: expected shape \(N, alphabet, length\), got \(4, 10\)$"):
        sequence_input(torch.nn.Identity(), torch.zeros(4, 10))
    with pytest.raises(ModelError,
                       match=r"^model: expected a Keras input layout that takes sequences .*, got 'dense'$"):
        FromOneHot("dense")
    # A Keras softmax runs over Keras's last axis, the channels of a feature map (fixed when the model is built,
    # so that torch.fx can trace it); it used to refuse anything but an (N, D) tensor. It is torch's own Softmax,
    # which split_model leaves out of a head as it leaves out a final Sigmoid.
    x = torch.randn(2, 3, 4)
    softmax = activation_module("softmax", LayerSpec("Dense", "d", {}, 2, "m.h5"), Context(None, "", False, True), 3)
    assert isinstance(softmax, torch.nn.Softmax)
    torch.testing.assert_close(softmax(x).sum(dim=1), torch.ones(2, 4))
