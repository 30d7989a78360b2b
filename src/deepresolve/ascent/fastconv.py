"""The CPU fast path of the ascent: a frozen ``nn.Conv1d`` whose backward computes only its input's gradient.

The ascent never needs the weights' gradients. The gradient with respect to the input of a stride-1 convolution is
``grad @ W`` over (out channels) x (kernel taps x in channels) followed by adding the k taps back at their shifts:
one matrix product. Whether that beats torch's ``convolution_backward`` depends on the CPU and its oneDNN kernels;
it was the larger gain of the CPUs measured (figures in ``docs/ascent_figures.md``), and the results are the same
to float32 rounding. :func:`~deepresolve.ascent.feature_ascent` uses it on the CPU in float32.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn


class ConvInputGrad(torch.autograd.Function):
    """``conv1d`` of a frozen weight whose backward computes only the input's gradient, by one matrix product."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int,
                taps: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(taps)
        ctx.shape = (x.shape[-1], padding, weight.shape[1], weight.shape[2])
        return torch.nn.functional.conv1d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (taps,) = ctx.saved_tensors  # (out channels, k * in channels), tap-major
        length, padding, n_in, k = ctx.shape
        n, n_out, w_out = grad.shape
        y = (grad.transpose(1, 2).reshape(-1, n_out) @ taps).view(n, w_out, k, n_in)
        full = grad.new_zeros(n, w_out + k - 1, n_in)
        for j in range(k):
            full[:, j:j + w_out] += y[:, :, j]
        return full[:, padding:padding + length].transpose(1, 2), None, None, None, None


class FrozenConv1d(nn.Module):
    """An ``nn.Conv1d`` (stride 1, no dilation or groups, zero padding) computed through :class:`ConvInputGrad`, for
    the ascent: it shares the convolution's parameters and treats them as constants."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        self.conv = conv
        self.register_buffer("taps", conv.weight.detach().permute(0, 2, 1).reshape(conv.out_channels, -1).contiguous(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ConvInputGrad.apply(x, self.conv.weight, self.conv.bias, self.conv.padding[0], self.taps)


def fast_input_gradients(module: nn.Module) -> nn.Module:
    """``module`` with every plain ``nn.Conv1d`` computed by :class:`FrozenConv1d` (for CPU ascents, which never
    need the weights' gradients).

    Containers on the way are shallow copies with their own child list, so the caller's module is untouched and no
    weight is copied. Other modules, and convolutions with strides, dilation, groups or non-zero padding modes, are
    kept as they are.
    """
    if (type(module) is nn.Conv1d and module.stride == (1,) and module.dilation == (1,) and module.groups == 1
            and module.padding_mode == "zeros" and not isinstance(module.padding, str)):
        return FrozenConv1d(module)
    swapped = OrderedDict((name, child if child is None else fast_input_gradients(child))
                          for name, child in module._modules.items())
    if all(swapped[name] is child for name, child in module._modules.items()):
        return module
    out = copy.copy(module)
    out._modules = swapped
    return out
