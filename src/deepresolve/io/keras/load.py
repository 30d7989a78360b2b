"""``load_keras``: a Keras model file -> a PyTorch module computing what Keras computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from torch import nn

from ..._checks import Bool, Choice, ExistingFile, Instance, Names, OptionalOf, Shape, declare
from ...errors import ArgumentError
from .files import read_keras
from .graph import build_graph
from .layers import BACKENDS, Context
from .sequential import build_sequential


@declare(path=ExistingFile("Keras model path", folders=True), backend=OptionalOf(Choice(*BACKENDS)), onehot=Bool(),
         weights=OptionalOf(ExistingFile("weights", expected="a Keras weights file")),
         fixed_inputs=OptionalOf(Instance(Mapping, "a dict of Keras input names to values")),
         custom_layers=OptionalOf(Instance(Mapping, "a dict of Keras layer names to torch modules")),
         reverse_complement_inputs=OptionalOf(Names(label="reverse_complement_inputs")),
         input_shape=OptionalOf(Shape()))
def load_keras(path: str | Path, backend: str | None = None, onehot: bool = False, *,
               weights: str | Path | None = None, fixed_inputs: Mapping[str, Any] | None = None,
               custom_layers: Mapping[str, nn.Module] | None = None,
               reverse_complement_inputs: Sequence[str] | None = None,
               input_shape: Sequence[int] | None = None) -> nn.Module:
    """Rebuild a Keras model (0.x to 3.x files, ``Sequential`` or functional) as a PyTorch module.

    Parameters
    ----------
    path : str or Path
        The model folder (one ``.json`` and one ``.h5``), the ``.json`` (weights ``.h5`` beside it, or
        ``weights``), the ``.h5`` (architecture from a ``.json`` of the same name beside it, else from its
        ``model_config`` attribute, as in a ``model.save()`` file, else from the one ``.json`` in its folder), or a
        Keras 3 ``.keras`` archive. What a file holds is told from its content, not its name.
    backend : {"theano", "tensorflow"} or None
        The Keras backend the weights were trained with; it decides whether kernels are flipped (Theano computes a
        true convolution). None: Keras 2 files say which (``backend`` attribute; TensorFlow when absent), Keras 3
        never used Theano; for Keras 0.x/1.x it is inferred from each convolution's ``dim_ordering`` ("th" →
        Theano, "tf" → TensorFlow), which is how models were usually paired, and a ``Convolution1D`` counts as
        Theano when the model has no "tf" layer.
    onehot : bool
        False: the model takes Keras's input layout. True: it takes one-hot sequences ``(N, 4, L)`` like the rest
        of the package, through a first module ``from_onehot`` (:class:`~.modules.FromOneHot`).
    weights : str or Path, optional
        The weights file, of any name (a Keras 1-3 ``.h5`` or a Keras 3 ``.weights.h5``), for an architecture
        ``.json`` kept apart from it.
    fixed_inputs : dict of str -> number or array, optional
        For a model with several inputs: a fixed value for every input but the DNA sequence, by the Keras input's
        name (a number fills the input; an array has the input's Keras shape without the batch axis). The model
        then takes the sequence alone.
    custom_layers : dict of str -> nn.Module, optional
        A module for a layer the importer cannot build (a ``Lambda``, a custom class), by Keras layer name or
        class name (each layer of the class gets its own copy). It receives the layer's inputs and returns its
        output as tensors are held here: channels-first ``(N, C, L)`` (Keras's ``(N, L, C)`` with its last axis
        moved to position 1).
    reverse_complement_inputs : list of str, optional
        For a model that reads both strands (DeepMEL: the sequence and its reverse complement as two inputs): the
        inputs, by Keras name, computed as the reverse complement of the sequence input (channels and positions
        reversed, A-C-G-T order), so that the model takes the sequence alone.
    input_shape : tuple of int, optional
        The shape the module takes, without the batch axis (``(4, L)`` with ``onehot``, else Keras's layout): read
        only when the file leaves the sequence length open (``None``), to build the model for length ``L``.

    Returns
    -------
    torch.nn.Module
        In eval mode. A ``Sequential`` file gives a :class:`torch.nn.Sequential` with short names (``conv1``,
        ``conv1_relu``, ``pool1``, ``flatten``, ``dense1``, ..., ``sigmoid``; see
        :mod:`~deepresolve.io.keras.sequential`); a functional file gives a
        :class:`~deepresolve.io.keras.graph.KerasGraph` whose submodules carry the Keras layer names (a layer
        with padding or an activation is a :class:`~.modules.KerasLayer` of ``pad``, ``conv``, ``relu``, ...).
        Output: what Keras output (after its final activation); several outputs are flattened and joined into
        ``(N, C)``.
        Attributes: ``input_shape`` (the input the module takes, without the batch axis: ``(4, L)`` with
        ``onehot``), ``keras_input_shape`` (Keras's, e.g. ``(L, 4)``), ``keras_layout`` ("th2d", "tf2d", "1d"
        or "dense"), ``onehot_input``, ``keras_backend``, ``keras_version`` (0-3), ``keras_layers`` (module name
        -> Keras layer name); functional models also ``output_names`` (one per output column when outputs were
        joined, else None), ``output_heads`` (Keras output name -> its (start, stop) columns), ``keras_inputs``,
        ``fixed_inputs`` and ``reverse_complement_inputs`` (input names). A model used as a layer of another is a
        module of its own under that layer's name, its layers reachable as ``<layer>.<inner layer>``.

    Raises
    ------
    MissingFileError
        ``path`` or a file it needs does not exist.
    FileFormatError
        A file is truncated or corrupt, or lacks a field, a layer's weights or a weight array, or holds an array of
        the wrong shape; the message names the file, the layer and what was expected and found.
    ModelError
        The model uses a layer class, activation or setting that is not supported (the message lists what is and
        how to supply a module), or takes inputs that ``fixed_inputs`` does not give.
    """
    fixed = _mapping(fixed_inputs, "fixed_inputs", object)
    custom = _mapping(custom_layers, "custom_layers", nn.Module)
    rc = tuple(str(n) for n in reverse_complement_inputs or ())
    shape = None if input_shape is None else tuple(input_shape)
    model_file = read_keras(path, weights)
    ctx = Context.of(model_file, backend)
    if model_file.functional:
        built = build_graph(model_file, ctx, bool(onehot), fixed, custom, rc, shape)
    else:
        if fixed or rc:
            what = "fixed_inputs" if fixed else "reverse_complement_inputs"
            raise ArgumentError(f"{what}: expected only for a functional model with several inputs, got "
                                f"{sorted(fixed or rc)} for a Sequential model")
        built = build_sequential(model_file, ctx, bool(onehot), custom, shape)
    model = built.module
    model.eval()
    model.onehot_input = bool(onehot)
    model.input_shape = built.input_shape
    model.keras_input_shape = built.keras_input_shape
    model.keras_layout = built.layout
    model.keras_version = model_file.version
    model.keras_backend = backend or (("theano" if model_file.backend == "theano" else "tensorflow")
                                      if model_file.version >= 2 else ("tensorflow" if ctx.any_tf else "theano"))
    model.keras_layers = built.keras_layers
    return model


def _mapping(value: Mapping[str, Any] | None, argument: str, kind: type) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, kind) for k, v in value.items()):
        what = "torch modules" if kind is nn.Module else "values"
        raise ArgumentError(f"{argument}: expected a dict of Keras names to {what}, got {value!r:.100}")
    return dict(value)
