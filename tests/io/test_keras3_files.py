"""Keras 3 files written by Keras itself (``.keras`` and legacy ``.h5``), loaded without Keras, against Keras's own
``model.predict``: published genomics architectures in miniature (``keras_models.py``), then cut by their Keras
layer names and analysed (resolve, interactions) as far as each gets."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import deepresolve as dr
from deepresolve.errors import ArgumentError, ModelError
from deepresolve.io.keras import SigmoidGELU, load_keras
from deepresolve.io.models import load_model
from deepresolve.split import SplitError

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: the backend installed with torch
keras = pytest.importorskip("keras")
K = pytest.importorskip("keras_models")  # tests/io/keras_models.py: the architectures, built by Keras

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
FORMATS = ("keras", "h5")


def _onehot(n: int, L: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype="float32")[rng.integers(0, 4, (n, L))].transpose(0, 2, 1)


def _saved(model, tmp_path, fmt):
    path = tmp_path / f"{model.name}.{fmt}"
    model.save(path)
    return path


def _same(torch_model, want, x, atol=1e-4):
    with torch.no_grad():
        got = torch_model(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)


def _logit(x):
    return np.log(x / (1 - x))


@pytest.mark.parametrize("fmt", FORMATS)
def test_bpnet_profile_and_counts(tmp_path, fmt):
    model, x = K.bpnet(), _onehot(3, 64, 0)
    net = load_model(_saved(model, tmp_path, fmt))
    _same(net, K.predict(model, x), x)
    assert net.output_heads == {"profile": (0, 128), "counts": (128, 130)}
    xt = torch.as_tensor(x)
    for layer in ("conv_first", "add_2"):
        body, head = dr.split_model(net, layer, input_shape=(4, 64))
        torch.testing.assert_close(head(body(xt)), net(xt), rtol=1e-4, atol=1e-5)
    with pytest.raises(SplitError, match="Cut instead"):  # inside a residual block
        dr.split_model(net, "conv_dil2", input_shape=(4, 64))
    if fmt == "keras":
        res = dr.resolve(net, "add_2", input_shape=(4, 64), classes=[128, 129], restarts=2, steps=10, seed=0)
        assert res.fivs.shape[:2] == (2, 2)
        ia = dr.interactions(net, "conv_first", input_shape=(4, 64), classes=[128], contexts=4, backgrounds=4, top=2,
                             motif_words="filters", seed=0)
        assert ia.main.shape == (1, 6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_deepstarr_two_heads(tmp_path, fmt):
    model, x = K.deepstarr(), _onehot(3, 40, 1)
    net = load_model(_saved(model, tmp_path, fmt))
    _same(net, K.predict(model, x), x)
    assert net.output_names == ("Dense_Dev", "Dense_Hk")
    body, head = dr.split_model(net, "Conv1D_2", input_shape=(4, 40))
    xt = torch.as_tensor(x)
    torch.testing.assert_close(head(body(xt)), net(xt), rtol=1e-4, atol=1e-5)
    if fmt == "keras":
        res = dr.resolve(net, "Conv1D_2", input_shape=(4, 40), restarts=2, steps=10, seed=0)
        assert res.ofiv.shape == (2, 4)
        ia = dr.interactions(net, "Conv1D_2", input_shape=(4, 40), contexts=4, backgrounds=4, top=2,
                             motif_words="filters", seed=0)
        assert ia.main.shape == (2, 4)


@pytest.mark.parametrize("fmt", FORMATS)
def test_scbasset_custom_layers(tmp_path, fmt):
    """basenji's augmentation layers load natively (identities at inference); its GELU is named and refused until
    a module is given for it."""
    model, x = K.scbasset(), _onehot(3, 48, 2)
    path = _saved(model, tmp_path, fmt)
    with pytest.raises(ModelError, match=r"custom GELU layer.*custom_layers=\{'GELU': "
                                         r"deepresolve\.io\.keras\.SigmoidGELU\(\)\}") as caught:
        load_model(path)
    assert "\n" not in str(caught.value)
    net = load_model(path, custom_layers={"GELU": SigmoidGELU()})
    want = K.predict(model, x)
    _same(net, want, x)
    gelus = [m for m in net.modules() if isinstance(m, SigmoidGELU)]
    assert len(gelus) == 6 and len(set(map(id, gelus))) == 6  # one copy per layer
    # the final sigmoid goes (the head scores logits), also behind SwitchReverse and Flatten
    xt = torch.as_tensor(x)
    body, head = dr.split_model(net, "conv_tower1", input_shape=(4, 48))
    np.testing.assert_allclose(head(body(xt)).numpy(), _logit(want), rtol=1e-3, atol=1e-4)
    if fmt == "keras":
        res = dr.resolve(net, "conv_tower1", input_shape=(4, 48), restarts=2, steps=10, seed=0)
        assert res.ofiv.shape == (5, 8)
        ia = dr.interactions(net, "conv_tower1", input_shape=(4, 48), contexts=4, backgrounds=4, top=2,
                             motif_words="filters", seed=0)
        assert ia.main.shape == (5, 8)


@pytest.mark.parametrize("fmt", FORMATS)
def test_deepmel_reverse_complement_input(tmp_path, fmt):
    model, x = K.deepmel(), _onehot(3, 60, 3)
    path = _saved(model, tmp_path, fmt)
    with pytest.raises(ModelError, match=r"reverse_complement_inputs=\['reverse_input'\]"):
        load_model(path)
    with pytest.raises(ArgumentError, match=r"reverse_complement_inputs: expected names of the model's inputs "
                                            r"\('forward_input', 'reverse_input'\), got 'reverse'"):
        load_model(path, reverse_complement_inputs=["reverse"])
    net = load_model(path, reverse_complement_inputs=["reverse_input"])
    assert net.reverse_complement_inputs == ("reverse_input",) and net.input_shape == (4, 60)
    rc = x[:, ::-1, ::-1].transpose(0, 2, 1).copy()  # Keras's layout
    _same(net, K.predict(model, x, rc), x)
    # the tower is shared by both strands: one layer, two tensors, no single H to analyse
    with pytest.raises(SplitError, match="called 2 times"):
        dr.split_model(net, "conv1d", input_shape=(4, 60))


@pytest.mark.parametrize("fmt", FORMATS)
def test_tf_binding_cnn_sequential(tmp_path, fmt):
    model, x = K.tf_cnn(), _onehot(3, 50, 4)
    net = load_model(_saved(model, tmp_path, fmt))
    assert isinstance(net, torch.nn.Sequential) and list(net._modules)[-1] == "sigmoid"
    want = K.predict(model, x)
    _same(net, want, x)
    body, head = dr.split_model(net, "conv2", input_shape=(4, 50))
    np.testing.assert_allclose(head(body(torch.as_tensor(x))).numpy(), _logit(want), rtol=1e-3, atol=1e-4)
    if fmt == "keras":
        res = dr.resolve(net, "conv2", input_shape=(4, 50), restarts=2, steps=10, seed=0)
        assert res.ofiv.shape == (1, 6)
        ia = dr.interactions(net, "conv1", input_shape=(4, 50), contexts=4, backgrounds=4, top=2,
                             motif_words="filters", seed=0)
        assert ia.main.shape == (1, 8)


@pytest.mark.parametrize("fmt", FORMATS)
def test_deepcpg_dna_module_and_joint_model(tmp_path, fmt):
    x = _onehot(3, 101, 5)
    dna = K.deepcpg_dna()
    net = load_model(_saved(dna, tmp_path, fmt))
    want = K.predict(dna, x)
    _same(net, want, x)
    body, head = dr.split_model(net, "dna_conv1d_2", input_shape=(4, 101))
    # every cell's sigmoid goes: the head scores the logits of the three outputs it joins
    np.testing.assert_allclose(head(body(torch.as_tensor(x))).numpy(), _logit(want), rtol=1e-3, atol=1e-4)

    joint = K.deepcpg_joint()
    path = _saved(joint, tmp_path, fmt)
    rng = np.random.default_rng(6)
    state = rng.integers(0, 2, (3, 8)).astype("float32")  # (cells, 2 * window): CpG states around the site
    dist = rng.uniform(0, 1, (3, 8)).astype("float32")  # their distances
    net = load_model(path, fixed_inputs={"cpg_state": state, "cpg_dist": dist})
    assert net.fixed_inputs == ("cpg_state", "cpg_dist")
    n = len(x)
    want = K.predict(joint, x, np.repeat(state[None], n, 0), np.repeat(dist[None], n, 0))
    _same(net, want, x)
    body, head = dr.split_model(net, "dna_conv1d_2", input_shape=(4, 101))  # the CpG branch runs in the head
    np.testing.assert_allclose(head(body(torch.as_tensor(x))).numpy(), _logit(want), rtol=1e-3, atol=1e-4)
    if fmt == "keras":
        res = dr.resolve(net, "dna_conv1d_2", input_shape=(4, 101), restarts=2, steps=10, seed=0)
        assert res.ofiv.shape == (3, 8)
        ia = dr.interactions(net, "dna_conv1d_1", input_shape=(4, 101), contexts=4, backgrounds=4, top=2,
                             motif_words="filters", seed=0)
        assert ia.main.shape == (3, 8)


def test_nested_model_and_open_length(tmp_path):
    """A model used as a layer of another is built as a module of its own; an input without a length takes the
    length given; separable and depthwise convolutions (dilated, strided, several kernels per channel)."""
    inner_in = keras.Input((None, 4))
    h = keras.layers.Conv1D(5, 7, padding="same", activation="relu", name="conv")(inner_in)
    h = keras.layers.SeparableConv1D(4, 3, depth_multiplier=2, padding="same", dilation_rate=2, name="sep")(h)
    h = keras.layers.DepthwiseConv1D(3, strides=2, depth_multiplier=2, activation="relu", name="depthwise")(h)
    encoder = keras.Model(inner_in, keras.layers.GlobalMaxPooling1D(name="gmp")(h), name="encoder")
    x_in = keras.Input((None, 4), name="sequence")
    out = keras.layers.Dense(2, name="dense")(encoder(x_in))
    model = K.randomize(keras.Model(x_in, out, name="outer"), 7)
    x = _onehot(3, 30, 7)
    for fmt in FORMATS:
        path = _saved(model, tmp_path, fmt)
        with pytest.raises(ArgumentError, match=r"input_shape: expected the input's length, e\.g\. "
                                                r"input_shape=\(4, L\)"):
            load_model(path)
        net = load_model(path, input_shape=(4, 30))
        assert net.input_shape == (4, 30)
        _same(net, K.predict(model, x), x)
        assert "encoder.sep" in dict(net.named_modules())
        body, head = dr.split_model(net, "encoder.conv", input_shape=(4, 30))
        xt = torch.as_tensor(x)
        torch.testing.assert_close(head(body(xt)), net(xt), rtol=1e-4, atol=1e-5)
        keras_layout = load_keras(path, input_shape=(30, 4))  # Keras's own layout without onehot
        assert keras_layout.input_shape == (30, 4)


def test_final_softmax_is_stripped_like_sigmoid(tmp_path):
    """The head scores the pre-softmax logits, whether the softmax is the last Dense's activation, a Softmax layer
    or an Activation layer."""
    x = _onehot(3, 20, 8)
    for last in ("dense", "Softmax", "Activation"):
        inp = keras.Input((20, 4), name="sequence")
        h = keras.layers.Conv1D(4, 5, activation="relu", name="conv")(inp)
        h = keras.layers.Flatten(name="flatten")(h)
        if last == "dense":
            out = keras.layers.Dense(3, activation="softmax", name="out")(h)
        else:
            z = keras.layers.Dense(3, name="out")(h)
            out = keras.layers.Softmax()(z) if last == "Softmax" else keras.layers.Activation("softmax")(z)
        model = K.randomize(keras.Model(inp, out), 9)
        net = load_model(_saved(model, tmp_path, "keras"))
        want = K.predict(model, x)
        _same(net, want, x)
        logits = keras.Model(inp, model.get_layer("out").output)
        z = K.predict(logits, x) if last != "dense" else None
        body, head = dr.split_model(net, "conv", input_shape=(4, 20))
        got = head(body(torch.as_tensor(x))).numpy()
        np.testing.assert_allclose(torch.softmax(torch.as_tensor(got), 1).numpy(), want, rtol=1e-4, atol=1e-5)
        if z is not None:
            np.testing.assert_allclose(got, z, rtol=1e-4, atol=1e-4)
