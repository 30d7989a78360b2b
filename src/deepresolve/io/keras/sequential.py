"""Keras ``Sequential`` models as :class:`torch.nn.Sequential`, with short readable module names.

Each Keras layer becomes one or a few modules named after what they are, numbered per kind: ``conv1`` (preceded
by ``conv1_pad`` for "same" padding, followed by ``conv1_relu`` for its activation), ``pool1``, ``flatten``,
``dense1``, ``dropout1``, ``batchnorm1``, ``relu`` (an ``Activation`` layer), ..., and ``sigmoid`` (``softmax``)
for the final layer's own sigmoid (softmax) activation. ``model.keras_layers`` maps each name to the Keras layer it
computes.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ...errors import FileFormatError, ModelError
from .files import KerasFile
from .inputs import Built, declared_shape, input_adapters, input_layout
from .layers import CONVERTERS, Context, Converted, convert, custom_module, output_shape, unsupported


def build_sequential(model: KerasFile, ctx: Context, onehot: bool, custom_layers: dict[str, nn.Module],
                     input_shape: tuple[int, ...] | None = None, inner: tuple[int, ...] | None = None) -> Built:
    """The :class:`torch.nn.Sequential` computing a Keras ``Sequential`` model.

    ``input_shape`` (the module's input shape) gives a length the file leaves open; ``inner``: the model is a layer
    of another and takes a channels-first tensor of this shape (no adapters).
    """
    from .graph import _nested, _open_length  # the graph builder builds Sequential models used as its layers

    layers = model.layers
    declared = declared_shape(layers[0], model.build_input_shape, open_length=True)
    if layers[0].cls == "InputLayer":  # tf.keras and Keras 3 configs may start with one; it holds only the shape
        layers = layers[1:]
    if not layers:
        raise FileFormatError(f"Keras config {model.source!r} has no layers after its InputLayer")
    for layer in layers:
        if custom_module(layer, custom_layers) is None and layer.cls not in CONVERTERS and layer.nested is None:
            raise unsupported(layer)
    if inner is None:
        keras_shape = _open_length(declared, input_shape, onehot, ctx, model.layers[0])
        layout = input_layout(keras_shape, ctx.channels_last)
        adapters, input_shape = input_adapters(layout, keras_shape, onehot, model.source)
    else:  # the shape the outer model gives, in Keras's layout
        keras_shape = tuple(inner[1:]) + inner[:1] if ctx.channels_last and len(inner) >= 2 else tuple(inner)
        layout, adapters, input_shape = "inner", [], tuple(inner)
        if len(declared) != len(keras_shape) or any(d is not None and d != k for d, k in zip(declared, keras_shape)):
            raise ModelError(f"{model.source}: this model, used as a layer, takes inputs of shape {declared}; the "
                             f"outer model gives it {keras_shape}")
    modules: OrderedDict[str, nn.Module] = OrderedDict(adapters)
    keras_names: dict[str, str] = {}
    counts: dict[str, int] = {}

    def next_name(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return f"{kind}{counts[kind]}"

    cur = ctx.torch_shape(keras_shape)
    for layer in layers:
        custom = custom_module(layer, custom_layers)
        if custom is None and layer.nested is not None:
            converted = _nested(layer, ctx, [cur], custom_layers)
        elif custom is None:
            converted = convert(layer, ctx, [cur])
        else:
            converted = Converted("custom", [("custom", custom)], out_shape=output_shape([custom], [cur], layer))
        roles = [role for role, _ in converted.pieces]
        if converted.kind == "activation":
            main = roles[0] if roles and roles[0] not in modules else next_name(roles[0]) if roles else ""
        elif converted.kind == "flatten":
            main = "flatten" if "flatten" not in modules else next_name("flatten")
        else:
            main = next_name(converted.kind)
        act = layer.cfg.get("activation") if converted.activated else None
        for i, (role, module) in enumerate(converted.pieces):
            if converted.kind == "activation" or role == converted.kind:
                name = main
            elif act is not None and i == len(converted.pieces) - 1 and role == str(act):
                name = act if act in ("sigmoid", "softmax") and layer is layers[-1] else f"{main}_{act}"
            else:
                name = f"{main}_{role}"
            modules[name] = module
            keras_names[name] = layer.name
        cur = converted.out_shape
    return Built(nn.Sequential(modules), keras_shape, layout, input_shape, keras_names, cur)

