"""Pictures of feature interactions (:class:`deepresolve.results.Interactions`, from :func:`deepresolve.interactions`).

As in :mod:`deepresolve.viz.plot`: figures are built without ``pyplot``, returned, and saved when ``path`` is given;
red = synergy (interaction > 0), blue = antagonism (< 0), grey = pair not evaluated; a pair is significant when its
Benjamini-Hochberg q-value is below the run's level (:class:`~deepresolve.results.Interactions`). Marks carry a
``gid``: ``"interaction"`` (the heatmap), ``"significant"`` (dots on significant pairs), ``"truth_table"``,
``"group_logo"`` (a motif group's PWM).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._checks import check_choice, check_int
from ..errors import ArgumentError
from ..results import Interactions
from ._style import DIVERGING, figure_and_axes, finish
from .similarity import leaf_order


def _check(res: object, level: str) -> Interactions:
    """``res`` if it is an Interactions result and ``level`` one of its levels."""
    if not isinstance(res, Interactions):
        raise ArgumentError(f"res: expected an Interactions result (deepresolve.interactions), got "
                            f"{type(res).__name__}")
    check_choice(level, "level", ("channel", "group"))
    return res


def _evaluated(res: Interactions, c: int, level: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The sub-matrix of the players that take part in at least one evaluated pair: (players, matrix, q, labels), q
    the q-values that decide significance."""
    pairs = res.pairs if level == "channel" else res.group_pairs
    m = (res.matrix if level == "channel" else res.group_matrix)[c]
    q = (res.qvalue if level == "channel" else res.group_qvalue)[c]
    names = res.channel_names if level == "channel" else res.group_names
    players = np.unique(pairs) if len(pairs) else np.zeros(0, int)
    return players, m[np.ix_(players, players)], q[np.ix_(players, players)], [names[k] for k in players]


def heatmap(res: Interactions, cls: int | str, *, level: str = "group", ax: Axes | None = None,
            path: str | Path | None = None) -> Figure:
    """Clustered heatmap of one class's interactions between the players that were paired.

    Rows and columns are ordered by average-linkage clustering of the players' interaction profiles (correlation
    of their rows), so players that interact with the same partners sit together; significant pairs (q-value below
    the run's level) get a dot.

    Parameters
    ----------
    res : Interactions
    cls : int or str
        Output index or class name.
    level : {"group", "channel"}
        Players are motif groups or channels; the (P, P) matrix drawn holds the P players of at least one pair.
    ax : Axes, optional
        Draw into this axes.
    path : str or Path, optional
        Save the figure here.
    """
    res = _check(res, level)
    c = res.index_of(cls)
    players, m, q, labels = _evaluated(res, c, level)
    if len(players) == 0:
        raise ArgumentError(f"cls: expected a class with at least one evaluated {level} pair, got {cls!r}")
    filled = np.nan_to_num(m)
    order = np.arange(len(players))
    if len(players) > 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.nan_to_num(np.corrcoef(filled + np.eye(len(players)) * np.abs(filled).max()))
        order = leaf_order(sim)
    m, q = m[np.ix_(order, order)], q[np.ix_(order, order)]
    labels = [labels[i] for i in order]
    size = 2.5 + 0.25 * len(players)
    fig, ax = figure_and_axes(ax, (size + 1.2, size))
    vmax = float(np.nanmax(np.abs(m))) or 1.0
    im = ax.imshow(np.ma.masked_invalid(m), cmap=DIVERGING, vmin=-vmax, vmax=vmax, interpolation="nearest")
    im.set_gid("interaction")
    sig = np.argwhere(np.nan_to_num(q, nan=1.0) < res.significance)
    if len(sig):
        ax.scatter(sig[:, 1], sig[:, 0], s=8, c="k", gid="significant")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(f"{res.class_names[c]}: {level} interactions ({res.params.get('scale')})", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.7, label="interaction (> 0 synergy, < 0 antagonism)")
    return finish(fig, path)


def truth_tables(res: Interactions, cls: int | str, *, top: int = 4, level: str = "group",
                 path: str | Path | None = None) -> Figure:
    """The 2 x 2 truth tables (mean output, player i off/on by player j off/on) of one class's ``top`` pairs.

    Pairs are ranked by |interaction| (:meth:`deepresolve.results.Interactions.table`); one panel per pair, on one
    grey scale, titled with the table's kind and the interaction (``*``: significant by q-value).
    """
    res = _check(res, level)
    top = check_int(top, "top", minimum=1)
    df = res.table(cls, level=level, top=top)
    if len(df) == 0:
        raise ArgumentError(f"cls: expected a class with at least one evaluated {level} pair, got {cls!r}")
    fig = Figure(figsize=(2.6 * len(df), 2.8), layout="constrained")
    axes = fig.subplots(1, len(df), squeeze=False)[0]
    tables = np.array([[[r.t00, r.t01], [r.t10, r.t11]] for r in df.itertuples()])
    lo, hi = float(tables.min()), float(tables.max())
    for ax, r, t in zip(axes, df.itertuples(), tables):
        im = ax.imshow(t, cmap="Greys", vmin=lo, vmax=hi if hi > lo else lo + 1)
        im.set_gid("truth_table")
        for (a, b), v in np.ndenumerate(t):
            ax.text(b, a, f"{v:.2g}", ha="center", va="center", color="w" if v > (lo + hi) / 2 else "k", fontsize=8)
        ax.set_xticks([0, 1], ["off", "on"])
        ax.set_yticks([0, 1], ["off", "on"])
        ax.set_xlabel(r.label_j, fontsize=7)
        ax.set_ylabel(r.label_i, fontsize=7)
        ax.set_title(f"{r.kind}\n{r.interaction:+.2g}{' *' if r.significant else ''}", fontsize=8)
    return finish(fig, path)


def group_logos(res: Interactions, *, path: str | Path | None = None) -> Figure:
    """The PWM of every motif group as the network reads it (``res.group_pwms``), one logo per row, titled with
    the group's word, channels and best JASPAR match (``res.group_matches``).

    Raises ArgumentError for a result without group PWMs (files written before they were kept).
    """
    res = _check(res, "group")
    if res.group_pwms is None:
        raise ArgumentError("res: expected an Interactions result with group PWMs, got one written before they were "
                            "kept (rerun deepresolve.interactions)")
    from .logos import logo_image

    G = res.n_groups
    fig = Figure(figsize=(4.5, 0.9 * max(G, 1) + 0.3), layout="constrained")
    axes = fig.subplots(max(G, 1), 1, squeeze=False)[:, 0]
    for g, (ax, name, match) in enumerate(zip(axes, res.group_names, res.group_best_matches)):
        pwm = res.group_pwms[g][:, res.group_pwms[g].sum(0) > 0]
        ax.imshow(logo_image(pwm), aspect="auto", interpolation="antialiased", gid="group_logo")
        ax.set_axis_off()
        ax.set_title(f"{g}: {name}" + (f"  ~ {match}" if match else ""), fontsize=8, loc="left")
    return finish(fig, path)
