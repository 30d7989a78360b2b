"""A model's forward as a graph that can be cut at a layer: ``torch.fx`` with the input's shape known, else
``torch.export``.

:class:`ShapeTracer` runs the model on two example batches (of 2 and 3 inputs) alongside the symbolic trace, so
that every traced value also has a concrete value. A tensor's ``shape``, ``size()``, ``dim()``, ``dtype`` and
``device`` are then plain Python values, except the sizes that differ between the two batches (the batch axis),
which stay symbolic. Shape arithmetic and control flow on shapes (``x.shape[2] - trim``, ``if x.shape[1] != 4``)
are folded into constants instead of failing the trace or looking like a read of the input; control flow on the
data (``if h.sum() > 0``) still fails, as it must.

``torch.export`` (with a dynamic batch axis) takes what ``torch.fx`` cannot: models whose code only accepts real
tensors (einops). Its graph is of ATen operations; a layer is found by the module stack recorded on each node.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn
from torch.fx.proxy import TraceError

from .base import SplitError
from .graph import Traced

#: The two example batch sizes: sizes that differ between them are the batch axis.
BATCHES = (2, 3)

#: Tensor constructors recorded in the graph when a size is traced (``torch.zeros(x.shape[0], ...)``), as
#: torch.fx.experimental.meta_tracer does; plain torch.fx cannot pass a traced size to them.
CONSTRUCTORS = ("zeros", "ones", "empty", "full", "arange", "eye", "rand", "randn")


class ShapeProxy(fx.Proxy):
    """A traced value whose shape, dtype and device are known (see the module docstring)."""

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        values = self.tracer.values.get(self.node)
        if values is not None and all(isinstance(v, torch.Tensor) for v in values):
            return values
        return None

    def size(self, dim: int | None = None) -> Any:
        tensors = self._tensors()
        if tensors is None:
            return self.tracer.create_proxy("call_method", "size", (self,) if dim is None else (self, dim), {})
        a, b = tensors
        if dim is None:
            return tuple(self.size(d) for d in range(a.dim()))
        d = dim % a.dim()
        if a.shape[d] == b.shape[d]:
            return a.shape[d]
        return self.tracer.create_proxy("call_method", "size", (self, d), {})

    @property
    def shape(self) -> Any:
        return self.size()

    def dim(self) -> Any:
        tensors = self._tensors()
        return tensors[0].dim() if tensors else self.tracer.create_proxy("call_method", "dim", (self,), {})

    @property
    def ndim(self) -> Any:
        return self.dim()

    def _known(self, attribute: str) -> Any:
        tensors = self._tensors()
        if tensors is None:
            return self.tracer.create_proxy("call_function", getattr, (self, attribute), {})
        return getattr(tensors[0], attribute)

    @property
    def dtype(self) -> Any:
        return self._known("dtype")

    @property
    def device(self) -> Any:
        return self._known("device")

    @property
    def is_cuda(self) -> Any:
        return self._known("is_cuda")

    def __len__(self) -> int:
        size = self.size(0) if self._tensors() is not None else None
        if isinstance(size, int):
            return size
        raise TraceError("len() of a tensor along its batch axis cannot be traced")


class ShapeTracer(fx.Tracer):
    """``torch.fx`` tracing with concrete values alongside (see the module docstring); ``leaf`` stays one call."""

    def __init__(self, leaf: str, examples: tuple[torch.Tensor, torch.Tensor] | None):
        super().__init__()
        self.leaf, self.examples = leaf, examples
        self.values: dict[fx.Node, tuple[Any, Any]] = {}
        self._concrete = False      # True while computing values: modules and attributes are then the real ones
        self._forward: Any = None   # the forward of the module call being recorded

    def trace(self, root: nn.Module, concrete_args: dict | None = None) -> fx.Graph:
        originals = {name: getattr(torch, name) for name in CONSTRUCTORS}
        for name, original in originals.items():
            setattr(torch, name, self._recorded(original))
        try:
            return super().trace(root, concrete_args)
        finally:
            for name, original in originals.items():
                setattr(torch, name, original)

    def _recorded(self, constructor: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            traced = []
            fx.node.map_aggregate((args, kwargs), lambda a: traced.append(a) if isinstance(a, fx.Proxy) else None)
            if traced and not self._concrete:
                return self.create_proxy("call_function", constructor, args, kwargs)
            return constructor(*args, **kwargs)
        return call

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname == self.leaf or super().is_leaf_module(m, qualname)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return ShapeProxy(node, self)

    def call_module(self, m: nn.Module, forward: Any, args: tuple, kwargs: dict) -> Any:
        if self._concrete:
            return forward(*args, **kwargs)
        self._forward = forward
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict) -> Any:
        if self._concrete:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_proxy(self, kind: str, target: Any, args: tuple, kwargs: dict, name: str | None = None,
                     type_expr: Any = None, proxy_factory_fn: Any = None) -> fx.Proxy:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if self.examples is not None:
            values = self.examples if kind == "placeholder" else self._evaluate(kind, target, args, kwargs)
            if values is not None:
                self.values[proxy.node] = values
        return proxy

    def _evaluate(self, kind: str, target: Any, args: tuple, kwargs: dict) -> tuple[Any, Any] | None:
        """The value of one traced operation on each example batch; None when it cannot be computed."""
        missing = []

        def value(i: int):
            def concrete(a: Any) -> Any:
                if isinstance(a, fx.Proxy):
                    if a.node not in self.values:
                        missing.append(a)
                        return None
                    return self.values[a.node][i]
                return a
            return fx.node.map_aggregate(args, concrete), fx.node.map_aggregate(kwargs, concrete)

        out = []
        self._concrete = True
        try:
            with torch.no_grad():
                for i in range(2):
                    a, k = value(i)
                    if missing:
                        return None
                    if kind == "call_function":
                        out.append(target(*a, **k))
                    elif kind == "call_method":
                        out.append(getattr(a[0], target)(*a[1:], **k))
                    elif kind == "call_module":
                        out.append(self._forward(*a, **k))
                    elif kind == "get_attr":
                        out.append(_attribute(self.root, target))
                    else:
                        return None
        except Exception:  # an operation the trace records but cannot replay: its shape stays symbolic
            return None
        finally:
            self._concrete = False
        return out[0], out[1]


def _attribute(root: nn.Module, target: str) -> Any:
    value: Any = root
    for atom in target.split("."):
        value = getattr(value, atom)
    return value


def trace_fx(model: nn.Module, layer: str, x: torch.Tensor | None) -> Traced:
    """``model`` (taking one input) traced by :class:`ShapeTracer` with ``layer`` kept as one call; ``x``, one
    example input (1, ...) or None (then shapes stay symbolic, as in plain ``torch.fx``)."""
    examples = None if x is None else tuple(x[:1].expand(b, *x.shape[1:]).clone() for b in BATCHES)
    tracer = ShapeTracer(layer, examples)
    graph = tracer.trace(model)
    module = fx.GraphModule(tracer.root, graph)
    values = tracer.values

    def points(name: str) -> list[tuple[fx.Node, fx.Node | None]]:
        calls = [n for n in module.graph.nodes if n.op == "call_module" and n.target == name]
        return [(n, _single_tensor_input(n.args)) for n in calls]

    def layers() -> list[str]:
        return list(dict.fromkeys(n.target for n in module.graph.nodes if n.op == "call_module"))

    def is_batch_size(node: fx.Node) -> bool:
        return node in values and all(type(v) is int and v == b for v, b in zip(values[node], BATCHES))

    def batch_axis(node: fx.Node) -> int | None:
        a, b = values.get(node, (None, None))
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dim() != b.dim():
            return None
        axes = [d for d in range(a.dim()) if a.shape[d] != b.shape[d]]
        return axes[0] if len(axes) == 1 else None

    return Traced(module, points, layers, is_batch_size, batch_axis, "torch.fx")


def _single_tensor_input(args: tuple) -> fx.Node | None:
    tensors = [a for a in args if isinstance(a, fx.Node)]
    return tensors[0] if len(tensors) == 1 else None


def trace_export(model: nn.Module, layer: str, x: torch.Tensor) -> Traced:
    """``model`` (taking one input) exported with ``torch.export`` (batch axis dynamic), ``x`` one example."""
    example = x[:1].expand(BATCHES[0], *x.shape[1:]).clone()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},), strict=False)
    module = program.module()
    nodes = list(module.graph.nodes)
    placeholder = next(n for n in nodes if n.op == "placeholder")
    batch_symbol = str(placeholder.meta["val"].shape[0])

    def paths(n: fx.Node) -> list[tuple[str, str]]:
        return [(key, v[0]) for key, v in n.meta.get("nn_module_stack", {}).items()]

    def aliases(name: str) -> set[str]:
        # one module may be reachable under several names (Enformer calls its stem and towers through a
        # Sequential `_trunk` holding the same modules); the export records the path it was called by
        try:
            target = model.get_submodule(name)
        except AttributeError:
            return {name}
        return {n for n, m in model.named_modules(remove_duplicate=False) if m is target} | {name}

    def points(name: str) -> list[tuple[fx.Node, fx.Node | None]]:
        calls: dict[str, list[fx.Node]] = {}
        names = aliases(name)
        for n in nodes:
            for key, path in paths(n):
                if path in names:
                    calls.setdefault(key, []).append(n)
        found = []
        for group in calls.values():
            members = set(group)
            outs = [n for n in group if any(u not in members for u in n.users)]
            ins = list(dict.fromkeys(a for n in group for a in n.all_input_nodes
                                     if a not in members and a.op != "get_attr"))
            if len(outs) != 1:
                raise SplitError(f"layer {name!r} has {len(outs)} outputs in the exported graph; cut at a layer "
                                 "with one output tensor")
            found.append((outs[0], ins[0] if len(ins) == 1 else None))
        return found

    def layers() -> list[str]:
        return list(dict.fromkeys(path for n in nodes for _, path in paths(n) if path))

    def is_batch_size(node: fx.Node) -> bool:
        value = node.meta.get("val")
        return isinstance(value, torch.SymInt) and str(value) == batch_symbol

    def batch_axis(node: fx.Node) -> int | None:
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor):
            return None
        axes = [d for d, s in enumerate(value.shape) if str(s) == batch_symbol]
        return axes[0] if len(axes) == 1 else None

    return Traced(module, points, layers, is_batch_size, batch_axis, "torch.export")
