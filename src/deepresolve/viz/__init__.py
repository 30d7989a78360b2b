"""Pictures of a result: :mod:`~deepresolve.viz.plot` (the paper's figures) and :mod:`~deepresolve.viz.report`
(one self-contained HTML report)."""
