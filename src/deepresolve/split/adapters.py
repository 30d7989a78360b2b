"""Adapters between a model as it was published and what DeepResolve analyses: one-hot ``(N, 4, L)`` in, class
scores ``(N, C)`` out.

:func:`adapt` wraps a model in :class:`Adapted`, whose modules keep the model's own names (a layer is named as in
``model.named_modules()``), and which

- takes ``(N, 4, L)`` and hands the model ``(N, L, 4)`` when ``channels_last=True`` (Enformer-style models);
- calls the model with its input alone: optional forward arguments (a control track, ``**kwargs``) keep their
  defaults, or take the constants of ``fixed_inputs`` (a tensor without batch axis is repeated over the batch:
  bpnet-lite's ``X_ctl`` of a model trained with control tracks, e.g. zeros ``(2, L)``);
- turns what the model returns into scores with ``output``:

  ========================  ===========================================================================
  ``None``                  the output as it is (a tensor ``(N, C)``)
  ``1``, ``"1"``            element 1 of a tuple or list (bpnet-lite's ``(profile, counts)``: 1 = counts)
  ``"counts"``              the key of a dict (Enformer's ``"human"``) or the attribute of a named output
  ``"profile:logsumexp"``   that element reduced over its positions: ``sum``, ``mean``, ``logsumexp`` or
                            ``bpnet`` (BPNet's profile contribution score, per track:
                            ``sum(softmax(logits).detach() * logits)``)
  ``"0:sum:200"``           ... over the central 200 positions only
  ``"logsumexp"``           a tensor output reduced over its positions
  a callable                ``f(output) -> (N, C)`` tensor
  ========================  ===========================================================================

  Positions are the last axis of a profile ``(N, L)`` or ``(N, S, L)``, or axis 1 of ``(N, L, S)`` when
  ``channels_last=True``. A reduced profile ``(N, S)`` scores each of its S tracks (a single track: ``(N, 1)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

import torch
from torch import fx, nn

from .._checks import Bool, Instance, OptionalOf, Spec, Via, check_choice
from .._model import type_name
from ..errors import ArgumentError, ModelError

#: The reductions of a profile output over its positions.
REDUCTIONS = ("sum", "mean", "logsumexp", "bpnet")

Output = Union[None, int, str, Callable[[Any], torch.Tensor]]


@dataclass(frozen=True)
class OutputSpec:
    """A parsed ``output``: which element of the model's output, and how a profile is reduced to scores."""

    select: int | str | None = None
    reduce: str | None = None
    window: int | None = None
    function: Callable[[Any], torch.Tensor] | None = None

    @property
    def text(self) -> str | None:
        """The spec as a string (as ``output=`` takes it); a callable is named by its qualified name."""
        if self.function is not None:
            return f"callable {getattr(self.function, '__module__', '?')}.{getattr(self.function, '__qualname__', '?')}"
        parts = [str(p) for p in (self.select, self.reduce, self.window) if p is not None]
        return ":".join(parts) or None


def parse_output(output: Output) -> OutputSpec:
    """``output`` (see the module docstring) checked and parsed; ArgumentError with the grammar when it is wrong."""
    if output is None:
        return OutputSpec()
    if isinstance(output, bool):
        raise ArgumentError(f"output: expected an index, a key, 'key:reduction' or a callable, got {output!r}")
    if isinstance(output, int):
        return OutputSpec(select=output)
    if not isinstance(output, str):
        if callable(output):
            return OutputSpec(function=output)
        raise ArgumentError(f"output: expected an index, a key, 'key:reduction' or a callable, got "
                            f"{type(output).__name__} {output!r}")
    parts = output.split(":")
    if parts[0] in REDUCTIONS:
        parts.insert(0, "")
    if len(parts) > 3 or not parts[0] and len(parts) == 1 or any(not p for p in parts[1:]):
        raise ArgumentError(f"output: expected 'key', 'key:reduction' or 'key:reduction:window' (reductions "
                            f"{', '.join(REDUCTIONS)}), got {output!r}")
    select: int | str | None = parts[0] or None
    if select is not None and select.lstrip("-").isdigit():
        select = int(select)
    reduce = parts[1] if len(parts) > 1 else None
    if reduce is not None and reduce not in REDUCTIONS:
        raise ArgumentError(f"output: expected a reduction among {', '.join(REDUCTIONS)} after ':', got {reduce!r} "
                            f"in {output!r}")
    window = None
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise ArgumentError(f"output: expected a window of at least 1 position after the reduction, got "
                                f"{parts[2]!r} in {output!r}")
        window = int(parts[2])
    return OutputSpec(select=select, reduce=reduce, window=window)


def _is_tensor(value: Any) -> bool:
    """A tensor, or a traced one (while torch.fx traces the model)."""
    return isinstance(value, (torch.Tensor, fx.Proxy))


def _describe(out: Any) -> str:
    if _is_tensor(out):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, dict):
        return f"a dict with keys {', '.join(map(repr, out))}"
    if isinstance(out, (tuple, list)):
        shapes = ", ".join(str(tuple(o.shape)) if _is_tensor(o) else type(o).__name__ for o in out)
        return f"a {type(out).__name__} of {len(out)} ({shapes})"
    return type(out).__name__


def select_output(spec: OutputSpec, out: Any, channels_last: bool) -> torch.Tensor:
    """The scores ``(N, C)`` that ``spec`` makes of the model's output ``out``."""
    if spec.function is not None:
        return spec.function(out)
    if isinstance(spec.select, int):
        if not isinstance(out, (tuple, list)) or not -len(out) <= spec.select < len(out):
            raise ArgumentError(f"output: expected an index into the model's output, {_describe(out)}; "
                                f"got {spec.select}")
        out = out[spec.select]
    elif isinstance(spec.select, str):
        if isinstance(out, dict):
            if spec.select not in out:
                raise ArgumentError(f"output: expected a key of the model's output, {_describe(out)}; "
                                    f"got {spec.select!r}")
            out = out[spec.select]
        elif not _is_tensor(out) and hasattr(out, spec.select):
            out = getattr(out, spec.select)
        else:
            raise ArgumentError(f"output: expected a key of a dict or named output, got {spec.select!r} for "
                                f"{_describe(out)}" + ("; choose a tuple element by its index" if
                                                       isinstance(out, (tuple, list)) else ""))
    if not _is_tensor(out):
        raise ModelError(f"output: expected a choice that gives a tensor (an index or key), the model returns "
                         f"{_describe(out)}")
    if spec.reduce is None:
        return out
    if out.dim() not in (2, 3):
        raise ArgumentError(f"output: expected a profile (N, L) or (N, S, L) to reduce with {spec.reduce!r}, got a "
                            f"tensor of shape {tuple(out.shape)}")
    axis = 1 if channels_last or out.dim() == 2 else 2
    if spec.window is not None:
        length = out.shape[axis]
        if spec.window > length:
            raise ArgumentError(f"output: expected a window of at most the profile's {length} positions, got "
                                f"{spec.window}")
        out = out.narrow(axis, (length - spec.window) // 2, spec.window)
    if spec.reduce == "sum":
        scores = out.sum(axis)
    elif spec.reduce == "mean":
        scores = out.mean(axis)
    elif spec.reduce == "logsumexp":
        scores = torch.logsumexp(out, axis)
    else:  # bpnet: the softmax weights are constants (a stopped gradient), as in BPNet's contribution score
        scores = (torch.softmax(out, axis).detach() * out).sum(axis)
    return scores.unsqueeze(1) if scores.dim() == 1 else scores


class Adapted(nn.Module):
    """``model`` called with its input alone, through the input and output adapters.

    The module tree, parameters and buffers are the model's own (shared, not copied), so every layer keeps its
    name in ``named_modules()`` and ``state_dict()`` is the model's.

    Parameters
    ----------
    model : nn.Module
    output : see the module docstring
    channels_last : bool
        Transpose the ``(N, 4, L)`` input to ``(N, L, 4)`` before the model.
    fixed_inputs : dict, optional
        Keyword arguments of the model's forward, held constant; tensors are given without the batch axis.
    """

    def __init__(self, model: nn.Module, output: Output = None, channels_last: bool = False,
                 fixed_inputs: Mapping[str, Any] | None = None):
        super().__init__()
        # underscored names: the model's submodules (this module's too) may be called "model" or "spec"
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_spec", output if isinstance(output, OutputSpec) else parse_output(output))
        object.__setattr__(self, "_channels_last", bool(channels_last))
        object.__setattr__(self, "_fixed_inputs", dict(fixed_inputs or {}))
        # the model's own tables: its layers keep their names, and moving or freezing this moves or freezes it
        for table in ("_modules", "_parameters", "_buffers", "_non_persistent_buffers_set"):
            object.__setattr__(self, table, getattr(model, table))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._channels_last:
            x = x.transpose(1, 2)
        fixed = {name: torch.broadcast_to(value, (x.shape[0], *value.shape)) if isinstance(value, torch.Tensor)
                 else value for name, value in self._fixed_inputs.items()}
        # .forward, not __call__: the model is not a submodule of this one (its children are), and tracers can
        # then follow the call
        return select_output(self._spec, self._model.forward(x, **fixed), self._channels_last)

    def train(self, mode: bool = True) -> Adapted:
        self._model.train(mode)
        return super().train(mode)

    def _apply(self, fn: Callable, recurse: bool = True) -> Adapted:
        # the fixed inputs are no buffers (the tables are the model's own): they move with the model here
        super()._apply(fn, recurse)
        object.__setattr__(self, "_fixed_inputs", {name: fn(v) if isinstance(v, torch.Tensor) else v
                                                   for name, v in self._fixed_inputs.items()})
        return self

    def extra_repr(self) -> str:
        fixed = ", fixed_inputs=" + ", ".join(self._fixed_inputs) if self._fixed_inputs else ""
        return f"{type_name(self._model)}, output={self._spec.text!r}, channels_last={self._channels_last}{fixed}"


def adapt(model: nn.Module, output: Output = None, channels_last: bool = False,
          fixed_inputs: Mapping[str, Any] | None = None) -> nn.Module:
    """``model`` wrapped in :class:`Adapted` when an adapter is asked for, else ``model`` itself.

    Parameters
    ----------
    model : nn.Module
    output : None, int, str or callable
        Which output of the model to score, and how a profile becomes scores (module docstring).
    channels_last : bool
        The model takes ``(N, L, 4)`` one-hot sequences; DeepResolve still gives it ``(N, 4, L)``.
    fixed_inputs : dict, optional
        Constant keyword arguments of the model's forward (tensors without the batch axis).

    Returns
    -------
    nn.Module
        Takes ``(N, 4, L)``; its layers keep their names.
    """
    spec = parse_output(output)
    check_choice(channels_last, "channels_last", (True, False))
    if fixed_inputs is not None and (not isinstance(fixed_inputs, Mapping)
                                     or not all(isinstance(k, str) for k in fixed_inputs)):
        raise ArgumentError(f"fixed_inputs: expected a dict of keyword arguments of the model's forward, got "
                            f"{type(fixed_inputs).__name__}")
    if spec == OutputSpec() and not channels_last and not fixed_inputs:
        return model
    fixed = {k: torch.as_tensor(v, dtype=torch.float32) if hasattr(v, "__array__") else v
             for k, v in (fixed_inputs or {}).items()}
    return Adapted(model, spec, channels_last, fixed)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside an :class:`Adapted` (a function, not an attribute: any attribute name could be a layer's)."""
    return model._model if isinstance(model, Adapted) else model


def adapter_params(output: Output, channels_last: bool, fixed_inputs: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The adapters as a result records them in its ``params``: the output spec as text, the fixed inputs by
    name and shape."""
    return {"output": parse_output(output).text, "channels_last": bool(channels_last),
            "fixed_inputs": {k: list(v.shape) if hasattr(v, "shape") else repr(v)
                             for k, v in (fixed_inputs or {}).items()}}


def _checked_output(output: object, argument: str) -> object:
    parse_output(output)  # raises with the grammar; the adapter parses it again when it wraps the model
    return output


#: The declarations of the adapter arguments that ``resolve``, ``interactions`` and ``split_model`` share.
ADAPTER_PARAMETERS: dict[str, Spec] = dict(
    output=Via(_checked_output, "an output index, a key, 'key:reduction' or a callable", wrong=2.5),
    channels_last=Bool(),
    fixed_inputs=OptionalOf(Instance(dict, "a dict of keyword arguments of the model's forward")),
)
