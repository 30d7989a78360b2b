"""Model architectures of the DeepResolve paper, as named ``nn.Sequential`` models.

Every model takes one-hot input (N, 4, L) and has named modules (``conv1``, ``relu1``,
``pool1``, ``flatten``, ``dense1``, ...) so a layer can be addressed by name in
:func:`deepresolve.resolve`. Models end in a separate ``nn.Sigmoid`` module named ``sigmoid``:
the engine, the trainer and the baselines strip it to work on the pre-sigmoid logit.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .._checks import check_float, check_int, existing_file
from ..errors import ArgumentError, FileFormatError


def synthetic_cnn(n_outputs: int = 1, length: int = 100, n_filters: int = 32, filter_width: int = 8,
                  pool: int = 4, hidden: int = 64, dropout: float = 0.0) -> nn.Sequential:
    """The CNN of the paper's synthetic experiments.

    conv (32 filters of 8 bp, valid) -> ReLU -> max-pool 4 (stride 4) -> dense 64 -> ReLU
    [-> dropout] -> dense ``n_outputs`` -> sigmoid. DeepResolve analyses ``pool1``, the layer
    between the convolution and the dense layer, of shape (32, (length - 7) // 4).

    Parameters
    ----------
    n_outputs : int
        1 for set I, 4 for the multi-task set II.
    length : int
        Input length L.
    dropout : float
        Dropout after the hidden dense layer (0 leaves the module out).

    Returns
    -------
    nn.Sequential mapping (N, 4, length) to probabilities (N, n_outputs).
    """
    for name, v in [("n_outputs", n_outputs), ("length", length), ("n_filters", n_filters),
                    ("filter_width", filter_width), ("pool", pool), ("hidden", hidden)]:
        check_int(v, name, minimum=1)
    dropout = check_float(dropout, "dropout", minimum=0, below=1)
    width = (length - filter_width + 1) // pool
    if width < 1:
        raise ArgumentError(f"length: expected >= {filter_width + pool - 1} for filters of {filter_width} bp and "
                            f"pooling {pool}, got {length}")
    layers = [
        ("conv1", nn.Conv1d(4, n_filters, filter_width)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool1d(pool, pool)),
        ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(n_filters * width, hidden)),
        ("relu2", nn.ReLU()),
    ]
    if dropout > 0:
        layers.append(("dropout1", nn.Dropout(dropout)))
    layers += [("dense2", nn.Linear(hidden, n_outputs)), ("sigmoid", nn.Sigmoid())]
    return nn.Sequential(OrderedDict(layers))


def tf_cnn(length: int = 101, n_filters: int = 16, filter_width: int = 25, hidden: int = 32,
           dropout: float = 0.5) -> nn.Sequential:
    """The paper's single-task TF-binding CNN.

    conv (16 filters of 25 bp, 'same' padding) -> ReLU -> global max-pool -> flatten ->
    dense 32 -> ReLU -> dropout -> dense 1 -> sigmoid. The global max-pool is a
    ``nn.MaxPool1d(length)`` (not an adaptive pool) because captum's DeepLIFT has a rule for
    ``MaxPool1d`` but none for ``AdaptiveMaxPool1d``; the model therefore expects inputs of
    exactly ``length`` bp. ``pool1`` has shape (16, 1).
    """
    for name, v in [("length", length), ("n_filters", n_filters), ("filter_width", filter_width), ("hidden", hidden)]:
        check_int(v, name, minimum=1)
    dropout = check_float(dropout, "dropout", minimum=0, below=1)
    layers = [
        ("conv1", nn.Conv1d(4, n_filters, filter_width, padding="same")),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool1d(length)),
        ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(n_filters, hidden)),
        ("relu2", nn.ReLU()),
    ]
    if dropout > 0:
        layers.append(("dropout1", nn.Dropout(dropout)))
    layers += [("dense2", nn.Linear(hidden, 1)), ("sigmoid", nn.Sigmoid())]
    return nn.Sequential(OrderedDict(layers))


def _deepsea_widths(length: int) -> int:
    w = length
    for pool in (4, 4, 1):
        w = (w - 7) // pool
    return w


def deepsea(n_outputs: int = 919, length: int = 1000, hidden: int = 919,
            filters: tuple[int, int, int] = (320, 480, 960), batch_norm: bool = False) -> nn.Sequential:
    """A DeepSEA-shaped model (Zhou & Troyanskaya 2015).

    conv 320 (8) -> ReLU -> max-pool 4 -> dropout 0.2 -> conv 480 (8) -> ReLU -> max-pool 4 ->
    dropout 0.2 -> conv 960 (8) -> ReLU -> dropout 0.5 -> flatten -> dense ``hidden`` -> ReLU ->
    dense ``n_outputs`` -> sigmoid. With the default 1000-bp input the last conv output is
    (960, 53). The paper analyses the input of the third convolution, i.e. ``drop2``
    (480 channels x 60 positions).

    ``filters`` sets the three convolutions' widths (DeepSEA's 320, 480, 960 by default); smaller ones give a
    DeepSEA-shaped model that trains in minutes on a CPU (synthetic set III). ``batch_norm`` adds a
    ``BatchNorm1d`` after each convolution (``bn1``..``bn3``, before its ReLU), as in later DeepSEA variants
    (Selene's DeeperDeepSEA) and Basset: with many rare classes the plain network barely starts learning.
    """
    for name, v in [("n_outputs", n_outputs), ("length", length), ("hidden", hidden)]:
        check_int(v, name, minimum=1)
    if not isinstance(filters, (tuple, list)) or len(filters) != 3:
        raise ArgumentError(f"filters: expected three positive ints (one per convolution), got {filters!r}")
    f1, f2, f3 = (check_int(f, f"filters[{i}]", minimum=1) for i, f in enumerate(filters))
    w = _deepsea_widths(length)
    if w < 1:
        raise ArgumentError(f"length: expected >= 191 bp for the DeepSEA architecture, got {length}")

    def conv(i: int, n_in: int, n_out: int) -> list[tuple[str, nn.Module]]:
        bn = [(f"bn{i}", nn.BatchNorm1d(n_out))] if batch_norm else []
        return [(f"conv{i}", nn.Conv1d(n_in, n_out, 8)), *bn, (f"relu{i}", nn.ReLU())]

    return nn.Sequential(OrderedDict([
        *conv(1, 4, f1),
        ("pool1", nn.MaxPool1d(4, 4)),
        ("drop1", nn.Dropout(0.2)),
        *conv(2, f1, f2),
        ("pool2", nn.MaxPool1d(4, 4)),
        ("drop2", nn.Dropout(0.2)),
        *conv(3, f2, f3),
        ("drop3", nn.Dropout(0.5)),
        ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(f3 * w, hidden)),
        ("relu4", nn.ReLU()),
        ("dense2", nn.Linear(hidden, n_outputs)),
        ("sigmoid", nn.Sigmoid()),
    ]))


def deepsea_from_file(path: str | Path, length: int | None = None) -> nn.Sequential:
    """Load a DeepSEA-shaped model from a torch state-dict file.

    The file holds the state dict of :func:`deepsea` (keys ``conv1.weight`` ... ``dense2.bias``),
    either bare or under a ``"state_dict"`` key. Hidden size and number of outputs are read
    from the weight shapes. ``length`` (the input length) defaults to 1000 when the weights fit
    it, else the shortest length that fits them; ``model.input_length`` records it.

    Raises
    ------
    MissingFileError, FileFormatError, ArgumentError
        When the file is missing, does not hold such a state dict, or ``length`` does not fit the weights.
    """
    path = existing_file(path, "DeepSEA weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise FileFormatError(f"DeepSEA weights file {str(path)!r}: expected a torch state dict file, got one "
                              f"torch.load cannot read ({type(err).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FileFormatError(f"DeepSEA weights file {str(path)!r}: expected a state dict, "
                              f"got a {type(state).__name__}")
    expected = {f"{m}.{p}" for m in ("conv1", "conv2", "conv3", "dense1", "dense2") for p in ("weight", "bias")}
    missing = sorted(expected - set(state))
    if missing:
        raise FileFormatError(f"DeepSEA weights file {str(path)!r}: expected the DeepSEA weights, got keys "
                              f"{sorted(state)[:8]} without {missing}")
    hidden, flat = state["dense1.weight"].shape
    n_outputs = state["dense2.weight"].shape[0]
    if flat % 960:
        raise FileFormatError(f"DeepSEA weights file {str(path)!r}: expected dense1.weight with a multiple of 960 "
                              f"inputs, got {flat}")
    w3 = flat // 960
    if length is None:
        # Several lengths fit one width (floor pooling); prefer DeepSEA's 1000 bp, else the shortest.
        length = 1000 if _deepsea_widths(1000) == w3 else ((w3 + 7) * 4 + 7) * 4 + 7
    if _deepsea_widths(check_int(length, "length", minimum=1)) != w3:
        raise ArgumentError(f"length: expected an input length giving {w3} positions after conv3 (dense1.weight has "
                            f"960 x {w3} = {flat} inputs), got {length}, which gives {_deepsea_widths(length)}")
    model = deepsea(n_outputs=int(n_outputs), length=length, hidden=int(hidden))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise FileFormatError(f"DeepSEA weights file {str(path)!r}: expected weights of the DeepSEA architecture, "
                              f"got ones that do not fit: {' '.join(str(err).split())}") from None
    model.input_length = length  # for the caller's input_shape=(4, model.input_length)
    return model.eval()
