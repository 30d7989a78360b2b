"""Pictures of a DeepResolve result (matplotlib; safe without a display).

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global
figure registry, so thousands of figures can be made in one process) and saves it when ``path``
is given. Functions that draw on a single axes also accept ``ax``.

Colours follow the paper: red = positive contribution, blue = negative contribution.
Plots take arrays and draw them; the science (similarities, clustering for analysis) lives in
:mod:`deepresolve.similarity`. The only computation here is what a picture needs (ordering rows
of a heatmap by a dendrogram, picking which channels fit on the page).

Marks carry a ``gid`` so that they can be found again (tests, post-processing):
``"fiv"``, ``"il"``, ``"ofiv"``, ``"nonadditive"``, ``"dendrogram"``, ``"trace"``, ``"chosen"``, ``"groups"`` and
``"group_label"`` (group strips of a clustered heatmap), ``"dnase_block"``, ``"positive"``, ``"negative"`` and
``"listed"`` (the DNase association figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .._checks import check_choice, check_int
from ..errors import ArgumentError
from ..results import Result, check_result

__all__ = [
    "ensemble", "ofivs", "similarity_panels", "clustered_heatmap", "cluster_panels",
    "difference", "dnase_association", "bic", "convergence", "pick_clusters", "leaf_order", "logo_image", "POSITIVE",
    "NEGATIVE",
]

POSITIVE = "#c8102e"  # red: channel pushes the class score up
NEGATIVE = "#1f5fbf"  # blue: channel pushes the class score down
STAR = "#f2b600"
_DIVERGING = LinearSegmentedColormap.from_list("deepresolve_div", [NEGATIVE, "#f7f7f7", POSITIVE]).with_extremes(
    bad="#bdbdbd")
_IL_CMAP = LinearSegmentedColormap.from_list("deepresolve_il", ["#d9d9d9", "#111111"])

SIMILARITY_TITLES = {
    "class_similarity": "Class similarity (OFIV\u207a correlation)",
    "label_correlation": "Label correlation",
    "ofiv_correlation": "Full-OFIV correlation",
    "weight_cosine": "Last-layer weight cosine",
}
_SIMILARITY_ALIASES = {
    "ofiv_positive": "class_similarity", "ofiv+": "class_similarity", "similarity": "class_similarity",
    "labels": "label_correlation", "label": "label_correlation",
    "ofiv": "ofiv_correlation", "full_ofiv": "ofiv_correlation",
    "weights": "weight_cosine", "weight": "weight_cosine", "last_layer": "weight_cosine",
}


# --------------------------------------------------------------------------- checks and helpers

def _class_rows(result: Result, classes: Sequence[int | str] | None) -> list[int]:
    if classes is None:
        return list(range(result.n_classes))
    if isinstance(classes, (str, int, np.integer)):
        classes = [classes]
    rows = [result.index_of(c, "classes") for c in classes]
    if not rows:
        raise ArgumentError("classes: expected at least one class, got an empty sequence")
    return rows


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise ArgumentError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def _finish(fig: Figure, path: str | Path | None, dpi: int = 110) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def _sign_colors(values: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(values) >= 0, POSITIVE, NEGATIVE)


def _area(values: np.ndarray, scale: float, max_area: float) -> np.ndarray:
    """Marker areas proportional to ``|values| / scale``; 0 where the value is 0 or not finite."""
    v = np.nan_to_num(np.abs(np.asarray(values, dtype=float)), nan=0.0)
    if scale <= 0 or not np.isfinite(scale):
        return np.zeros_like(v)
    return max_area * np.clip(v / scale, 0, 1)


def _max_abs(values: np.ndarray) -> float:
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


def _check_square(matrix: object, n: int | None, argument: str) -> np.ndarray:
    """``matrix`` as a float (C, C) array; with ``n``, C must equal it."""
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(f"{argument}: expected a square (C, C) matrix of numbers, got "
                            f"{type(matrix).__name__}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ArgumentError(f"{argument}: expected a square (C, C) matrix, got shape {m.shape}")
    if n is not None and m.shape[0] != n:
        raise ArgumentError(f"{argument}: expected shape ({n}, {n}) to match {n} names, got {m.shape}")
    return m


def _check_names(names: Sequence[str], argument: str = "names") -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise ArgumentError(f"{argument}: expected a sequence of class names, got {type(names).__name__}")
    return [str(n) for n in names]


def _tick_size(n: int) -> float:
    return float(np.clip(260 / max(n, 1), 6, 10))


# --------------------------------------------------------------------------- 1. ensemble (Fig 2)

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


def _logo_heights(pwm: np.ndarray) -> np.ndarray:
    """(4, w) matrix -> (w, 4) letter heights: information content for probability matrices, raw otherwise."""
    m = np.nan_to_num(np.asarray(pwm, dtype=float)).T
    sums = m.sum(axis=1)
    if (m >= 0).all() and np.allclose(sums[sums > 0], 1.0, atol=1e-3):
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = np.where(m > 0, m * np.log2(m), 0.0).sum(axis=1)
        return m * (2.0 + ent)[:, None]
    return m


_LOGO_CACHE: dict[bytes, np.ndarray] = {}
_LOGO_CACHE_SIZE = 1024


def logo_image(pwm: np.ndarray, dpi: int = 100) -> np.ndarray:
    """Render one (4, w) matrix as a sequence logo with logomaker and return it as an RGBA array.

    Logos are cached by content, so a report that draws the same channel for many classes renders
    its logo once (logomaker builds one patch per letter, which is slow). Probability matrices are
    drawn in bits on a fixed 0-2 scale, so logos of different channels are comparable.
    """
    import hashlib

    import logomaker
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    m = np.asarray(pwm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != 4 or m.shape[1] < 1:
        raise ArgumentError(f"pwm: expected shape (4, w), got {m.shape}")
    key = hashlib.sha1(np.ascontiguousarray(m).tobytes() + bytes(str((m.shape, dpi)), "ascii")).digest()
    cached = _LOGO_CACHE.get(key)
    if cached is not None:
        return cached
    heights = _logo_heights(m)
    fig = Figure(figsize=(max(0.5, 0.1 * m.shape[1]), 0.75), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    logomaker.Logo(pd.DataFrame(heights, columns=list("ACGT")), ax=ax, color_scheme="classic",
                   baseline_width=0, show_spines=False)
    probabilities = (m >= 0).all() and np.allclose(m.sum(axis=0)[m.sum(axis=0) > 0], 1.0, atol=1e-3)
    if probabilities:
        ax.set_ylim(0, 2)
    ax.set_axis_off()
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba()).copy()
    if len(_LOGO_CACHE) >= _LOGO_CACHE_SIZE:
        _LOGO_CACHE.clear()
    _LOGO_CACHE[key] = image
    return image


def _draw_logos(ax: Axes, pwms: np.ndarray, channels: np.ndarray, names: list[str]) -> None:
    for j, k in enumerate(channels):
        ax.imshow(logo_image(pwms[k]), extent=(j - 0.42, j + 0.42, 0.02, 0.98), aspect="auto",
                  interpolation="antialiased", gid="logo")
    ax.set_ylim(0, 1)
    ax.set_xticks(np.arange(len(channels)))
    ax.set_xticklabels([names[k] for k in channels], rotation=90, fontsize=_tick_size(len(channels)))
    ax.tick_params(axis="both", length=0)
    ax.set_yticks([])
    ax.set_ylabel("logo", rotation=0, ha="right", va="center", fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)


def ensemble(
    result: Result,
    cls: int | str,
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
            raise ArgumentError("ax: cannot be combined with pwms (logos need their own axes); pass ax=None")
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
        fig, main = _figure(ax, (width, height))
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
    main.scatter(xs, ys, s=_area(fv, _max_abs(result.fivs[row]), max_area), c=_sign_colors(fv),
                 edgecolors="none", gid="fiv", zorder=3)
    il_scale = _max_abs(result.inconsistency[row])
    il_norm = Normalize(0, il_scale if il_scale > 0 else 1.0)
    main.scatter(x, np.full(N, y_il), s=_area(il, il_scale, max_area), c=np.nan_to_num(il), cmap=_IL_CMAP,
                 norm=il_norm, edgecolors="none", gid="il", zorder=3)
    main.scatter(x, np.full(N, y_ofiv), s=_area(ofiv, _max_abs(result.ofiv[row]), max_area),
                 c=_sign_colors(ofiv), edgecolors="none", gid="ofiv", zorder=3)
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
                             fontsize=_tick_size(N))
    else:
        _draw_logos(logo_ax, pwms, channels, names)  # shares x with main: column j = logo j
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
    return _finish(fig, path)


def _interacting_pairs(result: Result, output: int, channels: np.ndarray, n: int) -> list[tuple[int, int, float]]:
    """Columns (a, b) and value of the top ``n`` significant channel pairs of class ``output`` among ``channels``."""
    ix = result.interactions
    if ix is None or n == 0 or output not in ix.classes:
        return []
    column = {int(k): x for x, k in enumerate(channels)}
    df = ix.table(output, level="channel", top=None)
    df = df[df["significant"] & df["i"].isin(column) & df["j"].isin(column)].head(n)
    return [(column[int(r.i)], column[int(r.j)], float(r.interaction)) for r in df.itertuples()]


# --------------------------------------------------------------------------- 2. OFIVs of several classes (Fig 4a)

def ofivs(
    result: Result,
    classes: Sequence[int | str] | None = None,
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
    rows = _class_rows(result, classes)
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
    scale = _max_abs(values)
    class_names = [result.class_names[r] for r in rows]
    if style == "circles":
        figsize = (min(max(6.0, 0.3 * K + 2.5), 40.0), 0.42 * R + 1.6)
        fig, ax = _figure(ax, figsize)
        xs, ys = np.tile(np.arange(K), R), np.repeat(np.arange(R), K)
        v = values.ravel()
        cell = min(figsize[0] * 0.85 / max(K, 1), 0.42) * 72
        na = np.asarray(result.non_additive[rows]).ravel()
        ax.scatter(xs, ys, s=_area(v, scale, (0.9 * cell) ** 2), c=_sign_colors(v),
                   edgecolors=np.where(na, "black", "none"), linewidths=np.where(na, 1.0, 0.0),
                   gid="ofiv", zorder=3)
        ax.set_xlim(-0.6, K - 0.4)
        ax.set_ylim(R - 0.5, -0.5)
        ax.set_yticks(range(R))
        ax.set_yticklabels(class_names, fontsize=_tick_size(R) if R > 10 else 9)
        step = max(1, int(np.ceil(K / 60)))
        ax.set_xticks(range(0, K, step))
        ax.set_xticklabels(result.channel_names[::step], rotation=90, fontsize=_tick_size(min(K, 60)))
        ax.tick_params(length=0)
        for y in np.arange(R - 1) + 0.5:
            ax.axhline(y, color="#eeeeee", lw=0.8, zorder=1)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(f"OFIV of {R} class{'es' if R != 1 else ''} (area ~ |OFIV|; red positive, blue negative; "
                     "black ring = non-additive)", fontsize=10, loc="left")
    else:
        figsize = (min(max(7.0, 0.02 * K + 5), 16.0), min(max(3.0, 0.012 * R + 2.5), 14.0))
        fig, ax = _figure(ax, figsize)
        lim = scale if scale > 0 else 1.0
        im = ax.imshow(values, aspect="auto", cmap=_DIVERGING, vmin=-lim, vmax=lim, interpolation="nearest",
                       gid="ofiv")
        fig.colorbar(im, ax=ax, label="OFIV", shrink=0.8)
        if R <= 60:
            ax.set_yticks(range(R))
            ax.set_yticklabels(class_names, fontsize=_tick_size(R))
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{R} classes")
        if K <= 80:
            ax.set_xticks(range(K))
            ax.set_xticklabels(result.channel_names, rotation=90, fontsize=_tick_size(K))
        else:
            ax.set_xlabel(f"{K} channels")
        ax.set_title(f"OFIV of {R} classes x {K} channels (red positive, blue negative)"
                     + ("; classes in dendrogram order of OFIV correlation" if clustered else ""),
                     fontsize=10, loc="left")
    return _finish(fig, path)


# --------------------------------------------------------------------------- ordering and clustering for display

def _linkage(similarity: np.ndarray, linkage: np.ndarray | None, method: str) -> np.ndarray | None:
    """The given linkage (checked), or :func:`deepresolve.similarity.cluster_classes`' one; None below 2 classes."""
    from ..similarity import cluster_classes

    n = similarity.shape[0]
    if linkage is not None:
        Z = np.asarray(getattr(linkage, "linkage", linkage), dtype=float)  # also a similarity.Clustering
        if Z.shape != (max(n - 1, 0), 4):
            raise ArgumentError(f"linkage: expected a scipy linkage matrix of shape ({n - 1}, 4) for {n} classes, "
                             f"got {Z.shape}")
        return Z if n > 1 else None
    if n < 2:
        return None
    return cluster_classes(similarity, method=method).linkage


def leaf_order(similarity: np.ndarray, linkage: np.ndarray | None = None, method: str = "average") -> np.ndarray:
    """Row order of a similarity matrix that puts similar classes next to each other (dendrogram leaves).

    Distances are :func:`deepresolve.similarity.class_distance` (``1 - similarity``). A precomputed scipy
    ``linkage`` (or the :class:`deepresolve.similarity.Clustering` returned by
    :func:`deepresolve.similarity.cluster_classes`) is used as given.
    """
    from scipy.cluster.hierarchy import leaves_list

    s = _check_square(similarity, None, "similarity")
    Z = _linkage(s, linkage, method)
    return np.arange(s.shape[0]) if Z is None else leaves_list(Z)


def pick_clusters(
    similarity: np.ndarray,
    n_clusters: int | None = None,
    linkage: np.ndarray | None = None,
    max_panels: int = 6,
    max_size: int = 25,
    method: str = "average",
) -> list[np.ndarray]:
    """Cut the dendrogram into ``n_clusters`` flat clusters and return the most cohesive ones worth showing.

    Clusters of 2 to ``max_size`` classes are ranked by their mean within-cluster similarity; if none
    qualifies the largest clusters are returned. Each entry holds class row indices in dendrogram order.
    """
    from scipy.cluster.hierarchy import fcluster, leaves_list

    s = _check_square(similarity, None, "similarity")
    n = s.shape[0]
    max_panels = check_int(max_panels, "max_panels", minimum=1)
    max_size = check_int(max_size, "max_size", minimum=2)
    if n_clusters is None:
        n_clusters = max(2, n // 8)
    n_clusters = min(check_int(n_clusters, "n_clusters", minimum=1), max(n, 1))
    Z = _linkage(s, linkage, method)
    if Z is None:
        return [np.arange(n)]
    labels = fcluster(Z, t=n_clusters, criterion="maxclust")
    rank = np.empty(n, dtype=int)
    rank[leaves_list(Z)] = np.arange(n)
    clusters = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
    clusters = [c[np.argsort(rank[c])] for c in clusters]

    def cohesion(c: np.ndarray) -> float:
        sub = np.nan_to_num(s[np.ix_(c, c)])
        return float((sub.sum() - np.trace(sub)) / (len(c) * (len(c) - 1))) if len(c) > 1 else -np.inf

    good = [c for c in clusters if 2 <= len(c) <= max_size]
    if good:
        good.sort(key=cohesion, reverse=True)
        return good[:max_panels]
    clusters.sort(key=len, reverse=True)
    return [c[:max_size] for c in clusters[:max_panels]]


def _heatmap(ax: Axes, m: np.ndarray, names: list[str] | None, annotate: bool, vlim: float = 1.0,
             gid: str = "heatmap", interpolation: str = "nearest", annotation_size: float = 8):
    im = ax.imshow(m, cmap=_DIVERGING, vmin=-vlim, vmax=vlim, interpolation=interpolation, aspect="equal", gid=gid)
    n = m.shape[0]
    if names is not None:
        fs = _tick_size(n)
        ax.set_xticks(range(n))
        ax.set_xticklabels(names, rotation=90, fontsize=fs)
        ax.set_yticks(range(n))
        ax.set_yticklabels(names, fontsize=fs)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.tick_params(length=0)
    if annotate:
        for i in range(n):
            for j in range(n):
                v = m[i, j]
                ax.text(j, i, "nan" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center",
                        fontsize=annotation_size, color="white" if np.isfinite(v) and abs(v) > 0.6 * vlim else "black",
                        gid="annotation")
    return im


# --------------------------------------------------------------------------- 3. similarity panels (Fig 4b)

def similarity_panels(
    matrices: Mapping[str, np.ndarray],
    names: Sequence[str],
    order: str | Sequence[int] = "auto",
    max_labels: int = 40,
    path: str | Path | None = None,
) -> Figure:
    """Class-by-class matrices side by side, on one -1..1 colour scale (paper Fig. 4b).

    Parameters
    ----------
    matrices : dict of name -> (C, C) array
        Any subset of ``class_similarity`` (OFIV⁺ correlation), ``label_correlation``,
        ``ofiv_correlation`` (full OFIV) and ``weight_cosine`` (last-layer weights); a few aliases
        (``"ofiv+"``, ``"labels"``, ``"weights"``, ...) are accepted and other names are drawn with
        the name as title. Four matrices are laid out 2 x 2 as in the paper.
    names : sequence of str, length C
    order : "auto", "none", "cluster" or a permutation of range(C)
        Row/column order shared by all panels. ``"cluster"`` orders by the dendrogram of the first
        matrix; ``"auto"`` does so when there are more than 12 classes.
    max_labels : int
        Class names are written on the axes up to this many classes; values are written in the
        cells up to 12 classes.
    """
    names = _check_names(names)
    if not isinstance(matrices, Mapping) or len(matrices) == 0:
        raise ArgumentError(f"matrices: expected a non-empty dict of name -> (C, C) array, got {matrices!r:.80}")
    C = len(names)
    panels: dict[str, np.ndarray] = {}
    for key, m in matrices.items():
        canonical = _SIMILARITY_ALIASES.get(str(key).lower(), str(key))
        if canonical in panels:
            raise ArgumentError(f"matrices: {key!r} duplicates {canonical!r}")
        panels[canonical] = _check_square(m, C, f"matrices[{key!r}]")
    keys = [k for k in SIMILARITY_TITLES if k in panels] + [k for k in panels if k not in SIMILARITY_TITLES]
    if isinstance(order, str):
        if order not in ("auto", "none", "cluster"):
            raise ArgumentError(f"order: expected 'auto', 'none', 'cluster' or a permutation, got {order!r}")
        perm = leaf_order(panels[keys[0]]) if order == "cluster" or (order == "auto" and C > 12) \
            else np.arange(C)
    else:
        perm = np.asarray(order)
        if perm.shape != (C,) or not np.array_equal(np.sort(perm), np.arange(C)):
            raise ArgumentError(f"order: expected a permutation of range({C}), got {order!r:.80}")
    n = len(keys)
    nrows, ncols = (2, 2) if n == 4 else (1, n)
    side = 3.2 if C <= max_labels else 4.2
    fig = Figure(figsize=(side * ncols + 1.2, side * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    show_names = [names[i] for i in perm] if C <= max_labels else None
    im = None
    for ax, key in zip(axes, keys):
        m = panels[key][np.ix_(perm, perm)]
        im = _heatmap(ax, m, show_names, annotate=C <= 12, gid=key)
        ax.set_title(SIMILARITY_TITLES.get(key, key), fontsize=10)
    fig.colorbar(im, ax=list(axes), shrink=0.7, label="similarity")
    if C > max_labels:
        fig.suptitle(f"{C} classes, ordered by the dendrogram of "
                     f"'{SIMILARITY_TITLES.get(keys[0], keys[0])}'" if not isinstance(order, str) or order != "none"
                     else f"{C} classes", fontsize=10)
    return _finish(fig, path)


# --------------------------------------------------------------------------- 4. clustered heatmap (Figs 7-9)

def _draw_dendrogram(ax: Axes, Z: np.ndarray, orientation: str, max_links: int = 150) -> None:
    """Draw the ``max_links`` highest merges (all of them for small trees) as one LineCollection."""
    from scipy.cluster.hierarchy import dendrogram

    d = dendrogram(Z, no_plot=True)
    heights = np.array([ys[1] for ys in d["dcoord"]])
    keep = np.argsort(-heights, kind="stable")[:max_links]
    segments = []
    for n in np.sort(keep):
        xs, ys = d["icoord"][n], d["dcoord"][n]
        pos = (np.asarray(xs) - 5.0) / 10.0  # leaves sit at 5, 15, 25, ... -> 0, 1, 2, ...
        pts = np.column_stack([pos, ys]) if orientation == "top" else np.column_stack([ys, pos])
        segments.append(pts)
    ax.add_collection(LineCollection(segments, colors="#444444", linewidths=0.6 if len(segments) < 60 else 0.4,
                                     gid="dendrogram"))
    n = Z.shape[0] + 1
    top = float(np.max(Z[:, 2])) if len(Z) else 1.0
    # a truncated tree starts where its lowest drawn leg ends, not at 0 (it would float above the heatmap)
    bottom = min(float(np.min(d["dcoord"][k])) for k in keep) if len(keep) else 0.0
    bottom = bottom if bottom < top else 0.0
    if orientation == "top":
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(bottom, top * 1.02 if top > 0 else 1)
    else:
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(top * 1.02 if top > 0 else 1, bottom)
    ax.set_axis_off()


def clustered_heatmap(
    similarity: np.ndarray,
    names: Sequence[str],
    linkage: np.ndarray | None = None,
    method: str = "average",
    max_labels: int = 60,
    title: str = "Class similarity (OFIV\u207a correlation), hierarchically clustered",
    path: str | Path | None = None,
    groups: Sequence[str | int] | None = None,
) -> Figure:
    """A similarity matrix reordered by hierarchical clustering, with its dendrogram (paper Fig. 7).

    Readable from a handful of classes (names on the axes, values in the cells up to 12 classes)
    to 919 (no labels, no annotations; the dendrogram, drawn down to its 150 highest merges, and
    the colour carry the structure; above 300 classes the image is drawn anti-aliased and saved at
    a resolution of at least one pixel per class).
    ``linkage`` may be a precomputed scipy linkage or the ``Clustering`` returned by
    ``deepresolve.similarity.cluster_classes``;
    otherwise average linkage on ``1 - similarity`` is used for the display order.

    ``groups`` (one label per class: a designed group, an assay, a cell type) adds a colour strip
    along the top and the left of the heatmap, so one sees whether the clusters are the groups;
    each run of at least ``max(3, C / 40)`` consecutive classes of one group is labelled above the
    top strip (the ``gid`` of the strips is ``"groups"``).
    """
    names = _check_names(names)
    C = len(names)
    s = _check_square(similarity, C, "similarity")
    if C == 0:
        raise ArgumentError("similarity: expected at least one class, got a 0 x 0 matrix")
    labels = None if groups is None else _check_names(groups, "groups")
    if labels is not None and len(labels) != C:
        raise ArgumentError(f"groups: expected one group label per class ({C}), got {len(labels)}")
    Z = _linkage(s, linkage, method)
    from scipy.cluster.hierarchy import leaves_list

    perm = np.arange(C) if Z is None else leaves_list(Z)
    big = C > max_labels
    side = 5.0 if C <= 12 else (7.0 if not big else 9.0)
    strip = 0.22 if labels is not None else 0.0
    fig = Figure(figsize=(side + 1.8 + strip, side + 1.2 + strip), layout="constrained")
    gs = fig.add_gridspec(3, 4, width_ratios=[1.2, strip or 1e-3, side, 0.25],
                          height_ratios=[1.2, strip or 1e-3, side], wspace=0, hspace=0)
    heat = fig.add_subplot(gs[2, 2])
    shown = [names[i] for i in perm] if not big else None
    im = _heatmap(heat, s[np.ix_(perm, perm)], shown, annotate=C <= 12, gid="similarity",
                  interpolation="nearest" if C <= 300 else "antialiased")
    if shown is not None:
        heat.yaxis.tick_right()
    else:
        heat.set_xlabel(f"{C} classes (dendrogram order)")
    if Z is not None:
        _draw_dendrogram(fig.add_subplot(gs[0, 2], sharex=heat), Z, "top")
        _draw_dendrogram(fig.add_subplot(gs[2, 0], sharey=heat), Z, "left")
    if labels is not None:
        _group_strips(fig.add_subplot(gs[1, 2], sharex=heat), fig.add_subplot(gs[2, 1], sharey=heat),
                      [labels[i] for i in perm], fig.add_subplot(gs[0, 0]))
    fig.colorbar(im, cax=fig.add_subplot(gs[2, 3]), label="similarity")
    fig.suptitle(title, fontsize=11)
    # at least one pixel per class on the saved image (a 919-class matrix on 9 inches needs ~110 dpi)
    return _finish(fig, path, dpi=int(max(110, np.ceil(1.25 * C / side))))


def _group_strips(top: Axes, left: Axes, ordered: list[str], key: Axes) -> None:
    """Colour strips of the classes' group labels (in display order) along the top and left of a heatmap; up to
    20 groups get a colour key in ``key``."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    uniq = list(dict.fromkeys(ordered))
    code = np.array([uniq.index(g) for g in ordered])
    palette = colormaps["tab20"].colors
    cmap = ListedColormap([palette[(2 * i) % 20 + (i // 10) % 2] for i in range(len(uniq))])  # dark tab20 first
    n = len(ordered)
    top.imshow(code[None, :], aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(uniq) - 0.5, interpolation="nearest",
               gid="groups")
    left.imshow(code[:, None], aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(uniq) - 0.5, interpolation="nearest",
                gid="groups")
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    ends = np.r_[starts[1:], n]
    # texts, not tick labels: the strips share their axis (and so its ticks) with the heatmap
    for a, b in zip(starts, ends):
        if b - a >= max(3, n / 40):
            top.text((a + b - 1) / 2, -0.7, ordered[a], rotation=90, ha="center", va="bottom", fontsize=7,
                     clip_on=False, gid="group_label")
    for ax in (top, left, key):
        ax.set_axis_off()
    if len(uniq) <= 20:
        key.legend(handles=[Patch(color=cmap(i), label=g) for i, g in enumerate(uniq)], loc="center", fontsize=7,
                   frameon=False, ncols=1 if len(uniq) <= 6 else 2, handlelength=1, columnspacing=0.8,
                   title="groups", title_fontsize=7)


def cluster_panels(
    similarity: np.ndarray,
    names: Sequence[str],
    labels_corr: np.ndarray | None = None,
    n_clusters: int | None = None,
    linkage: np.ndarray | None = None,
    max_panels: int = 6,
    max_size: int = 25,
    path: str | Path | None = None,
) -> Figure:
    """Zoom into clusters of classes: similarity sub-matrix beside label-correlation sub-matrix (paper Fig. 9).

    The dendrogram is cut into ``n_clusters`` flat clusters (default ``max(2, C // 8)``) and the
    ``max_panels`` most cohesive clusters of 2 to ``max_size`` classes are shown, each with class
    names, its class-similarity sub-matrix and, when ``labels_corr`` is given, the same classes'
    label correlation, so shared features that the labels miss stand out.
    """
    names = _check_names(names)
    C = len(names)
    s = _check_square(similarity, C, "similarity")
    lc = None if labels_corr is None else _check_square(labels_corr, C, "labels_corr")
    clusters = pick_clusters(s, n_clusters, linkage, max_panels, max_size)
    per_panel = 1 if lc is None else 2
    panels_per_row = 2 if len(clusters) > 1 else 1
    nrows = int(np.ceil(len(clusters) / panels_per_row))
    biggest = max(len(c) for c in clusters)
    # each cell at least 0.22 in (a value written in it up to 6 classes), plus room for the names on two sides
    side = float(np.clip(0.22 * biggest + 0.4, 1.4, 5.5))
    font = _tick_size(biggest)
    names_in = 0.6 * font / 72 * max(len(names[i]) for c in clusters for i in c)
    width = (side + names_in / per_panel) * per_panel * panels_per_row + 1.2
    fig = Figure(figsize=(width, (side + names_in + 0.5) * nrows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, per_panel * panels_per_row, squeeze=False))
    im = None
    for p, members in enumerate(clusters):
        r, c0 = divmod(p, panels_per_row)
        sub_names = [names[i] for i in members]
        sub = s[np.ix_(members, members)]
        off = sub[~np.eye(len(members), dtype=bool)]
        mean = float(np.nanmean(off)) if off.size and np.isfinite(off).any() else float("nan")
        ax = axes[r, c0 * per_panel]
        # "0.00" must fit a cell: about 2.4 characters of height at the font size
        annotation_size = float(np.clip(side / len(members) * 72 / 2.6, 5, 8))
        im = _heatmap(ax, sub, sub_names, annotate=len(members) <= 6, gid="cluster_similarity",
                      annotation_size=annotation_size)
        ax.set_title(f"cluster {p + 1}: {len(members)} classes\nsimilarity (mean {mean:.2f})", fontsize=9)
        if lc is not None:
            ax2 = axes[r, c0 * per_panel + 1]
            _heatmap(ax2, lc[np.ix_(members, members)], sub_names, annotate=len(members) <= 6, gid="cluster_labels",
                     annotation_size=annotation_size)
            ax2.tick_params(labelleft=False)  # the same classes in the same order as the panel on its left
            ax2.set_title("label correlation", fontsize=9)
    for ax in axes.ravel()[len(clusters) * per_panel:]:
        ax.set_axis_off()
    fig.colorbar(im, ax=list(axes.ravel()), shrink=0.6, label="correlation")
    return _finish(fig, path)


def dnase_association(
    similarity: np.ndarray,
    assays: Sequence[str],
    names: Sequence[str] | None = None,
    high: float | None = None,
    low: float | None = None,
    quantiles: tuple[float, float] = (0.15, 0.85),
    max_labels: int = 60,
    listed: int = 8,
    path: str | Path | None = None,
) -> Figure:
    """DNase association of TF and histone-mark outputs (paper Fig. 8).

    (a) The TF/histone x DNase block of the similarity matrix (DNase outputs on the y axis, as in the
    paper), bi-clustered: rows and columns each in the leaf order of an average-linkage tree on their
    Euclidean distances. (b) For every TF/histone output, its number of strong positive (red, up) and
    strong negative (blue, down) similarities with DNase outputs, sorted by the difference, so the
    outputs most associated with accessibility are on the left (counts and thresholds from
    :func:`deepresolve.similarity.dnase_association`: by default the 85 % and 15 % quantiles of all
    off-diagonal similarities; the paper's 0.52 and 0). With more than ``max_labels`` outputs the axes
    carry no names; the ``listed`` most positively and most negatively associated are named in panel b.

    Parameters
    ----------
    similarity : (C, C) array
    assays : sequence of str, length C
        Assay or target of each output; ``"DNase"`` marks the accessibility outputs.
    names : sequence of str, length C, optional
        Output names (default: the assays).
    """
    from scipy.cluster.hierarchy import leaves_list
    from scipy.cluster.hierarchy import linkage as tree

    from ..similarity import dnase_association as counts

    assays = _check_names(assays, "assays")
    C = len(assays)
    s = _check_square(similarity, C, "similarity")
    names = assays if names is None else _check_names(names)
    if len(names) != C:
        raise ArgumentError(f"names: expected one name per output ({C}), got {len(names)}")
    max_labels = check_int(max_labels, "max_labels", minimum=0)
    listed = check_int(listed, "listed", minimum=0)
    table = counts(s, assays, high=high, low=low, quantiles=quantiles)
    dnase = np.flatnonzero(np.asarray(assays) == "DNase")
    other = np.asarray(table.index)  # non-DNase outputs, by net association
    block = np.nan_to_num(s[np.ix_(dnase, other)])

    def order(m: np.ndarray) -> np.ndarray:
        return leaves_list(tree(m, method="average", metric="euclidean")) if len(m) > 1 else np.arange(len(m))

    rows, cols = dnase[order(block)], other[order(block.T)]
    n = len(other)
    fig = Figure(figsize=(min(max(8.0, 0.2 * n + 2.0), 16.0), 8.4), layout="constrained")
    heat, bars = fig.subplots(2, 1, height_ratios=[1.4, 1.0])
    lim = float(np.nanmax(np.abs(block))) if block.size else 1.0
    im = heat.imshow(s[np.ix_(rows, cols)], cmap=_DIVERGING, vmin=-(lim or 1.0), vmax=lim or 1.0, aspect="auto",
                     interpolation="nearest" if n <= 300 else "antialiased", gid="dnase_block")
    for axis, idx, ticks in ((heat.yaxis, rows, heat.set_yticks), (heat.xaxis, cols, heat.set_xticks)):
        if len(idx) <= max_labels:
            ticks(range(len(idx)))
            axis.set_ticklabels([names[i] for i in idx], fontsize=_tick_size(len(idx)),
                                rotation=90 if axis is heat.xaxis else 0)
        else:
            ticks([])
    heat.set_ylabel(f"{len(dnase)} DNase outputs")
    heat.set_xlabel(f"{n} TF / histone-mark outputs (bi-clustered)")
    heat.tick_params(length=0)
    fig.colorbar(im, ax=heat, label="similarity", shrink=0.8)
    heat.set_title("a  TF / histone-mark x DNase similarity, bi-clustered", fontsize=10, loc="left")

    x = np.arange(n)
    bars.bar(x, table["positive"], color=POSITIVE, width=1.0 if n > 100 else 0.8, gid="positive")
    bars.bar(x, -table["negative"], color=NEGATIVE, width=1.0 if n > 100 else 0.8, gid="negative")
    bars.axhline(0, color="#555555", lw=0.8)
    bars.set_xlim(-0.6, n - 0.4)
    bars.set_ylabel("DNase outputs")
    if n <= max_labels:
        bars.set_xticks(x)
        bars.set_xticklabels([names[i] for i in other], rotation=90, fontsize=_tick_size(n))
    else:
        bars.set_xticks([])
        bars.set_xlabel(f"{n} TF / histone-mark outputs, by (strong positive - strong negative)")
        k = min(listed, n // 2)
        for text, where in (("most positive:\n" + "\n".join(names[i] for i in other[:k]), (0.01, 0.02, "left")),
                            ("most negative:\n" + "\n".join(names[i] for i in other[n - k:]), (0.99, 0.98, "right"))):
            if k:
                bars.text(where[0], where[1], text, transform=bars.transAxes, ha=where[2],
                          va="bottom" if where[1] < 0.5 else "top", fontsize=7, gid="listed",
                          bbox=dict(facecolor="white", edgecolor="#cccccc", alpha=0.85))
    bars.set_title(f"b  strong positive (> {table.attrs['high']:.2f}, red) and strong negative "
                   f"(< {table.attrs['low']:.2f}, blue) similarities with DNase outputs", fontsize=10, loc="left")
    bars.spines[["top", "right"]].set_visible(False)
    return _finish(fig, path, dpi=int(max(110, np.ceil(1.25 * n / fig.get_figwidth()))))


# --------------------------------------------------------------------------- 5. class difference map

def difference(
    result: Result,
    i: int | str,
    j: int | str,
    top: int = 40,
    ax: Axes | None = None,
    path: str | Path | None = None,
    order: str = "auto",
    ofivs: bool = True,
) -> Figure:
    """Class difference map ``D = OFIV_i - OFIV_j``: channels favoured by ``i`` (red) or by ``j`` (blue).

    Up to ``top`` channels are drawn; with more channels the ``top`` channels by ``|D|`` are drawn.
    ``order``: "channel" (channel index), "difference" (by D, descending: ``i``'s channels left,
    ``j``'s right, the channels both use or neither uses in the middle) or "auto" (channel order
    when every channel is drawn, else by D). The title says when channels were left out.

    With ``ofivs`` (and no ``ax``), two rows above the bars show the two OFIVs themselves, circles
    with area ~ |OFIV|, red positive, blue negative (``gid`` ``"ofiv"``): a channel both classes
    use has large circles in both rows and a short bar; one only ``i`` uses, a circle in the first
    row and a long red bar.
    """
    result = check_result(result)
    a, b = result.index_of(i, "i"), result.index_of(j, "j")
    if a == b:
        raise ArgumentError(f"i, j: expected two different classes, got {result.class_names[a]!r} twice")
    top = check_int(top, "top", minimum=1)
    check_choice(order, "order", ("auto", "channel", "difference"))
    check_choice(ofivs, "ofivs", (True, False))
    d = np.asarray(result.ofiv[a], dtype=float) - np.asarray(result.ofiv[b], dtype=float)
    K = len(d)
    chosen = np.arange(K) if K <= top else np.sort(np.argsort(-np.abs(np.nan_to_num(d)), kind="stable")[:top])
    if order == "difference" or (order == "auto" and K > top):
        chosen = chosen[np.argsort(-d[chosen], kind="stable")]
    N = len(chosen)
    width = min(max(6.0, 0.25 * N + 2.0), 30.0)
    if ax is None and ofivs:
        fig = Figure(figsize=(width, 4.6), layout="constrained")
        gs = fig.add_gridspec(2, 1, height_ratios=[1.0, 3.6])
        ax = fig.add_subplot(gs[1])  # first: fig.axes[0] is the difference map
        rows = fig.add_subplot(gs[0], sharex=ax)
    else:
        fig, ax = _figure(ax, (width, 3.6))
        rows = None
    ax.bar(np.arange(N), d[chosen], color=_sign_colors(d[chosen]), width=0.8, gid="difference")
    ax.axhline(0, color="#555555", lw=0.8)
    ax.set_xticks(np.arange(N))
    ax.set_xticklabels([result.channel_names[k] for k in chosen], rotation=90, fontsize=_tick_size(N))
    ax.set_xlim(-0.6, N - 0.4)
    ax.set_ylabel("OFIV difference")
    na, nb = result.class_names[a], result.class_names[b]
    title = f"Difference map D = OFIV({na}) - OFIV({nb})\nred: favoured by {na}; blue: favoured by {nb}"
    if N < K:
        title += f"; top {N} of {K} channels by |D|"
    (rows or ax).set_title(title, fontsize=10, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if rows is not None:
        both = np.asarray(result.ofiv[[a, b]], dtype=float)[:, chosen]
        cell = min(width * 0.8 / max(N, 1), 0.3) * 72
        for y, values in enumerate(both):
            rows.scatter(np.arange(N), np.full(N, y), s=_area(values, _max_abs(both), (0.9 * cell) ** 2),
                         c=_sign_colors(values), edgecolors="none", gid="ofiv")
        rows.set_ylim(1.6, -0.6)
        rows.set_yticks([0, 1])
        rows.set_yticklabels([f"OFIV {na}", f"OFIV {nb}"], fontsize=8)
        rows.tick_params(length=0, labelbottom=False)
        for spine in rows.spines.values():
            spine.set_visible(False)
    return _finish(fig, path)


# --------------------------------------------------------------------------- 6. BIC (Fig S1)

def bic(result: Result, cls: int | str | None = None, histogram: bool | None = None,
        path: str | Path | None = None) -> Figure:
    """BIC of 1-3 component Gaussian mixtures on the IL scores (Additional file 1, Fig. S1).

    With ``cls`` (or a one-class result): the BIC curve of that class with the chosen number of
    components starred; infinite BICs (fits that were impossible) are labelled "not fitted". With several classes: a histogram of the chosen number of components over
    all classes (beside the curve when ``cls`` is given too, unless ``histogram=False``).
    """
    result = check_result(result)
    C = result.n_classes
    row = result.index_of(cls) if cls is not None else (0 if C == 1 else None)
    check_choice(histogram, "histogram", (True, False, None))
    show_hist = C > 1 if histogram is None else bool(histogram)
    if row is None and not show_hist:
        raise ArgumentError("histogram: False leaves nothing to draw without cls; pass cls or histogram=None")
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
    return _finish(fig, path)


# --------------------------------------------------------------------------- 7. convergence

def convergence(
    result: Result,
    classes: Sequence[int | str] | None = None,
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
    rows = _class_rows(result, classes)
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
        from matplotlib import colormaps

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
                import warnings

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
    return _finish(fig, path)
