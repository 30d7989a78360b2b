"""Multiple testing and contexts of the feature-interaction analysis.

Benjamini-Hochberg q-values (against hand-computed values and scipy's), significance judged by q, files written
before q-values load; contexts that do not depend on how many copies of a motif were found, nor on the groups'
order; motif groups given as words (from Python and from a MEME file on the command line).
"""

import dataclasses
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from scipy.stats import false_discovery_control
from typer.testing import CliRunner

import deepresolve.interaction_analysis.analysis as analysis
from deepresolve.cli import app
from deepresolve.errors import DeepResolveError
from deepresolve.interaction_analysis import interactions
from deepresolve.interaction_analysis.contexts import Contexts, choose_coalition, group_draws
from deepresolve.paper.fixtures import load_fixture
from deepresolve.paper.logic import hand_built
from deepresolve.results import Interactions, bh_qvalues

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SET_ONE = ("CAGGTC", "GCTCAT", "CGCTTG")  # CAGGTC AND (GCTCAT XOR CGCTTG)


def one_hot(word: str) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[["ACGT".index(b) for b in word]].T.copy()


def words_of(*texts: str) -> np.ndarray:
    return np.stack([one_hot(t) for t in texts])


def decode_word(word: np.ndarray) -> str:
    """The bases of a one-hot word (4, w), zero columns left out."""
    return "".join("ACGT"[b] for b in word.argmax(0)[word.sum(0) > 0])


def made_up(pvalues: np.ndarray, group_pvalues: np.ndarray, **params) -> Interactions:
    """A result of one channel per group with the given p-values (C, P) over all pairs of P channels' worth."""
    C, P = pvalues.shape
    K = int(round((1 + np.sqrt(1 + 8 * P)) / 2))
    pairs = np.array([(i, j) for i in range(K) for j in range(i + 1, K)])
    tables = np.zeros((C, P, 2, 2))
    tables[..., 1, 1] = 1.0  # an AND in every pair
    return Interactions(classes=np.arange(C), class_names=[f"c{c}" for c in range(C)],
                        channel_names=[f"ch{k}" for k in range(K)], groups=np.arange(K), main=np.zeros((C, K)),
                        pairs=pairs, values=np.ones((C, P)), pvalues=pvalues, tables=tables,
                        group_main=np.zeros((C, K)), group_pairs=pairs, group_values=np.ones((C, P)),
                        group_pvalues=group_pvalues, group_tables=tables, on_levels=np.ones(K),
                        words=words_of(*["ACGTAC"] * K), group_words=words_of(*["ACGTAC"] * K), layer="h",
                        params=dict(contexts=8, scale="logit", margin=0.1, **params))


# ---------------------------------------------------------------------------------------------------------------
# q-values


def test_bh_qvalues_are_the_hand_computed_ones_and_scipys():
    p = np.array([[0.01, 0.04, 0.03, 0.5], [0.001, 0.2, 0.02, 0.9]])
    # class 0 sorted: 0.01, 0.03, 0.04, 0.5 -> p m / rank 0.04, 0.06, 0.0533, 0.5 -> running minimum from the top
    np.testing.assert_allclose(bh_qvalues(p)[0], [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    for c in range(2):
        np.testing.assert_allclose(bh_qvalues(p)[c], false_discovery_control(p[c]))
    np.testing.assert_allclose(bh_qvalues(p, family="all").ravel(), false_discovery_control(p.ravel()))
    # a pair without a test (NaN) is left out of the family
    with_nan = np.array([[0.01, np.nan, 0.04, 0.03, 0.5]])
    q = bh_qvalues(with_nan)
    assert np.isnan(q[0, 1]) and np.allclose(np.delete(q[0], 1), [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert bh_qvalues(np.zeros((2, 0))).shape == (2, 0)
    with pytest.raises(DeepResolveError, match="family: expected one of 'class', 'all', got 'pair'"):
        bh_qvalues(p, family="pair")


def test_qvalues_are_monotone_in_p_and_never_below_it():
    p = np.random.default_rng(0).uniform(size=(3, 200)) ** 3
    for family in ("class", "all"):
        q = bh_qvalues(p, family=family)
        assert np.all(q >= p)
        rows = [slice(None)] if family == "all" else range(3)
        for r in rows:
            order = np.argsort(p[r], axis=None)
            assert np.all(np.diff(q[r].ravel()[order]) >= 0)


def test_significance_is_judged_by_q_of_the_chosen_family():
    # class 0: one small p among nine large ones (p < 0.05 but q = 10 p > 0.05); class 1: every pair small
    p = np.full((2, 10), 0.6)
    p[0, 0] = 0.04
    p[1] = np.linspace(0.001, 0.01, 10)
    res = made_up(p, p.copy(), significance=0.05)
    np.testing.assert_allclose(res.qvalues, bh_qvalues(p))
    np.testing.assert_allclose(res.group_qvalues_all, bh_qvalues(p, family="all"))
    df = res.table(0, top=None)
    row = df[(df.i == 0) & (df.j == 1)].iloc[0]
    assert row.pvalue == 0.04 and row.qvalue == pytest.approx(0.4) and not row.significant
    assert res.table(1, top=None)["significant"].all()
    assert "no significant pair" in res.summary().splitlines()[1]
    # over all 20 pairs of both classes the class-1 pairs stay significant and the class-0 pair does not
    pooled = made_up(p, p.copy(), significance=0.05, fdr="all")
    assert pooled.fdr == "all" and pooled.table(1, top=None)["significant"].all()
    np.testing.assert_allclose(pooled.table(1, top=None)["qvalue_all"].sort_values(),
                               np.sort(bh_qvalues(p, family="all")[1]))
    assert np.isnan(res.group_qvalue[0, 0, 0]) and res.group_qvalue[0, 0, 1] == pytest.approx(0.4)


def test_heatmap_dots_follow_q(tmp_path):
    from deepresolve.viz.interactions import heatmap

    p = np.full((1, 10), 0.6)
    p[0, 0] = 0.04  # p below the level, q not
    p[0, 1] = 1e-4
    res = made_up(p, p.copy(), significance=0.05)
    fig = heatmap(res, 0)
    dots = [c for c in fig.axes[0].collections if c.get_gid() == "significant"]
    assert len(dots[0].get_offsets()) == 2  # pair (0, 2) only, at both of its cells


def test_files_without_q_values_load_with_q_from_p_and_current_files_need_no_scipy(tmp_path):
    p = np.random.default_rng(1).uniform(size=(2, 6)) ** 2
    res = made_up(p, p[:, ::-1].copy(), significance=0.05)
    res.save(tmp_path / "new.h5")
    res.save(tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "a") as f:  # as written before q-values and copies were stored
        for name in Interactions._LATER_ARRAYS:
            if name in f["interactions"]:
                del f["interactions"][name]
    for path in ("new.h5", "old.h5"):
        back = Interactions.load(tmp_path / path)
        for name in ("qvalues", "group_qvalues", "qvalues_all", "group_qvalues_all"):
            np.testing.assert_allclose(getattr(back, name), getattr(res, name))
        np.testing.assert_array_equal(back.group_copies, np.eye(4, dtype=bool))
        assert back.table(0).equals(res.table(0))
    code = (f"import sys; from deepresolve.results import Interactions; "
            f"Interactions.load({str(tmp_path / 'new.h5')!r}); print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_old_alpha_parameter_still_sets_the_level_of_q():
    res = made_up(np.array([[0.001, 0.02, 0.6]]), np.array([[0.001, 0.02, 0.6]]), alpha=0.01)
    assert res.significance == 0.01
    assert res.table(0, top=None)["significant"].tolist() == [True, False, False]  # q: 0.003, 0.03, 0.6


# ---------------------------------------------------------------------------------------------------------------
# Contexts


def test_a_groups_coins_depend_on_its_word_only():
    words = words_of("CAGGTC", "GCTCAT", "CGCTTG", "TTAGCA")
    coin, priority = group_draws(3, words, 64, 1 / 3)
    assert coin.shape == priority.shape == (64, 4) and 0.2 < coin.mean() < 0.45
    # other groups, their number and their order change nothing of a group's column
    order = [2, 0, 3]
    coin2, priority2 = group_draws(3, words[order], 64, 1 / 3)
    np.testing.assert_array_equal(coin2, coin[:, order])
    np.testing.assert_array_equal(priority2, priority[:, order])
    # fewer contexts: the first ones; another seed: other draws
    np.testing.assert_array_equal(group_draws(3, words, 10, 1 / 3)[0], coin[:10])
    assert not np.array_equal(group_draws(4, words, 64, 1 / 3)[1], priority)


def test_the_coalition_takes_distinct_motifs():
    n, G = 8, 4
    ctx = Contexts(sequences=torch.zeros(n, 4, 20), starts=torch.zeros(n, 3, dtype=torch.long),
                   positions=torch.zeros(n, 1, dtype=torch.long), coin=torch.ones(n, G, dtype=torch.bool),
                   priority=torch.rand(n, G, dtype=torch.float64))
    strength = np.array([[0.5, 1.0, 0.9, 0.2]])
    copies = np.eye(G, dtype=bool)
    copies[1, 2] = copies[2, 1] = True  # group 2 is a copy of group 1
    present, chosen = choose_coalition(ctx, strength, 3, copies)
    assert chosen.tolist() == [1, 0, 3]
    assert present[:, [0, 1, 3]].all() and not present[:, 2].any()


@pytest.fixture(scope="module")
def set_one():
    model, _ = load_fixture("set_one")
    return model


def without_copies(monkeypatch):
    """Leave every group unmarked (the identity), as if the analysis did not recognise copies."""
    found = analysis.find_players

    def patched(*args, **kwargs):
        players = found(*args, **kwargs)
        return dataclasses.replace(players, copies=np.eye(players.n_groups, dtype=bool))

    monkeypatch.setattr(analysis, "find_players", patched)


def test_a_shifted_copy_of_a_motif_changes_no_other_pair(set_one):
    # set I's three motifs given as words, then again with GCTCAT shifted by one base as a fourth group: the analysis
    # finds it is a copy (the network reads it as GCTCAT), and every pair of the three motifs (all three interact)
    # keeps its interaction within 10 % (the contexts are the same ones)
    words = words_of(*(m + "T" for m in SET_ONE))
    alone = interactions(set_one, "pool1", input_shape=(4, 40), motif_words=words, seed=0)
    copied = interactions(set_one, "pool1", input_shape=(4, 40), seed=0,
                          motif_words=np.concatenate([words, words_of("TGCTCAT")]))
    assert copied.params["motif_words"] == "given" and copied.group_copies[1, 3]
    assert alone.params["coalition_groups"] == copied.params["coalition_groups"] == [0, 1, 2]
    first, second = alone.group_matrix[0], copied.group_matrix[0][:3, :3]
    assert np.abs(first[np.triu_indices(3, 1)]).min() > 0.1  # three real interactions
    np.testing.assert_allclose(second, first, rtol=0.1)
    # the channel pairs too (a channel of GCTCAT may join the copy's group: it drops the same groups)
    both = {tuple(p): v for p, v in zip(copied.pairs.tolist(), copied.values[0])}
    common = [(v, both[tuple(p)]) for p, v in zip(alone.pairs.tolist(), alone.values[0]) if tuple(p) in both]
    assert len(common) >= 10
    np.testing.assert_allclose(*np.array(common).T[::-1], rtol=0.1, atol=1e-3)
    # the copy's pair with its motif is named for what it is
    df = copied.table(0, top=None)
    assert df[(df.i == 1) & (df.j == 3)]["kind"].item() == "redundant (copies of one motif)"


def test_a_copy_left_unmarked_would_change_the_pairs(set_one, monkeypatch):
    # what the copies matrix prevents: the copy joins the coalition and switches GCTCAT on where it is meant to be off
    without_copies(monkeypatch)
    words = words_of(*(m + "T" for m in SET_ONE))
    alone = interactions(set_one, "pool1", input_shape=(4, 40), motif_words=words, seed=0)
    copied = interactions(set_one, "pool1", input_shape=(4, 40), seed=0,
                          motif_words=np.concatenate([words, words_of("TGCTCAT")]))
    assert 3 in copied.params["coalition_groups"]
    pair = alone.group_matrix[0, 0, 1]  # CAGGTC x GCTCAT
    assert abs(copied.group_matrix[0, 0, 1] - pair) > 0.5 * abs(pair)


def test_the_groups_order_changes_nothing(set_one):
    words = words_of(*(m + "T" for m in SET_ONE))
    order = [2, 0, 1]
    a = interactions(set_one, "pool1", input_shape=(4, 40), motif_words=words, seed=0)
    b = interactions(set_one, "pool1", input_shape=(4, 40), motif_words=words[order], seed=0)
    np.testing.assert_allclose(b.group_matrix[0], a.group_matrix[0][np.ix_(order, order)], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.group_main, a.group_main[:, order], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.where(b.groups >= 0, np.array(order)[b.groups], -1), a.groups)


# ---------------------------------------------------------------------------------------------------------------
# Motif groups given as words


def test_given_motif_words_are_the_groups_and_channels_join_their_motifs():
    # exact detectors of the two motifs of an XOR head: channel k joins motif k's group, shorter words end in zero
    # columns (the background's bases)
    words = np.zeros((2, 4, 7), np.float32)
    words[0, :, :6], words[1, :, 1:] = one_hot("GCTCAT"), one_hot("CGCTTG")
    res = interactions(hand_built("abs"), "pool1", input_shape=(4, 40), motif_words=words, contexts=48, seed=0)
    assert res.groups.tolist() == [0, 1] and res.params["motif_words"] == "given"
    # each word kept, centred in the words' common width (zero columns keep the background's bases)
    assert [decode_word(w) for w in res.group_words] == ["GCTCAT", "CGCTTG"]
    np.testing.assert_allclose(res.truth_table(0, 0, 1, level="group"), [[0, 1], [1, 0]], atol=0.125)
    assert res.table(0)["significant"][0] and res.table(0)["kind"][0] == "XOR-like"


@pytest.mark.parametrize("kw, match", [
    (dict(motif_words=np.full((2, 4, 6), 0.25)), "motif_words: expected one-hot words"),
    (dict(motif_words=words_of("ACGTACGTACGTACGTACGTA")), r"motif_words: expected at least one word of 1 to 20 bp"),
    (dict(motif_words=np.zeros((0, 4, 6))), r"motif_words: expected at least one word"),
    (dict(motif_words=np.zeros((1, 4, 6))), "motif_words: expected one-hot words"),
    (dict(motif_words=words_of("GCTCAT"), groups=[0, 0]), "groups: expected None with motif_words given as words"),
    (dict(motif_words="kmers"), "motif_words: expected one of 'filters', 'scan', got 'kmers'"),
    (dict(fdr="pairs"), "fdr: expected one of 'class', 'all', got 'pairs'"),
])
def test_bad_motif_words_and_fdr_are_refused(kw, match):
    with pytest.raises(DeepResolveError, match=match):
        interactions(hand_built("abs"), "pool1", input_shape=(4, 40), seed=0, **kw)


def factory():
    return hand_built("abs")


def test_cli_reads_motif_groups_from_a_meme_file(tmp_path):
    from deepresolve.motifs import write_meme

    pwms = [np.full((4, 6), 0.1) + 0.6 * one_hot("GCTCAT"), np.full((4, 5), 0.1) + 0.6 * one_hot("CGCTT")]
    write_meme(pwms, ["gctcat", "cgctt"], tmp_path / "known.meme")
    args = ["interactions", "tests.test_interaction_contexts:factory", "--layer", "pool1", "--input-shape", "4,40",
            "--contexts", "16", "--motifs", str(tmp_path / "known.meme")]
    out = CliRunner().invoke(app, args + ["--out", str(tmp_path / "o"), "--fdr", "all"])
    assert out.exit_code == 0, out.output
    res = Interactions.load(tmp_path / "o" / "interactions.h5")
    want = np.zeros((2, 4, 6), np.float32)
    want[0], want[1, :, :5] = one_hot("GCTCAT"), one_hot("CGCTT")
    np.testing.assert_array_equal(res.group_words, want)
    assert res.params["fdr"] == "all" and res.params["significance"] == 0.05
    refused = CliRunner().invoke(app, args + ["--out", str(tmp_path / "p"), "--motif-words", "filters"])
    assert refused.exit_code != 0 and "--motif-words: expected none with --motifs" in str(refused.exception)


def test_rows_evaluated_together_give_what_each_row_gives_alone(set_one, monkeypatch):
    # the shared engine evaluates a row once however many pairs need it (v(S) and v(S + i) of a context's pairs)
    # and the body once for rows that differ only in channels: every row's logits must equal the row's alone
    original = analysis.Evaluator.__call__
    calls = []

    def checked(ev, ctx, on, drop):
        together = original(ev, ctx, on, drop)
        picked = torch.arange(0, len(ctx), 11)
        alone = torch.cat([original(ev, ctx[i:i + 1], on[i:i + 1], drop[i:i + 1]) for i in picked])
        torch.testing.assert_close(together[picked], alone, rtol=1e-5, atol=1e-5)
        keys, _ = ev._rows(ctx, on, drop)
        calls.append((len(ctx), len(torch.unique(keys, dim=0))))
        return together

    monkeypatch.setattr(analysis.Evaluator, "__call__", checked)
    words = words_of(*(m + "T" for m in SET_ONE))
    res = interactions(set_one, "pool1", input_shape=(4, 40), motif_words=words, contexts=16, seed=0)
    assert res.values.shape[1] > 10 and res.group_values.shape[1] == 3 and len(calls) >= 3
    rows, distinct = calls[-1]  # the pairs: 4 rows per pair and context, v(S) and v(S + i) shared
    assert distinct < 0.6 * rows
