"""The three step rules of the ascent, registered by name in :data:`STEP_RULES`.

Each rule takes the batch's rows (:class:`~deepresolve.ascent.rows.Rows`) just evaluated at ``rows.h`` -- class
scores ``s`` (B,), objectives ``obj`` (B,) and the objective's gradients ``g`` (B, *F) -- with the optimiser's
settings ``opts`` (:func:`~deepresolve.ascent.options.check_ascent_options`), lambda ``l2`` and the penalty's
``center``; it records the evaluation, moves ``rows.h`` to the next point and returns the rows that are done, a
(B,) bool tensor. What each rule does is described in :mod:`deepresolve.ascent`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .rows import Rows

#: (rows, s, obj, g, opts, l2, center) -> done
StepRule = Callable[[Rows, torch.Tensor, torch.Tensor, torch.Tensor, dict, float, "torch.Tensor | None"], torch.Tensor]


def _per_row(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ...) broadcastable against ``like``."""
    return x.view(-1, *[1] * (like.dim() - 1))


def _record(rows: Rows, s: torch.Tensor, obj: torch.Tensor, improved: torch.Tensor, g: torch.Tensor | None) -> None:
    """Keep the point just evaluated as each row's best where it ``improved``, with its gradient ``g`` unless None
    (an optimiser that never reads ``best_g``); count the step."""
    keep = _per_row(improved, rows.h)
    rows.best_h = torch.where(keep, rows.h, rows.best_h)
    if g is not None:
        rows.best_g = torch.where(keep, g, rows.best_g)
    rows.best_s = torch.where(improved, s, rows.best_s)
    rows.best_obj = torch.where(improved, obj, rows.best_obj)
    rows.count = rows.count + 1


def _fiv_settled(rows: Rows, improved: torch.Tensor, fiv_tol: float) -> torch.Tensor:
    """(B,) bool: the rows whose step ``improved`` and moved their FIV (the spatial mean per channel of the best map)
    by at most ``fiv_tol`` x its largest |FIV|; none where ``fiv_tol`` is 0 (off). Called before :func:`_record`,
    while ``rows.best_h`` is still the previous best (at a row's first evaluation its start, which is no step)."""
    if not fiv_tol:
        return torch.zeros_like(improved)
    B, K = rows.h.shape[:2]
    new, old = (x.reshape(B, K, -1).mean(-1) for x in (rows.h, rows.best_h))
    return improved & (rows.count > 0) & ((new - old).abs().amax(1) <= fiv_tol * new.abs().amax(1))


def step_matched(rows: Rows, s: torch.Tensor, obj: torch.Tensor, g: torch.Tensor, opts: dict, l2: float,
                 center: torch.Tensor | None) -> torch.Tensor:
    """One "matched" step of every row from its evaluation at ``rows.h``; returns the rows that are done.

    A step is accepted unless it lowered the objective beyond float32 noise; a rejected step is undone and retried
    at half the step size. Converged: the gain stayed below tol (or, with ``fiv_tol``, the FIV moved by at most
    fiv_tol x its largest |FIV|) for ``patience`` accepted steps. Gains are relative to the size of the objective's
    two terms, |S| + lambda ||H||^2: the objective itself can be close to 0 when they cancel.
    """
    scale = (s.abs() + (s - obj)).clamp_min(1e-12)
    improved = obj >= rows.best_obj - 1e-6 * scale
    small = improved & ((obj - rows.best_obj <= opts["tol"] * scale) | _fiv_settled(rows, improved, opts["fiv_tol"]))
    rows.stall = torch.where(improved, torch.where(small, rows.stall + 1, torch.zeros_like(rows.stall)), rows.stall)
    rows.eta = torch.where(improved, rows.eta, rows.eta * 0.5)
    _record(rows, s, obj, improved, g)
    # Step from each row's best point (after a rejected step that is where the row restarts).
    rows.h = rows.best_h + _per_row(rows.eta / (2.0 * l2), rows.h) * rows.best_g
    return (rows.stall >= opts["patience"]) | (rows.eta < 1e-8) | (rows.count >= opts["steps"])


#: "bundle": a cut from a point at distance d from the best point is raised there by at least far x lambda x d^2,
#: so that cuts from far away, where the head is not concave, stop binding near the optimum. ``far`` starts at
#: BUNDLE_FAR and doubles, up to BUNDLE_FAR_MAX, at each step of the row that fails to improve: the model trusted
#: far cuts too much there.
BUNDLE_FAR, BUNDLE_FAR_MAX = 0.1, 1.0


def _dots(vectors: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, k, F) . (B, F) -> (B, k) float64 (a float32 batched matrix product: these sums need no more). Written as
    v' V' rather than V v: the same product, faster on the CPU."""
    return torch.bmm(v[:, None, :], vectors.transpose(1, 2)).squeeze(1).double()


#: "bundle": rows per chunk in :func:`cut_products`, whose buffer is reused from chunk to chunk.
CHUNK = 16


def cut_products(cut_a: torch.Tensor, a0: torch.Tensor, best_u: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the cut differences d_i = a_i - a0, a0 and best_u, chunk by chunk of rows.

    cut_a (B, k, F), a0 and best_u (B, F); returns (B, k + 2, k + 2) float64: entry (i, j) is v_i . v_j for
    v = (d_1, ..., d_k, a0, best_u). The differences are formed in a small reused buffer: a (B, k, F) temporary
    costs more (its fresh pages) than the products themselves.
    """
    B, k, F = cut_a.shape
    out = cut_a.new_empty(B, k + 2, k + 2)
    work = cut_a.new_empty(min(B, CHUNK), k + 2, F)
    for lo in range(0, B, CHUNK):
        hi = min(lo + CHUNK, B)
        w = work[:hi - lo]
        torch.sub(cut_a[lo:hi], a0[lo:hi, None], out=w[:, :k])
        w[:, k] = a0[lo:hi]
        w[:, k + 1] = best_u[lo:hi]
        torch.bmm(w, w.transpose(1, 2), out=out[lo:hi])
    return out.double()


def _simplex_qp(G: torch.Tensor, c: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Minimise ``0.5 w'Gw + c'w`` over the simplex of the ``valid`` entries, exactly, for each row.

    G (B, k, k), c (B, k) float64, valid (B, k) bool with at least one True per row; returns w (B, k).
    The optimum lies in the relative interior of one face; each face's equality-constrained optimum is one small
    KKT solve, and the best feasible one wins (k is small: 2^k - 1 faces).
    """
    B, k = c.shape
    faces = torch.tensor([[(f >> i) & 1 for i in range(k)] for f in range(1, 2 ** k)], dtype=torch.bool,
                         device=c.device)
    n = len(faces)
    eye = torch.eye(k, dtype=G.dtype, device=G.device)
    on = faces[None, :, :, None] & faces[None, :, None, :]
    # A tiny ridge keeps faces with repeated cuts solvable (any optimum of such a face is as good).
    ridge = 1e-12 * G.diagonal(dim1=1, dim2=2).abs().amax(1).clamp_min(1e-300)
    kkt = torch.zeros(B, n, k + 1, k + 1, dtype=G.dtype, device=G.device)
    kkt[..., :k, :k] = (torch.where(on, G[:, None], 0.0) + ridge[:, None, None, None] * eye
                        + (~faces).to(G.dtype)[None, :, :, None] * eye)
    kkt[..., :k, k] = faces.to(G.dtype)
    kkt[..., k, :k] = faces.to(G.dtype)
    rhs = torch.zeros(B, n, k + 1, dtype=G.dtype, device=G.device)
    rhs[..., :k] = torch.where(faces[None], -c[:, None], 0.0)
    rhs[..., k] = 1.0
    w = torch.linalg.solve(kkt, rhs)[..., :k]
    feasible = (w >= -1e-9).all(-1) & ~(faces[None] & ~valid[:, None]).any(-1)
    w = w.clamp_min(0.0)
    q = 0.5 * torch.einsum("bni,bij,bnj->bn", w, G, w) + (w * c[:, None]).sum(-1)
    w = w[torch.arange(B, device=c.device), torch.where(feasible, q, torch.inf).argmin(1)]
    return w / w.sum(1, keepdim=True)


def step_bundle(rows: Rows, s: torch.Tensor, obj: torch.Tensor, g: torch.Tensor, opts: dict, l2: float,
                center: torch.Tensor | None) -> torch.Tensor:
    """One "bundle" step of every row from its evaluation at ``rows.h``; returns the rows that are done.

    The evaluation adds a cut (S's value and gradient at the point); the next point is the maximiser of the model
    min_i cut_i(H) - lambda ||H - center||^2, a convex combination of the cuts' matched points found by a small
    QP over the cut weights. Converged: the model's optimum is within tol (relative) of the best objective, or no
    step gained more than tol (or, with ``fiv_tol``, moved the FIV by more than fiv_tol x its largest |FIV|) for
    ``patience`` steps.
    """
    n_rows, k = rows.cut_w.shape
    ar = torch.arange(n_rows, device=s.device)
    u = (rows.h if center is None else rows.h - center).flatten(1)
    a = torch.add(g.flatten(1), u, alpha=2.0 * l2)  # gradient of S
    scale = (s.abs() + (s - obj)).clamp_min(1e-12).double()
    gain = obj.double() - rows.best_obj.double()
    improved = gain > 0
    gained = (gain > opts["tol"] * scale) & ~_fiv_settled(rows, improved, opts["fiv_tol"])
    rows.stall = torch.where(gained, torch.zeros_like(rows.stall), rows.stall + 1)
    # The new cut takes a free slot; the previous step left one (it merged cuts when the bundle was full).
    slot = torch.isnan(rows.cut_w).double().argmax(1)
    rows.cut_a[ar, slot] = a
    rows.cut_x[ar, slot] = u
    rows.cut_c[ar, slot] = s.double() - (a * u).sum(1).double()
    rows.cut_xx[ar, slot] = u.square().sum(1).double()
    rows.cut_w[ar, slot] = 0.0
    _record(rows, s, obj, improved, None)
    valid = ~torch.isnan(rows.cut_w)
    best_u = (rows.best_h if center is None else rows.best_h - center).flatten(1)
    # The best point's own cut (the one whose point is nearest to it) anchors the model.
    dist2 = rows.cut_xx - 2.0 * _dots(rows.cut_x, best_u) + best_u.square().sum(1).double()[:, None]
    dist2 = torch.where(valid, dist2.clamp_min(0.0), torch.inf)
    anchor = dist2.argmin(1)
    # Model optimum: H - center = sum_i w_i a_i / (2 lambda), w minimising the dual
    # ||sum_i w_i a_i||^2 / (4 lambda) + sum_i w_i c_i over the simplex; written with d_i = a_i - a_anchor
    # (sum_i w_i = 1) so that the nearly equal gradients do not cancel in the Gram matrix (from the raw float32
    # Gram matrix of the a_i, results moved about ten times more between batch sizes: docs/ascent_figures.md).
    a0 = rows.cut_a[ar, anchor]
    products = cut_products(rows.cut_a, a0, best_u)
    gram, d_a0, d_best = products[:, :k, :k], products[:, :k, k], products[:, :k, k + 1]
    # Re-level every cut at the best point: at least exact there, and raised by far lambda d^2 for a cut made at
    # distance d, so that cuts from far away (where S need not be concave) do not cut off the optimum.
    best_s = rows.best_s.double()
    level = rows.cut_c + d_best + products[:, k, k + 1, None]
    rows.far = torch.where(improved, rows.far, (2.0 * rows.far).clamp_max(BUNDLE_FAR_MAX))
    err = torch.maximum(level - best_s[:, None], rows.far[:, None] * l2 * dist2.nan_to_num(posinf=0.0))
    rows.cut_c = torch.where(valid, rows.cut_c + best_s[:, None] + err - level, rows.cut_c)
    gram = gram / (2.0 * l2)
    lin = rows.cut_c + d_a0 / (2.0 * l2)
    top = products[:, k, k]
    w = _simplex_qp(gram, lin, valid)
    model = 0.5 * torch.einsum("bi,bij,bj->b", w, gram, w) + (w * lin).sum(1) + top / (4.0 * l2)
    target = torch.bmm((w / (2.0 * l2)).to(a.dtype)[:, None], rows.cut_a).squeeze(1)
    rows.cut_w = torch.where(valid, w, np.nan)
    # A full bundle frees a slot for the next step's cut: it drops its least-weighted cut (never the anchor), or,
    # where that cut has weight, merges it with the next least-weighted into their weighted mean, which the model
    # keeps as one cut (a cut of weight 0 merges into the other unchanged: dropping it is the same and cheaper).
    full = valid.all(1)
    if full.any():
        order = torch.where(torch.arange(k, device=s.device)[None] == anchor[:, None], np.inf, w).argsort(1)
        drop = order[:, 0]
        merge = torch.nonzero(full & (w[ar, drop] > 0)).squeeze(1)
        if len(merge):
            i, j = drop[merge], order[merge, 1]
            wi, wj = w[merge, i], w[merge, j]
            frac = wi / (wi + wj)
            for cuts in (rows.cut_a, rows.cut_x):
                cuts[merge, j] = torch.lerp(cuts[merge, j], cuts[merge, i], frac.to(cuts.dtype)[:, None])
            rows.cut_c[merge, j] = torch.lerp(rows.cut_c[merge, j], rows.cut_c[merge, i], frac)
            merged = rows.cut_x[merge, j]
            rows.cut_xx[merge, j] = merged.square().sum(1).double()
            rows.cut_w[merge, j] = wi + wj
        rows.cut_w[ar, drop] = torch.where(full, np.nan, rows.cut_w[ar, drop])
    rows.h = torch.lerp(best_u, target, opts["lr"]).view_as(rows.h)
    if center is not None:
        rows.h = rows.h + center
    converged = (model - rows.best_obj.double() <= opts["tol"] * scale) & (rows.count > 1)
    return converged | (rows.stall >= opts["patience"]) | (rows.count >= opts["steps"])


def step_paper(rows: Rows, s: torch.Tensor, obj: torch.Tensor, g: torch.Tensor, opts: dict, l2: float,
               center: torch.Tensor | None) -> torch.Tensor:
    """One step of the paper's schedule for every row from its evaluation at ``rows.h``; returns the rows that are done.

    Plain ascent moves on from where it is, improving or not, as the original code does; the rate decays as
    ``lr * max((step - start_decay) ** -decay, min_lr)`` after ``start_decay`` steps.
    """
    improved = obj > rows.best_obj
    rows.stall = torch.where(improved, torch.zeros_like(rows.stall), rows.stall + 1)
    h = rows.h
    _record(rows, s, obj, improved, None)
    k = rows.count.double()
    factor = torch.clamp((k - opts["start_decay"]).clamp_min(1.0) ** (-opts["decay"]), min=opts["min_lr"])
    rate = torch.where(k > opts["start_decay"], opts["lr"] * factor, torch.full_like(factor, opts["lr"]))
    rows.h = h + _per_row(rate.to(h.dtype), h) * g
    return (rows.stall >= opts["patience"]) | (rows.count >= opts["steps"])


#: The step rule of each optimiser (the choices of ``ASCENT_OPTIONS["optimizer"]``).
STEP_RULES: dict[str, StepRule] = {"matched": step_matched, "bundle": step_bundle, "paper": step_paper}
