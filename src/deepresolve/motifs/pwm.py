"""Position weight matrices from numbers: filter weights, optimised inputs, counts.

:func:`filter_pwms` converts first-layer convolution filters to PWMs the way the DeepResolve authors did (clip
negative weights, normalise each column to sum 1, all-zero columns become uniform). All PWMs are numpy arrays
``(4, width)`` in A, C, G, T order; sets of PWMs are ``(K, 4, width)`` arrays or lists.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from .._checks import BadValue, Float, Int, OptionalOf, Spec, check_int, declare
from .._model import Model, is_a
from ..errors import ArgumentError, ModelError

ALPHABET = "ACGT"


# --------------------------------------------------------------------------------------------------------------
# PWMs from numbers


def check_pwm(pwm: np.ndarray, what: str = "pwm") -> np.ndarray:
    """``pwm`` as a float64 (4, width) array of finite numbers; ArgumentError naming ``what`` otherwise."""
    try:
        pwm = np.asarray(pwm, dtype=np.float64)
    except (ValueError, TypeError):
        raise ArgumentError(f"{what}: expected a (4, width) array in A, C, G, T order, got "
                            f"{type(pwm).__name__} {pwm!r:.60}") from None
    if pwm.ndim != 2 or pwm.shape[0] != 4 or pwm.shape[1] == 0:
        raise ArgumentError(f"{what}: expected a (4, width) array in A, C, G, T order, got shape {pwm.shape}")
    if not np.isfinite(pwm).all():
        raise ArgumentError(f"{what}: expected finite numbers, got NaN or infinite values")
    return pwm


class Pwms(Spec):
    """PWMs: a non-empty list of (4, width) arrays or a (K, 4, width) array (with ``names``: a non-empty dict of
    name -> (4, width) array), given as a list of float64 arrays (a dict)."""

    def __init__(self, *, names: bool = False):
        self.names = names

    def check(self, value: object, argument: str) -> list[np.ndarray] | dict[str, np.ndarray]:
        name = self.name(argument)
        if not self.admits(value) or len(value) == 0:
            raise self.refuse(value, argument)
        if self.names:
            return {key: check_pwm(pwm, f"{name}[{key!r}]") for key, pwm in value.items()}
        return [check_pwm(pwm, f"{name}[{i}]") for i, pwm in enumerate(value)]

    def describe(self) -> str:
        return "a non-empty dict of name -> (4, width) PWM" if self.names else "a non-empty list of (4, width) PWMs"

    def admits(self, value: object) -> bool:
        if self.names:
            return isinstance(value, dict)
        return not isinstance(value, (str, bytes, dict)) and hasattr(value, "__len__")

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        bad_pwm = np.ones((5, 3))
        return [BadValue("ACGT", "wrong type", f"{name}: expected {self.describe()}, got str 'ACGT'"),
                BadValue({} if self.names else [], "out of range", f"{name}: expected {self.describe()}, got "),
                BadValue({"m": bad_pwm} if self.names else [bad_pwm], "out of range",
                         f"{name}[{'m' if self.names else 0!r}]: expected a (4, width) array in A, C, G, T order")]


def to_pwm(matrix: np.ndarray) -> np.ndarray:
    """Clip negatives to 0 and normalise each column to sum 1; an all-zero column becomes 0.25 each.

    Parameters
    ----------
    matrix : (..., 4, width) array
        Filter weights, optimised inputs or counts.

    Returns
    -------
    (..., 4, width) float64 array whose columns sum to 1.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim < 2 or m.shape[-2] != 4:
        raise ArgumentError(f"matrix: expected an array (..., 4, width) in A, C, G, T order, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ArgumentError("matrix: expected finite numbers, got NaN or infinite values")
    m = np.clip(m, 0, None)
    total = m.sum(axis=-2, keepdims=True)
    return np.where(total > 0, m / np.where(total > 0, total, 1), 0.25)


def information_content(pwm: np.ndarray) -> np.ndarray:
    """Information content (bits, uniform background) of every column of a (4, width) PWM; shape (width,)."""
    pwm = check_pwm(pwm)
    p = np.clip(pwm, 1e-12, 1)
    return 2 + (pwm * np.log2(p)).sum(axis=0)


def trim_pwm(pwm: np.ndarray, *, min_ic: float = 0.5, min_width: int = 4) -> np.ndarray:
    """Drop edge columns whose information content is below ``min_ic`` bits.

    The kept span runs from the first to the last column with IC >= ``min_ic``; when that span is narrower than
    ``min_width`` it is widened around the most informative column (clipped to the PWM).

    Returns
    -------
    (4, width') array, a copy.
    """
    pwm = check_pwm(pwm)
    min_width = check_int(min_width, "min_width", minimum=1)
    ic = information_content(pwm)
    keep = np.flatnonzero(ic >= min_ic)
    if len(keep):
        lo, hi = int(keep[0]), int(keep[-1]) + 1
    else:
        lo = hi = int(np.argmax(ic))
        hi += 1
    while hi - lo < min(min_width, pwm.shape[1]):
        # grow towards the more informative neighbour
        left = ic[lo - 1] if lo > 0 else -np.inf
        right = ic[hi] if hi < pwm.shape[1] else -np.inf
        if left >= right:
            lo -= 1
        else:
            hi += 1
    return pwm[:, lo:hi].copy()


def first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """(name, module) of the first ``Conv1d``/``Conv2d`` in ``model.named_modules()`` order (TorchScript too)."""
    for name, module in model.named_modules():
        if is_a(module, nn.Conv1d, nn.Conv2d):
            return name, module
    raise ModelError(f"model: expected a Conv1d or Conv2d module to read filters from, got a {type(model).__name__} "
                     "without one")


def filter_weights(model: nn.Module) -> np.ndarray:
    """First-layer convolution kernels as (K, 4, width), in the direction the convolution scans the input.

    A ``Conv2d`` must have a single row (kernel ``(K, 4, 1, width)``, one-hot as ``(N, 4, 1, L)``).
    """
    name, conv = first_conv(model)
    w = conv.weight.detach().cpu().numpy().astype(np.float64)
    if w.ndim == 4:
        if w.shape[2] != 1:
            raise ModelError(f"model: expected a first conv with a one-row kernel (a sequence filter), got {name!r} "
                             f"with a {tuple(w.shape[2:])} kernel")
        w = w[:, :, 0, :]
    if w.shape[1] != 4:
        raise ModelError(f"model: expected a first conv reading 4 input channels (A, C, G, T), got {name!r} reading "
                         f"{w.shape[1]}")
    return w


@declare(model=Model(), trim=OptionalOf(Float(minimum=0.0, maximum=2.0)), min_width=Int(minimum=1))
def filter_pwms(model: nn.Module, *, trim: float | None = None, min_width: int = 4) -> np.ndarray | list[np.ndarray]:
    """PWMs of the first-layer convolution filters (the DeepResolve authors' conversion).

    Negative weights are clipped to 0 and every column is normalised to sum 1 (all-zero columns: 0.25 each).
    :func:`deepresolve.io.keras.load_keras` already undid Theano's kernel flip, so PWMs read in the direction the
    PyTorch convolution scans, left to right along the sequence.

    Parameters
    ----------
    model : torch.nn.Module
        Its first ``Conv1d``/``Conv2d`` must read 4 channels (A, C, G, T).
    trim : float, optional
        When given, trim each PWM's edge columns with information content below ``trim`` bits (:func:`trim_pwm`;
        at most 2 bits, the information of a fully determined base).
    min_width : int
        With ``trim``: the narrowest a trimmed PWM may be (:func:`trim_pwm`).

    Returns
    -------
    (K, 4, width) array, or a list of K (4, width_k) arrays when ``trim`` is given.
    """
    pwms = to_pwm(filter_weights(model))
    if trim is None:
        return pwms
    return [trim_pwm(p, min_ic=trim, min_width=min_width) for p in pwms]
