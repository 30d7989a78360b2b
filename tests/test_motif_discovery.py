"""Motif discovery of the interaction analysis (the word scan, group PWMs, copies, JASPAR matches) on hand-built
detector networks whose motifs and logic are known exactly.

A detector channel is a convolution filter equal to a motif's one-hot with bias ``-(len - 1 - slack)``: its ReLU
output is ``slack + 1`` on the motif, one less per mismatch, 0 below ``len - 1 - slack`` matches; the convolution
is zero-padded (a motif is seen wherever it is written, up to the input's ends), a global max-pool follows, then
the head.
"""

import re
from collections import OrderedDict

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from deepresolve.interaction_analysis import interactions
from deepresolve.interaction_analysis.network import random_sequences, split_network, write_words
from deepresolve.interaction_analysis.players import COPIES
from deepresolve.interaction_analysis.words import WordReader
from deepresolve.io.sequences import one_hot
from deepresolve.results import Interactions, groups_long, pairs_long
from deepresolve.viz.interactions import group_logos

#: JASPAR2024 MA0138.3 REST, its consensus: 20 bp, no other JASPAR motif close to it (Tomtom q 1e-7 against 0.76).
REST = "TCAGCACCATGGACAGCGCC"
MOTIF, OTHER = "GATTACAG", "CCGTCAAT"


pytestmark = pytest.mark.usefixtures("one_thread")


def detectors(motifs, length, head, *, slack=0, width=None):
    """conv1 (a detector per motif, ``width`` columns, motif at the left, zero columns after; zero-padded) ->
    relu1 -> pool1 (global max) -> flatten -> ``head`` (a list of (name, module))."""
    width = width or max(len(m) for m in motifs)
    conv = nn.Conv1d(4, len(motifs), width, padding=width - 1)
    with torch.no_grad():
        conv.weight.zero_()
        for k, m in enumerate(motifs):
            conv.weight[k, :, :len(m)] = torch.from_numpy(one_hot(m)[0])
            conv.bias[k] = -(len(m) - 1 - slack)
    return nn.Sequential(OrderedDict([("conv1", conv), ("relu1", nn.ReLU()),
                                      ("pool1", nn.MaxPool1d(length + width - 1)), ("flatten", nn.Flatten()),
                                      *head])).eval()


def linear(weight, bias):
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight[:] = torch.tensor(weight, dtype=torch.float32)
        layer.bias[:] = torch.tensor(bias, dtype=torch.float32)
    return layer


def rc(motif):
    return motif[::-1].translate(str.maketrans("ACGT", "TGCA"))


def words_of(res):
    """Each group's word as a string, without the columns that keep the background base."""
    return [name.split(" (")[0] for name in res.group_names]


def reader_of(model, length, width):
    net = split_network(model, "pool1", length=length, at="output", scale="logit", device=torch.device("cpu"))
    return WordReader(net.body, net.head, net.map_shape, length, width, rng=np.random.default_rng(0), probes=32,
                      device=net.device, batch=4096)


def copies_model():
    # MOTIF and its reverse complement read alike (channels 0 and 1 enter the head's first map the same way);
    # OTHER differently. Detectors fire from 5 of 8 bases on, so mismatched and partial copies are read too.
    head = [("dense", linear([[1, 1, 0], [1, 1, -1], [0, 0, 1]], [0, 0, 0]))]
    return detectors([MOTIF, rc(MOTIF), OTHER], 40, head, slack=3)


def test_shifted_mismatched_partial_and_reverse_complement_copies_are_copies_a_distinct_motif_is_not():
    model = copies_model()
    words = [MOTIF, "CT" + MOTIF[:6], MOTIF[:3] + "C" + MOTIF[4:], rc(MOTIF), MOTIF[2:], OTHER]
    found = reader_of(model, 40, 8).describe([one_hot(w)[0] for w in words])
    copies = found.copies(COPIES)
    assert copies[0, 1:5].all(), copies  # shifted, mismatched, reverse complement, fragment: one motif
    assert not copies[5, :5].any() and copies[5, 5]


def test_the_scan_merges_the_copies_of_a_motif_into_one_group():
    res = interactions(copies_model(), "pool1", input_shape=(4, 40), contexts=8, word_length=6, jaspar=None, seed=0)
    # the scan reads shifted, mismatched and reverse-complement k-mers of MOTIF (the detectors fire from 5 of 8
    # bases on); one group remains for it, and one for OTHER
    found = words_of(res)
    assert len(found) == 2 and OTHER in found and ({MOTIF, rc(MOTIF)} & set(found))
    assert not res.group_copies[0, 1]
    assert int(re.search(r"([\d,]+) copies merged", res.params["on_levels"])[1].replace(",", "")) > 0


def test_given_copies_of_one_motif_are_flagged():
    # a user's words: channel 0's MOTIF, channel 1's its reverse complement (the filter groups keep them apart:
    # neither channel fires on the other's word), channel 2's OTHER
    model = copies_model()
    given = one_hot([MOTIF, rc(MOTIF), OTHER])
    res = interactions(model, "pool1", input_shape=(4, 40), words=given, contexts=8, jaspar=None, seed=0)
    assert res.n_groups == 3
    np.testing.assert_array_equal(res.group_copies, [[1, 1, 0], [1, 1, 0], [0, 0, 1]])


def test_a_long_motif_is_found_whole_and_matched_to_jaspar():
    # an exact detector of REST's 20-bp consensus in a 21-bp filter: no shorter word reads anything, the filter's
    # word does; its 21st base, which the network ignores, is trimmed
    model = detectors([REST], 60, [("dense", linear([[1.0]], [0.0]))], width=21)
    res = interactions(model, "pool1", input_shape=(4, 60), contexts=8, word_length=6, seed=0)
    assert words_of(res) == [REST]
    pwm = res.group_pwms[0][:, res.group_words[0].sum(0) > 0]
    assert "".join("ACGT"[b] for b in pwm.argmax(0)) == REST and pwm.max(0).min() > 0.9
    best = res.group_matches[(res.group_matches.group == 0) & (res.group_matches["rank"] == 1)].iloc[0]
    assert best.target == "MA0138.3 REST" and best.q_value < 1e-3
    assert res.group_best_matches[0].startswith("MA0138.3 REST (q=")
    assert "MA0138.3 REST" in res.summary()
    groups = groups_long(res)
    assert groups.loc[0, "word"] == REST and groups.loc[0, "match_1"] == "MA0138.3 REST"
    assert groups.loc[0, "pwm_consensus"] == REST and groups.loc[0, "copy_of"] == ""
    fig = group_logos(res)
    assert [im.get_gid() for ax in fig.axes for im in ax.get_images()] == ["group_logo"]
    assert "MA0138.3 REST" in fig.axes[0].get_title("left")


def test_a_word_grows_to_the_whole_motif_its_fragment_is_read_in():
    # a soft detector of REST (it fires from 12 of 20 bases on): an 8-mer of it reads a little, and every base
    # of the motif added on either side raises the read; growth stops at the motif's ends
    model = detectors([REST], 100, [("dense", linear([[1.0]], [0.0]))], slack=8, width=21)
    reader = reader_of(model, 100, 21)
    seed = one_hot(REST[6:14])[0]
    read = float(reader.measure([seed])[0][0])
    word, grown = reader.extend(seed, read, rise=0.05)
    word, trimmed, _ = reader.trim(word, grown, flank=0.1)
    assert "".join("ACGT"[b] for b in word.argmax(0)) == REST and trimmed > 3 * read


def test_a_partner_with_no_effect_alone_gets_its_group():
    # relu(a + b - 1) on exact detectors of a 6-bp and a 12-bp motif: neither changes the output alone, the
    # scan still reads both (it reads the head's first linear map, before the ReLU, and needs no class)
    model = detectors(["CAGGTC", "TTAGCAGATACG"], 60, [("dense", linear([[1.0, 1.0]], [-1.0])), ("relu", nn.ReLU())])
    res = interactions(model, "pool1", input_shape=(4, 60), contexts=32, context_on=0, word_length=6, jaspar=None,
                       seed=0)
    assert sorted(words_of(res)) == ["CAGGTC", "TTAGCAGATACG"]
    np.testing.assert_allclose(res.group_main, 0, atol=0.1)  # no effect alone (in random backgrounds)
    g = words_of(res).index("CAGGTC")
    t = res.truth_table(0, g, 1 - g, level="group")
    np.testing.assert_allclose(t, [[0, 0], [0, 1]], atol=0.1)  # the 6-bp word keeps the background around it


def test_a_word_s_zero_columns_keep_the_background_base():
    x = random_sequences(np.random.default_rng(0), 2, 12)
    before = x.clone()
    word = torch.zeros(4, 5)
    word[:, 1:4] = torch.from_numpy(one_hot("ACG")[0])
    write_words(x, torch.tensor([1]), word[None], torch.tensor([4]))
    assert torch.equal(x[0], before[0])
    assert torch.equal(x[1, :, [4, 8]], before[1, :, [4, 8]]) and torch.equal(x[1, :, 5:8], word[:, 1:4])


def test_group_pwms_copies_and_matches_are_saved_and_old_files_still_load(tmp_path):
    model = detectors([REST], 60, [("dense", linear([[1.0]], [0.0]))], width=21)
    res = interactions(model, "pool1", input_shape=(4, 60), contexts=8, word_length=6, seed=0)
    res.save(tmp_path / "i.h5")
    back = Interactions.load(tmp_path / "i.h5")
    np.testing.assert_array_equal(back.group_pwms, res.group_pwms)
    np.testing.assert_array_equal(back.group_copies, res.group_copies)
    assert back.group_matches.equals(res.group_matches) and back.params["jaspar"] == "JASPAR2024"
    assert pairs_long(back).equals(pairs_long(res))
    with h5py.File(tmp_path / "i.h5", "a") as f:  # as written before PWMs, copies and matches were kept
        for name in ("group_pwms", "group_copies", "group_matches"):
            del f["interactions"][name]
    old = Interactions.load(tmp_path / "i.h5")
    assert old.group_pwms is None and old.group_matches is None
    assert (old.group_copies == np.eye(old.n_groups, dtype=bool)).all()  # no copies marked
    assert old.group_best_matches == [""] and "JASPAR" not in old.summary()
