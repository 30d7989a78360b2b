"""Sequence logos of (4, w) matrices (A, C, G, T rows), drawn with logomaker.

- :func:`logo_image`: one matrix as an RGBA image (cached by content).
- :func:`draw_logos`: a row of logos, one under each column of a figure (the ensemble figure's logo row).
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._checks import check_int
from ..errors import ArgumentError
from ._style import tick_size

__all__ = ["draw_logos", "logo_image"]


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


def logo_image(pwm: np.ndarray, *, dpi: int = 100) -> np.ndarray:
    """Render one (4, w) matrix as a sequence logo with logomaker and return it as an RGBA array.

    Logos are cached by content, so a report that draws the same channel for many classes renders
    its logo once (logomaker builds one patch per letter, which is slow). Probability matrices are
    drawn in bits on a fixed 0-2 scale, so logos of different channels are comparable.

    Parameters
    ----------
    pwm : (4, w) array
        A, C, G, T rows.
    dpi : int
        Resolution of the image.

    Returns
    -------
    (height, width, 4) uint8 array
        The logo, 0.75 inch high and ``max(0.5, 0.1 w)`` inches wide at ``dpi``.
    """
    import hashlib

    import logomaker
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    dpi = check_int(dpi, "dpi", minimum=1)
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



def draw_logos(ax: Axes, pwms: np.ndarray, channels: np.ndarray, names: list[str]) -> None:
    """Draw the logo of ``pwms[k]`` (``pwms``: (K, 4, w)) at x = j for the j-th channel k of ``channels``.

    ``names`` (length K) labels the columns; ``ax`` gets x ticks at 0 .. len(channels) - 1 and no y axis.
    """
    for j, k in enumerate(channels):
        ax.imshow(logo_image(pwms[k]), extent=(j - 0.42, j + 0.42, 0.02, 0.98), aspect="auto",
                  interpolation="antialiased", gid="logo")
    ax.set_ylim(0, 1)
    ax.set_xticks(np.arange(len(channels)))
    ax.set_xticklabels([names[k] for k in channels], rotation=90, fontsize=tick_size(len(channels)))
    ax.tick_params(axis="both", length=0)
    ax.set_yticks([])
    ax.set_ylabel("logo", rotation=0, ha="right", va="center", fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
