"""What every figure shares: the paper's colours, figure and save helpers, tick sizes and the argument checks.

Public names in a private module: the figure modules (:mod:`.importance`, :mod:`.similarity`,
:mod:`.diagnostics`, :mod:`.interactions`) import them; users import the colours from :mod:`.plot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from .._files import write_atomic
from ..errors import ArgumentError
from ..results import Result

POSITIVE = "#c8102e"  # red: channel pushes the class score up
NEGATIVE = "#1f5fbf"  # blue: channel pushes the class score down
STAR = "#f2b600"
#: Blue - white - red colour map of signed values (grey for NaN: a pair not evaluated).
DIVERGING = LinearSegmentedColormap.from_list("deepresolve_div", [NEGATIVE, "#f7f7f7", POSITIVE]).with_extremes(
    bad="#bdbdbd")
#: Light grey - black colour map of inconsistency levels.
IL_CMAP = LinearSegmentedColormap.from_list("deepresolve_il", ["#d9d9d9", "#111111"])


def class_rows(result: Result, classes: Sequence[int | str] | int | str | None) -> list[int]:
    """Rows of ``classes`` (output indices or class names; None: every class) in ``result``'s arrays."""
    if classes is None:
        return list(range(result.n_classes))
    if isinstance(classes, (str, int, np.integer)):
        classes = [classes]
    rows = [result.index_of(c, "classes") for c in classes]
    if not rows:
        raise ArgumentError("classes: expected at least one class, got an empty sequence")
    return rows


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A new ``figsize`` figure with one axes (no pyplot), or ``ax`` and its figure when ``ax`` is given."""
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise ArgumentError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax.figure, ax


def finish(fig: Figure, path: str | Path | None, dpi: int = 110) -> Figure:
    """Save ``fig`` to ``path`` (atomically, parent folders created) when a path is given; return ``fig``.

    The format follows the file's suffix; without one the figure is saved as ``<path>.png`` (matplotlib's
    default format), as :meth:`matplotlib.figure.Figure.savefig` does. A suffix matplotlib cannot write is an
    ArgumentError.
    """
    if path is not None:
        path = Path(path)
        fmt = path.suffix[1:].lower()
        if not fmt:
            fmt = rcParams["savefig.format"]
            path = path.with_name(path.name.rstrip(".") + "." + fmt)
        supported = fig.canvas.get_supported_filetypes()
        if fmt not in supported:
            raise ArgumentError(f"path: expected a file name ending in a format matplotlib writes "
                                f"({', '.join('.' + k for k in sorted(supported))}), got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        # savefig to a file object needs the format spelled out (it cannot see the file name)
        write_atomic(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight"))
    return fig


def sign_colors(values: np.ndarray) -> np.ndarray:
    """Red for values >= 0, blue below, element by element (shape of ``values``)."""
    return np.where(np.asarray(values) >= 0, POSITIVE, NEGATIVE)


def marker_area(values: np.ndarray, scale: float, max_area: float) -> np.ndarray:
    """Marker areas proportional to ``|values| / scale``; 0 where the value is 0 or not finite."""
    v = np.nan_to_num(np.abs(np.asarray(values, dtype=float)), nan=0.0)
    if scale <= 0 or not np.isfinite(scale):
        return np.zeros_like(v)
    return max_area * np.clip(v / scale, 0, 1)


def max_abs(values: np.ndarray) -> float:
    """Largest finite ``|value|``; 0 when there is none."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


def check_square(matrix: object, n: int | None, argument: str) -> np.ndarray:
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


def check_names(names: Sequence[str], argument: str = "names") -> list[str]:
    """``names`` (a sequence of labels, not one string) as a list of str."""
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise ArgumentError(f"{argument}: expected a sequence of class names, got {type(names).__name__}")
    return [str(n) for n in names]


def tick_size(n: int) -> float:
    """Font size of ``n`` tick labels on one axis: 10 points for a few, down to 6 for many."""
    return float(np.clip(260 / max(n, 1), 6, 10))
