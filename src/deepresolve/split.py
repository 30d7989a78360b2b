"""Split a PyTorch model at an intermediate layer into a body (input -> H) and a head (H -> class scores).

DeepResolve optimises the feature map H of one layer, so it needs the part of the network after that layer
as a function of H alone. ``split_model`` builds it for nested ``nn.Sequential`` models directly and for other
modules through ``torch.fx``; when neither works, pass ``head=`` yourself.

Targeting a layer
-----------------
``layer`` is a name from ``model.named_modules()`` and H is that module's **output**. To analyse the **input** of
a module instead (the paper's DeepSEA analysis uses the input of the third convolution), pass ``at="input"``.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Literal, Sequence

import numpy as np
import torch
from torch import fx, nn

from ._checks import check_choice, check_shape
from ._model import (
    find_layer,
    forward,
    frozen_copy,
    model_device,
    non_finite_parameters,
    strip_probability,
    type_name,
    unscript,
)
from .errors import ArgumentError, ModelError


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
                raise ArgumentError(f"inputs: expected arrays of shape (N, *input_shape) = (N, {', '.join(map(str, shape))}), "
                                    f"got shape {tuple(x.shape)}")
        x = x[:1] if input_shape is None or x.dim() > len(input_shape) else x.unsqueeze(0)
    elif input_shape is not None:
        x = torch.zeros((1, *check_shape(input_shape, "input_shape")))
    else:
        raise ArgumentError("input_shape: expected (channels, length) without the batch axis, or inputs=<real inputs>; "
                            "got neither")
    return x.to(device) if device is not None else x


def list_layers(model: nn.Module, input_shape: Sequence[int] | None = None, *,
                inputs: torch.Tensor | np.ndarray | None = None) -> list[tuple[str, str, tuple[int, ...]]]:
    """Names, types and output shapes (without batch axis) of every module, in call order.

    Parameters
    ----------
    model : nn.Module
        A module or a TorchScript model.
    input_shape : tuple, optional
        Input shape without the batch axis, e.g. ``(4, 1000)``.
    inputs : Tensor, optional
        Real inputs (N, ...) (the first is run) or one input without batch axis, instead of ``input_shape``.

    Returns
    -------
    list of (name, type name, output shape)
    """
    model = frozen_copy(model)
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
    if not _is_sequential_path(plain, layer):
        raise error(f"layer: expected a layer reachable through Sequential containers in a TorchScript model (hooks do "
                    f"not work on TorchScript), got {layer!r}; load the model as a Python nn.Module instead")
    before, after = _split_sequential(plain, layer.split("."), at)
    return nn.Sequential(OrderedDict(before))(inputs)


def _is_sequential_path(model: nn.Module, layer: str) -> bool:
    module = model
    for part in layer.split("."):
        if not isinstance(module, nn.Sequential):
            return False
        module = module._modules[part]
    return True


def _split_sequential(seq: nn.Sequential, path: list[str], at: str) -> tuple[list[tuple[str, nn.Module]], list[tuple[str, nn.Module]]]:
    names = list(seq._modules)
    i = names.index(path[0])
    before = [(n, seq._modules[n]) for n in names[:i]]
    after = [(n, seq._modules[n]) for n in names[i + 1:]]
    child = seq._modules[path[0]]
    if len(path) == 1:
        if at == "output":
            before.append((path[0], child))
        else:
            after.insert(0, (path[0], child))
        return before, after
    inner_before, inner_after = _split_sequential(child, path[1:], at)
    if inner_before:
        before.append((path[0], nn.Sequential(OrderedDict(inner_before))))
    if inner_after:
        after.insert(0, (path[0], nn.Sequential(OrderedDict(inner_after))))
    return before, after


class _LeafTracer(fx.Tracer):
    """Keeps the target module a single call so the graph can be cut at it."""

    def __init__(self, leaf: str):
        super().__init__()
        self.leaf = leaf

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname == self.leaf or super().is_leaf_module(m, qualname)


def _split_fx(model: nn.Module, layer: str, at: str) -> tuple[nn.Module, nn.Module]:
    tracer = _LeafTracer(layer)
    try:
        graph = tracer.trace(model)
    except Exception as err:
        raise SplitError(
            f"could not trace {type(model).__name__} with torch.fx to split it at {layer!r} ({type(err).__name__}: {err}). "
            "Pass head=<a module mapping the feature map H to class scores (N, C)> to deepresolve.resolve / split_model."
        ) from err
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target == layer]
    if len(calls) != 1:
        raise SplitError(
            f"layer {layer!r} is called {len(calls)} times in the traced forward; it must be called exactly once. "
            "Pass head= yourself."
        )
    call = calls[0]
    if at == "output":
        cut = call
    else:
        tensors = [a for a in call.args if isinstance(a, fx.Node)]
        if len(tensors) != 1:
            raise SplitError(f"at='input' needs {layer!r} to take exactly one tensor input; it takes {len(tensors)}")
        cut = tensors[0]

    order = list(graph.nodes)
    position = {n: i for i, n in enumerate(order)}
    output = next(n for n in order if n.op == "output")

    # Body: the cut node's ancestors. Head: everything downstream of the cut that feeds the output.
    def ancestors(node: fx.Node) -> set[fx.Node]:
        seen, stack = set(), [node]
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(n.all_input_nodes)
        return seen

    needed = ancestors(output) - {output}
    body_nodes = ancestors(cut)
    head_nodes = {n for n in needed if position[n] > position[cut]}
    leaks = [n for n in head_nodes for a in n.all_input_nodes
             if a not in head_nodes and a is not cut and (a.op == "placeholder" or position[a] < position[cut])
             and a.op != "get_attr"]
    if leaks:
        raise SplitError(
            f"the network after {layer!r} also reads values computed before it (e.g. a skip connection into "
            f"{leaks[0].name!r}), so class scores are not a function of H alone. Pass head= yourself."
        )

    body_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in order:
        if n in body_nodes:
            env[n] = body_graph.node_copy(n, lambda a: env[a])
    body_graph.output(env[cut])

    head_graph = fx.Graph()
    env = {cut: head_graph.placeholder("h")}
    for n in order:
        if n in head_nodes or (n.op == "get_attr" and n in needed and n not in env):
            env[n] = head_graph.node_copy(n, lambda a: env[a])
    head_graph.output(fx.node.map_arg(output.args[0], lambda a: env[a]))
    return fx.GraphModule(model, body_graph), fx.GraphModule(model, head_graph)


def split_model(
    model: nn.Module,
    layer: str,
    *,
    input_shape: Sequence[int] | None = None,
    inputs: torch.Tensor | np.ndarray | None = None,
    at: Literal["output", "input"] = "output",
    logits: bool = True,
    head: nn.Module | None = None,
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
        (``head(body(x)) == model(x)``, up to a stripped output activation).
    at : {"output", "input"}
        Whether H is the output (default) or the input of ``layer``.
    logits : bool
        If True (default) and the model ends in a Sigmoid/Softmax/LogSoftmax (module or function),
        the head stops before it, so scores are the pre-activation logits the paper maximises.
    head : nn.Module, optional
        A head you built yourself (for models that cannot be split automatically); only the body is derived.

    Returns
    -------
    body, head : nn.Module
        Both in eval mode with frozen parameters. ``head`` maps H of shape (N, *feature_shape) to (N, C).
    """
    check_choice(at, "at", ("output", "input"))
    x = make_example(input_shape, inputs) if (input_shape is not None or inputs is not None) else None
    body, head, _, _ = split_at(model, layer, x=x, at=at, logits=logits, head=head)
    return body, head


def split_at(model: nn.Module, layer: str, *, x: torch.Tensor | None, at: str, logits: bool,
             head: nn.Module | None) -> tuple[nn.Module, nn.Module, torch.Tensor | None, torch.Tensor | None]:
    """:func:`split_model` (arguments already checked), also returning H = body(x) and the scores head(H).

    The one forward pass that checks the split also gives the caller the feature shape and the number of outputs.
    """
    model = frozen_copy(model)
    find_layer(model, layer, SplitError)
    if x is not None:
        x = x.to(model_device(model))
    h = out = None

    given_head = head is not None
    if given_head:
        body = _HookBody(model, layer, at)
        head = copy.deepcopy(head).eval()
        for p in head.parameters():
            p.requires_grad_(False)
    elif _is_sequential_path(model, layer):
        before, after = _split_sequential(model, layer.split("."), at)
        body, head = nn.Sequential(OrderedDict(before)), nn.Sequential(OrderedDict(after))
    else:
        body, head = _split_fx(model, layer, at)
    body.eval()

    if x is not None:
        _check_finite(model, x)
        h = forward(body, x, f"the body (input -> {layer!r} {at})")
        if not given_head:  # the split itself must reproduce the model exactly
            ref, out = forward(model, x, "the model"), forward(head, h, "the head")
            if not (isinstance(ref, torch.Tensor) and ref.shape == out.shape and torch.allclose(ref, out, rtol=1e-4, atol=1e-5)):
                raise SplitError(f"head(body(x)) differs from model(x) after splitting at {layer!r}; pass head= yourself")
    if logits:
        head, _ = strip_probability(head)
    head.eval()
    if x is not None:
        out = forward(head, h, f"the head ({layer!r} {at} -> scores)")
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"the head must return class scores of shape (N, C); it returned {shape}. "
                             "End the model in a flatten/linear layer or pass head= yourself.")
    return body, head, h, out


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


class _HookBody(nn.Module):
    """Runs the model only as far as ``layer`` (input or output) and returns that tensor."""

    def __init__(self, model: nn.Module, layer: str, at: str):
        super().__init__()
        self.model, self.layer, self.at = model, layer, at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return capture(self.model, self.layer, x, at=self.at, error=SplitError)
