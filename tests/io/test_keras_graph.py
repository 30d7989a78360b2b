"""Keras functional models (Keras 1 Model, Keras 2 Functional, Keras 3 .keras/.h5) against independent numpy
forwards: published architectures in miniature (DeepSTARR's two heads, ChromBPNet's dilated residual tower),
shared layers, fixed extra inputs, Lambda layers, and cutting an imported graph by its Keras layer names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from keras_numpy import ACTIVATIONS, batchnorm, conv1d, dense, onehot, pool1d, relu
from keras_writers import Graph, write

import deepresolve as dr
from deepresolve.errors import ArgumentError, DeepResolveError, ModelError
from deepresolve.io.keras import KerasGraph, check_input_shape, load_keras
from deepresolve.io.models import load_model
from deepresolve.split import SplitError

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _keras_batch(x):
    return np.asarray(x, dtype=np.float64).transpose(0, 2, 1)  # (N, 4, L) -> Keras's (N, L, 4)


# ---------------------------------------------------------------------------------------------------------------
# DeepSTARR (de Almeida et al. 2022): conv/BN/ReLU/pool blocks, two dense blocks, two linear heads (Dev, Hk)


def deepstarr(rng, L=24, F=(4, 3), units=5):
    g, w = Graph(), {}
    h = g.input("input_1", (L, 4))
    c_in, length = 4, L
    for i, f in enumerate(F):
        conv = "Conv1D_1st" if i == 0 else f"Conv1D_{i + 1}"
        w[conv] = (rng.normal(size=(7 if i == 0 else 3, c_in, f)) * 0.5, rng.normal(size=f) * 0.1)
        bn = "batch_normalization" + (f"_{i}" if i else "")
        w[bn] = (rng.uniform(0.5, 2, f), rng.normal(size=f), rng.normal(size=f) * 0.1, rng.uniform(0.5, 2, f))
        h = g.add("Conv1D", conv, h, [("kernel", w[conv][0]), ("bias", w[conv][1])], filters=f,
                  kernel_size=[w[conv][0].shape[0]], strides=[1], padding="same", dilation_rate=[1],
                  activation="linear", use_bias=True, data_format="channels_last")
        h = g.add("BatchNormalization", bn, h, list(zip(["gamma", "beta", "moving_mean", "moving_variance"], w[bn])),
                  axis=[2], momentum=0.99, epsilon=0.001, center=True, scale=True)
        h = g.add("Activation", "activation" + (f"_{i}" if i else ""), h, activation="relu")
        h = g.add("MaxPooling1D", "max_pooling1d" + (f"_{i}" if i else ""), h, pool_size=[2], strides=[2],
                  padding="valid", data_format="channels_last")
        c_in, length = f, length // 2
    h = g.add("Flatten", "flatten", h, data_format="channels_last")
    n_in = c_in * length
    for i in range(2):
        name = f"Dense_{i + 1}"
        w[name] = (rng.normal(size=(n_in, units)) * 0.3, rng.normal(size=units) * 0.1)
        h = g.add("Dense", name, h, [("kernel", w[name][0]), ("bias", w[name][1])], units=units, activation="linear",
                  use_bias=True)
        bn = f"batch_normalization_{len(F) + i}"
        w[bn] = (rng.uniform(0.5, 2, units), rng.normal(size=units), rng.normal(size=units) * 0.1,
                 rng.uniform(0.5, 2, units))
        h = g.add("BatchNormalization", bn, h, list(zip(["gamma", "beta", "moving_mean", "moving_variance"], w[bn])),
                  axis=-1, epsilon=0.001)
        h = g.add("Activation", f"activation_{len(F) + i}", h, activation="relu")
        h = g.add("Dropout", f"dropout_{i}", h, rate=0.4)
        n_in = units
    heads = []
    for task in ("Dev", "Hk"):
        w[f"Dense_{task}"] = (rng.normal(size=(units, 1)), rng.normal(size=1))
        heads.append(g.add("Dense", f"Dense_{task}", h, [("kernel", w[f"Dense_{task}"][0]),
                                                           ("bias", w[f"Dense_{task}"][1])],
                           units=1, activation="linear", use_bias=True))
    return g.output(*heads), w


def deepstarr_numpy(x, w, n_conv=2):
    out = []
    for xi in _keras_batch(x):
        h = xi
        for i in range(n_conv):
            conv = "Conv1D_1st" if i == 0 else f"Conv1D_{i + 1}"
            bn = "batch_normalization" + (f"_{i}" if i else "")
            h = relu(batchnorm(conv1d(h, *w[conv], padding="same"), *w[bn], 1e-3))
            h = pool1d(h, 2, 2, "valid", "max")
        h = h.reshape(-1)  # Keras flattens (steps, channels)
        for i in range(2):
            h = relu(batchnorm(dense(h, *w[f"Dense_{i + 1}"]), *w[f"batch_normalization_{n_conv + i}"], 1e-3))
        out.append([dense(h, *w["Dense_Dev"])[0], dense(h, *w["Dense_Hk"])[0]])
    return np.array(out)


def test_deepstarr_two_heads_json_and_weights_of_any_name(tmp_path):
    rng = np.random.default_rng(0)
    g, w = deepstarr(rng)
    folder = write(g, tmp_path / "DeepSTARR", "k2json")
    (folder / "model.json").rename(folder / "DeepSTARR.model.json")
    (folder / "weights.h5").rename(tmp_path / "Model_DeepSTARR.weights")  # elsewhere, under another name
    model = load_model(folder / "DeepSTARR.model.json", weights=tmp_path / "Model_DeepSTARR.weights")
    assert isinstance(model, KerasGraph) and not model.training
    assert model.input_shape == (4, 24) and model.keras_input_shape == (24, 4) and model.keras_version == 2
    assert model.output_names == ("Dense_Dev", "Dense_Hk")
    assert model.output_heads == {"Dense_Dev": (0, 1), "Dense_Hk": (1, 2)}
    names = dict(model.named_children())
    assert {"Conv1D_1st", "Conv1D_2", "batch_normalization", "max_pooling1d_1", "Dense_1", "Dense_Dev"} <= set(names)
    assert model.keras_layers["Conv1D_1st"] == "Conv1D_1st"
    x = onehot(rng, 3, 24)
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, deepstarr_numpy(x, w), rtol=1e-4, atol=1e-5)

    # The user names a layer as Keras named it; the graph is cut there (torch.fx), the head is H -> (N, 2).
    body, head = dr.split_model(model, "Conv1D_2", input_shape=model.input_shape)
    xt = torch.tensor(x, dtype=torch.float32)
    torch.testing.assert_close(head(body(xt)), model(xt), rtol=1e-4, atol=1e-5)
    assert body(xt).shape == (3, 3, 12)  # the Conv1D_2 output, channels first
    layers = [name for name, _, _ in dr.list_layers(model, model.input_shape)]
    assert "Conv1D_2" in layers and "Dense_Hk" in layers


# ---------------------------------------------------------------------------------------------------------------
# ChromBPNet without its bias model (Pampari et al.): dilated residual convolutions with Add and Cropping1D, a
# profile head (conv, crop, flatten) and a counts head (global average pooling, dense)


def chrombpnet_nobias(rng, L=64, F=4, n_dil=3, out_len=16):
    g, w = Graph(), {}
    x = g.input("sequence", (L, 4))
    w["wo_bias_bpnet_1st_conv"] = (rng.normal(size=(5, 4, F)) * 0.5, rng.normal(size=F) * 0.1)
    h = g.add("Conv1D", "wo_bias_bpnet_1st_conv", x, list(zip(["kernel", "bias"], w["wo_bias_bpnet_1st_conv"])),
              filters=F, kernel_size=[5], padding="valid", activation="relu", dilation_rate=[1], strides=[1])
    length = L - 4
    for i in range(1, n_dil + 1):
        name = f"wo_bias_bpnet_{i}conv"
        w[name] = (rng.normal(size=(3, F, F)) * 0.4, rng.normal(size=F) * 0.1)
        conv = g.add("Conv1D", name, h, list(zip(["kernel", "bias"], w[name])), filters=F, kernel_size=[3],
                     padding="valid", activation="relu", dilation_rate=[2 ** i], strides=[1])
        new = length - 2 * 2 ** i
        crop = g.add("Cropping1D", f"wo_bias_bpnet_{i}crop", h, cropping=[(length - new) // 2] * 2)
        h = g.add("Add", "add" if i == 1 else f"add_{i - 1}", [conv, crop])
        length = new
    w["wo_bias_bpnet_prof_out_precrop"] = (rng.normal(size=(7, F, 1)) * 0.5, rng.normal(size=1))
    p = g.add("Conv1D", "wo_bias_bpnet_prof_out_precrop", h,
              list(zip(["kernel", "bias"], w["wo_bias_bpnet_prof_out_precrop"])), filters=1, kernel_size=[7],
              padding="valid", activation="linear")
    crop = (length - 6) // 2 - out_len // 2
    p = g.add("Cropping1D", "wo_bias_bpnet_logits_profile_predictions_preflatten", p, cropping=[crop, crop])
    p = g.add("Flatten", "wo_bias_bpnet_logits_profile_predictions", p)
    gap = g.add("GlobalAveragePooling1D", "wo_bias_bpnet_gap", h, data_format="channels_last")
    w["wo_bias_bpnet_logcount_predictions"] = (rng.normal(size=(F, 1)), rng.normal(size=1))
    counts = g.add("Dense", "wo_bias_bpnet_logcount_predictions", gap,
                   list(zip(["kernel", "bias"], w["wo_bias_bpnet_logcount_predictions"])), units=1)
    return g.output(p, counts), w


def chrombpnet_numpy(x, w, n_dil=3, out_len=16):
    out = []
    for xi in _keras_batch(x):
        h = relu(conv1d(xi, *w["wo_bias_bpnet_1st_conv"]))
        for i in range(1, n_dil + 1):
            c = relu(conv1d(h, *w[f"wo_bias_bpnet_{i}conv"], dilation=2 ** i))
            cut = (h.shape[0] - c.shape[0]) // 2
            h = c + h[cut:h.shape[0] - cut]
        p = conv1d(h, *w["wo_bias_bpnet_prof_out_precrop"])[:, 0]
        start = p.shape[0] // 2 - out_len // 2
        counts = dense(h.mean(axis=0), *w["wo_bias_bpnet_logcount_predictions"])
        out.append(np.concatenate([p[start:start + out_len], counts]))
    return np.array(out)


@pytest.mark.parametrize("dialect", ["k2", "k3h5", "keras"])
def test_chrombpnet_nobias_matches_numpy_and_splits_at_keras_names(tmp_path, dialect):
    rng = np.random.default_rng(1)
    g, w = chrombpnet_nobias(rng)
    path = write(g, tmp_path / "chrombpnet_nobias.h5", dialect)  # a .keras archive under an .h5 name: content wins
    model = load_model(path)
    assert model.keras_version == (2 if dialect == "k2" else 3)
    assert model.output_heads == {"wo_bias_bpnet_logits_profile_predictions": (0, 16),
                                  "wo_bias_bpnet_logcount_predictions": (16, 17)}
    assert model.output_names[0] == "wo_bias_bpnet_logits_profile_predictions[0]"
    assert model.output_names[-1] == "wo_bias_bpnet_logcount_predictions"
    x = onehot(rng, 2, 64)
    xt = torch.tensor(x, dtype=torch.float32)
    np.testing.assert_allclose(model(xt).detach().numpy(), chrombpnet_numpy(x, w), rtol=1e-4, atol=1e-5)

    # torch.fx traces the graph as it is
    torch.testing.assert_close(torch.fx.symbolic_trace(model)(xt), model(xt))
    # cut at the first convolution and at the output of a residual sum, by their Keras names
    for layer, shape in (("wo_bias_bpnet_1st_conv", (4, 60)), ("add_1", (4, 48))):
        body, head = dr.split_model(model, layer, input_shape=(4, 64))
        assert body(xt).shape[1:] == shape
        torch.testing.assert_close(head(body(xt)), model(xt), rtol=1e-4, atol=1e-5)
    # inside a residual block the skip connection also reads the block's input: not a function of H alone
    with pytest.raises(SplitError, match="skip connection"):
        dr.split_model(model, "wo_bias_bpnet_2conv", input_shape=(4, 64))
    # the pre-activation output of a layer with an activation is its inner module
    body, _ = dr.split_model(model, "wo_bias_bpnet_1st_conv.conv", input_shape=(4, 64))
    assert (body(xt) < 0).any()


# ---------------------------------------------------------------------------------------------------------------
# Keras 1 functional: Merge layers, a shared layer, a second input fed a fixed value


def two_inputs_keras1(rng, L=12, F=3, units=2):
    """DNA -> Convolution1D (Theano) -> global average; a second input; one Dense shared by both branches."""
    g, w = Graph(), {}
    dna = g.input("dna", (L, 4))
    extra = g.input("accessibility", (F,))
    w["conv"] = (rng.normal(size=(5, 1, 4, F)), rng.normal(size=F))  # Keras 1.2 Convolution1D kernel
    h = g.add("Convolution1D", "conv", dna, list(zip(["W", "b"], w["conv"])), nb_filter=F, filter_length=5,
              border_mode="same", activation="relu", subsample_length=1, bias=True)
    h = g.add("GlobalAveragePooling1D", "gap", h)
    w["shared"] = (rng.normal(size=(F, units)), rng.normal(size=units))
    a = g.add("Dense", "shared", h, list(zip(["W", "b"], w["shared"])), output_dim=units, activation="tanh")
    b = g.add("Dense", "shared", extra)  # the second call of the same layer
    s = g.add("Merge", "sum", [a, b], mode="sum", concat_axis=-1)
    c = g.add("Merge", "both", [a, b], mode="concat", concat_axis=-1)
    w["out"] = (rng.normal(size=(units, 1)), rng.normal(size=1))
    o1 = g.add("Dense", "out", s, list(zip(["W", "b"], w["out"])), output_dim=1, activation="linear")
    return g.output(o1, c), w


def test_keras1_shared_layer_merges_and_fixed_input(tmp_path):
    rng = np.random.default_rng(2)
    g, w = two_inputs_keras1(rng)
    folder = write(g, tmp_path / "k1", "k1")
    with pytest.raises(ModelError, match=r"takes 2 inputs \('dna', 'accessibility'\); DeepResolve feeds one, the "
                                         r"DNA sequence \('dna'\): give the others fixed values, "
                                         r"fixed_inputs=\{'accessibility': value\}"):
        load_keras(folder, onehot=True)
    with pytest.raises(ArgumentError, match=r"fixed_inputs: expected names of the model's inputs .*got 'atac'"):
        load_keras(folder, onehot=True, fixed_inputs={"atac": 1.0})
    with pytest.raises(ArgumentError, match=r"fixed_inputs\['accessibility'\]: expected a number or an array of "
                                            r"shape \(3,\)"):
        load_keras(folder, onehot=True, fixed_inputs={"accessibility": np.zeros(4)})
    access = rng.normal(size=3)
    model = load_keras(folder, onehot=True, fixed_inputs={"accessibility": access})
    assert model.keras_inputs == ("dna", "accessibility") and model.fixed_inputs == ("accessibility",)
    assert model.keras_backend == "theano" and model.output_names == ("out", "both[0]", "both[1]", "both[2]",
                                                                       "both[3]")
    x = onehot(rng, 3, 12)
    want = []
    for xi in _keras_batch(x):
        h = relu(conv1d(xi, w["conv"][0][::-1, 0], w["conv"][1], padding="same"))  # Theano: flipped kernel
        a = np.tanh(dense(h.mean(axis=0), *w["shared"]))
        b = np.tanh(dense(access, *w["shared"]))
        want.append(np.concatenate([dense(a + b, *w["out"]), a, b]))
    xt = torch.tensor(x, dtype=torch.float32)
    np.testing.assert_allclose(model(xt).detach().numpy(), np.array(want), rtol=1e-4, atol=1e-5)
    # the branch fed by the fixed input runs after the cut: the head is a function of H alone
    body, head = dr.split_model(model, "conv", input_shape=(4, 12))
    torch.testing.assert_close(head(body(xt)), model(xt), rtol=1e-4, atol=1e-5)
    with pytest.raises(SplitError, match="called 2 times"):  # a shared layer has no single output to analyse
        dr.split_model(model, "shared", input_shape=(4, 12))


# ---------------------------------------------------------------------------------------------------------------
# Lambda layers, a plain chain, input shapes


def chain(rng, L=10, with_lambda=False):
    g, w = Graph(), {}
    h = g.input("input_1", (L, 4))
    w["conv1d"] = (rng.normal(size=(3, 4, 2)), rng.normal(size=2))
    h = g.add("Conv1D", "conv1d", h, list(zip(["kernel", "bias"], w["conv1d"])), filters=2, kernel_size=[3],
              padding="valid", activation="relu")
    if with_lambda:
        h = g.add("Lambda", "lambda", h, function=["4wEAAAAAAAAA", None, None], function_type="lambda")
    h = g.add("Flatten", "flatten", h)
    w["dense"] = (rng.normal(size=((L - 2) * 2, 1)), rng.normal(size=1))
    h = g.add("Dense", "dense", h, list(zip(["kernel", "bias"], w["dense"])), units=1, activation="sigmoid")
    return g.output(h), w


def test_functional_chain_loads_with_keras_names_and_ends_in_its_activation(tmp_path):
    rng = np.random.default_rng(3)
    g, w = chain(rng)
    model = load_model(write(g, tmp_path / "chain.h5"))
    assert list(dict(model.named_children())) == ["from_onehot", "to_channels_first", "conv1d", "flatten", "dense"]
    assert isinstance(model.dense.sigmoid, torch.nn.Sigmoid) and model.output_names is None
    x = onehot(rng, 2, 10)
    want = [ACTIVATIONS["sigmoid"](dense(relu(conv1d(xi, *w["conv1d"])).reshape(-1), *w["dense"]))
            for xi in _keras_batch(x)]
    xt = torch.tensor(x, dtype=torch.float32)
    np.testing.assert_allclose(model(xt).detach().numpy(), np.array(want), rtol=1e-4, atol=1e-5)
    # split_model scores logits: the final sigmoid of the dense layer is dropped from the head
    body, head = dr.split_model(model, "conv1d", input_shape=(4, 10))
    logits = [dense(relu(conv1d(xi, *w["conv1d"])).reshape(-1), *w["dense"]) for xi in _keras_batch(x)]
    np.testing.assert_allclose(head(body(xt)).numpy(), np.array(logits), rtol=1e-4, atol=1e-5)


def test_lambda_is_refused_by_name_and_a_module_can_stand_in(tmp_path):
    rng = np.random.default_rng(4)
    g, w = chain(rng, with_lambda=True)
    path = write(g, tmp_path / "m.h5")
    with pytest.raises(ModelError, match=r"layer 'lambda' is a Keras Lambda.*custom_layers=\{'lambda': module\}") as e:
        load_model(path)
    assert "\n" not in str(e.value)

    class Double(torch.nn.Module):
        def forward(self, x):
            return 2 * x

    model = load_model(path, custom_layers={"lambda": Double()})
    x = onehot(rng, 2, 10)
    want = [ACTIVATIONS["sigmoid"](dense(2 * relu(conv1d(xi, *w["conv1d"])).reshape(-1), *w["dense"]))
            for xi in _keras_batch(x)]
    np.testing.assert_allclose(model(torch.tensor(x, dtype=torch.float32)).detach().numpy(), np.array(want),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ArgumentError, match="custom_layers: expected a dict of Keras names to torch modules"):
        load_model(path, custom_layers={"lambda": lambda x: 2 * x})


def test_input_shape_in_keras_layout_gets_a_clear_message(tmp_path):
    rng = np.random.default_rng(5)
    g, _ = chain(rng, L=200)
    model = load_model(write(g, tmp_path / "m.h5"))
    assert model.input_shape == (4, 200)
    assert check_input_shape(model, (4, 200)) == (4, 200)
    assert check_input_shape(model, (4, 300)) == (4, 300)  # another length: the forward pass decides
    with pytest.raises(ArgumentError, match=r"^--input-shape: expected \(4, 200\) \(this model takes one-hot "
                                            r"sequences channels first, \(4, 200\); \(200, 4\) is the Keras layout, "
                                            r"steps first\), got \(200, 4\)$"):
        check_input_shape(model, (200, 4), "--input-shape")
    keras_layout = load_keras(tmp_path / "m.h5")  # onehot=False: takes Keras's layout
    assert keras_layout.input_shape == (200, 4)
    with pytest.raises(ArgumentError, match=r"this model takes Keras's own layout, \(200, 4\)\), got \(4, 200\)"):
        check_input_shape(keras_layout, (4, 200))
    assert check_input_shape(torch.nn.Identity(), (200, 4)) == (200, 4)  # nothing recorded: nothing to check


def test_broken_graphs_raise_one_line(tmp_path):
    rng = np.random.default_rng(6)
    g, _ = chain(rng)
    g.layers["dense"]["calls"][0] = [("nowhere", 0)]
    with pytest.raises(DeepResolveError, match=r"layer 'dense' refers to layer 'nowhere', which the config does not "
                                               r"define") as e:
        load_model(write(g, tmp_path / "a.h5"))
    assert "\n" not in str(e.value)
    g, _ = chain(rng)
    g.layers["conv1d"]["calls"][0] = [("dense", 0)]  # a cycle
    with pytest.raises(DeepResolveError, match="cycle"):
        load_model(write(g, tmp_path / "b.h5"))
    g, _ = chain(rng)
    g.layers["conv1d"]["cls"] = "LocallyConnected1D"
    with pytest.raises(ModelError, match=r"'LocallyConnected1D', which is not supported; supported layers: "
                                         r"Convolution1D, .*; or give a torch module for it"):
        load_model(write(g, tmp_path / "c.h5"))


# ---------------------------------------------------------------------------------------------------------------
# The command line feeds a Keras model's other inputs: DeepCpG's CpG neighbourhoods held constant, DeepMEL's
# reverse strand computed from the sequence


def deepcpg_like(rng, L=30, cells=2, window=3):
    """DeepCpG's joint model as Keras 2 named it ('dna', 'cpg/state', 'cpg/dist', one 'cpg/<cell>' per cell)."""
    g = Graph()
    dna = g.input("dna", (L, 4))
    state, dist = g.input("cpg/state", (cells, 2 * window)), g.input("cpg/dist", (cells, 2 * window))
    h = g.add("Conv1D", "dna/conv1d_1", dna, [("kernel", rng.normal(size=(5, 4, 3))), ("bias", rng.normal(size=3))],
              filters=3, kernel_size=[5], activation="relu")
    h = g.add("GlobalMaxPooling1D", "dna/pool", h)
    c = g.add("Concatenate", "cpg/concat", [state, dist], axis=-1)
    c = g.add("TimeDistributed", "cpg/dense", c, [("kernel", rng.normal(size=(4 * window, 2))),
                                                 ("bias", rng.normal(size=2))],
              layer={"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "relu"}})
    c = g.add("Flatten", "cpg/flatten", c)
    h = g.add("Concatenate", "joint", [h, c], axis=-1)
    outs = [g.add("Dense", f"cpg/cell{i}", h, [("kernel", rng.normal(size=(3 + 2 * cells, 1))),
                                               ("bias", rng.normal(size=1))], units=1, activation="sigmoid")
            for i in range(cells)]
    return g.output(*outs)


def deepmel_like(rng, L=20):
    g = Graph()
    fw, rv = g.input("forward_input", (L, 4)), g.input("reverse_input", (L, 4))
    W, b = rng.normal(size=(5, 4, 3)), rng.normal(size=3)
    heads = []
    for x in (fw, rv):
        h = g.add("Conv1D", "conv1d", x, [("kernel", W), ("bias", b)], filters=3, kernel_size=[5], activation="relu")
        heads.append(g.add("GlobalMaxPooling1D", "pool", h))
    return g.output(g.add("Average", "average", heads))


def test_cli_feeds_keras_fixed_and_reverse_complement_inputs(tmp_path):
    from typer.testing import CliRunner

    from deepresolve.cli import app

    rng = np.random.default_rng(7)
    cpg = write(deepcpg_like(rng), tmp_path / "deepcpg.h5")
    np.save(tmp_path / "state.npy", rng.integers(0, 2, (2, 6)).astype(np.float32))
    np.save(tmp_path / "dist.npy", rng.uniform(0, 1, (2, 6)).astype(np.float32))
    fixed = ["--fixed-input", f"cpg/state={tmp_path / 'state.npy'}", "--fixed-input",
             f"cpg/dist={tmp_path / 'dist.npy'}"]
    runner = CliRunner()
    out = runner.invoke(app, ["layers", str(cpg), *fixed])
    assert out.exit_code == 0 and "dna/conv1d_1" in out.output and "cpg/cell1" in out.output, out.output
    out = runner.invoke(app, ["run", str(cpg), "--layer", "dna/conv1d_1", *fixed, "--restarts", "2", "--steps", "5",
                              "--l2", "1", "--out", str(tmp_path / "o")])
    assert out.exit_code == 0, out.output
    res = dr.load(tmp_path / "o" / "result.h5")
    assert res.fivs.shape[:2] == (2, 2)  # two cells' outputs, two restarts
    mel = write(deepmel_like(rng), tmp_path / "deepmel.h5")
    out = runner.invoke(app, ["layers", str(mel), "--reverse-complement-input", "reverse_input"])
    assert out.exit_code == 0 and "reverse_input" in out.output and "ReverseComplement" in out.output, out.output
    out = runner.invoke(app, ["layers", str(mel)])  # without it: the loader says which input to name
    assert isinstance(out.exception, ModelError) and "reverse_complement_inputs=['reverse_input']" in str(out.exception)
