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
``"gradient"`` (the default, ``"auto"``)
    Read the penalty as a trust region around its centre c (0 in the paper) and size the region by the head's own
    first-order behaviour there: with g_c = grad S_c(c), the optimum of the linearised objective
    ``S_c(c) + g_c . (H - c) - lambda ||H - c||^2`` is ``c + g_c / (2 lambda)`` and raises the class logit by
    ``||g_c||^2 / (2 lambda)``. The logit is a log-odds, in nats; lambda is set so that this predicted gain is one
    nat (an e-fold change of the odds): ``lambda = mean_c ||g_c||^2 / 2`` (one lambda for all classes, so their
    FIVs stay comparable). The ascent then explores the region where the head's response to H is of the order of
    its own unit, and the restarts are drawn over it (``init_scale = r / sqrt(D)``, r = ``1 / sqrt(mean_c
    ||g_c||^2)`` the linearised FIM's norm, D = number of elements of H). It needs nothing but the head: no
    inputs, any input type. Exactly scale-free: g scales by 1/s, lambda by 1/s^2, r by s. When the head is flat at
    the centre (every g_c = 0, e.g. an AND of features that are all off at 0) there is no first-order scale, and
    the policy falls back to "prior" (recorded as ``l2_policy = "prior (head flat at the centre)"``).
    What it trades: the restarts explore a region of about one nat of logit around the centre, so the FIVs lean
    towards the head's first-order response there, and non-additivity is seen where it acts within that region
    (on the 141 shared tf422 models: one model with a non-additive channel; the paper reports 2 of 422). Give a
    smaller lambda (or "prior") to explore farther.
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

#: Named lambda policies understood by :func:`choose_l2` (``"auto"`` is the default policy).
POLICIES = ("gradient", "prior", "norm")
DEFAULT_POLICY = "gradient"


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
        "gradient": mean_c ||grad S_c(c)||^2; "prior" and "norm": v, the mean per-element variance of the
        reference maps.
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
        key = "l2_mean_squared_gradient" if self.policy == "gradient" else "l2_reference_variance"
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


def gradient_l2(head: nn.Module, feature_shape: Sequence[int], classes: Sequence[int],
                center: torch.Tensor | None = None, *, device: torch.device | str = "cpu",
                batch_size: int = 256) -> tuple[float, float]:
    """lambda for which the linearised optimum at the penalty's centre raises the class logit by one nat.

    Parameters
    ----------
    head : nn.Module
        Maps H (N, *feature_shape) to class scores (N, C_all).
    feature_shape : tuple
    classes : list of int
    center : feature_shape tensor, optional
        The penalty's centre, where the gradients are taken (default 0).

    Returns
    -------
    lambda = mean_c ||grad S_c(center)||^2 / 2, and that mean squared gradient norm (0 when the head is flat there)
    """
    c = torch.zeros(tuple(feature_shape)) if center is None else center.float()
    head = head.to(device)
    total = 0.0
    for i in range(0, len(classes), batch_size):
        cls = torch.as_tensor(list(classes[i:i + batch_size]), device=device)
        h = c.to(device).expand(len(cls), *c.shape).clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(head(h).gather(1, cls[:, None]).sum(), h)  # row r: gradient of its own class
        total += float((g.double() ** 2).flatten(1).sum(dim=1).sum())
    g2 = total / len(classes)
    if not math.isfinite(g2):
        raise ModelError(f"the head's gradient at the penalty's centre is not finite ({g2})")
    return g2 / 2.0, g2


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
    policy : {"auto", "gradient", "prior", "norm"}
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
    if name == "gradient":
        lam, g2 = gradient_l2(head, feature_shape, classes, center, device=device)
        if g2 > 0:
            init = 1.0 / math.sqrt(g2 * math.prod(feature_shape))
            return L2Choice(lam, init, name, "head gradient at the centre", g2)
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
