"""Pictures of a DeepResolve result (matplotlib; safe without a display): every figure, under one name.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global
figure registry, so thousands of figures can be made in one process) and saves it when ``path``
is given (atomically, in the format of the file's suffix). Functions that draw on a single axes
also accept ``ax``. Arguments after the data (the result and the classes it is about, or the matrices
and their names) are keyword-only.

Colours follow the paper: red = positive contribution, blue = negative contribution.
Plots take arrays and draw them; the science (similarities, clustering for analysis) lives in
:mod:`deepresolve.similarity`. The only computation here is what a picture needs (ordering rows
of a heatmap by a dendrogram, picking which channels fit on the page).

The figures live in one module per family; this module gathers them (``dr.plot``):

- :mod:`~deepresolve.viz.importance`: :func:`ensemble` (Fig. 2), :func:`ofivs` (Fig. 4a).
- :mod:`~deepresolve.viz.similarity`: :func:`similarity_panels` (Fig. 4b), :func:`clustered_heatmap` (Fig. 7),
  :func:`cluster_panels` (Fig. 9), :func:`dnase_association` (Fig. 8), :func:`difference`, and the display
  order :func:`leaf_order`, :func:`pick_clusters`.
- :mod:`~deepresolve.viz.diagnostics`: :func:`bic` (Fig. S1), :func:`convergence`.
- :mod:`~deepresolve.viz.logos`: :func:`logo_image`.
- :mod:`~deepresolve.viz.interactions`: the feature-interaction figures (not gathered here).

Marks carry a ``gid`` so that they can be found again (tests, post-processing); each module lists its own.
"""

from ._style import NEGATIVE, POSITIVE
from .diagnostics import bic, convergence
from .importance import ensemble, ofivs
from .logos import logo_image
from .similarity import SIMILARITY_TITLES as SIMILARITY_TITLES  # the panel titles; public, not in __all__
from .similarity import (
    cluster_panels,
    clustered_heatmap,
    difference,
    dnase_association,
    leaf_order,
    pick_clusters,
    similarity_panels,
)

__all__ = [
    "ensemble", "ofivs", "similarity_panels", "clustered_heatmap", "cluster_panels",
    "difference", "dnase_association", "bic", "convergence", "pick_clusters", "leaf_order", "logo_image", "POSITIVE",
    "NEGATIVE",
]
