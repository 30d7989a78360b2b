"""resolve(): every argument checked before any work, checkpoints tied to their run, resume equal to a full run."""

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.errors import CheckpointError, DeepResolveError, ModelError


def linear_model(k=8, c=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Identity(), nn.Linear(k, c))


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Identity(), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


# (keyword arguments of resolve beyond the model, what the one-line message must say)
BAD = [
    (dict(classes=[0, 3]), r"classes: expected an output index in \[0, 2\] \(the model has 3 outputs\), got 3"),
    (dict(classes=True), "classes: expected None, an output index or a list of output indices, got bool True"),
    (dict(classes=[1, 1]), r"classes: expected distinct output indices, got duplicates \[1\]"),
    (dict(classes=[]), "classes: expected None .* got \\[\\]"),
    (dict(classes=range(10**9)), "classes: expected at most 3 distinct output indices"),
    (dict(classes=["a"]), "classes: expected an integer, got str 'a'"),
    (dict(layer="nosuch"), "layer='nosuch' is not a module of this model"),
    (dict(input_shape=(8.5,)), r"input_shape: expected a tuple of positive integers .* got \(8.5,\)"),
    (dict(input_shape=(0,)), r"input_shape: expected a tuple of positive integers .* got \(0,\)"),
    (dict(input_shape=(9,)), r"the body .* failed on an input of shape \(1, 9\)|the model failed"),
    (dict(restarts=0), "restarts: expected an integer >= 1, got 0"),
    (dict(l2=0), "l2 .lambda.: expected a finite number > 0, got 0"),
    (dict(l2="big"), "l2: expected one of 'auto', 'reach', 'gradient', 'prior', 'norm', got 'big'"),
    (dict(l2_center="mean"), "inputs: expected a few real inputs .* got None"),
    (dict(l2="prior"), r"input_shape: expected a one-hot DNA input with exactly one axis of size 4.* got \(8,\)"),
    (dict(steps=0), "steps: expected an integer >= 1, got 0"),
    (dict(patience=0), "patience: expected an integer >= 1, got 0"),
    (dict(optimizer="adam"), "optimizer: expected one of 'matched', 'bundle', 'paper', got 'adam'"),
    (dict(precision="float16"), "precision: expected one of 'float32', 'bfloat16', got 'float16'"),
    (dict(device="cuda:7" if torch.cuda.is_available() else "cuda"), "device: expected a device this machine has"),
    (dict(seed=-1), "seed: expected an integer >= 0, got -1"),
    (dict(seed=1.5), "seed: expected an integer, got float 1.5"),
    (dict(inconsistency="var"), "inconsistency: expected one of 'variance', 'sign', got 'var'"),
    (dict(at="middle"), "at: expected one of 'output', 'input', got 'middle'"),
    (dict(nonnegative="yes"), "nonnegative: expected one of True, False, got 'yes'"),
    (dict(class_names=["a", "b"]), "class_names: expected one name per output .3. or per selected class .3., got 2"),
    (dict(channel_names=["a"]), r"channel_names: expected one name per channel \(K = 8\), got 1 names"),
    (dict(l2_center=np.zeros(3)), r"l2_center: expected a map of the layer's feature shape \(8,\), got shape \(3,\)"),
    (dict(l2_center="median"), "l2_center: expected one of 'mean', got 'median'"),
    (dict(tolerance=1e-3), "tolerance: unknown ascent option"),
    (dict(input_shap=(8,)), r"input_shap: unknown ascent option.*; did you mean input_shape\?"),
    (dict(keep_maps=False), r"did you mean keep_fims\?"),
    (dict(start_decay=100), "start_decay: an option of optimizer='paper' only; got start_decay=100 with "
                            "optimizer='matched'"),
    (dict(optimizer="paper", decay=-1.0), "decay: expected a finite number > 0, got -1.0"),
    (dict(inputs=np.zeros((5, 9)), l2="prior"),
     r"inputs: expected arrays of shape \(N, \*input_shape\) = \(N, 8\), got "
                                                r"shape \(5, 9\)"),
]


@pytest.mark.parametrize("kwargs, message", BAD, ids=[str(sorted(k)) + str(i) for i, (k, _) in enumerate(BAD)])
def test_every_mistake_is_one_specific_error_before_any_file(tmp_path, kwargs, message):
    kwargs = {"layer": "0", "input_shape": (8,), **kwargs}
    ck = tmp_path / "ck"
    with pytest.raises(DeepResolveError, match=message) as info:
        dr.resolve(linear_model(), kwargs.pop("layer"), checkpoint=ck, **kwargs)
    assert "\n" not in str(info.value)
    assert not ck.exists()


def test_errors_keep_the_builtin_types_users_catch():
    with pytest.raises(ValueError):
        dr.resolve(linear_model(), "0", input_shape=(8,), restarts=0)
    with pytest.raises(TypeError):
        dr.resolve(linear_model(), "0", input_shape=(8,), seed="0")
    with pytest.raises(ModelError):
        dr.resolve(nn.Sequential(nn.Identity(), nn.Flatten(0)), "0", input_shape=(8,))


def test_checkpoint_resumes_and_refuses_another_run(tmp_path):
    model = mlp()
    ck = tmp_path / "ck"
    full = dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.5, checkpoint=ck)
    settings = json.loads((ck / "settings.json").read_text())
    assert settings["l2"] == 0.5 and settings["classes"] == [0, 1, 2] and len(settings["model"]) == 64
    assert "batch_size" not in settings and "device" not in settings

    again = dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.5, checkpoint=ck, batch_size=5)
    assert again.params["row_steps"] == 0  # every row came from the store
    np.testing.assert_array_equal(again.fims, full.fims)
    np.testing.assert_array_equal(again.ofiv, full.ofiv)

    with pytest.raises(CheckpointError, match=r"another run \(l2: stored 0.5, now 0.6\)"):
        dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.6, checkpoint=ck)
    other = mlp(seed=1)  # same architecture, other weights: must not reuse the maps
    with pytest.raises(CheckpointError, match="model: stored"):
        dr.resolve(other, "0", input_shape=(6,), restarts=4, l2=0.5, checkpoint=ck)
    with pytest.raises(CheckpointError, match="classes: stored"):
        dr.resolve(model, "0", input_shape=(6,), classes=[0, 1], restarts=4, l2=0.5, checkpoint=ck)
    with pytest.raises(CheckpointError, match="seed: stored 0, now 1"):
        dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.5, seed=1, checkpoint=ck)


def test_a_partial_store_resumes_to_the_full_result(tmp_path):
    model = mlp()
    ck = tmp_path / "ck"
    full = dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.5, checkpoint=ck)
    chunks = sorted(ck.glob("chunk-*.npz"))
    with np.load(chunks[0]) as z:  # keep only the first half of the rows, as if killed half-way
        arrays = {k: z[k] for k in z.files}
    keep = arrays["rows"] < 6
    offsets = arrays["trace_offsets"]
    trace = np.concatenate([arrays["trace"][offsets[j]:offsets[j + 1]] for j in np.flatnonzero(keep)])
    lengths = np.diff(offsets)[keep]
    for c in chunks:
        c.unlink()
    np.savez(ck / "chunk-000000.npz", rows=arrays["rows"][keep], fims=arrays["fims"][keep],
             scores=arrays["scores"][keep], objective=arrays["objective"][keep], steps=arrays["steps"][keep],
             trace_offsets=np.concatenate([[0], np.cumsum(lengths)]), trace=trace)
    resumed = dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.5, checkpoint=ck)
    assert 0 < resumed.params["row_steps"] < full.params["row_steps"]
    # within the batching tolerance of deepresolve.ascent: the resumed rows shared their batches with other rows
    scale = np.abs(full.fivs).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(resumed.fivs - full.fivs) <= 5e-2 * scale)
    np.testing.assert_array_equal(resumed.non_additive, full.non_additive)


def test_a_policy_lambda_that_differs_in_its_last_bits_resumes_the_same_store(tmp_path, monkeypatch):
    import deepresolve.regularization as reg

    torch.manual_seed(0)
    inputs = torch.randn(20, 6)
    ck = tmp_path / "ck"
    first = dr.resolve(mlp(), "0", restarts=2, inputs=inputs, checkpoint=ck)
    real = reg.choose_l2

    def nudged(*args, **kwargs):  # another machine's float kernels: the same lambda to 1e-7
        choice = real(*args, **kwargs)
        choice.l2 *= 1 + 1e-7
        return choice

    monkeypatch.setattr(sys.modules["deepresolve.pipeline"], "choose_l2", nudged)
    again = dr.resolve(mlp(), "0", restarts=2, inputs=inputs, checkpoint=ck)
    assert again.params["row_steps"] == 0 and again.params["l2"] != first.params["l2"]


@pytest.mark.parametrize("optimizer, options", [("matched", {}), ("bundle", {"cuts": 4}),
                                                ("paper", {"steps": 30, "start_decay": 10, "decay": 0.4})])
def test_run_store_settings_keep_the_keys_of_earlier_versions(tmp_path, optimizer, options):
    # a store written before the ascent options became one table must still resume: the same keys, "alpha" for
    # the paper schedule's decay
    ck = tmp_path / "ck"
    res = dr.resolve(mlp(), "0", input_shape=(6,), restarts=2, l2=0.5, optimizer=optimizer, checkpoint=ck, **options)
    settings = json.loads((ck / "settings.json").read_text())
    own = {"matched": ["lr", "steps", "tol", "patience"], "bundle": ["lr", "steps", "tol", "patience", "cuts"],
           "paper": ["lr", "steps", "tol", "patience", "start_decay", "alpha", "min_lr"]}[optimizer]
    assert sorted(settings) == sorted(["format", "model", "layer", "at", "logits", "head_given", "classes", "restarts",
                                       "seed", "l2", "optimizer", *own, "init_scale", "precision", "nonnegative",
                                       "feature_shape", "center"])
    if optimizer == "paper":
        assert settings["alpha"] == 0.4 and res.params["decay"] == 0.4 and "alpha" not in res.params
    assert res.params["optimizer"] == optimizer and all(res.params[k] == v for k, v in options.items())
    again = dr.resolve(mlp(), "0", input_shape=(6,), restarts=2, l2=0.5, optimizer=optimizer, checkpoint=ck, **options)
    assert again.params["row_steps"] == 0


def test_the_old_name_of_decay_still_works_with_a_future_warning(tmp_path):
    kwargs = dict(input_shape=(6,), restarts=2, l2=0.5, optimizer="paper", steps=30, start_decay=10)
    new = dr.resolve(mlp(), "0", decay=0.4, checkpoint=tmp_path / "ck", **kwargs)
    with pytest.warns(FutureWarning, match=r"resolve\(alpha=...\) is now resolve\(decay=...\)"):
        old = dr.resolve(mlp(), "0", alpha=0.4, checkpoint=tmp_path / "ck", **kwargs)
    assert old.params["row_steps"] == 0 and old.params["decay"] == 0.4  # the same run: resumed from new's store
    np.testing.assert_array_equal(old.fims, new.fims)
