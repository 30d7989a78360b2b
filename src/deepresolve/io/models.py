"""One loader for every model format the package and the CLI accept."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from .keras import load_keras


def load_model(source: str | Path, *, weights: str | Path | None = None, onehot: bool = True) -> nn.Module:
    """Load a trained model, dispatching on ``source``.

    Parameters
    ----------
    source : str or Path
        - a Keras 1.x model (folder with ``.json`` + ``.h5``, or either file) → :func:`~deepresolve.io.keras.load_keras`;
        - a TorchScript archive (``.pt``, ``.pth``, ``.ts``) → :func:`torch.jit.load`;
        - an ONNX file (``.onnx``) → ``onnx2torch.convert`` (optional: ``pip install onnx2torch``);
        - ``"package.module:factory"``: a function returning an ``nn.Module``, its state dict read from ``weights``.
    weights : path, optional
        A state-dict file (``torch.save(model.state_dict())``, or a dict holding it under ``"state_dict"``) for a
        ``"package.module:factory"`` model.
    onehot : bool
        For Keras models: take one-hot ``(N, 4, L)`` input like every other model here (True, default), or Keras's
        own input layout (False; see :func:`~deepresolve.io.keras.load_keras`).

    Returns
    -------
    torch.nn.Module
        In eval mode, on the CPU.
    """
    path = Path(source)
    if not path.exists() and ":" in str(source):
        return _from_factory(str(source), weights)
    if not path.exists():
        raise FileNotFoundError(f"{str(source)!r} is neither an existing file/folder nor 'package.module:factory'")
    if weights is not None:
        raise ValueError(f"weights= is read only for a 'package.module:factory' model; {str(source)!r} holds its "
                         "own weights")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in (".json", ".h5", ".hdf5"):
        return load_keras(path, onehot=onehot)
    if suffix in (".pt", ".pth", ".ts"):
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as err:
            # A pickled nn.Module is not loaded implicitly: unpickling runs arbitrary code.
            raise ValueError(
                f"{str(path)!r} is not a TorchScript archive ({str(err).splitlines()[0]}); save the model with "
                "torch.jit.script(model).save(path), or load it yourself and pass the module. A plain state dict "
                "needs the architecture too: give the model as 'package.module:factory' and the file as weights"
            ) from None
        return model.eval()
    if suffix == ".onnx":
        try:
            from onnx2torch import convert
        except ImportError:
            raise ImportError(
                f"loading {str(path)!r} needs onnx2torch: pip install onnx2torch (the 'onnx' extra of deepresolve)"
            ) from None
        return convert(str(path)).eval()
    raise ValueError(
        f"cannot tell the format of {str(path)!r}: expected a Keras folder/.json/.h5, a TorchScript .pt/.pth/.ts, "
        "an .onnx file or 'package.module:factory'"
    )


def _from_factory(spec: str, weights: str | Path | None) -> nn.Module:
    module_name, _, factory = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import module {module_name!r} from {spec!r}: {err}") from None
    if not hasattr(module, factory):
        raise ValueError(f"module {module_name!r} has no {factory!r}")
    model = getattr(module, factory)()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        weights = Path(weights)
        if not weights.exists():
            raise FileNotFoundError(f"weights file {str(weights)!r} does not exist")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except RuntimeError as err:
            raise ValueError(f"weights {str(weights)!r} do not fit {spec}: {err}") from None
    return model.eval()
