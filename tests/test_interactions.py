"""Feature interactions: analytic hand-built heads, committed trained logic fixtures, result I/O, errors.

The trained models are committed state dicts (``tests/fixtures/logic``, made by ``scripts/make_fixtures.py``,
which checked that each implements its logic): the assertions on them are deterministic on any CPU. The
multi-seed study is ``benchmarks/interactions_logic.py``.
"""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from deepresolve.errors import DeepResolveError
from deepresolve.interaction_analysis import interactions, motif_groups
from deepresolve.paper.logic import CASES, check_logic, hand_built, word_motifs
from deepresolve.results import Interactions, kind

FIXTURES = Path(__file__).parent / "fixtures" / "logic"


pytestmark = pytest.mark.usefixtures("one_thread")


def run_hand_built(form, **kw):
    kw.setdefault("contexts", 48)
    kw.setdefault("seed", 0)
    return interactions(hand_built(form), "pool1", input_shape=(4, 40), **kw)


# ---------------------------------------------------------------------------------------------------------------
# Analytic oracles


@pytest.mark.parametrize("form, table, value, name", [
    ("abs", [[0, 1], [1, 0]], -2, "XOR-like"),
    ("relu", [[0, 1], [1, 0]], -2, "XOR-like"),     # the form whose penalised ascent optimum hides the XOR
    ("minmax", [[0, 1], [1, 0]], -2, "XOR-like"),
    ("and", [[0, 0], [0, 1]], +1, "synergy (AND-like)"),
    ("or", [[0, 1], [1, 1]], -1, "redundant (OR-like)"),
])
def test_hand_built_heads_give_their_analytic_truth_tables(form, table, value, name):
    res = run_hand_built(form)
    # 0/1 detectors: the only deviation is a chance occurrence of a motif in a random 40-bp background (about 2 %
    # of contexts, so up to 6 of 48 here)
    np.testing.assert_allclose(res.truth_table(0, 0, 1), table, atol=0.125)
    assert res.values[0, 0] == pytest.approx(value, abs=0.25)  # four cells, each off by chance occurrences
    assert res.pvalues[0, 0] < 1e-6
    assert res.params["scale"] == "logit"  # no sigmoid in these models: the raw output
    assert res.table(0, level="channel")["kind"][0] == name
    np.testing.assert_allclose(res.on_levels, 1.0)  # exact filter maxima: one-hot motif, bias -(w - 1)


def test_word_scan_keeps_two_motifs_that_share_a_run_of_bases_apart():
    # exact detectors of CGCTCA and CGCTTG (they share CGCT, as set I's GCTCAT after a C shares it with CGCTTG):
    # each motif is its own group, with its own channel; a rule on whole words (a shared run of 4) merged them and
    # kept only a fragment of CGCTTG, which its detector does not fire on
    motifs = ("CGCTCA", "CGCTTG")
    res = interactions(hand_built("abs", motifs=motifs), "pool1", input_shape=(4, 40), contexts=8, seed=0)
    words = ["".join("ACGT"[b] for b in w.argmax(0)) for w in res.group_words]
    assert sorted(words) == sorted(motifs)
    assert [words[g] for g in res.groups] == list(motifs)  # channel k detects motif k


def test_a_player_hidden_by_the_sigmoid_is_paired_through_its_logit_effect():
    # logit = 10 a + 2 b - 5 on exact detectors: b moves the probability by ~0.04 against a's ~0.98 (under
    # min_effect = 10 % of the largest), its logit by 2 against 10 (20 %): it is paired, and the pair, additive in
    # logits, is not a significant interaction (the sigmoid's saturation gives it at most -0.035)
    from collections import OrderedDict

    parts = hand_built("and")
    dense = torch.nn.Linear(2, 1)
    with torch.no_grad():
        dense.weight[:] = torch.tensor([[10.0, 2.0]])
        dense.bias.fill_(-5.0)
    model = torch.nn.Sequential(OrderedDict([("conv1", parts.conv1), ("relu1", parts.relu1), ("pool1", parts.pool1),
                                             ("flatten", torch.nn.Flatten()), ("dense", dense),
                                             ("sigmoid", torch.nn.Sigmoid())])).eval()
    res = interactions(model, "pool1", input_shape=(4, 40), contexts=48, seed=0)
    assert res.params["scale"] == "probability"
    main = np.abs(res.group_main[0])
    assert main.min() < 0.1 * main.max()  # what used to drop b: its effect on the probability alone
    assert res.group_pairs.tolist() == [[0, 1]] and res.pairs.tolist() == [[0, 1]]
    t = res.truth_table(0, 0, 1, level="group")
    sig = torch.sigmoid(torch.tensor([[-5.0, -3.0], [5.0, 7.0]])).numpy()
    np.testing.assert_allclose(t, sig, atol=0.08)  # as above: chance occurrences in a random background
    assert sig[1, 1] - sig[1, 0] - sig[0, 1] + sig[0, 0] - 0.01 < res.group_values[0, 0] < 0
    assert not res.table(0)["significant"][0]


def test_truth_table_is_transposed_for_the_swapped_pair_and_matrix_is_symmetric():
    res = run_hand_built("and")
    np.testing.assert_array_equal(res.truth_table(0, 1, 0), res.truth_table(0, 0, 1).T)
    m = res.matrix
    assert m.shape == (1, 2, 2) and np.all(np.diag(m[0]) == 0) and m[0, 0, 1] == m[0, 1, 0] == res.values[0, 0]
    assert np.isnan(res.pvalue[0, 0, 0])
    with pytest.raises(DeepResolveError, match="not evaluated"):
        res.truth_table(0, 0, 0)


def test_kind_names_truth_tables():
    assert kind(np.array([[0, 1], [1, 0]])) == "XOR-like"
    assert kind(np.array([[0, 1], [1, 1]])) == "redundant (OR-like)"
    assert kind(np.array([[0, 0], [0, 1]])) == "synergy (AND-like)"
    assert kind(np.array([[0, 0], [1, 0]])) == "veto (NOT-like)"  # a on raises, b vetoes it
    assert kind(np.array([[0, 1], [-1, -1]])) == "veto (NOT-like)"  # a lowers it and cancels b's effect
    assert kind(np.array([[0, -1], [-1, -1]])) == "redundant repression (saturation)"
    assert kind(np.array([[0, -1], [-1, -3]])) == "synergistic repression"


def test_motif_groups_join_mutually_responding_channels_only():
    # 0 and 1 fire on each other's words; 2 fires on 0's word but 0 not on 2's: not one motif
    resp = np.array([[1.0, 0.8, 0.9], [0.7, 1.0, 0.0], [0.1, 0.0, 1.0]])
    np.testing.assert_array_equal(motif_groups(resp, np.ones(3)), [0, 0, 1])


# ---------------------------------------------------------------------------------------------------------------
# Committed trained fixtures


def load_fixture(name):
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    case = CASES[meta["case"]]
    model = case.model()
    if case.regression:
        model = model[:-1]
    model.load_state_dict(torch.load(FIXTURES / f"{name}.pt", weights_only=True))
    return case, model.eval(), meta


@pytest.fixture(scope="module")
def fixture_results():
    out = {}
    for name in ("xor40", "not", "or"):
        case, model, meta = load_fixture(name)
        out[name] = (case, model, interactions(model, case.layer, input_shape=(4, case.length), seed=0))
    return out


def top_group_pair(res, case):
    g_motif = word_motifs(res.group_words, case.motifs)
    row = res.table(0, level="group").iloc[0]
    return {g_motif[row["i"]], g_motif[row["j"]]}, row


@pytest.mark.parametrize("name", ["xor40", "not", "or"])
def test_trained_logic_fixture_top_group_pair_is_the_true_pair_with_its_sign(fixture_results, name):
    case, _, res = fixture_results[name]
    (pair, sign), = case.pairs.items()
    motifs, row = top_group_pair(res, case)
    assert motifs == set(pair)
    assert np.sign(row["interaction"]) == sign and row["significant"]
    assert res.params["scale"] == "probability"  # the models end in a sigmoid


def test_trained_xor_fixture_truth_table_is_xor_not_redundancy(fixture_results):
    case, _, res = fixture_results["xor40"]
    _, row = top_group_pair(res, case)
    assert row["kind"] == "XOR-like"
    t = res.truth_table(0, row["i"], row["j"], level="group")
    # each motif alone raises the probability; both together bring it back near the baseline (an OR stays high)
    assert t[1, 0] > t[0, 0] + 0.2 and t[0, 1] > t[0, 0] + 0.2
    assert t[1, 1] - t[0, 0] < 0.25 * min(t[1, 0] - t[0, 0], t[0, 1] - t[0, 0])


def test_trained_not_fixture_top_pair_is_a_veto(fixture_results):
    case, _, res = fixture_results["not"]
    _, row = top_group_pair(res, case)
    assert row["kind"] == "veto (NOT-like)"


def test_fixtures_implement_their_logic():
    # the fixture script checked this on the test split; the committed weights must still pass on fresh data
    for name in ("xor40", "not", "or"):
        case, model, meta = load_fixture(name)
        data = case.data(1000)
        ok, rows = check_logic(model, data.subset(np.arange(2000)))
        assert ok, (name, rows)


def test_additive_fixture_has_no_significant_pair_between_motifs():
    case, model, meta = load_fixture("additive")
    res = interactions(model, case.layer, input_shape=(4, case.length), seed=0)
    assert res.params["scale"] == "logit"
    g_motif = word_motifs(res.group_words, case.motifs)
    df = res.table(0, level="group", top=None)
    between = [r for r in df.itertuples() if g_motif[r.i] and g_motif[r.j] and g_motif[r.i] != g_motif[r.j]]
    assert between, "the additive model's motif groups were not found"
    assert not any(r.significant for r in between)


# ---------------------------------------------------------------------------------------------------------------
# Result object, determinism, errors


def test_save_load_into_a_file_and_into_a_group_of_another_file(tmp_path, fixture_results):
    _, _, res = fixture_results["not"]
    res.save(tmp_path / "i.h5")
    back = Interactions.load(tmp_path / "i.h5")
    with h5py.File(tmp_path / "result.h5", "w") as f:  # e.g. a Result's file
        f.create_dataset("ofiv", data=np.zeros(3))
        res.save(f, "interactions")
    with h5py.File(tmp_path / "result.h5", "r") as f:
        inside = Interactions.load(f)
        assert "ofiv" in f
    for other in (back, inside):
        np.testing.assert_array_equal(other.matrix, res.matrix)
        np.testing.assert_array_equal(other.group_tables, res.group_tables)
        assert other.channel_names == res.channel_names and other.params == json.loads(json.dumps(res.params))
    with pytest.raises(ValueError, match="no deepresolve interactions"):
        Interactions.load(tmp_path / "result.h5", "nothing")


def test_table_by_name_and_index_and_summary(fixture_results):
    _, _, res = fixture_results["xor40"]
    assert res.table(0).equals(res.table(res.class_names[0]))
    assert "Feature interactions" in res.summary() and "XOR-like" in res.summary()
    with pytest.raises(DeepResolveError, match="was not analysed"):
        res.table(3)
    m = res.matrix
    assert m.shape == (1, 32, 32) and np.allclose(np.nan_to_num(m), np.nan_to_num(m.transpose(0, 2, 1)))
    assert np.isnan(m).any()  # channels below min_effect are not paired


def test_same_seed_same_result():
    a, b = (run_hand_built("and", contexts=8, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.tables, b.tables)
    assert a.params["seed"] == 3


@pytest.mark.parametrize("kw, match", [
    (dict(context_on=1.5), r"context_on: expected a finite number in \[0.0, 1.0\], got 1.5"),
    (dict(input_shape=(40,)), r"input_shape: expected \(4, L\) for one-hot sequences, got \(40,\)"),
    (dict(contexts=0), "contexts: expected an integer >= 1, got 0"),
    (dict(margin=-1), "margin: expected a finite number >= 0.0, got -1"),
    (dict(groups=[0]), "groups: expected 2 ints"),
    (dict(words=np.zeros((3, 4, 6))), "words: expected one-hot of shape"),
    (dict(scale="odds"), "scale: expected one of 'auto', 'probability', 'logit', got 'odds'"),
    (dict(classes=[3]), r"classes: expected an output index in \[0, 0\]"),
    (dict(significance=1.0), r"significance: expected a finite number >= 0.0 and < 1.0, got 1.0"),
    (dict(min_effect=-0.1), "min_effect: expected a finite number >= 0.0, got -0.1"),
    (dict(batch_size=0), "batch_size: expected an integer >= 1, got 0"),
    (dict(inputs=np.zeros((3, 4, 40))), r"inputs: expected one-hot sequences"),
    (dict(inputs=np.zeros((3, 4, 30))), r"inputs: expected shape \(N, 4, 40\), got \(3, 4, 30\)"),
])
def test_bad_arguments_are_refused(kw, match):
    args = dict(input_shape=(4, 40), seed=0)
    args.update(kw)
    with pytest.raises(DeepResolveError, match=match):
        interactions(hand_built("and"), "pool1", **args)


def test_heatmap_and_truth_table_figures(tmp_path, fixture_results):
    from deepresolve.viz.interactions import heatmap, truth_tables

    _, _, res = fixture_results["xor40"]
    fig = heatmap(res, 0, path=tmp_path / "h.png")
    ims = [a for a in fig.axes[0].get_images() if a.get_gid() == "interaction"]
    n = len(np.unique(res.group_pairs))
    assert len(ims) == 1 and ims[0].get_array().shape == (n, n) and (tmp_path / "h.png").stat().st_size > 0
    dots = [c for c in fig.axes[0].collections if c.get_gid() == "significant"]
    assert len(dots[0].get_offsets()) == 2 * int(res.table(0, top=None)["significant"].sum())
    fig = truth_tables(res, 0, top=3)
    # one panel per pair, as far as there are pairs (the word scan finds the two motifs and no chimera here)
    assert len(fig.axes) == min(3, len(res.group_pairs)) and "XOR-like" in fig.axes[0].get_title()
    with pytest.raises(TypeError, match="expected an Interactions result"):
        heatmap(object(), 0)


def test_several_classes_share_one_problem_and_keep_their_order():
    from deepresolve.paper.zoo import synthetic_cnn

    torch.manual_seed(0)
    model = synthetic_cnn(n_outputs=3, length=40).eval()
    # an untrained network reads no k-mer more than others on fresh backgrounds (the word scan finds no word and
    # says so), so this test of the class bookkeeping groups its channels by filter words
    res = interactions(model, "pool1", input_shape=(4, 40), classes=[2, 0], class_names=["c2", "c0"], contexts=4,
                       top=4, seed=0, motif_words="filters")
    K = 32
    assert res.classes.tolist() == [2, 0] and res.main.shape == (2, K) and res.matrix.shape == (2, K, K)
    assert res.pvalue.shape == (2, K, K) and res.tables.shape == (2, len(res.pairs), 2, 2)
    assert res.table("c0").equals(res.table(0))
    # every class's top-4 channels by |main effect| on the output scale are paired (pairs are chosen by relative
    # strength, the larger of the output scale's and the logit scale's; here both rank the same four first)
    for c in range(2):
        best = np.argsort(-np.abs(res.main[c]))[:4]
        assert not np.isnan(res.matrix[c][np.ix_(best, best)]).any()


def test_words_that_do_not_fit_twice_are_refused():
    # the scan's words are at most L // 2 long; a filter word can be longer
    with pytest.raises(DeepResolveError, match="input_shape: expected an input of at least 12 bp, so that two 6-bp"):
        interactions(hand_built("and", length=10), "pool1", input_shape=(4, 10), motif_words="filters")


def test_a_deeper_layer_at_its_input_is_refused_naming_at():
    from deepresolve.paper.logic import two_layer_cnn

    with pytest.raises(DeepResolveError, match="^at: expected 'output' for a deeper layer"):
        interactions(two_layer_cnn(60, global_pool=True), "pool2", input_shape=(4, 60), at="input")


def test_significance_is_the_level_and_alpha_its_old_name():
    res = run_hand_built("and", contexts=8, significance=0.05)
    assert res.params["significance"] == 0.05 and "alpha" not in res.params and res.significance == 0.05
    with pytest.warns(FutureWarning, match=r"interactions\(alpha=...\) is now interactions\(significance=...\)"):
        old = run_hand_built("and", contexts=8, alpha=0.05)
    assert old.params == res.params
    with pytest.raises(DeepResolveError, match="alpha: expected significance= alone"):
        run_hand_built("and", contexts=8, alpha=0.05, significance=0.05)


def test_batch_size_counts_sequences_per_pass_in_every_stage():
    # the word scan included: it writes 4,096 6-mers into 4 random sequences each
    model = hand_built("and")
    sizes = []
    model.conv1.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))  # copied with the model
    interactions(model, "pool1", input_shape=(4, 40), contexts=8, seed=0, batch_size=64)
    assert max(sizes) == 64 and len(sizes) > 4096 * 4 // 64
    sizes.clear()
    interactions(model, "pool1", input_shape=(4, 40), contexts=8, seed=0)
    assert max(sizes) == 4096 and len(sizes) < 50
