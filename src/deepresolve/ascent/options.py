"""The ascent's options: one table that the checks, a run store's settings, ``result.params`` and the command line's
help all read.

Each :class:`AscentOption` gives a setting's name, what it accepts (a :class:`~deepresolve._checks.Spec`: its
type and range, the same declarations every public function's parameters have), a one-line help and its default:
one default for every optimiser (the general settings: optimizer, restarts, l2, init_scale, precision,
nonnegative, seed, batch_size), or one per optimiser that uses it (the step rules' own settings: lr, steps, tol,
patience for all three; fiv_tol for "matched" and "bundle"; cuts for "bundle"; start_decay, decay, min_lr for
"paper"). An optimiser's own setting
given with another optimiser is refused, as is a name that is not in the table (with the nearest names as a
suggestion).

Nothing here imports torch.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence

from .._checks import BadValue, Bool, Choice, Float, Int, Seed, Spec, renamed_arguments
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
    spec : Spec
        What it accepts (:class:`~deepresolve._checks.Int`, :class:`~deepresolve._checks.Float`,
        :class:`~deepresolve._checks.Choice` or :class:`~deepresolve._checks.Bool`); its ``label`` is the name
        error messages give (``"l2 (lambda)"``).
    help : str
        One line, for docstrings and the command line.
    default : object
        The default under every optimiser (None for an optimiser's own setting, and for ``batch_size``, whose
        default depends on the device).
    per_optimizer : dict, optional
        An optimiser's own setting: optimiser -> default. Optimisers not listed do not take it.
    settings_key : str, optional
        Its key in a run store's settings (default ``name``); the stores of earlier versions must keep resuming.
    in_settings : bool
        Whether it determines the rows (and so belongs in a run store's settings): ``batch_size`` does not.
    digits : int, optional
        Significant digits a run store compares: a value that a lambda policy computes differs between machines
        in its last bits.
    off : object, optional
        A value that switches the setting off (the results are those of a version without it): a run store's
        settings leave it out at that value, so that stores written before the setting existed keep resuming.
    """

    name: str
    spec: Spec
    help: str
    default: Any = None
    per_optimizer: Mapping[str, int | float] | None = None
    settings_key: str | None = None
    in_settings: bool = True
    digits: int | None = None
    off: Any = None

    def check(self, value: object) -> Any:
        """``value`` checked against the type and range (an int as int, a number as float).

        Raises
        ------
        deepresolve.errors.ArgumentError
        """
        return self.spec.check(value, self.name)

    def describe(self) -> str:
        """``help`` with the accepted values and, for an optimiser's own setting, its default under each, e.g.
        "most steps per row (an integer >= 1; default 500 ('matched', 'bundle'), 10000 ('paper'))."."""
        if isinstance(self.spec, Bool):
            return f"{self.help}."
        if self.per_optimizer is None:
            return f"{self.help} ({self.spec.describe()})."
        users: dict[int | float, list[str]] = {}
        for optimizer, value in self.per_optimizer.items():
            users.setdefault(value, []).append(repr(optimizer))
        defaults = ", ".join(f"{value:g} ({', '.join(names)})" for value, names in users.items())
        only = "" if set(self.per_optimizer) == set(OPTIMIZERS) else "; no other optimiser takes it"
        return f"{self.help} ({self.spec.describe()}; default {defaults}{only})."


#: Every setting of the ascent, in the order of ``result.params``.
ASCENT_OPTIONS: dict[str, AscentOption] = {option.name: option for option in (
    AscentOption("optimizer", Choice(*OPTIMIZERS), "the step rule; 'bundle' takes fewer steps than 'matched' at "
                 "l2 = 1 and more at small l2, 'paper' is the paper's decaying plain ascent", default="matched"),
    AscentOption("restarts", Int(minimum=1), "random starts T per class", default=10),
    AscentOption("l2", Float(above=0, label="l2 (lambda)"), "lambda, the weight of the penalty lambda "
                 "||H - center||^2", default=1.0, digits=4),
    AscentOption("init_scale", Float(above=0), "standard deviation of the random normal starts", default=1.0,
                 digits=4),
    AscentOption("precision", Choice(*PRECISIONS), "the head's precision; under 'bfloat16' (autocast) H and the "
                 "penalty stay float32", default="float32"),
    AscentOption("nonnegative", Bool(), "constrain H >= 0, the domain of a post-ReLU map", default=False),
    AscentOption("seed", Seed(), "each row starts from a map drawn from (seed, class, restart) alone", default=0),
    AscentOption("batch_size", Int(minimum=1), "rows per forward/backward pass, bounding memory; default 256 on the "
                 "CPU, 4096 on a GPU", in_settings=False),
    # The step rules' own settings.
    AscentOption("lr", Float(above=0), "step size: the fraction of the matched step 1 / (2 lambda) ('matched'), of "
                 "the way to the model's maximiser ('bundle'), or the initial rate ('paper')",
                 per_optimizer={"matched": 1.0, "bundle": 1.0, "paper": 0.1}),
    AscentOption("steps", Int(minimum=1), "most steps per row",
                 per_optimizer={"matched": 500, "bundle": 500, "paper": 10_000}),
    AscentOption("tol", Float(minimum=0.0), "convergence tolerance on the objective's gain, relative to |S| + lambda "
                 "||H - center||^2", per_optimizer={"matched": 1e-5, "bundle": 3e-5, "paper": 0.0}),
    AscentOption("patience", Int(minimum=1), "steps without a gain above tol before a row stops",
                 per_optimizer={"matched": 2, "bundle": 3, "paper": 10}),
    AscentOption("fiv_tol", Float(minimum=0.0), "a step also counts as without gain when it moves the row's FIV (the "
                 "best map's spatial mean per channel) by at most fiv_tol x its largest |FIV|; 0 = off",
                 per_optimizer={"matched": 0.0, "bundle": 0.0}, off=0.0),
    AscentOption("cuts", Int(minimum=2, maximum=8), "cuts kept per row; the QP enumerates the 2^cuts - 1 faces of "
                 "their simplex", per_optimizer={"bundle": 6}),
    AscentOption("start_decay", Int(minimum=0), "steps at the initial rate before it decays",
                 per_optimizer={"paper": 500}),
    # Stores written before the rename keep resuming: the settings key is the old name.
    AscentOption("decay", Float(above=0), "exponent of the rate's decay, lr * (step - start_decay) ** -decay",
                 per_optimizer={"paper": 0.2}, settings_key="alpha"),
    AscentOption("min_lr", Float(above=0), "floor of the decay factor: the rate never falls below lr * min_lr",
                 per_optimizer={"paper": 1e-6}),
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


class StepOptions(Spec):
    """The ascent's settings given as extra keywords (a function's ``**options``): each value checked by its entry
    of :data:`ASCENT_OPTIONS` (None: not given); a name that is neither a setting nor one of the function's own
    ``keywords`` is refused with the nearest of them (:func:`check_known`)."""

    def __init__(self, keywords: Sequence[str] = ()):
        self.keywords = tuple(keywords)

    def among(self, keywords: Sequence[str]) -> StepOptions:
        return StepOptions(keywords)

    def check(self, value: object, argument: str) -> dict[str, Any]:
        check_known(value, also=self.keywords)
        return {name: None if v is None else ASCENT_OPTIONS[name].check(v) for name, v in value.items()}

    def describe(self) -> str:
        return f"keyword settings of the ascent ({', '.join(STEP_OPTIONS)})"

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue({"tolerance": 1e-3}, "unknown name", "tolerance: unknown ascent option(s)"),
                *(BadValue({"tol": bad.value}, bad.kind, bad.message)
                  for bad in ASCENT_OPTIONS["tol"].spec.bad_values("tol"))]


@renamed_arguments(alpha="decay")
def check_ascent_options(optimizer: str = "matched", **options: object) -> dict[str, int | float]:
    """Check settings of :func:`~deepresolve.ascent.feature_ascent`; return the optimiser's own.

    For callers that check the ascent's settings outside a declared function (:mod:`deepresolve.distributed`'s
    driver); :func:`~deepresolve.ascent.feature_ascent` and :func:`deepresolve.resolve` declare them
    (``__parameters__``) and call :func:`optimizer_settings`.

    Parameters
    ----------
    optimizer : {"matched", "bundle", "paper"}
    **options
        Any settings of :data:`ASCENT_OPTIONS` (restarts, l2, init_scale, precision, nonnegative, seed,
        batch_size, lr, steps, tol, patience, fiv_tol, cuts, start_decay, decay, min_lr), each checked against its type
        and range. None stands for "not given": the default, or a value chosen later (``l2`` under a policy).
        ``alpha`` is the old name of ``decay`` (FutureWarning).

    Returns
    -------
    dict
        ``DEFAULTS[optimizer]`` updated with the optimiser's own settings given: lr, steps, tol, patience;
        fiv_tol for "matched" and "bundle"; for "bundle", cuts; for "paper", start_decay, decay, min_lr.

    Raises
    ------
    deepresolve.errors.ArgumentError
        A name that is not an ascent option, a value of the wrong type or range, or an optimiser's own setting
        given with another optimiser.
    """
    given = StepOptions().check(options, "options")
    return optimizer_settings(ASCENT_OPTIONS["optimizer"].check(optimizer), given)


def optimizer_settings(optimizer: str, options: Mapping[str, object]) -> dict[str, int | float]:
    """The optimiser's own settings: ``DEFAULTS[optimizer]`` updated with those among ``options`` (checked values;
    None: not given). An optimiser's own setting given with another optimiser is refused.

    Raises
    ------
    deepresolve.errors.ArgumentError
    """
    given = {name: value for name, value in options.items() if value is not None}
    for name, value in given.items():
        users = ASCENT_OPTIONS[name].per_optimizer
        if users is not None and optimizer not in users:
            raise ArgumentError(f"{name}: an option of optimizer={' or '.join(repr(k) for k in users)} only; got "
                                f"{name}={value!r} with optimizer={optimizer!r}")
    return {name: given.get(name, default) for name, default in DEFAULTS[optimizer].items()}


def run_settings(values: Mapping[str, object]) -> dict[str, object]:
    """The settings among ``values`` (option name -> value) that determine the rows, for a run store.

    Each goes under its ``settings_key``, rounded to its ``digits``; settings that do not change the results
    (``batch_size``) are left out, and so are settings at their ``off`` value.
    """
    out: dict[str, object] = {}
    for name, value in values.items():
        option = ASCENT_OPTIONS[name]
        if option.in_settings and not (option.off is not None and value == option.off):
            out[option.settings_key or name] = float(f"{value:.{option.digits}g}") if option.digits else value
    return out


def run_params(values: Mapping[str, object]) -> dict[str, object]:
    """``values`` (option name -> value) in the order of :data:`ASCENT_OPTIONS`, for ``result.params``."""
    order = list(ASCENT_OPTIONS)
    return {name: values[name] for name in sorted(values, key=order.index)}
