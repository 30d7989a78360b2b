"""The input of an imported Keras model: its layout, the modules that bring it channels-first, one-hot sequences
put into Keras's layout, and a user's input shape checked against the one the Keras file records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ...errors import ArgumentError, FileFormatError, ModelError
from .files import LayerSpec
from .modules import FromOneHot, Permute


@dataclass
class Built:
    """A built model and what describes its input."""

    module: nn.Module
    keras_input_shape: tuple[int, ...]
    layout: str
    input_shape: tuple[int, ...]  # the shape the module takes, without the batch axis
    keras_layers: dict[str, str]  # module name -> Keras layer name
    out_shape: tuple[int, ...] = ()  # the shape of the (first) output, channels first, without the batch axis


def declared_shape(layer: LayerSpec, fallback: list | None = None, role: str = "the first layer",
                   open_length: bool = False) -> tuple[int, ...]:
    """The input shape (without the batch axis) a first layer or an ``InputLayer`` (``role``) declares; with
    ``open_length``, sizes the file leaves open are None."""
    cfg = layer.cfg
    shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
    if shape is None and cfg.get("input_shape") is not None:  # Keras 0.x writes input_shape without the batch
        shape = [None, *cfg["input_shape"]]
    if shape is None and "input_dim" in cfg:
        shape = [None, cfg["input_dim"]] if cfg.get("input_length") is None else \
            [None, cfg["input_length"], cfg["input_dim"]]
    if shape is None:
        shape = fallback
    if not isinstance(shape, list) or len(shape) < 2 or \
            not all((isinstance(s, int) and not isinstance(s, bool) and s > 0) or (open_length and s is None)
                    for s in shape[1:]):
        raise FileFormatError(f"{layer.where()}: {role} of {layer.source!r} must declare a full "
                              f"batch_input_shape (or input_shape); found {shape}")
    return tuple(shape[1:])


def input_layout(keras_shape: tuple[int, ...], channels_last: bool) -> str:
    """``"1d"`` ``(steps, channels)``, ``"tf2d"`` ``(rows, cols, channels)``, ``"th2d"`` ``(channels, rows, cols)``
    or ``"dense"`` (anything else) for an input of Keras shape ``keras_shape`` (without batch)."""
    if len(keras_shape) == 2 and channels_last:
        return "1d"
    if len(keras_shape) == 3:
        return "tf2d" if channels_last else "th2d"
    return "dense"


def input_adapters(layout: str, keras_shape: tuple[int, ...], onehot: bool,
                   where: str) -> tuple[list[tuple[str, nn.Module]], tuple[int, ...]]:
    """The modules that take the model's input channels-first, and the input shape the model then takes.

    Parameters
    ----------
    layout : str
        :func:`input_layout` of the input.
    keras_shape : tuple of int
        The input shape the Keras file records, without the batch axis.
    onehot : bool
        The model takes one-hot sequences ``(N, 4, L)`` (through a first :class:`FromOneHot`), not Keras's layout.
    where : str
        The file, for messages.

    Returns
    -------
    modules : list of (name, module)
        ``from_onehot`` (when ``onehot``), then ``to_channels_first`` (for "1d" and "tf2d").
    input_shape : tuple of int
        Without the batch axis: ``(channels, steps)`` when ``onehot``, else ``keras_shape``.
    """
    modules: list[tuple[str, nn.Module]] = []
    shape = keras_shape
    if onehot:
        modules.append(("from_onehot", FromOneHot(layout)))  # refuses a "dense" layout
        unit = {"tf2d": 0, "th2d": 1}.get(layout)
        if unit is not None and keras_shape[unit] != 1:
            raise ModelError(f"{where}: the model takes inputs of shape {keras_shape}, not one-hot sequences with a "
                             "unit axis; load it with onehot=False and give inputs in that shape")
        shape = (keras_shape[-1], keras_shape[0]) if layout == "1d" else \
            (keras_shape[2], keras_shape[1]) if layout == "tf2d" else (keras_shape[0], keras_shape[2])
    if layout == "1d":
        modules.append(("to_channels_first", Permute((0, 2, 1))))
    elif layout == "tf2d":
        modules.append(("to_channels_first", Permute((0, 3, 1, 2))))
    return modules, shape


def sequence_input(model: nn.Module, onehot: torch.Tensor) -> torch.Tensor:
    """Put one-hot sequences ``(N, 4, L)`` into the input layout of an imported Keras model.

    Models without a ``keras_layout`` attribute are assumed to take ``(N, 4, L)`` and get ``onehot`` unchanged.

    Returns
    -------
    torch.Tensor
        ``(N, 4, 1, L)`` for "th2d", ``(N, 1, L, 4)`` for "tf2d", ``(N, L, 4)`` for "1d".
    """
    if onehot.dim() != 3:
        raise ArgumentError(f"onehot: expected shape (N, alphabet, length), got {tuple(onehot.shape)}")
    layout = getattr(model, "keras_layout", None)
    if layout is None or getattr(model, "onehot_input", False):
        return onehot
    return FromOneHot(layout)(onehot)


def check_input_shape(model: nn.Module, shape: Sequence[int], argument: str = "input_shape") -> tuple[int, ...]:
    """``shape`` (without the batch axis), refused when it is the model's recorded input shape in another layout.

    A user who read the shape in Keras (``(200, 4)``: steps first) and gives it to a model that takes one-hot
    sequences channels-first (``model.input_shape == (4, 200)``) is told which shape the model takes. Any other
    shape is returned as it is: a model that is fully convolutional may take other lengths, and the forward pass
    that follows reports a shape it cannot take.

    Parameters
    ----------
    model : nn.Module
        Any model; only one with an ``input_shape`` attribute (:func:`~deepresolve.io.keras.load_keras` sets it)
        is checked.
    shape : sequence of int
        The shape the user gave.
    argument : str
        The argument's name for the message (e.g. ``"--input-shape"``).

    Returns
    -------
    tuple of int
    """
    shape = tuple(int(s) for s in shape)
    expected = getattr(model, "input_shape", None)
    if expected is None or shape == tuple(expected) or sorted(shape) != sorted(expected):
        return shape
    expected = tuple(expected)
    if getattr(model, "onehot_input", False):
        given = "the Keras layout, steps first" if shape == getattr(model, "keras_input_shape", None) \
            else "another order of its axes"
        what = f"this model takes one-hot sequences channels first, {expected}; {shape} is {given}"
    else:
        what = f"this model takes Keras's own layout, {expected}"
    raise ArgumentError(f"{argument}: expected {expected} ({what}), got {shape}")
