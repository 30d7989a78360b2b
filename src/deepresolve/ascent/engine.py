"""The ascent's loop: batches of rows through the head, each row stepped by its optimiser's rule until it is done."""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
from torch import nn

from .._checks import Array, Bool, Classes, Function, Instance, OptionalOf, Shape, declare, renamed_arguments
from .._model import Device, Model, check_device
from ..errors import DivergenceError
from ..store import FinishedRow, FinishedRows
from .fastconv import fast_input_gradients
from .objective import value_and_grad
from .optimizers import BUNDLE_FAR, STEP_RULES
from .options import ASCENT_OPTIONS, Optimizer, StepOptions, optimizer_settings
from .rows import AscentOutput, Rows, RowTable, initial_maps


@renamed_arguments(alpha="decay", keep_maps="keep_fims")
@declare(
    head=Model(), feature_shape=Shape(), classes=Classes(optional=False),
    **{name: ASCENT_OPTIONS[name].spec for name in ("restarts", "l2", "optimizer", "init_scale", "nonnegative")},
    center=OptionalOf(Array()), precision=ASCENT_OPTIONS["precision"].spec, seed=ASCENT_OPTIONS["seed"].spec,
    device=Device(), batch_size=OptionalOf(ASCENT_OPTIONS["batch_size"].spec),
    skip=OptionalOf(Instance(dict, "a dict of row index -> FinishedRow")),
    on_done=OptionalOf(Function("a function of the finished rows")),
    progress=OptionalOf(Function("a function of the number of rows finished")), keep_fims=Bool(),
    step_options=StepOptions(),
)
def feature_ascent(
    head: nn.Module,
    feature_shape: Sequence[int],
    classes: Sequence[int],
    restarts: int = 10,
    l2: float = 1.0,
    *,
    optimizer: Optimizer = "matched",
    init_scale: float = 1.0,
    nonnegative: bool = False,
    center: torch.Tensor | None = None,
    precision: str = "float32",
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    skip: dict[int, FinishedRow] | None = None,
    on_done: Callable[[FinishedRows], None] | None = None,
    progress: Callable[[int], None] | None = None,
    keep_fims: bool = True,
    **step_options: int | float | None,
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
        The step rule; see :mod:`deepresolve.ascent`.
    init_scale : float
        Standard deviation of the normal initialisation (the paper uses 1).
    nonnegative : bool
        Project H onto H >= 0 after every step (a robust option: real post-ReLU maps are non-negative).
    center : tensor of feature_shape, optional
        Pull H toward this map instead of 0 (e.g. the mean real activation: a robust option).
    precision : {"float32", "bfloat16"}
        Compute the head's scores and gradients in bfloat16 (autocast); H and the penalty stay float32.
    seed : int
        Each row's start depends only on (seed, class, restart), whatever the batching or class subset.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU. On the CPU (float32) the head's plain ``nn.Conv1d`` layers compute
        their input gradient as one matrix product (:mod:`deepresolve.ascent.fastconv`); the results are the same
        to float32 rounding.
    batch_size : int, optional
        Rows per forward/backward pass (default: 256 on the CPU, 4096 on a GPU). Bounds memory. Results depend
        on it only within the tolerance stated in :mod:`deepresolve.ascent` ("Batching").
    skip : dict, optional
        Rows already finished (row index -> :class:`~deepresolve.store.FinishedRow`): not recomputed (resume).
    on_done : callable, optional
        Called with a :class:`~deepresolve.store.FinishedRows` whenever rows finish (checkpointing).
    progress : callable, optional
        Called with the number of rows that just finished.
    keep_fims : bool
        Keep every row's map in the output (default). With False each finished row's map is reduced at once to
        its FIV and dropped after ``on_done`` has seen it: memory O(R K) instead of O(R K W); ``fims`` is then
        None and nothing else changes (same arithmetic, same results). ``skip`` may then hold FIVs (K,) in
        place of maps. ``keep_maps`` is its old name (FutureWarning).
    **step_options
        The optimiser's own settings, each defaulting per optimiser (:data:`~deepresolve.ascent.DEFAULTS`): lr,
        steps, tol, patience; "matched" and "bundle": fiv_tol; "bundle": cuts; "paper": start_decay, decay (old
        name ``alpha``, FutureWarning), min_lr. Their meaning and ranges are in
        :data:`~deepresolve.ascent.ASCENT_OPTIONS`.

    Returns
    -------
    AscentOutput

    Raises
    ------
    deepresolve.errors.ArgumentError
        For a bad or unknown argument or setting, before any work (every parameter is declared:
        ``feature_ascent.__parameters__``).
    deepresolve.errors.ModelError
        The head returns no (N, C) scores, or its scores do not depend differentiably on H.
    deepresolve.errors.DivergenceError
        An objective left the finite numbers (lambda too small for the head, or too large a step).
    """
    opts = optimizer_settings(optimizer, step_options)
    step_rows = STEP_RULES[optimizer]
    bf16 = precision == "bfloat16"
    dev = check_device(device)
    head = head.to(dev).eval()
    if dev.type == "cpu" and not bf16:
        head = fast_input_gradients(head)
    classes = [int(c) for c in classes]
    C, T = len(classes), int(restarts)
    R = C * T
    rows = [(c, t) for c in classes for t in range(T)]
    # Measured on a DeepSEA-sized head: CPU throughput peaks near 256 rows (cache-sized convolutions), GPUs
    # want thousands.
    B = int(batch_size) if batch_size else min(R, 4096 if dev.type == "cuda" else 256)
    center_dev = None if center is None else center.to(dev, torch.float32)
    l2 = float(l2)

    table = RowTable(R, feature_shape, keep_fims)
    skip = skip or {}
    for r, row in skip.items():
        table.put_row(r, row)
    pending = [r for r in range(R) if r not in skip]
    start = time.perf_counter()
    row_steps = 0

    def admit(n: int) -> Rows | None:
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
        return Rows.start(new, [rows[r][0] for r in new], h0, opts["lr"], opts.get("cuts", 0), BUNDLE_FAR)

    def finish(batch: Rows) -> None:
        """Store the finished rows of ``batch`` (their best points) and report them."""
        finished = batch.finished()
        table.put(finished)
        if on_done is not None:
            on_done(finished)
        if progress is not None:
            progress(len(finished.rows))

    batch = admit(B)
    while batch is not None and len(batch):
        s, obj, g = value_and_grad(head, batch.h, batch.cls, l2, center_dev, bf16)
        row_steps += len(batch)
        if not torch.isfinite(obj).all():
            bad = int(torch.nonzero(~torch.isfinite(obj))[0])
            c, t = rows[int(batch.index[bad])]
            raise DivergenceError(
                f"the objective became {float(obj[bad])} for class {c}, restart {t} at step {int(batch.count[bad])}: "
                f"the ascent diverged. Use a larger l2 (now {l2}), a smaller lr (now {opts['lr']}) or a smaller "
                "init_scale."
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

