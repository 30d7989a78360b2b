"""Keras functional models (Keras 1 ``Model``, Keras 2 ``Model``/``Functional``, Keras 3 ``Functional``) as a
:class:`KerasGraph`: one submodule per Keras layer, registered under the layer's Keras name, run in an order fixed
when the model is built.

- A layer applied several times (a shared layer) is one module called several times.
- The model takes one input, the DNA sequence. A model with several inputs is built only when every other input
  is given a fixed value (``fixed_inputs``); those become buffers, broadcast over the batch.
- Several outputs are flattened (in Keras's element order) and joined into one ``(N, C)`` tensor;
  ``output_names`` names its columns and ``output_heads`` gives each output's columns.
- The forward pass is plain Python over a fixed plan, so ``torch.fx`` traces it and
  :func:`deepresolve.split_model` cuts it at any layer by its Keras name. The branches fed by fixed inputs alone
  run just before the layer that needs them, so that a cut before that layer keeps them in the head.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import ArgumentError, FileFormatError, ModelError
from .files import KerasFile, LayerSpec, TensorRef
from .inputs import Built, declared_shape, input_adapters, input_layout
from .layers import Context, Converted, convert, custom_module, output_shape
from .modules import KerasLayer

Call = tuple[str, int]  # (layer name, call index)

#: Attributes the loader sets on a model; no layer module may take these names.
MODEL_ATTRIBUTES = ("input_shape", "keras_input_shape", "keras_layout", "keras_version", "keras_backend",
                    "keras_layers", "onehot_input", "output_names", "output_heads", "keras_inputs", "fixed_inputs")


class KerasGraph(nn.Module):
    """A Keras functional model: its layers as submodules named after them, run in a fixed order.

    Parameters
    ----------
    adapters : list of (name, module)
        Modules applied to the input first (``from_onehot``, ``to_channels_first``).
    layers : dict of name -> module
        One module per Keras layer.
    constants : dict of name -> Tensor
        The fixed inputs, ``(1, *shape)`` each.
    plan : list of (target, inputs, output, expand)
        Run in order: ``values[output] = module target(*values[inputs])``, where ``target`` names a module, or
        names a constant when ``inputs`` is None. ``expand`` lists (argument position, reference position, rank):
        arguments computed from fixed inputs alone, broadcast to the batch size of the reference argument.
    n_values : int
        Number of intermediate values; value 0 is the (adapted) input.
    outputs : list of (value, move_channels_last)
        The model's outputs; with several, each is flattened (channels moved last first when Keras held them
        there) and they are concatenated.
    """

    def __init__(self, adapters: list[tuple[str, nn.Module]], layers: dict[str, nn.Module],
                 constants: dict[str, torch.Tensor], plan: list[tuple[str, tuple[int, ...] | None, int, tuple]],
                 n_values: int, outputs: list[tuple[int, bool]], join: bool) -> None:
        super().__init__()
        for name, module in [*adapters, *layers.items()]:
            self.add_module(name, module)
        for name, tensor in constants.items():
            self.register_buffer(name, tensor)
        self._adapters = tuple(name for name, _ in adapters)
        self._plan = tuple(plan)
        self._n_values = int(n_values)
        self._outputs = tuple(outputs)
        self._join = bool(join)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._adapters:
            x = self._modules[name](x)
        values: list[Any] = [None] * self._n_values
        values[0] = x
        for target, inputs, output, expand in self._plan:
            if inputs is None:
                values[output] = getattr(self, target)
                continue
            args = [values[i] for i in inputs]
            for pos, ref, rank in expand:
                args[pos] = args[pos].expand(args[ref].shape[0], *([-1] * (rank - 1)))
            values[output] = self._modules[target](*args)
        if not self._join:
            return values[self._outputs[0][0]]
        flat = []
        for value, move in self._outputs:
            y = values[value].movedim(1, -1) if move else values[value]
            flat.append(y.reshape(y.shape[0], -1))
        return torch.cat(flat, dim=1)

    def extra_repr(self) -> str:
        # The wiring is part of what the model computes (and of its fingerprint): value <- module(values).
        steps = ", ".join(f"{out}={target}({','.join(map(str, inputs))})" if inputs is not None else f"{out}={target}"
                          for target, inputs, out, _ in self._plan)
        return f"plan=[{steps}], outputs={[value for value, _ in self._outputs]}"


def build_graph(model: KerasFile, ctx: Context, onehot: bool, fixed_inputs: dict[str, Any],
                custom_layers: dict[str, nn.Module]) -> Built:
    """The :class:`KerasGraph` computing a Keras functional model (attributes describing outputs set on it)."""
    by_name: dict[str, LayerSpec] = {}
    for layer in model.layers:
        if layer.name in by_name:
            raise FileFormatError(f"{model.source!r}: two layers are named {layer.name!r}")
        by_name[layer.name] = layer

    def call_of(ref: TensorRef, what: str) -> Call:
        name, node, tensor = ref
        if name not in by_name:
            raise FileFormatError(f"{model.source!r}: {what} refers to layer {name!r}, which the config does not "
                                  "define")
        layer = by_name[name]
        if tensor != 0:
            raise ModelError(f"{layer.where()}: output {tensor} of this layer is used; layers with several outputs "
                             f"are not supported (give a module for what uses it: custom_layers)")
        calls = 1 if layer.cls == "InputLayer" else len(layer.inbound)
        if not 0 <= node < calls:
            raise FileFormatError(f"{model.source!r}: {what} refers to call {node} of layer {name!r}, which is "
                                  f"called {calls} times")
        return name, node

    def inputs_of(call: Call) -> list[Call]:
        layer = by_name[call[0]]
        if layer.cls == "InputLayer":
            return []
        return [call_of(ref, f"layer {layer.name!r}") for ref in layer.inbound[call[1]]]

    inputs = [call_of(ref, "input_layers") for ref in model.inputs]
    for name, _ in inputs:
        if by_name[name].cls != "InputLayer":
            raise ModelError(f"{by_name[name].where()}: a model input must be an InputLayer")
    input_names = [name for name, _ in inputs]
    dna = _sequence_input(input_names, fixed_inputs, model.source)
    outputs = [call_of(ref, "output_layers") for ref in model.outputs]

    order = _order(outputs, inputs_of, model.source)
    varying: dict[Call, bool] = {}
    for call in order:
        varying[call] = call[0] == dna if by_name[call[0]].cls == "InputLayer" else \
            any(varying[c] for c in inputs_of(call))
    # Again, each layer's sequence-fed inputs first: a branch fed by fixed inputs alone runs just before its use.
    order = _order(outputs, lambda call: sorted(inputs_of(call), key=lambda c: not varying[c]), model.source)

    used = set(MODEL_ATTRIBUTES) | set(dir(KerasGraph)) | {"training"}
    slot: dict[Call, int] = {}
    shapes: list[tuple[int, ...]] = []  # per value, as here (channels first), without the batch axis
    live: list[bool] = []  # per value: computed from the sequence input
    built: dict[str, tuple[str, list[tuple[int, ...]]]] = {}  # layer -> (module name, input shapes)
    layers: dict[str, nn.Module] = OrderedDict()
    constants: dict[str, torch.Tensor] = {}
    plan: list[tuple[str, tuple[int, ...] | None, int, tuple]] = []
    keras_names: dict[str, str] = {}
    dna_layer = by_name[dna]
    keras_shape = declared_shape(dna_layer, role="the input layer")
    layout = input_layout(keras_shape, ctx.channels_last)
    adapters, input_shape = input_adapters(layout, keras_shape, onehot, model.source)
    used |= {name for name, _ in adapters}
    slot[(dna, 0)] = 0
    shapes.append(ctx.torch_shape(keras_shape))
    live.append(True)
    for call in order:
        layer = by_name[call[0]]
        if call in slot:
            continue
        if layer.cls == "InputLayer":  # a fixed input: a constant
            if layer.name not in fixed_inputs:
                raise FileFormatError(f"{layer.where()}: this InputLayer feeds the model but is not among its "
                                      f"input_layers ({', '.join(map(repr, input_names))})")
            name = _unique(layer.name, used)
            constants[name] = _fixed_value(fixed_inputs[layer.name], declared_shape(layer, role="the input layer"),
                                           ctx, layer.name)
            slot[call] = len(shapes)
            shapes.append(tuple(constants[name].shape[1:]))
            live.append(False)
            plan.append((name, None, slot[call], ()))
            continue
        ins = [slot[c] for c in inputs_of(call)]
        in_shapes = [shapes[i] for i in ins]
        if layer.name in built:
            name, first = built[layer.name]
            if in_shapes != first:
                raise ModelError(f"{layer.where()}: this shared layer is applied to inputs of shapes {first} and "
                                 f"{in_shapes}; a shared layer must always see the same shapes")
            out = output_shape([layers[name]], in_shapes, layer)
        else:
            custom = custom_module(layer, custom_layers)
            converted = convert(layer, ctx, in_shapes) if custom is None else \
                Converted("custom", [("custom", custom)], out_shape=output_shape([custom], in_shapes, layer))
            name = _unique(layer.name, used)
            layers[name] = _as_module(converted)
            keras_names[name] = layer.name
            built[layer.name] = (name, in_shapes)
            out = converted.out_shape
        fed = [pos for pos, i in enumerate(ins) if live[i]]
        expand = tuple((pos, fed[0], len(shapes[i]) + 1) for pos, i in enumerate(ins) if not live[i]) if fed else ()
        slot[call] = len(shapes)
        shapes.append(out)
        live.append(bool(fed))
        plan.append((name, tuple(ins), slot[call], expand))

    for call in outputs:
        if not varying[call]:
            raise ModelError(f"{by_name[call[0]].where()}: this output does not depend on the sequence input "
                             f"{dna!r}, which is not supported")
    join = len(outputs) > 1 or len(shapes[slot[outputs[0]]]) != 1
    graph = KerasGraph(adapters, layers, constants, plan, len(shapes),
                       [(slot[c], ctx.channels_last and len(shapes[slot[c]]) >= 2) for c in outputs], join)
    names: list[str] = []
    heads: dict[str, tuple[int, int]] = {}
    for call in outputs:
        width = math.prod(shapes[slot[call]])
        heads[call[0]] = (len(names), len(names) + width)
        names += [call[0]] if width == 1 else [f"{call[0]}[{i}]" for i in range(width)]
    graph.output_names = tuple(names) if join else None
    graph.output_heads = heads
    graph.keras_inputs = tuple(input_names)
    graph.fixed_inputs = tuple(n for n in input_names if n != dna)
    return Built(graph, keras_shape, layout, input_shape, keras_names)


def _sequence_input(names: list[str], fixed_inputs: dict[str, Any], source: str) -> str:
    """The one input fed with sequences: the one input not given a fixed value."""
    unknown = [k for k in fixed_inputs if k not in names]
    if unknown:
        raise ArgumentError(f"fixed_inputs: expected names of the model's inputs ({', '.join(map(repr, names))}), "
                            f"got {', '.join(map(repr, unknown))}")
    free = [n for n in names if n not in fixed_inputs]
    if not free:
        raise ArgumentError(f"fixed_inputs: expected values for every input but the DNA sequence, got values for all "
                            f"{len(names)} inputs ({', '.join(map(repr, names))})")
    if len(free) > 1:
        others = ", ".join(f"{n!r}: value" for n in free[1:])
        raise ModelError(f"{source!r}: the model takes {len(names)} inputs ({', '.join(map(repr, names))}); "
                         f"DeepResolve feeds one, the DNA sequence ({free[0]!r}): give the others fixed values, "
                         f"fixed_inputs={{{others}}} (a number, or an array in the input's Keras shape without the "
                         "batch axis)")
    return free[0]


def _fixed_value(value: Any, keras_shape: tuple[int, ...], ctx: Context, name: str) -> torch.Tensor:
    """A fixed input as a ``(1, *shape here)`` tensor: a number fills the input; an array has its Keras shape."""
    try:
        array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
    except (TypeError, ValueError):
        raise ArgumentError(f"fixed_inputs[{name!r}]: expected a number or an array, got "
                            f"{type(value).__name__}") from None
    if array.ndim == 0:
        array = np.full(keras_shape, float(array), dtype=np.float32)
    if array.shape == (1, *keras_shape):
        array = array[0]
    if array.shape != keras_shape:
        raise ArgumentError(f"fixed_inputs[{name!r}]: expected a number or an array of shape {keras_shape} (the "
                            f"input's Keras shape, without the batch axis), got shape {array.shape}")
    tensor = torch.from_numpy(array.copy())
    if ctx.channels_last and tensor.dim() >= 2:
        tensor = tensor.movedim(-1, 0)
    return tensor.unsqueeze(0).contiguous()


def _order(outputs: list[Call], children: Any, source: str) -> list[Call]:
    """The calls the outputs need, each after its inputs (depth first, ``children(call)`` in order)."""
    state: dict[Call, int] = {}  # 1: on the current path, 2: done
    order: list[Call] = []
    for root in outputs:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(children(root)))]
        while stack:
            call, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[call] = 2
                order.append(call)
                stack.pop()
            elif state.get(nxt) == 1:  # a broken file: report it instead of looping
                raise FileFormatError(f"{source!r}: the layer graph has a cycle through layer {nxt[0]!r}")
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(children(nxt))))
    return order


def _unique(name: str, used: set[str]) -> str:
    """A module or buffer name for a Keras name: dots (which PyTorch forbids) become underscores; clashes get _."""
    base = name.replace(".", "_") or "layer"
    if base.startswith("_"):
        base = f"layer{base}"
    while base in used:
        base += "_"
    used.add(base)
    return base


def _as_module(converted: Converted) -> nn.Module:
    """One module for a layer: its only piece, or its pieces in a :class:`KerasLayer` (``pad``, ``conv``, ...)."""
    if not converted.pieces:
        return nn.Identity()
    if len(converted.pieces) == 1:
        return converted.pieces[0][1]
    return KerasLayer(converted.pieces)
