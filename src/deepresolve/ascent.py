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
``"paper"``
    The paper's schedule: plain gradient ascent with ``lr = lr0 * max((step - start_decay) ** -alpha, min_lr)``
    after ``start_decay`` steps, stopping when the objective has not improved for ``patience`` steps
    (defaults: lr0 = 0.1, start_decay = 500, alpha = 0.2, min_lr = 1e-6, patience = 10, at most 10,000 steps).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

Optimizer = Literal["matched", "paper"]

#: Defaults of each optimiser; ``feature_ascent`` arguments left as None take these.
DEFAULTS = {
    "matched": {"lr": 1.0, "steps": 500, "tol": 1e-5, "patience": 2},
    "paper": {"lr": 0.1, "steps": 10_000, "tol": 0.0, "patience": 10, "start_decay": 500, "alpha": 0.2, "min_lr": 1e-6},
}


@dataclass
class AscentOutput:
    """Raw output of :func:`feature_ascent` for R = C x T rows, row r = (class r // T, restart r % T).

    Attributes
    ----------
    fims : (C, T, *feature_shape) float32 tensor, on the CPU
    scores : (C, T) float64 array -- final class score S_c of each row
    objective : (C, T) float64 array -- final objective S_c - lambda ||H - center||^2
    steps : (C, T) int array -- steps each row took
    trace : list of R float32 arrays -- objective at every step of each row
    seconds : float -- wall time
    row_steps : int -- total (row x step) evaluations, for throughput figures
    """

    fims: torch.Tensor
    scores: np.ndarray
    objective: np.ndarray
    steps: np.ndarray
    trace: list[np.ndarray]
    seconds: float
    row_steps: int


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as given, else CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be like 'cpu', 'cuda' or 'cuda:0'; got {device!r}") from err


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
    return s.detach(), obj, g - 2.0 * l2 * d


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
    init_scale: float = 1.0,
    nonnegative: bool = False,
    center: torch.Tensor | None = None,
    precision: Literal["float32", "bfloat16"] = "float32",
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    skip: dict[int, tuple[torch.Tensor, float, float, int, np.ndarray]] | None = None,
    on_done: Callable[[list[int], torch.Tensor, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]], None] | None = None,
    progress: Callable[[int], None] | None = None,
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
    optimizer : {"matched", "paper"}
        See the module docstring. ``lr``, ``steps``, ``tol``, ``patience``, ``start_decay``, ``alpha``,
        ``min_lr`` default to ``DEFAULTS[optimizer]``; for "matched", ``lr`` is the fraction of the matched
        step 1/(2 lambda), for "paper" it is lr0.
    init_scale : float
        Standard deviation of the normal initialisation (the paper uses 1).
    precision : {"float32", "bfloat16"}
        Compute the head's scores and gradients in bfloat16 (autocast); H and the penalty stay float32.
    nonnegative : bool
        Project H onto H >= 0 after every step (a robust option: real post-ReLU maps are non-negative).
    center : tensor of feature_shape, optional
        Pull H toward this map instead of 0 (e.g. the mean real activation: a robust option).
    seed : int
        Each row's start depends only on (seed, class, restart), so results do not depend on batching.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    batch_size : int, optional
        Rows per forward/backward pass (default: 256 on the CPU, 4096 on a GPU). Bounds memory.
    skip : dict, optional
        Rows already finished (row index -> (fim, score, objective, steps, trace)): not recomputed (resume).
    on_done : callable, optional
        Called with (row indices, fims, scores, objectives, steps, traces) whenever rows finish (checkpointing).
    progress : callable, optional
        Called with the number of rows that just finished.

    Returns
    -------
    AscentOutput
    """
    if optimizer not in DEFAULTS:
        raise ValueError(f"optimizer must be one of {sorted(DEFAULTS)}; got {optimizer!r}")
    opts = dict(DEFAULTS[optimizer])
    for key, value in dict(lr=lr, steps=steps, tol=tol, patience=patience, start_decay=start_decay,
                           alpha=alpha, min_lr=min_lr).items():
        if value is not None:
            opts[key] = value
    if not (isinstance(l2, (int, float)) and np.isfinite(l2) and l2 > 0):
        raise ValueError(f"l2 (lambda) must be a positive finite number; got {l2!r}")
    if not (isinstance(restarts, (int, np.integer)) and restarts >= 1):
        raise ValueError(f"restarts must be an integer >= 1; got {restarts!r}")
    if not (opts["lr"] > 0 and opts["steps"] >= 1):
        raise ValueError(f"lr must be > 0 and steps >= 1; got lr={opts['lr']!r}, steps={opts['steps']!r}")
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be 'float32' or 'bfloat16'; got {precision!r}")
    bf16 = precision == "bfloat16"
    dev = resolve_device(device)
    head = head.to(dev).eval()
    classes = [int(c) for c in classes]
    C, T = len(classes), int(restarts)
    R = C * T
    rows = [(c, t) for c in classes for t in range(T)]
    # Measured on a DeepSEA-sized head: CPU throughput peaks near 256 rows (cache-sized convolutions), GPUs
    # want thousands.
    B = int(batch_size) if batch_size else min(R, 4096 if dev.type == "cuda" else 256)
    if B < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size!r}")
    center_dev = None if center is None else center.to(dev, torch.float32)
    l2 = float(l2)

    fims = torch.empty((R, *feature_shape))
    scores, objective = np.full(R, np.nan), np.full(R, np.nan)
    n_steps = np.zeros(R, dtype=np.int64)
    traces: list[np.ndarray] = [np.empty(0, np.float32)] * R
    skip = skip or {}
    for r, (fim, s, o, n, tr) in skip.items():
        fims[r], scores[r], objective[r], n_steps[r], traces[r] = fim, s, o, n, tr
    pending = [r for r in range(R) if r not in skip]
    start = time.perf_counter()
    row_steps = 0

    # Working set: per-row state tensors of the rows currently in the batch.
    idx = torch.empty(0, dtype=torch.long)
    h = torch.empty((0, *feature_shape), device=dev)
    cls = torch.empty(0, dtype=torch.long, device=dev)
    best_h, best_obj, best_s, best_g = h.clone(), torch.empty(0, device=dev), torch.empty(0, device=dev), h.clone()
    eta = torch.empty(0, device=dev)
    count = torch.empty(0, dtype=torch.long, device=dev)   # steps taken
    stall = torch.empty(0, dtype=torch.long, device=dev)   # consecutive non-improving (paper) / small-gain (matched) steps
    live_trace: dict[int, list[float]] = {}

    def admit(n: int) -> None:
        nonlocal idx, h, cls, best_h, best_obj, best_s, best_g, eta, count, stall
        new = pending[:n]
        del pending[:n]
        if not new:
            return
        h0 = initial_maps([rows[r] for r in new], feature_shape, seed, init_scale).to(dev)
        if center_dev is not None:
            h0 = h0 + center_dev
        if nonnegative:
            h0 = h0.clamp_min(0)
        k = len(new)
        idx = torch.cat([idx, torch.tensor(new, dtype=torch.long)])
        h = torch.cat([h, h0])
        cls = torch.cat([cls, torch.tensor([rows[r][0] for r in new], device=dev)])
        best_h = torch.cat([best_h, h0])
        best_obj = torch.cat([best_obj, torch.full((k,), -np.inf, device=dev)])
        best_s = torch.cat([best_s, torch.full((k,), np.nan, device=dev)])
        best_g = torch.cat([best_g, torch.zeros_like(h0)])
        eta = torch.cat([eta, torch.full((k,), float(opts["lr"]), device=dev)])
        count = torch.cat([count, torch.zeros(k, dtype=torch.long, device=dev)])
        stall = torch.cat([stall, torch.zeros(k, dtype=torch.long, device=dev)])
        for r in new:
            live_trace[r] = []

    admit(B)
    while len(idx):
        s, obj, g = _value_and_grad(head, h, cls, l2, center_dev, bf16)
        row_steps += len(idx)
        if not torch.isfinite(obj).all():
            bad = int(torch.nonzero(~torch.isfinite(obj))[0])
            c, t = rows[int(idx[bad])]
            raise FloatingPointError(
                f"the objective became {float(obj[bad])} for class {c}, restart {t} at step {int(count[bad])}: "
                f"the ascent diverged. Use a larger l2 (now {l2}), a smaller lr (now {opts['lr']}) or a smaller init_scale."
            )
        obj_list = obj.tolist()
        for j, r in enumerate(idx.tolist()):
            live_trace[r].append(obj_list[j])

        if optimizer == "matched":
            # Accept a step unless it lowered the objective beyond float32 noise; a rejected step is undone and
            # retried at half the step size. Converged: the gain stayed below tol for `patience` accepted steps.
            # Gains are relative to the size of the objective's two terms, |S| + lambda ||H||^2: the objective
            # itself can be close to 0 when they cancel.
            scale = (s.abs() + (s - obj)).clamp_min(1e-12)
            improved = obj >= best_obj - 1e-6 * scale
            small = improved & (obj - best_obj <= opts["tol"] * scale)
            stall = torch.where(improved, torch.where(small, stall + 1, torch.zeros_like(stall)), stall)
            eta = torch.where(improved, eta, eta * 0.5)
            done = (stall >= opts["patience"]) | (eta < 1e-8)
        else:
            improved = obj > best_obj
            stall = torch.where(improved, torch.zeros_like(stall), stall + 1)
            done = stall >= opts["patience"]
        keep = improved.view(-1, *[1] * (h.dim() - 1))
        best_h = torch.where(keep, h, best_h)
        best_g = torch.where(keep, g, best_g)
        best_s = torch.where(improved, s, best_s)
        best_obj = torch.where(improved, obj, best_obj)
        count = count + 1
        done = done | (count >= opts["steps"])

        if done.any():
            fin = torch.nonzero(done).squeeze(1)
            fin_rows = idx[fin.cpu()].tolist()
            fh = best_h[fin].cpu()
            fs, fo, fn = best_s[fin].double().cpu().numpy(), best_obj[fin].double().cpu().numpy(), count[fin].cpu().numpy()
            ftr = [np.asarray(live_trace.pop(r), np.float32) for r in fin_rows]
            for j, r in enumerate(fin_rows):
                fims[r], scores[r], objective[r], n_steps[r], traces[r] = fh[j], fs[j], fo[j], fn[j], ftr[j]
            if on_done is not None:
                on_done(fin_rows, fh, fs, fo, fn, ftr)
            if progress is not None:
                progress(len(fin_rows))
            live = ~done
            lc = live.cpu()
            idx, h, g, cls = idx[lc], h[live], g[live], cls[live]
            best_h, best_obj, best_s, best_g = best_h[live], best_obj[live], best_s[live], best_g[live]
            eta, count, stall = eta[live], count[live], stall[live]
            admit(B - len(idx))
            if not len(idx):
                break

        if optimizer == "matched":
            # Step from each row's best point (after a rejected step that is where the row restarts).
            step = (eta / (2.0 * l2)).view(-1, *[1] * (h.dim() - 1))
            h = best_h + step * best_g
        else:
            # Plain ascent moves on from where it is, improving or not, as the original code does.
            k = count.double()
            decay = torch.clamp((k - opts["start_decay"]).clamp_min(1.0) ** (-opts["alpha"]), min=opts["min_lr"])
            rate = torch.where(k > opts["start_decay"], opts["lr"] * decay, torch.full_like(decay, opts["lr"]))
            h = h + rate.to(h.dtype).view(-1, *[1] * (h.dim() - 1)) * g
        if nonnegative:
            h = h.clamp_min(0)

    return AscentOutput(
        fims=fims.view(C, T, *feature_shape),
        scores=scores.reshape(C, T),
        objective=objective.reshape(C, T),
        steps=n_steps.reshape(C, T),
        trace=traces,
        seconds=time.perf_counter() - start,
        row_steps=row_steps,
    )
