"""A traced graph cut at one node into a body (input -> H) and a head (H -> scores), when the head reads nothing
else that depends on the input.

The head may still read the batch size of any tensor (it is H's) and values that do not depend on the input at
all (they are recomputed in the head). Anything else it reads from before the cut -- a residual branch, the input
itself -- makes the scores not a function of H alone: the cut is refused, with the nearest layers where a cut
would work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import fx, nn

from .base import SplitError


@dataclass
class Traced:
    """A model's forward as a graph, and how to find a layer in it.

    Attributes
    ----------
    module : fx.GraphModule
        Runs the whole model (the scores): its attributes are what the graph's ``get_attr``/``call_module`` name.
    points : callable
        ``points(layer)`` -> the (output node, input node or None) of each call of ``layer`` in the graph.
    layers : callable
        Every layer name the graph can be cut at, in call order (for suggestions).
    is_batch_size : callable
        Whether a node's value is the batch size.
    batch_axis : callable
        The axis of a node's tensor that is the batch axis (None when unknown or absent).
    tracer : str
        "torch.fx" or "torch.export", for messages.
    """

    module: fx.GraphModule
    points: Callable[[str], list[tuple[fx.Node, fx.Node | None]]]
    layers: Callable[[], list[str]]
    is_batch_size: Callable[[fx.Node], bool]
    batch_axis: Callable[[fx.Node], int | None]
    tracer: str

    @property
    def output(self) -> fx.Node:
        return next(n for n in self.module.graph.nodes if n.op == "output")

    def result(self) -> fx.Node:
        """The node of the scores (an exported graph returns a flat tuple of one)."""
        out = self.output.args[0]
        if isinstance(out, (tuple, list)) and len(out) == 1:
            out = out[0]
        if not isinstance(out, fx.Node):
            raise SplitError(f"the traced model returns {type(out).__name__}, not one tensor of scores; "
                             "choose one with output=")
        return out


@dataclass
class _Plan:
    """Where the head would read from, for one cut."""

    head: set[fx.Node]    # nodes the head computes (after the cut, or independent of the input)
    sizes: set[fx.Node]   # batch sizes read from before the cut (taken from H instead)
    leaks: set[fx.Node]   # other values read from before the cut: the cut is refused


def _depends_on_input(graph: fx.Graph, is_batch_size: Callable[[fx.Node], bool]) -> set[fx.Node]:
    """The nodes whose values depend on the input other than through its batch size."""
    dependent: set[fx.Node] = set()
    for n in graph.nodes:
        if n.op == "placeholder" or any(a in dependent and not is_batch_size(a) for a in n.all_input_nodes):
            dependent.add(n)
    return dependent


def _plan(graph: fx.Graph, result: fx.Node, cut: fx.Node, dependent: set[fx.Node],
          is_batch_size: Callable[[fx.Node], bool]) -> _Plan:
    after: set[fx.Node] = set()
    for n in graph.nodes:
        if n is cut or any(a in after for a in n.all_input_nodes):
            after.add(n)
    plan = _Plan(set(), set(), set())
    stack = [result]
    while stack:
        n = stack.pop()
        if n is cut or n in plan.head or n in plan.sizes or n in plan.leaks:
            continue
        if n in dependent and n not in after:
            (plan.sizes if is_batch_size(n) else plan.leaks).add(n)
            continue
        plan.head.add(n)
        stack.extend(n.all_input_nodes)
    return plan


def _ancestors(node: fx.Node) -> set[fx.Node]:
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(n.all_input_nodes)
    return seen


def cut_point(traced: Traced, layer: str, at: str) -> fx.Node:
    """The node holding H: the output of ``layer``'s one call, or its one tensor input."""
    calls = traced.points(layer)
    if len(calls) != 1:
        raise SplitError(
            f"layer {layer!r} is called {len(calls)} times in the traced forward; it must be called exactly once. "
            "Pass head= yourself."
        )
    out, inp = calls[0]
    if at == "output":
        return out
    if inp is None:
        raise SplitError(f"at='input' needs {layer!r} to take exactly one tensor input; it takes another number")
    return inp


def _suggestions(traced: Traced, layer: str, cut: fx.Node, result: fx.Node, dependent: set[fx.Node]) -> str:
    """The nearest layers after and before ``cut`` at which a cut is a function of H alone, as a phrase."""
    graph = traced.module.graph
    position = {n: i for i, n in enumerate(graph.nodes)}
    needed = _ancestors(result)
    valid: dict[fx.Node, tuple[str, str]] = {}
    for name in traced.layers():
        calls = traced.points(name)
        if len(calls) != 1:
            continue
        for node, at in ((calls[0][0], "output"), (calls[0][1], "input")):
            if node is None or node not in needed or node in valid or node.op == "placeholder":
                continue
            if not _plan(graph, result, node, dependent, traced.is_batch_size).leaks:
                valid[node] = (name, at)
    later = sorted((n for n in valid if position[n] > position[cut]), key=position.get)
    earlier = sorted((n for n in valid if position[n] < position[cut]), key=position.get, reverse=True)
    options = [f"layer={valid[n][0]!r}" + (", at='input'" if valid[n][1] == "input" else "")
               for n in later[:1] + earlier[:1]]
    if not options:
        part, _, inner = layer.partition(".")
        return "No layer of this model carries everything the rest of the network reads" + (
            f"; analyse the part that holds the layer on its own (model.{part}, layer {inner!r})." if inner else ".")
    return f"Cut instead at {' or '.join(options)} (the nearest points after and before it that carry all the " \
           "rest of the network reads)."


def cut_graph(traced: Traced, layer: str, at: str) -> tuple[nn.Module, nn.Module]:
    """``traced`` cut at ``layer`` (its output or input): body (input -> H) and head (H -> scores)."""
    cut = cut_point(traced, layer, at)
    graph = traced.module.graph
    result = traced.result()
    dependent = _depends_on_input(graph, traced.is_batch_size)
    plan = _plan(graph, result, cut, dependent, traced.is_batch_size)
    if plan.leaks:
        reader = next(n for n in graph.nodes if n in plan.head and any(a in plan.leaks for a in n.all_input_nodes))
        raise SplitError(
            f"the network after {layer!r} also reads values computed before it (e.g. a skip connection into "
            f"{reader.name!r}), so class scores are not a function of H alone. "
            f"{_suggestions(traced, layer, cut, result, dependent)} Or pass head= yourself."
        )
    if plan.sizes and traced.batch_axis(cut) != 0:
        raise SplitError(f"the output of {layer!r} does not have the batch on its first axis; cut at another layer")

    body_nodes = _ancestors(cut)
    body_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in graph.nodes:
        if n in body_nodes:
            env[n] = body_graph.node_copy(n, lambda a: env[a])
    body_graph.output(env[cut])

    head_graph = fx.Graph()
    h = head_graph.placeholder("h")
    env = {cut: h}
    for n in plan.sizes:
        env[n] = head_graph.call_method("size", (h, 0))
    for n in graph.nodes:
        if n in plan.head:
            env[n] = head_graph.node_copy(n, lambda a: env[a])
    head_graph.output(env[result])
    return fx.GraphModule(traced.module, body_graph), fx.GraphModule(traced.module, head_graph)
