"""The Keras 1.x importer against an independent numpy computation and the shared trained models."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from _factories import layer, write_keras
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
        layer("LSTM", "my_lstm", output_dim=4),
    ]
    folder = write_keras(tmp_path / "m", layers, {"c": [np.zeros((3, 1, 4, 2)), np.zeros(2)]})
    with pytest.raises(ValueError, match=r"my_lstm.*'LSTM'.*supported layers: Convolution1D"):
        load_keras(folder)


def test_unsupported_activation_and_bad_paths(tmp_path):
    layers = [layer("Dense", "d", output_dim=2, activation="elu", batch_input_shape=[None, 3])]
    folder = write_keras(tmp_path / "m", layers, {"d": [np.zeros((3, 2)), np.zeros(2)]})
    with pytest.raises(ValueError, match="activation 'elu'"):
        load_keras(folder)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_keras(tmp_path / "nope")
    (tmp_path / "x.bin").write_text("")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_model(tmp_path / "x.bin")
    (tmp_path / "m.onnx").write_text("")
    try:
        import onnx2torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install onnx2torch"):
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
