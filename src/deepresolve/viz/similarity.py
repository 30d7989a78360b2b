"""Class similarity figures: matrices side by side (paper Fig. 4b), the clustered heatmap with its dendrogram
(Fig. 7), cluster zooms (Fig. 9), the DNase association of DeepSEA's outputs (Fig. 8) and the class difference
map; and the display order they share (:func:`leaf_order`, :func:`pick_clusters`).

The similarities and the clustering for analysis are computed in :mod:`deepresolve.similarity`; here only what a
picture needs (the order of its rows, which clusters fit on the page).

Marks carry a ``gid``: the matrix's name in :func:`similarity_panels`, ``"similarity"``, ``"dendrogram"``,
``"groups"`` and ``"group_label"`` (group strips of a clustered heatmap), ``"cluster_similarity"``,
``"cluster_labels"``, ``"annotation"``, ``"dnase_block"``, ``"positive"``, ``"negative"``, ``"listed"``,
``"difference"``, ``"ofiv"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .._checks import check_choice, check_int
from ..errors import ArgumentError
from ..results import Result, check_result
from ._style import (
    DIVERGING,
    NEGATIVE,
    POSITIVE,
    check_names,
    check_square,
    figure_and_axes,
    finish,
    marker_area,
    max_abs,
    sign_colors,
    tick_size,
)

__all__ = ["SIMILARITY_TITLES", "cluster_panels", "clustered_heatmap", "difference", "dnase_association",
           "leaf_order", "pick_clusters", "similarity_panels"]

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


def _linkage(similarity: np.ndarray, linkage: np.ndarray | None, method: str) -> np.ndarray | None:
    """The given linkage (checked), or :func:`deepresolve.similarity.cluster_classes`' one; None below 2 classes."""
    from ..similarity import cluster_classes  # on use: it imports torch, which the figures need not

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


def leaf_order(similarity: np.ndarray, *, linkage: np.ndarray | None = None, method: str = "average") -> np.ndarray:
    """Row order of a similarity matrix that puts similar classes next to each other (dendrogram leaves).

    Distances are :func:`deepresolve.similarity.class_distance` (``1 - similarity``). A precomputed scipy
    ``linkage`` (or the :class:`deepresolve.similarity.Clustering` returned by
    :func:`deepresolve.similarity.cluster_classes`) is used as given.
    """
    from scipy.cluster.hierarchy import leaves_list

    s = check_square(similarity, None, "similarity")
    Z = _linkage(s, linkage, method)
    return np.arange(s.shape[0]) if Z is None else leaves_list(Z)


def pick_clusters(
    similarity: np.ndarray,
    *,
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

    s = check_square(similarity, None, "similarity")
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
    im = ax.imshow(m, cmap=DIVERGING, vmin=-vlim, vmax=vlim, interpolation=interpolation, aspect="equal", gid=gid)
    n = m.shape[0]
    if names is not None:
        fs = tick_size(n)
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


def similarity_panels(
    matrices: Mapping[str, np.ndarray],
    names: Sequence[str],
    *,
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
    names = check_names(names)
    if not isinstance(matrices, Mapping) or len(matrices) == 0:
        raise ArgumentError(f"matrices: expected a non-empty dict of name -> (C, C) array, got {matrices!r:.80}")
    C = len(names)
    panels: dict[str, np.ndarray] = {}
    for key, m in matrices.items():
        canonical = _SIMILARITY_ALIASES.get(str(key).lower(), str(key))
        if canonical in panels:
            raise ArgumentError(f"matrices: expected one matrix per measure, got {key!r}, which duplicates "
                                f"{canonical!r}")
        panels[canonical] = check_square(m, C, f"matrices[{key!r}]")
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
    return finish(fig, path)


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
    *,
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
    names = check_names(names)
    C = len(names)
    s = check_square(similarity, C, "similarity")
    if C == 0:
        raise ArgumentError("similarity: expected at least one class, got a 0 x 0 matrix")
    labels = None if groups is None else check_names(groups, "groups")
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
    return finish(fig, path, dpi=int(max(110, np.ceil(1.25 * C / side))))


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
    *,
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
    names = check_names(names)
    C = len(names)
    s = check_square(similarity, C, "similarity")
    lc = None if labels_corr is None else check_square(labels_corr, C, "labels_corr")
    clusters = pick_clusters(s, n_clusters=n_clusters, linkage=linkage, max_panels=max_panels, max_size=max_size)
    per_panel = 1 if lc is None else 2
    panels_per_row = 2 if len(clusters) > 1 else 1
    nrows = int(np.ceil(len(clusters) / panels_per_row))
    biggest = max(len(c) for c in clusters)
    # each cell at least 0.22 in (a value written in it up to 6 classes), plus room for the names on two sides
    side = float(np.clip(0.22 * biggest + 0.4, 1.4, 5.5))
    font = tick_size(biggest)
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
    return finish(fig, path)


def dnase_association(
    similarity: np.ndarray,
    assays: Sequence[str],
    *,
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

    from ..similarity import dnase_association as counts  # on use: it imports torch, which the figures need not

    assays = check_names(assays, "assays")
    C = len(assays)
    s = check_square(similarity, C, "similarity")
    names = assays if names is None else check_names(names)
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
    im = heat.imshow(s[np.ix_(rows, cols)], cmap=DIVERGING, vmin=-(lim or 1.0), vmax=lim or 1.0, aspect="auto",
                     interpolation="nearest" if n <= 300 else "antialiased", gid="dnase_block")
    for axis, idx, ticks in ((heat.yaxis, rows, heat.set_yticks), (heat.xaxis, cols, heat.set_xticks)):
        if len(idx) <= max_labels:
            ticks(range(len(idx)))
            axis.set_ticklabels([names[i] for i in idx], fontsize=tick_size(len(idx)),
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
        bars.set_xticklabels([names[i] for i in other], rotation=90, fontsize=tick_size(n))
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
    return finish(fig, path, dpi=int(max(110, np.ceil(1.25 * n / fig.get_figwidth()))))


def difference(
    result: Result,
    i: int | str,
    j: int | str,
    *,
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
        fig, ax = figure_and_axes(ax, (width, 3.6))
        rows = None
    ax.bar(np.arange(N), d[chosen], color=sign_colors(d[chosen]), width=0.8, gid="difference")
    ax.axhline(0, color="#555555", lw=0.8)
    ax.set_xticks(np.arange(N))
    ax.set_xticklabels([result.channel_names[k] for k in chosen], rotation=90, fontsize=tick_size(N))
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
            rows.scatter(np.arange(N), np.full(N, y), s=marker_area(values, max_abs(both), (0.9 * cell) ** 2),
                         c=sign_colors(values), edgecolors="none", gid="ofiv")
        rows.set_ylim(1.6, -0.6)
        rows.set_yticks([0, 1])
        rows.set_yticklabels([f"OFIV {na}", f"OFIV {nb}"], fontsize=8)
        rows.tick_params(length=0, labelbottom=False)
        for spine in rows.spines.values():
            spine.set_visible(False)
    return finish(fig, path)

