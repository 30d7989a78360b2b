"""Ground-truth logic data sets for feature-interaction analysis, and a check that a model implements the logic.

Every case plants a subset of M motifs in random background sequences, the subset balanced over the 2^M
presence patterns, and labels each sequence by a Boolean rule of the presence pattern (or, for the additive
case, a regression target that is a weighted sum of motif counts). A model trained on a case is only useful as
ground truth if it implements the rule; :func:`check_logic` tests that per presence pattern.

The cases (:data:`CASES`), each a kind of logic the interaction analysis must recover: synthetic set I, an
additive regression, OR, a 3-way AND, a veto (NOT), XOR at 40 and 100 bp, and XOR read at the second of two
convolution layers. Each case names its interacting motif pairs and the sign their interaction must have (> 0
synergy, < 0 antagonism).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..io.sequences import one_hot
from .datasets import SET_ONE_MOTIFS, SyntheticData, _plant, synthetic_set_one
from .train import predict_logits, split_indices, train_model
from .zoo import synthetic_cnn

#: Motifs of the designed cases: distinct 6-mers without shared 4-mer cores (set I's three, then two more).
MOTIFS = ("GCTCAT", "CGCTTG", "CAGGTC", "TTAGCA", "GATACG")


def logic_data(motifs: Sequence[str], rule: Callable[[np.ndarray], np.ndarray], *, n: int = 12_000,
               length: int = 40, max_count: int = 1, seed: int = 0, name: str = "") -> SyntheticData:
    """Sequences carrying a subset of ``motifs``, balanced over presence patterns, labelled by ``rule``.

    Parameters
    ----------
    motifs : sequence of str, length M
    rule : callable
        Maps counts (N, M) int to labels (N,) (0/1 for a classification, any float for a regression).
    n : int
        Sequences. Presence patterns (with ``max_count`` > 1: count patterns in 0..max_count per motif) are
        assigned in equal numbers, then shuffled.
    length : int
    max_count : int
        Largest number of copies of one motif (1: presence/absence).
    seed : int
    name : str
        Class name of the label.

    Returns
    -------
    SyntheticData with ``y`` (N, 1), ``present`` (N, M) bool, ``positions`` the first copy's start (-1 if absent)
    and ``params["counts"]`` (N, M) int.
    """
    motifs = tuple(motifs)
    M = len(motifs)
    if max_count * sum(len(m) for m in motifs) > length:
        raise ValueError(f"logic_data: {max_count} copies of each of {list(motifs)} do not fit in {length} bp")
    rng = np.random.default_rng(seed)
    patterns = np.stack(np.meshgrid(*[np.arange(max_count + 1)] * M, indexing="ij"), -1).reshape(-1, M)
    counts = patterns[rng.permutation(np.resize(np.arange(len(patterns)), n))]
    seqs, positions = [], np.full((n, M), -1)
    for i in range(n):
        chosen = [m for m, c in zip(motifs, counts[i]) for _ in range(c)]
        s, _ = _plant(rng, length, chosen, motifs, exclusive=False)
        # exclusive planting for repeated motifs: redraw until every motif occurs exactly as often as planted
        while any(s.count(m) != c or _overlapping(s, m) != c for m, c in zip(motifs, counts[i])):
            s, _ = _plant(rng, length, chosen, motifs, exclusive=False)
        seqs.append(s)
        positions[i] = [s.find(m) for m in motifs]
    y = np.asarray(rule(counts), dtype=np.float32).reshape(n, 1)
    return SyntheticData(x=one_hot(seqs), y=y, present=counts > 0, positions=positions, motifs=motifs,
                         class_names=[name or "label"], background=np.zeros(n, bool),
                         params=dict(n=n, length=length, max_count=max_count, seed=seed, counts=counts))


def _overlapping(s: str, m: str) -> int:
    return sum(s.startswith(m, i) for i in range(len(s) - len(m) + 1))


def two_layer_cnn(length: int = 40, n_filters: int = 32, hidden: int = 64, global_pool: bool = False) -> nn.Sequential:
    """conv 8 bp -> ReLU -> max-pool 2 -> conv 5 -> ReLU -> max-pool 2 [-> global max-pool] -> dense -> ReLU ->
    dense 1 -> sigmoid.

    The model of the "XOR read at a deeper layer" case; ``pool2`` (n_filters, ((length - 7) // 2 - 4) // 2) is
    the layer analysed. ``global_pool`` adds ``pool3``, a max-pool over all positions of ``pool2``, before the
    dense layers. It is a module of its own rather than a global ``pool2`` so that a ``pool2`` channel keeps its
    19-bp receptive field (a global ``pool2`` would see the whole input, and two such channels' words no longer
    fit side by side in one sequence, which :func:`deepresolve.interactions` needs).
    """
    w = ((length - 7) // 2 - 4) // 2  # positions of pool2
    if w < 1:
        raise ValueError(f"two_layer_cnn: length {length} is too short (needs >= 19 bp)")
    pool3 = [("pool3", nn.MaxPool1d(w))] if global_pool else []
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv1d(4, n_filters, 8)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool1d(2, 2)),
        ("conv2", nn.Conv1d(n_filters, n_filters, 5)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool1d(2, 2)), *pool3,
        ("flatten", nn.Flatten()), ("dense1", nn.Linear(n_filters * (1 if global_pool else w), hidden)),
        ("relu3", nn.ReLU()), ("dense2", nn.Linear(hidden, 1)), ("sigmoid", nn.Sigmoid()),
    ]))


@dataclass
class LogicCase:
    """One ground-truth case.

    Attributes
    ----------
    name : str
    motifs : tuple of str
    rule : callable, counts (N, M) -> labels (N,)
    pairs : dict (motif, motif) -> sign
        The interacting motif pairs and the sign of their interaction (+1 synergy, -1 antagonism); every other
        pair of ``motifs`` does not interact.
    primary : (motif, motif) or None
        The pair that must rank first by |interaction| (None: no pair interacts).
    length, n, max_count : int
    regression : bool
    layer : str
        The layer analysed.
    deep : bool
        Model with two convolution layers (:func:`two_layer_cnn`).
    global_pool : bool
        The dense head sees a max-pool over all positions (a motif anywhere gives the same feature): in the
        one-layer model the analysed ``pool1`` spans all positions (W = 1), in the two-layer model a ``pool3``
        follows ``pool2`` (:func:`two_layer_cnn`). XOR
        cases need it: an XOR pattern is balanced, so neither motif alone predicts the label and the filters only
        get a gradient through the head's interaction term; with position-wise pooling (W > 1) the head has to
        learn that interaction for every pair of positions and gradient descent stays at chance (xor100 at pool 4,
        xor_deep at pool 2: test AUC 0.49), with one position it learns it in a few epochs.
    train : dict
        Keyword arguments of the training.
    """

    name: str
    motifs: tuple[str, ...]
    rule: Callable[[np.ndarray], np.ndarray]
    pairs: dict[tuple[str, str], int]
    primary: tuple[str, str] | None
    length: int = 40
    n: int = 12_000
    max_count: int = 1
    regression: bool = False
    layer: str = "pool1"
    deep: bool = False
    global_pool: bool = False
    train: dict = field(default_factory=lambda: dict(lr=3e-3, batch_size=64, epochs=30, patience=6))

    def data(self, seed: int) -> SyntheticData:
        if self.name == "set1":
            d = synthetic_set_one(self.n, self.n // 5, length=self.length, seed=seed)
            d.params["counts"] = d.present.astype(int)
            return d
        return logic_data(self.motifs, self.rule, n=self.n, length=self.length, max_count=self.max_count,
                          seed=seed, name=self.name)

    def model(self) -> nn.Sequential:
        if self.deep:
            return two_layer_cnn(self.length, global_pool=self.global_pool)
        if self.global_pool:
            return synthetic_cnn(length=self.length, pool=self.length - 7)  # 8-bp filters: length - 7 positions
        return synthetic_cnn(length=self.length)


A, B, C, D, E = MOTIFS
#: Additive weights of the regression case (per copy of A, B, C).
ADDITIVE_WEIGHTS = (1.0, -0.7, 0.5)

CASES: dict[str, LogicCase] = {c.name: c for c in [
    LogicCase("set1", SET_ONE_MOTIFS, lambda k: (k[:, 0] > 0) & ((k[:, 1] > 0) ^ (k[:, 2] > 0)),
              {("GCTCAT", "CGCTTG"): -1, ("CAGGTC", "GCTCAT"): +1, ("CAGGTC", "CGCTTG"): +1}, ("GCTCAT", "CGCTTG")),
    LogicCase("additive", (A, B, C), lambda k: k @ np.array(ADDITIVE_WEIGHTS), {}, None, length=60, max_count=2,
              regression=True),
    LogicCase("or", (A, B, C), lambda k: (k[:, 0] > 0) | (k[:, 1] > 0), {(A, B): -1}, (A, B)),
    LogicCase("and3", (A, B, C, D), lambda k: (k[:, 0] > 0) & (k[:, 1] > 0) & (k[:, 2] > 0),
              {(A, B): +1, (A, C): +1, (B, C): +1}, (A, B), n=16_000,
              train=dict(lr=3e-3, batch_size=64, epochs=40, patience=10)),  # 1 positive pattern in 16: train longer
    LogicCase("not", (A, B, C), lambda k: (k[:, 0] > 0) & ~(k[:, 1] > 0), {(A, B): -1}, (A, B)),
    LogicCase("xor40", (A, B, C), lambda k: (k[:, 0] > 0) ^ (k[:, 1] > 0), {(A, B): -1}, (A, B)),
    # XOR over 100 bp or read after two convolutions: chance-level without a global pool (see global_pool); the
    # validation AUC stays near 0.5 for up to ~5 epochs before the filters lock on, hence patience 10
    LogicCase("xor100", (A, B, C), lambda k: (k[:, 0] > 0) ^ (k[:, 1] > 0), {(A, B): -1}, (A, B), length=100,
              n=24_000, global_pool=True, train=dict(lr=3e-3, batch_size=64, epochs=30, patience=10)),
    LogicCase("xor_deep", (A, B, C), lambda k: (k[:, 0] > 0) ^ (k[:, 1] > 0), {(A, B): -1}, (A, B),
              layer="pool2", deep=True, global_pool=True, train=dict(lr=3e-3, batch_size=64, epochs=30, patience=10)),
]}
"""The cases of the evaluation, by name. In ``and3`` every pair of the first three motifs must interact (the
primary pair is any one of them: all three are checked)."""


def train_logic_model(case, data: SyntheticData, seed: int) -> tuple[nn.Module, dict]:
    """Train the case's model on ``data`` (BCE, or MSE for the regression case); returns the model and its metrics.

    ``case`` is a :class:`LogicCase` or any case with ``model()``, ``regression`` and ``train`` (e.g.
    :class:`deepresolve.paper.genomic.GenomicCase`); a regression model is trained and returned without a trailing
    Sigmoid.
    """
    torch.manual_seed(seed)
    model = case.model()
    if not case.regression:
        fit = train_model(model, data.x, data.y, seed=seed, **case.train)
        return model.eval(), dict(test_auc=float(fit.test_auc[0]), epochs=len(fit.history), split=fit.split)
    split = split_indices(len(data), seed=seed)
    net = model[:-1] if isinstance(model[-1], nn.Sigmoid) else model  # the output is the regression value
    opt = torch.optim.Adam(net.parameters(), lr=case.train["lr"])
    gen = np.random.default_rng(seed)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    best, best_state, bad, epochs = np.inf, None, 0, 0
    n_batches = max(1, len(split["train"]) // case.train["batch_size"])
    for _ in range(case.train["epochs"]):
        epochs += 1  # returned: early stopping may end before case.train["epochs"]
        net.train()
        for b in np.array_split(gen.permutation(split["train"]), n_batches):
            opt.zero_grad()
            nn.functional.mse_loss(net(x[b]), y[b]).backward()
            opt.step()
        with torch.no_grad():
            val = float(nn.functional.mse_loss(net.eval()(x[split["val"]]), y[split["val"]]))
        if val < best - 1e-5:
            best, best_state, bad = val, copy.deepcopy(net.state_dict()), 0
        elif (bad := bad + 1) >= case.train["patience"]:
            break
    net.load_state_dict(best_state)
    with torch.no_grad():
        pred = net.eval()(x[split["test"]]).numpy()[:, 0]
    r2 = 1 - np.mean((pred - data.y[split["test"], 0]) ** 2) / np.var(data.y[split["test"], 0])
    return net.eval(), dict(test_r2=float(r2), epochs=epochs, split=split)


def check_logic(model: nn.Module, data: SyntheticData, *, regression: bool = False, min_accuracy: float = 0.7,
                max_error: float = 0.2, index: np.ndarray | None = None) -> tuple[bool, list[dict]]:
    """Whether ``model`` implements the data's logic on every presence (or count) pattern, for every output.

    A classification model passes when, for every pattern and output (task), the mean logit has the label's sign
    and at least ``min_accuracy`` of its sequences are classified right (logit > 0 for label 1); a regression model
    when every pattern's mean prediction is within ``max_error`` of the target. Background-only sequences of set I
    are one more pattern.

    Returns
    -------
    ok : bool
    rows : list of dict, one per (task, pattern): ``task`` (output column), ``pattern`` (counts), ``n``,
        ``target``, ``mean`` prediction (the logit for a classification), ``accuracy`` or ``error``.
    """
    idx = np.arange(len(data)) if index is None else np.asarray(index)
    counts = data.params.get("counts", data.present.astype(int))[idx]
    outs = predict_logits(model, data.x[idx])
    keys = [tuple(c) + (int(b),) for c, b in zip(counts, data.background[idx])]
    rows, ok = [], True
    for task in range(data.y.shape[1]):
        out, y = outs[:, task], data.y[idx, task]
        for key in sorted(set(keys)):
            sel = np.array([k == key for k in keys])
            row = dict(task=task, pattern=tuple(int(v) for v in key[:-1]), background=bool(key[-1]),
                       n=int(sel.sum()), target=float(y[sel].mean()), mean=float(out[sel].mean()))
            if regression:
                row["error"] = float(abs(out[sel].mean() - y[sel].mean()))
                ok &= row["error"] <= max_error
            else:
                row["accuracy"] = float(((out[sel] > 0) == (y[sel] > 0.5)).mean())
                ok &= row["accuracy"] >= min_accuracy and (row["mean"] > 0) == (row["target"] > 0.5)
            rows.append(row)
    return bool(ok), rows


class _LogicHead(nn.Module):
    """A Boolean function of two features a, b in [0, 1], written as a formula in a and b."""

    FORMS = ("abs", "relu", "minmax", "and", "or")

    def __init__(self, form: str):
        super().__init__()
        if form not in self.FORMS:
            raise ValueError(f"form must be one of {self.FORMS}, got {form!r}")
        self.form = form

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, b = h[:, 0, 0], h[:, 1, 0]
        y = {"abs": lambda: (a - b).abs(),                              # XOR
             "relu": lambda: a + b - 2 * torch.relu(a + b - 1),         # XOR, piecewise linear
             "minmax": lambda: torch.maximum(a, b) - torch.minimum(a, b),  # XOR
             "and": lambda: torch.minimum(a, b),
             "or": lambda: torch.maximum(a, b)}[self.form]()
        return y[:, None]


def hand_built(form: str, length: int = 40, motifs: tuple[str, str] = (MOTIFS[0], MOTIFS[1])) -> nn.Sequential:
    """A network with exact motif detectors and a hand-written logic head, with an analytic truth table.

    conv1 has one filter per motif, the motif's one-hot with bias -(len - 1), so its ReLU output is 1 exactly
    where the motif occurs and 0 elsewhere; a global max-pool gives a, b in {0, 1}; the head computes XOR as
    ``|a - b|`` ("abs"), ``a + b - 2 relu(a + b - 1)`` ("relu", the piecewise-linear form the paper's ascent
    cannot see) or ``max(a, b) - min(a, b)`` ("minmax"), AND as ``min(a, b)`` or OR as ``max(a, b)``.
    ``pool1`` is the layer to analyse. Truth tables: XOR [[0, 1], [1, 0]] (interaction -2), AND [[0, 0], [0, 1]]
    (+1), OR [[0, 1], [1, 1]] (-1).
    """
    w = max(len(m) for m in motifs)
    conv = nn.Conv1d(4, 2, w)
    with torch.no_grad():
        conv.weight.zero_()
        for k, m in enumerate(motifs):
            conv.weight[k] = torch.from_numpy(one_hot(m)[0])
        conv.bias.fill_(-(w - 1.0))
    return nn.Sequential(OrderedDict([("conv1", conv), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool1d(length - w + 1)),
                                      ("head", _LogicHead(form))])).eval()


def word_motifs(words: np.ndarray, motifs: Sequence[str], threshold: float = 0.55, window: int = 8) -> list[str | None]:
    """The planted motif each one-hot word (K, 4, w) matches, else None.

    A word matches a motif when :func:`deepresolve.paper.claims.filter_kmer_scores` of the word (read as a filter)
    is at least ``threshold`` (e.g. 6 matching bases of an 8-bp word score 0.75). A word longer than ``window``
    (a deeper channel's receptive field, 19 bp in :func:`two_layer_cnn`) is scored on each of its ``window``-bp
    windows and the best is kept: read whole, its flanks would count against the motif (6 of 19 bases at most
    0.32), and no deeper channel could match.
    """
    from .claims import filter_kmer_scores

    words = np.asarray(words)
    n_win = max(1, words.shape[-1] - window + 1)
    scores = np.max([filter_kmer_scores(words[..., o:o + min(window, words.shape[-1])], list(motifs))
                     for o in range(n_win)], axis=0)
    return [motifs[int(np.argmax(r))] if r.max() >= threshold else None for r in scores]
