"""Training of the zoo models: Adam, BCE with logits, early stopping on validation AUC.

The models of :mod:`deepresolve.paper.zoo` end in a Sigmoid module; training uses the logits of the
model without it (numerically stable BCE), and the returned model keeps its Sigmoid.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from .._checks import check_float, check_int
from .._model import model_device, strip_probability
from ..errors import ArgumentError


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    Attributes
    ----------
    model : nn.Module
        The trained model (best validation AUC), in eval mode, Sigmoid head kept.
    test_auc : (C,) float
        Per-class ROC AUC on the held-out test split.
    val_auc : (C,) float
        Per-class validation AUC of the kept model.
    history : list of float
        Mean validation AUC after every epoch.
    best_epoch : int
    split : dict of str -> (n,) int
        Indices of the ``train``, ``val`` and ``test`` sequences.
    params : dict
    """

    model: nn.Module
    test_auc: np.ndarray
    val_auc: np.ndarray
    history: list[float]
    best_epoch: int
    split: dict[str, np.ndarray]
    params: dict = field(default_factory=dict)


def split_indices(n: int, test_frac: float = 0.2, val_frac: float = 0.1, seed: int = 0) -> dict[str, np.ndarray]:
    """Random train/validation/test split of ``n`` items (fractions of the whole)."""
    n = check_int(n, "n", minimum=0)
    for name, v in [("test_frac", test_frac), ("val_frac", val_frac)]:
        if check_float(v, name, minimum=0, below=1) == 0:
            raise ArgumentError(f"{name}: expected a fraction in (0, 1), got {v!r}")
    if test_frac + val_frac >= 1.0:
        raise ArgumentError(f"test_frac, val_frac: expected a sum < 1, got {test_frac} + {val_frac}")
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test_frac)), int(round(n * val_frac))
    if min(n_test, n_val, n - n_test - n_val) < 1:
        raise ArgumentError(f"n: expected enough items for a split with test_frac={test_frac}, val_frac={val_frac} "
                            f"(one or more in each part), got {n}")
    return {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: np.ndarray | torch.Tensor, *, batch_size: int = 2048) -> np.ndarray:
    """Pre-sigmoid outputs (N, C) of ``model`` on one-hot ``inputs`` (N, 4, L), in eval mode."""
    net, _ = strip_probability(model)
    was_training = net.training
    net.eval()
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    device = model_device(net)
    out = torch.cat([net(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]) \
        if len(x) else torch.zeros(0, 1)
    net.train(was_training)
    return out.reshape(len(x), -1).numpy()


def auc_per_class(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of every column (NaN for a column with a single label value)."""
    y, scores = np.asarray(y).reshape(len(y), -1), np.asarray(scores).reshape(len(scores), -1)
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        if 0 < y[:, c].sum() < len(y):
            out[c] = roc_auc_score(y[:, c], scores[:, c])
    return out


def apply_max_norm(model: nn.Module, max_norm: float) -> None:
    """Rescale each unit's incoming weights (conv filter or dense row) to L2 norm <= ``max_norm``.

    The Keras ``max_norm`` constraint the paper's TF models used; applied after every step.
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                w = m.weight
                # renorm over output units (dim 0): each filter / row is clipped on its own
                w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=max_norm))


def train_model(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int = 30, batch_size: int = 128,
                lr: float = 1e-3, weight_decay: float = 0.0, max_norm: float | None = None,
                patience: int = 4, test_frac: float = 0.2, val_frac: float = 0.1, seed: int = 0,
                split: dict[str, np.ndarray] | None = None, pos_weight: float | None = None,
                verbose: bool = False) -> TrainResult:
    """Train ``model`` with Adam on binary cross-entropy (one sigmoid per output).

    Parameters
    ----------
    model : nn.Module
        Maps (N, 4, L) to (N, C) (probabilities, with a trailing Sigmoid module, or logits).
        Dropout is whatever the model contains (see :mod:`deepresolve.paper.zoo`).
    x : (N, 4, L) float32
    y : (N, C) or (N,) 0/1 labels
    epochs : int
        Maximum epochs.
    max_norm : float or None
        Max-norm constraint on every conv filter and dense row (paper's TF models: 3).
    weight_decay : float
        L2 penalty of Adam.
    patience : int
        Stop after this many epochs without a better mean validation AUC; the best model is kept.
    test_frac, val_frac : float
        Held-out test fraction (paper: 20 %) and validation fraction for early stopping.
    seed : int
        Seeds the split, the batch order and dropout (the initial weights are the caller's: seed torch first).
    split : dict, optional
        Precomputed ``{"train", "val", "test"}`` indices (overrides the fractions).
    pos_weight : float, optional
        Weight of positive labels in the loss (``BCEWithLogitsLoss(pos_weight=...)``): with many classes each
        positive in ~1 % of sequences, the unweighted loss settles on the base rates before any motif is learnt.

    Returns
    -------
    TrainResult
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] != 4:
        raise ArgumentError(f"x: expected one-hot of shape (N, 4, L), got shape {x.shape}")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != len(x):
        raise ArgumentError(f"y: expected shape (N, C) with N = {len(x)} (the length of x), got shape {y.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        bad = np.unique(y[~np.isin(y, (0.0, 1.0))])[:5].tolist()
        raise ArgumentError(f"y: expected 0/1 labels only, got {bad}")
    for name, v in [("epochs", epochs), ("batch_size", batch_size), ("patience", patience)]:
        check_int(v, name, minimum=1)
    if pos_weight is not None:
        check_float(pos_weight, "pos_weight", minimum=0.0)
    if max_norm is not None and check_float(max_norm, "max_norm", minimum=0) == 0:
        raise ArgumentError(f"max_norm: expected a positive number or None, got {max_norm!r}")
    split = split_indices(len(x), test_frac, val_frac, seed) if split is None else split
    missing = {"train", "val", "test"} - set(split)
    if missing:
        raise ArgumentError(f"split: expected the keys 'train', 'val' and 'test', got {sorted(split)} without "
                            f"{sorted(missing)}")

    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    net, _ = strip_probability(model)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(
        pos_weight=None if pos_weight is None else torch.full((y.shape[1],), float(pos_weight)))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    tr = split["train"]
    best, best_state, best_epoch, history, bad = -np.inf, None, -1, [], 0
    for epoch in range(epochs):
        net.train()
        for b in np.array_split(gen.permutation(tr), max(1, len(tr) // batch_size)):
            opt.zero_grad()
            out = net(xt[b]).reshape(len(b), -1)
            loss = loss_fn(out, yt[b])
            loss.backward()
            opt.step()
            if max_norm is not None:
                apply_max_norm(net, max_norm)
        val = auc_per_class(y[split["val"]], predict_logits(net, x[split["val"]]))
        score = float(np.nanmean(val))
        history.append(score)
        if verbose:
            print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}, mean val AUC {score:.4f}", flush=True)
        if score > best + 1e-5:
            best, best_state, best_epoch, bad = score, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
    net.load_state_dict(best_state)
    model.eval()
    val_auc = auc_per_class(y[split["val"]], predict_logits(net, x[split["val"]]))
    test_auc = auc_per_class(y[split["test"]], predict_logits(net, x[split["test"]]))
    params = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, max_norm=max_norm,
                  pos_weight=pos_weight, patience=patience, test_frac=test_frac, val_frac=val_frac, seed=seed,
                  epochs_run=len(history))
    return TrainResult(model, test_auc, val_auc, history, best_epoch, split, params)
