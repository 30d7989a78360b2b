"""Diagnostic figures of a result: the BIC of the IL mixtures (Additional file 1, Fig. S1) and the convergence of
gradient ascent.

Marks carry a ``gid``: ``"bic"``, ``"chosen"``, ``"not_fitted"``, ``"components"``, ``"trace"``, ``"median"``,
``"steps"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._checks import check_choice, check_int
from ..errors import ArgumentError
from ..results import Result, check_result
from ._style import STAR, class_rows, finish

__all__ = ["bic", "convergence"]


def bic(result: Result, cls: int | str | None = None, *, histogram: bool | None = None,
        path: str | Path | None = None) -> Figure:
    """BIC of 1-3 component Gaussian mixtures on the IL scores (Additional file 1, Fig. S1).

    With ``cls`` (or a one-class result): the BIC curve of that class with the chosen number of
    components starred; infinite BICs (fits that were impossible) are labelled "not fitted". With
    several classes: a histogram of the chosen number of components over all classes (beside the
    curve when ``cls`` is given too, unless ``histogram=False``).
    """
    result = check_result(result)
    C = result.n_classes
    row = result.index_of(cls) if cls is not None else (0 if C == 1 else None)
    check_choice(histogram, "histogram", (True, False, None))
    show_hist = C > 1 if histogram is None else bool(histogram)
    if row is None and not show_hist:
        raise ArgumentError("histogram: expected True or None without cls (False leaves nothing to draw), got False")
    n_panels = int(row is not None) + int(show_hist)
    fig = Figure(figsize=(4.2 * n_panels + 0.4, 3.4), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, n_panels)))
    if row is not None:
        ax = axes.pop(0)
        values = np.asarray(result.bic[row], dtype=float)
        ks = np.arange(1, 4)
        ax.plot(ks, values, "-o", color="#333333", gid="bic")
        chosen = int(result.n_components[row])
        if 1 <= chosen <= 3 and np.isfinite(values[chosen - 1]):
            ax.plot([chosen], [values[chosen - 1]], marker="*", ms=18, color=STAR, mec="#6b4e00", ls="",
                    gid="chosen", label=f"chosen: {chosen}")
            ax.legend(frameon=False, fontsize=8, markerscale=0.6)
        missing = ks[~np.isfinite(values)]
        for k in missing:  # inf: the fit was impossible (e.g. fewer distinct IL values than components)
            ax.text(k, 0.5, "not fitted", transform=ax.get_xaxis_transform(), ha="center", va="center",
                    color="#777777", fontsize=8, rotation=90, gid="not_fitted")
        ax.set_xlim(0.6, 3.4)
        ax.set_xticks(ks)
        ax.set_xlabel("mixture components")
        ax.set_ylabel("BIC (lower is better)")
        ax.set_title(f"{result.class_names[row]}: BIC of IL mixtures", fontsize=10, loc="left")
    if show_hist:
        ax = axes.pop(0)
        counts = np.array([(np.asarray(result.n_components) == k).sum() for k in (1, 2, 3)])
        bars = ax.bar([1, 2, 3], counts, color=["#9e9e9e", "#e07b39", "#b2182b"], width=0.7, gid="components")
        ax.bar_label(bars, fontsize=8)
        ax.set_xticks([1, 2, 3])
        ax.set_xlabel("chosen mixture components")
        ax.set_ylabel("classes")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{C} classes: {int(counts[1:].sum())} with non-additive channels", fontsize=10, loc="left")
    for ax in fig.axes:
        ax.spines[["top", "right"]].set_visible(False)
    return finish(fig, path)


def convergence(
    result: Result,
    classes: Sequence[int | str] | None = None,
    *,
    max_traces: int = 300,
    path: str | Path | None = None,
) -> Figure:
    """Gradient-ascent objective against step for every restart, and the distribution of steps taken.

    Up to 10 classes get one colour each (one line per restart); with more classes the traces are
    drawn in grey, at most ``max_traces`` of them (a fixed random subset; the title says so), with
    the median over restarts in black. When the starting values lie far below everything after them
    (random starts with a large L2 penalty), the y-axis covers steps 1, 2, ... and the title says so.
    """
    result = check_result(result)
    rows = class_rows(result, classes)
    max_traces = check_int(max_traces, "max_traces", minimum=1)
    trace = np.asarray(result.trace, dtype=float)
    if trace.ndim != 3 or trace.shape[:2] != (result.n_classes, result.n_restarts):
        raise ArgumentError(f"result.trace: expected shape (C, T, S) = ({result.n_classes}, {result.n_restarts}, S), "
                         f"got {trace.shape}")
    fig = Figure(figsize=(10.5, 3.6), layout="constrained")
    ax, hx = fig.subplots(1, 2, width_ratios=[2.2, 1])
    pairs = [(r, t) for r in rows for t in range(result.n_restarts)]
    note = ""
    if len(rows) > 10 and len(pairs) > max_traces:
        pick = np.random.default_rng(0).choice(len(pairs), size=max_traces, replace=False)
        note = f" ({max_traces} of {len(pairs)} traces shown)"
        pairs = [pairs[p] for p in np.sort(pick)]

    def segment(r: int, t: int) -> np.ndarray | None:
        y = trace[r, t]
        ok = np.flatnonzero(np.isfinite(y))
        return np.column_stack([ok, y[ok]]) if len(ok) else None

    S = trace.shape[2]
    if len(rows) <= 10:
        cmap = colormaps["tab10"]
        for n, r in enumerate(rows):
            segs = [s for s in (segment(r, t) for t in range(result.n_restarts)) if s is not None]
            ax.add_collection(LineCollection(segs, colors=[cmap(n % 10)], linewidths=1.0, alpha=0.8, gid="trace",
                                             label=result.class_names[r]))
        if len(rows) > 1:
            ax.legend(fontsize=7.5, frameon=False, loc="lower right")
    else:
        segs = [s for s in (segment(r, t) for r, t in pairs) if s is not None]
        ax.add_collection(LineCollection(segs, colors="#888888", linewidths=0.6, alpha=0.35, gid="trace"))
        if S:
            with np.errstate(all="ignore"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    med = np.nanmedian(trace[rows].reshape(-1, S), axis=0)
            ok = np.isfinite(med)
            ax.plot(np.flatnonzero(ok), med[ok], color="black", lw=1.6, label="median", gid="median")
            ax.legend(fontsize=8, frameon=False, loc="lower right")
    finite = trace[rows][np.isfinite(trace[rows])]
    if finite.size:
        # random starts can begin far below where every restart ends up (a large penalty on H);
        # such first values would squash all curves flat, so then the axis covers steps 1, 2, ... only
        later = trace[rows][:, :, 1:]
        later = later[np.isfinite(later)]
        lo, hi = float(finite.min()), float(finite.max())
        clipped = False
        if later.size:
            lo_later = float(later.min())
            clipped = lo < lo_later - (hi - lo_later)
            if clipped:
                lo = lo_later
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlim(0, max(S - 1, 1))
        if clipped:
            note += f"; y-axis clipped: step-0 values reach {float(finite.min()):.3g}"
    else:
        ax.text(0.5, 0.5, "no objective trace recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("ascent step")
    ax.set_ylabel(f"objective  {result.objective}")
    ax.set_title(f"Gradient ascent, {len(rows)} class{'es' if len(rows) != 1 else ''}{note}", fontsize=10, loc="left")
    steps = np.asarray(result.steps)[rows].ravel()
    hx.hist(steps, bins=min(30, max(5, len(np.unique(steps)))), color="#607d8b", gid="steps")
    hx.set_xlabel("steps taken per restart")
    hx.set_ylabel("restarts")
    hx.yaxis.set_major_locator(MaxNLocator(integer=True))
    hx.set_title(f"median {np.median(steps):.0f} steps", fontsize=10, loc="left")
    for a in (ax, hx):
        a.spines[["top", "right"]].set_visible(False)
    return finish(fig, path)
