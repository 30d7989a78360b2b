"""Keras functional models (Keras 1 ``Model``, Keras 2 ``Model``/``Functional``, Keras 3 ``Functional``) as a
:class:`KerasGraph`: one submodule per Keras layer, registered under the layer's Keras name, run in an order fixed
when the model is built.

- A layer applied several times (a shared layer) is one module called several times.
- The model takes one input, the DNA sequence. A model with several inputs is built only when every other input
  is given a fixed value (``fixed_inputs``; those become buffers, broadcast over the batch) or is computed as the
  sequence's reverse complement (``reverse_complement``: a :class:`~.modules.ReverseComplement` module named after
  that input).
- A layer's outputs after the first are supported when they are constants at inference (``Converted.extra``, e.g.
  the flag of basenji's ``StochasticReverseComplement``), held like fixed inputs.
- A model used as a layer is a :class:`KerasGraph` (or ``nn.Sequential``) of its own under that layer's name.
- Several outputs are flattened (in Keras's element order) and joined into one ``(N, C)`` tensor;
  ``output_names`` names its columns and ``output_heads`` gives each output's columns.
- The forward pass is plain Python over a fixed plan, so ``torch.fx`` traces it and
  :func:`deepresolve.split_model` cuts it at any layer by its Keras name. The branches fed by fixed inputs alone
  run just before the layer that needs them, so that a cut before that layer keeps them in the head.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import ArgumentError, FileFormatError, ModelError
from .files import KerasFile, LayerSpec, TensorRef
from .inputs import Built, declared_shape, input_adapters, input_layout
from .layers import Context, Converted, convert, custom_module, output_shape
from .modules import KerasLayer, ReverseComplement

Call = tuple[str, int]  # (layer name, call index)

#: Attributes the loader sets on a model; no layer module may take these names.
MODEL_ATTRIBUTES = ("input_shape", "keras_input_shape", "keras_layout", "keras_version", "keras_backend",
                    "keras_layers", "onehot_input", "output_names", "output_heads", "keras_inputs", "fixed_inputs",
                    "reverse_complement_inputs")


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
                custom_layers: dict[str, nn.Module], reverse_complement: Sequence[str] = (),
                input_shape: tuple[int, ...] | None = None, inner: tuple[int, ...] | None = None) -> Built:
    """The :class:`KerasGraph` computing a Keras functional model (attributes describing outputs set on it).

    ``reverse_complement`` names inputs computed as the reverse complement of the sequence input; ``input_shape``
    (the module's input shape) gives a length the file leaves open. ``inner``: the model is a layer of another and
    takes a channels-first tensor of this shape (no adapters, one output, not flattened).
    """
    by_name: dict[str, LayerSpec] = {}
    for layer in model.layers:
        if layer.name in by_name:
            raise FileFormatError(f"{model.source!r}: two layers are named {layer.name!r}")
        by_name[layer.name] = layer

    def check_ref(ref: TensorRef, what: str) -> TensorRef:
        name, node, _ = ref
        if name not in by_name:
            raise FileFormatError(f"{model.source!r}: {what} refers to layer {name!r}, which the config does not "
                                  "define")
        calls = 1 if by_name[name].cls == "InputLayer" else len(by_name[name].inbound)
        if not 0 <= node < calls:
            raise FileFormatError(f"{model.source!r}: {what} refers to call {node} of layer {name!r}, which is "
                                  f"called {calls} times")
        return ref

    def refs_of(call: Call) -> list[TensorRef]:
        layer = by_name[call[0]]
        if layer.cls == "InputLayer":
            return []
        return [check_ref(ref, f"layer {layer.name!r}") for ref in layer.inbound[call[1]]]

    def inputs_of(call: Call) -> list[Call]:
        return [(name, node) for name, node, _ in refs_of(call)]

    model_inputs = [check_ref(ref, "input_layers") for ref in model.inputs]
    for name, _, _ in model_inputs:
        if by_name[name].cls != "InputLayer":
            raise ModelError(f"{by_name[name].where()}: a model input must be an InputLayer")
    input_names = [name for name, _, _ in model_inputs]
    declared = {n: declared_shape(by_name[n], role="the input layer", open_length=True) for n in input_names}
    dna = _sequence_input(declared, fixed_inputs, reverse_complement, model.source)
    model_outputs = [check_ref(ref, "output_layers") for ref in model.outputs]
    outputs = [(name, node) for name, node, _ in model_outputs]
    if inner is not None and (len(input_names) != 1 or len(outputs) != 1):
        raise ModelError(f"{model.source}: a model used as a layer must take one input and give one output; this one "
                         f"takes {len(input_names)} and gives {len(outputs)}: save it on its own and load that, or "
                         f"give a torch module for it (custom_layers)")

    order = _order(outputs, inputs_of, model.source)
    varying: dict[Call, bool] = {}
    for call in order:
        varying[call] = call[0] in (dna, *reverse_complement) if by_name[call[0]].cls == "InputLayer" else \
            any(varying[c] for c in inputs_of(call))
    # Again, each layer's sequence-fed inputs first: a branch fed by fixed inputs alone runs just before its use.
    order = _order(outputs, lambda call: sorted(inputs_of(call), key=lambda c: not varying[c]), model.source)

    used = set(MODEL_ATTRIBUTES) | set(dir(KerasGraph)) | {"training"}
    slot: dict[TensorRef, int] = {}
    shapes: list[tuple[int, ...]] = []  # per value, as here (channels first), without the batch axis
    live: list[bool] = []  # per value: computed from the sequence input
    built: dict[str, tuple[str, list[tuple[int, ...]]]] = {}  # layer -> (module name, input shapes)
    layers: dict[str, nn.Module] = OrderedDict()
    constants: dict[str, torch.Tensor] = {}
    plan: list[tuple[str, tuple[int, ...] | None, int, tuple]] = []
    keras_names: dict[str, str] = {}

    def constant(name: str, value: torch.Tensor, ref: TensorRef) -> None:
        name = _unique(name, used)
        constants[name] = value
        slot[ref] = len(shapes)
        shapes.append(tuple(value.shape[1:]))
        live.append(False)
        plan.append((name, None, slot[ref], ()))

    def computed(name: str, ins: list[int], out: tuple[int, ...], ref: TensorRef) -> None:
        fed = [pos for pos, i in enumerate(ins) if live[i]]
        expand = tuple((pos, fed[0], len(shapes[i]) + 1) for pos, i in enumerate(ins) if not live[i]) if fed else ()
        slot[ref] = len(shapes)
        shapes.append(out)
        live.append(bool(fed))
        plan.append((name, tuple(ins), slot[ref], expand))

    dna_layer = by_name[dna]
    if inner is None:
        keras_shape = _open_length(declared[dna], input_shape, onehot, ctx, dna_layer)
        layout = input_layout(keras_shape, ctx.channels_last)
        adapters, module_input = input_adapters(layout, keras_shape, onehot, model.source)
    else:  # the shape the outer model gives, in Keras's layout
        keras_shape = tuple(inner[1:]) + inner[:1] if ctx.channels_last and len(inner) >= 2 else tuple(inner)
        layout, adapters, module_input = "inner", [], tuple(inner)
        if len(declared[dna]) != len(keras_shape) or \
                any(d is not None and d != k for d, k in zip(declared[dna], keras_shape)):
            raise ModelError(f"{dna_layer.where()}: this model, used as a layer, takes inputs of shape "
                             f"{declared[dna]}; the outer model gives it {keras_shape}")
    used |= {name for name, _ in adapters}
    slot[(dna, 0, 0)] = 0
    shapes.append(ctx.torch_shape(keras_shape))
    live.append(True)
    for name in reverse_complement:
        if (name, 0) not in varying:
            continue  # an input no output needs
        if declared[name] != declared[dna]:
            raise ArgumentError(f"reverse_complement_inputs: expected inputs of the sequence input's shape "
                                f"{declared[dna]}, got {name!r} of shape {declared[name]}")
        if layout not in ("1d", "tf2d", "th2d"):
            raise ModelError(f"{model.source}: the sequence input {dna!r} is not a one-hot sequence (Keras shape "
                             f"{keras_shape}); it has no reverse complement")
        module = _unique(name, used)
        layers[module] = ReverseComplement()
        keras_names[module] = name
        computed(module, [0], shapes[0], (name, 0, 0))
    for call in order:
        layer = by_name[call[0]]
        if (*call, 0) in slot:
            continue
        if layer.cls == "InputLayer":  # a fixed input: a constant
            if layer.name not in fixed_inputs:
                raise FileFormatError(f"{layer.where()}: this InputLayer feeds the model but is not among its "
                                      f"input_layers ({', '.join(map(repr, input_names))})")
            constant(layer.name, _fixed_value(fixed_inputs[layer.name], declared_shape(layer, role="the input layer"),
                                              ctx, layer.name), (*call, 0))
            continue
        refs = refs_of(call)
        missing = next((r for r in refs if r not in slot), None)
        if missing is not None:  # a layer's output k > 0 that the layer does not give
            raise ModelError(f"{by_name[missing[0]].where()}: output {missing[2]} of this layer is used; this layer "
                             f"gives one output here (give a module for what uses it: custom_layers)")
        ins = [slot[r] for r in refs]
        in_shapes = [shapes[i] for i in ins]
        extra: tuple[torch.Tensor, ...] = ()
        if layer.name in built:
            name, first = built[layer.name]
            if in_shapes != first:
                raise ModelError(f"{layer.where()}: this shared layer is applied to inputs of shapes {first} and "
                                 f"{in_shapes}; a shared layer must always see the same shapes")
            out = output_shape([layers[name]], in_shapes, layer)
        else:
            custom = custom_module(layer, custom_layers)
            if custom is not None:
                converted = Converted("custom", [("custom", custom)],
                                      out_shape=output_shape([custom], in_shapes, layer))
            elif layer.nested is not None:
                converted = _nested(layer, ctx, in_shapes, custom_layers)
            else:
                converted = convert(layer, ctx, in_shapes)
            name = _unique(layer.name, used)
            layers[name] = _as_module(converted)
            keras_names[name] = layer.name
            if layer.nested is not None and custom is None:
                keras_names.update({f"{name}.{k}": f"{layer.name}/{v}" for k, v in layers[name].keras_layers.items()})
            built[layer.name] = (name, in_shapes)
            out, extra = converted.out_shape, converted.extra
        computed(name, ins, out, (*call, 0))
        for k, value in enumerate(extra, 1):
            constant(f"{layer.name}_output{k}", value.unsqueeze(0), (*call, k))

    missing = next((r for r in model_outputs if r not in slot), None)
    if missing is not None:
        raise ModelError(f"{by_name[missing[0]].where()}: output {missing[2]} of this layer is a model output; this "
                         "layer gives one output here")
    for call in outputs:
        if not varying[call]:
            raise ModelError(f"{by_name[call[0]].where()}: this output does not depend on the sequence input "
                             f"{dna!r}, which is not supported")
    out_slots = [slot[r] for r in model_outputs]
    join = inner is None and (len(outputs) > 1 or len(shapes[out_slots[0]]) != 1)
    graph = KerasGraph(adapters, layers, constants, plan, len(shapes),
                       [(i, ctx.channels_last and len(shapes[i]) >= 2) for i in out_slots], join)
    names: list[str] = []
    heads: dict[str, tuple[int, int]] = {}
    for (name, _, _), i in zip(model_outputs, out_slots):
        width = math.prod(shapes[i])
        heads[name] = (len(names), len(names) + width)
        names += [name] if width == 1 else [f"{name}[{i}]" for i in range(width)]
    graph.output_names = tuple(names) if join else None
    graph.output_heads = heads
    graph.keras_inputs = tuple(input_names)
    graph.fixed_inputs = tuple(n for n in input_names if n in fixed_inputs)
    graph.reverse_complement_inputs = tuple(reverse_complement)
    return Built(graph, keras_shape, layout, module_input, keras_names, shapes[out_slots[0]])


def _nested(layer: LayerSpec, ctx: Context, shapes: list[tuple[int, ...]], custom_layers: dict[str, nn.Module]
            ) -> Converted:
    """A model used as a layer: built as a module of its own (its layers reachable as ``<layer>.<inner layer>``),
    computing exactly what it computes inside the outer model."""
    from .sequential import build_sequential

    nested = layer.nested
    if len(shapes) != 1:
        raise ModelError(f"{layer.where()}: a model used as a layer must take one input; the model gives it "
                         f"{len(shapes)}")
    built = build_graph(nested, ctx, False, {}, custom_layers, inner=shapes[0]) if nested.functional else \
        build_sequential(nested, ctx, False, custom_layers, inner=shapes[0])
    built.module.keras_layers = built.keras_layers
    return Converted("model", [("model", built.module)], out_shape=built.out_shape)


def _open_length(declared: tuple[int | None, ...], input_shape: tuple[int, ...] | None, onehot: bool, ctx: Context,
                 layer: LayerSpec) -> tuple[int, ...]:
    """The input's Keras shape, a length the file leaves open (None) taken from ``input_shape`` (the module's input
    shape: ``(4, L)`` with ``onehot``, else Keras's layout)."""
    if None not in declared:
        return declared  # type: ignore[return-value]
    open_shape = tuple(declared)
    if input_shape is None:
        example = "(4, L)" if onehot else str(tuple("L" if s is None else s for s in open_shape)).replace("'", "")
        raise ArgumentError(f"input_shape: expected the input's length, e.g. input_shape={example}: the file leaves it "
                            f"open ({layer.name!r} takes {open_shape}), got none")
    layout = input_layout(tuple(1 if s is None else s for s in open_shape), ctx.channels_last)
    given = tuple(input_shape)
    if onehot and layout == "1d" and len(given) == 2:
        keras_shape = (given[1], given[0])
    elif onehot and layout == "tf2d" and len(given) == 2:
        keras_shape = (1, given[1], given[0])
    elif onehot and layout == "th2d" and len(given) == 2:
        keras_shape = (given[0], 1, given[1])
    else:
        keras_shape = given
    if len(keras_shape) != len(open_shape) or any(d is not None and d != k for d, k in zip(open_shape, keras_shape)):
        raise ArgumentError(f"input_shape: expected a shape that fills the input's open length ({layer.name!r} takes "
                            f"{open_shape}{', as one-hot (4, L)' if onehot else ''}), got {given}")
    return keras_shape


def _sequence_input(shapes: dict[str, tuple[int | None, ...]], fixed_inputs: dict[str, Any],
                    reverse_complement: Sequence[str], source: str) -> str:
    """The one input fed with sequences: the one input (of ``shapes``, the inputs' declared Keras shapes) neither
    given a fixed value nor computed as the reverse complement of the sequence."""
    names = list(shapes)
    for argument, given in (("fixed_inputs", list(fixed_inputs)), ("reverse_complement_inputs", reverse_complement)):
        unknown = [k for k in given if k not in names]
        if unknown:
            raise ArgumentError(f"{argument}: expected names of the model's inputs ({', '.join(map(repr, names))}), "
                                f"got {', '.join(map(repr, unknown))}")
    both = [n for n in reverse_complement if n in fixed_inputs]
    if both:
        raise ArgumentError(f"reverse_complement_inputs: expected inputs not given a fixed value, got {both[0]!r}, "
                            "also in fixed_inputs")
    free = [n for n in names if n not in fixed_inputs and n not in reverse_complement]
    if not free:
        raise ArgumentError(f"fixed_inputs: expected values for every input but the DNA sequence, got values for all "
                            f"{len(names)} inputs ({', '.join(map(repr, names))})")
    if len(free) > 1:
        others = ", ".join(f"{n!r}: value" for n in free[1:])
        strands = [n for n in free[1:] if shapes[n] == shapes[free[0]]]
        rc = f", or, if {strands[0]!r} takes the sequence's reverse complement, reverse_complement_inputs=" \
             f"[{strands[0]!r}]" if strands else ""
        raise ModelError(f"{source!r}: the model takes {len(names)} inputs ({', '.join(map(repr, names))}); "
                         f"DeepResolve feeds one, the DNA sequence ({free[0]!r}): give the others fixed values, "
                         f"fixed_inputs={{{others}}} (a number, or an array in the input's Keras shape without the "
                         f"batch axis){rc}")
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
