"""The analyses give the same results on every form a model comes in: a TorchScript file, a Keras file, a module
that needs adapters (``channels_last`` input, a tuple output) and is cut by ``torch.fx``, as on the eager module.

The model is the committed trained XOR fixture; each form computes the same function, so the interactions (same
seed) and the channel motifs must be equal to the eager module's up to float rounding.
"""

import numpy as np
import pytest
import torch
from _factories import layer, write_keras2

import deepresolve as dr
from deepresolve.io.models import load_model
from deepresolve.split import adapt
from tests.test_interactions import load_fixture

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SETTINGS = dict(input_shape=(4, 40), seed=0, contexts=16, word_length=6)


class Published(torch.nn.Module):
    """The fixture as a published model might wrap it: (N, L, 4) in, (probability, logit) out."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.net(x.transpose(1, 2))
        return p, torch.logit(p)


def keras_file(model: torch.nn.Module, path):
    """The fixture (conv 32 x 8 bp, ReLU, max-pool 4, dense 64, ReLU, dense 1, sigmoid) as a Keras 2 file: kernels
    in Keras's layouts, the first dense layer's rows in the order of Keras's channels-last flatten."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    F, W = 32, 8
    layers = [
        layer("Conv1D", "conv1d_1", filters=F, kernel_size=[8], strides=[1], padding="valid",
              data_format="channels_last", dilation_rate=[1], activation="relu", use_bias=True,
              batch_input_shape=[None, 40, 4]),
        layer("MaxPooling1D", "max_pooling1d_1", pool_size=[4], strides=[4], padding="valid"),
        layer("Flatten", "flatten_1", data_format="channels_last"),
        layer("Dense", "dense_1", units=64, activation="relu", use_bias=True),
        layer("Dense", "dense_2", units=1, activation="sigmoid", use_bias=True)]
    return write_keras2(path, layers, {
        "conv1d_1": {"kernel": sd["conv1.weight"].transpose(2, 1, 0), "bias": sd["conv1.bias"]},
        "dense_1": {"kernel": sd["dense1.weight"].reshape(64, F, W).transpose(2, 1, 0).reshape(W * F, 64),
                    "bias": sd["dense1.bias"]},
        "dense_2": {"kernel": sd["dense2.weight"].T, "bias": sd["dense2.bias"]}})


@pytest.fixture(scope="module")
def eager():
    _, model, _ = load_fixture("xor40")
    with torch.no_grad():
        torch.set_num_threads(1)
        return model, dr.interactions(model, "pool1", **SETTINGS)


def other_form(form: str, model: torch.nn.Module, tmp_path) -> tuple[torch.nn.Module, str, dict]:
    """The model in ``form``, the name of the fixture's pool1 there, and the adapters it needs."""
    if form == "torchscript":
        torch.jit.script(model).save(str(tmp_path / "model.pt"))
        return load_model(tmp_path / "model.pt"), "pool1", {}
    if form == "keras":
        return load_model(keras_file(model, tmp_path / "model.h5")), "pool1", {}
    return Published(model).eval(), "net.pool1", dict(output=0, channels_last=True)


@pytest.mark.parametrize("form", ["torchscript", "keras", "fx with adapters"])
def test_interactions_equal_the_eager_modules(eager, form, tmp_path):
    model, want = eager
    other, name, adapters = other_form(form, model, tmp_path)
    got = dr.interactions(other, name, **SETTINGS, **adapters)
    assert got.params["on_levels"] == want.params["on_levels"]  # the filter consensus, found through the wrappers
    np.testing.assert_array_equal(got.group_words, want.group_words)
    np.testing.assert_array_equal(got.groups, want.groups)
    np.testing.assert_array_equal(got.group_pairs, want.group_pairs)
    np.testing.assert_array_equal(got.pairs, want.pairs)
    np.testing.assert_allclose(got.group_values, want.group_values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.on_levels, want.on_levels, rtol=1e-5)


@pytest.mark.parametrize("form", ["torchscript", "keras", "fx with adapters"])
def test_channel_motifs_equal_the_eager_modules(eager, form, tmp_path):
    model, _ = eager
    other, name, adapters = other_form(form, model, tmp_path)
    if adapters:
        other = adapt(other, **adapters)
    x = torch.eye(4)[torch.randint(0, 4, (12, 40), generator=torch.Generator().manual_seed(0))].transpose(1, 2)
    want, _ = dr.channel_motifs(model, "pool1", x, seed=0, restarts=2, steps=20)
    got, _ = dr.channel_motifs(other, name, x, seed=0, restarts=2, steps=20)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
