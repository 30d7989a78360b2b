"""One converter per Keras layer class: a layer as the file describes it -> the PyTorch modules computing it.

A converter receives the layer (:class:`~.files.LayerSpec`, weights attached), the model-wide :class:`Context` and
the shapes of its inputs as they are here (channels-first, without the batch axis; see :mod:`.modules`), and
returns a :class:`Converted`: a kind (``"conv"``, ``"pool"``, ...) and the pieces computing the layer, in order
(e.g. ``("pad", Pad)``, ``("conv", Conv1d)``). :func:`convert` appends the layer's own ``activation`` and finds
the output shape. The Sequential and the graph builders name the pieces their own way.

Facts the converters respect (see the Keras sources of each version):

- Theano computes a true convolution, so kernels trained with the Theano backend are stored flipped along every
  spatial axis relative to the cross-correlation that PyTorch (and TensorFlow) compute; the flip is undone here.
  Keras 2 records its backend (Theano files are flipped too); Keras 3 never used Theano.
- Keras 1 ``dim_ordering="th"`` stores 2D kernels ``(filters, channels, rows, cols)``, ``"tf"`` stores
  ``(rows, cols, channels, filters)``; Keras 1.2 ``Convolution1D`` kernels are ``(length, 1, channels, filters)``
  (Keras 1.1 and 0.x: ``(filters, channels, length, 1)``); Keras 2/3 kernels are ``(*window, channels, filters)``
  and transposed-convolution kernels ``(*window, filters, channels)``. ``Dense`` weights are ``(in, out)``.
- ``padding="same"``: TensorFlow pads ``max((out - 1) * stride + window - length, 0)`` with the extra element on
  the right (``window`` dilated); Keras's Theano backend pads ``window // 2`` on the left and keeps the first
  ``ceil(length / stride)`` outputs. Average pooling leaves padded positions out of the mean.
- Keras 1 ``BatchNormalization`` (mode 0) stores ``gamma, beta, running_mean, running_std`` where ``running_std``
  holds the variance (Keras 1.1 on); Keras 2/3 store ``gamma, beta, moving_mean, moving_variance`` (gamma/beta
  left out when ``scale``/``center`` is False).
- ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)`` in Keras 1/2 and ``relu6(x + 3) / 6`` in Keras 3; it is the
  default gate activation of Keras 1/2 recurrent layers (``sigmoid`` in tf.keras and Keras 3 configs).
- Recurrent kernels are ``(channels, gates * units)`` with the gates in the order LSTM i, f, c, o and GRU z, r, h
  (PyTorch: i, f, g, o and r, z, n); Keras 1 saved one (W, U, b) triple per gate, LSTM in the order i, c, f, o.
  ``Bidirectional`` stores the forward copy's arrays, then the backward copy's. Keras 2's ``CuDNNLSTM``/``CuDNNGRU``
  use the same kernels with sigmoid gates and a bias of ``2 * gates * units``: the input biases, then the recurrent
  ones (``keras/layers/cudnn_recurrent.py``); cuDNN's GRU applies the reset gate after the recurrent product, as a
  Keras GRU with ``reset_after=True``.
- Separable convolutions (Keras 2/3) are a depthwise convolution (output channel ``c * depth_multiplier + m``,
  kernel ``(*window, channels, depth_multiplier)``) with the layer's strides, padding and dilation, then a pointwise
  one (``(*ones, channels * depth_multiplier, filters)``), then the bias (``ops.separable_conv`` in Keras 3).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import FileFormatError, ModelError
from .files import NESTED_MODELS, KerasFile, LayerSpec
from .modules import (
    AvgPoolSame,
    Bidirectional,
    ChannelsLast,
    Concatenate,
    Exponential,
    GlobalPool,
    HardSigmoid,
    KerasFlatten,
    KerasLayer,
    KerasPermute,
    KerasRecurrent,
    KerasReLU,
    KerasReshape,
    Merge,
    Pad,
    SampleNorm,
    SwitchReverse,
    TimeDistributed,
)

BACKENDS = ("theano", "tensorflow")


@dataclass
class Context:
    """What every converter of one model needs to know besides its layer."""

    backend: str | None  # the caller's choice of convolution convention; None: decided per layer
    file_backend: str  # the backend a Keras 2/3 file records ("" when none)
    any_tf: bool  # a Keras 0.x/1.x layer declares dim_ordering "tf"
    channels_last: bool  # Keras tensors are channels-last (all but Keras 1 dim_ordering "th" models)

    @classmethod
    def of(cls, model: KerasFile, backend: str | None) -> Context:
        """The context of ``model``; ``backend`` is the caller's choice (None: from the file and the layers)."""
        orderings = {layer.cfg.get("dim_ordering") for layer in model.layers} - {None}
        channels_last = True  # Keras 2/3 refuse channels_first layers one by one
        if model.version < 2:
            # Keras 0.x/1.x 2D layers record dim_ordering ("th" when the field is missing); 1D layers are
            # always channels-last.
            th = any("2D" in layer.cls and layer.cfg.get("dim_ordering", "th") == "th" for layer in model.layers)
            if th and "tf" in orderings:
                raise ModelError(f"{model.source}: layers use both dim_ordering 'th' and 'tf', which is not "
                                 "supported")
            channels_last = not th
        return cls(backend, model.backend, "tf" in orderings, channels_last)

    def conv_backend(self, layer: LayerSpec, ordering: str | None) -> str:
        """The backend whose convolution the kernels were trained for: it decides the Theano flip."""
        if self.backend is not None:
            return self.backend
        if layer.version >= 2:
            # Keras 2 records its backend; Theano still convolved (flipped) there, TensorFlow and CNTK correlate.
            return "theano" if self.file_backend == "theano" else "tensorflow"
        if ordering is not None:
            return "tensorflow" if ordering == "tf" else "theano"
        return "tensorflow" if self.any_tf else "theano"

    def axis(self, keras_axis: int, rank: int) -> int:
        """The axis here of Keras's axis ``keras_axis`` of a rank-``rank`` tensor (batch axis included)."""
        k = keras_axis % rank
        if not self.channels_last or rank < 3 or k == 0:
            return k
        return 1 if k == rank - 1 else k + 1

    def torch_shape(self, keras_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape here (without batch) of a Keras tensor of shape ``keras_shape``."""
        return (keras_shape[-1], *keras_shape[:-1]) if self.channels_last and len(keras_shape) >= 2 else keras_shape


@dataclass
class Converted:
    """The modules computing one Keras layer."""

    kind: str  # what the layer is, for names: "conv", "pool", "dense", "activation", ...
    pieces: list[tuple[str, nn.Module]]  # (role, module) in order; the first takes all the layer's inputs
    activated: bool = False  # the layer has its own ``activation`` setting (convolutions, dense layers)
    out_shape: tuple[int, ...] = field(default=())  # set by convert()
    # Outputs after the first that are constant at inference (without the batch axis), e.g. the flag of basenji's
    # StochasticReverseComplement.
    extra: tuple[torch.Tensor, ...] = ()


# ---------------------------------------------------------------------------------------------------------------
# Activations


def _leaky(slope: float) -> Callable[[], nn.Module]:
    return lambda: nn.LeakyReLU(slope)


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU, "selu": nn.SELU,
    "gelu": nn.GELU,  # Keras's gelu defaults to the exact (erf) form, as nn.GELU does
    "softplus": nn.Softplus, "softsign": nn.Softsign, "exponential": Exponential, "swish": nn.SiLU,
    "silu": nn.SiLU, "relu6": nn.ReLU6, "mish": nn.Mish, "leaky_relu": _leaky(0.2),  # Keras 3's default slope
    "hard_silu": nn.Hardswish, "hard_swish": nn.Hardswish,
}
SUPPORTED_ACTIVATIONS = ("linear", "softmax", "hard_sigmoid", *_ACTIVATIONS)


def activation_module(name: object, layer: LayerSpec, ctx: Context, rank: int) -> nn.Module | None:
    """The module computing Keras activation ``name`` on a rank-``rank`` tensor, or None for "linear"."""
    if name == "linear":
        return None
    if name == "softmax":
        return nn.Softmax(ctx.axis(-1, rank) if rank > 2 else -1)
    if name == "hard_sigmoid":
        return nn.Hardsigmoid() if layer.version >= 3 else HardSigmoid()
    if isinstance(name, str) and name in _ACTIVATIONS:
        return _ACTIVATIONS[name]()
    raise ModelError(f"layer {layer.name!r} uses activation {name!r}, which is not supported; supported: "
                     f"{', '.join(SUPPORTED_ACTIVATIONS)}")


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def set_param(param: torch.Tensor, array: np.ndarray) -> None:
    """Copy ``array`` into a parameter or buffer of the same number of elements."""
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).reshape(param.shape))


def _check_size(layer: LayerSpec, what: str, array: np.ndarray, size: int) -> None:
    if array.size != size:
        raise FileFormatError(f"{layer.where()}: expected a {what} of {size} values; found shape {array.shape}")


def _same_pads(length: int, window: int, stride: int, backend: str) -> tuple[int, int]:
    """Left and right padding that reproduce Keras ``"same"`` padding along one axis (``window`` dilated).

    Both backends give ``ceil(length / stride)`` outputs; the right amount may be negative (a crop).
    """
    out = math.ceil(length / stride)
    if backend == "tensorflow":
        left = max((out - 1) * stride + window - length, 0) // 2
    else:
        left = window // 2
    # Right padding (negative: cropping) chosen so that a valid convolution yields exactly `out` positions.
    return left, (out - 1) * stride + window - length - left


def _pads(pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    """Per-axis (left, right) amounts in spatial order -> ``F.pad`` order (last axis first)."""
    pads: list[int] = []
    for left, right in reversed(pairs):
        pads += [left, right]
    return tuple(pads)


def _pad_piece(pairs: list[tuple[int, int]], value: float) -> list[tuple[str, nn.Module]]:
    """``[("pad", Pad)]`` for per-axis (left, right) amounts, or ``[]`` when there is nothing to pad."""
    if all(left == 0 and right == 0 for left, right in pairs):
        return []
    return [("pad", Pad(_pads(pairs), value))]


def _single(layer: LayerSpec, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    if len(shapes) != 1:
        raise ModelError(f"{layer.where()}: takes one input; the model gives it {len(shapes)}")
    return shapes[0]


def _spatial(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]], dims: int) -> tuple[int, ...]:
    """The one input of a layer over ``dims`` spatial axes, checked: ``(channels, *spatial)``."""
    cur = _single(layer, shapes)
    if dims == 1 and not ctx.channels_last:
        raise ModelError(f"{layer.where()}: 1D layers in a model with dim_ordering 'th' are not supported")
    if len(cur) != dims + 1:
        shape = "(channels, steps)" if dims == 1 else "(channels, rows, cols)"
        raise ModelError(f"{layer.where()}: needs a {shape} input; the layers before it give {cur}")
    return cur


def _channels_last_only(layer: LayerSpec) -> None:
    fmt = layer.field("data_format", "channels_last")
    if layer.version >= 2 and fmt != "channels_last":
        raise ModelError(f"{layer.where()}: data_format {fmt!r} is not supported; Keras 2/3 models load with "
                         "channels_last (the Keras default)")


def _dims(layer: LayerSpec) -> int:
    return 1 if "1D" in layer.cls else 2


# ---------------------------------------------------------------------------------------------------------------
# Convolutions


@dataclass
class _ConvSettings:
    window: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str
    bias: bool
    ordering: str | None  # Keras 1 2D: "th" or "tf"
    dilation: tuple[int, ...]
    groups: int


def _conv_settings(layer: LayerSpec, dims: int) -> _ConvSettings:
    """A convolution's settings in any dialect."""
    if layer.version >= 2:
        _channels_last_only(layer)
        groups = layer.field("groups", 1)
        if not isinstance(groups, int) or groups < 1:
            raise FileFormatError(f"{layer.where()}: field 'groups' must be a positive int; found {groups!r}")
        return _ConvSettings(layer.ints("kernel_size", dims), layer.ints("strides", dims, 1),
                             layer.field("padding", "valid"), bool(layer.field("use_bias", True)), None,
                             layer.ints("dilation_rate", dims, 1), groups)
    if dims == 1:
        return _ConvSettings(layer.ints("filter_length", 1), layer.ints("subsample_length", 1, 1),
                             layer.field("border_mode", "valid"), bool(layer.field("bias", True)), None, (1,), 1)
    return _ConvSettings(layer.ints("nb_row", 1) + layer.ints("nb_col", 1), layer.ints("subsample", 2, 1),
                         layer.field("border_mode", "valid"), bool(layer.field("bias", True)),
                         layer.field("dim_ordering", "th"), (1, 1), 1)


def _torch_kernel(layer: LayerSpec, W: np.ndarray, dims: int, ordering: str | None, channels: int,
                  window: tuple[int, ...]) -> np.ndarray:
    """The kernel in PyTorch's ``(filters, channels, *window)`` layout, from the layout the dialect stored."""
    legacy_1d = ("filters", channels, window[0], 1)  # Keras 0.x and 1.1 Convolution1D: (N, channels, steps, 1)
    if layer.version >= 2:  # (*window, channels, filters), whatever the data_format
        stored, to_torch = (*window, channels, "filters"), (dims + 1, dims, *range(dims))
    elif dims == 1 and (layer.version == 0 or (W.ndim == 4 and W.shape[1:] == legacy_1d[1:]
                                               and W.shape[:3] != (window[0], 1, channels))):
        stored, to_torch = legacy_1d, (0, 1, 2, 3)
    elif dims == 1:  # Keras 1.2 Convolution1D: a 'tf' Convolution2D over (steps, 1, channels)
        stored, to_torch = (window[0], 1, channels, "filters"), (3, 2, 0, 1)
    elif ordering == "tf":
        stored, to_torch = (*window, channels, "filters"), (3, 2, 0, 1)
    else:
        stored, to_torch = ("filters", channels, *window), (0, 1, 2, 3)
    if W.ndim != len(stored) or any(s != w for s, w in zip(stored, W.shape) if s != "filters"):
        raise FileFormatError(f"{layer.where()}: expected a kernel of shape {tuple(stored)} (window {window}, "
                              f"{channels} input channels); found {W.shape}")
    kernel = W.transpose(to_torch)
    return kernel[..., 0] if dims == 1 and kernel.ndim == 4 else kernel  # drop the unit axis of a 0.x/1.x kernel


def _conv(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    dims = _dims(layer)
    cur = _spatial(layer, ctx, shapes, dims)
    s = _conv_settings(layer, dims)
    if s.padding not in ("same", "valid") and not (s.padding == "causal" and dims == 1):
        raise ModelError(f"{layer.where()}: padding {s.padding!r} is not supported; use 'same' or 'valid'"
                         + (" (or 'causal')" if dims == 1 else ""))
    if cur[0] % s.groups:
        raise FileFormatError(f"{layer.where()}: {cur[0]} input channels do not split into groups={s.groups}")
    arrays = layer.arrays(["kernel", "bias"] if s.bias else ["kernel"])
    kernel = _torch_kernel(layer, arrays[0], dims, s.ordering, cur[0] // s.groups, s.window)
    backend = ctx.conv_backend(layer, s.ordering)
    if backend == "theano":
        # Theano convolves (flips the kernel); PyTorch cross-correlates: flip every spatial axis.
        kernel = kernel[(slice(None), slice(None)) + (slice(None, None, -1),) * dims]
    span = [(k - 1) * d + 1 for k, d in zip(s.window, s.dilation)]  # the dilated window
    if s.padding == "same":
        pieces = _pad_piece([_same_pads(n, k, st, backend) for n, k, st in zip(cur[1:], span, s.strides)], 0.0)
    elif s.padding == "causal":
        pieces = _pad_piece([(span[0] - 1, 0)], 0.0)
    else:
        pieces = []
    conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(cur[0], kernel.shape[0], s.window, stride=s.strides,
                                                   dilation=s.dilation, groups=s.groups, bias=s.bias)
    set_param(conv.weight, kernel)
    if s.bias:
        _check_size(layer, "bias", arrays[1], kernel.shape[0])
        set_param(conv.bias, arrays[1])
    return Converted("conv", [*pieces, ("conv", conv)], activated=True)


def _depthwise(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """Keras 2/3 ``SeparableConv1D/2D`` and ``DepthwiseConv1D/2D``, as Keras computes them.

    Depthwise: each input channel ``c`` convolved with its own ``depth_multiplier`` kernels (output channel
    ``c * depth_multiplier + m``, with the layer's strides, padding and dilation); separable: then a pointwise
    (window 1, stride 1, valid) convolution to ``filters`` channels. The bias, then the activation, come last.
    """
    dims = _dims(layer)
    cur = _spatial(layer, ctx, shapes, dims)
    if layer.version < 2:
        raise ModelError(f"{layer.where()}: separable and depthwise convolutions load from Keras 2/3 files only")
    if ctx.conv_backend(layer, None) != "tensorflow":
        raise ModelError(f"{layer.where()}: separable and depthwise convolutions trained with Theano are not "
                         "supported")
    s = _conv_settings(layer, dims)
    if s.padding not in ("same", "valid"):
        raise ModelError(f"{layer.where()}: padding {s.padding!r} is not supported; use 'same' or 'valid'")
    separable = layer.cls.startswith("Separable")
    multiplier = layer.ints("depth_multiplier", 1, 1)[0]
    names = ["depthwise_kernel"] + ["pointwise_kernel"] * separable + ["bias"] * s.bias
    arrays = layer.arrays(names)
    D = arrays[0]  # (*window, channels, multiplier)
    if D.shape != (*s.window, cur[0], multiplier):
        raise FileFormatError(f"{layer.where()}: expected a depthwise kernel of shape {(*s.window, cur[0], multiplier)}"
                              f"; found {D.shape}")
    depth = cur[0] * multiplier
    depthwise = (nn.Conv1d if dims == 1 else nn.Conv2d)(cur[0], depth, s.window, stride=s.strides, dilation=s.dilation,
                                                        groups=cur[0], bias=not separable and s.bias)
    set_param(depthwise.weight, D.transpose((dims, dims + 1, *range(dims))).reshape(depth, 1, *s.window))
    span = [(k - 1) * d + 1 for k, d in zip(s.window, s.dilation)]
    pieces = _pad_piece([_same_pads(n, k, st, "tensorflow") for n, k, st in zip(cur[1:], span, s.strides)], 0.0) \
        if s.padding == "same" else []
    if not separable:
        if s.bias:
            _check_size(layer, "bias", arrays[1], depth)
            set_param(depthwise.bias, arrays[1])
        return Converted("conv", [*pieces, ("conv", depthwise)], activated=True)
    P = arrays[1]  # (*ones, channels * multiplier, filters)
    if P.ndim != dims + 2 or P.shape[:dims] != (1,) * dims or P.shape[dims] != depth:
        raise FileFormatError(f"{layer.where()}: expected a pointwise kernel of shape "
                              f"{(*(1,) * dims, depth, 'filters')}; found {P.shape}")
    pointwise = (nn.Conv1d if dims == 1 else nn.Conv2d)(depth, P.shape[-1], 1, bias=s.bias)
    set_param(pointwise.weight, P.transpose((dims + 1, dims, *range(dims))))
    if s.bias:
        _check_size(layer, "bias", arrays[2], P.shape[-1])
        set_param(pointwise.bias, arrays[2])
    return Converted("conv", [*pieces, ("depthwise", depthwise), ("conv", pointwise)], activated=True)


def _conv_transpose(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """Keras 2/3 ``Conv1DTranspose``/``Conv2DTranspose``, TensorFlow convention, no dilation or output_padding."""
    dims = _dims(layer)
    cur = _spatial(layer, ctx, shapes, dims)
    if layer.version < 2:
        raise ModelError(f"{layer.where()}: transposed convolutions load from Keras 2/3 files only")
    s = _conv_settings(layer, dims)
    if ctx.conv_backend(layer, None) != "tensorflow":
        raise ModelError(f"{layer.where()}: transposed convolutions trained with Theano are not supported")
    if any(d != 1 for d in s.dilation) or s.groups != 1 or layer.cfg.get("output_padding") is not None:
        raise ModelError(f"{layer.where()}: dilation_rate, groups and output_padding are not supported here; "
                         "found " + f"{s.dilation}, {s.groups}, {layer.cfg.get('output_padding')!r}")
    if s.padding not in ("same", "valid"):
        raise ModelError(f"{layer.where()}: padding {s.padding!r} is not supported; use 'same' or 'valid'")
    arrays = layer.arrays(["kernel", "bias"] if s.bias else ["kernel"])
    W = arrays[0]  # (*window, filters, channels)
    if W.ndim != dims + 2 or W.shape[:dims] != s.window or W.shape[-1] != cur[0]:
        raise FileFormatError(f"{layer.where()}: expected a kernel of shape {(*s.window, 'filters', cur[0])}; "
                              f"found {W.shape}")
    filters = W.shape[dims]
    crops, extra = [], []
    for n, k, st in zip(cur[1:], s.window, s.strides):
        if s.padding == "valid":
            crops.append((0, 0))
            extra.append(0)
            continue
        # TensorFlow keeps length * stride outputs of the full transposed convolution, starting at the padding
        # the forward 'same' convolution of that length would have put on the left. Past the full output (a
        # window shorter than the stride) the outputs are the bias alone: PyTorch's output_padding gives those.
        full, out = (n - 1) * st + k, n * st
        left = max(k - st, 0) // 2
        right = out - full + left
        crops.append((-left, min(right, 0)))
        extra.append(max(right, 0))
    deconv = (nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d)(cur[0], filters, s.window, stride=s.strides,
                                                                       output_padding=tuple(extra), bias=s.bias)
    set_param(deconv.weight, W.transpose((dims + 1, dims, *range(dims))))  # -> (channels, filters, *window)
    if s.bias:
        _check_size(layer, "bias", arrays[1], filters)
        set_param(deconv.bias, arrays[1])
    pieces: list[tuple[str, nn.Module]] = [("deconv", deconv)]
    pieces += [("crop", p) for _, p in _pad_piece(crops, 0.0)]
    return Converted("deconv", pieces, activated=True)


# ---------------------------------------------------------------------------------------------------------------
# Pooling


def _pool(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    dims = _dims(layer)
    average = layer.cls.startswith(("Average", "AvgPool"))
    if layer.version >= 2:
        pool = layer.ints("pool_size", dims, 2)
        strides = layer.ints("strides", dims, pool)
        padding = layer.field("padding", "valid")
        _channels_last_only(layer)
    else:
        if dims == 1:
            pool = layer.ints("pool_length", 1, 2)
            strides = layer.ints("stride", 1, pool)
        else:
            pool = layer.ints("pool_size", 2, 2)
            strides = layer.ints("strides", 2, pool)
            if (layer.field("dim_ordering", "th") == "tf") != ctx.channels_last:
                raise ModelError(f"{layer.where()}: dim_ordering {layer.cfg.get('dim_ordering')!r} differs from the "
                                 "model's input layout")
        padding = layer.field("border_mode", "valid")
    cur = _spatial(layer, ctx, shapes, dims)
    cls = (nn.AvgPool1d if dims == 1 else nn.AvgPool2d) if average else (nn.MaxPool1d if dims == 1 else nn.MaxPool2d)
    module = cls(pool, stride=strides)
    if padding == "valid":
        return Converted("pool", [("pool", module)])
    if padding != "same":
        raise ModelError(f"{layer.where()}: padding {padding!r} is not supported; use 'same' or 'valid'")
    if ctx.conv_backend(layer, None) != "tensorflow":
        raise ModelError(f"{layer.where()}: padding 'same' is supported for the TensorFlow backend only")
    pairs = [_same_pads(n, p, s, "tensorflow") for n, p, s in zip(cur[1:], pool, strides)]
    if not average:
        return Converted("pool", [*_pad_piece(pairs, -math.inf), ("pool", module)])
    if all(p == (0, 0) for p in pairs):
        return Converted("pool", [("pool", module)])
    with torch.no_grad():  # the share of real positions in each window, for the mean over them alone
        share = module(F.pad(torch.ones((1, 1, *cur[1:])), _pads(pairs)))
    return Converted("pool", [("pool", AvgPoolSame(module, _pads(pairs), 1.0 / share))])


def _global_pool(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    dims = _dims(layer)
    _spatial(layer, ctx, shapes, dims)
    _channels_last_only(layer)
    op = "max" if "Max" in layer.cls else "mean"
    return Converted("pool", [("pool", GlobalPool(op, tuple(range(2, 2 + dims)),
                                                  bool(layer.field("keepdims", False))))])


# ---------------------------------------------------------------------------------------------------------------
# Dense, reshaping, merging


def _dense(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    cur = _single(layer, shapes)
    units = layer.ints("units" if layer.version >= 2 else "output_dim", 1)[0]
    bias = bool(layer.field("use_bias" if layer.version >= 2 else "bias", True))
    arrays = layer.arrays(["kernel", "bias"] if bias else ["kernel"])
    W = arrays[0]
    moves = len(cur) > 1 and ctx.channels_last  # Keras applies Dense to its last axis, the channels here
    features = cur[0] if len(cur) == 1 or moves else cur[-1]
    if W.shape != (features, units):
        raise FileFormatError(f"{layer.where()}: expected weights of shape (in={features}, out={units}); "
                              f"found {W.shape}")
    lin = nn.Linear(W.shape[0], W.shape[1], bias=bias)
    set_param(lin.weight, W.T)  # Keras stores (in, out)
    if bias:
        _check_size(layer, "bias", arrays[1], units)
        set_param(lin.bias, arrays[1])
    return Converted("dense", [("dense", ChannelsLast(lin) if moves else lin)], activated=True)


def _flatten(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    _single(layer, shapes)
    _channels_last_only(layer)
    return Converted("flatten", [("flatten", KerasFlatten(ctx.channels_last))])


def _reshape(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    cur = _single(layer, shapes)
    target = layer.field("target_shape", expected="a list of sizes")
    if not isinstance(target, list) or not all(isinstance(t, int) and (t > 0 or t == -1) for t in target):
        raise FileFormatError(f"{layer.where()}: target_shape must be a list of positive sizes (one may be -1); "
                              f"found {target!r}")
    return Converted("reshape", [("reshape", KerasReshape(tuple(target), ctx.channels_last and len(cur) >= 2,
                                                          ctx.channels_last and len(target) >= 2))])


def _permute(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    cur = _single(layer, shapes)
    dims = layer.field("dims", expected="a list of axes numbered from 1")
    if not isinstance(dims, list) or sorted(dims) != list(range(1, len(cur) + 1)):
        raise FileFormatError(f"{layer.where()}: dims must order the axes 1..{len(cur)}; found {dims!r}")
    return Converted("permute", [("permute", KerasPermute(tuple(dims), ctx.channels_last and len(cur) >= 2))])


def _crop_or_pad(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """``Cropping1D/2D`` and ``ZeroPadding1D/2D``: Keras gives (before, after) per spatial axis."""
    dims = _dims(layer)
    _spatial(layer, ctx, shapes, dims)
    crop = layer.cls.startswith("Cropping")
    key = "cropping" if crop else "padding"
    pairs = _before_after(layer.field(key, expected=f"(before, after) sizes for {dims} axes"), dims)
    if pairs is None:
        raise FileFormatError(f"{layer.where()}: field {key!r} must give (before, after) sizes >= 0 for {dims} "
                              f"axes; found {layer.cfg.get(key)!r}")
    sign = -1 if crop else 1  # F.pad crops with negative amounts
    kind = "crop" if crop else "zeropad"
    return Converted(kind, [(kind, Pad(_pads([(sign * a, sign * b) for a, b in pairs])))])


def _before_after(value: object, dims: int) -> list[tuple[int, int]] | None:
    """Keras's ways of writing (before, after) sizes for ``dims`` axes: ``n``; 1D ``[a, b]``; 2D ``[n, m]``,
    ``[[a, b], [c, d]]`` or (Keras 1) ``[a, b, c, d]``. None when ``value`` is none of these."""
    def ok(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if ok(value):
        return [(value, value)] * dims  # type: ignore[list-item]
    if not isinstance(value, list):
        return None
    if dims == 1:
        return [(value[0], value[1])] if len(value) == 2 and all(ok(v) for v in value) else None
    if len(value) == 4 and all(ok(v) for v in value):
        return [(value[0], value[1]), (value[2], value[3])]
    pairs = [(v, v) if ok(v) else tuple(v) if isinstance(v, list) and len(v) == 2 and all(ok(u) for u in v)
             else None for v in value]
    return pairs if len(pairs) == 2 and None not in pairs else None  # type: ignore[return-value]


def _upsample(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    dims = _dims(layer)
    _spatial(layer, ctx, shapes, dims)
    _channels_last_only(layer)
    if layer.field("interpolation", "nearest") != "nearest":
        raise ModelError(f"{layer.where()}: interpolation {layer.cfg['interpolation']!r} is not supported; use "
                         "'nearest'")
    size = layer.ints("size" if layer.version >= 2 or dims == 2 else "length", dims, 2)
    return Converted("upsample", [("upsample", nn.Upsample(scale_factor=tuple(float(s) for s in size),
                                                           mode="nearest"))])


_MERGE_OPS = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average",
              "Maximum": "maximum", "Minimum": "minimum"}
_KERAS1_MERGE_MODES = {"sum": "add", "mul": "multiply", "ave": "average", "max": "maximum"}


def _merge(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    if len(shapes) < 2:
        raise ModelError(f"{layer.where()}: merges two or more tensors; the model gives it {len(shapes)}")
    if len({len(s) for s in shapes}) != 1:
        raise ModelError(f"{layer.where()}: merges tensors of different ranks {shapes}, which is not supported")
    if layer.cls == "Merge":  # Keras 1
        mode = layer.field("mode", "sum")
        if mode == "concat":
            return Converted("merge", [("concat", Concatenate(ctx.axis(layer.field("concat_axis", -1),
                                                                      len(shapes[0]) + 1)))])
        if mode not in _KERAS1_MERGE_MODES:
            raise ModelError(f"{layer.where()}: merge mode {mode!r} is not supported; supported: concat, "
                             f"{', '.join(_KERAS1_MERGE_MODES)}")
        return Converted("merge", [("merge", Merge(_KERAS1_MERGE_MODES[mode]))])
    if layer.cls == "Concatenate":
        return Converted("merge", [("concat", Concatenate(ctx.axis(layer.field("axis", -1), len(shapes[0]) + 1)))])
    if layer.cls == "Subtract" and len(shapes) != 2:
        raise ModelError(f"{layer.where()}: Subtract takes two tensors; the model gives it {len(shapes)}")
    return Converted("merge", [("merge", Merge(_MERGE_OPS[layer.cls]))])


# ---------------------------------------------------------------------------------------------------------------
# Activation layers, normalisation, layers that do nothing at inference


def _activation(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    cur = _single(layer, shapes)
    rank = len(cur) + 1
    if layer.cls == "Activation":
        act = layer.field("activation", "linear")
        module = activation_module(act, layer, ctx, rank)
        return Converted("activation", [] if module is None else [(str(act), module)])
    if layer.cls == "ReLU":
        max_value, slope = layer.field("max_value", None), float(layer.field("negative_slope", 0.0))
        threshold = float(layer.field("threshold", 0.0))
        plain = max_value is None and slope == 0 and threshold == 0
        return Converted("activation", [("relu", nn.ReLU() if plain else KerasReLU(max_value, slope, threshold))])
    if layer.cls == "LeakyReLU":  # Keras 1/2 call the slope alpha, Keras 3 negative_slope; 0.3 by default
        slope = layer.field("negative_slope", layer.field("alpha", 0.3))
        return Converted("activation", [("leaky_relu", nn.LeakyReLU(float(slope)))])
    if layer.cls == "ELU":
        return Converted("activation", [("elu", nn.ELU(float(layer.field("alpha", 1.0))))])
    axis = layer.field("axis", -1)  # Softmax
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if not isinstance(axis, int):
        raise ModelError(f"{layer.where()}: softmax over axes {axis!r} is not supported; use one axis")
    return Converted("activation", [("softmax", nn.Softmax(ctx.axis(axis, rank) if rank > 2 else -1))])


def _batchnorm(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """Batch normalisation at inference: ``(x - mean) / sqrt(variance + epsilon) * gamma + beta``."""
    cur = _single(layer, shapes)
    rank = len(cur) + 1  # Keras rank, with the batch axis
    axis = layer.field("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if not isinstance(axis, int) or ctx.axis(axis, rank) != 1:
        raise ModelError(f"{layer.where()}: axis {axis!r} is not supported; normalize the channel axis (-1)")
    eps, channels = float(layer.field("epsilon", 1e-3)), cur[0]
    if layer.version == 0:
        raise ModelError(f"{layer.where()}: BatchNormalization loads from Keras 1-3 files only")
    if layer.version == 1:
        mode = layer.field("mode", 0)
        names = ["gamma", "beta", "running_mean", "running_std"]
        arrays = dict(zip(names, layer.arrays(names)))
        for what, array in arrays.items():
            _check_size(layer, what, array, channels)
        if mode == 1:
            gamma, beta = (torch.as_tensor(np.asarray(arrays[k], np.float32).reshape(-1)) for k in ("gamma", "beta"))
            return Converted("batchnorm", [("batchnorm", SampleNorm(ctx.axis(-1, rank), rank, gamma, beta, eps))])
        if mode != 0:
            raise ModelError(f"{layer.where()}: mode {mode!r} normalises with each batch's own statistics, also at "
                             "test time, which is not supported; modes 0 and 1 load")
        variance = arrays.pop("running_std")  # Keras 1.1+ keeps the variance under this name
        arrays = {"gamma": arrays["gamma"], "beta": arrays["beta"], "moving_mean": arrays["running_mean"],
                  "moving_variance": variance}
    else:
        center, scale = bool(layer.field("center", True)), bool(layer.field("scale", True))
        names = ["gamma"] * scale + ["beta"] * center + ["moving_mean", "moving_variance"]
        arrays = dict(zip(names, layer.arrays(names)))
        for what, array in arrays.items():
            _check_size(layer, what, array, channels)
    bn = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}.get(rank)
    if bn is None:
        raise ModelError(f"{layer.where()}: normalising a rank-{rank} tensor is not supported")
    module = bn(channels, eps=eps)
    set_param(module.weight, arrays.get("gamma", np.ones(channels)))
    set_param(module.bias, arrays.get("beta", np.zeros(channels)))
    set_param(module.running_mean, arrays["moving_mean"])
    set_param(module.running_var, arrays["moving_variance"])
    return Converted("batchnorm", [("batchnorm", module)])


def _dropout(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """Dropout (identity at inference); spatial dropout drops whole channels, as Keras does in training."""
    cur = _single(layer, shapes)
    rate = float(layer.field("rate" if layer.version >= 2 else "p", 0.0))
    if layer.cls == "Dropout":
        return Converted("dropout", [("dropout", nn.Dropout(rate))])
    dims = _dims(layer)
    _spatial(layer, ctx, [cur], dims)
    return Converted("dropout", [("dropout", (nn.Dropout1d if dims == 1 else nn.Dropout2d)(rate))])


def _identity(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """Layers that only act in training (noise, regularisation): the identity at inference."""
    _single(layer, shapes)
    return Converted("identity", [("identity", nn.Identity())])


# ---------------------------------------------------------------------------------------------------------------
# Recurrent layers

# Keras 1 saved one (W, U, b) triple per gate: LSTM in the order i, c, f, o, GRU z, r, h; the fused arrays (and
# Keras 2/3) order the gates i, f, c, o and z, r, h.
_KERAS1_GATE_TRIPLES = {"lstm": (0, 2, 1, 3), "gru": (0, 1, 2)}


def _recurrent_module(layer: LayerSpec, ctx: Context, cur: tuple[int, ...], go_backwards: bool) -> nn.Module:
    cell = "lstm" if layer.cls in ("LSTM", "CuDNNLSTM") else "gru"
    gates = 4 if cell == "lstm" else 3
    if layer.version >= 2:
        cudnn = layer.cls.startswith("CuDNN")
        units = layer.ints("units", 1)[0]
        # cuDNN computes sigmoid gates and tanh, and a GRU whose reset gate scales the recurrent term (reset_after)
        recurrent = "sigmoid" if cudnn else \
            layer.field("recurrent_activation", "hard_sigmoid" if layer.version == 2 else "sigmoid")
        use_bias = cudnn or bool(layer.field("use_bias", True))
        reset_after = cell == "gru" and (cudnn or bool(layer.field("reset_after", False)))
        for key in ("return_state", "stateful", "time_major"):
            if layer.field(key, False):
                raise ModelError(f"{layer.where()}: {key}=True is not supported")
        arrays = layer.arrays(["kernel", "recurrent_kernel"] + ["bias"] * use_bias)
        if cudnn:  # one input bias and one recurrent bias per gate, one after the other
            bias = arrays[2]
            if bias.shape != (2 * gates * units,):
                raise FileFormatError(f"{layer.where()}: expected a bias of shape {(2 * gates * units,)}; found "
                                      f"{bias.shape}")
            # an LSTM adds both biases to every gate; a GRU keeps the recurrent one inside the reset gate's product
            arrays[2] = bias[:gates * units] + bias[gates * units:] if cell == "lstm" else bias.reshape(2, -1)
    else:
        units = layer.ints("output_dim", 1)[0]
        recurrent = layer.field("inner_activation", "hard_sigmoid")
        reset_after = False
        if layer.weights is not None and len(layer.weights) == 3 * gates:
            triples = [layer.weights[3 * g:3 * g + 3] for g in _KERAS1_GATE_TRIPLES[cell]]
            arrays = [np.concatenate([t[k][1] for t in triples], axis=-1) for k in range(3)]
        else:
            arrays = layer.arrays(["W", "U", "b"])
    kernel, recurrent_kernel = arrays[0], arrays[1]
    bias = arrays[2] if len(arrays) == 3 else np.zeros((2, gates * units) if reset_after else gates * units)
    for what, array, shape in (("kernel", kernel, (cur[0], gates * units)),
                               ("recurrent kernel", recurrent_kernel, (units, gates * units)),
                               ("bias", bias, (2, gates * units) if reset_after else (gates * units,))):
        if array.shape != shape:
            raise FileFormatError(f"{layer.where()}: expected a {what} of shape {shape}; found {array.shape}")
    activation = "tanh" if layer.cls.startswith("CuDNN") else layer.field("activation", "tanh")
    return KerasRecurrent(cell, *(torch.as_tensor(np.asarray(a, np.float32)) for a in (kernel, recurrent_kernel, bias)),
                          activation_module(activation, layer, ctx, 2) or nn.Identity(),
                          activation_module(recurrent, layer, ctx, 2) or nn.Identity(), cur[1],
                          bool(layer.field("return_sequences", False)), go_backwards, reset_after)


def _recurrent(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """``LSTM``, ``GRU``, and Keras 2's ``CuDNNLSTM``/``CuDNNGRU`` (the same cells with sigmoid gates and two biases
    per gate: LSTM ``i, f, c, o`` input biases then recurrent ones, summed; GRU ``z, r, h`` as a ``reset_after``
    GRU, see ``keras/layers/cudnn_recurrent.py`` of Keras 2.2)."""
    cur = _spatial(layer, ctx, shapes, 1)
    module = _recurrent_module(layer, ctx, cur, bool(layer.field("go_backwards", False)))
    kind = "lstm" if "LSTM" in layer.cls else "gru"
    return Converted(kind, [(kind, module)])


def _bidirectional(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """``Bidirectional``: the wrapped layer's weights for the forward copy, then for the backward copy."""
    cur = _spatial(layer, ctx, shapes, 1)
    inner = layer.wrapped(None)
    if inner.cls not in _RECURRENT:
        raise ModelError(f"{layer.where()}: wraps a {inner.cls!r}; Bidirectional {', '.join(_RECURRENT)} layers are "
                         "supported")
    merge = layer.field("merge_mode", "concat")
    if merge not in ("concat", "sum", "mul", "ave"):
        raise ModelError(f"{layer.where()}: merge_mode {merge!r} is not supported; use concat, sum, mul or ave")
    weights = layer.weights or []
    # Stored names say which copy owns an array (Keras 3 stores list the backward copy first).
    backward = [w for w in weights if "backward" in w[0].rsplit(layer.name, 1)[-1]]
    forward = [w for w in weights if "backward" not in w[0].rsplit(layer.name, 1)[-1]]
    if len(backward) != len(forward):
        forward, backward = weights[:len(weights) // 2], weights[len(weights) // 2:]
    copies = [layer.wrapped(half if layer.weights is not None else None) for half in (forward, backward)]
    go_backwards = bool(copies[0].field("go_backwards", False))
    module = Bidirectional(_recurrent_module(copies[0], ctx, cur, go_backwards),
                           _recurrent_module(copies[1], ctx, cur, not go_backwards), merge,
                           bool(copies[0].field("return_sequences", False)))
    return Converted("bidirectional", [("bidirectional", module)])


_RECURRENT = ("LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU")


def _time_distributed(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """``TimeDistributed``: the wrapped layer applied to each step of Keras's axis 1 (e.g. a ``Dense`` at every
    position, DeepMEL's and DeepCpG's pattern)."""
    cur = _single(layer, shapes)
    if not ctx.channels_last or len(cur) < 2:
        raise ModelError(f"{layer.where()}: needs a channels-last input with a time axis; the layers before it give "
                         f"{cur}")
    inner = layer.wrapped(layer.weights)
    step = (cur[0], *cur[2:])  # one step, channels first
    converted = convert(inner, ctx, [step])
    pieces = converted.pieces
    module = pieces[0][1] if len(pieces) == 1 else KerasLayer(pieces)
    return Converted("timedistributed", [("timedistributed", TimeDistributed(module, cur[1], converted.out_shape))])


def _basenji(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """basenji's (and scBasset's) training-time augmentations, identities at inference as their code says:
    ``StochasticShift`` returns the sequence, ``StochasticReverseComplement`` the sequence and the flag False (a
    constant here), ``SwitchReverse`` its first input reversed where the flag is set (never, at inference)."""
    if layer.cls != "SwitchReverse":
        _single(layer, shapes)
        flag = (torch.zeros((), dtype=torch.bool),) if layer.cls == "StochasticReverseComplement" else ()
        return Converted("identity", [("identity", nn.Identity())], extra=flag)
    if len(shapes) != 2 or len(shapes[0]) + 1 not in (3, 4) or shapes[1] != ():
        raise ModelError(f"{layer.where()}: takes a rank-3 or rank-4 tensor and a flag, as basenji's SwitchReverse "
                         f"does; the model gives it {shapes}")
    return Converted("switch", [("switch_reverse", SwitchReverse(len(shapes[0]) + 1))])


# ---------------------------------------------------------------------------------------------------------------

# Keras class name -> converter. The first eleven keep the order of the original Sequential importer's list.
CONVERTERS: dict[str, Callable[[LayerSpec, Context, list[tuple[int, ...]]], Converted]] = {
    "Convolution1D": _conv, "Convolution2D": _conv, "MaxPooling1D": _pool, "MaxPooling2D": _pool,
    "Flatten": _flatten, "Dense": _dense, "Dropout": _dropout, "Activation": _activation, "Conv1D": _conv,
    "Conv2D": _conv, "BatchNormalization": _batchnorm,
    "AveragePooling1D": _pool, "AveragePooling2D": _pool, "GlobalMaxPooling1D": _global_pool,
    "GlobalAveragePooling1D": _global_pool, "GlobalMaxPooling2D": _global_pool,
    "GlobalAveragePooling2D": _global_pool, "Conv1DTranspose": _conv_transpose,
    "Conv2DTranspose": _conv_transpose, "Cropping1D": _crop_or_pad, "Cropping2D": _crop_or_pad,
    "ZeroPadding1D": _crop_or_pad, "ZeroPadding2D": _crop_or_pad, "UpSampling1D": _upsample,
    "UpSampling2D": _upsample, "Reshape": _reshape, "Permute": _permute, "Add": _merge, "Subtract": _merge,
    "Multiply": _merge, "Average": _merge, "Maximum": _merge, "Minimum": _merge, "Concatenate": _merge,
    "Merge": _merge, "ReLU": _activation, "LeakyReLU": _activation, "ELU": _activation, "Softmax": _activation,
    "SpatialDropout1D": _dropout, "SpatialDropout2D": _dropout, "GaussianNoise": _identity,
    "GaussianDropout": _identity, "AlphaDropout": _identity, "ActivityRegularization": _identity,
    "LSTM": _recurrent, "GRU": _recurrent, "Bidirectional": _bidirectional, "CuDNNLSTM": _recurrent,
    "CuDNNGRU": _recurrent, "TimeDistributed": _time_distributed, "SeparableConv1D": _depthwise,
    "SeparableConv2D": _depthwise, "DepthwiseConv1D": _depthwise, "DepthwiseConv2D": _depthwise,
    "StochasticReverseComplement": _basenji, "StochasticShift": _basenji, "SwitchReverse": _basenji,
}
# Keras 2 aliases of the same classes
for _alias, _cls in (("MaxPool1D", "MaxPooling1D"), ("MaxPool2D", "MaxPooling2D"), ("AvgPool1D", "AveragePooling1D"),
                     ("AvgPool2D", "AveragePooling2D"), ("GlobalMaxPool1D", "GlobalMaxPooling1D"),
                     ("GlobalAvgPool1D", "GlobalAveragePooling1D"), ("GlobalMaxPool2D", "GlobalMaxPooling2D"),
                     ("GlobalAvgPool2D", "GlobalAveragePooling2D"), ("Convolution2DTranspose", "Conv2DTranspose"),
                     ("SeparableConvolution1D", "SeparableConv1D"), ("SeparableConvolution2D", "SeparableConv2D")):
    CONVERTERS[_alias] = CONVERTERS[_cls]
SUPPORTED_LAYERS = tuple(CONVERTERS)


def unsupported(layer: LayerSpec) -> ModelError:
    """The error for a layer no converter handles, naming the way around it."""
    if layer.cls == "Lambda":
        return ModelError(f"{layer.where()}: layer {layer.name!r} is a Keras Lambda, whose Python code the file "
                          "holds as bytecode and cannot be rebuilt; give a torch module for it: "
                          f"custom_layers={{{layer.name!r}: module}} (it receives and returns channels-first "
                          "tensors (N, C, L))")
    if layer.cls in NESTED_MODELS:
        return ModelError(f"{layer.where()}: layer {layer.name!r} is a nested Keras model whose config lists no "
                          f"layers; in Keras, save it on its own (model.get_layer({layer.name!r}).save(...)) and load "
                          f"that, or give a torch module for it: custom_layers={{{layer.name!r}: module}}")
    if layer.cls == "GELU":
        return ModelError(f"{layer.where()}: layer {layer.name!r} is a custom GELU layer, whose code the file does not "
                          "hold; basenji's and scBasset's computes x * sigmoid(1.702 x): give "
                          "custom_layers={'GELU': deepresolve.io.keras.SigmoidGELU()} for those, or the module its "
                          "code computes (torch.nn.GELU() for the exact GELU)")
    if ".ops." in layer.module:
        return ModelError(f"{layer.where()}: {layer.name!r} is a raw Keras operation, not a layer, which is not "
                          f"supported; give a torch module for it: custom_layers={{{layer.name!r}: module}}")
    return ModelError(f"{layer.where()}: layer {layer.name!r} is a Keras {layer.cls!r}, which is not supported; "
                      f"supported layers: {', '.join(SUPPORTED_LAYERS)}; or give a torch module for it: "
                      f"custom_layers={{{layer.name!r}: module}}")


def custom_module(layer: LayerSpec, custom_layers: dict[str, nn.Module]) -> nn.Module | None:
    """The module the caller gave for ``layer`` by its name or, failing that, a copy of the one given for its class
    (one module per layer, so that each layer is a module of its own name)."""
    if layer.name in custom_layers:
        return custom_layers[layer.name]
    return copy.deepcopy(custom_layers[layer.cls]) if layer.cls in custom_layers else None


def convert(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]]) -> Converted:
    """The modules computing ``layer`` on inputs of ``shapes`` (here, without batch), its activation included.

    Raises
    ------
    ModelError
        The layer class, an activation or a setting is not supported, or the input shapes do not fit.
    FileFormatError
        The layer's config or weights are incomplete or of the wrong shape.
    """
    if layer.cls not in CONVERTERS or ".ops." in layer.module:
        raise unsupported(layer)
    converted = CONVERTERS[layer.cls](layer, ctx, shapes)
    out = output_shape([m for _, m in converted.pieces], shapes, layer)
    if converted.activated:
        act = layer.cfg.get("activation")
        module = None if act is None else activation_module(act, layer, ctx, len(out) + 1)
        if module is not None:
            converted.pieces.append((str(act), module))
    converted.out_shape = out
    return converted


def output_shape(modules: list[nn.Module], shapes: list[tuple[int, ...]], layer: LayerSpec) -> tuple[int, ...]:
    """Shape (without batch) after ``modules`` run in a chain, the first on inputs of ``shapes``: one zero pass."""
    with torch.no_grad():
        xs = [torch.zeros((1, *s)) for s in shapes]
        try:
            for m in modules:
                m.eval()
                xs = [m(*xs)]
        except Exception as err:  # a module that cannot take these shapes (custom modules included)
            raise ModelError(f"{layer.where()}: cannot run on inputs of shape {shapes} ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''})") from None
    x = xs[0]
    if not isinstance(x, torch.Tensor):
        raise ModelError(f"{layer.where()}: returned {type(x).__name__}, expected one tensor")
    if any(s == 0 for s in x.shape):
        raise ModelError(f"the layer stack produced an empty tensor of shape {tuple(x.shape)} at {layer.where()}; "
                         "check pool/kernel sizes")
    return tuple(x.shape[1:])
