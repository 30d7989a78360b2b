"""``split_model``: a model cut at a layer into body (input -> H) and head (H -> scores), by the first way that works.

1. A chain of ``nn.Sequential`` down to the layer: list slicing.
2. Any other module: its forward traced with the example input's shape known (:mod:`.tracing`), else exported
   with ``torch.export``, and the graph cut at the layer (:mod:`.graph`), refused with where to cut instead when
   the rest of the network reads more than H (a residual branch).
3. ``head=<module>``: yours; ``head="replay"``: the model itself rerun with H in place of the layer's tensor,
   checked to depend on H alone (:mod:`.replay`).

Every automatic split is checked: ``head(body(x))`` must reproduce the model's scores.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .._checks import AnyOf, Array, Bool, Choice, Layer, OptionalOf, Shape, declare
from .._model import Model, find_layer, forward, frozen_copy, model_device, non_finite_parameters, strip_probability
from ..errors import ArgumentError, DeepResolveError, ModelError
from .adapters import ADAPTER_PARAMETERS, Adapted, Output, adapt, unwrap
from .base import HookBody, SplitError, make_example
from .graph import cut_graph
from .replay import replay_split
from .sequential import is_sequential_path, split_sequential
from .tracing import trace_export, trace_fx


@declare(model=Model(), layer=Layer(), input_shape=OptionalOf(Shape()), inputs=OptionalOf(Array()),
         at=Choice("output", "input"), logits=Bool(), head=OptionalOf(AnyOf(Choice("replay"), Model())),
         **ADAPTER_PARAMETERS)
def split_model(
    model: nn.Module,
    layer: str,
    *,
    input_shape: Sequence[int] | None = None,
    inputs: torch.Tensor | np.ndarray | None = None,
    at: Literal["output", "input"] = "output",
    logits: bool = True,
    head: nn.Module | Literal["replay"] | None = None,
    output: Output = None,
    channels_last: bool = False,
    fixed_inputs: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Split ``model`` into ``body`` (input -> H) and ``head`` (H -> class scores).

    Parameters
    ----------
    model : nn.Module
        The trained network. It is deep-copied: your model is left as it was.
    layer : str
        A name from ``model.named_modules()``.
    input_shape, inputs
        An input shape without the batch axis, or real inputs (the first is run), used to check the split
        (``head(body(x)) == model(x)``, up to a stripped output activation). Models that are not a chain of
        Sequentials are traced with this input's shape; ``head="replay"`` needs it.
    at : {"output", "input"}
        Whether H is the output (default) or the input of ``layer``.
    logits : bool
        If True (default) and the model ends in a Sigmoid/Softmax/LogSoftmax (module or function),
        the head stops before it, so scores are the pre-activation logits the paper maximises.
    head : nn.Module or "replay", optional
        A head you built yourself (for models that cannot be split automatically); only the body is derived.
        "replay": the model itself, rerun with H in place of the layer's tensor, for models no tracer can follow;
        accepted only when the scores depend on H alone (:mod:`deepresolve.split.replay`).
    output : int, str or callable, optional
        Which of the model's outputs to score and how a profile becomes scores, e.g. ``1``, ``"counts"``,
        ``"0:logsumexp"`` (:mod:`deepresolve.split.adapters`).
    channels_last : bool
        The model takes ``(N, L, 4)``: it is given ``(N, 4, L)`` transposed (``input_shape`` stays ``(4, L)``).
    fixed_inputs : dict, optional
        Constant keyword arguments of the model's forward; tensors without the batch axis (repeated over it).

    Returns
    -------
    body, head : nn.Module
        Both in eval mode with frozen parameters. ``body`` maps inputs (N, 4, L) to H (N, *feature_shape) and
        ``head`` maps H to (N, C).
    """
    x = make_example(input_shape, inputs) if (input_shape is not None or inputs is not None) else None
    model = adapt(model, output, channels_last, fixed_inputs)
    body, head, _, _ = split_at(model, layer, x=x, at=at, logits=logits, head=head)
    return body, head


def split_at(model: nn.Module, layer: str, *, x: torch.Tensor | None, at: str, logits: bool,
             head: nn.Module | str | None) -> tuple[nn.Module, nn.Module, torch.Tensor | None, torch.Tensor | None]:
    """:func:`split_model` of an adapted model (arguments already checked), also returning H = body(x) and the
    scores head(H).

    The one forward pass that checks the split also gives the caller the feature shape and the number of outputs.
    """
    if isinstance(head, str) and head != "replay" or not isinstance(head, (str, nn.Module, type(None))):
        raise ArgumentError(f"head: expected an nn.Module, 'replay' or None, got {head!r}")
    model = frozen_copy(model)
    find_layer(model, layer, SplitError)
    if x is not None:
        x = x.to(model_device(model))
        # the model runs once before any split: this checks its outputs, and builds what it builds lazily
        _check_finite(model, x)
    h = out = None

    given_head = isinstance(head, nn.Module)
    if given_head:
        body = HookBody(model, layer, at)
        head = copy.deepcopy(head).eval()
        for p in head.parameters():
            p.requires_grad_(False)
    elif head == "replay":
        if x is None:
            raise ArgumentError("input_shape: expected an input shape or inputs for head='replay', got neither")
        body, head = replay_split(model, layer, at, x)
    elif is_sequential_path(model, layer):
        before, after = split_sequential(model, layer.split("."), at)
        body, head = nn.Sequential(OrderedDict(before)), nn.Sequential(OrderedDict(after))
    else:
        body, head = _split_graph(model, layer, at, x)
    body.eval()

    if x is not None:
        h = forward(body, x, f"the body (input -> {layer!r} {at})")
        if not given_head:  # the split itself must reproduce the model exactly, on a batch of two different inputs
            pair = torch.cat([x, x.flip(-1)])
            ref = forward(model, pair, "the model")
            out = forward(head, forward(body, pair, "the body"),
                          "the head the tracer built (head='replay' reruns the model with H in place instead)")
            if not (isinstance(ref, torch.Tensor) and ref.shape == out.shape
                    and torch.allclose(ref, out, rtol=1e-4, atol=1e-5)):
                raise SplitError(f"head(body(x)) differs from model(x) after splitting at {layer!r}; "
                                 "pass head= yourself")
    if logits:
        head, _ = strip_probability(head)
    head.eval()
    if x is not None:
        out = forward(head, h, f"the head ({layer!r} {at} -> scores)")
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"the head must return class scores of shape (N, C); it returned {shape}. "
                             "End the model in a flatten/linear layer, choose an output with output=, or pass "
                             "head= yourself.")
    return body, head, h, out


def _split_graph(model: nn.Module, layer: str, at: str, x: torch.Tensor | None) -> tuple[nn.Module, nn.Module]:
    """Trace ``model`` (called with its input alone) with torch.fx, else torch.export, and cut the graph."""
    root = model if isinstance(model, Adapted) else Adapted(model)
    failures = []
    for tracer in (trace_fx, trace_export):
        if tracer is trace_export and x is None:
            continue
        try:
            traced = tracer(root, layer, x)
        except DeepResolveError:
            raise
        except Exception as err:  # whatever the tracer chokes on; the next one may manage
            failures.append(f"{tracer.__name__.replace('trace_', 'torch.')}: {type(err).__name__}: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"[:300])
            continue
        body, head = cut_graph(traced, layer, at)
        for part in (body, head):
            for p in part.parameters():
                p.requires_grad_(False)
        return body, head
    raise SplitError(
        f"could not trace {type(unwrap(model)).__name__} to split it at "
        f"{layer!r} ({'; '.join(failures)}). Pass head=<a module mapping the feature map H to class scores (N, C)> "
        "to deepresolve.resolve / split_model, or head='replay' to rerun the model with H in its place."
    )


def _check_finite(model: nn.Module, x: torch.Tensor) -> None:
    """A model whose output is NaN or infinite is reported as that, before the split is compared with it."""
    out = forward(model, x, "the model")
    outputs = out if isinstance(out, (tuple, list)) else [out]
    if all(not isinstance(o, torch.Tensor) or bool(torch.isfinite(o).all()) for o in outputs):
        return
    bad = non_finite_parameters(model)
    why = (f"{len(bad)} of its parameters hold NaN or infinite values ({', '.join(bad[:3])}"
           f"{', ...' if len(bad) > 3 else ''})" if bad else "its parameters are finite, so the input or an operation "
           "of the model (e.g. a log of 0) made them")
    raise ModelError(f"model: expected finite outputs, got NaN or infinite values on an input of shape "
                     f"{tuple(x.shape)}: {why}; check the weights file or how the model was trained")


