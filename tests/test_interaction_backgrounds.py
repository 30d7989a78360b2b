"""The background models of the feature-interaction analysis (``background=``).

"gc" backgrounds have the GC fraction asked for; "markov" backgrounds reproduce the (k+1)-mer frequencies of the
inputs the chain is fitted on (CpG depletion kept); the defaults are the draws of before ("uniform" without inputs,
dinucleotide shuffles with them); one seed, one set of backgrounds; mistakes refused before any work; the model
used recorded in ``params`` and kept through save and load, from Python, from ``resolve`` and from the CLI.
"""

import inspect

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import deepresolve as dr
from deepresolve.cli import app
from deepresolve.errors import DeepResolveError
from deepresolve.interaction_analysis import interactions
from deepresolve.interaction_analysis.contexts import draw_backgrounds, fit_markov, sample_markov
from deepresolve.interaction_analysis.network import random_sequences
from deepresolve.interaction_analysis.options import make_options
from deepresolve.paper.logic import hand_built
from deepresolve.results import Interactions

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

C, G = 1, 2  # base indices (A, C, G, T)


def options(**given):
    """The checked settings of an analysis with the defaults of ``interactions`` and (4, 200) inputs."""
    defaults = {name: p.default for name, p in inspect.signature(interactions).parameters.items()
                if name in inspect.signature(make_options).parameters}
    return make_options(**{**defaults, "input_shape": (4, 200), **given})


def bases_of(x: torch.Tensor) -> np.ndarray:
    """Base indices (N, L) of one-hot sequences (N, 4, L), checking that every position holds one base."""
    assert ((x == 0) | (x == 1)).all() and (x.sum(1) == 1).all()
    return x.argmax(1).numpy()


def kmer_frequencies(bases: np.ndarray, k: int) -> np.ndarray:
    """Frequencies (4^k,) of the k-mers of sequences (N, L), indexed in base 4, the first base most significant."""
    codes = np.zeros((len(bases), bases.shape[1] - k + 1), dtype=np.int64)
    for j in range(k):
        codes = codes * 4 + bases[:, j:bases.shape[1] - k + 1 + j]
    return np.bincount(codes.ravel(), minlength=4 ** k) / codes.size


def cpg_depleted(n: int, length: int, seed: int = 0) -> np.ndarray:
    """One-hot sequences (n, 4, length): bases of GC fraction 0.41, then every G after a C replaced by A or T
    (left to right, so none is left): no CpG at all, against 1/16 in uniform random DNA."""
    rng = np.random.default_rng(seed)
    x = rng.choice(4, (n, length), p=[0.295, 0.205, 0.205, 0.295])
    for j in range(1, length):
        cg = (x[:, j - 1] == C) & (x[:, j] == G)
        x[cg, j] = rng.choice([0, 3], cg.sum())
    return np.eye(4, dtype=np.float32)[x].transpose(0, 2, 1).copy()


# ---------------------------------------------------------------------------------------------------------------
# The draws


@pytest.mark.parametrize("gc", [0.3, 0.41, 0.6])
def test_gc_backgrounds_have_the_gc_fraction_asked_for(gc):
    bases = bases_of(draw_backgrounds(np.random.default_rng(0), options(background="gc", gc=gc)))
    assert bases.shape == (256, 200)
    assert abs(np.isin(bases, (C, G)).mean() - gc) < 0.02
    # C and G alike, A and T alike (no strand is favoured)
    counts = np.bincount(bases.ravel(), minlength=4) / bases.size
    np.testing.assert_allclose(counts, [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], atol=0.01)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_markov_backgrounds_reproduce_the_inputs_kmer_frequencies(order):
    inputs = cpg_depleted(256, 200)
    bases = bases_of(draw_backgrounds(np.random.default_rng(0), options(background="markov", markov_order=order,
                                                                       inputs=inputs)))
    assert bases.shape == (256, 200)
    truth = kmer_frequencies(inputs.argmax(1), order + 1)
    np.testing.assert_allclose(kmer_frequencies(bases, order + 1), truth, atol=0.005)
    cpg = 4 * C + G
    if order >= 1:  # the chain keeps the inputs' CpG depletion: about 0 (the pseudocounts'), far from 1/16
        assert kmer_frequencies(bases, 2)[cpg] < 0.002
    else:  # base composition alone: CpG at the product of the C and G frequencies
        assert abs(kmer_frequencies(bases, 2)[cpg] - 0.205 ** 2) < 0.01


def test_fit_markov_is_the_normalised_counts_plus_one():
    # AC, CG, GT and AC again: 2-mer counts plus one, each row normalised
    initial, transition = fit_markov(np.array([[0, 1, 2, 3], [0, 1, 0, 1]]), 1)
    counts = np.ones((4, 4))
    for a, b in [(0, 1), (1, 2), (2, 3), (0, 1), (1, 0), (0, 1)]:
        counts[a, b] += 1
    np.testing.assert_allclose(transition, counts / counts.sum(1, keepdims=True))
    np.testing.assert_allclose(initial, counts.sum(1) / counts.sum())
    # a chain that always moves A -> C -> G -> T -> A from A
    cycle = np.full((4, 4), 0.0)
    cycle[[0, 1, 2, 3], [1, 2, 3, 0]] = 1.0
    out = sample_markov(np.random.default_rng(0), np.array([1.0, 0, 0, 0]), cycle, 3, 9)
    np.testing.assert_array_equal(out, np.tile([0, 1, 2, 3, 0, 1, 2, 3, 0], (3, 1)))


def test_the_defaults_are_the_draws_of_before():
    from tangermeme.ersatz import dinucleotide_shuffle

    np.testing.assert_array_equal(draw_backgrounds(np.random.default_rng(3), options(seed=3)),
                                  random_sequences(np.random.default_rng(3), 256, 200))
    inputs = cpg_depleted(20, 200)
    rng = np.random.default_rng(3)
    pick = rng.choice(20, size=256, replace=True)
    before = dinucleotide_shuffle(torch.from_numpy(inputs)[pick], n=1, random_state=3)[:, 0]
    np.testing.assert_array_equal(draw_backgrounds(np.random.default_rng(3), options(seed=3, inputs=inputs)), before)


@pytest.mark.parametrize("background", ["uniform", "gc", "shuffle", "markov"])
def test_one_seed_gives_one_set_of_backgrounds(background):
    inputs = cpg_depleted(20, 200) if background in ("shuffle", "markov") else None
    opts = options(background=background, inputs=inputs, seed=5)
    first = draw_backgrounds(np.random.default_rng(5), opts)
    np.testing.assert_array_equal(first, draw_backgrounds(np.random.default_rng(5), opts))
    other = options(background=background, inputs=inputs, seed=6)
    assert not torch.equal(first, draw_backgrounds(np.random.default_rng(6), other))


# ---------------------------------------------------------------------------------------------------------------
# Mistakes


@pytest.mark.parametrize("kwargs, message", [
    (dict(background="dinucleotide"), "background: expected one of 'uniform', 'gc', 'shuffle', 'markov', "
                                      "got 'dinucleotide'"),
    (dict(background="gc", gc=0.0), "gc: expected a finite number > 0.0 and < 1.0, got 0.0"),
    (dict(background="gc", gc=1.5), "gc: expected a finite number > 0.0 and < 1.0, got 1.5"),
    (dict(background="markov"), "background: expected 'uniform' or 'gc' without inputs ('markov' is drawn from "
                                "inputs="),
    (dict(background="shuffle"), "background: expected 'uniform' or 'gc' without inputs ('shuffle' is drawn from "
                                 "inputs="),
    (dict(background="uniform", inputs=True), "inputs: expected None with background='uniform', which draws "
                                              "nothing from them ('shuffle' and 'markov' do), got 12 sequences"),
    (dict(background="gc", inputs=True), "inputs: expected None with background='gc'"),
    (dict(background="markov", inputs=True, markov_order=-1), "markov_order: expected an integer in [0, 10], "
                                                              "got -1"),
    (dict(background="markov", inputs=True, markov_order=2.0), "markov_order: expected an integer, got float"),
])
def test_mistakes_are_refused_before_any_work(kwargs, message):
    model = hand_built("and")
    calls = []
    model.conv1.register_forward_pre_hook(lambda module, args: calls.append(1))
    if kwargs.pop("inputs", False):
        kwargs["inputs"] = cpg_depleted(12, 40)
    with pytest.raises(DeepResolveError) as caught:
        interactions(model, "pool1", input_shape=(4, 40), contexts=8, **kwargs)
    assert str(caught.value).startswith(message)
    assert not calls


def test_a_markov_order_needs_room_in_the_inputs():
    with pytest.raises(DeepResolveError, match=r"markov_order: expected an integer < 8 \(the inputs' length"):
        make_options(**{**{name: p.default for name, p in inspect.signature(interactions).parameters.items()
                           if name in inspect.signature(make_options).parameters},
                        "input_shape": (4, 8), "background": "markov", "markov_order": 8,
                        "inputs": cpg_depleted(4, 8)})


# ---------------------------------------------------------------------------------------------------------------
# What the result records


@pytest.mark.parametrize("kwargs, recorded", [
    ({}, dict(background="uniform")),
    (dict(background="gc", gc=0.3), dict(background="gc", gc=0.3)),
    (dict(inputs=True), dict(background="shuffle")),
    (dict(background="markov", markov_order=1, inputs=True), dict(background="markov", markov_order=1)),
])
def test_the_background_is_recorded_and_kept_through_save_and_load(tmp_path, kwargs, recorded):
    if kwargs.pop("inputs", False):
        kwargs["inputs"] = cpg_depleted(12, 40)
    ix = interactions(hand_built("and"), "pool1", input_shape=(4, 40), contexts=8, jaspar=None, **kwargs)
    extra = {"gc", "markov_order"} - set(recorded)
    assert {k: ix.params[k] for k in recorded} == recorded and not extra & set(ix.params)
    ix.save(tmp_path / "ix.h5")
    assert Interactions.load(tmp_path / "ix.h5").params == ix.params


def test_files_with_the_old_background_text_still_load(tmp_path):
    ix = interactions(hand_built("and"), "pool1", input_shape=(4, 40), contexts=8, jaspar=None)
    old = Interactions(**{**{f: getattr(ix, f) for f in ix.__dataclass_fields__},
                          "params": {**ix.params, "background": "dinucleotide shuffles of inputs"}})
    old.save(tmp_path / "old.h5")
    loaded = Interactions.load(tmp_path / "old.h5")
    assert loaded.params["background"] == "dinucleotide shuffles of inputs"
    np.testing.assert_array_equal(loaded.group_tables, ix.group_tables)


def test_resolve_passes_the_background_on_and_its_inputs_only_when_drawn_from():
    inputs = cpg_depleted(12, 40)
    kwargs = dict(restarts=2, l2=1.0, steps=5)
    res = dr.resolve(hand_built("and"), "pool1", inputs=inputs, interactions={"contexts": 8, "jaspar": None,
                                                                             "background": "gc", "gc": 0.3}, **kwargs)
    assert res.interactions.params["background"] == "gc" and res.interactions.params["gc"] == 0.3
    alone = interactions(hand_built("and"), "pool1", input_shape=(4, 40), contexts=8, jaspar=None, background="gc",
                         gc=0.3)
    np.testing.assert_array_equal(res.interactions.group_tables, alone.group_tables)
    res = dr.resolve(hand_built("and"), "pool1", inputs=inputs, interactions={"contexts": 8, "jaspar": None,
                                                                             "background": "markov"}, **kwargs)
    assert res.interactions.params["background"] == "markov" and res.interactions.params["markov_order"] == 2
    # refused before the ascent: the model never runs
    model, calls = hand_built("and"), []
    model.conv1.register_forward_pre_hook(lambda module, args: calls.append(1))
    with pytest.raises(DeepResolveError, match="background: expected 'uniform' or 'gc' without inputs"):
        dr.resolve(model, "pool1", input_shape=(4, 40), interactions={"background": "markov"}, **kwargs)
    assert not calls


# ---------------------------------------------------------------------------------------------------------------
# The command line


def factory():
    return hand_built("and")


def test_cli_background_option_is_recorded(tmp_path):
    args = ["interactions", "tests.test_interaction_backgrounds:factory", "--layer", "pool1", "--input-shape",
            "4,40", "--contexts", "8", "--jaspar", "none"]
    out = CliRunner().invoke(app, args + ["--out", str(tmp_path / "o"), "--background", "gc", "--gc", "0.35"])
    assert out.exit_code == 0, out.output
    params = Interactions.load(tmp_path / "o" / "interactions.h5").params
    assert params["background"] == "gc" and params["gc"] == 0.35
    np.save(tmp_path / "x.npy", cpg_depleted(12, 40))
    out = CliRunner().invoke(app, args + ["--out", str(tmp_path / "m"), "--background", "markov", "--markov-order",
                                          "1", "--inputs", str(tmp_path / "x.npy")])
    assert out.exit_code == 0, out.output
    params = Interactions.load(tmp_path / "m" / "interactions.h5").params
    assert params["background"] == "markov" and params["markov_order"] == 1
    refused = CliRunner().invoke(app, args + ["--out", str(tmp_path / "p"), "--background", "markov"])
    assert refused.exit_code != 0 and "background: expected 'uniform' or 'gc' without inputs" in str(refused.exception)
