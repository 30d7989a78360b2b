"""The small PyTorch modules an imported Keras model is made of, besides ``torch.nn``'s own.

Inside an imported model every tensor of rank >= 3 is channels-first ``(N, C, *spatial)``: a Keras tensor
``(N, *spatial, C)`` with its last axis moved to position 1 (``channels_last`` models, i.e. every Keras 2/3 model
and Keras 1 models with ``dim_ordering="tf"`` or 1D layers), or the Keras tensor itself (Keras 1
``dim_ordering="th"``). Modules that must see Keras's own layout (flatten, reshape, permute) move the axis back
and forth themselves.

Every forward here is traceable by ``torch.fx``: shapes and choices are fixed when the model is built, never read
from a tensor, so that :func:`deepresolve.split_model` can cut an imported graph at any layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelError


class Pad(nn.Module):
    """Constant padding of the trailing spatial axes; negative amounts crop (Keras ``same`` padding, cropping).

    Parameters
    ----------
    pads : tuple of int
        ``torch.nn.functional.pad`` order: (last-axis left, last-axis right, second-to-last left, ...).
    value : float
        Fill value (0 for convolutions, -inf for max pooling).
    """

    def __init__(self, pads: tuple[int, ...], value: float = 0.0) -> None:
        super().__init__()
        self.pads = tuple(int(p) for p in pads)
        self.value = float(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, value=self.value)

    def extra_repr(self) -> str:
        return f"pads={self.pads}, value={self.value}"


class Permute(nn.Module):
    """``x.permute(*dims)``: converts between Keras channels-last and PyTorch channels-first layouts."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class KerasFlatten(nn.Module):
    """Flatten that matches Keras's element order.

    Feature maps here are channels-first ``(N, C, *spatial)``; a model built with channels-last Keras layout
    (``dim_ordering="tf"``, any ``Convolution1D``, every Keras 2/3 model) flattened ``(N, *spatial, C)``, so the
    channel axis is moved last before flattening (a no-op on an ``(N, D)`` tensor).
    """

    def __init__(self, channels_last: bool) -> None:
        super().__init__()
        self.channels_last = bool(channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.movedim(1, -1)
        return x.reshape(x.shape[0], -1)

    def extra_repr(self) -> str:
        return f"channels_last={self.channels_last}"


class FromOneHot(nn.Module):
    """Maps one-hot sequences ``(N, 4, L)`` to a Keras model's input layout.

    ``(N, 4, 1, L)`` for "th2d", ``(N, 1, L, 4)`` for "tf2d", ``(N, L, 4)`` for "1d". The one home of this
    mapping: :func:`~deepresolve.io.keras.load_keras` puts it first in the model (``onehot=True``),
    :func:`~deepresolve.io.keras.sequence_input` applies it outside the model.
    """

    def __init__(self, layout: str) -> None:
        super().__init__()
        if layout not in ("th2d", "tf2d", "1d"):
            raise ModelError(f"model: expected a Keras input layout that takes sequences ('th2d', 'tf2d' or '1d'), "
                             f"got {layout!r}")
        self.layout = layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "th2d":
            return x.unsqueeze(2)
        if self.layout == "tf2d":
            return x.transpose(1, 2).unsqueeze(1)
        return x.transpose(1, 2)

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}"


class HardSigmoid(nn.Module):
    """Keras 1/2 ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)`` (Keras 3 and PyTorch use slope 1/6 instead)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (0.2 * x + 0.5).clamp(0.0, 1.0)


class SigmoidGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the ``GELU`` layer of basenji and scBasset (an approximation of the exact GELU that
    Keras's ``gelu`` activation computes). Give it for their custom layer: ``custom_layers={"GELU": SigmoidGELU()}``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(1.702 * x) * x


class Exponential(nn.Module):
    """Keras ``exponential`` activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)


class KerasReLU(nn.Module):
    """Keras's ``ReLU`` layer with its options, computed as Keras's backends compute it.

    ``x`` above ``threshold`` (clipped to ``[0, max_value]`` when given), ``negative_slope * (x - threshold)``
    at or below it.
    """

    def __init__(self, max_value: float | None, negative_slope: float, threshold: float) -> None:
        super().__init__()
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * (x > self.threshold).to(x.dtype) if self.threshold != 0 else F.relu(x)
        if self.max_value is not None:
            y = y.clamp(0.0, self.max_value)
        if self.negative_slope != 0:
            y = y - self.negative_slope * F.relu(self.threshold - x)
        return y

    def extra_repr(self) -> str:
        return f"max_value={self.max_value}, negative_slope={self.negative_slope}, threshold={self.threshold}"


class GlobalPool(nn.Module):
    """Keras ``GlobalMaxPooling``/``GlobalAveragePooling``: max or mean over the spatial axes ``dims``."""

    def __init__(self, op: str, dims: tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        if op not in ("max", "mean"):
            raise ValueError(f"op: expected 'max' or 'mean', got {op!r}")
        self.op, self.dims, self.keepdim = op, tuple(dims), bool(keepdim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "max":
            return x.amax(dim=self.dims, keepdim=self.keepdim)
        return x.mean(dim=self.dims, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"op={self.op!r}, dims={self.dims}, keepdim={self.keepdim}"


class AvgPoolSame(nn.Module):
    """Average pooling with TensorFlow ``SAME`` padding: padded positions are left out of each window's mean.

    Parameters
    ----------
    pool : nn.AvgPool1d or nn.AvgPool2d
        The valid pooling, run on the zero-padded input.
    pads : tuple of int
        ``F.pad`` order.
    scale : Tensor, shape (1, 1, *output spatial shape)
        Window size / number of real (unpadded) positions in each window.
    """

    def __init__(self, pool: nn.Module, pads: tuple[int, ...], scale: torch.Tensor) -> None:
        super().__init__()
        self.pool = pool
        self.pads = tuple(int(p) for p in pads)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, self.pads)) * self.scale

    def extra_repr(self) -> str:
        return f"pads={self.pads}"


class ChannelsLast(nn.Module):
    """Runs ``inner`` with the channel axis last (e.g. a Keras ``Dense`` applied to every position of a map)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.movedim(1, -1)).movedim(-1, 1)


class Merge(nn.Module):
    """Keras ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum`` (and Keras 1 ``Merge``)."""

    OPS = ("add", "subtract", "multiply", "average", "maximum", "minimum")

    def __init__(self, op: str) -> None:
        super().__init__()
        if op not in self.OPS:
            raise ValueError(f"op: expected one of {self.OPS}, got {op!r}")
        self.op = op

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op == "subtract":
            return xs[0] - xs[1]
        out = xs[0]
        for x in xs[1:]:
            if self.op in ("add", "average"):
                out = out + x
            elif self.op == "multiply":
                out = out * x
            elif self.op == "maximum":
                out = torch.maximum(out, x)
            else:
                out = torch.minimum(out, x)
        return out / len(xs) if self.op == "average" else out

    def extra_repr(self) -> str:
        return f"op={self.op!r}"


class Concatenate(nn.Module):
    """Keras ``Concatenate`` along Keras's ``axis``, which is ``dim`` here."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class KerasReshape(nn.Module):
    """Keras ``Reshape`` (``shape`` without the batch axis, in Keras's layout; -1 allowed).

    ``move_in``: the input is channels-first here and Keras saw it channels-last; ``move_out``: the same for the
    output.
    """

    def __init__(self, shape: tuple[int, ...], move_in: bool, move_out: bool) -> None:
        super().__init__()
        self.shape, self.move_in, self.move_out = tuple(int(s) for s in shape), bool(move_in), bool(move_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.move_in:
            x = x.movedim(1, -1)
        x = x.reshape(x.shape[0], *self.shape)
        return x.movedim(-1, 1) if self.move_out else x

    def extra_repr(self) -> str:
        return f"shape={self.shape}, move_in={self.move_in}, move_out={self.move_out}"


class KerasPermute(nn.Module):
    """Keras ``Permute`` (``dims`` numbered from 1, without the batch axis, in Keras's layout)."""

    def __init__(self, dims: tuple[int, ...], channels_last: bool) -> None:
        super().__init__()
        self.dims, self.channels_last = tuple(int(d) for d in dims), bool(channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.movedim(1, -1)
        x = x.permute(0, *self.dims)
        return x.movedim(-1, 1) if self.channels_last else x

    def extra_repr(self) -> str:
        return f"dims={self.dims}, channels_last={self.channels_last}"


class SampleNorm(nn.Module):
    """Keras 1 ``BatchNormalization(mode=1)``: each sample normalised over Keras's last axis (``dim`` here).

    ``(x - mean) / (sqrt(var + eps) + eps) * gamma + beta``, the variance biased, as Keras 1 computed it.
    """

    def __init__(self, dim: int, rank: int, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.dim, self.eps = int(dim) % rank, float(eps)
        # gamma and beta broadcast along `dim` of a rank-`rank` tensor (batch axis included)
        self.view = tuple(-1 if i == self.dim else 1 for i in range(rank))
        self.weight = nn.Parameter(gamma)
        self.bias = nn.Parameter(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=self.dim, keepdim=True)
        std = torch.sqrt(x.var(dim=self.dim, unbiased=False, keepdim=True) + self.eps)
        return (x - mean) / (std + self.eps) * self.weight.view(self.view) + self.bias.view(self.view)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"


class KerasLayer(nn.Module):
    """The modules computing one Keras layer of a functional model, run in order (e.g. ``pad``, ``conv``, ``relu``).

    Not an ``nn.Sequential``, so that the layer itself is listed and hooked under its Keras name while its pieces
    stay reachable as ``<layer>.conv`` (e.g. the output before the activation).
    """

    def __init__(self, pieces: list[tuple[str, nn.Module]]) -> None:
        super().__init__()
        for name, module in pieces:
            self.add_module(name, module)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        modules = iter(self._modules.values())
        x = next(modules)(*xs)
        for module in modules:
            x = module(x)
        return x


class KerasRecurrent(nn.Module):
    """A Keras ``LSTM`` or ``GRU`` layer at inference, step by step as Keras computes it (zero initial state).

    Keras's gate activations are kept (``hard_sigmoid`` by default in Keras 1/2, which ``nn.LSTM`` cannot
    compute); the loop over the ``steps`` time steps is fixed when the model is built, so ``torch.fx`` unrolls it.

    Parameters
    ----------
    cell : {"lstm", "gru"}
    kernel : Tensor, shape (channels, gates * units)
        Keras's gate order: LSTM i, f, c, o; GRU z, r, h.
    recurrent_kernel : Tensor, shape (units, gates * units)
    bias : Tensor, shape (gates * units,) or (2, gates * units) (GRU ``reset_after``: input and recurrent biases)
    activation, recurrent_activation : nn.Module
    steps : int
        Sequence length.
    return_sequences, go_backwards, reset_after : bool
        Keras's settings. The input is channels-first ``(N, channels, steps)``; the output ``(N, units, steps)``
        with ``return_sequences`` (in processing order, reversed for ``go_backwards`` as in Keras), else
        ``(N, units)``.
    """

    def __init__(self, cell: str, kernel: torch.Tensor, recurrent_kernel: torch.Tensor, bias: torch.Tensor,
                 activation: nn.Module, recurrent_activation: nn.Module, steps: int, return_sequences: bool,
                 go_backwards: bool, reset_after: bool = False) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell: expected 'lstm' or 'gru', got {cell!r}")
        self.cell, self.units, self.steps = cell, int(recurrent_kernel.shape[0]), int(steps)
        self.return_sequences, self.go_backwards, self.reset_after = bool(return_sequences), bool(go_backwards), \
            bool(reset_after)
        self.kernel = nn.Parameter(kernel)
        self.recurrent_kernel = nn.Parameter(recurrent_kernel)
        self.bias = nn.Parameter(bias)
        self.activation = activation
        self.recurrent_activation = recurrent_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.units
        bias_in = self.bias[0] if self.reset_after else self.bias
        xw = x.movedim(1, -1) @ self.kernel + bias_in  # (N, steps, gates * units): the input's part of every gate
        h = torch.zeros_like(xw[:, 0, :u])
        c = h
        outputs = []
        for t in (range(self.steps - 1, -1, -1) if self.go_backwards else range(self.steps)):
            if self.cell == "lstm":
                z = xw[:, t] + h @ self.recurrent_kernel
                i = self.recurrent_activation(z[:, :u])
                f = self.recurrent_activation(z[:, u:2 * u])
                c = f * c + i * self.activation(z[:, 2 * u:3 * u])
                h = self.recurrent_activation(z[:, 3 * u:]) * self.activation(c)
            else:
                xt = xw[:, t]
                if self.reset_after:  # the reset gate scales the recurrent term, its bias included
                    rec = h @ self.recurrent_kernel + self.bias[1]
                    zr = self.recurrent_activation(xt[:, :2 * u] + rec[:, :2 * u])
                    candidate = self.activation(xt[:, 2 * u:] + zr[:, u:] * rec[:, 2 * u:])
                else:
                    zr = self.recurrent_activation(xt[:, :2 * u] + h @ self.recurrent_kernel[:, :2 * u])
                    candidate = self.activation(xt[:, 2 * u:] + (zr[:, u:] * h) @ self.recurrent_kernel[:, 2 * u:])
                h = zr[:, :u] * h + (1 - zr[:, :u]) * candidate
            outputs.append(h)
        return torch.stack(outputs, dim=2) if self.return_sequences else h

    def extra_repr(self) -> str:
        return (f"cell={self.cell!r}, units={self.units}, steps={self.steps}, return_sequences={self.return_sequences}"
                f", go_backwards={self.go_backwards}, reset_after={self.reset_after}")


class Bidirectional(nn.Module):
    """Keras ``Bidirectional``: a forward and a backward (``go_backwards``) layer, outputs merged.

    With ``return_sequences`` the backward output is put back in time order first, as Keras does. ``merge``:
    "concat" (along the units), "sum", "mul" or "ave".
    """

    def __init__(self, forward_layer: nn.Module, backward_layer: nn.Module, merge: str, return_sequences: bool) -> None:
        super().__init__()
        if merge not in ("concat", "sum", "mul", "ave"):
            raise ValueError(f"merge: expected 'concat', 'sum', 'mul' or 'ave', got {merge!r}")
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.merge, self.return_sequences = merge, bool(return_sequences)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.forward_layer(x)
        y_rev = self.backward_layer(x)
        if self.return_sequences:
            y_rev = y_rev.flip(2)
        if self.merge == "concat":
            return torch.cat([y, y_rev], dim=1)
        if self.merge == "sum":
            return y + y_rev
        if self.merge == "mul":
            return y * y_rev
        return (y + y_rev) / 2

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}, return_sequences={self.return_sequences}"


class ReverseComplement(nn.Module):
    """The reverse complement of one-hot sequences held channels-first ``(N, 4, ..., L)`` in the order A, C, G, T:
    the channels and the positions reversed (an input of a model that reads both strands)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip((1, -1))


class SwitchReverse(nn.Module):
    """basenji's ``SwitchReverse``: ``x`` with its spatial axes reversed where the flag is set (a sequence that was
    reverse-complemented in training); at inference the flag is False and ``x`` passes unchanged.

    Parameters
    ----------
    rank : int
        The rank of ``x`` (batch axis included): 3 or 4. ``x`` is channels-first, so its spatial axes are 2.. here.
    """

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = int(rank)

    def forward(self, x: torch.Tensor, reverse: torch.Tensor) -> torch.Tensor:
        flag = reverse.reshape(-1, *([1] * (self.rank - 1))) != 0
        return torch.where(flag, x.flip(tuple(range(2, self.rank))), x)

    def extra_repr(self) -> str:
        return f"rank={self.rank}"


class TimeDistributed(nn.Module):
    """Keras ``TimeDistributed``: ``inner`` applied to each step of Keras's axis 1 (axis 2 here, channels first).

    Parameters
    ----------
    inner : nn.Module
        Computes the wrapped layer on one step, channels-first, batch axis first.
    steps : int
        The number of steps.
    inner_shape : tuple of int
        The shape ``inner`` returns, without the batch axis.
    """

    def __init__(self, inner: nn.Module, steps: int, inner_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.inner, self.steps, self.inner_shape = inner, int(steps), tuple(int(s) for s in inner_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x.movedim(2, 1).flatten(0, 1))  # (N * steps, *step shape)
        return y.reshape(-1, self.steps, *self.inner_shape).movedim(1, 2)

    def extra_repr(self) -> str:
        return f"steps={self.steps}, inner_shape={self.inner_shape}"
