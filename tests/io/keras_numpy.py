"""Independent numpy forwards of Keras layers, written the way Keras documents them: one sample at a time, in
Keras's own layout (``(steps, channels)``), with explicit windows and loops instead of PyTorch's layout tricks."""

from __future__ import annotations

import math

import numpy as np


def conv1d(x, W, b, stride=1, padding="valid", dilation=1):
    """TensorFlow cross-correlation: x (L, C), W (k, C, F) -> (L', F); 'same' pads the extra element on the right."""
    L, k = x.shape[0], W.shape[0]
    span = (k - 1) * dilation + 1
    if padding == "same":
        out = math.ceil(L / stride)
        total = max((out - 1) * stride + span - L, 0)
        left, right = total // 2, total - total // 2
    elif padding == "causal":
        left, right = span - 1, 0
    else:
        left = right = 0
    xp = np.concatenate([np.zeros((left, x.shape[1])), x, np.zeros((right, x.shape[1]))])
    n = (xp.shape[0] - span) // stride + 1
    y = np.zeros((n, W.shape[2]))
    for i in range(n):
        for j in range(k):
            y[i] += xp[i * stride + j * dilation] @ W[j]
    return y + (0 if b is None else b)


def conv1d_transpose(x, W, b, stride, padding):
    """TensorFlow transposed convolution: x (L, C), W (k, F, C) -> (L', F); 'same' keeps L * stride outputs."""
    L, k, F = x.shape[0], W.shape[0], W.shape[1]
    full = np.zeros(((L - 1) * stride + k, F))
    for i in range(L):
        for j in range(k):
            full[i * stride + j] += W[j] @ x[i]
    if padding == "same":
        out, left = L * stride, max(k - stride, 0) // 2
        full = np.concatenate([full, np.zeros((max(out + left - full.shape[0], 0), F))])[left:left + out]
    return full + b


def pool1d(x, pool, stride, padding, op):
    """Max or average pooling over steps; 'same' windows leave padded positions out (TensorFlow)."""
    L = x.shape[0]
    if padding == "same":
        out = math.ceil(L / stride)
        left = max((out - 1) * stride + pool - L, 0) // 2
    else:
        out, left = (L - pool) // stride + 1, 0
    rows = []
    for i in range(out):
        idx = [t for t in range(i * stride - left, i * stride - left + pool) if 0 <= t < L]
        rows.append(x[idx].max(axis=0) if op == "max" else x[idx].mean(axis=0))
    return np.stack(rows)


def dense(x, W, b):
    return x @ W + b  # Keras stores W as (in, out); on (L, C) it acts on every step


def batchnorm(x, gamma, beta, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def keras_relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    """Keras's ReLU layer: x above threshold (capped at max_value), negative_slope * (x - threshold) below."""
    y = np.where(x > threshold, x, negative_slope * (x - threshold))
    return np.minimum(y, max_value) if max_value is not None else y


ACTIVATIONS = {
    "relu": relu, "sigmoid": sigmoid, "tanh": np.tanh, "linear": lambda x: x,
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "softplus": lambda x: np.log1p(np.exp(x)), "softsign": lambda x: x / (1 + np.abs(x)),
    "exponential": np.exp, "swish": lambda x: x * sigmoid(x),
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1),  # Keras 1/2
    "softmax": lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(
        -1, keepdims=True),
}


def onehot(rng, n, L):
    """(N, 4, L) one-hot sequences, A, C, G, T."""
    return np.eye(4)[rng.integers(0, 4, (n, L))].transpose(0, 2, 1)
