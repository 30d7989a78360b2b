"""Feature importance figures of a result: the FIV ensemble of one class (paper Fig. 2) and the OFIVs of many
(Fig. 4a).

Marks carry a ``gid``: ``"fiv"``, ``"il"``, ``"ofiv"``, ``"nonadditive"``, ``"interacting"``, ``"logo"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._checks import check_choice, check_int
from ..errors import ArgumentError
from ..results import Result, check_result
from ._style import (
    DIVERGING,
    IL_CMAP,
    NEGATIVE,
    POSITIVE,
    STAR,
    class_rows,
    figure_and_axes,
    finish,
    marker_area,
    max_abs,
    sign_colors,
    tick_size,
)
from .logos import draw_logos
from .similarity import leaf_order

__all__ = ["ensemble", "ofivs"]


def _select_channels(result: Result, row: int, top: int, order: str) -> tuple[np.ndarray, bool]:
    K = result.n_channels
    ofiv = np.nan_to_num(result.ofiv[row])
    if K <= top:
        chosen = np.arange(K)
        reduced = False
    else:
        by_ofiv = np.argsort(-np.abs(ofiv), kind="stable")[:top]
        extra = np.setdiff1d(np.flatnonzero(result.non_additive[row]), by_ofiv)
        cap = max(5, top // 2)
        if len(extra) > cap:  # keep the most inconsistent ones
            extra = extra[np.argsort(-np.nan_to_num(result.inconsistency[row, extra]), kind="stable")[:cap]]
        chosen = np.union1d(by_ofiv, extra)
        reduced = True
    if order == "ofiv":
        chosen = chosen[np.argsort(-ofiv[chosen], kind="stable")]
    else:
        check_choice(order, "order", ("ofiv", "channel"))
    return chosen, reduced


def ensemble(
    result: Result,
    cls: int | str,
    *,
    pwms: np.ndarray | None = None,
    top: int = 40,
    order: str = "ofiv",
    ax: Axes | None = None,
    path: str | Path | None = None,
    pairs: int = 3,
) -> Figure:
    """The ensemble of FIVs of one class, its IL scores and its OFIV (paper Fig. 2).

    When the result carries :attr:`~deepresolve.results.Result.interactions`, the class's top ``pairs``
    significant channel pairs among the shown channels are marked above the stars: a line joining the two
    columns, red for synergy, blue for antagonism (an addition to the paper's figure).

    Rows are the T restarts (labelled with their weight), x is the channels. Red circles are
    positive FIVs, blue negative; the area is proportional to ``|FIV|``. The IL row below uses
    darkness and area proportional to the inconsistency level, the OFIV row below that the same
    red/blue code. Non-additive channels get a star above their column (filled: consistent sign,
    hollow: inconsistent sign).

    Parameters
    ----------
    result : Result
    cls : int or str
        Output index or class name.
    pwms : (K, 4, w) array, optional
        One matrix per channel (A, C, G, T rows); drawn as a sequence logo under each column.
        Probability matrices (columns summing to 1) are drawn in bits, anything else as raw heights.
    top : int
        When the layer has more than ``top`` channels, show only the ``top`` channels by
        ``|OFIV|`` together with the non-additive ones (at most ``max(5, top // 2)`` more, by IL);
        the title says so.
    order : {"ofiv", "channel"}
        Columns sorted by OFIV (descending, as in the paper) or by channel index.
    ax : Axes, optional
        Draw into this axes (only without ``pwms``, which need a second axes).
    path : str or Path, optional
        Save the figure here.
    pairs : int
        Interacting channel pairs marked at most (0: none).
    """
    result = check_result(result)
    row = result.index_of(cls)
    top = check_int(top, "top", minimum=1)
    pairs = check_int(pairs, "pairs", minimum=0)
    K, T = result.n_channels, result.n_restarts
    if pwms is not None:
        pwms = np.asarray(pwms, dtype=float)
        if pwms.ndim != 3 or pwms.shape[0] != K or pwms.shape[1] != 4 or pwms.shape[2] < 1:
            raise ArgumentError(f"pwms: expected shape (K={K}, 4, w), got {pwms.shape}")
        if ax is not None:
            raise ArgumentError(f"ax: cannot be combined with pwms (logos need their own axes): expected None, got "
                                f"{type(ax).__name__}")
    channels, reduced = _select_channels(result, row, top, order)
    N = len(channels)
    names = list(result.channel_names)
    marked = _interacting_pairs(result, int(result.classes[row]), channels, pairs)

    cell_w = 0.42 if pwms is None else float(np.clip(0.06 * pwms.shape[2] + 0.1, 0.42, 1.4))
    width = min(max(6.0, cell_w * N + 2.6), 60.0)
    rows_h = 0.34 * (T + 3.2 + 0.55 * len(marked))
    height = rows_h + 1.4 + (1.1 if pwms is not None else 0.0)
    if ax is None:
        fig = Figure(figsize=(width, height), layout="constrained")
        if pwms is not None:
            main, logo_ax = fig.subplots(2, 1, height_ratios=[rows_h + 0.6, 1.0], sharex=True)
        else:
            main, logo_ax = fig.add_subplot(), None
    else:
        fig, main = figure_and_axes(ax, (width, height))
        logo_ax = None

    x = np.arange(N)
    fiv = np.asarray(result.fivs[row][:, channels], dtype=float)  # (T, N)
    il = np.asarray(result.inconsistency[row][channels], dtype=float)
    ofiv = np.asarray(result.ofiv[row][channels], dtype=float)
    # circle sizes: largest circle fills ~90% of a cell
    bbox_w = width * 0.8 / max(N, 1) * 72
    max_area = float(np.clip(min(bbox_w, 0.34 * 72) * 0.92, 3, 40)) ** 2
    y_il, y_ofiv, y_star = T + 0.9, T + 2.0, -1.1

    xs = np.tile(x, T)
    ys = np.repeat(np.arange(T), N)
    fv = fiv.ravel()
    main.scatter(xs, ys, s=marker_area(fv, max_abs(result.fivs[row]), max_area), c=sign_colors(fv),
                 edgecolors="none", gid="fiv", zorder=3)
    il_scale = max_abs(result.inconsistency[row])
    il_norm = Normalize(0, il_scale if il_scale > 0 else 1.0)
    main.scatter(x, np.full(N, y_il), s=marker_area(il, il_scale, max_area), c=np.nan_to_num(il), cmap=IL_CMAP,
                 norm=il_norm, edgecolors="none", gid="il", zorder=3)
    main.scatter(x, np.full(N, y_ofiv), s=marker_area(ofiv, max_abs(result.ofiv[row]), max_area),
                 c=sign_colors(ofiv), edgecolors="none", gid="ofiv", zorder=3)
    star = np.flatnonzero(np.asarray(result.non_additive[row])[channels])
    consistent = np.asarray(result.consistent_sign[row])[channels][star]
    main.scatter(x[star], np.full(len(star), y_star), marker="*", s=min(max_area, 170),
                 c=np.where(consistent, STAR, "white"), edgecolors="#6b4e00", linewidths=0.9,
                 gid="nonadditive", zorder=4)
    y_pairs = y_star - 0.9 - 0.55 * np.arange(len(marked))
    for (a, b, value), y in zip(marked, y_pairs):
        color = POSITIVE if value > 0 else NEGATIVE
        main.plot([a, b], [y, y], color=color, lw=1.6, marker="D", markersize=5, gid="interacting", zorder=4)

    # light guides
    for y in (T - 0.5 + 0.2, y_il + 0.55):
        main.axhline(y, color="#cccccc", lw=0.8, zorder=1)
    main.set_xlim(-0.6, N - 0.4)
    main.set_ylim(y_ofiv + 0.7, (y_pairs[-1] if len(marked) else y_star) - 0.8)
    weights = np.asarray(result.weights[row], dtype=float)
    labels = [f"run {t + 1}  w={weights[t]:.2g}" for t in range(T)]
    tick_step = max(1, int(np.ceil(T / 25)))
    yt = list(range(0, T, tick_step)) + [y_il, y_ofiv, y_star] + ([y_pairs[0]] if len(marked) else [])
    ylabels = labels[::tick_step] + ["IL", "OFIV", "non-additive"] + (["interacting pairs"] if len(marked) else [])
    main.set_yticks(yt)
    main.set_yticklabels(ylabels, fontsize=8)
    for lab in main.get_yticklabels()[-3 - (len(marked) > 0):]:
        lab.set_fontweight("bold")
    main.tick_params(axis="both", length=0)
    for spine in main.spines.values():
        spine.set_visible(False)
    if logo_ax is None:
        main.set_xticks(x)
        main.set_xticklabels([names[k] for k in channels], rotation=90 if N > 10 else 0,
                             fontsize=tick_size(N))
    else:
        draw_logos(logo_ax, pwms, channels, names)  # shares x with main: column j = logo j
        main.tick_params(labelbottom=False)
        main.set_xlim(-0.6, N - 0.4)
    (logo_ax or main).set_xlabel("channel" + (" (sorted by OFIV)" if order == "ofiv" else ""), fontsize=9)

    n_comp = int(result.n_components[row])
    title = (f"{result.class_names[row]}: {T} restarts x {N} channels, "
             f"{int(np.asarray(result.non_additive[row]).sum())} non-additive ({n_comp} mixture component"
             f"{'s' if n_comp != 1 else ''})")
    if reduced:
        extra = N - min(top, K)
        title += (f"\nshowing the top {min(top, K)} of {K} channels by |OFIV|"
                  + (f" plus {extra} more non-additive channel{'s' if extra != 1 else ''}" if extra else ""))
    main.set_title(title, fontsize=10, loc="left")
    handles = [
        Line2D([], [], marker="o", ls="", color=POSITIVE, label="positive"),
        Line2D([], [], marker="o", ls="", color=NEGATIVE, label="negative"),
        Line2D([], [], marker="o", ls="", color="#555555", label="IL (darker = more inconsistent)"),
        Line2D([], [], marker="*", ls="", markerfacecolor=STAR, markeredgecolor="#6b4e00", markersize=10,
               label="non-additive, consistent sign"),
        Line2D([], [], marker="*", ls="", markerfacecolor="white", markeredgecolor="#6b4e00", markersize=10,
               label="non-additive, inconsistent sign"),
    ]
    if marked:
        handles += [Line2D([], [], color=POSITIVE, marker="D", markersize=5, label="interacting pair: synergy"),
                    Line2D([], [], color=NEGATIVE, marker="D", markersize=5, label="interacting pair: antagonism")]
    main.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, frameon=False,
                title="area ~ |value|", title_fontsize=7.5)
    return finish(fig, path)


def _interacting_pairs(result: Result, output: int, channels: np.ndarray, n: int) -> list[tuple[int, int, float]]:
    """Columns (a, b) and value of the top ``n`` significant channel pairs of class ``output`` among ``channels``."""
    ix = result.interactions
    if ix is None or n == 0 or output not in ix.classes:
        return []
    column = {int(k): x for x, k in enumerate(channels)}
    df = ix.table(output, level="channel", top=None)
    df = df[df["significant"] & df["i"].isin(column) & df["j"].isin(column)].head(n)
    return [(column[int(r.i)], column[int(r.j)], float(r.interaction)) for r in df.itertuples()]


def ofivs(
    result: Result,
    classes: Sequence[int | str] | None = None,
    *,
    style: str = "auto",
    order: str = "auto",
    ax: Axes | None = None,
    path: str | Path | None = None,
) -> Figure:
    """OFIVs of several classes: one row per class, one column per channel (paper Fig. 4a).

    ``style="circles"`` draws red/blue circles with area proportional to ``|OFIV|`` (scaled by the
    largest value shown); ``"heatmap"`` draws a diverging colour map, which stays readable for
    hundreds of classes and channels; ``"auto"`` uses circles up to 30 classes x 96 channels.
    Non-additive channels are ringed in black in the circle style.
    ``order="cluster"`` puts classes with correlated OFIVs next to each other (dendrogram order);
    ``"auto"`` does so in the heatmap style, ``"none"`` keeps the given order.
    """
    result = check_result(result)
    rows = class_rows(result, classes)
    check_choice(style, "style", ("auto", "circles", "heatmap"))
    check_choice(order, "order", ("auto", "cluster", "none"))
    K, R = result.n_channels, len(rows)
    if style == "auto":
        style = "circles" if R <= 30 and K <= 96 else "heatmap"
    clustered = R > 2 and (order == "cluster" or (order == "auto" and style == "heatmap"))
    if clustered:
        with np.errstate(all="ignore"):
            corr = np.corrcoef(np.nan_to_num(np.asarray(result.ofiv[rows], dtype=float)))
        rows = [rows[p] for p in leaf_order(corr)]
    values = np.asarray(result.ofiv[rows], dtype=float)
    scale = max_abs(values)
    class_names = [result.class_names[r] for r in rows]
    if style == "circles":
        figsize = (min(max(6.0, 0.3 * K + 2.5), 40.0), 0.42 * R + 1.6)
        fig, ax = figure_and_axes(ax, figsize)
        xs, ys = np.tile(np.arange(K), R), np.repeat(np.arange(R), K)
        v = values.ravel()
        cell = min(figsize[0] * 0.85 / max(K, 1), 0.42) * 72
        na = np.asarray(result.non_additive[rows]).ravel()
        ax.scatter(xs, ys, s=marker_area(v, scale, (0.9 * cell) ** 2), c=sign_colors(v),
                   edgecolors=np.where(na, "black", "none"), linewidths=np.where(na, 1.0, 0.0),
                   gid="ofiv", zorder=3)
        ax.set_xlim(-0.6, K - 0.4)
        ax.set_ylim(R - 0.5, -0.5)
        ax.set_yticks(range(R))
        ax.set_yticklabels(class_names, fontsize=tick_size(R) if R > 10 else 9)
        step = max(1, int(np.ceil(K / 60)))
        ax.set_xticks(range(0, K, step))
        ax.set_xticklabels(result.channel_names[::step], rotation=90, fontsize=tick_size(min(K, 60)))
        ax.tick_params(length=0)
        for y in np.arange(R - 1) + 0.5:
            ax.axhline(y, color="#eeeeee", lw=0.8, zorder=1)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(f"OFIV of {R} class{'es' if R != 1 else ''} (area ~ |OFIV|; red positive, blue negative; "
                     "black ring = non-additive)", fontsize=10, loc="left")
    else:
        figsize = (min(max(7.0, 0.02 * K + 5), 16.0), min(max(3.0, 0.012 * R + 2.5), 14.0))
        fig, ax = figure_and_axes(ax, figsize)
        lim = scale if scale > 0 else 1.0
        im = ax.imshow(values, aspect="auto", cmap=DIVERGING, vmin=-lim, vmax=lim, interpolation="nearest",
                       gid="ofiv")
        fig.colorbar(im, ax=ax, label="OFIV", shrink=0.8)
        if R <= 60:
            ax.set_yticks(range(R))
            ax.set_yticklabels(class_names, fontsize=tick_size(R))
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{R} classes")
        if K <= 80:
            ax.set_xticks(range(K))
            ax.set_xticklabels(result.channel_names, rotation=90, fontsize=tick_size(K))
        else:
            ax.set_xlabel(f"{K} channels")
        ax.set_title(f"OFIV of {R} classes x {K} channels (red positive, blue negative)"
                     + ("; classes in dendrogram order of OFIV correlation" if clustered else ""),
                     fontsize=10, loc="left")
    return finish(fig, path)

