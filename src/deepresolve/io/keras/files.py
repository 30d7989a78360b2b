"""Reading Keras files without Keras: where the architecture and the weights are, the config in each dialect, and
the weights in each layout.

Architecture (config) dialects:

- Keras 0.x: ``{"name": "Sequential", "layers": [{"name": <class>, <parameters>}, ...]}``.
- Keras 1.x / 2.x ``Sequential``: ``{"class_name": "Sequential", "config": [...]}`` (Keras >= 2.2.3 wraps the
  list as ``{"name": ..., "layers": [...]}``).
- Keras 1.x ``Model``, Keras 2.x ``Model``/``Functional``: ``{"class_name": "Model", "config": {"layers": [...],
  "input_layers": [[name, node, tensor]], "output_layers": [...]}}``; each layer lists ``inbound_nodes``, one per
  call, each a list of ``[layer, node_index, tensor_index(, kwargs)]``.
- Keras 3: the same keys, each layer also naming its ``module``; an inbound node is ``{"args": [...], "kwargs":
  {...}}`` whose tensors are ``{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node,
  tensor]}}``; ``InputLayer`` records ``batch_shape``.

Weight layouts:

- Keras 0.x ``save_weights``: groups ``layer_{i}`` holding ``param_{j}``.
- Keras 1.x-3.x ``.h5`` (``model.save()``: under ``model_weights``; ``save_weights()``: at the root): one group
  per layer name, its arrays listed in order by the ``weight_names`` attribute.
- Keras 3 ``.keras`` archives and ``.weights.h5`` files: ``layers/<class in snake_case>[_<k>]/vars/<i>``, the
  k-th layer of a class in the order the config lists the layers (Keras 2.13 wrote
  ``_layer_checkpoint_dependencies`` for ``layers``).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...errors import FileFormatError, MissingFileError, ModelError
from ..formats import sniff

#: A tensor of a Keras graph: (layer name, call (node) index, output index).
TensorRef = tuple[str, int, int]

_REQUIRED = object()  # marks a config field without a default
_H5_SUFFIXES = (".h5", ".hdf5")
_KERAS_ZIP_CONFIG, _KERAS_ZIP_METADATA = "config.json", "metadata.json"


@dataclass
class LayerSpec:
    """One Keras layer as the file describes it: what a converter builds a module from."""

    cls: str  # class name as written ("Convolution1D", "Conv1D", ...)
    name: str  # layer name (Keras 0.x: "layer_{i}", the group of its weights)
    cfg: dict[str, Any]
    version: int  # major Keras version of the file: 0, 1, 2 or 3
    source: str  # the file the architecture came from, for messages
    inbound: list[list[TensorRef]] = field(default_factory=list)  # functional models: the inputs of each call
    module: str = ""  # Keras 3: the Python module of the class ("keras.layers", "keras.src.ops.numpy", ...)
    weights: list[tuple[str, np.ndarray]] | None = None  # (stored name, array); None: the file has no group for it
    weights_file: str = ""
    nested: KerasFile | None = None  # a model used as a layer: its own layers, weights attached to them

    def wrapped(self, weights: list[tuple[str, np.ndarray]] | None) -> LayerSpec:
        """The layer a wrapper (``Bidirectional``, ``TimeDistributed``) holds, with ``weights``."""
        inner = self.field("layer", expected="the wrapped layer's config")
        if not isinstance(inner, dict) or not isinstance(inner.get("config", {}), dict):
            raise FileFormatError(f"{self.where()}: field 'layer' must hold the wrapped layer's config; found "
                                  f"{inner!r:.80}")
        return LayerSpec(class_name(inner.get("class_name")), self.name, dict(inner.get("config", {})), self.version,
                         self.source, module=str(inner.get("module") or ""), weights=weights,
                         weights_file=self.weights_file)

    def where(self) -> str:
        return f"{self.source}: layer {self.name!r} ({self.cls})"

    def field(self, key: str, default: Any = _REQUIRED, expected: str = "a value") -> Any:
        """``cfg[key]``, or ``default``; a missing required field is a file-format error naming it."""
        if key in self.cfg and self.cfg[key] is not None:
            return self.cfg[key]
        if default is _REQUIRED:
            raise FileFormatError(f"{self.where()}: config has no field {key!r} (expected {expected}); "
                                  f"it has {sorted(self.cfg)}")
        return default

    def ints(self, key: str, n: int, default: Any = _REQUIRED, minimum: int = 1) -> tuple[int, ...]:
        """An int or a list of ``n`` ints (Keras 2 writes ``kernel_size`` as ``[5]``, Keras 1 ``filter_length``
        as 5)."""
        value = self.field(key, default, expected=f"an int or a list of {n} ints")
        values = list(value) if isinstance(value, (list, tuple)) else [value] * n
        if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                       for v in values):
            kind = "positive int" if minimum == 1 else f"int >= {minimum}"
            raise FileFormatError(f"{self.where()}: field {key!r} must be a {kind} or {n} of them; found {value!r}")
        return tuple(values)

    def arrays(self, names: list[str]) -> list[np.ndarray]:
        """The layer's weight arrays in the order ``names`` describes them (names are for messages)."""
        if self.weights is None:
            raise FileFormatError(f"{self.weights_file}: no weights for layer {self.name!r} ({self.cls}); expected "
                                  f"{len(names)} arrays ({', '.join(names)})")
        if len(self.weights) != len(names):
            found = [f"{n} {a.shape}" for n, a in self.weights]
            raise FileFormatError(f"{self.weights_file}: layer {self.name!r} ({self.cls}) expected {len(names)} weight "
                                  f"arrays ({', '.join(names)}); found {len(self.weights)}: {found}")
        return [a for _, a in self.weights]


@dataclass
class KerasFile:
    """A Keras model as its files describe it, weights attached to the layers."""

    version: int  # 0, 1, 2 or 3
    functional: bool  # a graph (Model/Functional) rather than a Sequential stack
    layers: list[LayerSpec]
    inputs: list[TensorRef]  # functional models: the model's inputs, in the order Keras takes them
    outputs: list[TensorRef]  # functional models: its outputs, in order
    source: str  # where the architecture came from, for messages
    weights_file: str
    backend: str  # the backend the file records ("" when it records none)
    build_input_shape: list | None = None  # Sequential configs may record the input shape here instead


def read_keras(path: str | Path, weights: str | Path | None = None) -> KerasFile:
    """Read a Keras model's architecture and weights.

    Parameters
    ----------
    path : str or Path
        A folder (one ``.json`` and one ``.h5``), an architecture JSON (weights ``.h5`` beside it, or ``weights``),
        an HDF5 file (architecture from a ``.json`` of the same name beside it, else from its ``model_config``
        attribute, else from the one ``.json`` in its folder) or a Keras 3 ``.keras`` archive. The kind of file is
        told from its content.
    weights : str or Path, optional
        The weights file, of any name: a Keras 1-3 ``.h5`` or a Keras 3 ``.weights.h5``. It replaces the weights
        the rules above would find.

    Both exist and can be read: :func:`~deepresolve.io.keras.load_keras` declares them.
    """
    path = Path(path)
    weights_path = None if weights is None else Path(weights)
    kind = _kind(path)
    if kind == "keras_zip":
        return _read_keras_zip(path, weights_path)
    json_path, h5_path = _locate(path, kind, weights_path)
    attrs = _h5_attrs(h5_path)  # Keras 1.2-3 record keras_version here; a corrupt file is reported first
    arch_file = path if kind == "hdf5" else h5_path  # the HDF5 file that may hold the architecture
    arch_attrs = attrs if arch_file == h5_path else _h5_attrs(arch_file)
    if json_path is not None:
        text, source = _read_text(json_path), str(json_path)
    else:
        if "model_config" not in arch_attrs:
            raise MissingFileError(
                f"no architecture for {str(arch_file)!r}: no .json beside it and no 'model_config' attribute inside "
                "(a weights-only file needs the model's .json)"
            )
        text, source = _text(arch_attrs["model_config"]), f"{arch_file}:model_config"
    config = _parse_json(text, source)
    recorded = config.get("keras_version") or arch_attrs.get("keras_version") or attrs.get("keras_version")
    model = _parse_config(config, source, recorded)
    model.weights_file = str(h5_path)
    try:
        with h5py.File(h5_path, "r") as f:
            weights_by_layer, model.backend = _read_weights(f, model, str(h5_path))
    except OSError as err:  # truncated or corrupt file: h5py fails when it opens it or reads a dataset
        raise _unreadable(h5_path, err) from None
    _attach(model, weights_by_layer)
    return model


def _kind(path: Path) -> str:
    """:func:`sniff`, falling back on the suffix for a damaged file so that the message says what is wrong with it."""
    kind = sniff(path)
    if kind == "unknown":
        suffix = path.suffix.lower()
        kind = "hdf5" if suffix in _H5_SUFFIXES else "json" if suffix == ".json" else "keras_zip" \
            if suffix == ".keras" else kind
    if kind in ("folder", "hdf5", "json", "keras_zip"):
        return kind
    if kind == "saved_model":
        raise ModelError(f"{str(path)!r} is a TensorFlow SavedModel folder, which cannot be read without TensorFlow; "
                         "load it in TensorFlow and save it as .h5 (model.save('model.h5')) or .keras")
    raise FileFormatError(f"{str(path)!r} is not a Keras model (its content is {kind.replace('_', ' ')}); expected a "
                          "Keras .json, .h5 or .keras file or a folder holding a .json and an .h5")


def _locate(path: Path, kind: str, weights: Path | None) -> tuple[Path | None, Path]:
    """(json path or None, weights path) for a model folder, a json file or an HDF5 file."""
    if kind == "folder":
        jsons = sorted(path.glob("*.json"))
        if len(jsons) > 1:
            raise MissingFileError(
                f"Keras model folder {str(path)!r} holds several .json files {[p.name for p in jsons]}; pass the "
                "json path"
            )
        if weights is not None:
            return (jsons[0] if jsons else None), weights
        h5s = sorted(p for p in path.iterdir() if p.suffix.lower() in _H5_SUFFIXES)
        if len(h5s) != 1:
            raise MissingFileError(
                f"Keras model folder {str(path)!r} must hold exactly one .h5 weights file; found "
                f"{[p.name for p in h5s]}"
            )
        return (jsons[0] if jsons else None), h5s[0]
    if kind == "json":
        if weights is not None:
            return path, weights
        beside = [path.with_suffix(s) for s in _H5_SUFFIXES]
        found = [p for p in beside if p.exists()]
        if not found:
            h5s = sorted(p for p in path.parent.iterdir() if p.suffix.lower() in _H5_SUFFIXES)
            if len(h5s) != 1:
                raise MissingFileError(
                    f"no weights for {str(path)!r}: expected {path.with_suffix('.h5').name} or exactly one .h5 file "
                    f"beside it (or weights=<file>); found {[p.name for p in h5s]}"
                )
            found = h5s
        return path, found[0]
    # HDF5: the architecture comes from a json of the same name, the file's model_config, or a lone json beside it.
    if path.with_suffix(".json").exists() and path.suffix.lower() != ".json":
        return path.with_suffix(".json"), weights or path
    if weights is not None or "model_config" in _h5_attrs(path):
        return None, weights or path
    jsons = sorted(path.parent.glob("*.json"))
    return (jsons[0] if len(jsons) == 1 else None), path


def _read_keras_zip(path: Path, weights: Path | None) -> KerasFile:
    """A Keras 3 ``.keras`` archive: ``config.json``, ``metadata.json`` and ``model.weights.h5``."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if _KERAS_ZIP_CONFIG not in names:
                raise FileFormatError(f"{str(path)!r} is a zip archive without {_KERAS_ZIP_CONFIG}; expected a Keras 3 "
                                      f".keras file (config.json + model.weights.h5)")
            text = z.read(_KERAS_ZIP_CONFIG).decode("utf-8", errors="replace")
            meta = _parse_json(z.read(_KERAS_ZIP_METADATA).decode("utf-8", errors="replace"),
                               f"{path}:{_KERAS_ZIP_METADATA}") if _KERAS_ZIP_METADATA in names else {}
            member = next((n for n in names if n.startswith("model.weights.")), None)
            if weights is None and member != "model.weights.h5":
                raise FileFormatError(f"{str(path)!r}: expected the weights as model.weights.h5 inside; found "
                                      f"{member!r} (save with weights_format='h5')")
            blob = z.read(member) if weights is None else None
    except (zipfile.BadZipFile, OSError) as err:
        raise FileFormatError(f"{str(path)!r} is not a readable .keras archive ({err}); the file may be "
                              "truncated") from None
    source = f"{path}:{_KERAS_ZIP_CONFIG}"
    model = _parse_config(_parse_json(text, source), source, meta.get("keras_version", "3"))
    model.weights_file = f"{path}:model.weights.h5" if weights is None else str(weights)
    try:
        with h5py.File(io.BytesIO(blob) if blob is not None else weights, "r") as f:
            weights_by_layer, model.backend = _read_weights(f, model, model.weights_file)
    except OSError as err:
        raise _unreadable(Path(model.weights_file), err) from None
    _attach(model, weights_by_layer)
    return model


def _attach(model: KerasFile, weights: dict[str, list[tuple[str, np.ndarray]]]) -> None:
    for layer in model.layers:
        layer.weights, layer.weights_file = weights.get(layer.name), model.weights_file
        if layer.nested is not None:
            layer.nested.weights_file = model.weights_file
            _attach(layer.nested, _by_inner_layer(layer.weights or [], layer.nested))


def _by_inner_layer(weights: list[tuple[str, np.ndarray]], nested: KerasFile) -> dict[str, list]:
    """A nested model's weights, stored under its own layer name (``encoder/conv1d/kernel:0``), by inner layer: the
    first part of each stored name that names one of its layers."""
    names = {layer.name for layer in nested.layers}
    found: dict[str, list[tuple[str, np.ndarray]]] = {}
    for stored, array in weights:
        parts = stored.split("/")
        owner = next((i for i, part in enumerate(parts) if part in names), None)
        if owner is not None:
            found.setdefault(parts[owner], []).append(("/".join(parts[owner:]), array))
    return found


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as err:
        raise FileFormatError(f"{str(path)!r} is not a text (json) file: {err}") from None


def _parse_json(text: str, source: str) -> dict:
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise FileFormatError(f"{source!r} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise FileFormatError(f"{source!r}: expected a JSON object describing a Keras model; found "
                              f"{type(config).__name__}")
    return config


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _h5_attrs(h5_path: Path) -> dict[str, Any]:
    """The root attributes of an HDF5 file; a file h5py cannot open is reported as what it is."""
    try:
        with h5py.File(h5_path, "r") as f:
            return dict(f.attrs)
    except OSError as err:
        raise _unreadable(h5_path, err) from None


def _unreadable(h5_path: Path, err: Exception) -> FileFormatError:
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return FileFormatError(f"{str(h5_path)!r} is not a readable HDF5 file (h5py: {first}); expected Keras weights "
                           "saved by model.save() or model.save_weights() -- the file may be truncated")


def _attr_list(group: h5py.Group, name: str) -> list[str] | None:
    """A string-list attribute; Keras splits one over the 64 KB header limit into ``name0``, ``name1``, ..."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])]
    if f"{name}0" not in group.attrs:
        return None
    values: list[str] = []
    i = 0
    while f"{name}{i}" in group.attrs:
        values += [_text(v) for v in np.atleast_1d(group.attrs[f"{name}{i}"])]
        i += 1
    return values


# ---------------------------------------------------------------------------------------------------------------
# The architecture


def _parse_config(config: dict, source: str, recorded: Any) -> KerasFile:
    """The layers (without weights), inputs and outputs a config describes, in any dialect."""
    if config.get("name") == "Sequential" and isinstance(config.get("layers"), list):
        # Keras 0.x: {"name": "Sequential", "layers": [{"name": <class>, <parameters>}, ...]}
        specs = config["layers"]
        layers = [LayerSpec(str(s.get("name")), f"layer_{i}", {k: v for k, v in s.items() if k != "name"}, 0, source)
                  for i, s in enumerate(specs) if isinstance(s, dict)]
        return _model(0, False, layers, specs, source)
    cls = config.get("class_name")
    body = config.get("config")
    if cls == "Sequential":
        specs = body.get("layers") if isinstance(body, dict) else body  # Keras >= 2.2.3 wraps the list
        if not isinstance(specs, list):
            raise FileFormatError(f"{source!r}: a Sequential config must hold a list of layers; found {body!r:.80}")
        version = _keras_version(recorded, specs)
        layers = [_layer_spec(s, version, source, functional=False) for s in specs if isinstance(s, dict)]
        model = _model(version, False, layers, specs, source)
        model.build_input_shape = body.get("build_input_shape") if isinstance(body, dict) else None
        return model
    if cls in ("Model", "Functional"):
        if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
            raise FileFormatError(f"{source!r}: a {cls} config must hold a list of layers; found {body!r:.80}")
        specs = body["layers"]
        version = _keras_version(recorded, specs)
        layers = [_layer_spec(s, version, source, functional=True) for s in specs if isinstance(s, dict)]
        model = _model(version, True, layers, specs, source)
        model.inputs = _refs(body.get("input_layers"), source, "input_layers")
        model.outputs = _refs(body.get("output_layers"), source, "output_layers")
        return model
    raise ModelError(f"{source!r} holds a Keras {cls!r} model; Sequential and functional (Model/Functional) models "
                     "load (a subclassed model has no config: save it as a functional model or export it to ONNX)")


def _model(version: int, functional: bool, layers: list[LayerSpec], specs: list, source: str) -> KerasFile:
    if len(layers) != len(specs):
        raise FileFormatError(f"{source!r}: every layer must be a JSON object; found {specs!r:.80}")
    if not layers:
        raise FileFormatError(f"Keras config {source!r} has no layers")
    return KerasFile(version, functional, layers, [], [], source, "", "")


def class_name(value: Any) -> str:
    """A layer's class as a config names it; a registered custom class ``"package>Class"`` is ``"Class"``."""
    return str(value).rsplit(">", 1)[-1]


#: Classes of a model used as a layer of another.
NESTED_MODELS = ("Functional", "Model", "Sequential")


def _layer_spec(spec: dict, version: int, source: str, functional: bool) -> LayerSpec:
    cfg = spec.get("config", {})
    cfg = dict(cfg) if isinstance(cfg, dict) else {}
    cls = class_name(spec.get("class_name"))
    name = str(spec.get("name") or cfg.get("name") or cls)
    layer = LayerSpec(cls, name, cfg, version, source, module=str(spec.get("module") or ""))
    if cls in NESTED_MODELS and isinstance(cfg.get("layers"), list):
        layer.nested = _parse_config({"class_name": cls, "config": cfg}, f"{source}: layer {name!r}", str(version))
    if functional:
        nodes = spec.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise FileFormatError(f"{layer.where()}: inbound_nodes must be a list; found {nodes!r:.80}")
        layer.inbound = [_node(node, layer) for node in nodes]
    return layer


def _node(node: Any, layer: LayerSpec) -> list[TensorRef]:
    """The input tensors of one call of a layer (Keras 1/2: a list of entries; Keras 3: args and kwargs)."""
    if isinstance(node, dict):
        refs = _keras3_tensors(node.get("args", []))
        if _keras3_tensors(node.get("kwargs", {})):
            raise ModelError(f"{layer.where()}: a call passes tensors as keyword arguments, which is not supported; "
                             f"give a module for it: custom_layers={{{layer.name!r}: module}}")
        return refs
    if not isinstance(node, list):
        raise FileFormatError(f"{layer.where()}: an inbound node must be a list or an object; found {node!r:.80}")
    refs = []
    for entry in node:
        if not (isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[0], str)
                and all(isinstance(v, int) for v in entry[1:3])):
            raise FileFormatError(f"{layer.where()}: an inbound node entry must be [layer, node_index, tensor_index]; "
                                  f"found {entry!r:.80}")
        refs.append((entry[0], entry[1], entry[2]))
    return refs


def _keras3_tensors(value: Any) -> list[TensorRef]:
    """The Keras 3 tensors (``__keras_tensor__`` objects) in a call's arguments, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = value.get("config", {}).get("keras_history")
            if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
                raise FileFormatError(f"a Keras 3 tensor must record keras_history [layer, node, tensor]; found "
                                      f"{value!r:.80}")
            return [(history[0], int(history[1]), int(history[2]))]
        return [r for v in value.values() for r in _keras3_tensors(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _keras3_tensors(v)]
    return []


def _refs(value: Any, source: str, key: str) -> list[TensorRef]:
    """``input_layers``/``output_layers``: one [layer, node, tensor] triple, a list or a dict of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int):
        return [(value[0], value[1], value[2])]
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list) or not value:
        raise FileFormatError(f"{source!r}: {key} must list [layer, node_index, tensor_index] triples; found "
                              f"{value!r:.80}")
    return [r for v in value for r in _refs(v, source, key)]


def _keras_version(recorded: Any, specs: list) -> int:
    """1, 2 or 3: the file's ``keras_version`` when recorded, else what the layer configs look like."""
    if recorded is not None:
        major = _text(recorded).split(".")[0]
        if major not in ("1", "2", "3"):
            raise ModelError(f"Keras {_text(recorded)} files are not supported; Keras 0.x to 3.x models load "
                             "(export the model to ONNX)")
        return int(major)
    if any("module" in s for s in specs if isinstance(s, dict)):
        return 3
    keras2 = {"Conv1D", "Conv2D"}
    fields2 = {"units", "filters", "rate", "use_bias"}
    looks2 = any(s.get("class_name") in keras2 or fields2 & set(s.get("config", {}))
                 for s in specs if isinstance(s, dict))
    return 2 if looks2 else 1


# ---------------------------------------------------------------------------------------------------------------
# The weights


def _read_weights(f: h5py.File, model: KerasFile, where: str) -> tuple[dict[str, list[tuple[str, np.ndarray]]], str]:
    """Weights per layer name, in the order Keras listed them (kernel first, then bias), and the file's backend."""
    if model.version == 0:
        # Keras 0.x save_weights: group layer_{i} per layer, datasets param_{j}, counted by nb_params.
        weights = {}
        for name, group in f.items():
            n = int(group.attrs.get("nb_params", len(group)))
            weights[name] = [(f"{name}/param_{j}", _dataset(group, f"param_{j}", where, name)) for j in range(n)]
        return weights, ""
    if "model_weights" not in f and _attr_list(f, "layer_names") is None and \
            any(k in f for k in ("layers", "_layer_checkpoint_dependencies", "vars")):
        return _read_keras3_store(f, model, where), ""
    root = f["model_weights"] if "model_weights" in f else f  # model.save() vs model.save_weights()
    backend = _text(root.attrs.get("backend", f.attrs.get("backend", "")))
    names = _attr_list(root, "layer_names")
    weights = {}
    for name in names if names is not None else list(root.keys()):
        if name not in root:
            continue  # a layer listed without a group is reported when a converter needs its weights
        group = root[name]
        wnames = _attr_list(group, "weight_names")
        if not wnames:
            wnames = [k for k in (f"{name}_W", f"{name}_b") if k in group]
        weights[name] = [(w, _dataset(group, w, where, name)) for w in wnames]
    return weights, backend


def snake_case(name: str) -> str:
    """Keras 3's ``naming.to_snake_case``: the key of a layer class in a ``.keras`` weights store."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _read_keras3_store(f: h5py.File, model: KerasFile, where: str) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Keras 3 ``layers/<class>[_k]/vars/<i>``: the k-th layer of a class in config order owns that group."""
    top = "layers" if "layers" in f else "_layer_checkpoint_dependencies"
    used: dict[str, int] = {}
    weights = {}
    for layer in model.layers:
        if ".ops." in layer.module:
            continue  # a raw Keras op, not a layer: the store does not count it (converters refuse it)
        key = snake_case(layer.cls)
        used[key] = used[key] + 1 if key in used else 0
        path = f"{top}/{key}" + (f"_{used[key]}" if used[key] else "")
        if path in f and layer.nested is not None:  # a store of its own: named after its layers, as in an .h5
            weights[layer.name] = [(f"{inner}/{stored}", array) for inner, arrays in
                                   _read_keras3_store(f[path], layer.nested, where).items() for stored, array in arrays]
        elif path in f:
            weights[layer.name] = _store_vars(f[path], path, where, layer.name)
    return weights


def _store_vars(group: h5py.Group, path: str, where: str, layer: str) -> list[tuple[str, np.ndarray]]:
    """A layer's own ``vars/<i>`` in numeric order, then those of its sublayers (e.g. a recurrent layer's cell)."""
    found: list[tuple[str, np.ndarray]] = []
    if "vars" in group:
        found += [(f"{path}/vars/{k}", _dataset(group["vars"], k, where, layer))
                  for k in sorted(group["vars"], key=lambda k: int(k) if k.isdigit() else -1)]
    for key in sorted(k for k in group if k != "vars" and isinstance(group[k], h5py.Group)):
        found += _store_vars(group[key], f"{path}/{key}", where, layer)
    return found


def _dataset(group: h5py.Group, name: str, where: str, layer: str) -> np.ndarray:
    if name not in group:
        raise FileFormatError(f"{where}: layer {layer!r} lists weight {name!r}, but the file has no such "
                              f"dataset (it has {sorted(_all_datasets(group))})")
    value = np.asarray(group[name][()])
    if value.dtype.kind not in "fiu":
        raise FileFormatError(f"{where}: layer {layer!r} weight {name!r} holds {value.dtype} values; expected numbers "
                              "(save the model in float32)")
    return value


def _all_datasets(group: h5py.Group) -> list[str]:
    found: list[str] = []
    group.visititems(lambda key, obj: found.append(key) if isinstance(obj, h5py.Dataset) else None)
    return found

