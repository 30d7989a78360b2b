"""Input-dependent attribution baselines (captum), with one calling convention for all methods.

Methods
-------
``"saliency"``
    Signed gradient of the logit (no absolute value, as in the paper's Fig. 3).
``"gradient_x_input"``
    Gradient times input (times the layer's activation for :func:`layer_attribution`).
``"deeplift"``
    captum DeepLift (Rescale rule) against a reference: all zeros, or dinucleotide-shuffled
    copies of each input (tangermeme), the attributions averaged over the shuffles.

Attributions are taken with respect to the pre-sigmoid logit: a trailing ``nn.Sigmoid`` /
``nn.Softmax`` module is stripped, and the model is put in eval mode (dropout off).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from captum.attr import (
    DeepLift,
    InputXGradient,
    LayerDeepLift,
    LayerGradientXActivation,
    Saliency,
)
from torch import nn

from .._checks import check_choice, check_int
from .._model import find_layer, model_device, strip_probability
from ..errors import ArgumentError

METHODS = ("saliency", "gradient_x_input", "deeplift")


def _prepare(model: nn.Module, inputs, method: str, cls: int) -> tuple[nn.Module, torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model: expected a torch nn.Module, got {type(model).__name__}")
    check_choice(method, "method", METHODS)
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != 4:
        raise ArgumentError(f"inputs: expected one-hot of shape (N, 4, L) or (4, L), got shape {tuple(x.shape)}")
    cls = check_int(cls, "cls", minimum=0)
    net = strip_probability(model)[0].eval()
    x = x.to(model_device(net))
    with torch.no_grad():
        n_out = net(x[:1]).reshape(1, -1).shape[1]
    if cls >= n_out:
        raise ArgumentError(f"cls: expected an output index in [0, {n_out - 1}] (the model has {n_out} output(s)), "
                            f"got {cls}")
    # captum would set this itself, with a warning per call
    return net, x.requires_grad_()


def _references(x: torch.Tensor, baseline, n_shuffles: int, seed: int) -> torch.Tensor:
    """References of shape (S, N, 4, L): zeros, a given array, or dinucleotide shuffles."""
    if baseline is None or (isinstance(baseline, str) and baseline == "zeros"):
        return torch.zeros((1, *x.shape))
    if isinstance(baseline, str):
        check_choice(baseline, "baseline", ("zeros", "shuffle"))
        n_shuffles, seed = check_int(n_shuffles, "n_shuffles", minimum=1), check_int(seed, "seed", minimum=0)
        from tangermeme.ersatz import dinucleotide_shuffle

        shuffled = dinucleotide_shuffle(x.detach(), n=n_shuffles, random_state=seed)  # (N, S, 4, L)
        return shuffled.permute(1, 0, 2, 3).float()
    try:
        ref = torch.as_tensor(np.asarray(baseline, dtype=np.float32))
    except (TypeError, ValueError):
        raise ArgumentError(f"baseline: expected None, 'zeros', 'shuffle' or an array, got "
                            f"{type(baseline).__name__} {baseline!r:.60}") from None
    if ref.shape == x.shape[1:]:
        ref = ref.expand_as(x)
    if ref.shape != x.shape:
        raise ArgumentError(f"baseline: expected an array of the inputs' shape {tuple(x.shape)} or "
                            f"{tuple(x.shape[1:])}, got shape {tuple(ref.shape)}")
    return ref[None]


def _deeplift(explainer, x: torch.Tensor, refs: torch.Tensor, cls: int) -> np.ndarray:
    total = None
    with warnings.catch_warnings():
        # captum warns that it sets requires_grad on the inputs; that is expected here.
        warnings.simplefilter("ignore", UserWarning)
        for ref in refs:
            a = explainer.attribute(x, baselines=ref.to(x.device).contiguous(), target=cls).detach()
            total = a if total is None else total + a
    return (total / len(refs)).cpu().numpy()


def attribute(model: nn.Module, inputs, *, method: str, cls: int = 0, baseline=None,
              n_shuffles: int = 10, seed: int = 0) -> np.ndarray:
    """Per-base attribution scores of the input.

    Parameters
    ----------
    model : nn.Module
        Maps one-hot (N, 4, L) to (N, C) outputs.
    inputs : (N, 4, L) or (4, L) array
    method : {"saliency", "gradient_x_input", "deeplift"}
    cls : int
        Output index whose logit is explained.
    baseline : None, "zeros", "shuffle" or array
        DeepLIFT reference (ignored by the gradient methods): None/"zeros" is the all-zero
        input; "shuffle" averages over ``n_shuffles`` dinucleotide shuffles of each input;
        an array of shape (N, 4, L) or (4, L) is used as is.

    Returns
    -------
    (N, 4, L) float32 array. For DeepLIFT the scores of each sequence sum to
    f(x) - mean f(reference) (completeness).
    """
    net, x = _prepare(model, inputs, method, cls)
    if method == "saliency":
        out = Saliency(net).attribute(x, target=cls, abs=False)
    elif method == "gradient_x_input":
        out = InputXGradient(net).attribute(x, target=cls)
    else:
        return _deeplift(DeepLift(net), x, _references(x, baseline, n_shuffles, seed), cls).astype(np.float32)
    return out.detach().cpu().numpy().astype(np.float32)


def layer_attribution(model: nn.Module, layer: str, inputs, *, method: str, cls: int = 0, baseline=None,
                      n_shuffles: int = 10, seed: int = 0) -> np.ndarray:
    """Attribution scores of every unit of an intermediate layer.

    Parameters
    ----------
    model : nn.Module
    layer : str
        A name from ``model.named_modules()``; its output (N, K, W) is attributed.
    inputs : (N, 4, L) or (4, L) array
    method : {"saliency", "gradient_x_input", "deeplift"}
        Saliency is the signed gradient of the logit w.r.t. the layer output;
        gradient_x_input multiplies it by the layer output; DeepLIFT gives the layer units'
        contributions relative to the reference (see :func:`attribute` for ``baseline``).
    cls : int
        Output index whose logit is explained.

    Returns
    -------
    (N, K, W) float32 array (W = 1 for a layer without a spatial axis, e.g. after global
    pooling + flatten).
    """
    net, x = _prepare(model, inputs, method, cls)
    mod = find_layer(net, layer)
    if method == "saliency":
        out = LayerGradientXActivation(net, mod, multiply_by_inputs=False).attribute(x, target=cls)
    elif method == "gradient_x_input":
        out = LayerGradientXActivation(net, mod, multiply_by_inputs=True).attribute(x, target=cls)
    else:
        out = torch.as_tensor(_deeplift(LayerDeepLift(net, mod), x, _references(x, baseline, n_shuffles, seed), cls))
    out = out.detach().reshape(len(x), out.shape[1], -1) if out.ndim >= 2 else out.detach().reshape(len(x), -1, 1)
    return out.cpu().numpy().astype(np.float32)
