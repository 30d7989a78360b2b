"""The paper's synthetic claims, on the committed reduced-size models of :mod:`deepresolve.paper.fixtures`.

Set I and set II use 40-bp sequences (12,000 + 2,400 and 4 x 1,000): with few positions the
paper's CNN learns the AND/XOR logic from a small set in seconds. The claims are checked on the
models trained once by ``scripts/make_fixtures.py`` and committed, never on a model trained here:
trained weights depend on which float kernels the CPU runs (MKL / oneDNN), so a claim checked on
a fresh model could hold on one machine and fail on another. Training itself is tested only for
what survives kernel changes (:func:`test_demo_train_learns_every_presence_pattern`). The
full-size experiments and the study of which settings make each claim hold across training seeds
are in ``benchmarks/synthetic_claims.py``. Claims that do not hold on these models are recorded
as strict xfails with the reason, never loosened.
"""

import hashlib
import io
import json

import numpy as np
import pytest
import torch
from rich.console import Console

import deepresolve as dr
from deepresolve.baselines import attribute
from deepresolve.errors import ArgumentError
from deepresolve.io.sequences import decode, read_fasta
from deepresolve.paper.claims import (
    conv_weights,
    kmer_channel_names,
    motif_of,
    set_one_claims,
    set_two_claims,
)
from deepresolve.paper.datasets import SET_ONE_MOTIFS, SET_TWO_MOTIFS, planted_example
from deepresolve.paper.demo import run_demo
from deepresolve.paper.fixtures import (
    CASES,
    build_data,
    fixture_files,
    load_fixture,
    pattern_accuracy,
)
from deepresolve.paper.train import auc_per_class, predict_logits, split_indices
from deepresolve.paper.zoo import synthetic_cnn

L = 40


@pytest.fixture(scope="module")
def set_one(one_thread, tmp_path_factory):
    # The demo is set I end to end on the committed model: run it, then check what it wrote.
    out = tmp_path_factory.mktemp("demo")
    console = Console(file=io.StringIO(), width=200)
    res = run_demo(out, seed=0, console=console)
    model, meta = load_fixture("set_one")
    data = build_data("set_one")
    summary = json.loads((out / "demo.json").read_text())
    split = split_indices(len(data), seed=0)  # the split train_model made
    return dict(data=data, model=model, meta=meta, res=res, out=out, summary=summary, split=split,
                printed=console.file.getvalue(), claims=set_one_claims(res, [motif_of(n) for n in res.channel_names]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_files_match_their_sidecar(name):
    model, meta = load_fixture(name)
    case = CASES[name]
    assert meta["architecture"] == {"builder": case.model[0], "kwargs": case.model[1]}
    assert meta["data"]["builder"] == case.data[0] and meta["data"]["kwargs"] == case.data[1]
    assert meta["seed"] == case.seed and meta["train"]["seed"] == case.seed
    assert {k: meta["train"][k] for k in case.train} == case.train
    assert sum(p.numel() for p in model.state_dict().values()) == meta["n_parameters"]
    assert all(p.dtype == torch.float32 for p in model.state_dict().values())
    weights = fixture_files(name)[0]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == meta["sha256"], "weights changed without the sidecar"
    assert 20_000 < len(weights.read_bytes()) < 100_000  # small: tens of KB


def test_load_fixture_rejects_unknown_names():
    with pytest.raises(ArgumentError,
                       match=r"^name: expected a fixture shipped with the package \(.*set_one.*\), got 'nosuch'$"):
        load_fixture("nosuch")
    with pytest.raises(ArgumentError, match=r"^name: expected a fixture name that is an identifier such as 'set_one', "
                                            r"got '\.\./set_one'$"):
        load_fixture("../set_one")


def test_demo_writes_everything(set_one):
    out, res = set_one["out"], set_one["res"]
    for name in ("data.fa", "labels.tsv", "model.pt", "result.h5", "summary.tsv", "demo.json"):
        assert (out / name).stat().st_size > 0, name
    names, seqs = read_fasta(out / "data.fa")
    assert len(seqs) == 14_400 and decode(set_one["data"].x[:3]) == seqs[:3]
    saved = torch.load(out / "model.pt", weights_only=True)
    for k, v in set_one["model"].state_dict().items():  # the demo used the committed model
        assert torch.equal(saved[k], v), k
    assert set_one["summary"]["train"]["fixture"] == "set_one"
    # seed 0 is the fixture's data and split: the demo's test AUC is the fixture's held-out AUC
    np.testing.assert_allclose(set_one["summary"]["test_auc"], set_one["meta"]["test_auc"], atol=1e-3)
    back = dr.load(out / "result.h5")
    np.testing.assert_allclose(back.ofiv, res.ofiv)
    assert back.channel_names == res.channel_names and any(n.startswith("CAGGTC#") for n in res.channel_names)
    assert res.layer == "pool1" and res.params["l2"] == 1.0 and res.n_restarts == 10
    tsv = (out / "summary.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:2] == ["channel", "ofiv"] and len(tsv) == 33
    assert "non-additive channels" in set_one["printed"] and "CAGGTC" in set_one["printed"]
    assert "committed" in set_one["printed"]
    assert (out / "report.html").stat().st_size > 0


def test_demo_rejects_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentError, match=r"^out_dir: expected a folder, got the file '.*file'$"):
        run_demo(tmp_path / "file")
    with pytest.raises(ArgumentError, match="^seed: expected an integer, got str '0'$"):
        run_demo(tmp_path, seed="0")


def test_demo_train_learns_every_presence_pattern(one_thread, tmp_path):
    # Training is checked only for what survives a change of float kernels: the weights (and so
    # the claims) differ from CPU to CPU, a learned task does not.
    run_demo(tmp_path, seed=0, console=Console(file=io.StringIO()), train=True)
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert "fixture" not in summary["train"] and summary["test_auc"][0] > 0.95, summary["test_auc"]
    model = synthetic_cnn(length=L)
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    data = build_data("set_one")
    acc = pattern_accuracy(model.eval(), data, split_indices(len(data), seed=0)["test"])
    assert len(acc) == 8 and min(min(a) for a in acc.values()) > 0.75, acc


@pytest.fixture(scope="module")
def set_two(one_thread):
    model, meta = load_fixture("set_two")
    data = build_data("set_two")
    names = kmer_channel_names(conv_weights(model), list(SET_TWO_MOTIFS))
    res = dr.resolve(model, "pool1", input_shape=(4, L), restarts=10, l2=1.0, seed=0, channel_names=names)
    claims = set_two_claims(res, [motif_of(n) for n in names], dr.weight_cosine(model), dr.ofiv_correlation(res),
                            dr.class_similarity(res))
    return dict(data=data, model=model, meta=meta, split=split_indices(len(data), seed=0), res=res, claims=claims)


# ---------------------------------------------------------------------------------------------- set I


def test_set_one_model_learned_the_and_xor_logic(set_one):
    data, model = set_one["data"], set_one["model"]
    test = set_one["split"]["test"]
    assert auc_per_class(data.y[test], predict_logits(model, data.x[test]))[0] > 0.97  # paper: 0.985 (full size)
    acc = pattern_accuracy(model, data, test)
    # every presence pattern of CAGGTC / GCTCAT / CGCTTG, the XOR cases included
    assert len(acc) == 8, sorted(acc)
    for p, a in acc.items():
        assert a[0] > 0.8, (p, a)  # not perfect (AUC 0.98, like the paper's 0.985), but every case is learned


def test_set_one_bic_chooses_more_than_one_component(set_one):
    assert set_one["claims"]["bic_gt1"], set_one["res"].bic


@pytest.mark.xfail(strict=True, reason="five channels are flagged non-additive (two CAGGTC, one GCTCAT, one CGCTTG, "
                   "one unlabelled) and by |OFIV| a CAGGTC and an unlabelled channel come first: the CAGGTC channels "
                   "carry the largest FIVs and their size changes from restart to restart, so their IL (a variance) "
                   "is about twice that of any XOR channel; no setting of the study fixes this "
                   "(benchmarks/synthetic_claims.py)")
def test_set_one_top_non_additive_channels_are_the_xor_pair(set_one):
    assert set_one["claims"]["xor_nonadditive"], set_one["claims"]["top_nonadditive"]


@pytest.mark.xfail(strict=True, reason="on this reduced model the strongest GCTCAT and CGCTTG channels have the same "
                   "sign in every restart (the restarts reach nearly the same optimum); at full size the claim holds "
                   "for 2 of 3 training seeds without regularisation and 0 of 3 with dropout + max-norm")
def test_set_one_xor_pair_has_opposite_signs_in_most_restarts(set_one):
    assert set_one["claims"]["xor_opposite"], set_one["claims"]["opposite_fraction"]


@pytest.mark.xfail(strict=True, reason="unlabelled channels (filters matching none of the k-mers) get the largest "
                   "positive OFIVs among additive channels: in the optimum every dense weight counts, whether or not "
                   "real inputs ever move that channel")
def test_set_one_top_additive_positive_channels_are_cagtc(set_one):
    assert set_one["claims"]["and_additive_positive"], set_one["claims"]["top_additive_positive"]


def test_set_one_cagtc_channels_are_positive(set_one):
    # What does hold: the strongest CAGGTC channel has a positive OFIV, ranked among the top five.
    res, names = set_one["res"], set_one["res"].channel_names
    order = np.argsort(-np.abs(res.ofiv[0]))
    cag = [k for k in order if motif_of(names[k]) == "CAGGTC"]
    assert cag and res.ofiv[0, cag[0]] > 0 and list(order).index(cag[0]) < 5


# ---------------------------------------------------------------------------------------------- Fig. 3


def _example(model, motifs, positive):
    for seed in range(50):  # the paper used correctly predicted examples
        x = planted_example(motifs, length=L, seed=seed)
        if (predict_logits(model, x)[0, 0] > 0) == positive:
            return x
    raise AssertionError(f"no correctly predicted example with {motifs}")


def _motif_scores(model, x):
    s = decode(x)[0]
    out = {}
    for method in ("saliency", "gradient_x_input", "deeplift"):
        a = attribute(model, x, method=method)[0] * x[0]
        out[method] = {m: float(a[:, s.find(m):s.find(m) + len(m)].sum()) for m in SET_ONE_MOTIFS if m in s}
    return out


def test_fig3_positive_example_highlights_only_the_motifs_present(set_one):
    x = _example(set_one["model"], ["CAGGTC", "GCTCAT"], positive=True)
    scores = _motif_scores(set_one["model"], x)
    for method, s in scores.items():
        assert s["CAGGTC"] > 0 and s["GCTCAT"] > 0, (method, s)


@pytest.mark.xfail(strict=True, reason="on this model all three baselines give CAGGTC a positive and the XOR pair a "
                   "negative score on the all-three negative example, i.e. they do separate AND from XOR here; the "
                   "paper's same-sign observation is a property of its model, not of the methods")
def test_fig3_negative_example_baselines_give_all_motifs_one_sign(set_one):
    x = _example(set_one["model"], list(SET_ONE_MOTIFS), positive=False)
    for method, s in _motif_scores(set_one["model"], x).items():
        signs = {np.sign(v) for v in s.values()}
        assert len(signs) == 1, (method, s)


@pytest.mark.xfail(strict=True, reason="DeepResolve's non-additive flags do not single out the XOR pair on this "
                   "model (see test_set_one_top_non_additive_channels_are_the_xor_pair)")
def test_fig3_deepresolve_separates_xor_pair_from_and_motif(set_one):
    c = set_one["claims"]
    assert c["xor_nonadditive"] and c["and_additive_positive"]


# ---------------------------------------------------------------------------------------------- set II


def test_set_two_model_reaches_paper_auc(set_two):
    data, test = set_two["data"], set_two["split"]["test"]
    auc = auc_per_class(data.y[test], predict_logits(set_two["model"], data.x[test]))
    assert (auc >= np.array([0.968, 0.967, 0.979, 0.994])).all(), auc


def test_set_two_bic_picks_one_component_for_every_class(set_two):
    assert set_two["claims"]["bic_one"], set_two["res"].n_components


def test_set_two_top_positive_channels_match_own_motifs(set_two):
    c = set_two["claims"]
    assert c["own_motifs_top2"], c["top_positive"]
    # no motif of another class ever appears among the top three positive channels
    for wanted, got in zip([("GATA", "CAGATG"), ("TCAT", "CAGATG"), ("GATA", "TCAT"), ("CGCTTG",)], c["top_positive"]):
        assert set(got) <= set(wanted) | {"-"}, (wanted, got)


def test_set_two_negative_ofiv_terms_exist(set_two):
    assert set_two["claims"]["negatives"]


def test_set_two_ofiv_similarity_groups_classes_sharing_motifs(set_two):
    A = dr.class_similarity(set_two["res"])
    assert set_two["claims"]["similarity_separates"], A
    # while the labels say nothing: one class per sequence, so all label correlations are equal and negative
    R = dr.label_correlation(set_two["data"].y)
    off = R[~np.eye(4, dtype=bool)]
    assert np.allclose(off, off[0], atol=0.02) and off[0] < 0


def test_set_two_weight_cosine_and_full_ofiv_do_not_separate(set_two):
    c = set_two["claims"]
    assert not c["ofiv_corr_separates"], dr.ofiv_correlation(set_two["res"])
    assert not c["weight_cosine_separates"], dr.weight_cosine(set_two["model"])


# ---------------------------------------------------------------------------------------------- a designed XOR network


def _designed_xor_network(K=8):
    """H (K, 1) -> 3 ReLU units -> logit, with channel 0 the AND motif and channels 1, 2 the XOR pair.

    u1 = relu(h0 + h1 - 2 h2 - 1), u2 = relu(h0 - 2 h1 + h2 - 1), u3 = relu(h1 + h2 - 1);
    logit = u1 + u2 - 2 u3: positive for h0 with exactly one of h1, h2. Channels 3.. are unused.
    """
    from collections import OrderedDict

    from torch import nn

    lin1, lin2 = nn.Linear(K, 3), nn.Linear(3, 1)
    with torch.no_grad():
        lin1.weight.zero_()
        lin1.bias.fill_(-1.0)
        lin1.weight[0, :3] = torch.tensor([1.0, 1.0, -2.0])
        lin1.weight[1, :3] = torch.tensor([1.0, -2.0, 1.0])
        lin1.weight[2, 1:3] = torch.tensor([1.0, 1.0])
        lin2.weight[:] = torch.tensor([[1.0, 1.0, -2.0]])
        lin2.bias.zero_()
    return nn.Sequential(OrderedDict([("h", nn.Identity()), ("flatten", nn.Flatten()), ("dense1", lin1),
                                      ("relu", nn.ReLU()), ("dense2", lin2)]))


def test_designed_xor_network_flags_exactly_the_xor_pair():
    # Where the logic is known to live in H, the paper's method (lambda = 1) finds it: the claims'
    # failures on trained models are not an artefact of the engine.
    res = dr.resolve(_designed_xor_network(), "h", input_shape=(8, 1), restarts=20, l2=1.0, seed=0)
    assert res.n_components[0] > 1
    assert np.flatnonzero(res.non_additive[0]).tolist() == [1, 2]
    assert res.consistent_sign[0, 0] and not res.consistent_sign[0, 1] and not res.consistent_sign[0, 2]
    assert res.ofiv[0, 0] > 0 and np.allclose(res.ofiv[0, 3:], 0, atol=1e-6)
    fivs = res.fivs[0][res.weights[0] > 0]
    assert len(fivs) >= 10 and np.all(np.sign(fivs[:, 1]) * np.sign(fivs[:, 2]) < 0)  # always opposite signs


# Feature interactions (issue 10, an addition to the paper) on the same committed model, as the demo prints them.

def test_set_one_interactions_find_the_xor_pair_antagonistic(set_one):
    found, res = set_one["summary"]["interactions"], set_one["res"]
    assert dr.load(set_one["out"] / "result.h5").interactions is not None and res.interactions.params["seed"] == 0
    # the strongest pair of the model is a GCTCAT group with a CGCTTG group: antagonistic, significant, and its
    # truth table is XOR's (each alone raises the output, both together do not)
    xor = found["XOR pair"]
    assert xor["rank"] == 1 and xor["interaction"] < -0.2 and xor["significant"] and xor["kind"] == "XOR-like"
    printed = " ".join(set_one["printed"].split())
    assert "Feature interactions of pool1" in printed
    assert "XOR pair GCTCAT x CGCTTG: antagonistic (as the logic says), rank 1 of" in printed
    rows = (set_one["out"] / "interactions.tsv").read_text().splitlines()
    assert len(rows) == 1 + xor["of"]


def test_set_one_interactions_find_the_caggtc_partner_synergistic(set_one):
    # the AND partner of the XOR's GCTCAT: positive and significant on the committed set I model (the previous word
    # scan and contexts gave it weakly antagonistic, rank 4, not significant)
    partner = set_one["summary"]["interactions"]["AND partner of GCTCAT"]
    assert partner["rank"] is not None and partner["interaction"] > 0 and partner["significant"]
