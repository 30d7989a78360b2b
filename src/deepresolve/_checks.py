"""Argument checks, one message format for all: ``"<argument>: expected <what>, got <value>"``.

Every public function checks its arguments here before any work, and raises
:class:`~deepresolve.errors.ArgumentError` (a ``TypeError`` and a ``ValueError``) or
:class:`~deepresolve.errors.MissingFileError`. Nothing here imports torch, so the result types use it too.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from .errors import ArgumentError, MissingFileError

_F = TypeVar("_F", bound=Callable[..., Any])


def check_int(value: object, argument: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]; bools and floats (even 3.0) are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentError(f"{argument}: expected an integer, got {type(value).__name__} {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ArgumentError(f"{argument}: expected an integer {_bounds(minimum, maximum)}, got {value!r}")
    return int(value)


def check_float(value: object, argument: str, *, minimum: float | None = None, maximum: float | None = None,
                above: float | None = None, below: float | None = None) -> float:
    """``value`` as a finite float in [minimum, maximum], and above ``above`` / below ``below`` (exclusive)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{argument}: expected a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not np.isfinite(v) or (minimum is not None and v < minimum) or (maximum is not None and v > maximum) \
            or (above is not None and v <= above) or (below is not None and v >= below):
        bounds = " and ".join(b for b in (_bounds(minimum, maximum), f"> {above}" if above is not None else "",
                                          f"< {below}" if below is not None else "") if b)
        raise ArgumentError(f"{argument}: expected a finite number {bounds}".rstrip() + f", got {value!r}")
    return v


def check_choice(value: object, argument: str, choices: Sequence[object]) -> object:
    """``value`` if it is one of ``choices``."""
    # True == 1: a bool must not pass for an integer choice
    is_bool = isinstance(value, (bool, np.bool_))
    if not any((value is c) if is_bool or isinstance(c, bool) else (isinstance(value, (str, int, float, type(None)))
                                                                     and value == c) for c in choices):
        raise ArgumentError(f"{argument}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_shape(value: object, argument: str) -> tuple[int, ...]:
    """An input shape without the batch axis: a non-empty sequence of positive integers, e.g. ``(4, 1000)``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):  # torch.Size is a tuple
        raise ArgumentError(f"{argument}: expected a tuple of positive integers without the batch axis, e.g. (4, 1000); "
                            f"got {type(value).__name__} {value!r}")
    if len(value) == 0 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v <= 0
                              for v in value):
        raise ArgumentError(f"{argument}: expected a tuple of positive integers without the batch axis, e.g. (4, 1000); "
                            f"got {tuple(value)!r}")
    return tuple(int(v) for v in value)


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}" if maximum is not None else ""


def existing_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it names an existing file; else MissingFileError saying ``what`` was looked for."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise MissingFileError(f"{what}: expected a file, got the folder {str(path)!r}")
    return path


def check_classes(classes: Sequence[int] | int | None, n_outputs: int) -> list[int]:
    """Output indices to explain, checked against the model's ``n_outputs`` before any list is built."""
    if classes is None:
        return list(range(n_outputs))
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, (bool, np.bool_)):
        classes = [classes]
    if isinstance(classes, (str, bytes, bool, np.bool_)) or not hasattr(classes, "__len__"):
        raise ArgumentError(f"classes: expected None, an output index or a list of output indices, "
                            f"got {type(classes).__name__} {classes!r}")
    if len(classes) == 0:
        raise ArgumentError("classes: expected None (every output) or a non-empty list of output indices, got []")
    if len(classes) > n_outputs:  # cannot all be distinct valid indices; refused without walking a huge range
        raise ArgumentError(f"classes: expected at most {n_outputs} distinct output indices (0..{n_outputs - 1}), "
                            f"got {len(classes)}")
    out = [check_int(c, "classes") for c in classes]
    bad = [c for c in out if not 0 <= c < n_outputs]
    if bad:
        raise ArgumentError(f"classes: expected an output index in [0, {n_outputs - 1}] (the model has {n_outputs} "
                            f"outputs), got {bad[0]}")
    if len(set(out)) != len(out):
        dup = sorted({c for c in out if out.count(c) > 1})
        raise ArgumentError(f"classes: expected distinct output indices, got duplicates {dup}")
    return out


def class_names(names: Sequence[str] | None, chosen: list[int], n_outputs: int) -> list[str]:
    """One name per chosen class: ``names`` names every output or just the chosen ones; default ``"class {c}"``."""
    if names is None:
        return [f"class {c}" for c in chosen]
    names = list(names)
    if len(names) == n_outputs:
        names = [names[c] for c in chosen]
    elif len(names) != len(chosen):
        raise ArgumentError(f"class_names: expected one name per output ({n_outputs}) or per selected class "
                            f"({len(chosen)}), got {len(names)} names")
    return [str(n) for n in names]


def renamed_arguments(**old_to_new: str) -> Callable[[_F], _F]:
    """Decorator: keyword arguments renamed in this version; the old names still work, with a FutureWarning.

    ``@renamed_arguments(alpha="decay")`` makes ``f(alpha=0.2)`` call ``f(decay=0.2)``; giving both is an error.
    """
    def wrap(func: _F) -> _F:
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ArgumentError(f"{old}: expected {new}= alone ({old}= is its old name), got both")
                    warnings.warn(f"{func.__name__}({old}=...) is now {func.__name__}({new}=...); the old name will "
                                  "be removed in a future release", FutureWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)
        return call  # type: ignore[return-value]
    return wrap
