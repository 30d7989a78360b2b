"""Load trained Keras ``Sequential`` models (Keras 0.x, 1.x and 2.x files) as PyTorch modules.

The DeepResolve authors published their models as Keras 1.2 files for the Theano backend; many other published
genomics models are Keras 2 ``model.h5`` files or Keras 0.x json + weights. This module rebuilds such a model as a
:class:`torch.nn.Sequential` that computes exactly what Keras computed, so that the rest of the package (which
works on PyTorch modules) can analyse it. Only a plain stack of layers is supported; each layer class understood
has one builder function (:data:`SUPPORTED_LAYERS` lists them), shared by the three file dialects:

- Keras 1.x: architecture json (``{"class_name": "Sequential", "config": [...]}``) + an h5 of weights
  (``model_weights/<layer>/<layer>_W``), parameters ``nb_filter``, ``filter_length``, ``border_mode``, ...
- Keras 2.x: one ``model.save()`` h5 holding the config as its ``model_config`` attribute and the weights under
  ``model_weights/<layer>/<layer>/kernel:0``; layers ``Conv1D``, ``Conv2D``, ``Dense(units)``, ``Dropout(rate)``,
  ``BatchNormalization``, ..., kernels ``(*window, in, out)``, ``channels_last``; the file records the backend.
- Keras 0.x: json ``{"name": "Sequential", "layers": [{"name": <class>, ...}]}`` + an h5 of groups
  ``layer_{i}/param_{j}``; ``Convolution1D`` kernels stored ``(filters, channels, length, 1)``.

Facts the importer respects (see the Keras sources and ``shared/data/tf422/README.md``):

- Theano computes a true convolution, so kernels trained with the Theano backend are stored flipped along every
  spatial axis relative to the cross-correlation that PyTorch (and TensorFlow) compute. The flip is applied here,
  so the returned ``conv`` modules hold kernels that read in the direction the convolution scans.
- ``dim_ordering="th"`` stores 2D kernels as ``(filters, channels, rows, cols)`` and feature maps channels-first;
  ``"tf"`` stores kernels as ``(rows, cols, channels, filters)`` and feature maps channels-last. ``Flatten``
  follows the Keras layout, so a ``"tf"`` model flattens in (rows, cols, channels) order.
- ``Convolution1D`` always works channels-last: input ``(N, steps, channels)``, kernel
  ``(length, 1, channels, filters)``.
- ``Dense`` weights are stored ``(in, out)``.
- Keras 2 still convolved with Theano: a Keras 2 file whose ``backend`` attribute is "theano" is flipped too.

The returned model takes input in the layout Keras took (``model.keras_input_shape`` records it, without the batch
axis) and is in eval mode. Its modules have readable names (``conv1``, ``conv1_relu``, ``pool1``, ``flatten``,
``dense1``, ``dropout1``, ..., ``sigmoid``) so that a layer can be named in :func:`deepresolve.resolve`.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArgumentError, FileFormatError, MissingFileError, ModelError

SUPPORTED_ACTIVATIONS = ("relu", "sigmoid", "softmax", "tanh", "linear")
_BACKENDS = ("theano", "tensorflow")
_REQUIRED = object()  # marks a config field without a default


class Pad(nn.Module):
    """Constant padding of the trailing spatial axes; negative amounts crop (used to mimic Keras ``same``).

    Parameters
    ----------
    pads : tuple of int
        ``torch.nn.functional.pad`` order: (last-axis left, last-axis right, second-to-last left, ...).
    value : float
        Fill value (0 for convolutions, -inf for max pooling).
    """

    def __init__(self, pads: tuple[int, ...], value: float = 0.0) -> None:
        super().__init__()
        self.pads = tuple(int(p) for p in pads)
        self.value = float(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, value=self.value)

    def extra_repr(self) -> str:
        return f"pads={self.pads}, value={self.value}"


class Permute(nn.Module):
    """``x.permute(*dims)``: converts between Keras channels-last and PyTorch channels-first layouts."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class KerasFlatten(nn.Module):
    """Flatten that matches Keras's element order.

    PyTorch feature maps are channels-first ``(N, C, *spatial)``; a model built with channels-last Keras layout
    (``dim_ordering="tf"`` or any ``Convolution1D``) flattened ``(N, *spatial, C)``, so the channel axis is moved
    last before flattening.
    """

    def __init__(self, channels_last: bool) -> None:
        super().__init__()
        self.channels_last = bool(channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() > 2:
            x = x.movedim(1, -1)
        return x.reshape(x.shape[0], -1)

    def extra_repr(self) -> str:
        return f"channels_last={self.channels_last}"


class FromOneHot(nn.Module):
    """Maps one-hot sequences ``(N, 4, L)`` to a Keras model's input layout.

    ``(N, 4, 1, L)`` for "th2d", ``(N, 1, L, 4)`` for "tf2d", ``(N, L, 4)`` for "1d". The one home of this
    mapping: :func:`load_keras` puts it first in the model (``onehot=True``), :func:`sequence_input` applies it
    outside the model.
    """

    def __init__(self, layout: str) -> None:
        super().__init__()
        if layout not in ("th2d", "tf2d", "1d"):
            raise ModelError(f"model: expected a Keras input layout that takes sequences ('th2d', 'tf2d' or '1d'), "
                             f"got {layout!r}")
        self.layout = layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "th2d":
            return x.unsqueeze(2)
        if self.layout == "tf2d":
            return x.transpose(1, 2).unsqueeze(1)
        return x.transpose(1, 2)

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}"


class Softmax2D(nn.Module):
    """Keras softmax over the last axis of a ``(N, D)`` tensor (the only use in a plain classifier)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ModelError(f"softmax activation: expected an (N, D) tensor (the only shape supported), got shape "
                             f"{tuple(x.shape)}")
        return torch.softmax(x, dim=-1)


def _activation(name: str, layer: str) -> nn.Module | None:
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softmax": Softmax2D}
    if name == "linear":
        return None
    if name not in acts:
        raise ModelError(
            f"layer {layer!r} uses activation {name!r}, which is not supported; supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
        )
    return acts[name]()


def _same_pads(length: int, kernel: int, stride: int, backend: str) -> tuple[int, int]:
    """Left and right padding that reproduce Keras ``"same"`` padding along one axis.

    TensorFlow pads ``total = max((out - 1) * stride + kernel - length, 0)`` with the extra element on the right;
    Keras's Theano backend pads ``kernel // 2`` on the left (Theano's ``half`` mode) and keeps the first
    ``ceil(length / stride)`` outputs. Both give ``ceil(length / stride)`` outputs.
    """
    out = math.ceil(length / stride)
    if backend == "tensorflow":
        total = max((out - 1) * stride + kernel - length, 0)
        left = total // 2
    else:
        left = kernel // 2
    # Right padding (negative: cropping) chosen so that a valid convolution yields exactly `out` positions.
    right = (out - 1) * stride + kernel - length - left
    return left, right


def _pad_module(pairs: list[tuple[int, int]], value: float) -> Pad | None:
    """A :class:`Pad` for per-axis (left, right) amounts given in spatial order, or None when nothing to pad."""
    if all(l == 0 and r == 0 for l, r in pairs):
        return None
    pads: list[int] = []
    for left, right in reversed(pairs):  # F.pad lists the last axis first
        pads += [left, right]
    return Pad(tuple(pads), value)


# ---------------------------------------------------------------------------------------------------------------
# Reading the files: paths, architecture (three dialects), weights


def _resolve_paths(path: str | Path) -> tuple[Path | None, Path]:
    """(json path or None, h5 path) for a model folder, a json file or an h5 file."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"Keras model path {str(path)!r} does not exist")
    if path.is_dir():
        jsons = sorted(path.glob("*.json"))
        h5s = sorted(p for p in path.iterdir() if p.suffix in (".h5", ".hdf5"))
        if len(h5s) != 1:
            raise MissingFileError(
                f"Keras model folder {str(path)!r} must hold exactly one .h5 weights file; found {[p.name for p in h5s]}"
            )
        if len(jsons) > 1:
            raise MissingFileError(
                f"Keras model folder {str(path)!r} holds several .json files {[p.name for p in jsons]}; pass the json path"
            )
        return (jsons[0] if jsons else None), h5s[0]
    if path.suffix == ".json":
        beside = [path.with_suffix(".h5"), path.with_suffix(".hdf5")]
        found = [p for p in beside if p.exists()]
        if not found:
            h5s = sorted(p for p in path.parent.iterdir() if p.suffix in (".h5", ".hdf5"))
            if len(h5s) != 1:
                raise MissingFileError(
                    f"no weights for {str(path)!r}: expected {path.with_suffix('.h5').name} or exactly one .h5 file "
                    f"beside it; found {[p.name for p in h5s]}"
                )
            found = h5s
        return path, found[0]
    if path.suffix in (".h5", ".hdf5"):
        if path.with_suffix(".json").exists():
            return path.with_suffix(".json"), path
        # A Keras 2 model.save() file holds its own architecture; only a bare weights file borrows a lone json.
        if "model_config" in _h5_attrs(path):
            return None, path
        jsons = sorted(path.parent.glob("*.json"))
        return (jsons[0] if len(jsons) == 1 else None), path
    raise ArgumentError(f"Keras model path {str(path)!r} must be a folder, a .json file or an .h5 file")


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


@dataclass
class _Layer:
    """One Keras layer as the file describes it: the input of a builder."""

    cls: str  # class name as written ("Convolution1D", "Conv1D", ...)
    name: str  # layer name (Keras 0.x: "layer_{i}", the group of its weights)
    cfg: dict[str, Any]
    version: int  # major Keras version of the file: 0, 1 or 2
    source: str  # the file the architecture came from, for messages
    weights: list[tuple[str, np.ndarray]] | None = None  # (stored name, array); None: the file has no group for it
    weights_file: str = ""

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

    def ints(self, key: str, n: int, default: Any = _REQUIRED) -> tuple[int, ...]:
        """An int or a list of ``n`` ints (Keras 2 writes ``kernel_size`` as ``[5]``, Keras 1 ``filter_length`` as 5)."""
        value = self.field(key, default, expected=f"an int or a list of {n} ints")
        values = list(value) if isinstance(value, (list, tuple)) else [value] * n
        if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise FileFormatError(f"{self.where()}: field {key!r} must be a positive int or {n} of them; found {value!r}")
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


def _read_layers(json_path: Path | None, h5_path: Path) -> tuple[int, list[_Layer], str]:
    """(Keras major version, the layers without weights, the architecture's source) of a Sequential model."""
    attrs = _h5_attrs(h5_path)  # Keras 1.2/2 record keras_version here; a corrupt file is reported first
    if json_path is not None:
        source = str(json_path)
        try:
            text = json_path.read_text()
        except UnicodeDecodeError as err:
            raise FileFormatError(f"{source!r} is not a text (json) file: {err}") from None
    else:
        if "model_config" not in attrs:
            raise MissingFileError(
                f"no architecture for {str(h5_path)!r}: no .json beside it and no 'model_config' attribute inside "
                "(a weights-only file needs the model's .json)"
            )
        text, source = _text(attrs["model_config"]), f"{h5_path}:model_config"
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise FileFormatError(f"{source!r} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise FileFormatError(f"{source!r}: expected a JSON object describing a Keras model; found {type(config).__name__}")
    if config.get("name") == "Sequential" and isinstance(config.get("layers"), list):
        # Keras 0.x: {"name": "Sequential", "layers": [{"name": <class>, <parameters>}, ...]}
        specs = config["layers"]
        layers = [_Layer(str(s.get("name")), f"layer_{i}", {k: v for k, v in s.items() if k != "name"}, 0, source)
                  for i, s in enumerate(specs) if isinstance(s, dict)]
    else:
        if config.get("class_name") != "Sequential":
            raise ModelError(f"{source!r} holds a Keras {config.get('class_name')!r} model; only Sequential models "
                             "load (a plain stack of layers)")
        body = config.get("config")
        specs = body.get("layers") if isinstance(body, dict) else body  # Keras >= 2.2.3 wraps the list
        if not isinstance(specs, list):
            raise FileFormatError(f"{source!r}: a Sequential config must hold a list of layers; found {body!r:.80}")
        version = _keras_version(config, attrs, specs)
        layers = [_Layer(str(s.get("class_name")), str(s.get("config", {}).get("name", s.get("class_name"))),
                         dict(s.get("config", {})), version, source) for s in specs if isinstance(s, dict)]
    if len(layers) != len(specs):
        raise FileFormatError(f"{source!r}: every layer must be a JSON object; found {specs!r:.80}")
    if not layers:
        raise FileFormatError(f"Keras config {source!r} has no layers")
    return layers[0].version, layers, source


def _keras_version(config: dict, attrs: dict[str, Any], specs: list) -> int:
    """1 or 2: the file's ``keras_version`` when recorded, else what the layer configs look like."""
    recorded = config.get("keras_version") or attrs.get("keras_version")
    if recorded is not None:
        major = _text(recorded).split(".")[0]
        if major not in ("1", "2"):
            raise ModelError(f"Keras {_text(recorded)} files are not supported; Keras 0.x, 1.x and 2.x Sequential "
                             "models load (re-save a Keras 3 model as .h5 with keras 2 or export it to ONNX)")
        return int(major)
    keras2 = {"Conv1D", "Conv2D"}
    fields2 = {"units", "filters", "rate", "use_bias"}
    looks2 = any(s.get("class_name") in keras2 or fields2 & set(s.get("config", {})) for s in specs if isinstance(s, dict))
    return 2 if looks2 else 1


def _read_weights(h5_path: Path, version: int) -> tuple[dict[str, list[tuple[str, np.ndarray]]], str]:
    """Weights per layer name, in the order Keras listed them (kernel first, then bias), and the file's backend."""
    try:
        with h5py.File(h5_path, "r") as f:
            if version == 0:
                # Keras 0.x save_weights: group layer_{i} per layer, datasets param_{j}, counted by nb_params.
                weights = {}
                for name, group in f.items():
                    n = int(group.attrs.get("nb_params", len(group)))
                    weights[name] = [(f"{name}/param_{j}", _dataset(group, f"param_{j}", h5_path, name)) for j in range(n)]
                return weights, ""
            root = f["model_weights"] if "model_weights" in f else f  # model.save() vs model.save_weights()
            backend = _text(root.attrs.get("backend", f.attrs.get("backend", "")))
            names = _attr_list(root, "layer_names")
            weights = {}
            for name in names if names is not None else list(root.keys()):
                if name not in root:
                    continue  # a layer listed without a group is reported when a builder needs its weights
                group = root[name]
                wnames = _attr_list(group, "weight_names")
                if not wnames:
                    wnames = [k for k in (f"{name}_W", f"{name}_b") if k in group]
                weights[name] = [(w, _dataset(group, w, h5_path, name)) for w in wnames]
            return weights, backend
    except OSError as err:  # truncated or corrupt file: h5py fails when it opens it or reads a dataset
        raise _unreadable(h5_path, err) from None


def _dataset(group: h5py.Group, name: str, h5_path: Path, layer: str) -> np.ndarray:
    if name not in group:
        raise FileFormatError(f"{h5_path}: layer {layer!r} lists weight {name!r}, but the file has no such "
                              f"dataset (it has {sorted(_all_datasets(group))})")
    return np.asarray(group[name][()])


def _all_datasets(group: h5py.Group) -> list[str]:
    found: list[str] = []
    group.visititems(lambda key, obj: found.append(key) if isinstance(obj, h5py.Dataset) else None)
    return found


# ---------------------------------------------------------------------------------------------------------------
# Building the PyTorch model: one builder per Keras layer class


class _Stack:
    """The model being built: its modules, the current (channels-first, no batch) shape and the input layout."""

    def __init__(self, layout: str, cur: tuple[int, ...], backend: str | None, file_backend: str, any_tf: bool) -> None:
        self.modules: OrderedDict[str, nn.Module] = OrderedDict()
        self.keras_names: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.layout = layout
        self.channels_last = layout in ("1d", "tf2d")
        self.cur = cur
        self.backend = backend  # the caller's choice, None: inferred per layer
        self.file_backend = file_backend  # Keras 2 records it; "" for Keras 0.x/1.x
        self.any_tf = any_tf

    def add(self, name: str, module: nn.Module, keras_name: str) -> None:
        self.modules[name] = module
        self.keras_names[name] = keras_name

    def next_name(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind}{self.counts[kind]}"

    def conv_backend(self, layer: _Layer, ordering: str | None) -> str:
        """The backend whose convolution the kernels were trained for: it decides the Theano flip."""
        if self.backend is not None:
            return self.backend
        if layer.version == 2:
            # Keras 2 records its backend; Theano still convolved (flipped) there, TensorFlow and CNTK correlate.
            return "theano" if self.file_backend == "theano" else "tensorflow"
        if ordering is not None:
            return "tensorflow" if ordering == "tf" else "theano"
        return "tensorflow" if self.any_tf else "theano"


def _set(param: torch.Tensor, array: np.ndarray) -> None:
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).reshape(param.shape))


def _conv_settings(layer: _Layer, dims: int) -> tuple[tuple[int, ...], tuple[int, ...], str, bool, str | None]:
    """(window, strides, padding, bias, dim_ordering) of a convolution in any dialect."""
    if layer.version == 2:
        fmt = layer.field("data_format", "channels_last")
        if fmt != "channels_last":
            raise ModelError(f"{layer.where()}: data_format {fmt!r} is not supported; Keras 2 models load with "
                             "channels_last (the Keras 2 default)")
        if any(d != 1 for d in layer.ints("dilation_rate", dims, 1)):
            raise ModelError(f"{layer.where()}: dilation_rate {layer.cfg['dilation_rate']!r} is not supported; use 1")
        window = layer.ints("kernel_size", dims)
        return (window, layer.ints("strides", dims, 1), layer.field("padding", "valid"),
                bool(layer.field("use_bias", True)), None)
    if dims == 1:
        return (layer.ints("filter_length", 1), layer.ints("subsample_length", 1, 1),
                layer.field("border_mode", "valid"), bool(layer.field("bias", True)), None)
    window = layer.ints("nb_row", 1) + layer.ints("nb_col", 1)
    return (window, layer.ints("subsample", 2, 1), layer.field("border_mode", "valid"),
            bool(layer.field("bias", True)), layer.field("dim_ordering", "th"))


def _torch_kernel(layer: _Layer, W: np.ndarray, dims: int, ordering: str | None, channels: int,
                  window: tuple[int, ...]) -> np.ndarray:
    """The kernel in PyTorch's ``(filters, channels, *window)`` layout, from the layout the dialect stored."""
    if layer.version == 2:  # (*window, channels, filters), whatever the data_format
        stored, to_torch = (*window, channels, "filters"), (dims + 1, dims, *range(dims))
    elif dims == 1 and layer.version == 0:  # Keras 0.x convolved (N, channels, steps, 1)
        stored, to_torch = ("filters", channels, window[0], 1), (0, 1, 2, 3)
    elif dims == 1:  # Keras 1 Convolution1D: a 'tf' Convolution2D over (steps, 1, channels)
        stored, to_torch = (window[0], 1, channels, "filters"), (3, 2, 0, 1)
    elif ordering == "tf":
        stored, to_torch = (*window, channels, "filters"), (3, 2, 0, 1)
    else:
        stored, to_torch = ("filters", channels, *window), (0, 1, 2, 3)
    if W.ndim != len(stored) or any(s != w for s, w in zip(stored, W.shape) if s != "filters"):
        raise FileFormatError(f"{layer.where()}: expected a kernel of shape {tuple(stored)} (window {window}, "
                              f"{channels} input channels); found {W.shape}")
    kernel = W.transpose(to_torch)
    return kernel[..., 0] if dims == 1 and kernel.ndim == 4 else kernel  # drop the unit axis of a 0.x/1.x kernel


def _build_conv(stack: _Stack, layer: _Layer) -> str:
    dims = 1 if layer.cls in ("Convolution1D", "Conv1D") else 2
    if len(stack.cur) != dims + 1:
        shape = "(channels, steps)" if dims == 1 else "(channels, rows, cols)"
        raise ModelError(f"{layer.where()}: needs a {shape} input; the layers before it give {stack.cur}")
    window, strides, padding, bias, ordering = _conv_settings(layer, dims)
    if padding not in ("same", "valid"):
        raise ModelError(f"{layer.where()}: padding {padding!r} is not supported; use 'same' or 'valid'")
    arrays = layer.arrays(["kernel", "bias"] if bias else ["kernel"])
    kernel = _torch_kernel(layer, arrays[0], dims, ordering, stack.cur[0], window)
    layer_backend = stack.conv_backend(layer, ordering)
    if layer_backend == "theano":
        # Theano convolves (flips the kernel); PyTorch cross-correlates: flip every spatial axis.
        kernel = kernel[(slice(None), slice(None)) + (slice(None, None, -1),) * dims]
    name = stack.next_name("conv")
    if padding == "same":
        pad = _pad_module([_same_pads(n, k, s, layer_backend) for n, k, s in zip(stack.cur[1:], window, strides)], 0.0)
        if pad is not None:
            stack.add(f"{name}_pad", pad, layer.name)
    conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(stack.cur[0], kernel.shape[0], window, stride=strides, bias=bias)
    _set(conv.weight, kernel)
    if bias:
        _check_size(layer, "bias", arrays[1], kernel.shape[0])
        _set(conv.bias, arrays[1])
    stack.add(name, conv, layer.name)
    return name


def _check_size(layer: _Layer, what: str, array: np.ndarray, size: int) -> None:
    if array.size != size:
        raise FileFormatError(f"{layer.where()}: expected a {what} of {size} values; found shape {array.shape}")


def _build_pool(stack: _Stack, layer: _Layer) -> None:
    dims = 1 if layer.cls == "MaxPooling1D" else 2
    if layer.version == 2:
        pool = layer.ints("pool_size", dims, 2)
        strides = layer.ints("strides", dims, pool)
        padding = layer.field("padding", "valid")
        fmt = layer.field("data_format", "channels_last")
        if fmt != "channels_last":
            raise ModelError(f"{layer.where()}: data_format {fmt!r} is not supported; use channels_last")
    else:
        if dims == 1:
            pool = layer.ints("pool_length", 1, 2)
            strides = layer.ints("stride", 1, pool)
        else:
            pool = layer.ints("pool_size", 2, 2)
            strides = layer.ints("strides", 2, pool)
            if layer.field("dim_ordering", "th") != ("tf" if stack.channels_last else "th") and stack.layout != "dense":
                raise ModelError(f"{layer.where()}: dim_ordering {layer.cfg.get('dim_ordering')!r} differs from the "
                                 "model's input layout")
        padding = layer.field("border_mode", "valid")
    if len(stack.cur) != dims + 1:
        raise ModelError(f"{layer.where()}: got an input of shape {stack.cur}")
    name = stack.next_name("pool")
    if padding == "same":
        if stack.conv_backend(layer, None) != "tensorflow":
            raise ModelError(f"{layer.where()}: padding 'same' is supported for the TensorFlow backend only")
        pad = _pad_module([_same_pads(n, p, s, "tensorflow") for n, p, s in zip(stack.cur[1:], pool, strides)], -math.inf)
        if pad is not None:
            stack.add(f"{name}_pad", pad, layer.name)
    elif padding != "valid":
        raise ModelError(f"{layer.where()}: padding {padding!r} is not supported; use 'same' or 'valid'")
    stack.add(name, (nn.MaxPool1d if dims == 1 else nn.MaxPool2d)(pool, stride=strides), layer.name)


def _build_flatten(stack: _Stack, layer: _Layer) -> None:
    stack.add("flatten" if "flatten" not in stack.modules else stack.next_name("flatten"),
              KerasFlatten(stack.channels_last), layer.name)


def _build_dense(stack: _Stack, layer: _Layer) -> str:
    if len(stack.cur) != 1:
        raise ModelError(f"{layer.where()}: needs a flat input; got shape {stack.cur} (add a Flatten)")
    units = layer.ints("units" if layer.version == 2 else "output_dim", 1)[0]
    bias = bool(layer.field("use_bias" if layer.version == 2 else "bias", True))
    arrays = layer.arrays(["kernel", "bias"] if bias else ["kernel"])
    W = arrays[0]
    if W.shape != (stack.cur[0], units):
        raise FileFormatError(f"{layer.where()}: expected weights of shape (in={stack.cur[0]}, out={units}); "
                              f"found {W.shape}")
    lin = nn.Linear(W.shape[0], W.shape[1], bias=bias)
    _set(lin.weight, W.T)  # Keras stores (in, out)
    if bias:
        _check_size(layer, "bias", arrays[1], units)
        _set(lin.bias, arrays[1])
    name = stack.next_name("dense")
    stack.add(name, lin, layer.name)
    return name


def _build_dropout(stack: _Stack, layer: _Layer) -> None:
    stack.add(stack.next_name("dropout"), nn.Dropout(float(layer.field("rate" if layer.version == 2 else "p", 0.0))),
              layer.name)


def _build_activation(stack: _Stack, layer: _Layer) -> None:
    act = layer.field("activation", "linear")
    module = _activation(act, layer.name)
    if module is not None:
        stack.add(act if act not in stack.modules else stack.next_name(act), module, layer.name)


def _build_batchnorm(stack: _Stack, layer: _Layer) -> None:
    """Keras 2 ``BatchNormalization`` at inference: ``(x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta``."""
    if layer.version != 2:
        raise ModelError(f"{layer.where()}: BatchNormalization loads from Keras 2 files only (Keras 1 stored other "
                         "statistics)")
    axis = layer.field("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    rank = len(stack.cur) + 1  # Keras rank, with the batch axis
    if axis not in (-1, rank - 1):
        raise ModelError(f"{layer.where()}: axis {axis!r} is not supported; normalize the channel axis (-1)")
    center, scale = bool(layer.field("center", True)), bool(layer.field("scale", True))
    names = ["gamma"] * scale + ["beta"] * center + ["moving_mean", "moving_variance"]
    arrays = dict(zip(names, layer.arrays(names)))
    channels = stack.cur[0]
    for what, array in arrays.items():
        _check_size(layer, what, array, channels)
    bn = (nn.BatchNorm2d if len(stack.cur) == 3 else nn.BatchNorm1d)(channels, eps=float(layer.field("epsilon", 1e-3)))
    _set(bn.weight, arrays.get("gamma", np.ones(channels)))
    _set(bn.bias, arrays.get("beta", np.zeros(channels)))
    _set(bn.running_mean, arrays["moving_mean"])
    _set(bn.running_var, arrays["moving_variance"])
    stack.add(stack.next_name("batchnorm"), bn, layer.name)


# Keras class name -> builder. A builder adds the layer's modules to the stack and returns the name of the module
# that the layer's own ``activation`` follows (convolutions and dense layers), or None.
_BUILDERS: dict[str, Callable[[_Stack, _Layer], str | None]] = {
    "Convolution1D": _build_conv, "Convolution2D": _build_conv, "MaxPooling1D": _build_pool,
    "MaxPooling2D": _build_pool, "Flatten": _build_flatten, "Dense": _build_dense, "Dropout": _build_dropout,
    "Activation": _build_activation, "Conv1D": _build_conv, "Conv2D": _build_conv,
    "BatchNormalization": _build_batchnorm,
}
SUPPORTED_LAYERS = tuple(_BUILDERS)
_SPATIAL = {"Convolution1D": 1, "Conv1D": 1, "MaxPooling1D": 1, "Convolution2D": 2, "Conv2D": 2, "MaxPooling2D": 2}


def _input_shape(layers: list[_Layer], path: str | Path) -> tuple[int, ...]:
    """The input shape without the batch axis, from the first layer (Keras 2: an optional leading InputLayer)."""
    first = layers[0].cfg
    shape = first.get("batch_input_shape")
    if shape is None and first.get("input_shape") is not None:  # Keras 0.x writes input_shape without the batch
        shape = [None, *first["input_shape"]]
    if shape is None and "input_dim" in first:
        shape = [None, first["input_dim"]] if first.get("input_length") is None else [None, first["input_length"], first["input_dim"]]
    if shape is None or any(s is None for s in shape[1:]):
        raise FileFormatError(f"{layers[0].where()}: the first layer of {str(path)!r} must declare a full "
                              f"batch_input_shape (or input_shape); found {shape}")
    return tuple(int(s) for s in shape[1:])


def _input_layout(layers: list[_Layer], input_shape: tuple[int, ...]) -> tuple[str, nn.Module | None, tuple[int, ...]]:
    """(layout, the module that makes the input channels-first or None, the channels-first shape)."""
    first = layers[0]
    dims = _SPATIAL.get(first.cls)
    if dims is None:
        return "dense", None, input_shape
    if len(input_shape) != dims + 1:
        raise FileFormatError(f"{first.where()}: a {dims}D layer needs an input of {dims + 1} axes; "
                              f"batch_input_shape gave {input_shape}")
    if dims == 1:
        return "1d", Permute((0, 2, 1)), (input_shape[1], input_shape[0])
    if first.version == 2 or first.cfg.get("dim_ordering", "th") == "tf":
        return "tf2d", Permute((0, 3, 1, 2)), (input_shape[2], input_shape[0], input_shape[1])
    return "th2d", None, input_shape


def load_keras(path: str | Path, backend: str | None = None, onehot: bool = False) -> nn.Sequential:
    """Rebuild a Keras ``Sequential`` model (0.x, 1.x or 2.x files) as a PyTorch module.

    Parameters
    ----------
    path : str or Path
        The model folder (one ``.json`` and one ``.h5``), the ``.json`` (weights ``.h5`` beside it), or the ``.h5``
        (architecture from a ``.json`` of the same name beside it, else from its ``model_config`` attribute, as in
        a Keras 2 ``model.save()`` file, else from the one ``.json`` in its folder).
    backend : {"theano", "tensorflow"} or None
        The Keras backend the weights were trained with; it decides whether kernels are flipped (Theano computes a
        true convolution). None: Keras 2 files say which (``backend`` attribute; TensorFlow when absent); for Keras
        0.x/1.x it is inferred from each convolution's ``dim_ordering`` ("th" → Theano, "tf" → TensorFlow), which
        is how models were usually paired, and a ``Convolution1D`` counts as Theano when the model has no "tf" layer.
    onehot : bool
        False: the model takes Keras's input layout. True: it takes one-hot sequences ``(N, 4, L)`` like the rest
        of the package, through a first module ``from_onehot`` (:class:`FromOneHot`); layer names are unchanged.

    Returns
    -------
    torch.nn.Sequential
        In eval mode. Input has the Keras layout ``(N, *model.keras_input_shape)``, e.g. ``(N, 4, 1, 101)`` for a
        "th" Convolution2D over a one-hot sequence. Output is what Keras output (after its final activation).
        Attributes: ``keras_input_shape`` (tuple), ``keras_layout`` ("th2d", "tf2d", "1d" or "dense"),
        ``onehot_input``, ``keras_backend``, ``keras_version`` (0, 1 or 2) and ``keras_layers`` (the Keras layer
        name of every module).

    Raises
    ------
    MissingFileError
        ``path`` or a file it needs does not exist.
    FileFormatError
        A file is truncated or corrupt, or lacks a field, a layer's weights or a weight array, or holds an array of
        the wrong shape; the message names the file, the layer and what was expected and found.
    ModelError
        The model uses a layer class, activation or setting that is not supported (the message lists what is).
    """
    if backend is not None and backend not in _BACKENDS:
        raise ArgumentError(f"backend must be one of {_BACKENDS} or None; got {backend!r}")
    json_path, h5_path = _resolve_paths(path)
    version, layers, source = _read_layers(json_path, h5_path)
    weights, file_backend = _read_weights(h5_path, version)
    input_shape = _input_shape(layers, path)
    if layers[0].cls == "InputLayer":  # tf.keras Sequential configs may start with one; it holds only the shape
        layers = layers[1:]
    for layer in layers:
        if layer.cls not in _BUILDERS:
            raise ModelError(f"{layer.where()}: layer {layer.name!r} is a Keras {layer.cls!r}, which is not "
                             f"supported; supported layers: {', '.join(SUPPORTED_LAYERS)}")
        layer.weights, layer.weights_file = weights.get(layer.name), str(h5_path)
    if not layers:
        raise FileFormatError(f"Keras config {source!r} has no layers after its InputLayer")
    layout, adapter, cur = _input_layout(layers, input_shape)
    orderings = {l.cfg.get("dim_ordering") for l in layers} - {None}
    stack = _Stack(layout, cur, backend, file_backend, any_tf="tf" in orderings)
    if adapter is not None:
        stack.add("to_channels_first", adapter, "")

    for layer in layers:
        start = len(stack.modules)
        owner = _BUILDERS[layer.cls](stack, layer)
        act = layer.cfg.get("activation")
        if owner is not None and act is not None:
            module = _activation(act, layer.name)
            if module is not None:
                last = act == "sigmoid" and layer is layers[-1]
                stack.add("sigmoid" if last else f"{owner}_{act}", module, layer.name)
        stack.cur = _shape_after(list(stack.modules.values())[start:], stack.cur)

    modules = stack.modules
    if onehot:
        modules = OrderedDict([("from_onehot", FromOneHot(layout)), *modules.items()])
    model = nn.Sequential(modules)
    model.eval()
    model.onehot_input = bool(onehot)
    model.keras_input_shape = input_shape
    model.keras_layout = layout
    model.keras_version = version
    model.keras_backend = backend or (("theano" if file_backend == "theano" else "tensorflow") if version == 2
                                      else ("tensorflow" if stack.any_tf else "theano"))
    model.keras_layers = {k: v for k, v in stack.keras_names.items() if v}
    return model


def _shape_after(mods: list[nn.Module], cur: tuple[int, ...]) -> tuple[int, ...]:
    """Shape (without batch) after the modules of one Keras layer, by a forward pass of a zero tensor.

    ``cur`` is the channels-first shape the layer's first module receives.
    """
    with torch.no_grad():
        x = torch.zeros((1, *cur))
        for m in mods:
            m.eval()
            x = m(x)
    if any(s == 0 for s in x.shape):
        raise ModelError(f"the layer stack produced an empty tensor of shape {tuple(x.shape)}; check pool/kernel sizes")
    return tuple(x.shape[1:])


def sequence_input(model: nn.Module, onehot: torch.Tensor) -> torch.Tensor:
    """Put one-hot sequences ``(N, 4, L)`` into the input layout of an imported Keras model.

    Models without a ``keras_layout`` attribute are assumed to take ``(N, 4, L)`` and get ``onehot`` unchanged.

    Returns
    -------
    torch.Tensor
        ``(N, 4, 1, L)`` for "th2d", ``(N, 1, L, 4)`` for "tf2d", ``(N, L, 4)`` for "1d".
    """
    if onehot.dim() != 3:
        raise ArgumentError(f"onehot: expected shape (N, alphabet, length), got {tuple(onehot.shape)}")
    layout = getattr(model, "keras_layout", None)
    if layout is None or getattr(model, "onehot_input", False):
        return onehot
    return FromOneHot(layout)(onehot)
