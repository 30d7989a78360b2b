"""The Keras importer (0.x, 1.x and 2.x files) against an independent numpy computation and the shared trained
models, and the one-line errors for broken files."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _factories import layer, write_keras, write_keras0, write_keras2

from deepresolve.errors import (
    DeepResolveError,
    FileFormatError,
    MissingFileError,
    ModelError,
)
from deepresolve.io.keras import load_keras, sequence_input
from deepresolve.io.models import load_model

SHARED = Path(__file__).parents[3] / "shared" / "data" / "tf422"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------------------------------------------------------
# Independent numpy reference, written in Keras's own layouts with explicit loops


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def theano_conv_axis_offset(k: int) -> int:
    # Theano 'half' mode keeps the full convolution from index (k - 1) // 2 on.
    return (k - 1) // 2


def conv2d_theano_th(x, W, b, stride, border):
    """True 2D convolution, Keras 'th' layout: x (C, H, W), W (F, C, kh, kw) -> (F, H', W')."""
    C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    # full convolution y[f, t1, t2] = sum_{c, m1, m2} x[c, m1, m2] * W[f, c, t1 - m1, t2 - m2]
    full = np.zeros((F, H + kh - 1, Wd + kw - 1))
    for f in range(F):
        for t1 in range(H + kh - 1):
            for t2 in range(Wd + kw - 1):
                s = 0.0
                for c in range(C):
                    for m1 in range(H):
                        for m2 in range(Wd):
                            u, v = t1 - m1, t2 - m2
                            if 0 <= u < kh and 0 <= v < kw:
                                s += x[c, m1, m2] * W[f, c, u, v]
                full[f, t1, t2] = s
    if border == "valid":
        o1, o2 = kh - 1, kw - 1
        n1, n2 = (H - kh) // stride[0] + 1, (Wd - kw) // stride[1] + 1
    else:
        o1, o2 = theano_conv_axis_offset(kh), theano_conv_axis_offset(kw)
        n1, n2 = math.ceil(H / stride[0]), math.ceil(Wd / stride[1])
    out = np.zeros((F, n1, n2))
    for i in range(n1):
        for j in range(n2):
            out[:, i, j] = full[:, o1 + i * stride[0], o2 + j * stride[1]] + b
    return out


def conv2d_tf(x, W, b, stride, border):
    """Cross-correlation, Keras 'tf' layout: x (H, W, C), W (kh, kw, C, F) -> (H', W', F); TF 'SAME' padding."""
    H, Wd, C = x.shape
    kh, kw, _, F = W.shape
    if border == "same":
        n1, n2 = math.ceil(H / stride[0]), math.ceil(Wd / stride[1])
        p1 = max((n1 - 1) * stride[0] + kh - H, 0) // 2
        p2 = max((n2 - 1) * stride[1] + kw - Wd, 0) // 2
    else:
        n1, n2 = (H - kh) // stride[0] + 1, (Wd - kw) // stride[1] + 1
        p1 = p2 = 0
    out = np.zeros((n1, n2, F))
    for i in range(n1):
        for j in range(n2):
            for f in range(F):
                s = b[f]
                for u in range(kh):
                    for v in range(kw):
                        r, q = i * stride[0] + u - p1, j * stride[1] + v - p2
                        if 0 <= r < H and 0 <= q < Wd:
                            s += np.dot(x[r, q, :], W[u, v, :, f])
                out[i, j, f] = s
    return out


def maxpool(x, pool, stride, axes):
    """Valid max pooling over the two axes ``axes`` of a 3D array."""
    a1, a2 = axes
    n1 = (x.shape[a1] - pool[0]) // stride[0] + 1
    n2 = (x.shape[a2] - pool[1]) // stride[1] + 1
    shape = list(x.shape)
    shape[a1], shape[a2] = n1, n2
    out = np.zeros(shape)
    for i in range(n1):
        for j in range(n2):
            idx = [slice(None)] * 3
            idx[a1] = slice(i * stride[0], i * stride[0] + pool[0])
            idx[a2] = slice(j * stride[1], j * stride[1] + pool[1])
            win = x[tuple(idx)]
            o = [slice(None)] * 3
            o[a1], o[a2] = i, j
            out[tuple(o)] = win.max(axis=(a1, a2))
    return out


def dense(x, W, b):
    return x @ W + b  # Keras stores W as (in, out)


# ---------------------------------------------------------------------------------------------------------------


def test_th_conv2d_theano_matches_numpy(tmp_path):
    rng = np.random.default_rng(0)
    C, H, Wd = 3, 4, 9
    Wc, bc = rng.normal(size=(5, C, 3, 4)), rng.normal(size=5) * 0.1
    W1, b1 = rng.normal(size=(5 * 4 * 2, 6)) * 0.3, rng.normal(size=6) * 0.1
    W2, b2 = rng.normal(size=(6, 1)), rng.normal(size=1)
    layers = [
        layer("Convolution2D", "c", nb_filter=5, nb_row=3, nb_col=4, border_mode="same", subsample=[1, 1],
              dim_ordering="th", activation="relu", batch_input_shape=[None, C, H, Wd], bias=True),
        layer("MaxPooling2D", "p", pool_size=[1, 4], strides=[1, 4], dim_ordering="th", border_mode="valid"),
        layer("Flatten", "f"),
        layer("Dense", "d1", output_dim=6, activation="tanh"),
        layer("Dropout", "dr", p=0.5),
        layer("Dense", "d2", output_dim=1, activation="linear"),
        layer("Activation", "a", activation="sigmoid"),
    ]
    folder = write_keras(tmp_path / "m", layers, {"c": [Wc, bc], "d1": [W1, b1], "d2": [W2, b2]})
    model = load_keras(folder)
    x = rng.normal(size=(3, C, H, Wd))
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = []
    for n in range(3):
        h = relu(conv2d_theano_th(x[n], Wc, bc, (1, 1), "same"))
        h = maxpool(h, (1, 4), (1, 4), axes=(1, 2))
        assert h.shape == (5, 4, 2)
        h = np.tanh(dense(h.reshape(-1), W1, b1))  # th: channels-first flatten
        want.append(sigmoid(dense(h, W2, b2)))
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)
    assert not model.training
    assert isinstance(model.sigmoid, torch.nn.Sigmoid) and list(dict(model.named_children()))[-1] == "sigmoid"
    assert {"conv1", "pool1", "flatten", "dense1", "dense2", "dropout1"} <= set(dict(model.named_children()))


def test_th_conv2d_valid_stride_matches_numpy(tmp_path):
    rng = np.random.default_rng(1)
    Wc, bc = rng.normal(size=(2, 4, 1, 5)), rng.normal(size=2)
    W1, b1 = rng.normal(size=(2 * 1 * 5, 1)), rng.normal(size=1)
    layers = [
        layer("Convolution2D", "c", nb_filter=2, nb_row=1, nb_col=5, border_mode="valid", subsample=[1, 2],
              dim_ordering="th", activation="linear", batch_input_shape=[None, 4, 1, 14]),
        layer("Flatten", "f"),
        layer("Dense", "d", output_dim=1, activation="sigmoid"),
    ]
    model = load_keras(write_keras(tmp_path / "m", layers, {"c": [Wc, bc], "d": [W1, b1]}) / "model.json")
    x = rng.normal(size=(2, 4, 1, 14))
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = [sigmoid(dense(conv2d_theano_th(xi, Wc, bc, (1, 2), "valid").reshape(-1), W1, b1)) for xi in x]
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)


def test_tf_conv2d_tensorflow_matches_numpy(tmp_path):
    rng = np.random.default_rng(2)
    H, Wd, C = 5, 8, 2
    Wc, bc = rng.normal(size=(2, 3, C, 4)), rng.normal(size=4) * 0.1  # even kernel height: asymmetric SAME padding
    W1, b1 = rng.normal(size=(3 * 2 * 4, 3)), rng.normal(size=3)
    layers = [
        layer("Convolution2D", "c", nb_filter=4, nb_row=2, nb_col=3, border_mode="same", subsample=[2, 2],
              dim_ordering="tf", activation="relu", batch_input_shape=[None, H, Wd, C]),
        layer("MaxPooling2D", "p", pool_size=[1, 2], strides=None, dim_ordering="tf", border_mode="valid"),
        layer("Flatten", "f"),
        layer("Dense", "d", output_dim=3, activation="softmax"),
    ]
    model = load_keras(write_keras(tmp_path / "m", layers, {"c": [Wc, bc], "d": [W1, b1]}))
    assert model.keras_backend == "tensorflow"
    x = rng.normal(size=(2, H, Wd, C))
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = []
    for xi in x:
        h = relu(conv2d_tf(xi, Wc, bc, (2, 2), "same"))
        assert h.shape == (3, 4, 4)
        h = maxpool(h, (1, 2), (1, 2), axes=(0, 1))
        z = dense(h.reshape(-1), W1, b1)  # tf: (rows, cols, channels) flatten
        want.append(np.exp(z) / np.exp(z).sum())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)


def test_conv1d_theano_matches_numpy(tmp_path):
    rng = np.random.default_rng(3)
    L, C, F, k = 12, 4, 3, 6  # even filter length
    Wc, bc = rng.normal(size=(k, 1, C, F)), rng.normal(size=F)
    W1, b1 = rng.normal(size=(6 * F, 1)), rng.normal(size=1)
    layers = [
        layer("Convolution1D", "c", nb_filter=F, filter_length=k, border_mode="same", subsample_length=1,
              activation="relu", batch_input_shape=[None, L, C]),
        layer("MaxPooling1D", "p", pool_length=2, stride=None, border_mode="valid"),
        layer("Flatten", "f"),
        layer("Dense", "d", output_dim=1, activation="sigmoid"),
    ]
    model = load_keras(write_keras(tmp_path / "m", layers, {"c": [Wc, bc], "d": [W1, b1]}))
    x = rng.normal(size=(2, L, C))
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = []
    for xi in x:
        # Keras 1 Convolution1D = Convolution2D 'tf' on (steps, 1, channels); Theano flips the kernel.
        full = np.zeros((L + k - 1, F))
        for t in range(L + k - 1):
            for m in range(L):
                if 0 <= t - m < k:
                    full[t] += xi[m] @ Wc[t - m, 0]
        h = relu(full[(k - 1) // 2:(k - 1) // 2 + L] + bc)  # (L, F)
        h = np.stack([h[2 * i:2 * i + 2].max(axis=0) for i in range(L // 2)])
        want.append(sigmoid(dense(h.reshape(-1), W1, b1)))
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)
    # a (N, 4, L) one-hot batch goes in through sequence_input
    onehot = torch.eye(4)[torch.randint(0, 4, (2, L))].transpose(1, 2)
    assert model(sequence_input(model, onehot)).shape == (2, 1)


def test_unsupported_layer_is_named(tmp_path):
    layers = [
        layer("Convolution1D", "c", nb_filter=2, filter_length=3, border_mode="valid", activation="relu",
              batch_input_shape=[None, 10, 4]),
        layer("SimpleRNN", "my_rnn", output_dim=4),  # LSTM and GRU load now (tests/io/test_keras_recurrent.py)
    ]
    folder = write_keras(tmp_path / "m", layers, {"c": [np.zeros((3, 1, 4, 2)), np.zeros(2)]})
    with pytest.raises(ValueError, match=r"my_rnn.*'SimpleRNN'.*supported layers: Convolution1D"):
        load_keras(folder)


def test_unsupported_activation_and_bad_paths(tmp_path):
    # elu, gelu, softplus, ... load now: a custom activation stays refused, by name
    layers = [layer("Dense", "d", output_dim=2, activation="my_activation", batch_input_shape=[None, 3])]
    folder = write_keras(tmp_path / "m", layers, {"d": [np.zeros((3, 2)), np.zeros(2)]})
    with pytest.raises(ValueError, match="activation 'my_activation'"):
        load_keras(folder)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_keras(tmp_path / "nope")
    (tmp_path / "x.bin").write_text("")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_model(tmp_path / "x.bin")
    (tmp_path / "m.onnx").write_text("")
    # onnx2torch installed: the file holds no graph; not installed: what to install
    with pytest.raises(DeepResolveError, match="holds no ONNX graph|pip install onnx2torch"):
        load_model(tmp_path / "m.onnx")


def test_torchscript_roundtrip(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 8, 1))
    torch.jit.script(model).save(str(tmp_path / "m.pt"))
    loaded = load_model(tmp_path / "m.pt")
    x = torch.randn(3, 4, 10)
    torch.testing.assert_close(loaded(x), model(x))


@pytest.fixture(scope="module")
def shared_models():
    if not SHARED.is_dir():
        pytest.skip(f"shared trained models not found at {SHARED} (CI keeps ../shared beside the clone)")
    return sorted(p for p in SHARED.iterdir() if p.is_dir())


def test_every_shared_model_loads(shared_models):
    assert len(shared_models) == 141
    x = torch.eye(4)[torch.randint(0, 4, (5, 101), generator=torch.Generator().manual_seed(0))].transpose(1, 2)
    x = x.unsqueeze(2)  # (N, 4, 1, 101): the models' Theano 'th' input
    for folder in shared_models:
        model = load_keras(folder)
        with torch.no_grad():
            y = model(x)
        assert y.shape == (5, 1), folder.name
        assert torch.isfinite(y).all() and ((y >= 0) & (y <= 1)).all(), folder.name
        assert model.flatten(torch.zeros(1, 16, 1, 1)).shape == (1, 16)


def test_shared_model_matches_numpy_reference(shared_models):
    """One shared model against the numpy reference built straight from its h5 file."""
    folder = shared_models[0]
    model = load_keras(folder)
    with h5py.File(next(folder.glob("*.h5")), "r") as f:
        g = f["model_weights"]
        names = [n.decode() for n in g.attrs["layer_names"]]
        conv, d1, d2 = [n for n in names if n.startswith(("convolution", "dense"))]
        Wc, bc = g[conv][f"{conv}_W"][()], g[conv][f"{conv}_b"][()]
        W1, b1 = g[d1][f"{d1}_W"][()], g[d1][f"{d1}_b"][()]
        W2, b2 = g[d2][f"{d2}_W"][()], g[d2][f"{d2}_b"][()]
    rng = np.random.default_rng(4)
    x = np.eye(4)[rng.integers(0, 4, (2, 101))].transpose(0, 2, 1)[:, :, None, :]
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = []
    for xi in x:
        h = relu(conv2d_theano_th(xi[:, :, :], Wc, bc, (1, 1), "same"))  # (16, 1, 101)
        want.append(sigmoid(dense(relu(dense(h.max(axis=(1, 2)), W1, b1)), W2, b2)))
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-6)


def test_onehot_input_adapter(shared_models):
    plain = load_keras(shared_models[0])
    wrapped = load_keras(shared_models[0], onehot=True)
    x = torch.eye(4)[torch.randint(0, 4, (3, 101))].transpose(1, 2)
    torch.testing.assert_close(wrapped(x), plain(x.unsqueeze(2)))
    torch.testing.assert_close(wrapped(sequence_input(wrapped, x)), plain(sequence_input(plain, x)))
    assert list(dict(wrapped.named_children()))[0] == "from_onehot" and hasattr(wrapped, "flatten")


# ---------------------------------------------------------------------------------------------------------------
# Keras 2 model.save() files and Keras 0.x json + weights, through the same builders


def conv1d_tf(x, W, b, stride, border):
    """Keras 2 Conv1D (cross-correlation, channels_last): x (L, C), W (k, C, F) -> (L', F)."""
    return conv2d_tf(x[None], W[None], b, (1, stride), border)[0]


def batchnorm(x, gamma, beta, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def random_onehot(rng, n, L):
    return np.eye(4)[rng.integers(0, 4, (n, L))].transpose(0, 2, 1)  # (N, 4, L), A, C, G, T


def k2(cls, name, **cfg):
    return layer(cls, name, **cfg)


def test_keras2_conv1d_h5_matches_numpy(tmp_path):
    """A Keras 2 model.save() file with Conv1D (even kernel, TF 'same'), BatchNormalization and Dropout(rate)."""
    rng = np.random.default_rng(5)
    L, F, k = 13, 3, 4
    Wc, bc = rng.normal(size=(k, 4, F)), rng.normal(size=F) * 0.1
    bn = [rng.uniform(0.5, 2, F), rng.normal(size=F), rng.normal(size=F), rng.uniform(0.5, 2, F)]
    W1, b1 = rng.normal(size=(6 * F, 5)) * 0.5, rng.normal(size=5)
    W2, b2 = rng.normal(size=(5, 2)), rng.normal(size=2)
    layers = [
        k2("Conv1D", "conv1d_1", filters=F, kernel_size=[k], strides=[1], padding="same", data_format="channels_last",
           dilation_rate=[1], activation="relu", use_bias=True, batch_input_shape=[None, L, 4]),
        k2("BatchNormalization", "batch_normalization_1", axis=-1, momentum=0.99, epsilon=0.001, center=True,
           scale=True),
        k2("MaxPooling1D", "max_pooling1d_1", pool_size=[2], strides=[2], padding="valid"),
        k2("Flatten", "flatten_1", data_format="channels_last"),
        k2("Dense", "dense_1", units=5, activation="relu", use_bias=True),
        k2("Dropout", "dropout_1", rate=0.4),
        k2("Dense", "dense_2", units=2, activation="linear", use_bias=True),
        k2("Activation", "activation_1", activation="softmax"),
    ]
    path = write_keras2(tmp_path / "elsewhere" / "model.h5", layers, {
        "conv1d_1": {"kernel": Wc, "bias": bc},
        "batch_normalization_1": dict(zip(["gamma", "beta", "moving_mean", "moving_variance"], bn)),
        "dense_1": {"kernel": W1, "bias": b1}, "dense_2": {"kernel": W2, "bias": b2}})
    (tmp_path / "elsewhere" / "unrelated.json").write_text("{}")  # a lone json beside a full model file is not used
    model = load_model(path)  # the dispatcher hands a single .h5 to the Keras loader; one-hot input by default
    assert model.keras_version == 2 and model.keras_backend == "tensorflow" and model.onehot_input
    assert {"conv1", "batchnorm1", "pool1", "flatten", "dense1", "dropout1", "dense2", "softmax"} <= set(
        dict(model.named_children()))
    x = random_onehot(rng, 3, L)
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = []
    for xi in x.transpose(0, 2, 1):  # (L, 4): Keras's channels_last input
        h = relu(conv1d_tf(xi, Wc, bc, 1, "same"))  # (L, F)
        h = batchnorm(h, *bn, 1e-3)
        h = np.stack([h[2 * i:2 * i + 2].max(axis=0) for i in range(L // 2)])  # (6, F)
        z = dense(relu(dense(h.reshape(-1), W1, b1)), W2, b2)
        want.append(np.exp(z) / np.exp(z).sum())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)


def test_keras20_conv2d_list_config_matches_numpy(tmp_path):
    """Keras 2.0 wrote the Sequential config as a bare list; Conv2D channels_last over (1, L, 4), BatchNorm after
    Dense."""
    rng = np.random.default_rng(6)
    L, F = 11, 2
    Wc, bc = rng.normal(size=(1, 3, 4, F)), rng.normal(size=F)
    W1, b1 = rng.normal(size=(5 * F, 3)), rng.normal(size=3)
    bn = [rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.uniform(0.5, 2, 3)]  # scale=False: no gamma
    layers = [
        k2("Conv2D", "conv2d_1", filters=F, kernel_size=[1, 3], strides=[1, 2], padding="valid",
           data_format="channels_last", activation="tanh", use_bias=True, batch_input_shape=[None, 1, L, 4]),
        k2("Flatten", "flatten_1"),
        k2("Dense", "dense_1", units=3, activation="linear", use_bias=True),
        k2("BatchNormalization", "bn", axis=-1, epsilon=0.01, center=True, scale=False),
        k2("Activation", "act", activation="sigmoid"),
    ]
    path = write_keras2(tmp_path / "m.h5", layers, {
        "conv2d_1": {"kernel": Wc, "bias": bc}, "dense_1": {"kernel": W1, "bias": b1},
        "bn": dict(zip(["beta", "moving_mean", "moving_variance"], bn))}, keras_version="2.0.8", wrapped=False)
    model = load_keras(path, onehot=True)
    assert model.keras_layout == "tf2d" and model.keras_version == 2
    x = random_onehot(rng, 2, L)
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = []
    for xi in x.transpose(0, 2, 1)[:, None]:  # (1, L, 4)
        h = np.tanh(conv2d_tf(xi, Wc, bc, (1, 2), "valid"))  # (1, 5, F)
        z = dense(h.reshape(-1), W1, b1)  # channels_last flatten
        want.append(sigmoid(batchnorm(z, 1.0, bn[0], bn[1], bn[2], 0.01)))
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)


def test_keras2_theano_backend_flips_kernels(tmp_path):
    """Keras 2 kept Theano's true convolution: a file saved with backend 'theano' holds flipped kernels."""
    rng = np.random.default_rng(7)
    L, F, k = 9, 2, 3
    Wc, bc = rng.normal(size=(k, 4, F)), rng.normal(size=F)
    W1, b1 = rng.normal(size=((L - k + 1) * F, 1)), rng.normal(size=1)
    layers = [k2("Conv1D", "c", filters=F, kernel_size=[k], strides=[1], padding="valid", activation="relu",
                 use_bias=True, batch_input_shape=[None, L, 4]),
              k2("Flatten", "f"), k2("Dense", "d", units=1, activation="sigmoid", use_bias=True)]
    weights = {"c": {"kernel": Wc, "bias": bc}, "d": {"kernel": W1, "bias": b1}}
    x = random_onehot(rng, 2, L)
    xt = torch.tensor(x, dtype=torch.float32)

    def want(kernel):
        return np.array([sigmoid(dense(relu(conv1d_tf(xi, kernel, bc, 1, "valid")).reshape(-1), W1, b1))
                         for xi in x.transpose(0, 2, 1)])

    theano = load_keras(write_keras2(tmp_path / "th.h5", layers, weights, backend="theano"), onehot=True)
    assert theano.keras_backend == "theano"
    np.testing.assert_allclose(theano(xt).detach().numpy(), want(Wc[::-1]), rtol=1e-4, atol=1e-5)
    tf = load_keras(tmp_path / "th.h5", backend="tensorflow", onehot=True)  # the caller's backend wins
    np.testing.assert_allclose(tf(xt).detach().numpy(), want(Wc), rtol=1e-4, atol=1e-5)


def test_keras0_sequential_json_matches_numpy(tmp_path):
    """Keras 0.3: "name" is the class, parameters at the top level, weights layer_{i}/param_{j}, Theano kernels."""
    rng = np.random.default_rng(8)
    L, C, F, k = 12, 4, 3, 5
    Wc, bc = rng.normal(size=(F, C, k, 1)), rng.normal(size=F)  # Keras 0.x Convolution1D: (filters, channels, k, 1)
    n_out = (L - k + 1) // 2
    W1, b1 = rng.normal(size=(n_out * F, 1)), rng.normal(size=1)
    layers = [
        {"name": "Convolution1D", "nb_filter": F, "filter_length": k, "init": "uniform", "activation": "relu",
         "border_mode": "valid", "subsample_length": 1, "input_dim": C, "input_length": L},
        {"name": "MaxPooling1D", "pool_length": 2, "stride": None, "border_mode": "valid"},
        {"name": "Dropout", "p": 0.2},
        {"name": "Flatten"},
        {"name": "Dense", "output_dim": 1, "init": "glorot_uniform", "activation": "linear", "input_dim": None},
        {"name": "Activation", "activation": "sigmoid"},
    ]
    folder = write_keras0(tmp_path / "m", layers, {0: [Wc, bc], 4: [W1, b1]})
    model = load_model(folder / "model.json")
    assert model.keras_version == 0 and model.keras_backend == "theano"
    assert list(model.keras_layers.values())[-1] == "layer_5"
    x = random_onehot(rng, 2, L)
    got = model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    want = []
    for xi in x.transpose(0, 2, 1):  # (L, C)
        # Theano's true convolution over the steps: y[t] = sum_{m, c} x[m, c] * W[f, c, t - m], valid part
        full = np.zeros((L + k - 1, F))
        for t in range(L + k - 1):
            for m in range(L):
                if 0 <= t - m < k:
                    full[t] += Wc[:, :, t - m, 0] @ xi[m]
        h = relu(full[k - 1:L] + bc)  # (L - k + 1, F)
        h = np.stack([h[2 * i:2 * i + 2].max(axis=0) for i in range(n_out)])
        want.append(sigmoid(dense(h.reshape(-1), W1, b1)))
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Broken files: one specific line naming the file, the layer and what was expected and found


def _k1(tmp_path):
    rng = np.random.default_rng(9)
    layers = [layer("Convolution1D", "c", nb_filter=2, filter_length=3, border_mode="valid", activation="relu",
                    batch_input_shape=[None, 10, 4]),
              layer("Flatten", "f"), layer("Dense", "d", output_dim=1, activation="sigmoid")]
    weights = {"c": [rng.normal(size=(3, 1, 4, 2)), np.zeros(2)], "d": [rng.normal(size=(16, 1)), np.zeros(1)]}
    return layers, weights


def _keras1(tmp_path, edit_layers=None, edit_weights=None, edit_h5=None):
    layers, weights = _k1(tmp_path)
    if edit_layers:
        edit_layers(layers)
    if edit_weights:
        edit_weights(weights)
    folder = write_keras(tmp_path / "m", layers, weights)
    if edit_h5:
        with h5py.File(folder / "model.h5", "a") as f:
            edit_h5(f)
    return folder


def _keras2(tmp_path, edit_h5=None, cls="Conv1D"):
    layers = [k2(cls, "conv1d_1", filters=2, kernel_size=[3], strides=[1], padding="valid", activation="relu",
                 use_bias=True, batch_input_shape=[None, 10, 4]),
              k2("Flatten", "flatten_1"), k2("Dense", "dense_1", units=1, activation="sigmoid", use_bias=True)]
    path = write_keras2(tmp_path / "model.h5", layers, {
        "conv1d_1": {"kernel": np.ones((3, 4, 2)), "bias": np.zeros(2)},
        "dense_1": {"kernel": np.ones((16, 1)), "bias": np.zeros(1)}})
    if edit_h5:
        with h5py.File(path, "a") as f:
            edit_h5(f)
    return path


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _unset(layers, i, key):
    del layers[i]["config"][key]


def _drop_group(folder, name):
    with h5py.File(folder / "model.h5", "a") as f:
        del f[name]
    return folder


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _set_attr(f, key, value):
    f.attrs[key] = value


BROKEN = {
    "k1 weight dataset missing": (
        lambda p: _keras1(p, edit_h5=lambda f: f["model_weights/c"].__delitem__("c_b")),
        FileFormatError,
        r"model\.h5'?: layer 'c' lists weight 'c_b', but the file has no such dataset \(it has \['c_W'\]\)"),
    "k1 layer weights missing": (
        lambda p: _keras1(p, edit_h5=lambda f: f["model_weights"].__delitem__("d")),
        FileFormatError, r"model\.h5: no weights for layer 'd' \(Dense\); expected 2 arrays \(kernel, bias\)"),
    "k1 bias array missing": (
        lambda p: _keras1(p, edit_weights=lambda w: w["d"].pop()),
        FileFormatError,
        r"layer 'd' \(Dense\) expected 2 weight arrays \(kernel, bias\); found 1: \['d_W \(16, 1\)'\]"),
    "k1 field missing": (
        lambda p: _keras1(p, edit_layers=lambda l: _unset(l, 0, "filter_length")),
        FileFormatError,
        r"model\.json: layer 'c' \(Convolution1D\): config has no field 'filter_length' "
        r"\(expected an int or a list of 1 ints\)"),
    "k1 field of another type": (
        lambda p: _keras1(p, edit_layers=lambda l: l[0]["config"].__setitem__("filter_length", "3")),
        FileFormatError,
        r"layer 'c' \(Convolution1D\): field 'filter_length' must be a positive int or 1 of them; found '3'"),
    "k1 dense units missing": (
        lambda p: _keras1(p, edit_layers=lambda l: _unset(l, 2, "output_dim")),
        FileFormatError, r"layer 'd' \(Dense\): config has no field 'output_dim'"),
    "k1 kernel of another shape": (
        lambda p: _keras1(p, edit_weights=lambda w: w.__setitem__("c", [np.ones((5, 1, 4, 2)), np.zeros(2)])),
        FileFormatError,
        r"layer 'c' \(Convolution1D\): expected a kernel of shape \(3, 1, 4, 'filters'\) .*found \(5, 1, 4, 2\)"),
    "k1 dense weights of another shape": (
        lambda p: _keras1(p, edit_weights=lambda w: w.__setitem__("d", [np.ones((15, 1)), np.zeros(1)])),
        FileFormatError, r"layer 'd' \(Dense\): expected weights of shape \(in=16, out=1\); found \(15, 1\)"),
    "k1 no input shape": (
        lambda p: _keras1(p, edit_layers=lambda l: _unset(l, 0, "batch_input_shape")),
        FileFormatError, r"layer 'c' \(Convolution1D\): the first layer of .* must declare a full batch_input_shape"),
    "k1 json not json": (
        lambda p: (_keras1(p) / "model.json").write_text("{not json") and p / "m",
        FileFormatError, r"model\.json' is not valid JSON"),
    "k1 truncated h5": (
        lambda p: _truncate(_keras1(p) / "model.h5").parent,
        FileFormatError, r"model\.h5' is not a readable HDF5 file .*may be truncated"),
    "k2 truncated h5": (
        lambda p: _truncate(_keras2(p), 0.7),
        FileFormatError, r"model\.h5' is not a readable HDF5 file"),
    "k2 not hdf5 at all": (
        lambda p: _keras2(p).write_bytes(b"\x89HDF garbage" * 50) and p / "model.h5",
        FileFormatError, r"model\.h5' is not a readable HDF5 file"),
    "k2 weight dataset missing": (
        lambda p: _keras2(p, edit_h5=lambda f: f["model_weights/conv1d_1/conv1d_1"].__delitem__("bias:0")),
        FileFormatError, r"layer 'conv1d_1' lists weight 'conv1d_1/bias:0', but the file has no such dataset"),
    "k2 bias not listed": (
        lambda p: _keras2(p, edit_h5=lambda f: f["model_weights/conv1d_1"].attrs.__setitem__(
            "weight_names", np.array([b"conv1d_1/kernel:0"]))),
        FileFormatError, r"layer 'conv1d_1' \(Conv1D\) expected 2 weight arrays \(kernel, bias\); found 1"),
    "k2 no model_config": (
        lambda p: _keras2(p, edit_h5=lambda f: f.attrs.__delitem__("model_config")),
        MissingFileError, r"no architecture for .*model\.h5'.*no 'model_config' attribute"),
    "k2 unsupported layer": (
        lambda p: _keras2(p, cls="LocallyConnected1D"),
        ModelError, r"layer 'conv1d_1' is a Keras 'LocallyConnected1D', which is not supported; supported layers: "
                    r"Convolution1D, .*Conv1D, Conv2D, BatchNormalization"),
    "k2 channels_first": (
        lambda p: _keras2(p, edit_h5=lambda f: _set_attr(f, "model_config", _text(f.attrs["model_config"]).replace(
            '"padding"', '"data_format": "channels_first", "padding"'))),
        ModelError, r"layer 'conv1d_1' \(Conv1D\): data_format 'channels_first' is not supported"),
    "keras 4 file": (  # Keras 3 files load now (tests/io/test_keras_graph.py); a later major version is refused
        lambda p: _keras2(p, edit_h5=lambda f: _set_attr(f, "keras_version", b"4.0.0")),
        ModelError, r"Keras 4\.0\.0 files are not supported"),
    "k0 layer weights missing": (
        lambda p: _drop_group(write_keras0(p / "m0", [{"name": "Dense", "output_dim": 1, "input_dim": 3}], {}),
                              "layer_0"),
        FileFormatError, r"no weights for layer 'layer_0' \(Dense\); expected 2 arrays"),
    "missing path": (lambda p: p / "nope", MissingFileError, r"Keras model path .*nope' does not exist"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_keras_files_raise_one_specific_line(tmp_path, case):
    make, error, message = BROKEN[case]
    path = make(tmp_path)
    with pytest.raises(error, match=message) as caught:
        load_keras(path)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, DeepResolveError)
