"""Pictures of a result.

- :mod:`~deepresolve.viz.plot` (``dr.plot``): every figure of a result under one name; the figures live in one
  module per family: :mod:`~deepresolve.viz.importance` (FIV ensemble, OFIVs), :mod:`~deepresolve.viz.similarity`
  (similarity matrices, clustering, DNase association, difference map), :mod:`~deepresolve.viz.diagnostics`
  (BIC, convergence) and :mod:`~deepresolve.viz.logos` (sequence logos).
- :mod:`~deepresolve.viz.interactions`: the feature-interaction figures (heatmap, truth tables).
- :mod:`~deepresolve.viz.report`: one self-contained HTML report.
"""
