"""From an ensemble of feature importance maps to per-channel summaries (paper, Methods).

- FIV (feature importance vector): phi_c^k, the spatial mean of FIM channel k.
- Restart weights: the final class scores, offset so that all are non-negative.
- IL (inconsistency level): the weighted variance of phi_c^k over restarts.
- Non-additive channels: Gaussian mixtures with 1, 2, 3 components are fitted to a class's IL scores and the
  lowest BIC wins; channels outside the lowest-mean component are non-additive.
- OFIV (overall feature importance vector): the weighted mean FIV; for non-additive channels whose sign is
  inconsistent across restarts, the weighted mean of the positive FIVs only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.mixture import GaussianMixture

from ._checks import Array, Choice, Float, Seed, check_choice, declare
from .errors import ArgumentError


def fiv(fims: np.ndarray) -> np.ndarray:
    """Feature importance vectors: spatial means of the FIMs.

    Parameters
    ----------
    fims : (..., K, W) array

    Returns
    -------
    (..., K) array
    """
    return np.asarray(fims).mean(axis=-1, dtype=np.float64)


def restart_weights(scores: np.ndarray) -> np.ndarray:
    """Weights of restarts: the class scores, shifted up by -min when any is negative (so all are >= 0).

    As in the authors' code, non-negative scores are used as they are. When every weight of a class is 0
    (all restarts scored the same negative value) the weights fall back to uniform.

    Parameters
    ----------
    scores : (..., T) array

    Returns
    -------
    (..., T) array
    """
    s = np.asarray(scores, dtype=np.float64)
    low = s.min(axis=-1, keepdims=True)
    w = np.where(low < 0, s - low, s)
    empty = w.sum(axis=-1, keepdims=True) <= 0
    return np.where(empty, 1.0, w)


def weighted_mean_var(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and (biased) weighted variance over the restart axis.

    Parameters
    ----------
    values : (T, K) array
    weights : (T,) array, non-negative, not all zero

    Returns
    -------
    mean, variance : (K,) arrays
    """
    w = np.asarray(weights, dtype=np.float64)[:, None]
    mean = (w * values).sum(axis=0) / w.sum()
    var = (w * (values - mean) ** 2).sum(axis=0) / w.sum()
    return mean, var


def inconsistency(fivs: np.ndarray, weights: np.ndarray, measure: str = "variance") -> np.ndarray:
    """Inconsistency level (IL) of every channel over restarts.

    The weighted variance of a channel's FIV splits exactly into a magnitude part and a sign part::

        Var(phi) = [E phi^2 - (E |phi|)^2] + [(E |phi|)^2 - (E phi)^2]

    ``measure="variance"`` (the paper's IL) is the whole; ``measure="sign"`` is the second bracket alone: zero for
    a channel whose sign never changes, however much its size varies, and large for a channel that is positive in
    some restarts and negative in others (XOR-like logic). Use "sign" when strong additive channels vary in size
    across restarts and out-vary the XOR pair.

    Parameters
    ----------
    fivs : (C, T, K) array
    weights : (C, T) array
    measure : {"variance", "sign"}

    Returns
    -------
    (C, K) array
    """
    check_choice(measure, "measure", ("variance", "sign"))
    out = []
    for f, w in zip(fivs, weights):
        mean, var = weighted_mean_var(f, w)
        if measure == "sign":
            magnitude, _ = weighted_mean_var(np.abs(f), w)
            var = np.clip(magnitude**2 - mean**2, 0.0, None)
        out.append(var)
    return np.stack(out)


@dataclass
class MixtureFit:
    """GMM model selection on one class's IL scores."""

    bic: np.ndarray           # (3,) BIC for 1, 2, 3 components (inf where the fit was impossible)
    n_components: int
    non_additive: np.ndarray  # (K,) bool


#: :func:`inconsistency` under a name that :func:`summarize`'s ``inconsistency=`` option does not hide.
_inconsistency_level = inconsistency


def fit_mixture(il: np.ndarray, *, seed: int = 0, floor: float = 0.0, max_components: int = 3) -> MixtureFit:
    """Fit 1..max_components Gaussian mixtures to IL scores, keep the lowest BIC.

    Channels not in the component with the lowest mean are non-additive. Scores at or below ``floor`` count as
    exactly 0 (restarts agreeing up to the ascent's precision); a mixture needs at least as many distinct scores as
    components, so larger mixtures get BIC = inf when there are fewer. scikit-learn's covariance regulariser
    (1e-6) sets the resolution, so pass scores in comparable units (:func:`summarize` passes relative ILs).

    Parameters
    ----------
    il : (K,) array of inconsistency levels
    seed : int
        scikit-learn's ``random_state``, fixed for reproducible fits.
    floor : float
        ILs at or below this are treated as 0.
    """
    x = np.asarray(il, dtype=np.float64).reshape(-1, 1)
    x = np.where(x <= floor, 0.0, x)
    bic = np.full(max_components, np.inf)
    labels: list[np.ndarray | None] = [None] * max_components
    means: list[np.ndarray | None] = [None] * max_components
    distinct = len(np.unique(x[:, 0]))
    for n in range(1, max_components + 1):
        if n > 1 and distinct < n:
            continue
        gmm = GaussianMixture(n_components=n, covariance_type="diag", random_state=seed)
        gmm.fit(x)
        bic[n - 1] = gmm.bic(x)
        labels[n - 1], means[n - 1] = gmm.predict(x), gmm.means_[:, 0]
    best = int(np.argmin(bic))
    if best == 0:
        return MixtureFit(bic, 1, np.zeros(len(x), dtype=bool))
    return MixtureFit(bic, best + 1, labels[best] != int(np.argmin(means[best])))


def sign_consistent(fivs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Whether every restart with non-zero weight gives a channel's FIV the same sign.

    Parameters
    ----------
    fivs : (T, K) array
    weights : (T,) array

    Returns
    -------
    (K,) bool
    """
    used = fivs[np.asarray(weights) > 0]
    return (used >= 0).all(axis=0) | (used <= 0).all(axis=0)


def ofiv(fivs: np.ndarray, weights: np.ndarray, non_additive: np.ndarray, consistent: np.ndarray) -> np.ndarray:
    """Overall feature importance vector of one class.

    Parameters
    ----------
    fivs : (T, K) array
    weights : (T,) array
    non_additive, consistent : (K,) bool

    Returns
    -------
    (K,) array
    """
    out, _ = weighted_mean_var(fivs, weights)
    for k in np.flatnonzero(non_additive & ~consistent):
        pos = fivs[:, k] > 0
        w = weights * pos
        # Inconsistent sign means some restart is positive; its weight may still be 0 (the worst restart).
        out[k] = (w * fivs[:, k]).sum() / w.sum() if w.sum() > 0 else fivs[pos, k].mean()
    return out


@declare(fims=Array(("C", "T", "K", "W")), scores=Array(("C", "T")), seed=Seed(),
         agreement=Float(minimum=0, below=1), inconsistency=Choice("variance", "sign"))
def summarize(fims: np.ndarray, scores: np.ndarray, *, seed: int = 0, agreement: float = 1e-3,
              inconsistency: str = "variance") -> dict[str, np.ndarray]:
    """All per-channel summaries of an ensemble of FIMs, keyed by their :class:`deepresolve.Result` field names.

    Parameters
    ----------
    fims : (C, T, K, W) array
    scores : (C, T) array of final class scores
    seed : int
        Seed of the mixture fits.
    agreement : float
        Restarts whose FIVs differ by less than this fraction of the class's RMS FIV reached the same optimum
        (up to the ascent's stopping tolerance): relative ILs below ``agreement**2`` count as 0, so the
        mixtures are not fitted to convergence noise.
    inconsistency : {"variance", "sign"}
        The inconsistency level: the paper's weighted variance, or its sign-disagreement part (see
        :func:`inconsistency`, the function of that name).

    Notes
    -----
    The mixtures are fitted to *relative* ILs, IL / (mean squared FIV of the class): dimensionless, so the fit does
    not depend on the units of the feature map or on lambda (FIMs scale as 1/lambda for piecewise-linear heads).
    With scikit-learn's covariance regulariser of 1e-6 this resolves channel disagreements down to about 0.1 %
    of the class's RMS FIV. (The authors' code fitted raw ILs, which ties the result to the scale of H.)
    """
    fims = np.asarray(fims)
    if np.shape(scores) != fims.shape[:2]:
        raise ArgumentError(f"scores: expected shape (C, T) = {fims.shape[:2]} to match fims, got {np.shape(scores)}")
    return summarize_fivs(fiv(fims), scores, seed=seed, agreement=agreement, inconsistency=inconsistency)


@declare(fivs=Array(("C", "T", "K")), scores=Array(("C", "T")), seed=Seed(),
         agreement=Float(minimum=0, below=1), inconsistency=Choice("variance", "sign"))
def summarize_fivs(fivs: np.ndarray, scores: np.ndarray, *, seed: int = 0, agreement: float = 1e-3,
                   inconsistency: str = "variance") -> dict[str, np.ndarray]:
    """:func:`summarize` from the FIVs alone: every summary needs only the FIMs' spatial means.

    For runs that do not keep the FIMs (``resolve(..., keep_fims=False)``): the maps are reduced to their FIVs
    as each row finishes, so memory is O(C T K) instead of O(C T K W).

    Parameters
    ----------
    fivs : (C, T, K) array
        Feature importance vectors (:func:`fiv` of the FIMs).
    scores : (C, T) array of final class scores
    seed, agreement, inconsistency
        As for :func:`summarize`.

    Returns
    -------
    dict
        As :func:`summarize`.
    """
    fivs, scores = np.asarray(fivs, dtype=np.float64), np.asarray(scores)
    if scores.shape != fivs.shape[:2]:
        raise ArgumentError(f"scores: expected shape (C, T) = {fivs.shape[:2]} to match fivs, got {scores.shape}")
    weights = restart_weights(scores)
    il = _inconsistency_level(fivs, weights, inconsistency)
    scale = (fivs**2).mean(axis=(1, 2))
    relative = il / np.where(scale > 0, scale, 1.0)[:, None]
    fits = [fit_mixture(x, seed=seed, floor=agreement**2) for x in relative]
    non_additive = np.stack([f.non_additive for f in fits])
    consistent = np.stack([sign_consistent(f, w) for f, w in zip(fivs, weights)])
    return {
        "fivs": fivs,
        "weights": weights,
        "inconsistency": il,
        "bic": np.stack([f.bic for f in fits]),
        "n_components": np.array([f.n_components for f in fits]),
        "non_additive": non_additive,
        "consistent_sign": consistent,
        "ofiv": np.stack([ofiv(f, w, n, c) for f, w, n, c in zip(fivs, weights, non_additive, consistent)]),
    }
