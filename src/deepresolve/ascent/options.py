"""The ascent's options: one table that the checks, a run store's settings, ``result.params`` and the command line's
help all read.

Each :class:`AscentOption` gives a setting's name, type and range, a one-line help and its default: one default
for every optimiser (the general settings: optimizer, restarts, l2, init_scale, precision, nonnegative, seed,
batch_size), or one per optimiser that uses it (the step rules' own settings: lr, steps, tol, patience for all
three; cuts for "bundle"; start_decay, decay, min_lr for "paper"). An optimiser's own setting given with another
optimiser is refused, as is a name that is not in the table (with the nearest names as a suggestion).

Nothing here imports torch.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from .._checks import check_choice, check_float, check_int, renamed_arguments
from ..errors import ArgumentError

Optimizer = Literal["matched", "bundle", "paper"]
OPTIMIZERS: tuple[str, ...] = ("matched", "bundle", "paper")
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")


@dataclass(frozen=True)
class AscentOption:
    """One setting of the ascent.

    Attributes
    ----------
    name : str
        Its keyword in :func:`~deepresolve.ascent.feature_ascent` and :func:`deepresolve.resolve`.
    kind : int, float or tuple
        An integer, a finite number, or one of the values of the tuple.
    help : str
        One line, for docstrings and the command line.
    default : object
        The default under every optimiser (None for an optimiser's own setting, and for ``batch_size``, whose
        default depends on the device).
    per_optimizer : dict, optional
        An optimiser's own setting: optimiser -> default. Optimisers not listed do not take it.
    minimum, maximum, above : number, optional
        Inclusive bounds, and an exclusive lower bound.
    label : str, optional
        The name error messages use (default ``name``).
    settings_key : str, optional
        Its key in a run store's settings (default ``name``); the stores of earlier versions must keep resuming.
    in_settings : bool
        Whether it determines the rows (and so belongs in a run store's settings): ``batch_size`` does not.
    digits : int, optional
        Significant digits a run store compares: a value that a lambda policy computes differs between machines
        in its last bits.
    """

    name: str
    kind: Any
    help: str
    default: Any = None
    per_optimizer: Mapping[str, int | float] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    above: int | float | None = None
    label: str | None = None
    settings_key: str | None = None
    in_settings: bool = True
    digits: int | None = None

    def check(self, value: object) -> Any:
        """``value`` checked against the type and range (an int as int, a number as float).

        Raises
        ------
        deepresolve.errors.ArgumentError
        """
        label = self.label or self.name
        if isinstance(self.kind, tuple):
            return check_choice(value, label, self.kind)
        if self.kind is int:
            return check_int(value, label, minimum=self.minimum, maximum=self.maximum)
        return check_float(value, label, minimum=self.minimum, maximum=self.maximum, above=self.above)

    def describe(self) -> str:
        """``help`` with the accepted values and, for an optimiser's own setting, its default under each, e.g.
        "most steps per row (an integer >= 1; default 500 ('matched', 'bundle'), 10000 ('paper'))."."""
        if self.kind == (True, False):
            return f"{self.help}."
        if isinstance(self.kind, tuple):
            accepted = "one of " + ", ".join(repr(v) for v in self.kind)
        else:
            if self.minimum is not None and self.maximum is not None:
                bounds = [f"in [{self.minimum}, {self.maximum}]"]
            else:
                bounds = [f">= {self.minimum}" if self.minimum is not None else "",
                          f"> {self.above}" if self.above is not None else "",
                          f"<= {self.maximum}" if self.maximum is not None else ""]
            accepted = " ".join(["an integer" if self.kind is int else "a number", *(b for b in bounds if b)])
        if self.per_optimizer is None:
            return f"{self.help} ({accepted})."
        users: dict[int | float, list[str]] = {}
        for optimizer, value in self.per_optimizer.items():
            users.setdefault(value, []).append(repr(optimizer))
        defaults = ", ".join(f"{value:g} ({', '.join(names)})" for value, names in users.items())
        only = "" if set(self.per_optimizer) == set(OPTIMIZERS) else "; no other optimiser takes it"
        return f"{self.help} ({accepted}; default {defaults}{only})."


#: Every setting of the ascent, in the order of ``result.params``.
ASCENT_OPTIONS: dict[str, AscentOption] = {option.name: option for option in (
    AscentOption("optimizer", OPTIMIZERS, "the step rule; 'bundle' takes fewer steps than 'matched' at l2 = 1 and "
                 "more at small l2, 'paper' is the paper's decaying plain ascent", default="matched"),
    AscentOption("restarts", int, "random starts T per class", default=10, minimum=1),
    AscentOption("l2", float, "lambda, the weight of the penalty lambda ||H - center||^2", default=1.0, above=0,
                 label="l2 (lambda)", digits=4),
    AscentOption("init_scale", float, "standard deviation of the random normal starts", default=1.0, above=0,
                 digits=4),
    AscentOption("precision", PRECISIONS, "the head's precision; under 'bfloat16' (autocast) H and the penalty stay "
                 "float32", default="float32"),
    AscentOption("nonnegative", (True, False), "constrain H >= 0, the domain of a post-ReLU map", default=False),
    AscentOption("seed", int, "each row starts from a map drawn from (seed, class, restart) alone", default=0,
                 minimum=0),
    AscentOption("batch_size", int, "rows per forward/backward pass, bounding memory; default 256 on the CPU, 4096 "
                 "on a GPU", minimum=1, in_settings=False),
    # The step rules' own settings.
    AscentOption("lr", float, "step size: the fraction of the matched step 1 / (2 lambda) ('matched'), of the way "
                 "to the model's maximiser ('bundle'), or the initial rate ('paper')",
                 per_optimizer={"matched": 1.0, "bundle": 1.0, "paper": 0.1}, above=0),
    AscentOption("steps", int, "most steps per row", per_optimizer={"matched": 500, "bundle": 500, "paper": 10_000},
                 minimum=1),
    AscentOption("tol", float, "convergence tolerance on the objective's gain, relative to |S| + lambda "
                 "||H - center||^2", per_optimizer={"matched": 1e-5, "bundle": 3e-5, "paper": 0.0}, minimum=0.0),
    AscentOption("patience", int, "steps without a gain above tol before a row stops",
                 per_optimizer={"matched": 2, "bundle": 3, "paper": 10}, minimum=1),
    AscentOption("cuts", int, "cuts kept per row; the QP enumerates the 2^cuts - 1 faces of their simplex",
                 per_optimizer={"bundle": 6}, minimum=2, maximum=8),
    AscentOption("start_decay", int, "steps at the initial rate before it decays", per_optimizer={"paper": 500},
                 minimum=0),
    # Stores written before the rename keep resuming: the settings key is the old name.
    AscentOption("decay", float, "exponent of the rate's decay, lr * (step - start_decay) ** -decay",
                 per_optimizer={"paper": 0.2}, above=0, settings_key="alpha"),
    AscentOption("min_lr", float, "floor of the decay factor: the rate never falls below lr * min_lr",
                 per_optimizer={"paper": 1e-6}, above=0),
)}

#: The step rules' own settings (each with a default per optimiser that uses it).
STEP_OPTIONS: tuple[str, ...] = tuple(name for name, o in ASCENT_OPTIONS.items() if o.per_optimizer is not None)

#: Each optimiser's own settings and their defaults; options left out (or None) take these.
DEFAULTS: dict[str, dict[str, int | float]] = {
    optimizer: {name: ASCENT_OPTIONS[name].per_optimizer[optimizer] for name in STEP_OPTIONS
                if optimizer in ASCENT_OPTIONS[name].per_optimizer}
    for optimizer in OPTIMIZERS
}


def check_known(given: Mapping[str, object], also: Iterable[str] = ()) -> None:
    """Refuse keywords that are neither ascent options nor among ``also`` (the caller's own keywords).

    A misspelt option would otherwise be ignored; the message suggests the nearest known names (difflib).

    Raises
    ------
    deepresolve.errors.ArgumentError
    """
    known = [*ASCENT_OPTIONS, *also]
    unknown = [name for name in given if name not in known]
    if not unknown:
        return
    # A cutoff below difflib's 0.6 so that an abbreviation finds its full name ("tol" for "tolerance").
    hints = {name: difflib.get_close_matches(name, known, n=1, cutoff=0.5) for name in unknown}
    hints = {name: close[0] for name, close in hints.items() if close}
    if len(hints) == 1 and len(unknown) == 1:
        hint = f"; did you mean {next(iter(hints.values()))}?"
    elif hints:
        hint = "; did you mean " + ", ".join(f"{close} (for {name})" for name, close in hints.items()) + "?"
    else:
        hint = ""
    raise ArgumentError(f"{', '.join(unknown)}: unknown ascent option(s); expected some of {', '.join(STEP_OPTIONS)}, "
                        f"got {', '.join(f'{name}={given[name]!r}' for name in unknown)}{hint}")


@renamed_arguments(alpha="decay")
def check_ascent_options(optimizer: str = "matched", **options: object) -> dict[str, int | float]:
    """Check settings of :func:`~deepresolve.ascent.feature_ascent` before any work; return the optimiser's own.

    Callers that do work before the ascent (:func:`deepresolve.resolve` splits the model, computes lambda, opens a
    run store) call this first, so that a bad setting is refused before anything is computed or written.

    Parameters
    ----------
    optimizer : {"matched", "bundle", "paper"}
    **options
        Any settings of :data:`ASCENT_OPTIONS` (restarts, l2, init_scale, precision, nonnegative, seed,
        batch_size, lr, steps, tol, patience, cuts, start_decay, decay, min_lr), each checked against its type
        and range. None stands for "not given": the default, or a value chosen later (``l2`` under a policy).
        ``alpha`` is the old name of ``decay`` (FutureWarning).

    Returns
    -------
    dict
        ``DEFAULTS[optimizer]`` updated with the optimiser's own settings given: lr, steps, tol, patience and,
        for "bundle", cuts; for "paper", start_decay, decay, min_lr.

    Raises
    ------
    deepresolve.errors.ArgumentError
        A name that is not an ascent option, a value of the wrong type or range, or an optimiser's own setting
        given with another optimiser.
    """
    check_known(options)
    ASCENT_OPTIONS["optimizer"].check(optimizer)
    given = {name: ASCENT_OPTIONS[name].check(value) for name, value in options.items() if value is not None}
    for name in given:
        users = ASCENT_OPTIONS[name].per_optimizer
        if users is not None and optimizer not in users:
            raise ArgumentError(f"{name}: an option of optimizer={' or '.join(repr(k) for k in users)} only; got "
                                f"{name}={options[name]!r} with optimizer={optimizer!r}")
    return {name: given.get(name, default) for name, default in DEFAULTS[optimizer].items()}


def run_settings(values: Mapping[str, object]) -> dict[str, object]:
    """The settings among ``values`` (option name -> value) that determine the rows, for a run store.

    Each goes under its ``settings_key``, rounded to its ``digits``; settings that do not change the results
    (``batch_size``) are left out.
    """
    out: dict[str, object] = {}
    for name, value in values.items():
        option = ASCENT_OPTIONS[name]
        if option.in_settings:
            out[option.settings_key or name] = float(f"{value:.{option.digits}g}") if option.digits else value
    return out


def run_params(values: Mapping[str, object]) -> dict[str, object]:
    """``values`` (option name -> value) in the order of :data:`ASCENT_OPTIONS`, for ``result.params``."""
    order = list(ASCENT_OPTIONS)
    return {name: values[name] for name in sorted(values, key=order.index)}
