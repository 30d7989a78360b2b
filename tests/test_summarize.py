import numpy as np
import pytest
import torch
from _factories import make_result
from torch import nn

import deepresolve as dr
from deepresolve.errors import (
    ArgumentError,
    FileFormatError,
    MissingFileError,
    ModelError,
)
from deepresolve.importance import (
    fit_mixture,
    inconsistency,
    ofiv,
    restart_weights,
    sign_consistent,
    summarize,
)


def test_restart_weights_offset_only_when_negative():
    np.testing.assert_allclose(restart_weights(np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])),
                               [[1.0, 2.0, 3.0], [0.0, 1.5, 3.0]])
    # every restart scored the same negative value: uniform weights, not a division by zero
    np.testing.assert_allclose(restart_weights(np.array([[-2.0, -2.0]])), [[1.0, 1.0]])


def test_inconsistency_is_numpy_weighted_variance():
    rng = np.random.default_rng(0)
    fivs, w = rng.normal(size=(3, 10, 6)), rng.uniform(0, 2, size=(3, 10))
    expected = np.stack([
        np.average((f - np.average(f, axis=0, weights=ww)) ** 2, axis=0, weights=ww) for f, ww in zip(fivs, w)
    ])
    np.testing.assert_allclose(inconsistency(fivs, w), expected)
    # the same as numpy's weighted covariance (biased) diagonal
    np.testing.assert_allclose(inconsistency(fivs[:1], w[:1])[0],
                               np.diag(np.cov(fivs[0].T, aweights=w[0], bias=True)))


def test_ofiv_rules():
    fivs = np.array([[1.0, 2.0, -1.0], [3.0, -2.0, -3.0]])  # channel 1 flips sign
    w = np.array([1.0, 3.0])
    consistent = sign_consistent(fivs, w)
    assert consistent.tolist() == [True, False, True]
    non_additive = np.array([False, True, True])
    out = ofiv(fivs, w, non_additive, consistent)
    # additive and consistent non-additive: weighted mean; inconsistent non-additive: positive FIVs only
    np.testing.assert_allclose(out, [2.5, 2.0, -2.5])
    # an additive channel of inconsistent sign keeps the plain weighted mean
    np.testing.assert_allclose(ofiv(fivs, w, np.zeros(3, bool), consistent)[1], -1.0)


def test_mixture_selection():
    rng = np.random.default_rng(1)
    two = np.concatenate([rng.normal(0.01, 0.002, 28), rng.normal(1.0, 0.05, 4)])
    fit = fit_mixture(two)
    assert fit.n_components >= 2 and np.flatnonzero(fit.non_additive).tolist() == [28, 29, 30, 31]
    one = rng.normal(0.5, 0.05, 32)
    assert fit_mixture(one).n_components == 1
    assert fit_mixture(np.zeros(16)).n_components == 1
    # below the floor everything is one component
    assert fit_mixture(two * 1e-3, floor=0.01).n_components == 1


def test_summary_does_not_depend_on_the_units_of_the_feature_map():
    rng = np.random.default_rng(5)
    fims = rng.normal(0, 0.02, size=(2, 10, 12, 1))
    fims[:, :, :3] += rng.choice([-1.0, 1.0], size=(2, 10, 3, 1))  # three channels flip sign across restarts
    fims[:, :, 3:] += 0.5
    scores = rng.uniform(1, 2, size=(2, 10))
    base = summarize(fims, scores)
    assert (base["n_components"] > 1).all()
    assert base["non_additive"][:, :3].all() and not base["non_additive"][:, 3:].any()
    for factor in (1e-4, 1e3):
        scaled = summarize(fims * factor, scores)
        assert scaled["n_components"].tolist() == base["n_components"].tolist()
        assert (scaled["non_additive"] == base["non_additive"]).all()


def test_tiny_disagreements_are_one_component():
    # restarts agreeing to 1e-5 of the FIV scale (convergence noise) are additive, however the noise is spread
    rng = np.random.default_rng(6)
    fims = 0.5 + rng.normal(0, 1e-5, size=(1, 10, 16, 1)) * rng.uniform(0, 1, size=(1, 1, 16, 1))
    assert summarize(fims, np.ones((1, 10)))["n_components"][0] == 1


def test_summarize_validates_shapes():
    with pytest.raises(ArgumentError, match=r"^fims: expected shape \(C, T, K, W\), got \(2, 3, 4\)$"):
        summarize(np.zeros((2, 3, 4)), np.zeros((2, 3)))
    with pytest.raises(ArgumentError,
                       match=r"^scores: expected shape \(C, T\) = \(2, 3\) to match fims, got \(3, 2\)$"):
        summarize(np.zeros((2, 3, 4, 1)), np.zeros((3, 2)))
    with pytest.raises(ArgumentError, match=r"^inconsistency: expected one of 'variance', 'sign', got 'entropy'$"):
        summarize(np.zeros((2, 3, 4, 1)), np.zeros((2, 3)), inconsistency="entropy")
    with pytest.raises(ArgumentError, match=r"^agreement: expected a finite number >= 0 and < 1, got 2$"):
        summarize(np.zeros((2, 3, 4, 1)), np.zeros((2, 3)), agreement=2)


def test_similarity_matches_numpy():
    rng = np.random.default_rng(2)
    res = fake_result(rng, C=5, K=12)
    pos = np.clip(res.ofiv, 0, None)
    np.testing.assert_allclose(dr.class_similarity(res), np.corrcoef(pos), atol=1e-12)
    np.testing.assert_allclose(dr.ofiv_correlation(res), np.corrcoef(res.ofiv), atol=1e-12)
    np.testing.assert_allclose(dr.class_difference(res, 3, 1), res.ofiv[3] - res.ofiv[1])
    np.testing.assert_allclose(dr.class_difference(res, "c3", "c1"), res.ofiv[3] - res.ofiv[1])
    labels = rng.integers(0, 2, size=(100, 5))
    np.testing.assert_allclose(dr.label_correlation(labels), np.corrcoef(labels.T), atol=1e-12)


def test_constant_rows_correlate_zero():
    rng = np.random.default_rng(3)
    res = fake_result(rng, C=3, K=6)
    res.ofiv[1] = -1.0  # no positive channel: constant after clipping
    a = dr.class_similarity(res)
    assert a[1, 1] == 1.0 and a[0, 1] == 0.0 and np.isfinite(a).all()


def test_weight_cosine_and_clustering():
    w = np.array([[1.0, 0.0, 0.0], [2.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 4))
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor(w))
    cos = dr.weight_cosine(model)
    expected = (w / np.linalg.norm(w, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    np.testing.assert_allclose(cos, expected, atol=1e-6)
    np.testing.assert_allclose(dr.weight_cosine(w, classes=[0, 2]), expected[np.ix_([0, 2], [0, 2])])
    sim = np.array([[1, .9, .1, 0], [.9, 1, .2, .1], [.1, .2, 1, .8], [0, .1, .8, 1]])
    clusters = dr.cluster_classes(sim, n_clusters=2)
    assert clusters.labels[0] == clusters.labels[1] != clusters.labels[2] == clusters.labels[3]
    assert sorted(clusters.order.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ArgumentError, match=r"^similarity: expected a square \(C, C\) matrix, got shape \(2, 3\)$"):
        dr.cluster_classes(np.zeros((2, 3)))
    with pytest.raises(ArgumentError, match=r"^method: expected one of 'average', 'complete', 'single', 'weighted', "
                                            r"got 'ward'$"):
        dr.cluster_classes(sim, method="ward")
    with pytest.raises(ModelError, match=r"^model: expected a model with an nn.Linear output layer, got a Conv1d"):
        dr.weight_cosine(nn.Conv1d(1, 1, 1))
    # a model with another number of outputs than the result was computed on: refused, naming both numbers
    with pytest.raises(ArgumentError, match=r"^model: expected a last layer with 5 outputs .*, got one with 4$"):
        dr.weight_cosine(model, n_outputs=5)
    np.testing.assert_allclose(dr.weight_cosine(model, n_outputs=4), expected, atol=1e-6)
    with pytest.raises(ArgumentError, match=r"^classes: expected output indices in \[0, 3\] .*got \[0, 4\]$"):
        dr.weight_cosine(w, classes=[0, 4])


def fake_result(rng, C=4, T=5, K=8, W=3):
    return make_result(C, T, K, W, seed=rng, summarized=True)


def test_result_round_trip_and_summary(tmp_path):
    import h5py

    res = fake_result(np.random.default_rng(4))
    path = res.save(tmp_path / "sub" / "r.h5")
    back = dr.load(path)
    for name in ("classes", "fims", "fivs", "scores", "weights", "inconsistency", "bic", "n_components",
                 "non_additive", "consistent_sign", "ofiv", "trace", "steps"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name), err_msg=name)
    assert back.class_names == res.class_names and back.channel_names == res.channel_names
    assert back.layer == "conv2" and back.params == res.params
    with h5py.File(path, "r") as f:  # plain h5py reads it
        assert f["ofiv"].shape == (4, 8)
    text = str(back)
    assert "c0" in text and "layer 'conv2'" in text
    table = back.channel_table("c2")
    assert list(table["ofiv"]) == sorted(res.ofiv[2], reverse=True)
    with pytest.raises(ArgumentError, match=r"^cls: expected an output index this result analysed \(0, 1, 2, 3\), "
                                            r"got 9, which was not analysed$"):
        back.index_of(9)
    with pytest.raises(ArgumentError, match=r"^cls: expected a class name of this result \('c0', 'c1', 'c2', 'c3'\), "
                                            r"got 'nope'$"):
        back.channel_table("nope")
    with pytest.raises(ArgumentError, match=r"^cls: expected an output index \(int\) or a class name \(str\), "
                                            r"got bool True$"):
        back.index_of(True)
    with pytest.raises(MissingFileError, match=r"^result file '.*missing\.h5' does not exist$"):
        dr.load(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(FileFormatError, match=r"other\.h5': expected a deepresolve result file \(format tag "
                                              r"'deepresolve-result-1'\), got no format tag$"):
        dr.load(tmp_path / "other.h5")
    (tmp_path / "cut.h5").write_bytes(path.read_bytes()[:200])
    with pytest.raises(FileFormatError, match=r"cut\.h5': expected a deepresolve result file \(HDF5\), got a file "
                                              r"h5py cannot read"):
        dr.load(tmp_path / "cut.h5")


def test_repeated_class_names_are_ambiguous_and_refused_by_name_but_found_by_output_index():
    # two outputs share the name "CTCF" (e.g. two experiments of one factor): a name lookup cannot choose a row
    res = make_result(C=4, T=5, K=8, W=3, seed=5, summarized=True, classes=np.array([3, 7, 9, 11]),
                      class_names=["CTCF", "JUND", "CTCF", "GATA1"])
    with pytest.raises(ArgumentError, match=r"^cls: expected a class name that names one output, got 'CTCF', which "
                                            r"is ambiguous \(outputs 3, 9 share it\); pass the output index instead$"):
        res.index_of("CTCF")
    with pytest.raises(ArgumentError, match="ambiguous"):
        res.channel_table("CTCF")
    assert res.index_of(9) == 2 and res.index_of("JUND") == 1
    np.testing.assert_array_equal(res.channel_table(9)["ofiv"], np.sort(res.ofiv[2])[::-1])
    np.testing.assert_array_equal(res.channel_table(3)["ofiv"], np.sort(res.ofiv[0])[::-1])


def test_variance_splits_into_magnitude_and_sign_parts():
    rng = np.random.default_rng(7)
    fivs, w = rng.normal(size=(2, 9, 5)), rng.uniform(0.1, 1, size=(2, 9))
    var, sign = inconsistency(fivs, w), inconsistency(fivs, w, "sign")
    magnitude = inconsistency(np.abs(fivs), w)
    np.testing.assert_allclose(var, magnitude + sign, atol=1e-12)
    with pytest.raises(ArgumentError, match=r"^measure: expected one of 'variance', 'sign', got 'entropy'$"):
        inconsistency(fivs, w, "entropy")


def test_sign_measure_flags_the_xor_pair_where_variance_flags_a_strong_additive_channel():
    rng = np.random.default_rng(8)
    T, K = 10, 16
    fivs = rng.normal(0, 0.01, size=(T, K))
    flip = rng.choice([-1.0, 1.0], size=T)
    fivs[:, 0], fivs[:, 1] = 0.3 * flip, -0.3 * flip      # XOR pair: opposite signs, sign flips between restarts
    fivs[:, 2] = rng.choice([1.0, 2.0], size=T)           # AND channel: always positive, size varies a lot
    fims, scores = fivs[None, :, :, None], np.ones((1, T))
    by_variance = summarize(fims, scores)
    by_sign = summarize(fims, scores, inconsistency="sign")
    assert by_variance["non_additive"][0, 2] and by_variance["inconsistency"][0, 2] > by_variance["inconsistency"][0, 0]
    assert np.flatnonzero(by_sign["non_additive"][0]).tolist() == [0, 1]
