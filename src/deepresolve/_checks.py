"""Argument checks, one message format for all: ``"<argument>: expected <what>, got <value>"``.

Every public function declares what each of its parameters accepts (:func:`declare`, with the specs below) and
so checks all its arguments before any work, raising :class:`~deepresolve.errors.ArgumentError` (a ``TypeError``
and a ``ValueError``) or :class:`~deepresolve.errors.MissingFileError`. The plain checks (:func:`check_int`,
:func:`check_float`, ...) serve the checks that need more than one argument or the model (a class index against
the model's outputs). Nothing here imports torch, so the result types use it too.

Declarations
------------
A :class:`Spec` says what one parameter accepts: :meth:`Spec.check` returns the value the function receives (an
int for a numpy integer, a tuple for a shape, a Path for a path) or raises the standard message;
:meth:`Spec.bad_values` gives wrong values with the start of the message each must raise (a declaration is its own
test), and :meth:`Spec.bad_paths` does so for the file system. :func:`declare` attaches the specs of every
parameter to a function (``func.__parameters__``) and checks them, in the order of the signature, before the
body runs. The idea is scikit-learn's ``validate_params``.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import sys
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Sequence, TypeVar

import numpy as np

from .errors import ArgumentError, DeepResolveError, MissingFileError

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
        raise ArgumentError(f"{argument}: expected a tuple of positive integers without the batch axis, e.g. "
                            f"(4, 1000); got {type(value).__name__} {value!r}")
    if len(value) == 0 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v <= 0
                              for v in value):
        raise ArgumentError(f"{argument}: expected a tuple of positive integers without the batch axis, e.g. "
                            f"(4, 1000); got {tuple(value)!r}")
    return tuple(int(v) for v in value)


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}" if maximum is not None else ""


def existing_file(path: str | Path, what: str, *, folders: bool = False, expected: str | None = None) -> Path:
    """``path`` as a Path if it names an existing file (or, with ``folders``, a folder) this process can read.

    The messages name ``what`` was looked for: ``"<what> '<path>' does not exist"``, or, with ``expected`` (what
    the argument ``what`` must name), ``"<what>: expected <expected>, got '<path>', which does not exist"``.

    Raises
    ------
    MissingFileError
        It does not exist, or is a folder where a file is expected.
    ArgumentError
        It is not a path, or cannot be read (permissions).
    """
    kind = expected or ("a file or folder" if folders else "a file")
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"{what}: expected the path of {kind} (str or Path), got {_shown(path)}")
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{what}: expected {expected}, got {str(path)!r}, which does not exist" if expected
                               else f"{what} {str(path)!r} does not exist")
    if not folders and not path.is_file():
        raise MissingFileError(f"{what}: expected {kind}, got the folder {str(path)!r}")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise ArgumentError(f"{what}: expected {kind} this process can read, got {str(path)!r} (permission denied)")
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


def _short(value: object) -> str:
    """``repr(value)`` on one line, cut to 80 characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _shown(value: object) -> str:
    """A wrong value for a message: its type and its short repr."""
    return f"{type(value).__name__} {_short(value)}"


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


# ----------------------------------------------------------------------------------------------------------------
# Declarations: what one parameter accepts


class BadValue(NamedTuple):
    """A wrong value for a parameter and what it must raise.

    ``kind`` says how it is wrong ("wrong type", "out of range", "missing", "folder", "unreadable", "a file",
    "under a file", "unknown name"); ``message`` is the start of the message (``"<argument>: expected ..."``).
    """

    value: object
    kind: str
    message: str
    error: type[DeepResolveError] = ArgumentError


class Spec(ABC):
    """What one parameter accepts (subclasses: :class:`Int`, :class:`Float`, :class:`Choice`, ...).

    ``label`` is the name messages give instead of the argument's (``"l2 (lambda)"``, ``"result file"``).
    """

    label: str | None = None

    def name(self, argument: str) -> str:
        """The name messages give the argument."""
        return self.label or argument

    @abstractmethod
    def check(self, value: object, argument: str) -> Any:
        """The value the function receives; ArgumentError (or another DeepResolveError) naming ``argument``."""

    @abstractmethod
    def describe(self) -> str:
        """What is accepted, e.g. "an integer >= 1"."""

    def admits(self, value: object) -> bool:
        """Whether ``value`` has a type this spec accepts (its range aside); :class:`AnyOf` picks a member by it."""
        return True

    def bad_values(self, argument: str) -> list[BadValue]:
        """Wrong values (a wrong type, out of range) with the start of the message each must raise."""
        return []

    def bad_paths(self, argument: str, folder: Path) -> list[BadValue]:
        """Wrong paths made inside the empty ``folder`` (missing, a folder, unreadable, ...); none for non-paths."""
        return []

    def among(self, keywords: Sequence[str]) -> Spec:
        """This spec for a ``**kwargs`` parameter of a function whose own keywords are ``keywords``."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def refuse(self, value: object, argument: str) -> ArgumentError:
        """The error for ``value``, which is not what this spec accepts: "<argument>: expected <describe()>, got
        <type> <value>"."""
        return ArgumentError(f"{self.name(argument)}: expected {self.describe()}, got {_shown(value)}")


class Int(Spec):
    """An integer in [minimum, maximum] (a numpy integer too; bools and floats refused)."""

    def __init__(self, minimum: int | None = None, maximum: int | None = None, *, label: str | None = None):
        self.minimum, self.maximum, self.label = minimum, maximum, label

    def check(self, value: object, argument: str) -> int:
        return check_int(value, self.name(argument), minimum=self.minimum, maximum=self.maximum)

    def describe(self) -> str:
        return " ".join(("an integer", _bounds(self.minimum, self.maximum))).rstrip()

    def admits(self, value: object) -> bool:
        return _is_int(value)

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        bad = [BadValue(2.5, "wrong type", f"{name}: expected an integer, got float 2.5")]
        expected = f"{name}: expected an integer {_bounds(self.minimum, self.maximum)}"
        if self.minimum is not None:
            bad.append(BadValue(self.minimum - 1, "out of range", f"{expected}, got {self.minimum - 1}"))
        if self.maximum is not None:
            bad.append(BadValue(self.maximum + 1, "out of range", f"{expected}, got {self.maximum + 1}"))
        return bad


class Seed(Int):
    """A random seed: an integer >= 0."""

    def __init__(self, *, label: str | None = None):
        super().__init__(minimum=0, label=label)


class Float(Spec):
    """A finite number in [minimum, maximum], above ``above`` and below ``below`` (exclusive); given as float."""

    def __init__(self, minimum: float | None = None, maximum: float | None = None, *, above: float | None = None,
                 below: float | None = None, label: str | None = None):
        self.minimum, self.maximum, self.above, self.below, self.label = minimum, maximum, above, below, label

    def check(self, value: object, argument: str) -> float:
        return check_float(value, self.name(argument), minimum=self.minimum, maximum=self.maximum, above=self.above,
                           below=self.below)

    def bounds(self) -> str:
        return " and ".join(b for b in (_bounds(self.minimum, self.maximum),
                                        f"> {self.above}" if self.above is not None else "",
                                        f"< {self.below}" if self.below is not None else "") if b)

    def describe(self) -> str:
        return " ".join(("a number", self.bounds())).rstrip()

    def admits(self, value: object) -> bool:
        return _is_number(value)

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        expected = f"{name}: expected a finite number {self.bounds()}".rstrip()
        bad = [BadValue("1.0", "wrong type", f"{name}: expected a number, got str '1.0'"),
               BadValue(float("nan"), "out of range", f"{expected}, got nan")]
        low = next((b for b in (self.minimum, self.above) if b is not None), None)
        if low is not None:
            bad.append(BadValue(low - 1.0, "out of range", f"{expected}, got {low - 1.0!r}"))
        high = next((b for b in (self.maximum, self.below) if b is not None), None)
        if high is not None:
            bad.append(BadValue(high + 1.0, "out of range", f"{expected}, got {high + 1.0!r}"))
        return bad


class Choice(Spec):
    """One of the given values (``True`` is not ``1`` here)."""

    def __init__(self, *choices: object, label: str | None = None):
        self.choices, self.label = choices, label

    def check(self, value: object, argument: str) -> object:
        return check_choice(value, self.name(argument), self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def admits(self, value: object) -> bool:
        return any(isinstance(value, bool) if isinstance(c, bool) else
                   (_is_number(value) if _is_number(c) else isinstance(value, type(c))) for c in self.choices)

    def bad_values(self, argument: str) -> list[BadValue]:
        expected = f"{self.name(argument)}: expected {self.describe()}"
        wrong_type = next(v for v in (2.5, "2.5", ()) if not self.admits(v))
        bad = [BadValue(wrong_type, "wrong type", f"{expected}, got {wrong_type!r}")]
        if all(isinstance(c, str) for c in self.choices):
            bad.append(BadValue("no-such-choice", "out of range", f"{expected}, got 'no-such-choice'"))
        return bad


class Bool(Choice):
    """True or False (not 0/1, not a numpy bool)."""

    def __init__(self, *, label: str | None = None):
        super().__init__(True, False, label=label)

    def describe(self) -> str:
        return "one of True, False"

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue(1, "wrong type", f"{self.name(argument)}: expected one of True, False, got 1")]


class Text(Spec):
    """A non-empty string (``what`` says what it names)."""

    def __init__(self, what: str = "a non-empty str", *, label: str | None = None):
        self.what, self.label = what, label

    def check(self, value: object, argument: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.refuse(value, argument)
        return value

    def describe(self) -> str:
        return self.what

    def admits(self, value: object) -> bool:
        return isinstance(value, str)

    def bad_values(self, argument: str) -> list[BadValue]:
        expected = f"{self.name(argument)}: expected {self.describe()}"
        return [BadValue(3, "wrong type", f"{expected}, got int 3"),
                BadValue("", "out of range", f"{expected}, got str ''")]


class Layer(Text):
    """A module name from ``model.named_modules()`` (whether the model has it is checked when it is split)."""

    def __init__(self, *, label: str | None = None):
        super().__init__("a module name of the model (a non-empty str; see deepresolve.list_layers)", label=label)


class Shape(Spec):
    """An input shape without the batch axis: a non-empty sequence of positive integers, given as a tuple."""

    def __init__(self, *, label: str | None = None):
        self.label = label

    def check(self, value: object, argument: str) -> tuple[int, ...]:
        return check_shape(value, self.name(argument))

    def describe(self) -> str:
        return "a tuple of positive integers without the batch axis"

    def admits(self, value: object) -> bool:
        return isinstance(value, Sequence) and not isinstance(value, (str, bytes))

    def bad_values(self, argument: str) -> list[BadValue]:
        expected = f"{self.name(argument)}: expected a tuple of positive integers without the batch axis"
        return [BadValue("4,20", "wrong type", expected), BadValue((4, 0), "out of range", expected)]


class SequenceShape(Shape):
    """The shape (4, L) of one-hot sequences, given as a tuple."""

    def check(self, value: object, argument: str) -> tuple[int, ...]:
        shape = check_shape(value, self.name(argument))
        if len(shape) != 2 or shape[0] != 4:
            raise ArgumentError(f"{self.name(argument)}: expected (4, L) for one-hot sequences, got {shape!r}")
        return shape

    def describe(self) -> str:
        return "the shape (4, L) of one-hot sequences"

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        return [*super().bad_values(argument),
                BadValue((40,), "out of range", f"{name}: expected (4, L) for one-hot sequences, got (40,)")]


class Names(Spec):
    """Names (of classes, channels, PWMs): a list of non-empty strings (numbers are written as text), given as a
    list."""

    def __init__(self, *, label: str | None = None):
        self.label = label

    def check(self, value: object, argument: str) -> list[str]:
        if not self.admits(value):
            raise self.refuse(value, argument)
        names = list(value)
        bad = next((n for n in names if not (isinstance(n, str) or _is_number(n)) or not str(n).strip()), None)
        if bad is not None:
            raise ArgumentError(f"{self.name(argument)}: expected non-empty names (str), got {_shown(bad)}")
        return names

    def describe(self) -> str:
        return "a list of names (str)"

    def admits(self, value: object) -> bool:
        return not isinstance(value, (str, bytes, Mapping)) and hasattr(value, "__len__") and hasattr(value, "__iter__")

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        return [BadValue("ab", "wrong type", f"{name}: expected a list of names (str), got str 'ab'"),
                BadValue(["a", ""], "out of range", f"{name}: expected non-empty names (str), got str ''")]


class Classes(Spec):
    """Output indices: an index >= 0 or a non-empty list of distinct ones (None for every output when
    ``optional``); whether the model has them is checked against its outputs (:func:`check_classes`).

    The function receives the list (one index becomes a list of one); a ``range`` is not walked (it may be huge).
    """

    def __init__(self, *, optional: bool = True, label: str | None = None):
        self.optional, self.label = optional, label

    def describe(self) -> str:
        return ("None, an output index or a list of output indices" if self.optional else
                "an output index or a list of output indices")

    def admits(self, value: object) -> bool:
        return (value is None and self.optional) or _is_int(value) or \
            (not isinstance(value, (str, bytes, bool, np.bool_, Mapping)) and hasattr(value, "__len__"))

    def check(self, value: object, argument: str) -> object:
        name = self.name(argument)
        if value is None and self.optional:
            return None
        if _is_int(value):
            return [check_int(value, name, minimum=0)]
        if not self.admits(value):
            raise self.refuse(value, argument)
        if len(value) == 0:
            raise ArgumentError(f"{name}: expected {'None (every output) or ' if self.optional else ''}a non-empty "
                                f"list of output indices, got []")
        if isinstance(value, range):  # distinct by construction; not walked (it may be huge)
            check_int(min(value[0], value[-1]), name, minimum=0)
            return value
        indices = [check_int(c, name, minimum=0) for c in value]
        if len(set(indices)) != len(indices):
            dup = sorted({c for c in indices if indices.count(c) > 1})
            raise ArgumentError(f"{name}: expected distinct output indices, got duplicates {dup}")
        return value

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        return [BadValue("0", "wrong type", f"{name}: expected {self.describe()}, got str '0'"),
                BadValue(2.5, "wrong type", f"{name}: expected {self.describe()}, got float 2.5"),
                BadValue([0, -1], "out of range", f"{name}: expected an integer >= 0, got -1"),
                BadValue([], "out of range", f"{name}: expected ")]


class ClassKey(Spec):
    """A class of a result: an output index (int) or a class name (str); whether the result has it is its own
    check (:meth:`~deepresolve.results.Result.index_of`)."""

    def __init__(self, *, label: str | None = None):
        self.label = label

    def check(self, value: object, argument: str) -> int | str:
        if isinstance(value, str):
            return value
        if not _is_int(value):
            raise ArgumentError(f"{self.name(argument)}: expected an output index (int) or a class name (str), got "
                                f"{_shown(value)}")
        return int(value)

    def describe(self) -> str:
        return "an output index (int) or a class name (str)"

    def admits(self, value: object) -> bool:
        return isinstance(value, str) or _is_int(value)

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue(2.5, "wrong type", f"{self.name(argument)}: expected an output index (int) or a class name "
                                            "(str), got float 2.5")]


def _as_numpy(value: object) -> np.ndarray:
    """``value`` (a numpy or torch array, or nested lists) as a numpy array, without its autograd graph or device."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported; this module never imports it
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
    return np.asarray(value)


class Array(Spec):
    """A numeric array (numpy, torch or nested lists) with ``len(dims)`` axes and finite values.

    ``dims`` names the axes, e.g. ``("C", "T", "K")``; an int there is a fixed size. The function receives the
    array as given. A wrong shape reads ``"<argument>: expected shape (C, T, K), got (3, 4)"``, or with ``what``
    (e.g. "one-hot") ``"<argument>: expected one-hot (N, 4, L), got shape (3, 4)"``.
    """

    def __init__(self, dims: Sequence[str | int] | None = None, *, integer: bool = False, finite: bool = True,
                 what: str | None = None, label: str | None = None):
        self.dims, self.integer, self.finite, self.what, self.label = \
            None if dims is None else tuple(dims), integer, finite, what, label

    def shape_text(self) -> str:
        return "(" + ", ".join(str(d) for d in self.dims) + ("," if len(self.dims) == 1 else "") + ")"

    def describe(self) -> str:
        kind = "an integer array" if self.integer else "a numeric array"
        return kind if self.dims is None else f"{kind} of shape {self.shape_text()}"

    def admits(self, value: object) -> bool:
        return hasattr(value, "__array__") or (isinstance(value, (list, tuple)) and len(value) > 0)

    def check(self, value: object, argument: str) -> object:
        name = self.name(argument)
        if not self.admits(value):
            raise self.refuse(value, argument)
        try:
            a = _as_numpy(value)
        except (ValueError, TypeError):  # ragged nested lists
            raise self.refuse(value, argument) from None
        if a.dtype.kind not in ("biu" if self.integer else "biuf"):
            raise ArgumentError(f"{name}: expected {'integers' if self.integer else 'numbers'}, got an array of "
                                f"{a.dtype}")
        if self.dims is not None and (a.ndim != len(self.dims) or any(
                isinstance(d, int) and n != d for d, n in zip(self.dims, a.shape))):
            if self.what:
                raise ArgumentError(f"{name}: expected {self.what} {self.shape_text()}, got shape {a.shape}")
            raise ArgumentError(f"{name}: expected shape {self.shape_text()}, got {a.shape}")
        if self.finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ArgumentError(f"{name}: expected finite numbers, got NaN or infinite values")
        return value

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        bad = [BadValue("1.0", "wrong type", f"{name}: expected {self.describe()}, got str '1.0'")]
        if self.dims is not None:
            bad.append(BadValue(np.zeros((1,) * (len(self.dims) + 1), dtype=int), "out of range",
                                f"{name}: expected {self.what or 'shape'} {self.shape_text()}, got "))
        if self.finite and not self.integer:
            shape = (1,) if self.dims is None else tuple(d if isinstance(d, int) else 1 for d in self.dims)
            bad.append(BadValue(np.full(shape, np.nan), "out of range",
                                f"{name}: expected finite numbers, got NaN or infinite values"))
        return bad


class Instance(Spec):
    """An instance of ``types`` (``what`` says which, e.g. "a pandas DataFrame")."""

    def __init__(self, types: type | tuple[type, ...], what: str, *, label: str | None = None):
        self.types, self.what, self.label = types, what, label

    def check(self, value: object, argument: str) -> object:
        if not isinstance(value, self.types):  # the type says it all
            raise ArgumentError(f"{self.name(argument)}: expected {self.what}, got {type(value).__name__}")
        return value

    def describe(self) -> str:
        return self.what

    def admits(self, value: object) -> bool:
        return isinstance(value, self.types)

    def bad_values(self, argument: str) -> list[BadValue]:
        wrong = next(v for v in ("text", 2.5, object()) if not self.admits(v))
        return [BadValue(wrong, "wrong type",
                         f"{self.name(argument)}: expected {self.what}, got {type(wrong).__name__}")]


class Function(Spec):
    """A callable (``what`` says what it is called with)."""

    def __init__(self, what: str = "a function", *, label: str | None = None):
        self.what, self.label = what, label

    def check(self, value: object, argument: str) -> Callable:
        if not callable(value):
            raise self.refuse(value, argument)
        return value

    def describe(self) -> str:
        return self.what

    def admits(self, value: object) -> bool:
        return callable(value)

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue(3, "wrong type", f"{self.name(argument)}: expected {self.what}, got int 3")]


class Via(Spec):
    """A value checked by an existing function ``check(value, argument)``; ``wrong`` is a value it refuses as of
    the wrong type."""

    def __init__(self, check: Callable[[Any, str], Any], what: str, wrong: object, *, label: str | None = None):
        self.function, self.what, self.wrong, self.label = check, what, wrong, label

    def check(self, value: object, argument: str) -> Any:
        return self.function(value, self.name(argument))

    def describe(self) -> str:
        return self.what

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue(self.wrong, "wrong type", f"{self.name(argument)}: expected ")]


class OptionalOf(Spec):
    """None, or what ``spec`` accepts."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.label = spec.label

    def check(self, value: object, argument: str) -> Any:
        return None if value is None else self.spec.check(value, argument)

    def describe(self) -> str:
        return f"None or {self.spec.describe()}"

    def admits(self, value: object) -> bool:
        return value is None or self.spec.admits(value)

    def bad_values(self, argument: str) -> list[BadValue]:
        return self.spec.bad_values(argument)

    def bad_paths(self, argument: str, folder: Path) -> list[BadValue]:
        return self.spec.bad_paths(argument, folder)


class AnyOf(Spec):
    """What any of ``specs`` accepts. A value of the type of one member only gets that member's message (``l2=0``:
    the number's range); one of none of their types, or of several, ``"expected <a> or <b>"``."""

    def __init__(self, *specs: Spec, label: str | None = None):
        self.specs, self.label = specs, label

    def check(self, value: object, argument: str) -> Any:
        fitting = [spec for spec in self.specs if spec.admits(value)]
        if len(fitting) == 1:
            return fitting[0].check(value, self.label or argument)
        for spec in fitting:
            try:
                return spec.check(value, self.label or argument)
            except ArgumentError:
                pass
        raise self.refuse(value, argument)

    def describe(self) -> str:
        return " or ".join(spec.describe() for spec in self.specs)

    def admits(self, value: object) -> bool:
        return any(spec.admits(value) for spec in self.specs)

    def bad_values(self, argument: str) -> list[BadValue]:
        combined = f"{self.name(argument)}: expected {self.describe()}, got "
        out: list[BadValue] = []
        for bad in (b for spec in self.specs for b in spec.bad_values(self.label or argument)):
            fitting = [spec for spec in self.specs if spec.admits(bad.value)]
            if bad.kind == "wrong type" and fitting:  # of another member's type
                continue
            if bad.kind == "wrong type" and any(b.kind == "wrong type" for b in out):
                continue
            if any(_accepts(spec, bad.value) for spec in fitting):
                continue
            out.append(bad if len(fitting) == 1 else bad._replace(message=combined))
        if not any(b.kind == "wrong type" for b in out):  # the members' own wrong types are each other's types
            wrong = next(v for v in ({"a": 1}, b"bytes", object()) if not self.admits(v))
            out.insert(0, BadValue(wrong, "wrong type", combined))
        return out


def _accepts(spec: Spec, value: object) -> bool:
    try:
        spec.check(value, "value")
    except DeepResolveError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# Paths


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


class ExistingFile(Spec):
    """An existing file (or, with ``folders``, a file or a folder) this process can read, given as a Path.

    ``label`` names it in messages (``"result file '...' does not exist"``); ``expected`` says what it must be
    (``"weights: expected a Keras weights file, got '...', which does not exist"``). Whether its content is what
    was expected is for its reader to say (:class:`~deepresolve.errors.FileFormatError`).
    """

    def __init__(self, label: str | None = None, *, folders: bool = False, expected: str | None = None):
        self.label, self.folders, self.expected = label, folders, expected

    def check(self, value: object, argument: str) -> Path:
        return existing_file(value, self.name(argument), folders=self.folders, expected=self.expected)

    def describe(self) -> str:
        return f"the path of {self.expected or ('a file or folder' if self.folders else 'a file')}"

    def admits(self, value: object) -> bool:
        return _is_path(value)

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue(3, "wrong type",
                         f"{self.name(argument)}: expected {self.describe()} (str or Path), got int 3")]

    def bad_paths(self, argument: str, folder: Path) -> list[BadValue]:
        name = self.name(argument)
        missing = folder / "missing"
        bad = [BadValue(missing, "missing", f"{name}: expected {self.expected}, got '{missing}', which does not exist"
                        if self.expected else f"{name} '{missing}' does not exist", MissingFileError)]
        if not self.folders:
            (folder / "a-folder").mkdir()
            bad.append(BadValue(folder / "a-folder", "folder", f"{name}: expected {self.expected or 'a file'}, got "
                                                               "the folder", MissingFileError))
        locked = folder / "unreadable"
        locked.write_bytes(b"")
        locked.chmod(0)
        bad.append(BadValue(locked, "unreadable", f"{name}: expected {self.expected or 'a file'} this process can "
                                                  "read"))
        return bad


def _under_a_file(path: Path) -> Path | None:
    """The file among the parents of ``path``, which therefore cannot be created; None when there is none."""
    return next((p for p in path.parents if p.exists() and not p.is_dir()), None)


class _OutputPath(Spec):
    """A path to write to, given as a str or Path and checked without touching the disk (subclasses say what kind)."""

    def __init__(self, *, label: str | None = None):
        self.label = label

    def _path(self, value: object, name: str) -> Path:
        if not _is_path(value):
            raise ArgumentError(f"{name}: expected a str or Path, got {type(value).__name__}")
        return Path(value)

    def admits(self, value: object) -> bool:
        return _is_path(value)

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue(3, "wrong type", f"{self.name(argument)}: expected a str or Path, got int")]


class OutputFolder(_OutputPath):
    """A folder to write into, given as a Path; checked without touching the disk: not a file, not under a file.

    The caller creates it when its work begins (:func:`~deepresolve._files.exclusive` holds it for one run).
    """

    def check(self, value: object, argument: str) -> Path:
        name = self.name(argument)
        out = self._path(value, name)
        if out.exists() and not out.is_dir():
            raise ArgumentError(f"{name}: expected a folder, got the file {str(out)!r}")
        blocking = _under_a_file(out)
        if blocking is not None:
            raise ArgumentError(f"{name}: expected a folder that can be created, got {str(out)!r}, which is under the "
                                f"file {str(blocking)!r}")
        return out

    def describe(self) -> str:
        return "a folder path"

    def bad_paths(self, argument: str, folder: Path) -> list[BadValue]:
        name = self.name(argument)
        (folder / "a-file").write_text("")
        return [BadValue(folder / "a-file", "a file", f"{name}: expected a folder, got the file"),
                BadValue(folder / "a-file" / "out", "under a file", f"{name}: expected a folder that can be created")]


class OutputFile(_OutputPath):
    """A file to write (its folder is created when it is written), given as a Path: not a folder, not under a file."""

    def check(self, value: object, argument: str) -> Path:
        name = self.name(argument)
        out = self._path(value, name)
        if out.is_dir():
            raise ArgumentError(f"{name}: expected a file path, got the directory {str(out)!r}")
        blocking = _under_a_file(out)
        if blocking is not None:
            raise ArgumentError(f"{name}: expected a file path whose folder can be created, got {str(out)!r}, which "
                                f"is under the file {str(blocking)!r}")
        return out

    def describe(self) -> str:
        return "a file path"

    def bad_paths(self, argument: str, folder: Path) -> list[BadValue]:
        name = self.name(argument)
        (folder / "a-folder").mkdir()
        (folder / "a-file").write_text("")
        return [BadValue(folder / "a-folder", "folder", f"{name}: expected a file path, got the directory"),
                BadValue(folder / "a-file" / "out", "under a file",
                         f"{name}: expected a file path whose folder can be created")]


# ----------------------------------------------------------------------------------------------------------------
# Applying declarations


def validate(specs: Mapping[str, Spec], values: Mapping[str, object]) -> dict[str, object]:
    """``values`` checked by their ``specs``, in the order of ``specs``: the values to use, by name.

    Names of ``values`` without a spec are refused with the nearest declared names (difflib).
    """
    unknown = [name for name in values if name not in specs]
    if unknown:
        raise unknown_keyword(unknown[0], values[unknown[0]], list(specs), "keyword")
    return {name: spec.check(values[name], name) for name, spec in specs.items() if name in values}


def unknown_keyword(name: str, value: object, known: Sequence[str], what: str) -> ArgumentError:
    """The error for a keyword ``name`` that is none of ``known``, suggesting the nearest (an abbreviation too)."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else f"; expected one of {', '.join(known)}"
    return ArgumentError(f"{name}: expected a {what}, got the unknown {name}={_short(value)}{hint}")


def declare(**specs: Spec) -> Callable[[_F], _F]:
    """Decorator: the function's parameters accept what ``specs`` (one per parameter) say, checked before its body.

    Every argument, defaults included, goes through its spec's :meth:`~Spec.check` in the order of the signature,
    and the function receives the checked values. An unknown keyword is refused with the nearest parameter's name,
    a missing one with what it expects; the spec of a ``**kwargs`` parameter checks the dict of extra keywords.
    ``func.__parameters__`` holds the specs (read-only), e.g. for tests generated from them. A method's first
    parameter (``self`` or ``cls``) needs no spec.

    Raises
    ------
    TypeError
        When decorating: a parameter without a spec, or a spec without a parameter.
    """
    def wrap(func: _F) -> _F:
        signature = inspect.signature(func)
        params = dict(signature.parameters)
        if next(iter(params), None) in ("self", "cls"):  # a method's own object needs no spec
            params.pop(next(iter(params)))
        if set(params) != set(specs):
            raise TypeError(f"{func.__qualname__}: parameters without a spec: {sorted(set(params) - set(specs))}; "
                            f"specs without a parameter: {sorted(set(specs) - set(params))}")
        named = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        extra = next((n for n, p in params.items() if p.kind is p.VAR_KEYWORD), None)
        ordered = {name: specs[name].among(named) if name == extra else specs[name] for name in params}

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            if extra is None:
                unknown = [k for k in kwargs if k not in signature.parameters]
                if unknown:
                    raise unknown_keyword(unknown[0], kwargs[unknown[0]], named, f"keyword of {func.__name__}")
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                given = list(signature.parameters)[:len(args)]
                missing = next((n for n in named if n not in given and n not in kwargs
                                and params[n].default is params[n].empty), None)
                if missing is None:
                    raise  # too many positional arguments: Python's own message
                raise ArgumentError(f"{missing}: expected {ordered[missing].describe()}, got nothing (a required "
                                    f"argument of {func.__name__})") from None
            bound.apply_defaults()
            for name, spec in ordered.items():
                bound.arguments[name] = spec.check(bound.arguments[name], name)
            return func(*bound.args, **bound.kwargs)

        call.__parameters__ = MappingProxyType(ordered)  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]
    return wrap
