"""Model plumbing, one home for it: layers by name, capture, devices, copies and fingerprints.

- :func:`find_layer`: a module by its ``named_modules()`` name, with close names suggested.
- :func:`strip_probability`: a model without its final Sigmoid/Softmax/LogSoftmax (scores are logits).
- :func:`frozen_copy`: an independent eval-mode copy with frozen parameters (the caller's model is never changed).
- :func:`check_device`, :func:`model_device`: where to compute; :class:`Device` and :class:`Model`, the
  declarations (:mod:`deepresolve._checks`) of a device and a model argument.
- :func:`forward`: one forward pass whose failure names the part of the model and the input shape.
- :func:`model_fingerprint`: a hash that is equal iff two modules compute the same function.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import io
import os
from collections import OrderedDict

import torch
from torch import fx, nn

from ._checks import BadValue, Spec
from .errors import ArgumentError, DeepResolveError, ModelError

#: Output activations that turn logits into probabilities; the paper scores logits, so heads stop before them.
PROBABILITY_MODULES = (nn.Sigmoid, nn.Softmax, nn.LogSoftmax)
_PROBABILITY_FUNCTIONS = {torch.sigmoid, torch.softmax, torch.log_softmax, torch.nn.functional.sigmoid,
                          torch.nn.functional.softmax, torch.nn.functional.log_softmax,
                          # the same in a torch.export graph
                          torch.ops.aten.sigmoid.default, torch.ops.aten.softmax.int, torch.ops.aten._softmax.default,
                          torch.ops.aten.log_softmax.int, torch.ops.aten._log_softmax.default}
_PROBABILITY_METHODS = ("sigmoid", "softmax", "log_softmax")


def check_device(device: str | torch.device | None, argument: str = "device") -> torch.device:
    """The device to compute on: ``device`` if it exists on this machine; None means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ArgumentError(f"{argument}: expected 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ArgumentError(f"{argument}: expected a device this machine has, got {device!r}: {why}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ArgumentError(f"{argument}: expected a device this machine has, got {device!r}: there are "
                                f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu" and dev.type != "mps":
        raise ArgumentError(f"{argument}: expected 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


class Device(Spec):
    """Where to compute: a device this machine has (:func:`check_device`), given as a torch.device; None stays None
    (the default: CUDA when available, else the CPU)."""

    def check(self, value: object, argument: str) -> torch.device | None:
        return None if value is None else check_device(value, self.name(argument))

    def describe(self) -> str:
        return "'cpu', 'cuda', 'cuda:N' or a torch.device"

    def admits(self, value: object) -> bool:
        return value is None or isinstance(value, (str, torch.device))

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        return [BadValue(2.5, "wrong type", f"{name}: expected 'cpu', 'cuda', 'cuda:N' or a torch.device, got 2.5"),
                BadValue("cuda:99", "out of range", f"{name}: expected a device this machine has, got 'cuda:99'")]


def type_name(module: nn.Module) -> str:
    """The class name of a module, also for TorchScript modules (whose Python type is RecursiveScriptModule)."""
    return module.original_name if isinstance(module, torch.jit.ScriptModule) else type(module).__name__


def is_a(module: nn.Module, *types: type[nn.Module]) -> bool:
    """``isinstance(module, types)``, also for TorchScript modules (a scripted ``nn.Conv1d`` is a Conv1d here)."""
    return isinstance(module, types) or (isinstance(module, torch.jit.ScriptModule)
                                         and module.original_name in {t.__name__ for t in types})


def find_layer(model: nn.Module, layer: str, error: type[Exception] = ArgumentError) -> nn.Module:
    """The module named ``layer`` in ``model.named_modules()``; ``error`` (with close names) when there is none."""
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in modules or layer == "":
        names = [n for n in modules if n]
        close = difflib.get_close_matches(str(layer), names, n=5, cutoff=0.3)
        hint = f" Close names: {close}." if close else ""
        raise error(
            f"layer={layer!r} is not a module of this model.{hint} "
            f"Use deepresolve.list_layers(model, input_shape) to see all {len(names)} names."
        )
    return modules[layer]


def _is_probability(module: nn.Module) -> bool:
    return isinstance(module, PROBABILITY_MODULES) or type_name(module) in {m.__name__ for m in PROBABILITY_MODULES}


def _keep_attributes(new: nn.Module, old: nn.Module) -> nn.Module:
    """Carry plain attributes a loader set on ``old`` (e.g. ``keras_layout``, ``input_length``) over to ``new``."""
    for key, value in vars(old).items():
        if not key.startswith("_") and key != "training" and not hasattr(new, key):
            setattr(new, key, value)
    return new


def strip_probability(model: nn.Module) -> tuple[nn.Module, bool]:
    """The model without a final Sigmoid/Softmax/LogSoftmax (module or function), and whether one was dropped.

    Parameters are shared, not copied. Handled: ``nn.Sequential`` (nested too) ending in such a module, and
    ``torch.fx.GraphModule`` whose output is such a call, possibly moved afterwards (flattened, permuted, flipped,
    chosen by ``torch.where``) or joined with others by ``torch.cat`` when every joined part ends in one (a model
    with one sigmoid head per task); the graph is modified in place: pass a copy. Anything else is returned as it
    is.
    """
    if isinstance(model, nn.Sequential):
        names = list(model._modules)
        if names and _is_probability(model._modules[names[-1]]):
            return _keep_attributes(nn.Sequential(OrderedDict((n, model._modules[n]) for n in names[:-1])), model), True
        if names and isinstance(model._modules[names[-1]], nn.Sequential):
            inner, dropped = strip_probability(model._modules[names[-1]])
            if dropped:
                mods = OrderedDict((n, model._modules[n]) for n in names[:-1])
                if len(inner):
                    mods[names[-1]] = inner
                return _keep_attributes(nn.Sequential(mods), model), True
        return model, False
    if isinstance(model, fx.GraphModule):
        output = next(n for n in model.graph.nodes if n.op == "output")
        last = output.args[0]
        if isinstance(last, fx.Node):
            path: set[fx.Node] = {output}
            found = _final_probabilities(model, last, path)
            # each one's value may only reach the output along the path (its shape may be read anywhere)
            if found and all(user in path or _reads_shape(user) for node in path for user in node.users):
                for node in found:
                    node.replace_all_uses_with(node.args[0])
                model.graph.eliminate_dead_code()
                model.recompile()
                return model, True
    return model, False


# Operations that move or select elements without changing them: a probability before them is still a final one
# (e.g. a sigmoid head flattened, heads joined, basenji's SwitchReverse).
_MOVING_METHODS = {"reshape", "view", "flatten", "movedim", "permute", "transpose", "squeeze", "unsqueeze", "flip",
                   "contiguous"}
_MOVING_FUNCTIONS = {torch.reshape, torch.flatten, torch.movedim, torch.permute, torch.transpose, torch.squeeze,
                     torch.unsqueeze, torch.flip}


def _is_probability_node(model: fx.GraphModule, node: fx.Node) -> bool:
    return (node.op == "call_module" and _is_probability(model.get_submodule(node.target))) or \
           (node.op == "call_function" and node.target in _PROBABILITY_FUNCTIONS) or \
           (node.op == "call_method" and node.target in _PROBABILITY_METHODS)


def _final_probabilities(model: fx.GraphModule, node: fx.Node, path: set[fx.Node]) -> list[fx.Node]:
    """The probability nodes whose values ``node`` is made of through element-moving operations alone (each part of
    a concatenation; both branches of a ``torch.where``), ``[]`` when any part is not one; ``path`` collects the
    nodes walked through."""
    path.add(node)
    if _is_probability_node(model, node):
        return [node]
    moving = (node.op == "call_method" and node.target in _MOVING_METHODS) or \
             (node.op == "call_function" and node.target in _MOVING_FUNCTIONS)
    if moving and isinstance(node.args[0], fx.Node):
        return _final_probabilities(model, node.args[0], path)
    parts: list = []
    if node.op == "call_function" and node.target is torch.cat and isinstance(node.args[0], (list, tuple)):
        parts = list(node.args[0])
    elif node.op == "call_function" and node.target is torch.where and len(node.args) == 3:
        parts = list(node.args[1:])
    found: list[fx.Node] = []
    for part in parts:
        inner = _final_probabilities(model, part, path) if isinstance(part, fx.Node) else []
        if not inner:
            return []
        found += [n for n in inner if n not in found]
    return found


def _reads_shape(node: fx.Node) -> bool:
    """``x.shape`` or ``x.size()``: reads the shape only (or a condition of a ``torch.where``, never the value)."""
    return (node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",)) or \
           (node.op == "call_method" and node.target in ("size", "dim"))


def check_model(model: object, argument: str = "model") -> nn.Module:
    """``model`` if it is a PyTorch module; a path or anything else is refused with what to do instead."""
    if isinstance(model, nn.Module):
        return model
    if isinstance(model, (str, os.PathLike)):
        raise ArgumentError(f"{argument}: expected a torch.nn.Module, got the path {str(model)!r}; load it first with "
                            f"model = deepresolve.load_model({str(model)!r}) (every format the command line reads)")
    raise ArgumentError(f"{argument}: expected a torch.nn.Module (load a file with deepresolve.load_model), got "
                        f"{type(model).__name__} {str(model)[:60]!r}")


class Model(Spec):
    """A PyTorch module (:func:`check_model`: a path is refused with how to load it)."""

    def check(self, value: object, argument: str) -> nn.Module:
        return check_model(value, self.name(argument))

    def describe(self) -> str:
        return "a torch.nn.Module"

    def admits(self, value: object) -> bool:
        return isinstance(value, nn.Module)

    def bad_values(self, argument: str) -> list[BadValue]:
        name = self.name(argument)
        return [BadValue("model.pt", "wrong type", f"{name}: expected a torch.nn.Module, got the path 'model.pt'"),
                BadValue(3, "wrong type", f"{name}: expected a torch.nn.Module (load a file with "
                                          f"deepresolve.load_model), got int")]


def non_finite_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters and buffers of ``model`` holding NaN or infinite values."""
    return [name for name, t in [*model.named_parameters(), *model.named_buffers()]
            if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def frozen_copy(model: nn.Module) -> nn.Module:
    """An independent copy in eval mode with frozen parameters; TorchScript Sequentials become nn.Sequential."""
    model = check_model(model)
    if isinstance(model, torch.jit.ScriptModule):
        # deepcopy of a ScriptModule yields non-leaf parameters; a save/load round trip does not
        buffer = io.BytesIO()
        torch.jit.save(model, buffer)
        buffer.seek(0)
        model = unscript(torch.jit.load(buffer, map_location=model_device(model)))
    else:
        model = copy.deepcopy(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def unscript(module: nn.Module) -> nn.Module:
    """A scripted Sequential as a plain nn.Sequential of its (possibly scripted) children, so it can be cut.

    The children are shared, not copied.
    """
    if isinstance(module, torch.jit.ScriptModule) and module.original_name == "Sequential":
        return nn.Sequential(OrderedDict((n, unscript(c)) for n, c in module.named_children()))
    return module


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def model_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's structure (its printed form), parameters and buffers: equal iff the same function.

    Parameters
    ----------
    module : nn.Module
        E.g. the head of a split model (the network after the analysed layer).

    Returns
    -------
    str, 64 hexadecimal digits.
    """
    digest = hashlib.sha256(repr(module).encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        # Raw bytes (viewed as uint8 so that bfloat16 and other dtypes numpy lacks hash too).
        digest.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")  # a view: no copy of big weights
    return digest.hexdigest()


def forward(model: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    """``model(x)`` without gradients; a failure becomes a ModelError naming ``what`` and the input shape."""
    try:
        with torch.no_grad():
            return model(x)
    except DeepResolveError:  # already says what was wrong (e.g. an output= that does not fit the model's output)
        raise
    except Exception as err:  # the user's shapes are the usual cause: say which input failed
        raise ModelError(f"{what} failed on an input of shape {tuple(x.shape)}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from err
