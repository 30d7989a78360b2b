"""Batched gradient ascent on a feature map: the feature importance maps (FIM) of DeepResolve.

For every (class c, restart t) pair -- a *row* -- we maximise

    S_c(H) - lambda * ||H - center||^2

over the feature map H of the chosen layer, where S_c is the class-c logit computed by the head (the network
after the layer). H is unconstrained (negative values allowed, as in the paper) unless ``nonnegative=True``.
All rows run as one batched problem: each step is one forward/backward of the head over up to ``batch_size``
rows, each row scoring its own class. Rows that have converged leave the batch and pending rows take their
place, so the batch stays full until the work runs out.

The parts:

- :mod:`~deepresolve.ascent.options`: the table of settings (:data:`ASCENT_OPTIONS`, :data:`DEFAULTS`) and their
  check (:func:`check_ascent_options`);
- :mod:`~deepresolve.ascent.objective`: the objective, its gradient, :func:`evaluate`;
- :mod:`~deepresolve.ascent.optimizers`: the three step rules, by name;
- :mod:`~deepresolve.ascent.rows`: seeded starts, the batch's row state, the finished rows (:class:`RowTable`,
  :class:`AscentOutput`);
- :mod:`~deepresolve.ascent.fastconv`: the CPU fast path for convolutions' input gradients;
- :mod:`~deepresolve.ascent.engine`: :func:`feature_ascent`, the loop that ties them together.

Optimisers
----------
``"matched"`` (default)
    Gradient ascent with a per-row step ``eta / (2 lambda)``, ``eta`` starting at ``lr`` (default 1) and halved
    whenever a step lowers the row's objective (the step is then undone). For a head that is piecewise linear in H
    (ReLU, max-pool, dense layers: the usual genomic CNN) the step ``1 / (2 lambda)`` jumps straight to the optimum
    ``grad S_c / (2 lambda)`` of the current linear region, so rows converge in a handful of steps. A row has
    converged when its relative objective gain stays below ``tol`` for ``patience`` accepted steps.
``"bundle"``
    A cutting-plane (bundle) step that learns the kinks: every evaluation adds a *cut*, the linear piece
    ``S(H_i) + grad S(H_i) . (H - H_i)``, and the next point maximises the model ``min_i cut_i(H) - lambda
    ||H - center||^2``. Its maximiser is a convex combination of the cuts' matched points ``grad S(H_i) /
    (2 lambda)`` (the optimum on a kink is exactly such a combination), found by a QP over the ``cuts`` weights
    (default 6) solved exactly. With one cut it is the matched step. Where the head is concave around the optimum
    (the ReLU penalties that bind there) the model bounds the objective from above, so its maximum also tells how
    much gain is left. The head is not concave far away, so every cut is re-levelled at the best point to pass at
    least ``far lambda d^2`` above it (d the distance to where the cut was made), which keeps cuts from far points
    from cutting off the optimum; ``far`` starts at 0.1 and doubles (up to 1) at each step of the row that fails
    to improve. A row has converged when the model's maximum is within ``tol`` of the best objective, or no step
    gained more than ``tol`` for ``patience`` steps. Cost: 2 x cuts maps per row of memory and a few passes over
    them per step. On a head whose optimum lies on kinks it reaches the optimum in a few steps where "matched"
    halves its step on the kinks and stops short. At l2 = 1 on a DeepSEA-shaped head it takes about half the steps
    of "matched", each somewhat dearer, and with ``tol=1e-4`` finishes a many-class run first. It is not the
    default: at small lambda, where the optimum is far from the kinks' bias scale, it takes more steps than
    "matched" and ends lower. Figures: ``docs/ascent_figures.md``.
``"paper"``
    The paper's schedule: plain gradient ascent with ``lr = lr0 * max((step - start_decay) ** -decay, min_lr)``
    after ``start_decay`` steps, stopping when the objective has not improved for ``patience`` steps
    (defaults: lr0 = 0.1, start_decay = 500, decay = 0.2, min_lr = 1e-6, patience = 10, at most 10,000 steps).

Stopping on the answer
----------------------
With ``fiv_tol`` > 0 ("matched" and "bundle"; default 0, off) a step also counts as without gain when it moves the
row's FIV -- the spatial mean per channel of its best map, what OFIV, IL and class similarity are made of -- by at
most ``fiv_tol`` x its largest |FIV|; the row stops after ``patience`` such steps as after small objective gains.
On the DeepSEA-shaped head at the default lambda the FIVs settle well before the objective stops rising, and the
answer the summaries give does not move after that (``benchmarks/ascent_answer.py``; figures in
``docs/ascent_figures.md``).

Each optimiser is one step rule (:data:`~deepresolve.ascent.optimizers.STEP_RULES`) acting on the state of the
rows in the batch (:class:`~deepresolve.ascent.rows.Rows`: one tensor per quantity, rows on the first axis,
leaving and joining together). Every setting, with its default under each optimiser, its range and its meaning,
is one entry of :data:`ASCENT_OPTIONS`.

Batching
--------
Each row starts from a map that depends only on (seed, class, restart) and runs the same arithmetic in any batch,
so the same batch composition gives bit-identical results. But the head's matrix products round differently for
different batch shapes (BLAS picks its blocking by shape), and a row stops on a tolerance, so a rounding
difference can end a row a few steps earlier or later where the objective is nearly flat (on ReLU kinks).
Results therefore depend on ``batch_size`` -- and on which rows share a batch (class subset, resumed run) --
within this tolerance: **final objectives within 1e-3 relative ("bundle": 1e-2, measured up to 7.5e-3 on a
trained TF model at batch size 1, where its rows stop at nearby points of a flat ridge); FIVs (the spatial means
of the FIMs) within 5e-2 x the class's largest |FIV|; so every FIV larger than 10 % of its class's largest keeps
its sign**.
Single FIM entries along flat directions can move more, and step counts by a few. The tests check the statement
for batch_size 1, 5 and the default, for all three optimisers; measured margins are in ``docs/ascent_figures.md``.
"""

from .engine import feature_ascent
from .objective import evaluate
from .options import ASCENT_OPTIONS, DEFAULTS, OPTIMIZERS, PRECISIONS, AscentOption, Optimizer, check_ascent_options
from .rows import AscentOutput, RowTable, initial_maps, row_fivs, row_seed

__all__ = ["ASCENT_OPTIONS", "DEFAULTS", "OPTIMIZERS", "PRECISIONS", "AscentOption", "AscentOutput", "Optimizer",
           "RowTable", "check_ascent_options", "evaluate", "feature_ascent", "initial_maps", "row_fivs", "row_seed"]
