"""One loader for every model format the package and the CLI accept."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ArgumentError, FileFormatError, MissingFileError, ModelError
from .formats import sniff
from .keras import load_keras


def load_model(source: str | Path, *, weights: str | Path | None = None, onehot: bool = True,
               architecture: str | None = None, rc_average: bool = False,
               features: str | Path | None = None, fixed_inputs: Mapping[str, Any] | None = None,
               custom_layers: Mapping[str, nn.Module] | None = None) -> nn.Module:
    """Load a trained model, dispatching on what ``source`` holds (told from its content, not its name).

    Parameters
    ----------
    source : str or Path
        - a Keras model: a folder with ``.json`` + ``.h5``, an architecture ``.json`` (weights beside it or
          ``weights``), a Keras 1-3 ``.h5`` or a Keras 3 ``.keras`` archive, ``Sequential`` or functional
          → :func:`~deepresolve.io.keras.load_keras`;
        - a TorchScript archive (``torch.jit.save``) → :func:`torch.jit.load`;
        - an ONNX file (``.onnx``) → ``onnx2torch.convert`` (optional: ``pip install onnx2torch``);
        - ``"package.module:factory"``: a function returning an ``nn.Module``, its state dict read from ``weights``.
        A pickled module or state dict (``torch.save``) is refused: unpickling runs arbitrary code.
    weights : path, optional
        The weights of a Keras architecture ``.json`` (any file name), or a state-dict file
        (``torch.save(model.state_dict())``, or a dict holding it under ``"state_dict"``) for a
        ``"package.module:factory"`` model.
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

    Returns
    -------
    torch.nn.Module
        In eval mode, on the CPU.
    """
    path = Path(source)
    if architecture is not None:
        from .architectures import load_architecture

        if weights is not None:
            raise ArgumentError(f"weights: a port's file is the model itself (architecture={architecture!r}); "
                                f"give it as the model, got weights={str(weights)!r}")
        return load_architecture(path, architecture, rc_average=rc_average, features=features)
    if rc_average or features is not None:
        raise ArgumentError("rc_average/features: expected only with architecture='deepsea' (a published port), "
                            "got architecture=None")
    if not path.exists() and ":" in str(source):
        return _from_factory(str(source), weights)
    if not path.exists():
        raise MissingFileError(f"model: expected an existing file/folder or 'package.module:factory', got "
                               f"{str(source)!r}, which does not exist")
    kind = sniff(path)
    if kind in ("folder", "saved_model", "hdf5", "json", "keras_zip"):
        return load_keras(path, onehot=onehot, weights=weights, fixed_inputs=fixed_inputs,
                          custom_layers=custom_layers)
    if fixed_inputs is not None or custom_layers is not None:
        raise ArgumentError(f"fixed_inputs/custom_layers: expected only for a Keras model, got a "
                            f"{kind.replace('_', ' ')} file {str(source)!r}")
    if weights is not None:
        raise ArgumentError(f"weights= is read only for a 'package.module:factory' model or a Keras architecture "
                            f"(.json); {str(source)!r} holds its own weights")
    if kind in ("torch_pickle", "pickle"):
        # A pickled nn.Module is not loaded implicitly: unpickling runs arbitrary code.
        raise FileFormatError(
            f"{str(path)!r} is not a TorchScript archive (it holds a torch.save pickle of a module or a state dict, "
            "not unpickled because that runs arbitrary code); save the model with torch.jit.script(model).save(path), "
            "or give the architecture as 'package.module:factory' and this file as weights"
        )
    if kind == "torchscript" or (kind == "unknown" and path.suffix.lower() in (".pt", ".pth", ".ts")):
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as err:
            raise FileFormatError(
                f"{str(path)!r} is not a TorchScript archive ({str(err).splitlines()[0]}); save the model with "
                "torch.jit.script(model).save(path), or load it yourself and pass the module. A plain state dict "
                "needs the architecture too: give the model as 'package.module:factory' and the file as weights"
            ) from None
        return model.eval()
    if kind == "onnx":
        try:
            from onnx2torch import convert
        except ImportError:
            raise ModelError(
                f"loading {str(path)!r} needs onnx2torch: pip install onnx2torch (the 'onnx' extra of deepresolve)"
            ) from None
        return convert(str(path)).eval()
    raise FileFormatError(
        f"cannot tell the format of {str(path)!r}: expected a Keras folder/.json/.h5/.keras, a TorchScript archive, "
        "an .onnx file or 'package.module:factory'"
    )


def _from_factory(spec: str, weights: str | Path | None) -> nn.Module:
    module_name, _, factory = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelError(f"cannot import module {module_name!r} from {spec!r}: {err}") from None
    if not hasattr(module, factory):
        raise ModelError(f"module {module_name!r} has no {factory!r}")
    model = getattr(module, factory)()
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise MissingFileError(f"weights: expected a state-dict file, got {str(weights)!r}, which does not exist")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, not a torch file, or pickled objects other than tensors
            raise FileFormatError(f"weights {str(weights)!r} cannot be read as a state dict ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0] if str(err) else ''})") from None
        try:
            model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise ModelError(f"weights {str(weights)!r} do not fit {spec}: "
                             f"{' '.join(str(err).split())[:300]}") from None
    return model.eval()
