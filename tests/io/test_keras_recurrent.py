"""Keras recurrent layers (LSTM, GRU, Bidirectional, Keras 2's CuDNNLSTM/CuDNNGRU) against numpy forwards written
from the cell equations: Keras 1 per-gate weights (LSTM gates saved i, c, f, o), hard_sigmoid gates, GRU
reset_after, go_backwards, cuDNN's two biases per gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from keras_numpy import ACTIVATIONS, dense, pool1d, sigmoid
from keras_writers import Graph, write

import deepresolve as dr
from deepresolve.io.keras import load_keras

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

hard_sigmoid = ACTIVATIONS["hard_sigmoid"]


def lstm(x, kernel, recurrent, bias, gate=hard_sigmoid, sequences=False, backwards=False):
    """Keras's LSTM cell, gates i, f, c, o, zero initial state; outputs in processing order."""
    u = recurrent.shape[0]
    h, c, outs = np.zeros(u), np.zeros(u), []
    for t in (reversed(range(len(x))) if backwards else range(len(x))):
        z = x[t] @ kernel + h @ recurrent + bias
        i, f, o = gate(z[:u]), gate(z[u:2 * u]), gate(z[3 * u:])
        c = f * c + i * np.tanh(z[2 * u:3 * u])
        h = o * np.tanh(c)
        outs.append(h)
    return np.array(outs) if sequences else h


def gru_reset_after(x, kernel, recurrent, bias, backwards=False):
    """tf.keras's GRU (reset_after=True, sigmoid gates): bias[0] for the input, bias[1] for the recurrent term."""
    u = recurrent.shape[0]
    h = np.zeros(u)
    for t in (reversed(range(len(x))) if backwards else range(len(x))):
        xz, rz = x[t] @ kernel + bias[0], h @ recurrent + bias[1]
        z, r = sigmoid(xz[:u] + rz[:u]), sigmoid(xz[u:2 * u] + rz[u:2 * u])
        h = z * h + (1 - z) * np.tanh(xz[2 * u:] + r * rz[2 * u:])
    return h


def test_danq_like_keras1_bidirectional_lstm(tmp_path):
    """DanQ's shape (Keras 1, Theano): convolution, max pooling, Bidirectional(LSTM, return_sequences), dense."""
    rng = np.random.default_rng(0)
    L, F, u = 12, 3, 2
    g, copies = Graph(), []
    Wc, bc = rng.normal(size=(1, 1, 4, F)), rng.normal(size=F)  # width-1 filters: Theano's flip changes nothing
    h = g.add("Convolution1D", "conv", g.input("dna", (L, 4)), [("W", Wc), ("b", bc)], nb_filter=F, filter_length=1,
              border_mode="valid", activation="relu")
    h = g.add("MaxPooling1D", "pool", h, pool_length=2, stride=2, border_mode="valid")
    weights = []
    for direction in ("forward", "backward"):
        gates = {name: (rng.normal(size=(F, u)), rng.normal(size=(u, u)), rng.normal(size=u))
                 for name in ("i", "c", "f", "o")}  # saved in Keras 1's order i, c, f, o
        for name in ("i", "c", "f", "o"):
            weights += [(f"{direction}_lstm_{n}_{name}", a) for n, a in zip("WUb", gates[name])]
        copies.append([np.concatenate([gates[k][j] for k in "ifco"], axis=-1) for j in range(3)])
    inner = {"class_name": "LSTM", "config": {"name": "lstm", "output_dim": u, "activation": "tanh",
                                              "inner_activation": "hard_sigmoid", "return_sequences": True,
                                              "go_backwards": False}}
    h = g.add("Bidirectional", "bidirectional", h, weights, layer=inner, merge_mode="concat")
    h = g.add("Flatten", "flatten", h)
    Wd, bd = rng.normal(size=(L // 2 * 2 * u, 1)), rng.normal(size=1)
    out = g.add("Dense", "dense", h, [("W", Wd), ("b", bd)], output_dim=1, activation="sigmoid")
    model = load_keras(write(g.output(out), tmp_path / "danq", "k1"), onehot=True)
    x = np.eye(4)[rng.integers(0, 4, (2, L))]  # (N, L, 4)
    want = []
    for xi in x:
        p = pool1d(np.maximum(xi @ Wc[0, 0] + bc, 0), 2, 2, "valid", "max")
        fw = lstm(p, *copies[0], sequences=True)
        bw = lstm(p, *copies[1], sequences=True, backwards=True)[::-1]  # back in time order
        want.append(sigmoid(dense(np.concatenate([fw, bw], axis=1).reshape(-1), Wd, bd)))
    xt = torch.tensor(x.transpose(0, 2, 1), dtype=torch.float32)
    np.testing.assert_allclose(model(xt).detach().numpy(), np.array(want), rtol=1e-4, atol=1e-5)
    body, head = dr.split_model(model, "pool", input_shape=(4, L))  # the LSTM is in the head, unrolled by fx
    torch.testing.assert_close(torch.sigmoid(head(body(xt))), model(xt), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dialect", ["k2", "keras"])
def test_gru_reset_after_and_bidirectional_lstm_keras2_keras3(tmp_path, dialect):
    rng = np.random.default_rng(1)
    L, C, u = 7, 3, 2
    g = Graph()
    x_in = g.input("x", (L, C))
    gk, gr, gb = rng.normal(size=(C, 3 * u)), rng.normal(size=(u, 3 * u)), rng.normal(size=(2, 3 * u))
    a = g.add("GRU", "gru", x_in, [("kernel", gk), ("recurrent_kernel", gr), ("bias", gb)], units=u,
              activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=True,
              return_sequences=False, go_backwards=True)
    halves = [[rng.normal(size=(C, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=4 * u)] for _ in range(2)]
    weights = [(f"{d}_layer/cell/{n}", arr) for d, half in zip(("forward", "backward"), halves)
               for n, arr in zip(("kernel", "recurrent_kernel", "bias"), half)]
    inner = {"class_name": "LSTM", "config": {"name": "lstm", "units": u, "activation": "tanh",
                                              "recurrent_activation": "sigmoid", "use_bias": True,
                                              "return_sequences": False, "go_backwards": False}}
    b = g.add("Bidirectional", "bidirectional", x_in, weights, layer=inner, merge_mode="sum")
    x = rng.normal(size=(2, L, C))
    path = write(g.output(a, b), tmp_path / f"m.{dialect}", dialect)
    with torch.no_grad():
        got = load_keras(path)(torch.tensor(x, dtype=torch.float32)).numpy()
    want = [np.concatenate([gru_reset_after(xi, gk, gr, gb, backwards=True),
                            lstm(xi, *halves[0], gate=sigmoid) + lstm(xi, *halves[1], gate=sigmoid, backwards=True)])
            for xi in x]
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)


def test_cudnn_lstm_and_gru_keras2(tmp_path):
    """Keras 2's CuDNNLSTM/CuDNNGRU (GPU-only in Keras): sigmoid gates, and an input and a recurrent bias per gate
    (``bias`` of 8u / 6u values: input biases, then recurrent ones). cuDNN's LSTM adds both to every gate; its GRU
    keeps the recurrent bias inside the reset gate's product: h' = tanh(W_h x + b_Wh + r * (R_h h + b_Rh))."""
    rng = np.random.default_rng(2)
    L, C, u = 6, 3, 2
    g = Graph()
    x_in = g.input("x", (L, C))
    gk, gr, gb = rng.normal(size=(C, 3 * u)), rng.normal(size=(u, 3 * u)), rng.normal(size=6 * u)
    a = g.add("CuDNNGRU", "gru", x_in, [("kernel", gk), ("recurrent_kernel", gr), ("bias", gb)], units=u,
              return_sequences=False, go_backwards=True, return_state=False, stateful=False)
    halves = [[rng.normal(size=(C, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=8 * u)] for _ in range(2)]
    weights = [(f"{d}_cu_dnnlstm/{n}", arr) for d, half in zip(("forward", "backward"), halves)
               for n, arr in zip(("kernel", "recurrent_kernel", "bias"), half)]
    inner = {"class_name": "CuDNNLSTM", "config": {"name": "cu_dnnlstm", "units": u, "return_sequences": True,
                                                   "go_backwards": False}}
    b = g.add("Bidirectional", "bidirectional", x_in, weights, layer=inner, merge_mode="concat")
    b = g.add("Flatten", "flatten", b)
    x = rng.normal(size=(2, L, C))
    with torch.no_grad():
        got = load_keras(write(g.output(a, b), tmp_path / "m.h5", "k2"))(torch.tensor(x, dtype=torch.float32)).numpy()
    want = []
    for xi in x:
        fw = lstm(xi, halves[0][0], halves[0][1], halves[0][2][:4 * u] + halves[0][2][4 * u:], gate=sigmoid,
                  sequences=True)
        bw = lstm(xi, halves[1][0], halves[1][1], halves[1][2][:4 * u] + halves[1][2][4 * u:], gate=sigmoid,
                  sequences=True, backwards=True)[::-1]
        want.append(np.concatenate([gru_reset_after(xi, gk, gr, gb.reshape(2, 3 * u), backwards=True),
                                    np.concatenate([fw, bw], axis=1).reshape(-1)]))
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)
