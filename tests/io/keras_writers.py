"""Keras functional models written with h5py/zipfile in the layouts Keras 1, 2 and 3 write, for the tests.

A :class:`Graph` records layers as a Keras user calls them (``x = g.add("Conv1D", "c1", x, kernel=..., ...)``);
:func:`write` saves it as one of the files users keep:

- ``"k1"``: Keras 1.2 ``model.to_json()`` + ``model.save_weights()`` (``model_weights``-less root, weights
  ``<layer>_<name>``), config class ``Model``, inbound entries ``[layer, node, tensor]``.
- ``"k2"``: Keras 2 ``model.save()`` (``model_config`` attribute, ``model_weights/<layer>/<layer>/<name>:0``),
  config class ``Functional``, inbound entries ``[layer, node, tensor, {}]``.
- ``"k2json"``: Keras 2 ``to_json()`` + ``save_weights()`` (weights at the root).
- ``"k3h5"``: Keras 3 ``model.save("m.h5")`` (legacy layout, Keras 3 config: ``module`` keys, ``batch_shape``,
  ``{"args": [...], "kwargs": {}}`` nodes).
- ``"keras"``: Keras 3 ``.keras`` zip (``config.json``, ``metadata.json``, ``model.weights.h5`` holding
  ``layers/<class in snake_case>[_k]/vars/<i>``; a weight named ``"sub/layer/name"`` goes to
  ``layers/<...>/sub/layer/vars/<i>``, as a wrapped layer's variables do).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np


class Graph:
    """Layers in call order; a tensor is ``(layer name, call index)``."""

    def __init__(self) -> None:
        self.layers: dict[str, dict] = {}  # name -> {"cls", "cfg", "calls": [[tensor, ...]], "weights": [(n, a)]}
        self.inputs: list[tuple[str, int]] = []
        self.outputs: list[tuple[str, int]] = []

    def input(self, name: str, shape: tuple[int, ...]) -> tuple[str, int]:
        self.layers[name] = {"cls": "InputLayer", "cfg": {"batch_input_shape": [None, *shape], "dtype": "float32",
                                                          "sparse": False}, "calls": [], "weights": []}
        self.inputs.append((name, 0))
        return name, 0

    def add(self, cls: str, name: str, inputs, weights: list[tuple[str, np.ndarray]] = (), **cfg) -> tuple[str, int]:
        """Call layer ``name`` (created at its first call; a later call with no cls change shares it)."""
        inputs = [inputs] if isinstance(inputs, tuple) else list(inputs)
        if name not in self.layers:
            self.layers[name] = {"cls": cls, "cfg": cfg, "calls": [], "weights": list(weights)}
        self.layers[name]["calls"].append(inputs)
        return name, len(self.layers[name]["calls"]) - 1

    def output(self, *tensors: tuple[str, int]) -> Graph:
        self.outputs = list(tensors)
        return self


def _snake(name: str) -> str:
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _config(g: Graph, dialect: str) -> dict:
    layers = []
    for name, spec in g.layers.items():
        cfg = {"name": name, "trainable": True, **spec["cfg"]}
        if dialect.startswith("k3") or dialect == "keras":
            if spec["cls"] == "InputLayer":
                cfg = {"batch_shape": cfg.pop("batch_input_shape"), "dtype": "float32", "sparse": False, "name": name}
            nodes = [{"args": [_k3_args(call, g)], "kwargs": {}} for call in spec["calls"]]
            layers.append({"module": "keras.layers", "class_name": spec["cls"], "config": cfg,
                           "registered_name": None, "name": name, "inbound_nodes": nodes})
        elif dialect == "k1":
            nodes = [[[t[0], t[1], 0] for t in call] for call in spec["calls"]]
            layers.append({"class_name": spec["cls"], "config": cfg, "name": name, "inbound_nodes": nodes})
        else:
            nodes = [[[t[0], t[1], 0, {}] for t in call] for call in spec["calls"]]
            layers.append({"class_name": spec["cls"], "config": cfg, "name": name, "inbound_nodes": nodes})
    body = {"name": "model", "layers": layers, "input_layers": [[n, i, 0] for n, i in g.inputs],
            "output_layers": [[n, i, 0] for n, i in g.outputs]}
    if dialect.startswith("k3") or dialect == "keras":
        for key in ("input_layers", "output_layers"):  # Keras 3 writes a lone tensor as one flat triple
            body[key] = body[key][0] if len(body[key]) == 1 else body[key]
        return {"module": "keras", "class_name": "Functional", "config": body, "registered_name": "Functional"}
    return {"class_name": "Model" if dialect == "k1" else "Functional", "config": body}


def _k3_args(call: list[tuple[str, int]], g: Graph):
    tensors = [{"class_name": "__keras_tensor__", "config": {"shape": None, "dtype": "float32",
                                                              "keras_history": [t[0], t[1], 0]}} for t in call]
    return tensors[0] if len(tensors) == 1 else tensors


def _legacy_weights(group: h5py.Group, g: Graph, dialect: str, version: str, backend: str) -> None:
    names = list(g.layers)
    group.attrs["layer_names"] = np.array([n.encode() for n in names])
    group.attrs["backend"] = backend.encode()
    group.attrs["keras_version"] = version.encode()
    for name in names:
        lg = group.create_group(name)
        arrays = g.layers[name]["weights"]
        if dialect == "k1":
            wn = [f"{name}_{w}" for w, _ in arrays]
        elif dialect == "k3h5":
            wn = [f"{name}/{w}" for w, _ in arrays]
        else:
            wn = [f"{name}/{w}:0" for w, _ in arrays]
        lg.attrs["weight_names"] = np.array([w.encode() for w in wn]) if wn else np.array([], dtype=float)
        for w, (_, a) in zip(wn, arrays):
            lg.create_dataset(w, data=np.asarray(a, dtype=np.float32))


def write(g: Graph, path: Path, dialect: str = "k2", backend: str = "tensorflow") -> Path:
    """Write ``g`` at ``path`` (a folder for "k1"/"k2json": ``model.json`` + ``weights.h5``); returns what to load."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = _config(g, dialect)
    if dialect in ("k1", "k2json"):
        path.mkdir(parents=True, exist_ok=True)
        version = "1.2.2" if dialect == "k1" else "2.4.0"
        (path / "model.json").write_text(json.dumps({**config, "keras_version": version}))
        with h5py.File(path / "weights.h5", "w") as f:
            _legacy_weights(f, g, dialect, version, backend)
        return path
    if dialect in ("k2", "k3h5"):
        version = "2.4.0" if dialect == "k2" else "3.3.3"
        with h5py.File(path, "w") as f:
            f.attrs["keras_version"] = version.encode()
            f.attrs["backend"] = backend.encode()
            f.attrs["model_config"] = json.dumps(config).encode()
            _legacy_weights(f.create_group("model_weights"), g, dialect, version, backend)
        return path
    assert dialect == "keras"
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        used: dict[str, int] = {}
        for spec in g.layers.values():
            key = _snake(spec["cls"])
            used[key] = used[key] + 1 if key in used else 0
            base = f.create_group(f"layers/{key}" + (f"_{used[key]}" if used[key] else ""))
            base.create_group("vars")
            counts: dict[str, int] = {}
            for w, a in spec["weights"]:
                # "forward_layer/cell/kernel": a variable of a sublayer, stored under its own vars group
                sub = w.rsplit("/", 1)[0] + "/vars" if "/" in w else "vars"
                counts[sub] = counts.get(sub, -1) + 1
                base.require_group(sub).create_dataset(str(counts[sub]), data=np.asarray(a, dtype=np.float32))
        f.create_group("vars")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.3.3", "date_saved": "2024-05-01@00:00:00"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buffer.getvalue())
    return path
