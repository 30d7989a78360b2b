"""Filter PWMs, channel motifs by gradient ascent, DeepMotif, MEME files, JASPAR and Tomtom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deepresolve.errors import ArgumentError, FileFormatError, MissingFileError
from deepresolve.io.models import load_model
from deepresolve.io.sequences import one_hot
from deepresolve.motifs import (
    channel_motifs,
    deepmotif,
    filter_pwms,
    information_content,
    jaspar_motifs,
    match_channels,
    read_meme,
    receptive_field,
    to_pwm,
    tomtom_matches,
    trim_pwm,
    write_meme,
)

SHARED = Path(__file__).parents[3] / "shared" / "data" / "tf422"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def onehot(seq: str) -> np.ndarray:
    return one_hot(seq)[0]


def consensus(pwm: np.ndarray) -> str:
    return "".join("ACGT"[i] for i in pwm.argmax(axis=0))


def planted_conv(kmer: str, n_filters: int = 3, seed: int = 0) -> nn.Conv1d:
    """A conv whose filter 0 is +1 on the k-mer's bases and -1 elsewhere (plus small noise); others random."""
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv1d(4, n_filters, len(kmer))
    with torch.no_grad():
        conv.weight.copy_(0.1 * torch.randn(conv.weight.shape, generator=g))
        conv.weight[0] += torch.tensor(2 * onehot(kmer) - 1)
        conv.bias.zero_()
    return conv


def test_to_pwm_properties():
    m = np.array([[1.0, -2, 0], [3, -1, 0], [0, -5, 0], [0, 4, 0]])
    p = to_pwm(m)
    np.testing.assert_allclose(p.sum(axis=0), 1)
    np.testing.assert_allclose(p[:, 0], [0.25, 0.75, 0, 0])
    np.testing.assert_allclose(p[:, 1], [0, 0, 0, 1])  # negatives clipped
    np.testing.assert_allclose(p[:, 2], 0.25)  # all-zero column
    with pytest.raises(ArgumentError, match=r"^matrix: expected an array \(\.\.\., 4, width\) in A, C, G, T order, "
                                            r"got shape \(3, 5\)$"):
        to_pwm(np.ones((3, 5)))
    ic = information_content(p)
    np.testing.assert_allclose(ic[[1, 2]], [2, 0], atol=1e-9)


def test_filter_pwms_read_a_planted_kmer():
    kmer = "GATTACAGG"
    model = nn.Sequential(planted_conv(kmer), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(3, 1))
    pwms = filter_pwms(model)
    assert pwms.shape == (3, 4, len(kmer))
    assert consensus(pwms[0]) == kmer
    # the filter really scans left to right: the k-mer scores highest of all windows
    x = torch.tensor(onehot("CCCC" + kmer + "CCCC"))[None]
    assert model[0](x)[0, 0].argmax().item() == 4


def test_filter_pwms_of_keras_theano_model_read_forwards(tmp_path):
    """Keras/Theano stores the kernel flipped; after import the PWM reads the motif the model detects."""
    from _factories import layer, write_keras

    from deepresolve.io.keras import load_keras

    kmer = "ACCGTTTG"
    k = len(kmer)
    w = 2 * onehot(kmer) - 1  # (4, k) as the detector should read it
    stored = w[:, ::-1][None, :, None, :]  # (1, 4, 1, k), flipped as Theano stores it
    layers = [
        layer("Convolution2D", "c", nb_filter=1, nb_row=1, nb_col=k, border_mode="same", subsample=[1, 1],
              dim_ordering="th", activation="relu", batch_input_shape=[None, 4, 1, 30]),
        layer("MaxPooling2D", "p", pool_size=[1, 30], strides=[1, 1], dim_ordering="th", border_mode="valid"),
        layer("Flatten", "f"),
        layer("Dense", "d", output_dim=1, activation="sigmoid"),
    ]
    model = load_keras(write_keras(tmp_path / "m", layers,
                                   {"c": [stored, np.zeros(1)], "d": [np.ones((1, 1)), np.zeros(1)]}))
    assert consensus(filter_pwms(model)[0]) == kmer
    rng = np.random.default_rng(0)
    bg = "".join(rng.choice(list("ACGT"), 30 - k))
    with torch.no_grad():
        with_kmer = model(torch.tensor(onehot(bg[:10] + kmer + bg[10:]))[None, :, None, :])
        reversed_kmer = model(torch.tensor(onehot(bg[:10] + kmer[::-1] + bg[10:]))[None, :, None, :])
    assert with_kmer.item() > reversed_kmer.item()


def test_trim_pwm_keeps_the_informative_core():
    core = to_pwm(onehot("TGACTCA") + 0.05)
    pwm = np.concatenate([np.full((4, 5), 0.25), core, np.full((4, 3), 0.25)], axis=1)
    trimmed = trim_pwm(pwm, min_ic=0.5)
    assert consensus(trimmed) == "TGACTCA"
    assert trim_pwm(np.full((4, 10), 0.25), min_ic=0.5, min_width=4).shape == (4, 4)
    model = nn.Sequential(planted_conv("GGGCGG"))
    assert all(p.shape[1] <= 6 for p in filter_pwms(model, trim=0.5))


def test_meme_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    pwms = [to_pwm(rng.random((4, w))) for w in (5, 9, 12)]
    names = ["ch0", "ch1 extra words", "MA0139.1 CTCF"]
    path = write_meme(pwms, names, tmp_path / "sub" / "m.meme")
    back = read_meme(path)
    assert list(back) == names
    for p, q in zip(pwms, back.values()):
        np.testing.assert_allclose(q, p, rtol=1e-6)
    with pytest.raises(ArgumentError, match=r"^names: expected one name per PWM \(2\), got 2 PWMs but 1 names$"):
        write_meme(pwms[:2], ["a"], tmp_path / "x.meme")
    with pytest.raises(ArgumentError,
                       match=r"^pwm 0: expected a \(4, width\) array in A, C, G, T order, got shape \(5, 3\)$"):
        write_meme([np.ones((5, 3))], ["a"], tmp_path / "x.meme")
    with pytest.raises(ArgumentError, match=r"^names: expected unique motif names, got \['a'\] more than once$"):
        write_meme(pwms[:2], ["a", "a"], tmp_path / "x.meme")
    assert not (tmp_path / "x.meme").exists()


MEME_HEAD = "MEME version 4\n\nALPHABET= ACGT\n\n"
ROW = "0.25 0.25 0.25 0.25\n"


@pytest.mark.parametrize("body, problem", [
    ("", r"expected at least one 'MOTIF' line, got none"),
    ("MOTIF a\nURL x\n", r"expected a 'letter-probability matrix' line for motif 'a', got the end of the file"),
    ("MOTIF a\nMOTIF b\n",
     r"line 6: expected a 'letter-probability matrix' line for motif 'a', got the next MOTIF line"),
    ("MOTIF a\nletter-probability matrix: alength= 4\n" + ROW,
     r"line 6: expected 'w=<width>' \(>= 1\) on the matrix line of motif 'a', "
     r"got 'letter-probability matrix: alength= 4'"),
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 2\n" + ROW + "0.5 0.5 0\n",
     r"line 8: expected a row of 4 probabilities \(A, C, G, T\) of motif 'a', got '0.5 0.5 0'"),
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 2\n" + ROW + "0.5 x 0 0.5\n",
     r"line 8: expected a row of 4 probabilities \(A, C, G, T\) of motif 'a', got '0.5 x 0 0.5'"),
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 3\n" + ROW * 2,
     r"expected 3 rows in the matrix of motif 'a', got 2 before the end of the file"),
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 1\n" + ROW + "MOTIF a\n",
     r"line 8: expected a new motif name, got 'a' a second time"),
])
def test_read_meme_refuses_what_is_not_a_complete_meme_file(tmp_path, body, problem):
    # memelite skips what it cannot parse: without the check, garbage read as {} or lost motifs silently
    path = tmp_path / "bad.meme"
    path.write_text(MEME_HEAD + body)
    with pytest.raises(FileFormatError, match=r"^MEME file '.*bad\.meme': " + problem + "$"):
        read_meme(path)


def test_read_meme_binary_missing_and_folder(tmp_path):
    (tmp_path / "b.meme").write_bytes(bytes(range(256)))
    with pytest.raises(FileFormatError, match=r"b\.meme': expected a text file, got bytes that are not text$"):
        read_meme(tmp_path / "b.meme")
    with pytest.raises(MissingFileError, match=r"^MEME file '.*nope\.meme' does not exist$"):
        read_meme(tmp_path / "nope.meme")
    with pytest.raises(MissingFileError, match=r"^MEME file: expected a file, got the folder"):
        read_meme(tmp_path)


def test_jaspar_motifs():
    j16 = jaspar_motifs("JASPAR2016")
    assert len(j16) == 519
    assert "MA0139.1 CTCF" in j16
    ctcf = j16["MA0139.1 CTCF"]
    assert ctcf.shape == (4, 19)
    np.testing.assert_allclose(ctcf.sum(axis=0), 1)
    assert len(jaspar_motifs("JASPAR2024")) > len(j16)
    with pytest.raises(ArgumentError, match=r"^release: expected a JASPAR release bundled with pyjaspar "
                                            r"\(.*JASPAR2016.*\), got 'JASPAR1999'$"):
        jaspar_motifs("JASPAR1999")


def test_tomtom_puts_a_jaspar_motif_first():
    """Noisy, cropped JASPAR motifs matched back against JASPAR find themselves first.

    The first call compiles memelite's numba kernels (about 45 s, cached afterwards).
    """
    targets = jaspar_motifs("JASPAR2016")
    rng = np.random.default_rng(0)
    names = ["MA0139.1 CTCF", "MA0138.2 REST", "MA0148.3 FOXA1"]
    queries = []
    for n in names:
        p = targets[n][:, 1:-1]
        queries.append(to_pwm(p + 0.05 * rng.random(p.shape)))
    df = tomtom_matches(queries, targets, names=names)
    assert len(df) == 3 * len(targets)
    best = df[df["rank"] == 1].set_index("query")
    for n in names:
        assert best.loc[n, "target"] == n
        assert best.loc[n, "p_value"] < 1e-5
    assert (df.q_value >= df.p_value - 1e-12).all()
    # a reverse-complemented query matches on the minus strand
    rc = tomtom_matches([queries[0][::-1, ::-1]], targets, n_matches=1)
    assert rc.loc[0, "target"] == names[0] and rc.loc[0, "strand"] == "-" and len(rc) == 1


def tiny_two_layer(kmer: str) -> nn.Sequential:
    conv1 = planted_conv(kmer, n_filters=3)
    conv2 = nn.Conv1d(3, 2, 3, padding=1)
    with torch.no_grad():
        conv2.weight.zero_()
        conv2.weight[0, 0, 1] = 1.0  # channel 0 of conv2 reads filter 0 at its centre tap
        conv2.weight[1] = 0.3 * torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
        conv2.bias.zero_()
    return nn.Sequential(conv1, nn.ReLU(), conv2, nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(2, 1))


def test_channel_motifs_recovers_a_deep_channel_kmer():
    kmer = "TTGACGTCA"
    model = tiny_two_layer(kmer)
    rng = np.random.default_rng(0)
    seqs = []
    for i in range(60):
        s = "".join(rng.choice(list("ACGT"), 40))
        if i % 3 == 0:
            s = s[:15] + kmer + s[15 + len(kmer):]
        seqs.append(onehot(s))
    seqs = np.stack(seqs)
    assert receptive_field(model, "2", length=40, position=20) == (19, 30)  # conv2 taps 19..21, each reading 9 bases
    model.train()
    pwms, info = channel_motifs(model, "2", seqs, channels=[0], restarts=4, steps=60)
    assert model.training and all(p.requires_grad for p in model.parameters())  # the caller's model is untouched
    assert info["receptive_field"] == len(kmer) + 2
    assert pwms.shape == (1, 4, len(kmer) + 2)
    assert kmer in consensus(pwms[0])
    assert (info["activation"][0] >= info["init_activation"][0] - 1e-4).all()  # ascent never lost ground
    with pytest.raises(ArgumentError, match="not a module"):
        channel_motifs(model, "nope", seqs)
    with pytest.raises(ArgumentError, match=r"^inputs: expected one-hot \(N, 4, L\), got shape \(\d+, 3, 40\)$"):
        channel_motifs(model, "2", seqs[:, :3])
    with pytest.raises(ArgumentError, match=r"^channels: expected an integer in \[0, 1\], got 5$"):
        channel_motifs(model, "2", seqs, channels=[5])
    with pytest.warns(FutureWarning, match=r"channel_motifs\(n_init=\.\.\.\) is now channel_motifs\(restarts="):
        old, old_info = channel_motifs(model, "2", seqs, channels=[0], n_init=4, steps=60)  # the old name
    np.testing.assert_array_equal(old, pwms)
    np.testing.assert_array_equal(old_info["activation"], info["activation"])
    with pytest.raises(ArgumentError, match=r"^n_init: expected restarts= alone"):
        channel_motifs(model, "2", seqs, n_init=4, restarts=4)
    with pytest.raises(ArgumentError, match=r"^restarts: expected an integer >= 1, got 0$"):
        channel_motifs(model, "2", seqs, restarts=0)


def test_deepmotif_finds_the_class_motif():
    kmer = "CACGTGAC"
    model = nn.Sequential(planted_conv(kmer), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(3, 1))
    with torch.no_grad():
        model[-1].weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))
    model.append(nn.Sigmoid())
    pwms, info = deepmotif(model, length=40, n_starts=16, steps=150, width=12, n_best=3)
    assert pwms.shape == (3, 4, 12)
    assert all(np.diff(info["scores"]) <= 0)
    assert kmer in consensus(pwms[0])
    with pytest.raises(ArgumentError, match=r"^length: expected the input length for a model that is not an imported "
                                            r"Keras model, got None for a Sequential$"):
        deepmotif(model)
    with pytest.raises(ArgumentError, match=r"^n_best: expected an integer in \[1, 4\], got 5$"):
        deepmotif(model, length=40, n_starts=4, n_best=5)
    with pytest.raises(ArgumentError, match=r"^width: expected an integer in \[1, 40\], got 41$"):
        deepmotif(model, length=40, width=41)
    with pytest.raises(ArgumentError,
                       match=r"^cls: expected an output index in \[0, 0\] \(the model has 1 outputs\), got 3$"):
        deepmotif(model, length=40, cls=3, steps=0)


def test_motifs_main_writes_meme_and_tomtom(tmp_path):
    kmer = "CCGCGAGGGCGC"
    model = nn.Sequential(planted_conv(kmer), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(3, 1))
    torch.jit.script(model).save(str(tmp_path / "m.pt"))
    df = match_channels(load_model(tmp_path / "m.pt"), tmp_path / "out", jaspar_release="JASPAR2016", n_matches=2)
    assert len(df) == 3 * 2 and set(df["query"]) == {"ch0", "ch1", "ch2"}
    assert (tmp_path / "out" / "channels.meme").exists()
    assert (tmp_path / "out" / "tomtom_JASPAR2016.tsv").read_text().startswith("query\ttarget\tp_value")
    assert consensus(read_meme(tmp_path / "out" / "channels.meme")["ch0"]) == kmer
    with pytest.raises(ArgumentError, match=r"^inputs: expected one-hot sequences for layer='2'"):
        match_channels(load_model(tmp_path / "m.pt"), tmp_path / "out", layer="2")
