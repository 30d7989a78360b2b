"""Load trained Keras 1.x ``Sequential`` models (json + HDF5 weights) as PyTorch modules.

The DeepResolve authors published their models as Keras 1.2 files for the Theano backend. This module rebuilds
such a model as a :class:`torch.nn.Sequential` that computes exactly what Keras computed, so that the rest of the
package (which works on PyTorch modules) can analyse it. Only a plain stack of layers is supported; the layer
classes understood are listed in :data:`SUPPORTED_LAYERS`.

Facts the importer respects (see the Keras 1.2 sources and ``shared/data/tf422/README.md``):

- Theano computes a true convolution, so kernels trained with the Theano backend are stored flipped along every
  spatial axis relative to the cross-correlation that PyTorch (and TensorFlow) compute. The flip is applied here,
  so the returned ``conv`` modules hold kernels that read in the direction the convolution scans.
- ``dim_ordering="th"`` stores 2D kernels as ``(filters, channels, rows, cols)`` and feature maps channels-first;
  ``"tf"`` stores kernels as ``(rows, cols, channels, filters)`` and feature maps channels-last. ``Flatten``
  follows the Keras layout, so a ``"tf"`` model flattens in (rows, cols, channels) order.
- ``Convolution1D`` always works channels-last: input ``(N, steps, channels)``, kernel
  ``(length, 1, channels, filters)``.
- ``Dense`` weights are stored ``(in, out)``.

The returned model takes input in the layout Keras took (``model.keras_input_shape`` records it, without the batch
axis) and is in eval mode. Its modules have readable names (``conv1``, ``conv1_relu``, ``pool1``, ``flatten``,
``dense1``, ``dropout1``, ..., ``sigmoid``) so that a layer can be named in :func:`deepresolve.resolve`.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

SUPPORTED_LAYERS = (
    "Convolution1D", "Convolution2D", "MaxPooling1D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Activation",
)
SUPPORTED_ACTIVATIONS = ("relu", "sigmoid", "softmax", "tanh", "linear")
_BACKENDS = ("theano", "tensorflow")


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
            raise ValueError(f"model layout {layout!r} does not take sequences")
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
            raise ValueError(f"softmax activation is supported on (N, D) tensors only; got shape {tuple(x.shape)}")
        return torch.softmax(x, dim=-1)


def _activation(name: str, layer: str) -> nn.Module | None:
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softmax": Softmax2D}
    if name == "linear":
        return None
    if name not in acts:
        raise ValueError(
            f"layer {layer!r} uses activation {name!r}, which is not supported; supported: {', '.join(SUPPORTED_ACTIVATIONS)}"
        )
    return acts[name]()


def _same_pads(length: int, kernel: int, stride: int, backend: str) -> tuple[int, int]:
    """Left and right padding that reproduce Keras 1 ``border_mode="same"`` along one axis.

    TensorFlow pads ``total = max((out - 1) * stride + kernel - length, 0)`` with the extra element on the right;
    Keras 1's Theano backend pads ``kernel // 2`` on the left (Theano's ``half`` mode) and keeps the first
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


def _resolve_paths(path: str | Path) -> tuple[Path | None, Path]:
    """(json path or None, h5 path) for a model folder, a json file or an h5 file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Keras model path {str(path)!r} does not exist")
    if path.is_dir():
        jsons = sorted(path.glob("*.json"))
        h5s = sorted(p for p in path.iterdir() if p.suffix in (".h5", ".hdf5"))
        if len(h5s) != 1:
            raise FileNotFoundError(
                f"Keras model folder {str(path)!r} must hold exactly one .h5 weights file; found {[p.name for p in h5s]}"
            )
        if len(jsons) > 1:
            raise FileNotFoundError(
                f"Keras model folder {str(path)!r} holds several .json files {[p.name for p in jsons]}; pass the json path"
            )
        return (jsons[0] if jsons else None), h5s[0]
    if path.suffix == ".json":
        beside = [path.with_suffix(".h5"), path.with_suffix(".hdf5")]
        found = [p for p in beside if p.exists()]
        if not found:
            h5s = sorted(p for p in path.parent.iterdir() if p.suffix in (".h5", ".hdf5"))
            if len(h5s) != 1:
                raise FileNotFoundError(
                    f"no weights for {str(path)!r}: expected {path.with_suffix('.h5').name} or exactly one .h5 file "
                    f"beside it; found {[p.name for p in h5s]}"
                )
            found = h5s
        return path, found[0]
    if path.suffix in (".h5", ".hdf5"):
        jsons = [path.with_suffix(".json")] if path.with_suffix(".json").exists() else sorted(path.parent.glob("*.json"))
        return (jsons[0] if len(jsons) == 1 else None), path
    raise ValueError(f"Keras model path {str(path)!r} must be a folder, a .json file or an .h5 file")


def _read_config(json_path: Path | None, h5_path: Path) -> dict[str, Any]:
    if json_path is not None:
        text = json_path.read_text()
        source = str(json_path)
    else:
        with h5py.File(h5_path, "r") as f:
            if "model_config" not in f.attrs:
                raise FileNotFoundError(
                    f"no architecture for {str(h5_path)!r}: no .json beside it and no 'model_config' attribute inside"
                )
            text = f.attrs["model_config"]
            text = text.decode() if isinstance(text, bytes) else str(text)
            source = f"{h5_path}:model_config"
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source!r} is not valid JSON: {err}") from None
    version = str(config.get("keras_version", "1"))
    if config.get("class_name") != "Sequential":
        raise ValueError(f"{source!r} holds a Keras {config.get('class_name')!r} model; only Sequential is supported")
    if version.startswith("2") or not isinstance(config.get("config"), list):
        raise ValueError(f"{source!r} is a Keras {version} config; only Keras 1.x Sequential configs are supported")
    return config


def _read_weights(h5_path: Path) -> dict[str, list[np.ndarray]]:
    """Weights per layer name, in the order Keras listed them (W first, then b)."""
    weights: dict[str, list[np.ndarray]] = {}
    with h5py.File(h5_path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f  # model.save() vs model.save_weights()
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs.get("layer_names", list(root.keys()))]
        for name in names:
            if name not in root:
                continue
            group = root[name]
            wnames = group.attrs.get("weight_names", None)
            if wnames is not None and len(wnames):
                wnames = [n.decode() if isinstance(n, bytes) else str(n) for n in wnames]
            else:
                wnames = [k for k in (f"{name}_W", f"{name}_b") if k in group]
            weights[name] = [np.asarray(group[w][()]) for w in wnames]
    return weights


def _layer_weights(weights: dict[str, list[np.ndarray]], name: str, cls: str, bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    arrays = weights.get(name)
    if not arrays:
        raise KeyError(f"weights file has no weights for {cls} layer {name!r}; it has {sorted(weights)}")
    need = 2 if bias else 1
    if len(arrays) < need:
        raise ValueError(f"{cls} layer {name!r} needs {need} weight arrays (W{', b' if bias else ''}); found {len(arrays)}")
    return arrays[0], (arrays[1] if bias else None)


def load_keras(path: str | Path, backend: str | None = None, onehot: bool = False) -> nn.Sequential:
    """Rebuild a Keras 1.x ``Sequential`` model as a PyTorch module.

    Parameters
    ----------
    path : str or Path
        The model folder (one ``.json`` and one ``.h5``), the ``.json`` (weights ``.h5`` beside it), or the ``.h5``
        (architecture from a ``.json`` beside it or from its ``model_config`` attribute).
    backend : {"theano", "tensorflow"} or None
        The Keras backend the weights were trained with; it decides whether kernels are flipped (Theano computes a
        true convolution). Keras 1 files do not record it; None infers it from each convolution's
        ``dim_ordering`` ("th" → Theano, "tf" → TensorFlow), which is how models were usually paired. Keras 1
        ``Convolution1D`` has no ``dim_ordering``; None treats it as Theano when the model has no "tf" layer.
    onehot : bool
        False: the model takes Keras's input layout. True: it takes one-hot sequences ``(N, 4, L)`` like the rest
        of the package, through a first module ``from_onehot`` (:class:`FromOneHot`); layer names are unchanged.

    Returns
    -------
    torch.nn.Sequential
        In eval mode. Input has the Keras layout ``(N, *model.keras_input_shape)``, e.g. ``(N, 4, 1, 101)`` for a
        "th" Convolution2D over a one-hot sequence. Output is what Keras output (after its final activation).
        Attributes: ``keras_input_shape`` (tuple), ``keras_layout`` ("th2d", "tf2d", "1d" or "dense"),
        ``onehot_input``, ``keras_backend`` and ``keras_layers`` (the Keras layer name of every module).
    """
    if backend is not None and backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS} or None; got {backend!r}")
    json_path, h5_path = _resolve_paths(path)
    config = _read_config(json_path, h5_path)
    weights = _read_weights(h5_path)
    layers = config["config"]
    if not layers:
        raise ValueError(f"Keras config of {str(path)!r} has no layers")

    first = layers[0].get("config", {})
    shape = first.get("batch_input_shape")
    if shape is None and "input_dim" in first:
        shape = [None, first["input_dim"]] if first.get("input_length") is None else [None, first["input_length"], first["input_dim"]]
    if shape is None or any(s is None for s in shape[1:]):
        raise ValueError(f"first layer of {str(path)!r} must declare a full batch_input_shape; got {shape}")
    input_shape = tuple(int(s) for s in shape[1:])
    orderings = {l.get("config", {}).get("dim_ordering") for l in layers} - {None}
    any_tf = "tf" in orderings

    modules: OrderedDict[str, nn.Module] = OrderedDict()
    keras_names: dict[str, str] = {}
    counts: dict[str, int] = {}

    def add(name: str, module: nn.Module, keras_name: str) -> None:
        modules[name] = module
        keras_names[name] = keras_name

    def next_name(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return f"{kind}{counts[kind]}"

    # Track the PyTorch-layout shape (without batch) through the stack: "same" padding needs spatial sizes.
    first_cls = layers[0].get("class_name")
    if first_cls in ("Convolution1D", "MaxPooling1D"):
        layout = "1d"
        if len(input_shape) != 2:
            raise ValueError(f"{first_cls} input must be (steps, channels); batch_input_shape gave {input_shape}")
        add("to_channels_first", Permute((0, 2, 1)), "")
        cur = (input_shape[1], input_shape[0])
    elif first_cls in ("Convolution2D", "MaxPooling2D"):
        ordering = first.get("dim_ordering", "th")
        if len(input_shape) != 3:
            raise ValueError(f"{first_cls} input must have 3 axes; batch_input_shape gave {input_shape}")
        if ordering == "tf":
            layout = "tf2d"
            add("to_channels_first", Permute((0, 3, 1, 2)), "")
            cur = (input_shape[2], input_shape[0], input_shape[1])
        else:
            layout = "th2d"
            cur = input_shape
    else:
        layout = "dense"
        cur = input_shape
    channels_last = layout in ("1d", "tf2d")

    for spec in layers:
        start = len(modules)
        cls = spec.get("class_name")
        cfg = spec.get("config", {})
        kname = cfg.get("name", cls)
        if cls not in SUPPORTED_LAYERS:
            raise ValueError(
                f"layer {kname!r} is a Keras {cls!r}, which is not supported; supported layers: {', '.join(SUPPORTED_LAYERS)}"
            )
        owner = None
        if cls in ("Convolution1D", "Convolution2D"):
            bias = bool(cfg.get("bias", True))
            W, b = _layer_weights(weights, kname, cls, bias)
            border = cfg.get("border_mode", "valid")
            if border not in ("same", "valid"):
                raise ValueError(f"layer {kname!r}: border_mode {border!r} is not supported; use 'same' or 'valid'")
            if cls == "Convolution1D":
                if len(cur) != 2:
                    raise ValueError(f"Convolution1D layer {kname!r} needs a (channels, steps) input; got {cur}")
                layer_backend = backend or ("tensorflow" if any_tf else "theano")
                k = int(cfg["filter_length"])
                strides = (int(cfg.get("subsample_length", 1)),)
                if W.ndim != 4 or W.shape[0] != k or W.shape[2] != cur[0]:
                    raise ValueError(f"Convolution1D layer {kname!r}: kernel shape {W.shape} does not match (length={k}, 1, channels={cur[0]}, filters)")
                kernel = W[:, 0].transpose(2, 1, 0)  # (length, channels, filters) -> (filters, channels, length)
                ksize = (k,)
            else:
                if len(cur) != 3:
                    raise ValueError(f"Convolution2D layer {kname!r} needs a (channels, rows, cols) input; got {cur}")
                ordering = cfg.get("dim_ordering", "th")
                layer_backend = backend or ("tensorflow" if ordering == "tf" else "theano")
                ksize = (int(cfg["nb_row"]), int(cfg["nb_col"]))
                strides = tuple(int(s) for s in cfg.get("subsample", (1, 1)))
                kernel = W if ordering == "th" else W.transpose(3, 2, 0, 1)
                if kernel.shape[1:] != (cur[0], *ksize):
                    raise ValueError(f"Convolution2D layer {kname!r}: kernel {W.shape} ({ordering}) does not match "
                                     f"{cur[0]} input channels and a {ksize} window")
            if layer_backend == "theano":
                # Theano convolves (flips the kernel); PyTorch cross-correlates: flip every spatial axis.
                kernel = kernel[(slice(None), slice(None)) + (slice(None, None, -1),) * len(ksize)]
            name = next_name("conv")
            if border == "same":
                pad = _pad_module([_same_pads(n, k_, s, layer_backend) for n, k_, s in zip(cur[1:], ksize, strides)], 0.0)
                if pad is not None:
                    add(f"{name}_pad", pad, kname)
            conv_cls = nn.Conv1d if len(ksize) == 1 else nn.Conv2d
            conv = conv_cls(cur[0], kernel.shape[0], ksize, stride=strides, bias=bias)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32)))
                if bias:
                    conv.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32).reshape(-1)))
            add(name, conv, kname)
            owner = name
        elif cls in ("MaxPooling1D", "MaxPooling2D"):
            if cls == "MaxPooling1D":
                pool = (int(cfg.get("pool_length", 2)),)
                stride = cfg.get("stride") or pool[0]
                strides = (int(stride),)
            else:
                pool = tuple(int(p) for p in cfg.get("pool_size", (2, 2)))
                strides = tuple(int(s) for s in (cfg.get("strides") or pool))
                if cfg.get("dim_ordering", "th") != ("tf" if channels_last else "th") and layout != "dense":
                    raise ValueError(f"layer {kname!r}: dim_ordering {cfg.get('dim_ordering')!r} differs from the model's input layout")
            if len(cur) != len(pool) + 1:
                raise ValueError(f"{cls} layer {kname!r} got an input of shape {cur}")
            name = next_name("pool")
            border = cfg.get("border_mode", "valid")
            if border == "same":
                if (backend or ("tensorflow" if any_tf else "theano")) != "tensorflow":
                    raise ValueError(f"{cls} layer {kname!r}: border_mode 'same' is supported for the TensorFlow backend only")
                pad = _pad_module([_same_pads(n, p, s, "tensorflow") for n, p, s in zip(cur[1:], pool, strides)], -math.inf)
                if pad is not None:
                    add(f"{name}_pad", pad, kname)
            elif border != "valid":
                raise ValueError(f"layer {kname!r}: border_mode {border!r} is not supported; use 'same' or 'valid'")
            pool_cls = nn.MaxPool1d if len(pool) == 1 else nn.MaxPool2d
            add(name, pool_cls(pool, stride=strides), kname)
        elif cls == "Flatten":
            add("flatten" if "flatten" not in modules else next_name("flatten"), KerasFlatten(channels_last), kname)
        elif cls == "Dense":
            if len(cur) != 1:
                raise ValueError(f"Dense layer {kname!r} needs a flat input; got shape {cur} (add a Flatten)")
            bias = bool(cfg.get("bias", True))
            W, b = _layer_weights(weights, kname, cls, bias)
            if W.shape != (cur[0], int(cfg["output_dim"])):
                raise ValueError(f"Dense layer {kname!r}: weights {W.shape} do not match (in={cur[0]}, out={cfg['output_dim']})")
            lin = nn.Linear(W.shape[0], W.shape[1], bias=bias)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T, dtype=np.float32)))  # Keras stores (in, out)
                if bias:
                    lin.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32)))
            name = next_name("dense")
            add(name, lin, kname)
            owner = name
        elif cls == "Dropout":
            add(next_name("dropout"), nn.Dropout(float(cfg.get("p", 0.0))), kname)
        elif cls == "Activation":
            act = cfg.get("activation", "linear")
            module = _activation(act, kname)
            if module is not None:
                add(act if act not in modules else next_name(act), module, kname)
            cur = _shape_after(list(modules.values())[start:], cur)
            continue

        act = cfg.get("activation")
        if owner is not None and act is not None:
            module = _activation(act, kname)
            if module is not None:
                add(f"{owner}_{act}" if act != "sigmoid" or spec is not layers[-1] else "sigmoid", module, kname)
        cur = _shape_after(list(modules.values())[start:], cur)

    if onehot:
        adapter = FromOneHot(layout)
        modules = OrderedDict([("from_onehot", adapter), *modules.items()])
    model = nn.Sequential(modules)
    model.eval()
    model.onehot_input = bool(onehot)
    model.keras_input_shape = input_shape
    model.keras_layout = layout
    model.keras_backend = backend or ("tensorflow" if any_tf else "theano")
    model.keras_layers = {k: v for k, v in keras_names.items() if v}
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
        raise ValueError(f"the layer stack produced an empty tensor of shape {tuple(x.shape)}; check pool/kernel sizes")
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
        raise ValueError(f"onehot must be (N, alphabet, length); got shape {tuple(onehot.shape)}")
    layout = getattr(model, "keras_layout", None)
    if layout is None or getattr(model, "onehot_input", False):
        return onehot
    return FromOneHot(layout)(onehot)
