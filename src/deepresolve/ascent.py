"""Batched gradient ascent on a feature map: the feature importance maps (FIM) of DeepResolve.

For every (class c, restart t) pair -- a *row* -- we maximise

    S_c(H) - lambda * ||H - center||^2

over the feature map H of the chosen layer, where S_c is the class-c logit computed by the head (the network
after the layer). H is unconstrained (negative values allowed, as in the paper) unless ``nonnegative=True``.
All rows run as one batched problem: each step is one forward/backward of the head over up to ``batch_size``
rows, each row scoring its own class. Rows that have converged leave the batch and pending rows take their
place, so the batch stays full until the work runs out.

Optimisers
----------
``"matched"`` (default)
    Gradient ascent with a per-row step ``eta / (2 lambda)``, ``eta`` starting at ``lr`` (default 1) and halved
    whenever a step lowers the row's objective (the step is then undone). For a head that is piecewise linear in H
    (ReLU, max-pool, dense layers: the usual genomic CNN) the step ``1 / (2 lambda)`` jumps straight to the optimum
    ``grad S_c / (2 lambda)`` of the current linear region, so rows converge in a handful of steps. A row has
    converged when its relative objective gain stays below ``tol`` for ``patience`` accepted steps.
``"bundle"``
    A cutting-plane (bundle) step that learns the kinks: every evaluation adds a *cut*, the linear piece
    ``S(H_i) + grad S(H_i) . (H - H_i)``, and the next point maximises the model ``min_i cut_i(H) - lambda
    ||H - center||^2``. Its maximiser is a convex combination of the cuts' matched points ``grad S(H_i) /
    (2 lambda)`` (the optimum on a kink is exactly such a combination), found by a QP over the ``cuts`` weights
    (default 6) solved exactly. With one cut it is the matched step. Where the head is concave around the optimum
    (the ReLU penalties that bind there) the model bounds the objective from above, so its maximum also tells how
    much gain is left. The head is not concave far away, so every cut is re-levelled at the best point to pass at
    least ``far lambda d^2`` above it (d the distance to where the cut was made), which keeps cuts from far points
    from cutting off the optimum; ``far`` starts at 0.1 and doubles (up to 1) at each step of the row that fails
    to improve. A row has converged when the model's maximum is within ``tol`` of the best objective, or no step
    gained more than ``tol`` for ``patience`` steps. Cost: 2 x cuts maps per row of memory and a few passes over
    them per step. On a hand-built head whose optimum lies on two kinks it reaches the optimum to 1e-7 in under 10
    steps where "matched" stops 6e-4 short after 25 (tested). All 919 classes x 10 restarts of the DeepSEA-shaped
    head of ``benchmarks/ascent_speed.py`` at l2 = 1 with ``tol=1e-4``: 11.5 steps per row against 23.0 for
    "matched", final objectives 5.8e-5 below "matched"'s (median relative; 92 classes compared), 503 s on
    2 CPU threads against 830 s for "matched" (one machine; 211 against 251 row-steps/s: the bundle's own work
    costs about 16 % per step). The rule for ``far`` came from 24 classes x 10 restarts of that head (l2 = 1,
    tol 1e-4) and the same classes x 2 restarts at ``l2="auto"`` (0.0047), steps per row: a fixed 0.25 (the
    earlier rule) 12.3 and 82; a fixed 0.1 with 4 cuts 11.3 and 152; doubling from 0.1, 11.9 and 72 (with 4 cuts
    11.4 and 89); "matched" 24.6 and 64. 4 cuts were about 5 % cheaper per step but less stable between batch
    sizes (24 seeded heads: FIVs within 5.9e-2 against 1.7e-2). "bundle" is not the default: at small lambda, where the optimum is far from the kinks' bias scale,
    it takes more steps than "matched" and ends lower (7e-2 relative in median there).
``"paper"``
    The paper's schedule: plain gradient ascent with ``lr = lr0 * max((step - start_decay) ** -alpha, min_lr)``
    after ``start_decay`` steps, stopping when the objective has not improved for ``patience`` steps
    (defaults: lr0 = 0.1, start_decay = 500, alpha = 0.2, min_lr = 1e-6, patience = 10, at most 10,000 steps).

Each optimiser is one step function (``_step_matched``, ``_step_bundle``, ``_step_paper``) acting on the state of
the rows in the batch (``_Rows``: one tensor per quantity, rows on the first axis, leaving and joining together).

Batching
--------
Each row starts from a map that depends only on (seed, class, restart) and runs the same arithmetic in any batch,
so the same batch composition gives bit-identical results. But the head's matrix products round differently for
different batch shapes (BLAS picks its blocking by shape), and a row stops on a tolerance, so a rounding
difference can end a row a few steps earlier or later where the objective is nearly flat (on ReLU kinks).
Results therefore depend on ``batch_size`` -- and on which rows share a batch (class subset, resumed run) --
within this tolerance: **final objectives within 1e-3 relative ("bundle": 2e-3); FIVs (the spatial means of the
FIMs) within 5e-2 x the class's largest |FIV|; so every FIV larger than 10 % of its class's largest keeps its sign**.
Single FIM entries along flat directions can move more (up to 6e-2 x the class's max |FIM| measured, median
2e-7), and step counts by a few (up to 16 measured). Measured on seeded ReLU heads, batch_size 1 and 7 against the
default: objectives within 1.4e-4 relative, FIVs within 1.1e-2 ("matched") and 3.6e-2 ("paper", 400 steps at
lr 0.05) of the class's largest; "bundle" (24 seeded heads, batch_size 1, 5 and 7): objectives within 1.1e-3
(median 1.1e-5), FIVs within 1.7e-2 (median 6e-6), and on the tf422 CTCF model at its input of the dense layer
with ``l2="prior"`` (batch_size 1, 3, 7; 10 restarts) objectives within 1.4e-6 ("matched": 1.2e-6), FIVs within
3.5e-7 (it ends 29 % above "matched" on average there, mean objective 0.264 against 0.204; an earlier
measurement, with the fixed ``far`` of 0.25 and on another machine, had 1.5e-3 and 1.2e-3). The tests check the
statement for batch_size 1, 5 and the default, for all three optimisers.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_float, check_int
from ._model import check_device
from .errors import ArgumentError
from .importance import fiv
from .store import FinishedRow, FinishedRows

Optimizer = Literal["matched", "bundle", "paper"]
PRECISIONS = ("float32", "bfloat16")

#: Defaults of each optimiser; ``feature_ascent`` arguments left as None take these.
DEFAULTS = {
    "matched": {"lr": 1.0, "steps": 500, "tol": 1e-5, "patience": 2},
    "bundle": {"lr": 1.0, "steps": 500, "tol": 3e-5, "patience": 3, "cuts": 6},
    "paper": {"lr": 0.1, "steps": 10_000, "tol": 0.0, "patience": 10, "start_decay": 500, "alpha": 0.2, "min_lr": 1e-6},
}


@dataclass
class AscentOutput:
    """Raw output of :func:`feature_ascent` for R = C x T rows, row r = (class r // T, restart r % T).

    Attributes
    ----------
    fims : (C, T, *feature_shape) float32 tensor on the CPU, or None (``keep_maps=False``)
    fivs : (C, T, K) float64 array -- feature importance vectors, each row's map reduced as it finished
    scores : (C, T) float64 array -- final class score S_c of each row
    objective : (C, T) float64 array -- final objective S_c - lambda ||H - center||^2
    steps : (C, T) int array -- steps each row took
    trace : list of R float32 arrays -- objective at every step of each row
    seconds : float -- wall time
    row_steps : int -- total (row x step) evaluations, for throughput figures
    """

    fims: torch.Tensor | None
    fivs: np.ndarray
    scores: np.ndarray
    objective: np.ndarray
    steps: np.ndarray
    trace: list[np.ndarray]
    seconds: float
    row_steps: int


def row_seed(seed: int, cls: int, restart: int) -> int:
    """Seed of one (class, restart) row: independent of batching, class subset and device."""
    digest = hashlib.blake2b(f"{seed}/{cls}/{restart}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def initial_maps(rows: Sequence[tuple[int, int]], feature_shape: Sequence[int], seed: int, scale: float) -> torch.Tensor:
    """Random normal starting maps, one per (class, restart) row: (len(rows), *feature_shape), float32, CPU."""
    gen = torch.Generator()
    out = torch.empty((len(rows), *feature_shape))
    for i, (c, t) in enumerate(rows):
        gen.manual_seed(row_seed(seed, c, t))
        out[i] = torch.randn(tuple(feature_shape), generator=gen) * scale
    return out


def row_fivs(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """FIVs (float64) of a stack of maps (n, K, ...) -> (n, K); a map of shape (K,) (W = 1) is its own FIV."""
    maps = maps.numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    return fiv(maps.reshape(len(maps), maps.shape[1], -1))


class RowTable:
    """The R = C x T rows of an ascent, filled as rows finish (or are read back from a run store).

    Both the local ascent and the Dask driver collect their rows here and return :meth:`output`.
    """

    def __init__(self, n_rows: int, feature_shape: Sequence[int], keep_maps: bool) -> None:
        self.feature_shape = tuple(int(k) for k in feature_shape)
        self.fims = torch.empty((n_rows, *self.feature_shape)) if keep_maps else None
        self.fivs = np.full((n_rows, self.feature_shape[0]), np.nan)
        self.scores, self.objective = np.full(n_rows, np.nan), np.full(n_rows, np.nan)
        self.steps = np.zeros(n_rows, dtype=np.int64)
        self.traces: list[np.ndarray] = [np.empty(0, np.float32)] * n_rows

    def put_row(self, r: int, row: FinishedRow) -> None:
        """One row; its ``map`` may be the FIV (K,) alone when maps are not kept."""
        self.fivs[r] = row_fivs(np.asarray(row.map)[None])[0]
        self.scores[r], self.objective[r], self.steps[r], self.traces[r] = row.score, row.objective, row.steps, row.trace
        if self.fims is not None:
            self.fims[r] = torch.as_tensor(row.map)

    def put(self, finished: FinishedRows) -> None:
        """A batch of finished rows."""
        self.fivs[finished.rows] = row_fivs(finished.maps)
        for r, row in finished.items():
            self.scores[r], self.objective[r], self.steps[r], self.traces[r] = (row.score, row.objective, row.steps,
                                                                                row.trace)
            if self.fims is not None:
                self.fims[r] = torch.as_tensor(row.map)

    def output(self, n_classes: int, restarts: int, seconds: float, row_steps: int) -> AscentOutput:
        """The rows as an :class:`AscentOutput` of C classes x T restarts."""
        C, T = n_classes, restarts
        return AscentOutput(fims=None if self.fims is None else self.fims.view(C, T, *self.feature_shape),
                            fivs=self.fivs.reshape(C, T, -1), scores=self.scores.reshape(C, T),
                            objective=self.objective.reshape(C, T), steps=self.steps.reshape(C, T),
                            trace=self.traces, seconds=seconds, row_steps=row_steps)


class _ConvInputGrad(torch.autograd.Function):
    """``conv1d`` of a frozen weight whose backward computes only the input's gradient, by one matrix product.

    The gradient with respect to the input of a stride-1 convolution is ``grad @ W`` over (out channels) x
    (kernel taps x in channels) followed by adding the k taps back at their shifts. Whether this beats
    ``convolution_backward`` depends on the CPU and its oneDNN kernels: on DeepSEA's third convolution (480 -> 960
    x 8 at W = 60, 256 rows) it took 1.6 s against 2.6 s on one thread of one machine (129 GFLOP/s matmul on 2
    threads), but on a Sapphire Rapids machine (AVX-512, 417 GFLOP/s) a forward and backward took 0.63-0.67 s
    against 0.57-0.59 s on 2 threads: oneDNN's own backward was about 8 % faster there. Kept, as the larger gain.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int,
                taps: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(taps)
        ctx.shape = (x.shape[-1], padding, weight.shape[1], weight.shape[2])
        return torch.nn.functional.conv1d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (taps,) = ctx.saved_tensors  # (out channels, k * in channels), tap-major
        length, padding, n_in, k = ctx.shape
        n, n_out, w_out = grad.shape
        y = (grad.transpose(1, 2).reshape(-1, n_out) @ taps).view(n, w_out, k, n_in)
        full = grad.new_zeros(n, w_out + k - 1, n_in)
        for j in range(k):
            full[:, j:j + w_out] += y[:, :, j]
        return full[:, padding:padding + length].transpose(1, 2), None, None, None, None


class _FrozenConv1d(nn.Module):
    """An ``nn.Conv1d`` (stride 1, no dilation or groups, zero padding) computed through :class:`_ConvInputGrad`, for
    the ascent: it shares the convolution's parameters and treats them as constants."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        self.conv = conv
        self.register_buffer("taps", conv.weight.detach().permute(0, 2, 1).reshape(conv.out_channels, -1).contiguous(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ConvInputGrad.apply(x, self.conv.weight, self.conv.bias, self.conv.padding[0], self.taps)


def _fast_input_gradients(module: nn.Module) -> nn.Module:
    """``module`` with every plain ``nn.Conv1d`` computed by :class:`_FrozenConv1d` (for CPU ascents, which never
    need the weights' gradients).

    Containers on the way are shallow copies with their own child list, so the caller's module is untouched and no
    weight is copied. Other modules, and convolutions with strides, dilation, groups or non-zero padding modes, are
    kept as they are.
    """
    if (type(module) is nn.Conv1d and module.stride == (1,) and module.dilation == (1,) and module.groups == 1
            and module.padding_mode == "zeros" and not isinstance(module.padding, str)):
        return _FrozenConv1d(module)
    swapped = OrderedDict((name, child if child is None else _fast_input_gradients(child))
                          for name, child in module._modules.items())
    if all(swapped[name] is child for name, child in module._modules.items()):
        return module
    out = copy.copy(module)
    out._modules = swapped
    return out


def _scores(head: nn.Module, h: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    out = head(h)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the head must return class scores of shape (N, C); it returned {shape}")
    return out.gather(1, cls[:, None]).squeeze(1)


def _value_and_grad(head: nn.Module, h: torch.Tensor, cls: torch.Tensor, l2: float,
                    center: torch.Tensor | None, bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class scores, objectives and objective gradients of a batch of rows (the head in bfloat16 if ``bf16``)."""
    with torch.enable_grad(), torch.autocast(h.device.type, dtype=torch.bfloat16, enabled=bf16):
        h = h.detach().requires_grad_(True)
        s = _scores(head, h, cls).float()
        if not s.requires_grad:
            raise ValueError("the head's class scores do not depend differentiably on H (no gradient flows back); "
                             "check for detach(), argmax or integer ops after the layer")
        (g,) = torch.autograd.grad(s.sum(), h)
    g = g.float()
    d = h.detach() if center is None else h.detach() - center
    dims = tuple(range(1, h.dim()))
    obj = s.detach() - l2 * (d * d).sum(dim=dims)
    return s.detach(), obj, torch.add(g, d, alpha=-2.0 * l2)


def evaluate(head: nn.Module, maps: torch.Tensor, classes: Sequence[int], l2: float,
             center: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Class scores and objectives of given feature maps, in float32.

    Parameters
    ----------
    head : nn.Module
    maps : (R, *feature_shape) tensor
    classes : R output indices, one per map
    l2 : float
    center : tensor of feature_shape, optional

    Returns
    -------
    scores, objectives : (R,) tensors
    """
    cls = torch.as_tensor(list(classes), device=maps.device)
    with torch.no_grad():
        s = _scores(head, maps, cls).float()
    d = maps if center is None else maps - center
    return s, s - l2 * (d * d).flatten(1).sum(dim=1)


def check_ascent_options(
    optimizer: str = "matched",
    *,
    restarts: int = 10,
    l2: float | None = 1.0,
    lr: float | None = None,
    steps: int | None = None,
    tol: float | None = None,
    patience: int | None = None,
    start_decay: int | None = None,
    alpha: float | None = None,
    min_lr: float | None = None,
    cuts: int | None = None,
    init_scale: float = 1.0,
    precision: str = "float32",
    batch_size: int | None = None,
    **unknown: object,
) -> dict[str, float | int]:
    """Check every setting of :func:`feature_ascent` before any work; return the optimiser's resolved options.

    Callers that do work before the ascent (:func:`deepresolve.resolve` splits the model, computes lambda, opens
    a run store) call this first, so that a bad setting is refused before anything is computed or written.

    Parameters
    ----------
    optimizer : {"matched", "bundle", "paper"}
    restarts : int >= 1
    l2 : float > 0, finite; None skips the check (lambda chosen later, e.g. ``l2="auto"``)
    lr : float > 0
    steps : int >= 1
    tol : float >= 0
    patience : int >= 1
    start_decay : int >= 0
    alpha : float > 0
    min_lr : float > 0
    cuts : int, 2 to 8 ("bundle" only)
    init_scale : float > 0
    precision : {"float32", "bfloat16"}
    batch_size : int >= 1 or None
    **unknown
        Refused: a misspelt option would otherwise be ignored.

    Returns
    -------
    dict
        ``DEFAULTS[optimizer]`` updated with the options given (not None): lr, steps, tol, patience and, for
        "paper", start_decay, alpha, min_lr; for "bundle", cuts.

    Raises
    ------
    deepresolve.errors.ArgumentError
        Naming the argument, what was expected and what was given.
    """
    if unknown:
        raise ArgumentError(f"{', '.join(sorted(unknown))}: unknown ascent option(s); expected some of lr, steps, tol, "
                            "patience, start_decay, alpha, min_lr, cuts")
    check_choice(optimizer, "optimizer", tuple(DEFAULTS))
    check_int(restarts, "restarts", minimum=1)
    if l2 is not None:
        check_float(l2, "l2 (lambda)", above=0)
    check_float(init_scale, "init_scale", above=0)
    check_choice(precision, "precision", PRECISIONS)
    if batch_size is not None:
        check_int(batch_size, "batch_size", minimum=1)
    given = dict(lr=lr, steps=steps, tol=tol, patience=patience, start_decay=start_decay, alpha=alpha, min_lr=min_lr,
                 cuts=cuts)
    if cuts is not None and optimizer != "bundle":
        raise ArgumentError(f"cuts: an option of optimizer='bundle' only; got cuts={cuts!r} with optimizer={optimizer!r}")
    opts = {**DEFAULTS[optimizer], **{k: v for k, v in given.items() if v is not None}}
    checks = {
        "lr": lambda v: check_float(v, "lr", above=0),
        "steps": lambda v: check_int(v, "steps", minimum=1),
        "tol": lambda v: check_float(v, "tol", minimum=0.0),
        "patience": lambda v: check_int(v, "patience", minimum=1),
        "start_decay": lambda v: check_int(v, "start_decay", minimum=0),
        "alpha": lambda v: check_float(v, "alpha", above=0),
        "min_lr": lambda v: check_float(v, "min_lr", above=0),
        "cuts": lambda v: check_int(v, "cuts", minimum=2, maximum=8),
    }
    return {key: checks[key](value) for key, value in opts.items()}


@dataclass
class _Rows:
    """State of the rows in the batch; every tensor has one entry per row on its first axis.

    Rows leave with :meth:`take` (keep a mask) and join in the places of finished rows with :meth:`put`, so that no
    per-row quantity can fall out of step with the others.
    """

    index: torch.Tensor     # (B,) long, CPU: row r = (class r // T, restart r % T)
    cls: torch.Tensor       # (B,) long: the output each row scores
    h: torch.Tensor         # (B, *F) the point evaluated next
    best_h: torch.Tensor    # (B, *F) the best point so far
    best_g: torch.Tensor    # (B, *F) "matched": the objective's gradient at best_h
    best_s: torch.Tensor    # (B,) class score at best_h
    best_obj: torch.Tensor  # (B,) objective at best_h
    eta: torch.Tensor       # (B,) "matched": fraction of the matched step 1 / (2 lambda)
    far: torch.Tensor       # (B,) "bundle": cuts pass at least far x lambda x d^2 above the best point
    count: torch.Tensor     # (B,) long: steps taken
    stall: torch.Tensor     # (B,) long: consecutive non-improving ("paper") or small-gain ("matched", "bundle") steps
    cut_a: torch.Tensor     # (B, k, F) "bundle": gradients of S at the points of the k cuts (k = 0 otherwise)
    cut_x: torch.Tensor     # (B, k, F) "bundle": those points, H - center, flattened
    cut_c: torch.Tensor     # (B, k) float64 "bundle": intercepts, cut i is S ~ cut_c[i] + cut_a[i] . (H - center)
    cut_xx: torch.Tensor    # (B, k) float64 "bundle": squared norms of cut_x
    cut_w: torch.Tensor     # (B, k) float64 "bundle": weight of each cut in the last model optimum; NaN = empty slot
    trace: list[list[float]]  # objective at every step of each row

    @classmethod
    def start(cls, index: list[int], classes: list[int], h0: torch.Tensor, lr: float, cuts: int = 0) -> "_Rows":
        """Fresh rows at their starting maps ``h0``: nothing evaluated yet; room for ``cuts`` cuts per row."""
        k, dev = len(index), h0.device
        n_features = h0[0].numel()
        return cls(
            index=torch.tensor(index, dtype=torch.long), cls=torch.tensor(classes, dtype=torch.long, device=dev),
            h=h0, best_h=h0, best_g=torch.zeros_like(h0), best_s=torch.full((k,), np.nan, device=dev),
            best_obj=torch.full((k,), -np.inf, device=dev), eta=torch.full((k,), float(lr), device=dev),
            far=torch.full((k,), BUNDLE_FAR, dtype=torch.float64, device=dev),
            count=torch.zeros(k, dtype=torch.long, device=dev), stall=torch.zeros(k, dtype=torch.long, device=dev),
            cut_a=torch.zeros((k, cuts, n_features), device=dev), cut_x=torch.zeros((k, cuts, n_features), device=dev),
            cut_c=torch.zeros((k, cuts), dtype=torch.float64, device=dev),
            cut_xx=torch.zeros((k, cuts), dtype=torch.float64, device=dev),
            cut_w=torch.full((k, cuts), np.nan, dtype=torch.float64, device=dev),
            trace=[[] for _ in range(k)],
        )

    def __len__(self) -> int:
        return len(self.index)

    def take(self, keep: torch.Tensor) -> "_Rows":
        """The rows where the boolean ``keep`` is True."""
        flags = keep.tolist()
        return _Rows(**{f.name: [t for t, k in zip(value, flags) if k] if isinstance(value, list)
                        else value[keep.to(value.device)]
                        for f in fields(self) for value in [getattr(self, f.name)]})

    def put(self, slots: torch.Tensor, other: "_Rows") -> None:
        """Write ``other``'s rows into the positions ``slots`` (finished rows), in place: a batch that stays full
        copies only the new rows, not the whole state (2 x ``cuts`` + 3 maps per row for "bundle")."""
        where = slots.tolist()
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, list):
                for j, k in enumerate(where):
                    mine[k] = theirs[j]
            else:
                mine[slots.to(mine.device)] = theirs


def _per_row(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ...) broadcastable against ``like``."""
    return x.view(-1, *[1] * (like.dim() - 1))


def _record(rows: _Rows, s: torch.Tensor, obj: torch.Tensor, improved: torch.Tensor, g: torch.Tensor | None) -> None:
    """Keep the point just evaluated as each row's best where it ``improved``, with its gradient ``g`` unless None
    (an optimiser that never reads ``best_g``); count the step."""
    keep = _per_row(improved, rows.h)
    rows.best_h = torch.where(keep, rows.h, rows.best_h)
    if g is not None:
        rows.best_g = torch.where(keep, g, rows.best_g)
    rows.best_s = torch.where(improved, s, rows.best_s)
    rows.best_obj = torch.where(improved, obj, rows.best_obj)
    rows.count = rows.count + 1


def _step_matched(rows: _Rows, s: torch.Tensor, obj: torch.Tensor, g: torch.Tensor, opts: dict, l2: float,
                  center: torch.Tensor | None) -> torch.Tensor:
    """One "matched" step of every row from its evaluation at ``rows.h``; returns the rows that are done.

    A step is accepted unless it lowered the objective beyond float32 noise; a rejected step is undone and retried
    at half the step size. Converged: the gain stayed below tol for ``patience`` accepted steps. Gains are
    relative to the size of the objective's two terms, |S| + lambda ||H||^2: the objective itself can be close
    to 0 when they cancel.
    """
    scale = (s.abs() + (s - obj)).clamp_min(1e-12)
    improved = obj >= rows.best_obj - 1e-6 * scale
    small = improved & (obj - rows.best_obj <= opts["tol"] * scale)
    rows.stall = torch.where(improved, torch.where(small, rows.stall + 1, torch.zeros_like(rows.stall)), rows.stall)
    rows.eta = torch.where(improved, rows.eta, rows.eta * 0.5)
    _record(rows, s, obj, improved, g)
    # Step from each row's best point (after a rejected step that is where the row restarts).
    rows.h = rows.best_h + _per_row(rows.eta / (2.0 * l2), rows.h) * rows.best_g
    return (rows.stall >= opts["patience"]) | (rows.eta < 1e-8) | (rows.count >= opts["steps"])


#: "bundle": a cut from a point at distance d from the best point is raised there by at least far x lambda x d^2,
#: so that cuts from far away, where the head is not concave, stop binding near the optimum. ``far`` starts at
#: BUNDLE_FAR and doubles, up to BUNDLE_FAR_MAX, at each step of the row that fails to improve: the model trusted
#: far cuts too much there.
BUNDLE_FAR, BUNDLE_FAR_MAX = 0.1, 1.0


def _dots(vectors: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, k, F) . (B, F) -> (B, k) float64 (a float32 batched matrix product: these sums need no more). Written as
    v' V' rather than V v: the same product, about twice as fast on the CPU."""
    return torch.bmm(v[:, None, :], vectors.transpose(1, 2)).squeeze(1).double()


#: "bundle": rows per chunk in :func:`_cut_products`, whose buffer is reused from chunk to chunk.
_CHUNK = 16


def _cut_products(cut_a: torch.Tensor, a0: torch.Tensor, best_u: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the cut differences d_i = a_i - a0, a0 and best_u, chunk by chunk of rows.

    cut_a (B, k, F), a0 and best_u (B, F); returns (B, k + 2, k + 2) float64: entry (i, j) is v_i . v_j for
    v = (d_1, ..., d_k, a0, best_u). The differences are formed in a small reused buffer: a (B, k, F) temporary
    cost more (its fresh pages: 30 ms against 10 ms for 256 x 4 DeepSEA-sized maps) than the products themselves.
    """
    B, k, F = cut_a.shape
    out = cut_a.new_empty(B, k + 2, k + 2)
    work = cut_a.new_empty(min(B, _CHUNK), k + 2, F)
    for lo in range(0, B, _CHUNK):
        hi = min(lo + _CHUNK, B)
        w = work[:hi - lo]
        torch.sub(cut_a[lo:hi], a0[lo:hi, None], out=w[:, :k])
        w[:, k] = a0[lo:hi]
        w[:, k + 1] = best_u[lo:hi]
        torch.bmm(w, w.transpose(1, 2), out=out[lo:hi])
    return out.double()


def _simplex_qp(G: torch.Tensor, c: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Minimise ``0.5 w'Gw + c'w`` over the simplex of the ``valid`` entries, exactly, for each row.

    G (B, k, k), c (B, k) float64, valid (B, k) bool with at least one True per row; returns w (B, k).
    The optimum lies in the relative interior of one face; each face's equality-constrained optimum is one small
    KKT solve, and the best feasible one wins (k is small: 2^k - 1 faces).
    """
    B, k = c.shape
    faces = torch.tensor([[(f >> i) & 1 for i in range(k)] for f in range(1, 2 ** k)], dtype=torch.bool, device=c.device)
    n = len(faces)
    eye = torch.eye(k, dtype=G.dtype, device=G.device)
    on = faces[None, :, :, None] & faces[None, :, None, :]
    # A tiny ridge keeps faces with repeated cuts solvable (any optimum of such a face is as good).
    ridge = 1e-12 * G.diagonal(dim1=1, dim2=2).abs().amax(1).clamp_min(1e-300)
    kkt = torch.zeros(B, n, k + 1, k + 1, dtype=G.dtype, device=G.device)
    kkt[..., :k, :k] = (torch.where(on, G[:, None], 0.0) + ridge[:, None, None, None] * eye
                        + (~faces).to(G.dtype)[None, :, :, None] * eye)
    kkt[..., :k, k] = faces.to(G.dtype)
    kkt[..., k, :k] = faces.to(G.dtype)
    rhs = torch.zeros(B, n, k + 1, dtype=G.dtype, device=G.device)
    rhs[..., :k] = torch.where(faces[None], -c[:, None], 0.0)
    rhs[..., k] = 1.0
    w = torch.linalg.solve(kkt, rhs)[..., :k]
    feasible = (w >= -1e-9).all(-1) & ~(faces[None] & ~valid[:, None]).any(-1)
    w = w.clamp_min(0.0)
    q = 0.5 * torch.einsum("bni,bij,bnj->bn", w, G, w) + (w * c[:, None]).sum(-1)
    w = w[torch.arange(B, device=c.device), torch.where(feasible, q, torch.inf).argmin(1)]
    return w / w.sum(1, keepdim=True)


def _step_bundle(rows: _Rows, s: torch.Tensor, obj: torch.Tensor, g: torch.Tensor, opts: dict, l2: float,
                 center: torch.Tensor | None) -> torch.Tensor:
    """One "bundle" step of every row from its evaluation at ``rows.h``; returns the rows that are done.

    The evaluation adds a cut (S's value and gradient at the point); the next point is the maximiser of the model
    min_i cut_i(H) - lambda ||H - center||^2, a convex combination of the cuts' matched points found by a small
    QP over the cut weights. Converged: the model's optimum is within tol (relative) of the best objective, or no
    step gained more than tol for ``patience`` steps.
    """
    n_rows, k = rows.cut_w.shape
    ar = torch.arange(n_rows, device=s.device)
    u = (rows.h if center is None else rows.h - center).flatten(1)
    a = torch.add(g.flatten(1), u, alpha=2.0 * l2)  # gradient of S
    scale = (s.abs() + (s - obj)).clamp_min(1e-12).double()
    gain = obj.double() - rows.best_obj.double()
    improved = gain > 0
    rows.stall = torch.where(gain > opts["tol"] * scale, torch.zeros_like(rows.stall), rows.stall + 1)
    # The new cut takes a free slot; the previous step left one (it merged cuts when the bundle was full).
    slot = torch.isnan(rows.cut_w).double().argmax(1)
    rows.cut_a[ar, slot] = a
    rows.cut_x[ar, slot] = u
    rows.cut_c[ar, slot] = s.double() - (a * u).sum(1).double()
    rows.cut_xx[ar, slot] = u.square().sum(1).double()
    rows.cut_w[ar, slot] = 0.0
    _record(rows, s, obj, improved, None)
    valid = ~torch.isnan(rows.cut_w)
    best_u = (rows.best_h if center is None else rows.best_h - center).flatten(1)
    # The best point's own cut (the one whose point is nearest to it) anchors the model.
    dist2 = rows.cut_xx - 2.0 * _dots(rows.cut_x, best_u) + best_u.square().sum(1).double()[:, None]
    dist2 = torch.where(valid, dist2.clamp_min(0.0), torch.inf)
    anchor = dist2.argmin(1)
    # Model optimum: H - center = sum_i w_i a_i / (2 lambda), w minimising the dual
    # ||sum_i w_i a_i||^2 / (4 lambda) + sum_i w_i c_i over the simplex; written with d_i = a_i - a_anchor
    # (sum_i w_i = 1) so that the nearly equal gradients do not cancel in the Gram matrix (from the raw float32
    # Gram matrix of the a_i, rows of the tf422 CTCF model ended 2e-2 apart between batch sizes; 1.5e-3 so).
    a0 = rows.cut_a[ar, anchor]
    products = _cut_products(rows.cut_a, a0, best_u)
    gram, d_a0, d_best = products[:, :k, :k], products[:, :k, k], products[:, :k, k + 1]
    # Re-level every cut at the best point: at least exact there, and raised by far lambda d^2 for a cut made at
    # distance d, so that cuts from far away (where S need not be concave) do not cut off the optimum.
    best_s = rows.best_s.double()
    level = rows.cut_c + d_best + products[:, k, k + 1, None]
    rows.far = torch.where(improved, rows.far, (2.0 * rows.far).clamp_max(BUNDLE_FAR_MAX))
    err = torch.maximum(level - best_s[:, None], rows.far[:, None] * l2 * dist2.nan_to_num(posinf=0.0))
    rows.cut_c = torch.where(valid, rows.cut_c + best_s[:, None] + err - level, rows.cut_c)
    gram = gram / (2.0 * l2)
    lin = rows.cut_c + d_a0 / (2.0 * l2)
    top = products[:, k, k]
    w = _simplex_qp(gram, lin, valid)
    model = 0.5 * torch.einsum("bi,bij,bj->b", w, gram, w) + (w * lin).sum(1) + top / (4.0 * l2)
    target = torch.bmm((w / (2.0 * l2)).to(a.dtype)[:, None], rows.cut_a).squeeze(1)
    rows.cut_w = torch.where(valid, w, np.nan)
    # A full bundle frees a slot for the next step's cut: it drops its least-weighted cut (never the anchor), or,
    # where that cut has weight, merges it with the next least-weighted into their weighted mean, which the model
    # keeps as one cut (a cut of weight 0 merges into the other unchanged: dropping it is the same and cheaper).
    full = valid.all(1)
    if full.any():
        order = torch.where(torch.arange(k, device=s.device)[None] == anchor[:, None], np.inf, w).argsort(1)
        drop = order[:, 0]
        merge = torch.nonzero(full & (w[ar, drop] > 0)).squeeze(1)
        if len(merge):
            i, j = drop[merge], order[merge, 1]
            wi, wj = w[merge, i], w[merge, j]
            frac = wi / (wi + wj)
            for cuts in (rows.cut_a, rows.cut_x):
                cuts[merge, j] = torch.lerp(cuts[merge, j], cuts[merge, i], frac.to(cuts.dtype)[:, None])
            rows.cut_c[merge, j] = torch.lerp(rows.cut_c[merge, j], rows.cut_c[merge, i], frac)
            merged = rows.cut_x[merge, j]
            rows.cut_xx[merge, j] = merged.square().sum(1).double()
            rows.cut_w[merge, j] = wi + wj
        rows.cut_w[ar, drop] = torch.where(full, np.nan, rows.cut_w[ar, drop])
    rows.h = torch.lerp(best_u, target, opts["lr"]).view_as(rows.h)
    if center is not None:
        rows.h = rows.h + center
    converged = (model - rows.best_obj.double() <= opts["tol"] * scale) & (rows.count > 1)
    return converged | (rows.stall >= opts["patience"]) | (rows.count >= opts["steps"])


def _step_paper(rows: _Rows, s: torch.Tensor, obj: torch.Tensor, g: torch.Tensor, opts: dict, l2: float,
                center: torch.Tensor | None) -> torch.Tensor:
    """One step of the paper's schedule for every row from its evaluation at ``rows.h``; returns the rows that are done.

    Plain ascent moves on from where it is, improving or not, as the original code does; the rate decays as
    ``lr * max((step - start_decay) ** -alpha, min_lr)`` after ``start_decay`` steps.
    """
    improved = obj > rows.best_obj
    rows.stall = torch.where(improved, torch.zeros_like(rows.stall), rows.stall + 1)
    h = rows.h
    _record(rows, s, obj, improved, None)
    k = rows.count.double()
    decay = torch.clamp((k - opts["start_decay"]).clamp_min(1.0) ** (-opts["alpha"]), min=opts["min_lr"])
    rate = torch.where(k > opts["start_decay"], opts["lr"] * decay, torch.full_like(decay, opts["lr"]))
    rows.h = h + _per_row(rate.to(h.dtype), h) * g
    return (rows.stall >= opts["patience"]) | (rows.count >= opts["steps"])


_STEPS = {"matched": _step_matched, "bundle": _step_bundle, "paper": _step_paper}


def feature_ascent(
    head: nn.Module,
    feature_shape: Sequence[int],
    classes: Sequence[int],
    restarts: int = 10,
    l2: float = 1.0,
    *,
    optimizer: Optimizer = "matched",
    lr: float | None = None,
    steps: int | None = None,
    tol: float | None = None,
    patience: int | None = None,
    start_decay: int | None = None,
    alpha: float | None = None,
    min_lr: float | None = None,
    cuts: int | None = None,
    init_scale: float = 1.0,
    nonnegative: bool = False,
    center: torch.Tensor | None = None,
    precision: Literal["float32", "bfloat16"] = "float32",
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    skip: dict[int, FinishedRow] | None = None,
    on_done: Callable[[FinishedRows], None] | None = None,
    progress: Callable[[int], None] | None = None,
    keep_maps: bool = True,
) -> AscentOutput:
    """Maximise ``S_c(H) - l2 * ||H - center||^2`` from ``restarts`` random starts for every class in ``classes``.

    Parameters
    ----------
    head : nn.Module
        Maps H of shape (N, *feature_shape) to class logits (N, C_all); eval mode, frozen.
    feature_shape : tuple
        Shape of H without the batch axis, e.g. (K, W) or (K,).
    classes : sequence of int
        Output indices to explain (C of them).
    restarts : int
        Random initialisations T per class.
    l2 : float
        lambda, the weight of the squared L2 penalty. Must be > 0.
    optimizer : {"matched", "bundle", "paper"}
        See the module docstring. ``lr``, ``steps``, ``tol``, ``patience``, ``start_decay``, ``alpha``,
        ``min_lr``, ``cuts`` default to ``DEFAULTS[optimizer]``; for "matched", ``lr`` is the fraction of the
        matched step 1/(2 lambda), for "bundle" the fraction of the way to the model's maximiser, for "paper" lr0.
    cuts : int, optional
        "bundle" only: cuts kept per row (2 to 8; the QP enumerates the 2^cuts - 1 faces of its simplex). A full
        bundle merges its two least-weighted cuts into their weighted mean.
    init_scale : float
        Standard deviation of the normal initialisation (the paper uses 1).
    precision : {"float32", "bfloat16"}
        Compute the head's scores and gradients in bfloat16 (autocast); H and the penalty stay float32.
    nonnegative : bool
        Project H onto H >= 0 after every step (a robust option: real post-ReLU maps are non-negative).
    center : tensor of feature_shape, optional
        Pull H toward this map instead of 0 (e.g. the mean real activation: a robust option).
    seed : int
        Each row's start depends only on (seed, class, restart), whatever the batching or class subset.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU. On the CPU (float32) the head's plain ``nn.Conv1d`` layers compute
        their input gradient as one matrix product (:class:`_ConvInputGrad`): a step of the DeepSEA-shaped head
        was about 1.2 x faster on 1 thread and 1.4 x on 2 (119 against 78-86 row-steps/s) on one machine, about
        5 % slower on another (260 against 275, Sapphire Rapids, where oneDNN's convolution backward is fast);
        the results are the same to float32 rounding.
    batch_size : int, optional
        Rows per forward/backward pass (default: 256 on the CPU, 4096 on a GPU). Bounds memory. Results depend
        on it only within the tolerance stated in the module docstring ("Batching").
    skip : dict, optional
        Rows already finished (row index -> :class:`~deepresolve.store.FinishedRow`): not recomputed (resume).
    on_done : callable, optional
        Called with a :class:`~deepresolve.store.FinishedRows` whenever rows finish (checkpointing).
    progress : callable, optional
        Called with the number of rows that just finished.
    keep_maps : bool
        Keep every row's map in the output (default). With False each finished row's map is reduced at once to
        its FIV and dropped after ``on_done`` has seen it: memory O(R K) instead of O(R K W); ``fims`` is then
        None and nothing else changes (same arithmetic, same results). ``skip`` may then hold FIVs (K,) in
        place of maps.

    Returns
    -------
    AscentOutput

    Raises
    ------
    deepresolve.errors.ArgumentError
        For a bad setting, before any work (see :func:`check_ascent_options`).
    """
    opts = check_ascent_options(optimizer, restarts=restarts, l2=l2, lr=lr, steps=steps, tol=tol, patience=patience,
                                start_decay=start_decay, alpha=alpha, min_lr=min_lr, cuts=cuts, init_scale=init_scale,
                                precision=precision, batch_size=batch_size)
    check_choice(keep_maps, "keep_maps", (True, False))
    step_rows = _STEPS[optimizer]
    bf16 = precision == "bfloat16"
    dev = check_device(device)
    head = head.to(dev).eval()
    if dev.type == "cpu" and not bf16:
        head = _fast_input_gradients(head)
    classes = [int(c) for c in classes]
    C, T = len(classes), int(restarts)
    R = C * T
    rows = [(c, t) for c in classes for t in range(T)]
    # Measured on a DeepSEA-sized head: CPU throughput peaks near 256 rows (cache-sized convolutions), GPUs
    # want thousands.
    B = int(batch_size) if batch_size else min(R, 4096 if dev.type == "cuda" else 256)
    center_dev = None if center is None else center.to(dev, torch.float32)
    l2 = float(l2)

    table = RowTable(R, feature_shape, keep_maps)
    skip = skip or {}
    for r, row in skip.items():
        table.put_row(r, row)
    pending = [r for r in range(R) if r not in skip]
    start = time.perf_counter()
    row_steps = 0

    def admit(n: int) -> _Rows | None:
        """Up to ``n`` pending rows at their starting maps (None when none is left)."""
        new = pending[:n]
        del pending[:n]
        if not new:
            return None
        h0 = initial_maps([rows[r] for r in new], feature_shape, seed, init_scale).to(dev)
        if center_dev is not None:
            h0 = h0 + center_dev
        if nonnegative:
            h0 = h0.clamp_min(0)
        return _Rows.start(new, [rows[r][0] for r in new], h0, opts["lr"], opts.get("cuts", 0))

    def finish(batch: _Rows) -> None:
        """Store the finished rows of ``batch`` (their best points) and report them."""
        finished = FinishedRows(batch.index.tolist(), batch.best_h.cpu().numpy(), batch.best_s.double().cpu().numpy(),
                                batch.best_obj.double().cpu().numpy(), batch.count.cpu().numpy(),
                                [np.asarray(t, np.float32) for t in batch.trace])
        table.put(finished)
        if on_done is not None:
            on_done(finished)
        if progress is not None:
            progress(len(finished.rows))

    batch = admit(B)
    while batch is not None and len(batch):
        s, obj, g = _value_and_grad(head, batch.h, batch.cls, l2, center_dev, bf16)
        row_steps += len(batch)
        if not torch.isfinite(obj).all():
            bad = int(torch.nonzero(~torch.isfinite(obj))[0])
            c, t = rows[int(batch.index[bad])]
            raise FloatingPointError(
                f"the objective became {float(obj[bad])} for class {c}, restart {t} at step {int(batch.count[bad])}: "
                f"the ascent diverged. Use a larger l2 (now {l2}), a smaller lr (now {opts['lr']}) or a smaller init_scale."
            )
        for trace, value in zip(batch.trace, obj.tolist()):
            trace.append(value)
        done = step_rows(batch, s, obj, g, opts, l2, center_dev)
        if nonnegative:
            batch.h = batch.h.clamp_min(0)
        if done.any():
            finish(batch.take(done))
            slots = torch.nonzero(done.cpu()).squeeze(1)
            fresh = admit(len(slots))
            n_new = 0 if fresh is None else len(fresh)
            if n_new:
                batch.put(slots[:n_new], fresh)
            if n_new < len(slots):  # no pending rows left: the batch shrinks
                keep = torch.ones(len(batch), dtype=torch.bool)
                keep[slots[n_new:]] = False
                batch = batch.take(keep)

    return table.output(C, T, time.perf_counter() - start, row_steps)
