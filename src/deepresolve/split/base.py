"""What every way of splitting shares: the error, the example input, a layer's tensor by hooks, the layer list."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .._checks import Array, Bool, OptionalOf, Shape, check_shape, declare
from .._model import Model, find_layer, forward, frozen_copy, model_device, type_name, unscript
from ..errors import ArgumentError, ModelError
from .sequential import is_sequential_path, split_sequential


class SplitError(ModelError):
    """The model could not be split at the requested layer."""


def make_example(input_shape: Sequence[int] | None, inputs: torch.Tensor | np.ndarray | None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """A batch of one input: the first of ``inputs`` (batch axis added if missing) or zeros of ``input_shape``."""
    if inputs is not None:
        x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs, dtype=torch.float32)
        if input_shape is not None:
            shape = check_shape(input_shape, "input_shape")
            if x.dim() not in (len(shape), len(shape) + 1) or tuple(x.shape[x.dim() - len(shape):]) != shape:
                raise ArgumentError(f"inputs: expected arrays of shape (N, *input_shape) = "
                                    f"(N, {', '.join(map(str, shape))}), got shape {tuple(x.shape)}")
        x = x[:1] if input_shape is None or x.dim() > len(input_shape) else x.unsqueeze(0)
    elif input_shape is not None:
        x = torch.zeros((1, *check_shape(input_shape, "input_shape")))
    else:
        raise ArgumentError("input_shape: expected (channels, length) without the batch axis, or inputs=<real inputs>; "
                            "got neither")
    return x.to(device) if device is not None else x


@declare(model=Model(), input_shape=OptionalOf(Shape()), inputs=OptionalOf(Array()), channels_last=Bool())
def list_layers(model: nn.Module, input_shape: Sequence[int] | None = None, *,
                inputs: torch.Tensor | np.ndarray | None = None,
                channels_last: bool = False) -> list[tuple[str, str, tuple[int, ...]]]:
    """Names, types and output shapes (without batch axis) of every module, in call order.

    Parameters
    ----------
    model : nn.Module
        A module or a TorchScript model.
    input_shape : tuple, optional
        Input shape without the batch axis, e.g. ``(4, 1000)``.
    inputs : Tensor, optional
        Real inputs (N, ...) (the first is run) or one input without batch axis, instead of ``input_shape``.
    channels_last : bool
        The model takes ``(N, L, 4)``; ``input_shape`` is still ``(4, L)`` (see :func:`~deepresolve.split.adapt`).

    Returns
    -------
    list of (name, type name, output shape)
    """
    from .adapters import adapt

    model = frozen_copy(adapt(model, channels_last=channels_last))
    x = make_example(input_shape, inputs, model_device(model))
    seen: list[tuple[str, str, tuple[int, ...]]] = []

    def record(name: str, module: nn.Module, out) -> None:
        if isinstance(out, torch.Tensor):
            seen.append((name, type_name(module), tuple(out.shape[1:])))

    # Hooks see ordinary modules; Sequential containers and scripted children (which take no hooks) are
    # recorded while walking the Sequential by hand.
    hooks = [module.register_forward_hook(lambda mod, inp, out, name=name: record(name, mod, out))
             for name, module in model.named_modules()
             if name and not isinstance(module, (nn.Sequential, torch.jit.ScriptModule))]

    def walk(seq: nn.Sequential, h: torch.Tensor, prefix: str) -> torch.Tensor:
        for name, child in seq.named_children():
            h = walk(child, h, f"{prefix}{name}.") if isinstance(child, nn.Sequential) else child(h)
            if isinstance(child, (nn.Sequential, torch.jit.ScriptModule)):
                record(prefix + name, child, h)
        return h

    try:
        if isinstance(model, nn.Sequential):
            with torch.no_grad():
                try:
                    walk(model, x, "")
                except Exception as err:
                    raise ModelError(f"the model failed on an input of shape {tuple(x.shape)}: {type(err).__name__}: "
                                     f"{str(err).splitlines()[0] if str(err) else ''}") from err
        elif isinstance(model, torch.jit.ScriptModule):
            raise SplitError("only TorchScript models scripted from an nn.Sequential can be listed and split; "
                             "script the Sequential, or pass the Python module")
        else:
            forward(model, x, "the model")
    finally:
        for h in hooks:
            h.remove()
    return seen


class _Stop(Exception):
    """Raised by a forward hook to end the forward pass once the layer's tensor is captured."""


def capture(model: nn.Module, layer: str, inputs: torch.Tensor, *, at: str = "output",
            error: type[Exception] = ArgumentError) -> torch.Tensor:
    """The input (``at="input"``) or output of module ``layer`` when ``model`` runs on ``inputs``.

    The forward pass stops at the layer (the rest of the network is not computed); the autograd graph is kept.
    TorchScript modules take no hooks: a layer inside one is reached by running the part of the model before it,
    which needs a chain of Sequentials from the top down to the layer.
    """
    module = find_layer(model, layer, error)
    if isinstance(module, torch.jit.ScriptModule) or isinstance(model, torch.jit.ScriptModule):
        return _capture_scripted(model, layer, inputs, at, error)
    box: list[torch.Tensor] = []

    def hook(_module, inp, out):
        box.append(inp[0] if at == "input" else out)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not box:
        raise error(f"layer {layer!r} was never called during the forward pass")
    return box[0]


def _capture_scripted(model: nn.Module, layer: str, inputs: torch.Tensor, at: str,
                      error: type[Exception]) -> torch.Tensor:
    """:func:`capture` without hooks: the Sequential prefix of ``model`` before (or through) ``layer``, run."""
    plain = unscript(model)
    if not is_sequential_path(plain, layer):
        raise error(f"layer: expected a layer reachable through Sequential containers in a TorchScript model (hooks do "
                    f"not work on TorchScript), got {layer!r}; load the model as a Python nn.Module instead")
    before, _ = split_sequential(plain, layer.split("."), at)
    return nn.Sequential(OrderedDict(before))(inputs)


class HookBody(nn.Module):
    """Runs the model only as far as ``layer`` (input or output) and returns that tensor."""

    def __init__(self, model: nn.Module, layer: str, at: str):
        super().__init__()
        self.model, self.layer, self.at = model, layer, at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return capture(self.model, self.layer, x, at=self.at, error=SplitError)
