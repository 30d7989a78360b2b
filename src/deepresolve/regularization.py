"""Choosing lambda, the weight of DeepResolve's L2 penalty, without data from the user and without a scale.

DeepResolve maximises ``S_c(H) - lambda ||H||^2`` (the paper's Eq. 1). lambda has units of 1/H^2: if the layer's
activations are multiplied by s (weights into the layer times s, weights out of it divided by s -- the same
function), the same optimum, scaled by s, is reached with lambda / s^2. A fixed number is therefore no policy:
lambda = 1 means "stay very close to 0" for a layer whose activations are in the hundreds and "go far outside
anything the network ever produced" for one whose activations are in the hundredths. And the channel ranking
depends on lambda: at large lambda the optimum of a piecewise-linear head is grad S_c(0) / (2 lambda), a
linearisation at "nothing detected"; at small lambda the ascent runs far outside the range of real activations.

Policies (``resolve(..., l2=...)``; the chosen value is recorded in ``result.params``)
-------------------------------------------------------------------------------------
``"reach"`` (the default, ``"auto"``)
    Read the penalty as a trust region around its centre c (0 in the paper) and size the region by the head's own
    first-order behaviour there: with g_c = grad S_c(c), the optimum of the linearised objective
    ``S_c(c) + g_c . (H - c) - lambda ||H - c||^2`` is ``c + g_c / (2 lambda)`` and raises the class logit by
    ``||g_c||^2 / (2 lambda)`` nats (the logit is a log-odds). lambda is the largest for which this predicted gain
    is at least ``REACH_NATS`` = 8 nats for *every* class: ``lambda = min_c ||g_c||^2 / 16`` (one lambda for all
    classes, so their FIVs stay comparable). 8 nats is an odds ratio of about 3000, the step from "nothing
    detected" to "detected": at H = 0 the measured models' logits sit at -5 to -6 nats (median over the tf422
    models and over set III's classes), so the region reaches where each class would be called, to first order.
    The minimum, not the mean, because a class whose first-order response at the centre is weak is the one whose
    features are off there (an AND whose partners are all absent): with the mean, such a class's FIM hardly
    leaves the centre. The restarts are drawn at the size of the linearised optima (``init_scale =
    sqrt(mean_c ||g_c||^2) / (2 lambda sqrt(D))``, D = number of elements of H). It needs nothing but the head:
    no inputs, any input type. Exactly scale-free: g scales by 1/s, lambda by 1/s^2, the restarts' scale by s.
    Classes whose gradient is exactly 0 (flat at the centre) have no first-order scale and do not count; when
    every class is flat the policy falls back to "prior" (recorded as ``l2_policy = "prior (head flat at the
    centre)"``).

    Why (measured with ``benchmarks/tf_motif_recovery.py --rankings-only`` and ``benchmarks/set_three.py``; the
    gain G below is the mean class's linearised gain, lambda = mean_c ||g_c||^2 / (2 G)): the size of the region
    decides what the FIVs show, and two analyses pull it apart. A small region shows the head's first-order response
    at the centre, which ranks a TF model's known motif first (Tomtom p < 0.05) in 139-140 of the 141 shared tf422
    models for G = 1-8 (140 at 8), but 137 at G = 16, 135 at 64, 116 at 256 (the mean FIV ranks alike, and
    ``nonnegative=True`` does not lift it: 135 at 64): far from the centre other channels win. Set III's class
    similarity needs the opposite: its classes are conjunctions of motifs that the first-order response at 0 does
    not see, and OFIV+ similarity passes last-layer cosine (Spearman 0.60) only from G = 8-32 on, depending on the
    training seed (0.50-0.53 at G = 1, 0.63-0.66 at G = 64-1024). No single G does both. What does is that a
    multi-class head's classes differ: the weakest class's ||g_c||^2 is 8-13x below the mean on set III, so 8 nats
    for the weakest class is G = 64-105 there (Spearman 0.638 0.632 0.659 over 3 training seeds, cosine 0.604 0.602
    0.607), and exactly G = 8 for a single-class model (tf422: 140 of 141, non-additive channels in 9 models).
    What it trades: with many classes the weakest one sets the region for all (not measured beyond set III's 120
    classes); give ``"gradient"`` or a number to stay nearer the centre.
``"gradient"`` (the default before ``"reach"``)
    The same trust region for a one-nat mean gain: ``lambda = mean_c ||g_c||^2 / 2``, restarts at
    ``init_scale = 1 / sqrt(D mean_c ||g_c||^2)``; flat heads fall back to "prior" as above. It keeps the FIVs at
    the head's first-order response (tf422: 140 of 141; 1 model with non-additive channels, as in the authors'
    results for these models) and misses what acts beyond it (set III: Spearman 0.528 0.503 0.512, below
    last-layer cosine).
``"prior"``
    Read the penalty as a Gaussian log-prior on H and take its curvature from the Gaussian fitted to real feature
    maps: ``lambda ||H - c||^2`` is ``-log N(H; c, v I)`` up to a constant when ``lambda = 1 / (2 v)``, and the
    maximum-likelihood v of an isotropic Gaussian is the mean per-element variance of the maps,
    ``v = E ||H - E H||^2 / D`` (D = number of elements of H). lambda is thus the precision of the activations'
    natural variation: the ascent may move H about as far as real inputs move it, not farther. The centre c stays
    the paper's 0 (``l2_center="mean"`` moves it to the fitted mean, making the penalty exactly that Gaussian's
    log-density; lambda is the same either way). The class score is a logit, a log-odds in nats, so the objective
    adds two log-probabilities with no free constant. The random restarts are drawn with the same spread
    (``init_scale = sqrt(v)``). Closed form: no ascent, and exactly scale-free (v scales by s^2, so lambda by
    1/s^2 and the restarts' scale by s).

    Why the variance and not the raw second moment ``E ||H||^2 / D`` (the maximum-likelihood fit of a
    Gaussian held at 0): after ReLU and global max pooling every channel has a large constant offset (the max over
    100 positions of a random sequence is rarely 0) that says nothing about how far H varies; the second moment
    counts it and gives a lambda about 3x smaller, where the ascent leaves the range of real maps.
``"norm"``
    The paper's heuristic: lambda such that the FIM norm is comparable to (here: equals) the mean norm of real
    feature maps, found by a few short ascents (:func:`norm_matched_l2`).

"Real feature maps" are the layer's maps for the ``inputs`` the user gives (the paper's "a few realistic
inputs") or, when none are given, for uniform random one-hot DNA sequences (:func:`reference_inputs`), which every
genomic model accepts and which need no data from the user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._checks import check_int
from .ascent import feature_ascent
from .errors import ArgumentError, ModelError

#: Named lambda policies understood by :func:`choose_l2` (``"auto"`` is :data:`DEFAULT_POLICY`).
POLICIES = ("reach", "gradient", "prior", "norm")
DEFAULT_POLICY = "reach"
#: Logit gain (nats) of every class's linearised optimum under the "reach" policy.
REACH_NATS = 8.0


@dataclass
class L2Choice:
    """The lambda a policy chose, and the scale it was derived from.

    Attributes
    ----------
    l2 : float
        lambda.
    init_scale : float
        Standard deviation of the random restarts that goes with it.
    policy : str
        The policy that chose it.
    reference : str
        What it was derived from: "head gradient at the centre", "inputs (N=...)" or "random sequences (N=...)".
    scale : float
        "reach": min_c ||grad S_c(c)||^2 over the classes not flat there; "gradient": mean_c ||grad S_c(c)||^2;
        "prior" and "norm": v, the mean per-element variance of the reference maps.
    fim_norm : float or None
        "norm" only: the mean FIM norm reached at ``l2``.
    """

    l2: float
    init_scale: float
    policy: str
    reference: str
    scale: float
    fim_norm: float | None = None

    def params(self) -> dict:
        """The entries :func:`deepresolve.resolve` records in ``result.params``."""
        key = {"reach": "l2_min_squared_gradient", "gradient": "l2_mean_squared_gradient"}.get(
            self.policy, "l2_reference_variance")
        out = {"l2_policy": self.policy, "l2_reference": self.reference, key: self.scale}
        if self.fim_norm is not None:
            out["l2_fim_norm"] = self.fim_norm
        return out


def reference_inputs(input_shape: Sequence[int], n: int = 512, *, seed: int = 0) -> torch.Tensor:
    """Uniform random one-hot DNA sequences standing in for "a few realistic inputs".

    Parameters
    ----------
    input_shape : tuple
        The model's input shape without the batch axis, with exactly one axis of size 4 (the A, C, G, T one-hot
        axis): (4, L), (L, 4), or a Keras layout such as (4, 1, L).
    n : int
        Number of sequences.
    seed : int

    Returns
    -------
    (n, *input_shape) float32 tensor: one base per position along the size-4 axis, each with probability 1/4.
    """
    shape = check_reference_shape(input_shape)
    axes = [i for i, s in enumerate(shape) if s == 4]
    n = check_int(n, "n", minimum=2)
    gen = torch.Generator().manual_seed(seed)
    rest = shape[:axes[0]] + shape[axes[0] + 1:]
    bases = torch.randint(0, 4, (n, *rest), generator=gen)
    return torch.nn.functional.one_hot(bases, 4).float().movedim(-1, axes[0] + 1).contiguous()


def check_reference_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` if random one-hot DNA can be drawn for it: exactly one axis of size 4."""
    shape = tuple(int(s) for s in input_shape)
    if sum(s == 4 for s in shape) != 1 or any(s < 1 for s in shape):
        raise ArgumentError(f"input_shape: expected a one-hot DNA input with exactly one axis of size 4, such as "
                            f"(4, L), to draw random reference sequences, got {shape}; give inputs=<a few real "
                            "inputs> or a number for l2")
    return shape


def feature_maps(body: nn.Module, inputs: torch.Tensor | np.ndarray, device: torch.device | str = "cpu",
                 batch_size: int = 256) -> torch.Tensor:
    """The layer's maps H of ``inputs``: (N, *feature_shape) float32 on the CPU."""
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs, dtype=torch.float32)
    body = body.to(device)
    with torch.no_grad():
        return torch.cat([body(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


def mean_feature_norm(maps: torch.Tensor) -> float:
    """Mean over samples of the L2 (Frobenius) norm of each feature map; ``maps`` is (N, *feature_shape)."""
    return float(maps.flatten(1).norm(dim=1).mean())


def prior_l2(maps: torch.Tensor) -> tuple[float, float]:
    """lambda of the Gaussian fitted to real feature maps: ``1 / (2 v)``, ``v = E ||H - E H||^2 / D``.

    Parameters
    ----------
    maps : (N, *feature_shape) tensor, N >= 2

    Returns
    -------
    lambda, v
    """
    d = maps.flatten(1).double()
    v = float(((d - d.mean(dim=0)) ** 2).sum(dim=1).mean()) / d.shape[1]
    if not (v > 0 and math.isfinite(v)):
        raise ModelError(f"the reference feature maps have variance {v} (every input gives the same map): lambda "
                         "cannot be set from them; give other inputs or a number for l2")
    return 1.0 / (2.0 * v), v


def squared_gradients(head: nn.Module, feature_shape: Sequence[int], classes: Sequence[int],
                      center: torch.Tensor | None = None, *, device: torch.device | str = "cpu",
                      batch_size: int = 256) -> np.ndarray:
    """Each class's squared gradient norm at the penalty's centre, ``||grad S_c(center)||^2``.

    Parameters
    ----------
    head : nn.Module
        Maps H (N, *feature_shape) to class scores (N, C_all).
    feature_shape : tuple
    classes : list of int, length C
    center : feature_shape tensor, optional
        The penalty's centre, where the gradients are taken (default 0).

    Returns
    -------
    (C,) float64 array, 0 for a class whose score is flat at the centre.
    """
    c = torch.zeros(tuple(feature_shape)) if center is None else center.float()
    head = head.to(device)
    out = []
    for i in range(0, len(classes), batch_size):
        cls = torch.as_tensor(list(classes[i:i + batch_size]), device=device)
        h = c.to(device).expand(len(cls), *c.shape).clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(head(h).gather(1, cls[:, None]).sum(), h)  # row r: gradient of its own class
        out.append((g.double() ** 2).flatten(1).sum(dim=1).cpu().numpy())
    g2 = np.concatenate(out)
    if not np.isfinite(g2).all():
        raise ModelError(f"the head's gradient at the penalty's centre is not finite for classes "
                         f"{[int(classes[i]) for i in np.flatnonzero(~np.isfinite(g2))[:5]]}")
    return g2


def gradient_policy_l2(policy: str, squared: np.ndarray, size: int) -> L2Choice | None:
    """lambda and restart scale of the "reach" or "gradient" policy from the classes' squared gradient norms.

    Parameters
    ----------
    policy : {"reach", "gradient"}
    squared : (C,) array
        ``||grad S_c(center)||^2`` of each class (:func:`squared_gradients`).
    size : int
        D, the number of elements of H.

    Returns
    -------
    L2Choice, or None when every class is flat at the centre (no first-order scale).
    """
    live = squared[squared > 0]
    if not len(live):
        return None
    mean = float(squared.mean())
    if policy == "reach":  # every class gains at least REACH_NATS to first order
        lam, scale = float(live.min()) / (2.0 * REACH_NATS), float(live.min())
    else:  # the mean class gains one nat
        lam, scale = mean / 2.0, mean
    # restarts at the size of the linearised optima, sqrt(mean ||g_c||^2) / (2 lambda), spread over D elements
    return L2Choice(lam, math.sqrt(mean) / (2.0 * lam * math.sqrt(size)), policy, "head gradient at the centre", scale)


def norm_matched_l2(head: nn.Module, feature_shape: Sequence[int], classes: Sequence[int], target_norm: float,
                    *, start: float, max_classes: int = 16, restarts: int = 3, iterations: int = 3,
                    **ascent_kwargs) -> tuple[float, float]:
    """The paper's heuristic: lambda such that the mean FIM norm equals ``target_norm``.

    For a head that is piecewise linear in H the optimum is grad S_c / (2 lambda), so the FIM norm scales as
    1 / lambda; a few short ascents on a subset of classes, each rescaling lambda by (FIM norm / target), reach the
    target. ``start`` must itself be scale-free (e.g. the prior's lambda) for the result to be.

    Returns
    -------
    lambda, the mean FIM norm measured at that lambda
    """
    if not (target_norm > 0 and math.isfinite(target_norm)):
        raise ModelError(f"the mean reference feature-map norm is {target_norm}; l2='norm' needs inputs whose "
                         "feature maps are not all zero")
    subset = list(classes)[:: max(1, len(classes) // max_classes)][:max_classes]
    lam, norm = float(start), float("nan")
    for _ in range(iterations):
        out = feature_ascent(head, feature_shape, subset, restarts, lam, **ascent_kwargs)
        norm = float(out.fims.flatten(2).norm(dim=2).mean())
        if norm <= 0:
            raise ModelError(f"every FIM is zero at lambda = {lam:.3g}: the class scores do not depend on this layer")
        ratio = norm / target_norm
        lam *= ratio
        if abs(ratio - 1) < 0.02:
            break
    return lam, norm


def choose_l2(policy: str, head: nn.Module, body: nn.Module, feature_shape: Sequence[int], classes: Sequence[int],
              *, input_shape: Sequence[int] | None, inputs: torch.Tensor | np.ndarray | None = None,
              center: torch.Tensor | None = None, n_reference: int = 512, seed: int = 0,
              device: torch.device | str = "cpu", **ascent_kwargs) -> L2Choice:
    """Choose lambda (and the restarts' scale) by a named policy; see the module docstring.

    Parameters
    ----------
    policy : {"auto", "reach", "gradient", "prior", "norm"}
    head, body : nn.Module
        The split model (:func:`deepresolve.split_model`).
    feature_shape : tuple
        Shape of H without the batch axis.
    classes : list of int
        Classes being explained ("norm" ascends on up to 16 of them).
    input_shape : (4, L), optional
        Needed for random reference sequences ("prior", "norm") when ``inputs`` is None.
    inputs : (N, ...) tensor, optional
        Real inputs; when given they replace the random sequences.
    center : feature_shape tensor, optional
        The penalty's centre.
    n_reference : int
        Random reference sequences drawn when ``inputs`` is None.
    seed : int
        Seeds the reference sequences (and the "norm" ascents).
    **ascent_kwargs
        Passed to :func:`deepresolve.ascent.feature_ascent` by "norm" (optimizer, precision, ...).

    Returns
    -------
    L2Choice
    """
    name = DEFAULT_POLICY if policy == "auto" else policy
    if name not in POLICIES:
        raise ArgumentError(f"l2: expected a positive number or one of {('auto', *POLICIES)}, got {policy!r}")
    if name in ("reach", "gradient"):
        squared = squared_gradients(head, feature_shape, classes, center, device=device)
        choice = gradient_policy_l2(name, squared, math.prod(feature_shape))
        if choice is not None:
            return choice
    if inputs is None:
        if input_shape is None:
            raise ArgumentError(f"input_shape: expected (4, L) to draw random reference sequences for l2={policy!r} "
                                "without inputs, got None")
        inputs, reference = reference_inputs(input_shape, n_reference, seed=seed), f"random sequences (N={n_reference})"
    else:
        reference = f"inputs (N={len(inputs)})"
    maps = feature_maps(body, inputs, device)
    lam, variance = prior_l2(maps)
    sigma = math.sqrt(variance)
    if name != "norm":
        return L2Choice(lam, sigma, "prior" if name == "prior" else "prior (head flat at the centre)", reference,
                        variance)
    target = mean_feature_norm(maps)
    ascent_kwargs = {**ascent_kwargs, "init_scale": sigma, "center": center, "seed": seed, "device": device}
    lam, fim_norm = norm_matched_l2(head, feature_shape, classes, target, start=lam, **ascent_kwargs)
    return L2Choice(lam, sigma, name, reference, variance, fim_norm)
