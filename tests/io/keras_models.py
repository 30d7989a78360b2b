"""Published genomics architectures in miniature, built and saved by Keras 3 itself (``KERAS_BACKEND=torch``).

Import this module only after ``pytest.importorskip("keras")``: it imports Keras, with the torch backend chosen
before the import. Each builder returns a compiled-free ``keras.Model`` whose weights are drawn at random
(:func:`randomize`: batch-norm statistics too, so that no layer is the identity), small enough for one CPU core.

- :func:`bpnet`: BPNet (Avsec et al. 2021): a first convolution, a dilated residual tower (``Add``), a profile
  head (a transposed convolution) and a counts head (global average pooling, dense).
- :func:`deepstarr`: DeepSTARR (de Almeida et al. 2022): conv/BN/ReLU/pool blocks, dense blocks, two heads.
- :func:`scbasset`: scBasset (Yuan & Kelley 2022): basenji's training-time augmentation layers
  (``StochasticReverseComplement``, ``StochasticShift``, ``SwitchReverse``) and its ``GELU`` layer, conv blocks
  without bias, a bottleneck reached through a ``Reshape`` to ``(1, L*C)``, a sigmoid head per cell.
- :func:`deepmel`: DeepMEL (Minnoye et al. 2020): the sequence and its reverse complement as two inputs, one
  tower of shared layers (Conv1D, pooling, ``TimeDistributed(Dense)``, a bidirectional LSTM, dense layers) applied
  to both, the two predictions averaged.
- :func:`tf_cnn`: a DeepBind/Basset-style transcription-factor binding CNN, as a ``Sequential`` model.
- :func:`deepcpg_dna` and :func:`deepcpg_joint`: DeepCpG (Angermueller et al. 2017): the DNA module with one
  sigmoid output per cell, and the joint model that also reads the CpG neighbourhood of every cell (states and
  distances) through a ``TimeDistributed(Dense)`` and a bidirectional GRU.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402


def randomize(model: keras.Model, seed: int) -> keras.Model:
    """Every weight drawn at random; variances positive."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        else:
            w.assign((rng.normal(size=shape) * 0.3).astype("float32"))
    return model


def predict(model: keras.Model, onehot: np.ndarray, *extra: np.ndarray) -> np.ndarray:
    """Keras's own prediction on one-hot sequences ``(N, 4, L)`` (Keras takes ``(N, L, 4)``)."""
    x = np.asarray(onehot, dtype="float32").transpose(0, 2, 1)
    out = model.predict([x, *extra] if extra else x, verbose=0)
    if isinstance(out, (list, tuple)):  # several heads: joined as the importer joins them
        return np.concatenate([np.asarray(o).reshape(len(x), -1) for o in out], axis=1)
    return np.asarray(out).reshape(len(x), -1)


# ---------------------------------------------------------------------------------------------------------------


def bpnet(L: int = 64, filters: int = 6, n_dil: int = 3, seed: int = 0) -> keras.Model:
    x = keras.Input((L, 4), name="sequence")
    h = layers.Conv1D(filters, 9, padding="same", activation="relu", name="conv_first")(x)
    for i in range(1, n_dil + 1):
        c = layers.Conv1D(filters, 3, padding="same", activation="relu", dilation_rate=2 ** i, name=f"conv_dil{i}")(h)
        h = layers.Add(name=f"add_{i}")([h, c])
    profile = layers.Conv1DTranspose(2, 7, padding="same", name="profile")(h)
    counts = layers.Dense(2, name="counts")(layers.GlobalAveragePooling1D(name="gap")(h))
    return randomize(keras.Model(x, [profile, counts], name="bpnet"), seed)


def deepstarr(L: int = 40, filters: tuple[int, ...] = (6, 4), units: int = 8, seed: int = 0) -> keras.Model:
    x = keras.Input((L, 4), name="input")
    h = x
    for i, f in enumerate(filters):
        h = layers.Conv1D(f, 7 if i == 0 else 3, padding="same", name="Conv1D_1st" if i == 0 else f"Conv1D_{i + 1}")(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
        h = layers.MaxPooling1D(2)(h)
    h = layers.Flatten()(h)
    for i in range(2):
        h = layers.Dense(units, name=f"Dense_{i + 1}")(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
        h = layers.Dropout(0.4)(h)
    heads = [layers.Dense(1, activation="linear", name=f"Dense_{task}")(h) for task in ("Dev", "Hk")]
    return randomize(keras.Model(x, heads, name="deepstarr"), seed)


# scBasset's custom layers (basenji), as its code defines them; at inference the augmentations are identities


@keras.saving.register_keras_serializable(package="scbasset")
class StochasticReverseComplement(layers.Layer):
    def call(self, seq_1hot, training=None):
        if training:
            raise NotImplementedError("the tests only predict")
        return seq_1hot, ops.convert_to_tensor(False)


@keras.saving.register_keras_serializable(package="scbasset")
class StochasticShift(layers.Layer):
    def __init__(self, shift_max=0, pad="uniform", **kwargs):
        super().__init__(**kwargs)
        self.shift_max, self.pad = shift_max, pad

    def call(self, seq_1hot, training=None):
        if training:
            raise NotImplementedError("the tests only predict")
        return seq_1hot

    def get_config(self):
        return {**super().get_config(), "shift_max": self.shift_max, "pad": self.pad}


@keras.saving.register_keras_serializable(package="scbasset")
class SwitchReverse(layers.Layer):
    def call(self, x_reverse):
        x, reverse = x_reverse
        return ops.where(reverse, ops.flip(x, axis=1), x)


@keras.saving.register_keras_serializable(package="scbasset")
class GELU(layers.Layer):
    def call(self, x):
        return ops.sigmoid(1.702 * x) * x


def scbasset(L: int = 48, cells: int = 5, bottleneck: int = 6, seed: int = 0) -> keras.Model:
    def conv_block(h, filters, kernel, pool, name):
        h = GELU()(h)
        h = layers.Conv1D(filters, kernel, padding="same", use_bias=False, name=name)(h)
        h = layers.BatchNormalization(momentum=0.9)(h)
        return layers.MaxPooling1D(pool, padding="same")(h) if pool > 1 else h

    x = keras.Input((L, 4), name="sequence")
    h, reverse_bool = StochasticReverseComplement()(x)
    h = StochasticShift(3)(h)
    h = conv_block(h, 8, 9, 3, "conv_first")
    for i, filters in enumerate((8, 9)):  # the conv tower
        h = conv_block(h, filters, 5, 2, f"conv_tower{i + 1}")
    h = conv_block(h, 6, 1, 1, "conv_last")
    h = GELU()(h)  # the dense block
    h = layers.Reshape((1, h.shape[1] * h.shape[2]))(h)
    h = layers.Dense(bottleneck, use_bias=False)(h)
    h = layers.BatchNormalization(momentum=0.9)(h)
    h = layers.Dropout(0.2)(h)
    h = GELU()(h)
    h = layers.Dense(cells, activation="sigmoid", name="final")(h)
    h = SwitchReverse()([h, reverse_bool])
    return randomize(keras.Model(x, layers.Flatten()(h), name="scbasset"), seed)


def deepmel(L: int = 60, filters: int = 8, units: int = 5, topics: int = 3, seed: int = 0) -> keras.Model:
    forward = keras.Input((L, 4), name="forward_input")
    reverse = keras.Input((L, 4), name="reverse_input")
    tower = [layers.Conv1D(filters, 9, activation="relu", name="conv1d"), layers.MaxPooling1D(4, 4, name="pool"),
             layers.Dropout(0.2, name="dropout_1"),
             layers.TimeDistributed(layers.Dense(units, activation="relu"), name="time_distributed"),
             layers.Bidirectional(layers.LSTM(units, return_sequences=True), name="bidirectional"),
             layers.Dropout(0.2, name="dropout_2"), layers.Flatten(name="flatten"),
             layers.Dense(units, activation="relu", name="dense_1"), layers.Dropout(0.4, name="dropout_3"),
             layers.Dense(topics, activation="sigmoid", name="dense_2")]

    def run(h):
        for layer in tower:
            h = layer(h)
        return h

    out = layers.Average(name="average")([run(forward), run(reverse)])
    return randomize(keras.Model([forward, reverse], out, name="deepmel"), seed)


def tf_cnn(L: int = 50, seed: int = 0) -> keras.Model:
    model = keras.Sequential([keras.Input((L, 4)), layers.Conv1D(8, 11, activation="relu"),
                              layers.MaxPooling1D(3), layers.Dropout(0.1), layers.Conv1D(6, 5, activation="relu"),
                              layers.GlobalMaxPooling1D(), layers.Dense(8, activation="relu"),
                              layers.Dense(1, activation="sigmoid")], name="tf_cnn")
    return randomize(model, seed)


def _deepcpg_dna_features(x):
    h = layers.Conv1D(8, 11, activation="relu", name="dna_conv1d_1")(x)
    h = layers.MaxPooling1D(4, name="dna_maxpool_1")(h)
    h = layers.Conv1D(8, 3, activation="relu", name="dna_conv1d_2")(h)
    h = layers.MaxPooling1D(2, name="dna_maxpool_2")(h)
    h = layers.Flatten(name="dna_flatten")(h)
    h = layers.Dense(8, activation="relu", name="dna_dense_1")(h)
    return layers.Dropout(0.2, name="dna_dropout_1")(h)


def deepcpg_dna(L: int = 101, cells: int = 3, seed: int = 0) -> keras.Model:
    x = keras.Input((L, 4), name="dna")
    h = _deepcpg_dna_features(x)
    outs = [layers.Dense(1, activation="sigmoid", name=f"cpg_cell{i}")(h) for i in range(cells)]
    return randomize(keras.Model(x, outs, name="deepcpg_dna"), seed)


def deepcpg_joint(L: int = 101, cells: int = 3, window: int = 4, seed: int = 0) -> keras.Model:
    dna = keras.Input((L, 4), name="dna")
    state = keras.Input((cells, 2 * window), name="cpg_state")
    dist = keras.Input((cells, 2 * window), name="cpg_dist")
    d = _deepcpg_dna_features(dna)
    c = layers.Concatenate(axis=-1, name="cpg_concat")([state, dist])
    c = layers.TimeDistributed(layers.Dense(6), name="cpg_dense")(c)
    c = layers.Activation("relu", name="cpg_relu")(c)
    c = layers.Bidirectional(layers.GRU(4), merge_mode="concat", name="cpg_bigru")(c)
    c = layers.Dropout(0.2, name="cpg_dropout")(c)
    h = layers.Concatenate(name="joint_concat")([d, c])
    h = layers.Dense(8, activation="relu", name="joint_dense")(h)
    outs = [layers.Dense(1, activation="sigmoid", name=f"cpg_cell{i}")(h) for i in range(cells)]
    return randomize(keras.Model([dna, state, dist], outs, name="deepcpg_joint"), seed)
