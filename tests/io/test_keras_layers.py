"""Each Keras layer class the importer builds, against an independent numpy forward in Keras's layout.

Models are written as Keras files (mostly Keras 2 ``model.save()``; Keras 1 and Keras 3 where the layer's names or
semantics differ) and loaded with ``onehot=False``, so inputs are real-valued ``(N, steps, channels)`` batches and
a rank-3 output comes back flattened in Keras's element order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from keras_numpy import ACTIVATIONS, batchnorm, conv1d, conv1d_transpose, dense, keras_relu, pool1d, relu
from keras_writers import Graph, write

from deepresolve.errors import FileFormatError, ModelError
from deepresolve.io.keras import load_keras

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run(tmp_path, g, x, dialect="k2", name="m"):
    """The imported model's output on Keras-layout inputs ``x``."""
    path = write(g, tmp_path / (name if dialect in ("k1", "k2json") else f"{name}.h5"), dialect)
    model = load_keras(path)
    xt = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        y = model(xt)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(xt), y)  # every module traces
    return y.numpy()


def flat(rows):
    return np.array([np.asarray(r).reshape(-1) for r in rows])


def conv_weights(rng, k, c, f):
    return [("kernel", rng.normal(size=(k, c, f))), ("bias", rng.normal(size=f))]


# ---------------------------------------------------------------------------------------------------------------
# Convolutions


@pytest.mark.parametrize("padding, stride, dilation, k", [("same", 1, 2, 3), ("same", 1, 3, 4), ("causal", 1, 2, 3),
                                                          ("valid", 2, 1, 4), ("same", 2, 1, 4), ("valid", 1, 3, 2)])
def test_conv1d_padding_stride_dilation(tmp_path, padding, stride, dilation, k):
    rng = np.random.default_rng(0)
    g = Graph()
    w = conv_weights(rng, k, 3, 2)
    out = g.add("Conv1D", "c", g.input("x", (11, 3)), w, filters=2, kernel_size=[k], strides=[stride],
                padding=padding, dilation_rate=[dilation], activation="linear")
    x = rng.normal(size=(2, 11, 3))
    want = flat(conv1d(xi, w[0][1], w[1][1], stride, padding, dilation) for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), want, rtol=1e-4, atol=1e-5)


def test_conv1d_groups(tmp_path):
    rng = np.random.default_rng(1)
    g = Graph()
    W, b = rng.normal(size=(3, 2, 4)), rng.normal(size=4)  # 4 input channels in 2 groups of 2, 2 filters per group
    out = g.add("Conv1D", "c", g.input("x", (7, 4)), [("kernel", W), ("bias", b)], filters=4, kernel_size=[3],
                groups=2, padding="valid", activation="linear")
    x = rng.normal(size=(2, 7, 4))
    want = flat(np.concatenate([conv1d(xi[:, :2], W[:, :, :2], b[:2]), conv1d(xi[:, 2:], W[:, :, 2:], b[2:])],
                               axis=1) for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding, stride, k", [("same", 2, 3), ("valid", 2, 3), ("same", 3, 2), ("same", 1, 4)])
def test_conv1d_transpose(tmp_path, padding, stride, k):
    rng = np.random.default_rng(2)
    g = Graph()
    W, b = rng.normal(size=(k, 2, 3)), rng.normal(size=2)  # (window, filters, channels)
    out = g.add("Conv1DTranspose", "t", g.input("x", (5, 3)), [("kernel", W), ("bias", b)], filters=2,
                kernel_size=[k], strides=[stride], padding=padding, activation="linear", output_padding=None)
    x = rng.normal(size=(2, 5, 3))
    want = flat(conv1d_transpose(xi, W, b, stride, padding) for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), want, rtol=1e-4, atol=1e-5)


def test_conv2d_transpose_same(tmp_path):
    rng = np.random.default_rng(3)
    g = Graph()
    W, b = rng.normal(size=(2, 3, 2, 3)), rng.normal(size=2)  # (rows, cols, filters, channels)
    out = g.add("Conv2DTranspose", "t", g.input("x", (3, 4, 3)), [("kernel", W), ("bias", b)], filters=2,
                kernel_size=[2, 3], strides=[2, 2], padding="same", activation="relu")
    x = rng.normal(size=(2, 3, 4, 3))
    want = []
    for xi in x:
        full = np.zeros((2 * 2 + 2, 3 * 2 + 3, 2))
        for i in range(3):
            for j in range(4):
                for u in range(2):
                    for v in range(3):
                        full[2 * i + u, 2 * j + v] += W[u, v] @ xi[i, j]
        # 'same': keep 3*2 x 4*2 outputs, starting at max(k - s, 0) // 2 = 0 rows and 1 // 2 = 0 cols
        want.append(relu(full[:6, :8] + b))
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), flat(want), rtol=1e-4, atol=1e-5)


def test_keras11_convolution1d_kernel_layout_and_theano_flip(tmp_path):
    """Keras 1.1 stored Convolution1D kernels (filters, channels, length, 1); Keras 1.2 (length, 1, channels,
    filters). Both are Theano kernels here (no 'tf' layer), i.e. flipped."""
    rng = np.random.default_rng(4)
    W = rng.normal(size=(4, 3, 2))  # (length, channels, filters): the kernel Theano convolves with
    b = rng.normal(size=2)
    x = rng.normal(size=(2, 9, 3))
    want = []
    for xi in x:  # a true convolution; Theano's 'same' keeps the full one from (k - 1) // 2 on
        full = np.zeros((9 + 4 - 1, 2))
        for t in range(full.shape[0]):
            for m in range(9):
                if 0 <= t - m < 4:
                    full[t] += xi[m] @ W[t - m]
        want.append(full[1:10] + b)
    want = flat(want)
    for name, stored in (("k11", W.transpose(2, 1, 0)[..., None]), ("k12", W[:, None])):
        g = Graph()
        out = g.add("Convolution1D", "c", g.input("x", (9, 3)), [("W", stored), ("b", b)], nb_filter=2,
                    filter_length=4, border_mode="same", activation="linear")
        np.testing.assert_allclose(run(tmp_path, g.output(out), x, "k1", name), want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Pooling, cropping, padding, upsampling


@pytest.mark.parametrize("cls, pool, stride, padding", [
    ("AveragePooling1D", 3, 2, "same"), ("AveragePooling1D", 2, 2, "valid"), ("AveragePooling1D", 4, 3, "same"),
    ("MaxPooling1D", 3, 2, "same"), ("AvgPool1D", 3, 1, "same")])
def test_pooling_1d(tmp_path, cls, pool, stride, padding):
    rng = np.random.default_rng(5)
    g = Graph()
    out = g.add(cls, "p", g.input("x", (10, 3)), pool_size=[pool], strides=[stride], padding=padding,
                data_format="channels_last")
    x = rng.normal(size=(2, 10, 3))
    want = flat(pool1d(xi, pool, stride, padding, "max" if "Max" in cls else "mean") for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), want, rtol=1e-5, atol=1e-6)


def test_keras1_average_pooling_and_global_pooling(tmp_path):
    rng = np.random.default_rng(6)
    g = Graph()
    x_in = g.input("x", (9, 3))
    a = g.add("AveragePooling1D", "avg", x_in, pool_length=3, stride=2, border_mode="valid")
    m = g.add("GlobalMaxPooling1D", "gmax", a)
    v = g.add("GlobalAveragePooling1D", "gavg", a)
    out = g.add("Merge", "cat", [m, v], mode="concat", concat_axis=-1)
    x = rng.normal(size=(2, 9, 3))
    want = flat(np.concatenate([pool1d(xi, 3, 2, "valid", "mean").max(0), pool1d(xi, 3, 2, "valid", "mean").mean(0)])
                for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(out), x, "k1"), want, rtol=1e-5, atol=1e-6)


def test_global_pooling_keepdims_cropping_padding_upsampling(tmp_path):
    rng = np.random.default_rng(7)
    g = Graph()
    x_in = g.input("x", (8, 3))
    c = g.add("Cropping1D", "crop", x_in, cropping=[1, 2])
    z = g.add("ZeroPadding1D", "zpad", c, padding=[2, 1])
    u = g.add("UpSampling1D", "up", z, size=2)
    k = g.add("GlobalAveragePooling1D", "gap", u, keepdims=True, data_format="channels_last")
    x = rng.normal(size=(2, 8, 3))
    g.output(u, k)
    got = run(tmp_path, g, x)
    padded = [np.concatenate([np.zeros((2, 3)), xi[1:6], np.zeros((1, 3))]) for xi in x]
    ups = [np.repeat(p, 2, axis=0) for p in padded]
    want = np.array([np.concatenate([u_.reshape(-1), u_.mean(0)]) for u_ in ups])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Merges, reshaping, dense over steps


@pytest.mark.parametrize("cls, op", [("Add", lambda a, b: a + b), ("Subtract", lambda a, b: a - b),
                                     ("Multiply", lambda a, b: a * b), ("Average", lambda a, b: (a + b) / 2),
                                     ("Maximum", np.maximum), ("Minimum", np.minimum)])
def test_merges(tmp_path, cls, op):
    rng = np.random.default_rng(8)
    g = Graph()
    x_in = g.input("x", (6, 3))
    w1, w2 = conv_weights(rng, 3, 3, 2), conv_weights(rng, 1, 3, 2)
    a = g.add("Conv1D", "a", x_in, w1, filters=2, kernel_size=[3], padding="same")
    b = g.add("Conv1D", "b", x_in, w2, filters=2, kernel_size=[1], padding="valid")
    out = g.add(cls, "m", [a, b])
    x = rng.normal(size=(2, 6, 3))
    want = flat(op(conv1d(xi, w1[0][1], w1[1][1], padding="same"), conv1d(xi, w2[0][1], w2[1][1])) for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concatenate_axes(tmp_path, axis):
    rng = np.random.default_rng(9)
    g = Graph()
    x_in = g.input("x", (6, 3))
    w1 = conv_weights(rng, 3, 3, 3)
    a = g.add("Conv1D", "a", x_in, w1, filters=3, kernel_size=[3], padding="same")
    out = g.add("Concatenate", "cat", [a, x_in], axis=axis)
    x = rng.normal(size=(2, 6, 3))
    keras_axis = axis % 3 - 1  # without the batch axis
    want = flat(np.concatenate([conv1d(xi, w1[0][1], w1[1][1], padding="same"), xi], axis=keras_axis) for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), want, rtol=1e-5, atol=1e-5)


def test_reshape_permute_flatten_dense_over_steps(tmp_path):
    rng = np.random.default_rng(10)
    g = Graph()
    x_in = g.input("x", (6, 4))
    r = g.add("Reshape", "reshape", x_in, target_shape=[3, 8])
    p = g.add("Permute", "permute", r, dims=[2, 1])  # (8, 3)
    w = conv_weights(rng, 2, 3, 2)
    c = g.add("Conv1D", "c", p, w, filters=2, kernel_size=[2], padding="valid", activation="tanh")  # (7, 2)
    Wd, bd = rng.normal(size=(2, 5)), rng.normal(size=5)
    d = g.add("Dense", "d", c, [("kernel", Wd), ("bias", bd)], units=5, activation="linear")  # (7, 5) per step
    f = g.add("Flatten", "f", d)
    r2 = g.add("Reshape", "back", f, target_shape=[-1, 7])  # (5, 7)
    x = rng.normal(size=(2, 6, 4))
    want = []
    for xi in x:
        h = xi.reshape(3, 8).T
        h = dense(np.tanh(conv1d(h, w[0][1], w[1][1])), Wd, bd)
        want.append(h.reshape(-1).reshape(5, 7))
    np.testing.assert_allclose(run(tmp_path, g.output(r2), x), flat(want), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Activations and normalisation


@pytest.mark.parametrize("name", ["gelu", "elu", "softplus", "exponential", "swish", "selu", "softsign",
                                  "hard_sigmoid", "softmax", "tanh"])
def test_activation_strings(tmp_path, name):
    rng = np.random.default_rng(11)
    g = Graph()
    out = g.add("Activation", "act", g.input("x", (5, 3)), activation=name)
    x = rng.normal(size=(2, 5, 3)) * 2
    np.testing.assert_allclose(run(tmp_path, g.output(out), x), flat(ACTIVATIONS[name](xi) for xi in x),
                               rtol=1e-4, atol=1e-5)


def test_activation_layer_classes_and_conv_activation(tmp_path):
    rng = np.random.default_rng(12)
    g = Graph()
    x_in = g.input("x", (5, 3))
    a = g.add("ReLU", "relu_capped", x_in, max_value=1.5, negative_slope=0.1, threshold=0.2)
    b = g.add("LeakyReLU", "leaky", x_in, alpha=0.2)
    c = g.add("ELU", "elu", x_in, alpha=0.7)
    d = g.add("ReLU", "relu", x_in)
    w = conv_weights(rng, 3, 3, 2)
    e = g.add("Conv1D", "conv_gelu", x_in, w, filters=2, kernel_size=[3], padding="same", activation="gelu")
    x = rng.normal(size=(2, 5, 3)) * 2
    want = [np.concatenate([keras_relu(xi, 1.5, 0.1, 0.2).reshape(-1), np.where(xi > 0, xi, 0.2 * xi).reshape(-1),
                            np.where(xi > 0, xi, 0.7 * (np.exp(xi) - 1)).reshape(-1), relu(xi).reshape(-1),
                            ACTIVATIONS["gelu"](conv1d(xi, w[0][1], w[1][1], padding="same")).reshape(-1)])
            for xi in x]
    np.testing.assert_allclose(run(tmp_path, g.output(a, b, c, d, e), x), np.array(want), rtol=1e-4, atol=1e-5)


def test_keras3_activation_semantics(tmp_path):
    """Keras 3: LeakyReLU's slope is negative_slope; hard_sigmoid is relu6(x + 3) / 6."""
    rng = np.random.default_rng(13)
    g = Graph()
    x_in = g.input("x", (4, 2))
    a = g.add("LeakyReLU", "leaky", x_in, negative_slope=0.05)
    b = g.add("Activation", "hs", x_in, activation="hard_sigmoid")
    x = rng.normal(size=(2, 4, 2)) * 3
    want = [np.concatenate([np.where(xi > 0, xi, 0.05 * xi).reshape(-1), np.clip(xi / 6 + 0.5, 0, 1).reshape(-1)])
            for xi in x]
    g.output(a, b)
    path = write(g, tmp_path / "m.keras", "keras")
    with torch.no_grad():
        got = load_keras(path)(torch.tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, np.array(want), rtol=1e-5, atol=1e-6)


def test_batchnorm_keras2_without_scale_and_spatial_dropout(tmp_path):
    rng = np.random.default_rng(14)
    g = Graph()
    beta, mean, var = rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)
    h = g.add("SpatialDropout1D", "sd", g.input("x", (5, 3)), rate=0.5)
    h = g.add("BatchNormalization", "bn", h, [("beta", beta), ("moving_mean", mean), ("moving_variance", var)],
              axis=-1, epsilon=0.01, center=True, scale=False)
    h = g.add("GaussianNoise", "noise", h, stddev=0.3)
    x = rng.normal(size=(2, 5, 3))
    want = flat(batchnorm(xi, 1.0, beta, mean, var, 0.01) for xi in x)
    np.testing.assert_allclose(run(tmp_path, g.output(h), x), want, rtol=1e-5, atol=1e-6)


def test_keras1_batchnorm_modes(tmp_path):
    """Keras 1 stores gamma, beta, running_mean, running_std (the variance); mode 1 normalises each sample over
    its last axis; mode 2 (batch statistics at test time too) is refused."""
    rng = np.random.default_rng(15)
    gamma, beta, mean, var = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)
    weights = list(zip(["gamma", "beta", "running_mean", "running_std"], [gamma, beta, mean, var]))
    x = rng.normal(size=(2, 5, 3))
    for mode in (0, 1):
        g = Graph()
        out = g.add("BatchNormalization", "bn", g.input("x", (5, 3)), weights, mode=mode, axis=-1, epsilon=1e-3)
        if mode == 0:
            want = flat(batchnorm(xi, gamma, beta, mean, var, 1e-3) for xi in x)
        else:
            want = flat((xi - xi.mean(-1, keepdims=True)) / (np.sqrt(xi.var(-1, keepdims=True) + 1e-3) + 1e-3) * gamma
                        + beta for xi in x)
        np.testing.assert_allclose(run(tmp_path, g.output(out), x, "k1", f"m{mode}"), want, rtol=1e-4, atol=1e-5)
    g = Graph()
    out = g.add("BatchNormalization", "bn", g.input("x", (5, 3)), weights, mode=2, axis=-1, epsilon=1e-3)
    with pytest.raises(ModelError, match=r"layer 'bn' \(BatchNormalization\): mode 2 normalises with each batch's "
                                         r"own statistics"):
        run(tmp_path, g.output(out), x, "k1", "m2")


def test_layer_settings_that_are_refused(tmp_path):
    rng = np.random.default_rng(16)
    cases = [
        (("Conv1D", conv_weights(rng, 3, 3, 2), {"filters": 2, "kernel_size": [3], "padding": "full"}),
         ModelError, "padding 'full' is not supported"),
        (("Conv1D", conv_weights(rng, 3, 3, 2), {"filters": 2, "kernel_size": [3], "data_format": "channels_first"}),
         ModelError, "data_format 'channels_first' is not supported"),
        (("Cropping1D", [], {"cropping": [1, -1]}), FileFormatError, "field 'cropping' must give"),
        (("Permute", [], {"dims": [1, 3]}), FileFormatError, "dims must order the axes 1..2"),
        (("Conv1D", conv_weights(rng, 3, 3, 2), {"filters": 2, "kernel_size": [3], "groups": 2}),
         FileFormatError, "3 input channels do not split into groups=2"),
    ]
    for i, ((cls, weights, cfg), error, message) in enumerate(cases):
        g = Graph()
        out = g.add(cls, "layer", g.input("x", (6, 3)), weights, **cfg)
        with pytest.raises(error, match=message) as caught:
            run(tmp_path, g.output(out), rng.normal(size=(1, 6, 3)), name=f"m{i}")
        assert "\n" not in str(caught.value)
