"""The genomics-like ground-truth suite (deepresolve.paper.genomic): data, cases, halves, fixtures, matching."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepresolve.errors import ArgumentError
from deepresolve.paper.genomic import (
    ARCHITECTURES,
    CASES,
    DISTRACTORS,
    MOTIF_IDS,
    assign_halves,
    genomic_cnn,
    genomic_data,
    log_odds,
    match_motifs,
    match_score,
    motif_pwms,
    motif_threshold,
    reverse_complement,
    used_motifs,
)
from deepresolve.paper.logic import check_logic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "genomic"
AND = ("CEBPB", "NRF1", "TEAD1")


def _and(k):
    return (k[:, 0] > 0) & (k[:, 1] > 0)


@pytest.fixture(scope="module")
def and_data():
    return genomic_data(AND, _and, n=240, length=200, seed=3)


def _bases(x):
    return x.argmax(1)


def test_patterns_balanced_and_labelled_by_the_rule(and_data):
    counts = and_data.params["counts"]
    patterns, n = np.unique(counts, axis=0, return_counts=True)
    assert len(patterns) == 8 and (n == 30).all()
    assert (and_data.y[:, 0] == _and(counts)).all()
    assert (and_data.present == (counts > 0)).all()


def test_instances_are_pwm_samples_in_both_orientations():
    d = genomic_data(("CTCF", "NRF1"), lambda k: k[:, 0] > 0, n=800, length=200, seed=1)
    inst, x = d.params["instances"], _bases(d.x)
    pwm = motif_pwms(["CTCF"])["CTCF"]
    w = pwm.shape[1]
    mine = np.flatnonzero(inst["motif"] == 0)
    assert len(mine) == 400 and 0.4 < (inst["strand"][mine] > 0).mean() < 0.6
    seqs = x[inst["seq"][mine, None], inst["start"][mine, None] + np.arange(w)]
    rc = inst["strand"][mine] < 0
    seqs[rc] = reverse_complement(seqs[rc])  # back to the PWM's orientation
    freq = np.stack([(seqs == b).mean(0) for b in range(4)])
    assert np.abs(freq - pwm).max() < 0.1
    # not copies of one consensus: samples differ
    assert len({tuple(s) for s in seqs}) > 300
    # the first copy's start is recorded
    assert (d.positions[inst["seq"][mine], 0] == inst["start"][mine]).all()


def test_backgrounds_gc_biased_and_every_sequence_carries_distractors(and_data):
    inst, x = and_data.params["instances"], _bases(and_data.x)
    covered = np.zeros(x.shape, bool)
    widths = [motif_pwms([m])[m].shape[1] for m in and_data.params["all_motifs"]]
    for s, m, st in zip(inst["seq"], inst["motif"], inst["start"]):
        covered[s, st:st + widths[m]] = True
    background = np.where(covered, -1, x)
    gc = ((background == 1) | (background == 2)).sum(1) / (background >= 0).sum(1)
    assert abs(gc.mean() - 0.41) < 0.02
    assert np.corrcoef(gc, and_data.params["gc"])[0, 1] > 0.7
    n_distractors = np.bincount(inst["seq"][inst["motif"] >= len(AND)], minlength=len(and_data))
    assert (n_distractors == 2).all()


def test_a_case_motif_occurs_only_where_it_was_planted(and_data):
    inst, x = and_data.params["instances"], _bases(and_data.x)
    for m, name in enumerate(AND):
        lo = log_odds(motif_pwms([name])[name])
        w = lo.shape[1]
        windows = np.lib.stride_tricks.sliding_window_view(x, w, axis=1)  # (N, L - w + 1, w)
        score = np.maximum(lo[windows, np.arange(w)].sum(-1), lo[::-1, ::-1][windows, np.arange(w)].sum(-1))
        rows, pos = np.nonzero(score >= motif_threshold(name))
        mine = inst["motif"] == m
        for r, p in zip(rows, pos):
            assert np.any(mine & (inst["seq"] == r) & (np.abs(inst["start"] - p) <= w // 2))


def test_halves_fixed_before_tuning_and_both_non_empty():
    tune = {"additive_200", "and_1000", "and3_200", "and_long_1000", "complex_200", "multitask_1000", "not_200",
            "or_1000", "shared_core_200", "xor_1000"}
    assert {n for n, c in CASES.items() if c.half == "tune"} == tune
    assert {n for n, c in CASES.items() if c.half == "report"} == set(CASES) - tune
    assert assign_halves(list(CASES)[::-1]) == {n: c.half for n, c in CASES.items()}  # order does not matter
    logics = {c.logic for c in CASES.values()}
    for logic in logics:
        assert {c.half for c in CASES.values() if c.logic == logic} == {"tune", "report"}


def test_every_logic_at_both_lengths_in_two_architectures():
    logics = {c.logic for c in CASES.values()}
    assert len(logics) == 10
    for logic in logics:
        cases = [c for c in CASES.values() if c.logic == logic]
        assert {c.length for c in cases} == {200, 1000}
        assert len({c.arch for c in cases}) >= 2
    assert {c.arch for c in CASES.values()} == set(ARCHITECTURES)
    for c in CASES.values():
        assert not set(c.motifs) & set(DISTRACTORS) and set(c.motifs) <= set(MOTIF_IDS)
        for pairs in c.pairs:
            assert all(set(p) <= set(c.motifs) for p in pairs)
    assert CASES["multitask_200"].tasks == 3
    assert max(motif_pwms([m])[m].shape[1] for c in CASES.values() for m in c.motifs) == 20  # REST, the long one


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("length", [200, 1000])
def test_models_keep_a_local_analysed_layer(arch, length):
    case = next(c for c in CASES.values() if c.arch == "conv1") if arch == "conv1" else None
    model = genomic_cnn(arch, length, 3, global_pool=True)
    x = torch.zeros(2, 4, length)
    shapes = {}
    with torch.no_grad():
        for name, module in model.named_children():
            x = module(x)
            shapes[name] = tuple(x.shape[1:])
    layer = "pool1" if arch == "conv1" else "pool2"
    assert shapes[layer][0] == 32 and x.shape == (2, 3)
    if arch != "conv1":
        assert shapes[layer][1] > 1 and shapes["gpool"] == (32, 1)
    else:
        assert shapes[layer] == (32, 1) and case.layer == "pool1"


@pytest.mark.parametrize("name", ["and_long_200", "multitask_200"])
def test_committed_fixtures_implement_their_logic(name):
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    case = CASES[meta["case"]]
    model = case.model()
    model.load_state_dict(torch.load(FIXTURES / f"{name}.pt", weights_only=True))
    # the fixture script checked the test split; the committed weights must still pass on fresh data
    data = genomic_data(case.motifs, case.rule, n=1600, length=case.length, seed=1000)
    ok, rows = check_logic(model.eval(), data)
    assert ok and meta["ok"], rows
    assert {r["task"] for r in rows} == set(range(case.tasks))
    assert (FIXTURES / f"{name}.pt").stat().st_size < 300_000


def test_used_motifs_by_per_pattern_means():
    patterns = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]])
    and_ = np.array([0.0, 0.0, 0.01, 0.0, 0.02, 0.01, 0.9, 0.91])  # A AND B; C does nothing
    only_a = np.array([0.1, 0.1, 0.1, 0.1, 0.8, 0.8, 0.8, 0.8])
    used = used_motifs(patterns, np.stack([and_, only_a], 1))
    assert used.tolist() == [[True, True, False], [True, False, False]]
    with pytest.raises(ArgumentError, match="patterns, means: expected"):
        used_motifs(patterns, and_)


def _one_hot(bases):
    return np.eye(4)[np.asarray(bases)].T


def test_match_motifs_names_consensus_parts_both_strands_and_refuses_random_words():
    pwms = motif_pwms()
    candidates = [*AND, *DISTRACTORS]
    cons = {m: pwms[m].argmax(0) for m in candidates}
    words = [_one_hot(cons["CEBPB"]), _one_hot(reverse_complement(cons["NRF1"])), _one_hot(cons["NRF1"][2:10]),
             _one_hot(cons["KLF4"])]
    padded = np.zeros((len(words), 4, 16))
    for i, w in enumerate(words):
        padded[i, :, 1:1 + w.shape[1]] = w  # zero columns: unspecified bases
    assert match_motifs(padded, candidates) == ["CEBPB", "NRF1", "NRF1", "KLF4"]
    rng = np.random.default_rng(0)
    random_words = np.stack([_one_hot(rng.integers(0, 4, 8)) for _ in range(200)])
    assert sum(m is not None for m in match_motifs(random_words, [*AND])) <= 6
    assert match_score(_one_hot(cons["CEBPB"]), pwms["CEBPB"]) == pytest.approx(1.0)
    # a probability PWM is matched too
    assert match_motifs(pwms["CEBPB"][None], candidates) == ["CEBPB"]
    with pytest.raises(ArgumentError, match="words: expected an array of shape"):
        match_motifs(np.zeros((4, 8)), candidates)
    with pytest.raises(ArgumentError, match="names: expected motif names"):
        match_motifs(padded, ["NOTAMOTIF"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(motifs=("CEBPB", "NOPE")), "motifs: expected distinct names"),
    (dict(motifs=("CEBPB", "KLF4")), "motifs: expected distinct names"),
    (dict(motifs=("CEBPB", "CEBPB")), "motifs: expected distinct names"),
    (dict(length=40), "length: expected room"),
    (dict(n=0), "n: expected an integer"),
])
def test_bad_data_arguments_raise(kwargs, match):
    args = dict(motifs=AND, rule=_and, n=16, length=200) | kwargs
    with pytest.raises(ArgumentError, match=match):
        genomic_data(args.pop("motifs"), args.pop("rule"), **args)


def test_bad_architecture_raises():
    with pytest.raises(ArgumentError, match="arch: expected one of"):
        genomic_cnn("lstm", 200)
