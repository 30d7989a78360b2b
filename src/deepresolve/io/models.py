"""One loader for every model format the package and the CLI accept."""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .._checks import (
    BadValue,
    Bool,
    ExistingFile,
    Instance,
    Names,
    OptionalOf,
    Shape,
    Spec,
    Text,
    declare,
    existing_file,
)
from ..errors import ArgumentError, FileFormatError, MissingFileError, ModelError
from .formats import KERAS_KINDS, sniff
from .keras import load_keras

#: Prefixes that wrappers put before every key of a state dict: ``nn.DataParallel``/DDP (``module.``), a
#: Lightning module or Selene's ``NonStrandSpecific`` holding the network as ``self.model`` (``model.``), and
#: ``torch.compile`` (``_orig_mod.``).
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


class ModelSource(Spec):
    """What :func:`load_model` loads: an existing file or folder this process can read, or a
    ``"package.module:factory"`` (given as a str)."""

    def __init__(self) -> None:
        self.label = "model"

    def check(self, value: object, argument: str) -> Path | str:
        if not isinstance(value, (str, os.PathLike)):
            raise ArgumentError(f"model: expected a path or 'package.module:factory', got {type(value).__name__} "
                                f"{value!r:.60}")
        if Path(value).exists():
            return existing_file(value, "model", folders=True)
        if ":" in str(value):
            return str(value)
        raise MissingFileError(f"model: expected an existing file/folder or 'package.module:factory', got "
                               f"{str(value)!r}, which does not exist")

    def describe(self) -> str:
        return "the path of a model file or folder, or 'package.module:factory'"

    def bad_values(self, argument: str) -> list[BadValue]:
        return [BadValue(3, "wrong type", "model: expected a path or 'package.module:factory', got int 3")]

    def bad_paths(self, argument: str, folder: Path) -> list[BadValue]:
        locked = folder / "unreadable"
        locked.write_bytes(b"")
        locked.chmod(0)
        return [BadValue(folder / "missing", "missing", "model: expected an existing file/folder or "
                         "'package.module:factory', got", MissingFileError),
                BadValue(locked, "unreadable", "model: expected a file or folder this process can read")]


@declare(source=ModelSource(), weights=OptionalOf(ExistingFile("weights", expected="a weights file")), onehot=Bool(),
         architecture=OptionalOf(Text("the name of a published port ('deepsea', 'beluga', 'basset')")),
         rc_average=Bool(), features=OptionalOf(ExistingFile("DeepSEA feature table")),
         fixed_inputs=OptionalOf(Instance(Mapping, "a dict of Keras input names to values")),
         custom_layers=OptionalOf(Instance(Mapping, "a dict of Keras layer names to torch modules")),
         factory_kwargs=OptionalOf(Instance(Mapping, "a dict of keyword arguments of the factory")),
         trust_pickle=Bool(), reverse_complement_inputs=OptionalOf(Names(label="reverse_complement_inputs")),
         input_shape=OptionalOf(Shape()))
def load_model(source: str | Path, *, weights: str | Path | None = None, onehot: bool = True,
               architecture: str | None = None, rc_average: bool = False,
               features: str | Path | None = None, fixed_inputs: Mapping[str, Any] | None = None,
               custom_layers: Mapping[str, nn.Module] | None = None,
               factory_kwargs: Mapping[str, Any] | None = None, trust_pickle: bool = False,
               reverse_complement_inputs: Sequence[str] | None = None,
               input_shape: Sequence[int] | None = None) -> nn.Module:
    """Load a trained model, dispatching on what ``source`` holds (told from its content, not its name).

    Parameters
    ----------
    source : str or Path
        - a Keras model: a folder with ``.json`` + ``.h5``, an architecture ``.json`` (weights beside it or
          ``weights``), a Keras 1-3 ``.h5`` or a Keras 3 ``.keras`` archive, ``Sequential`` or functional
          → :func:`~deepresolve.io.keras.load_keras`;
        - a TorchScript archive (``torch.jit.save``) → :func:`torch.jit.load`;
        - an ONNX file (``.onnx``) → ``onnx2torch.convert`` (optional: ``pip install onnx2torch``);
        - ``"package.module:factory"``: a function (or class) returning an ``nn.Module``, called with
          ``factory_kwargs``, its state dict read from ``weights``;
        - a whole module pickled with ``torch.save(model)`` (bpnet-lite's ``.torch`` files), only with
          ``trust_pickle=True``: unpickling runs arbitrary code, and needs the model's classes importable.
        A state dict alone is refused: it needs its architecture (``"package.module:factory"``).
    weights : path, optional
        The weights of a Keras architecture ``.json`` (any file name), or the state dict of a
        ``"package.module:factory"`` model: ``torch.save(model.state_dict())``, or a checkpoint holding it under
        ``"state_dict"`` (Lightning, Selene) or ``"model_state_dict"``. Keys that all carry a wrapper's prefix
        (``module.`` of DataParallel, ``model.`` of a Lightning module or Selene's ``NonStrandSpecific``,
        ``_orig_mod.`` of ``torch.compile``) are matched without it, with a warning that says which was removed.
    onehot : bool
        For Keras models: take one-hot ``(N, 4, L)`` input like every other model here (True, default), or Keras's
        own input layout (False; see :func:`~deepresolve.io.keras.load_keras`).
    architecture : {"deepsea", "beluga", "basset"}, optional
        ``source`` is the state-dict file of a published PyTorch port (Kipoi's DeepSEA ``deepsea_cpu.pth``,
        ExPecto's Beluga, Kipoi's Basset): see :func:`~deepresolve.io.architectures.load_architecture`, which
        also takes ``rc_average`` and ``features`` (DeepSEA's output table, for class names).
    fixed_inputs, custom_layers : dict, optional
        For Keras models with several inputs or with layers the importer cannot build: see
        :func:`~deepresolve.io.keras.load_keras`.
    reverse_complement_inputs : list of str, optional
        For Keras models that take the sequence's reverse complement as another input (DeepMEL): those inputs'
        names; the model then takes the sequence alone (:func:`~deepresolve.io.keras.load_keras`).
    input_shape : tuple of int, optional
        For Keras models whose file leaves the sequence length open: the input shape to build the model for,
        without the batch axis, e.g. ``(4, 1000)``.
    factory_kwargs : dict, optional
        Keyword arguments for the ``"package.module:factory"`` call, e.g. ``{"n_filters": 64, "n_layers": 8}``.
    trust_pickle : bool
        Unpickle ``source`` (a whole pickled module) or a ``weights`` checkpoint that holds more than tensors
        (e.g. a Lightning checkpoint's hyper-parameters). Only for files you trust: unpickling runs arbitrary code.

    Returns
    -------
    torch.nn.Module
        In eval mode, on the CPU.
    """
    path = Path(source)
    if trust_pickle not in (True, False):
        raise ArgumentError(f"trust_pickle: expected True or False, got {trust_pickle!r}")
    if factory_kwargs is not None and (not isinstance(factory_kwargs, Mapping)
                                       or not all(isinstance(k, str) for k in factory_kwargs)):
        raise ArgumentError(f"factory_kwargs: expected a dict of keyword arguments, got {factory_kwargs!r}")
    if architecture is not None:
        from .architectures import load_architecture

        if weights is not None:
            raise ArgumentError(f"weights: a port's file is the model itself (architecture={architecture!r}); "
                                f"give it as the model, got weights={str(weights)!r}")
        return load_architecture(path, architecture, rc_average=rc_average, features=features)
    if rc_average or features is not None:
        raise ArgumentError("rc_average/features: expected only with architecture='deepsea' (a published port), "
                            "got architecture=None")
    if not path.exists():  # a "package.module:factory" (ModelSource)
        return _from_factory(str(source), weights, factory_kwargs or {}, trust_pickle)
    if factory_kwargs is not None:
        raise ArgumentError(f"factory_kwargs: expected only with a 'package.module:factory' model, got the file "
                            f"{str(source)!r}")
    kind = sniff(path)
    if kind in KERAS_KINDS:
        return load_keras(path, onehot=onehot, weights=weights, fixed_inputs=fixed_inputs,
                          custom_layers=custom_layers, reverse_complement_inputs=reverse_complement_inputs,
                          input_shape=input_shape)
    keras_only = {"fixed_inputs": fixed_inputs, "custom_layers": custom_layers,
                  "reverse_complement_inputs": reverse_complement_inputs, "input_shape": input_shape}
    given = next((k for k, v in keras_only.items() if v is not None), None)
    if given is not None:
        raise ArgumentError(f"{given}: expected only for a Keras model, got a {kind.replace('_', ' ')} file "
                            f"{str(source)!r}")
    if weights is not None:
        raise ArgumentError(f"weights= is read only for a 'package.module:factory' model or a Keras architecture "
                            f"(.json); {str(source)!r} holds its own weights")
    if kind in ("torch_pickle", "pickle") and trust_pickle:
        return _unpickle_module(path)
    if kind in ("torch_pickle", "pickle"):
        # A pickled nn.Module is not loaded implicitly: unpickling runs arbitrary code.
        raise FileFormatError(
            f"model {str(path)!r} is not a TorchScript archive (it holds a torch.save pickle of a module or a state "
            "dict, "
            "not unpickled because that runs arbitrary code); save the model with torch.jit.script(model).save(path), "
            "give the architecture as 'package.module:factory' and this file as weights, or load a whole pickled "
            "module you trust with trust_pickle=True"
        )
    if kind == "torchscript" or (kind == "unknown" and path.suffix.lower() in (".pt", ".pth", ".ts")):
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as err:
            raise FileFormatError(
                f"model {str(path)!r} is not a TorchScript archive ({str(err).splitlines()[0]}); save the model with "
                "torch.jit.script(model).save(path), or load it yourself and pass the module. A plain state dict "
                "needs the architecture too: give the model as 'package.module:factory' and the file as weights"
            ) from None
        return model.eval()
    if kind == "onnx":
        return _from_onnx(path)
    raise FileFormatError(
        f"model {str(path)!r}: cannot tell the format: expected a Keras folder/.json/.h5/.keras, a TorchScript "
        "archive, "
        "an .onnx file or 'package.module:factory'"
    )


def _unpickle_module(path: Path) -> nn.Module:
    """A whole module saved with ``torch.save(model)``; its classes must be importable."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as err:  # the pickle names a class that cannot be found
        raise ModelError(f"{str(path)!r} names a class that cannot be imported ({type(err).__name__}: {err}); install "
                         "the package that defines the model (e.g. bpnet-lite) and load again") from None
    except Exception as err:
        raise FileFormatError(f"{str(path)!r} cannot be unpickled ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if isinstance(loaded, nn.Module):
        return loaded.eval()
    raise FileFormatError(f"{str(path)!r} holds a {type(loaded).__name__}, not a whole module; give the architecture "
                          "as 'package.module:factory' and this file as weights")


def _from_factory(spec: str, weights: str | Path | None, kwargs: Mapping[str, Any], trust_pickle: bool) -> nn.Module:
    module_name, _, factory = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelError(f"cannot import module {module_name!r} from {spec!r}: {err}") from None
    # a dotted factory reaches class methods, e.g. enformer_pytorch:Enformer.from_hparams
    target = module
    for part in factory.split("."):
        if not hasattr(target, part):
            raise ModelError(f"module {module_name!r} has no {factory!r}")
        target = getattr(target, part)
    try:
        model = target(**kwargs)
    except TypeError as err:  # a missing or unknown keyword argument
        raise ArgumentError(f"factory_kwargs: expected the arguments {spec} takes, got {dict(kwargs)!r} ({err})"
                            ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        load_weights(model, weights, trust_pickle=trust_pickle, what=spec)
    return model.eval()


def load_weights(model: nn.Module, weights: str | Path, *, trust_pickle: bool = False, what: str = "the model"
                 ) -> nn.Module:
    """Load a state-dict file or checkpoint into ``model`` (in place), wrapper prefixes removed (with a warning).

    Parameters
    ----------
    model : nn.Module
    weights : path
        ``torch.save(model.state_dict())``, a checkpoint holding it under ``"state_dict"`` or
        ``"model_state_dict"``, or (``trust_pickle=True``) a whole pickled module.
    trust_pickle : bool
        Allow objects other than tensors and plain containers in the file (unpickling runs arbitrary code).
    what : str
        The model, as messages name it.

    Returns
    -------
    nn.Module
        ``model``.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise MissingFileError(f"weights: expected a state-dict file, got {str(weights)!r}, which does not exist")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # truncated, not a torch file, or pickled objects other than tensors
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        hint = "" if trust_pickle else "; if it holds other objects (e.g. a Lightning checkpoint's hyper-parameters) " \
                                       "and you trust it, pass trust_pickle=True"
        raise FileFormatError(f"weights {str(weights)!r} cannot be read as a state dict ({type(err).__name__}: "
                              f"{first[:200]}){hint}") from None
    if isinstance(state, nn.Module):
        state = state.state_dict()
    elif isinstance(state, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping):
        raise FileFormatError(f"weights {str(weights)!r} hold a {type(state).__name__}, not a state dict")
    state, prefix = _strip_prefixes(dict(state), set(model.state_dict()))
    if prefix:
        warnings.warn(f"weights {str(weights)!r}: removed the prefix {prefix!r} from the keys (a model saved inside "
                      "a wrapper: DataParallel, Lightning, Selene or torch.compile)", stacklevel=3)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ModelError(f"weights {str(weights)!r} do not fit {what}: "
                         f"{' '.join(str(err).split())[:300]}") from None
    return model


def _strip_prefixes(state: dict[str, Any], wanted: set[str]) -> tuple[dict[str, Any], str]:
    """``state`` with the wrapper prefixes removed that make its keys exactly ``wanted``, and the prefixes removed
    ("" and ``state`` itself when the keys fit as they are or no prefixes make them fit). Keys without the prefix
    (e.g. a Lightning module's own loss weights) are dropped only when the rest then fits exactly."""
    if set(state) != wanted:
        for prefix in WRAPPER_PREFIXES:
            inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            stripped, more = _strip_prefixes(inner, wanted) if inner else ({}, "")
            if inner and set(stripped) == wanted:
                return stripped, prefix + more
    return state, ""


#: What onnx2torch needs torchvision for: two detection operators, never in a sequence model.
_TORCHVISION_OPERATORS = "NonMaxSuppression and RoiAlign"


def _from_onnx(path: Path) -> nn.Module:
    """An ONNX model converted by onnx2torch.

    onnx2torch imports torchvision for two detection operators only; torchvision is often absent, or built for
    another torch (then importing it fails). The converter is then imported with a stand-in torchvision that
    refuses those two operators, so every other model converts.
    """
    try:
        import onnx
    except ImportError:
        raise ModelError(f"loading {str(path)!r} needs onnx and onnx2torch: pip install onnx, then pip install "
                         "onnx2torch --no-deps (its torchvision requirement would replace the installed torch)"
                         ) from None
    try:
        from onnx2torch import convert
    except ImportError as err:
        if "onnx2torch" in str(err) and "torchvision" not in str(err):
            raise ModelError(f"loading {str(path)!r} needs onnx2torch: pip install onnx2torch --no-deps (its "
                             "torchvision requirement would replace the installed torch)") from None
        convert = _onnx2torch_without_torchvision()
    except RuntimeError:  # a torchvision built for another torch fails while registering its operators
        convert = _onnx2torch_without_torchvision()
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # protobuf's DecodeError, or a truncated file
        raise FileFormatError(f"{str(path)!r} is not a readable ONNX model ({type(err).__name__}: "
                              f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})"[:400]) from None
    if not proto.graph.node:  # protobuf reads an empty file as an empty model
        raise FileFormatError(f"{str(path)!r} holds no ONNX graph (an empty or truncated file); export the model "
                              "again with torch.onnx.export")
    try:
        return convert(proto).eval()
    except Exception as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        missing = re.search(r"operation_type='([^']*)', version=(\d+)", text)
        if missing:  # onnx2torch's registry has no converter for this operator at this opset
            raise ModelError(f"onnx2torch cannot convert {str(path)!r}: it has no converter for the ONNX operator "
                             f"{missing[1]} (opset {missing[2]}); export the model without that operation (or with "
                             "another opset_version), or load the PyTorch model itself") from None
        raise ModelError(f"onnx2torch cannot convert {str(path)!r}: {type(err).__name__}: {text}"[:400]) from None


def _onnx2torch_without_torchvision() -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise ModelError(f"this ONNX model uses {_TORCHVISION_OPERATORS}, which need torchvision built for the "
                         "installed torch")

    stand_in = types.ModuleType("torchvision")
    stand_in.ops = types.SimpleNamespace(nms=refuse, box_convert=refuse, roi_align=refuse)
    ops = types.ModuleType("torchvision.ops")
    ops.roi_align = refuse
    saved = {name: sys.modules.pop(name) for name in list(sys.modules)
             if name == "torchvision" or name.startswith(("torchvision.", "onnx2torch"))}
    sys.modules.update({"torchvision": stand_in, "torchvision.ops": ops})
    try:
        from onnx2torch import convert
    finally:
        for name in ("torchvision", "torchvision.ops"):
            sys.modules.pop(name, None)
        sys.modules.update({k: v for k, v in saved.items() if k.startswith("torchvision")})
    return convert
