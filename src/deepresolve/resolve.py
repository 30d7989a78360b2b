"""``resolve``: the whole DeepResolve pipeline for one model and layer, with automatic lambda and resumable runs."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
from torch import nn

from .ascent import DEFAULTS, Optimizer, feature_ascent, resolve_device
from ._utils import package_versions
from .split import make_example, split_model
from .result import Result
from .summarize import summarize


def _check_classes(classes: Sequence[int] | int | None, n_outputs: int) -> list[int]:
    if classes is None:
        return list(range(n_outputs))
    if isinstance(classes, (int, np.integer)):
        classes = [int(classes)]
    out = []
    for c in classes:
        if not isinstance(c, (int, np.integer)) or isinstance(c, bool):
            raise TypeError(f"classes must be output indices (int); got {c!r} of type {type(c).__name__}")
        if not 0 <= int(c) < n_outputs:
            raise IndexError(f"class index {int(c)} is out of range: the model has {n_outputs} outputs (0..{n_outputs - 1})")
        out.append(int(c))
    if len(set(out)) != len(out):
        raise ValueError(f"classes contains duplicates: {out}")
    if not out:
        raise ValueError("classes is empty; give None for every output or a list of output indices")
    return out


def _real_maps(body: nn.Module, inputs: torch.Tensor | np.ndarray, device: torch.device, batch: int = 256) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs, dtype=torch.float32)
    body = body.to(device)
    with torch.no_grad():
        return torch.cat([body(x[i:i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])


def mean_feature_norm(maps: torch.Tensor) -> float:
    """Mean over samples of the L2 (Frobenius) norm of each feature map; ``maps`` is (N, *feature_shape)."""
    return float(maps.flatten(1).norm(dim=1).mean())


def auto_l2(head: nn.Module, feature_shape: Sequence[int], classes: Sequence[int], target_norm: float,
            *, max_classes: int = 16, restarts: int = 3, iterations: int = 3, **ascent_kwargs) -> tuple[float, float]:
    """Choose lambda so that the FIM norm matches ``target_norm`` (the paper's heuristic).

    For a head that is piecewise linear in H the optimum is grad S_c / (2 lambda), so the FIM norm scales as
    1 / lambda; a few short ascents on a subset of classes, each rescaling lambda by (FIM norm / target),
    reach the target.

    Returns
    -------
    lambda, the mean FIM norm measured at that lambda
    """
    if not (target_norm > 0 and math.isfinite(target_norm)):
        raise ValueError(f"the mean real feature-map norm is {target_norm}; l2='auto' needs inputs whose feature maps are not all zero")
    subset = list(classes)[:: max(1, len(classes) // max_classes)][:max_classes]
    lam, norm = 1.0, float("nan")
    for _ in range(iterations):
        out = feature_ascent(head, feature_shape, subset, restarts, lam, **ascent_kwargs)
        norm = float(out.fims.flatten(2).norm(dim=2).mean())
        if norm <= 0:
            raise ValueError("every FIM is zero at lambda = 1: the class scores do not depend on this layer")
        ratio = norm / target_norm
        lam *= ratio
        if abs(ratio - 1) < 0.02:
            break
    return lam, norm


class _Checkpoint:
    """Finished rows of a run, written to HDF5 as they come, so an interrupted run resumes where it stopped."""

    def __init__(self, path: Path, fingerprint: str, n_rows: int, feature_shape: Sequence[int], every: float = 5.0):
        self.path, self.every = Path(path), every
        self.buffer: list[tuple] = []
        self.last = time.monotonic()
        if self.path.exists():
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("fingerprint") != fingerprint:
                    raise ValueError(
                        f"checkpoint {str(self.path)!r} was written by a run with other settings "
                        f"({f.attrs.get('settings')}); delete it or choose another checkpoint path"
                    )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(self.path, "w") as f:
                f.attrs["fingerprint"] = fingerprint
                f.create_dataset("done", (n_rows,), dtype=bool)
                f.create_dataset("fims", (n_rows, *feature_shape), dtype=np.float32)
                for name, dt in (("scores", np.float64), ("objective", np.float64), ("steps", np.int64)):
                    f.create_dataset(name, (n_rows,), dtype=dt)
                f.create_dataset("trace", (n_rows,), dtype=h5py.vlen_dtype(np.float32))

    def finished(self) -> dict[int, tuple]:
        with h5py.File(self.path, "r") as f:
            rows = np.flatnonzero(f["done"][()])
            return {int(r): (torch.from_numpy(f["fims"][r]), f["scores"][r], f["objective"][r], int(f["steps"][r]),
                             np.asarray(f["trace"][r], np.float32)) for r in rows}

    def add(self, rows, fims, scores, objective, steps, traces) -> None:
        self.buffer.extend(zip(rows, fims.numpy(), scores, objective, steps, traces))
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        with h5py.File(self.path, "r+") as f:
            for r, fim, s, o, n, tr in sorted(self.buffer, key=lambda b: b[0]):
                f["fims"][r], f["scores"][r], f["objective"][r], f["steps"][r], f["trace"][r] = fim, s, o, n, tr
                f["done"][r] = True
        self.buffer.clear()
        self.last = time.monotonic()


def _class_names(class_names: Sequence[str] | None, chosen: list[int], n_outputs: int) -> list[str]:
    """One name per chosen class: ``class_names`` names every output or just the chosen ones."""
    if class_names is None:
        return [f"class {c}" for c in chosen]
    class_names = list(class_names)
    if len(class_names) == n_outputs:
        class_names = [class_names[c] for c in chosen]
    elif len(class_names) != len(chosen):
        raise ValueError(f"class_names must name every output ({n_outputs}) or the selected classes ({len(chosen)}); "
                         f"got {len(class_names)} names")
    return [str(n) for n in class_names]


def resolve(
    model: nn.Module,
    layer: str,
    *,
    input_shape: Sequence[int] | None = None,
    classes: Sequence[int] | int | None = None,
    restarts: int = 10,
    l2: float | str = 1.0,
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    optimizer: Optimizer = "matched",
    at: str = "output",
    head: nn.Module | None = None,
    logits: bool = True,
    init_scale: float = 1.0,
    precision: str = "float32",
    nonnegative: bool = False,
    l2_center: str | torch.Tensor | np.ndarray | None = None,
    inputs: torch.Tensor | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    inconsistency: str = "variance",
    **optimizer_options,
) -> Result:
    """Run DeepResolve: FIMs by gradient ascent on ``layer``'s feature map, then FIV, IL, mixtures and OFIV.

    Parameters
    ----------
    model : nn.Module
        The trained network (left unchanged; a copy is split).
    layer : str
        Name from ``model.named_modules()``; H is its output (or its input with ``at="input"``).
        See :func:`deepresolve.list_layers`.
    input_shape : tuple, optional
        Model input shape without the batch axis, e.g. ``(4, 1000)``. Or give ``inputs``.
    classes : int or list of int, optional
        Output indices to explain; None = every output.
    restarts : int
        T, random initialisations per class (the paper uses 10).
    l2 : float or "auto"
        lambda. "auto" picks it so the FIM norm matches the mean norm of the real feature maps of ``inputs``
        (the paper's heuristic); the chosen value is in ``result.params["l2"]``.
    steps, lr : optional
        Maximum steps and step size (see :mod:`deepresolve.ascent` for their meaning under each optimiser).
    seed : int
        Drives every random choice of the call: the ascent's starts (restart t of class c always starts from the
        same map, whatever the batching or device) and the Gaussian mixture fits.
    device : optional
        Default: CUDA when available, else CPU.
    batch_size : int, optional
        Rows (class x restart pairs) per forward/backward pass; lower it to bound memory.
    optimizer : {"matched", "paper"}
        "matched" (default, fast) or the paper's decaying-step plain ascent.
    at : {"output", "input"}
        Analyse the output (default) or the input of ``layer``.
    head : nn.Module, optional
        The network after the layer, when it cannot be split automatically.
    logits : bool
        Score the logits before a final Sigmoid/Softmax (default, as in the paper).
    init_scale : float
        Standard deviation of the random normal initialisation.
    precision : {"float32", "bfloat16"}
        Run the head in bfloat16 (autocast): faster on CPUs with AMX/AVX512-BF16 and on GPUs, at about 1e-3
        relative precision of the objective.
    nonnegative : bool
        Robust option: constrain H >= 0 (the real domain of a post-ReLU map). The paper allows negatives.
    l2_center : "mean", tensor or None
        Robust option: penalise ||H - center||^2 instead of ||H||^2; "mean" uses the mean feature map of
        ``inputs``. Default None (the paper's penalty toward 0).
    inputs : (N, ...) tensor, optional
        A few real inputs (e.g. 100 training sequences) for ``l2="auto"`` and ``l2_center="mean"``.
    class_names : list of str, optional
        Names of every output (length = number of outputs) or of the selected classes.
    channel_names : list of str, optional
        Names of the K channels (e.g. their motifs).
    checkpoint : path, optional
        HDF5 file where finished rows are written as they come; a rerun with the same settings resumes from it.
    progress : bool
        Show a progress bar.
    inconsistency : {"variance", "sign"}
        The inconsistency level: the paper's weighted variance of the FIVs (default) or its sign-disagreement part,
        (E|phi|)^2 - (E phi)^2, a robust option that ignores how much a consistently signed channel varies in size
        (see :func:`deepresolve.summarize.inconsistency`).
    **optimizer_options
        tol, patience, start_decay, alpha, min_lr (see :func:`deepresolve.ascent.feature_ascent`).

    Returns
    -------
    Result
    """
    started = time.perf_counter()
    if inconsistency not in ("variance", "sign"):
        raise ValueError(f"inconsistency must be 'variance' or 'sign'; got {inconsistency!r}")
    dev = resolve_device(device)
    body, head = split_model(model, layer, input_shape=input_shape, inputs=inputs, at=at, logits=logits, head=head)
    x = make_example(input_shape, inputs)
    with torch.no_grad():
        h = body(x)
        n_outputs = head(h).shape[1]
    feature_shape = tuple(h.shape[1:])
    if len(feature_shape) == 0:
        raise ValueError(f"layer {layer!r} gives a scalar per input; DeepResolve needs channels (K,) or (K, W)")
    chosen = _check_classes(classes, n_outputs)
    # names are checked now, not after an hour of ascent
    names = _class_names(class_names, chosen, n_outputs)
    if channel_names is not None and len(channel_names) != feature_shape[0]:
        raise ValueError(f"channel_names must have one name per channel (K = {feature_shape[0]}); "
                         f"got {len(channel_names)}")

    need_inputs = l2 == "auto" or (isinstance(l2_center, str))
    if need_inputs and inputs is None:
        raise ValueError("l2='auto' and l2_center='mean' need inputs=<a few real inputs, shape (N, ...)>")
    real = _real_maps(body, inputs, dev) if need_inputs else None
    if isinstance(l2_center, str):
        if l2_center != "mean":
            raise ValueError(f"l2_center must be None, 'mean' or a tensor of shape {feature_shape}; got {l2_center!r}")
        center = real.mean(dim=0)
    elif l2_center is not None:
        center = torch.as_tensor(np.asarray(l2_center) if not isinstance(l2_center, torch.Tensor) else l2_center,
                                 dtype=torch.float32)
        if tuple(center.shape) != feature_shape:
            raise ValueError(f"l2_center must have the layer's feature shape {feature_shape}; got {tuple(center.shape)}")
    else:
        center = None

    ascent_kwargs = dict(optimizer=optimizer, lr=lr, steps=steps, init_scale=init_scale, precision=precision, nonnegative=nonnegative,
                         center=center, seed=seed, device=dev, batch_size=batch_size, **optimizer_options)
    l2_info: dict = {}
    if isinstance(l2, str):
        if l2 != "auto":
            raise ValueError(f"l2 must be a positive number or 'auto'; got {l2!r}")
        target = mean_feature_norm(real)
        l2, fim_norm = auto_l2(head, feature_shape, chosen, target, **ascent_kwargs)
        l2_info = {"l2_auto_target_norm": target, "l2_auto_fim_norm": fim_norm}

    settings = {"layer": layer, "at": at, "classes": chosen, "restarts": restarts, "l2": l2, "optimizer": optimizer,
                "steps": steps, "lr": lr, "seed": seed, "init_scale": init_scale, "precision": precision, "nonnegative": nonnegative,
                "center": None if center is None else hashlib.sha1(center.numpy().tobytes()).hexdigest(),
                "feature_shape": feature_shape, **optimizer_options}
    ckpt = skip = None
    if checkpoint is not None:
        fingerprint = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
        ckpt = _Checkpoint(Path(checkpoint), fingerprint, len(chosen) * restarts, feature_shape)
        skip = ckpt.finished()

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        bar = Progress(TextColumn("gradient ascent"), BarColumn(), MofNCompleteColumn(), TextColumn("(class, restart) pairs"),
                       TimeElapsedColumn(), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("ascent", total=len(chosen) * restarts, completed=len(skip or {}))
    try:
        out = feature_ascent(
            head, feature_shape, chosen, restarts, float(l2), skip=skip,
            on_done=ckpt.add if ckpt else None,
            progress=(lambda n: bar.advance(task, n)) if bar else None,
            **ascent_kwargs,
        )
    finally:
        if ckpt:
            ckpt.flush()
        if bar:
            bar.stop()

    C, T = len(chosen), restarts
    K = feature_shape[0]
    fims = out.fims.reshape(C, T, K, -1).numpy()
    summary = summarize(fims, out.scores, seed=seed, inconsistency=inconsistency)
    longest = max(len(t) for t in out.trace)
    trace = np.full((C * T, longest), np.nan, dtype=np.float32)
    for r, t in enumerate(out.trace):
        trace[r, :len(t)] = t

    resolved_opts = {**DEFAULTS[optimizer], **{k: v for k, v in dict(lr=lr, steps=steps, **optimizer_options).items() if v is not None}}
    params = {
        "layer": layer, "at": at, "l2": float(l2), "restarts": restarts, "optimizer": optimizer, **resolved_opts,
        "init_scale": init_scale, "precision": precision, "nonnegative": nonnegative, "l2_center": None if l2_center is None else
        (l2_center if isinstance(l2_center, str) else "tensor"), "seed": seed, "inconsistency": inconsistency,
        "device": str(dev), "batch_size": batch_size, "feature_shape": list(feature_shape), "n_outputs": n_outputs,
        "ascent_seconds": out.seconds, "row_steps": out.row_steps, "seconds": time.perf_counter() - started,
        "versions": package_versions(("deepresolve", "torch", "numpy", "scikit-learn", "scipy")), **l2_info,
    }
    return Result(
        classes=np.asarray(chosen), class_names=names, fims=fims.astype(np.float32), scores=out.scores,
        trace=trace.reshape(C, T, -1), steps=out.steps, layer=layer,
        channel_names=list(channel_names) if channel_names is not None else [], params=params, **summary,
    )
