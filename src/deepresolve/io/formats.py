"""What a model file holds, told from its first bytes (and a zip's table of contents), never from its name.

Users keep models under any name: a Keras 2 ``model.save()`` file called ``model.hdf5`` or ``model`` , a Keras 3
archive called ``model.zip``, TorchScript saved as ``net.bin``. :func:`sniff` is the one place that tells them
apart; :func:`~deepresolve.io.models.load_model` and :func:`~deepresolve.io.keras.load_keras` dispatch on it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import FileFormatError

#: What :func:`sniff` can answer.
KINDS = ("folder", "saved_model", "hdf5", "json", "keras_zip", "torchscript", "torch_pickle", "pickle", "onnx",
         "unknown")

#: The kinds a Keras model comes as (:func:`~deepresolve.io.keras.load_keras` reads them; a SavedModel is refused).
KERAS_KINDS = ("folder", "saved_model", "hdf5", "json", "keras_zip")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock: the signature may sit at 0, 512, 1024, 2048, ...
_HDF5_OFFSETS = (0, 512, 1024, 2048)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty archive


def sniff(path: str | Path) -> str:
    """The kind of model ``path`` holds, one of :data:`KINDS`.

    Parameters
    ----------
    path : str or Path
        An existing file or folder.

    Returns
    -------
    str
        ``"folder"`` (a folder, e.g. a Keras json + h5 pair), ``"saved_model"`` (a TensorFlow SavedModel folder),
        ``"hdf5"`` (any HDF5 file: Keras 1/2/3 ``.h5``, a Keras 3 ``.weights.h5``), ``"json"`` (a JSON document:
        a Keras architecture), ``"keras_zip"`` (a Keras 3 ``.keras`` archive: ``config.json`` +
        ``model.weights.h5``), ``"torchscript"`` (``torch.jit.save``), ``"torch_pickle"`` (``torch.save`` of a
        module or state dict, zip or legacy format), ``"pickle"`` (another pickle), ``"onnx"`` (a file named
        ``.onnx``: protobuf has no signature) or ``"unknown"``.
    """
    path = Path(path)
    if path.is_dir():
        return "saved_model" if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists() \
            else "folder"
    try:
        with open(path, "rb") as f:
            head = f.read(max(_HDF5_OFFSETS) + len(_HDF5_MAGIC))
    except OSError as err:
        raise FileFormatError(f"model: expected a readable file, got {str(path)!r} ({err.strerror})") from None
    if head.startswith(_ZIP_MAGIC):  # before the later HDF5 offsets: a .keras zip stores an HDF5 file inside
        return _zip_kind(path)
    if any(head[o:o + len(_HDF5_MAGIC)] == _HDF5_MAGIC for o in _HDF5_OFFSETS):
        return "hdf5"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        # torch.save's legacy format starts with a pickled magic number (a long) before the pickled object.
        return "torch_pickle" if head[2:3] == b"\x8a" else "pickle"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    return "unknown"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile:
        return "unknown"  # a truncated archive: its central directory is gone
    if "config.json" in names and any(n.startswith("model.weights.") for n in names):
        return "keras_zip"
    # torch.jit.save writes <archive>/code/... (the TorchScript source); torch.save writes only <archive>/data.pkl.
    if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch_pickle"
    return "unknown"
