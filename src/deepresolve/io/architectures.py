"""Published PyTorch ports of DeepSEA, Beluga and Basset, loaded from their own weight files.

Users hold these networks as state-dict files of the ports' ``nn.Sequential`` models, keyed by the ports' module
indices. :func:`load_architecture` reads such a file and returns a model that

- takes ordinary one-hot input (N, 4, L) in A, C, G, T order (the ports' alphabet order and extra axis are hidden:
  DeepSEA and Beluga want (N, 4, 1, L) in A, G, C, T order, Basset (N, 4, L, 1) in A, C, G, T order);
- computes what the port computes on one strand, to float32 round-off: each ``Conv2d`` with a (1, k) or (k, 1)
  kernel is the equal ``Conv1d`` with kernel k, and pooling and batch norm likewise, so feature maps are (K, W)
  as DeepResolve expects;
- names its layers (``conv1``, ``pool2``, ``dense1`` ...), so a layer is picked by name in
  :func:`deepresolve.resolve` (see each builder for the layer that matches the paper's DeepSEA analysis);
- ends in a ``Sigmoid`` module named ``sigmoid`` (the engine scores the logits before it).

The ports (module index -> layer name):

- **DeepSEA** (Zhou & Troyanskaya 2015) as ported by Kipoi, ``deepsea_cpu.pth``: keys ``0.`` conv1, ``4.`` conv2,
  ``8.`` conv3, ``12.1.`` dense1, ``14.1.`` dense2; Kipoi's predict model (alphabet recoding, reverse complement,
  the network at index 2, strand averaging) prefixes them ``2.``, its variant-effect model ``1.``. 1000 bp,
  919 outputs; ``Threshold(0, 1e-6)`` where other networks have ReLU.
- **Beluga** (Zhou et al. 2018, ExPecto): keys ``model.0.{0,2,6,8,12,14}.`` conv1..conv6, ``model.1.2.1.`` dense1,
  ``model.1.4.1.`` dense2. 2000 bp, 2002 outputs.
- **Basset** (Kelley et al. 2016) as ported by Kipoi: keys ``0.`` conv1, ``1.`` bn1, ``4.`` conv2, ``5.`` bn2,
  ``8.`` conv3, ``9.`` bn3, ``13.1.`` dense1, ``14.`` bn4, ``17.1.`` dense2, ``18.`` bn5, ``21.1.`` dense3.
  600 bp, 164 outputs; batch norm runs in eval mode (its running statistics).

Reverse-complement averaging (``rc_average=True``, Kipoi's DeepSEA predict model) averages the probabilities of
the sequence and of its reverse complement. It is for prediction: DeepResolve analyses one strand's feature maps,
so run it on the single-strand model.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import ArgumentError, FileFormatError, MissingFileError
from .deepsea import feature_table
from .formats import sniff

#: The architectures :func:`load_architecture` knows.
ARCHITECTURES = ("deepsea", "beluga", "basset")

#: The layer whose input matches the paper's DeepSEA analysis (after the second max-pool, the input of the next
#: convolution), per architecture: ``resolve(model, PAPER_LAYERS[name], at="input", ...)``.
PAPER_LAYERS = {"deepsea": "conv3", "beluga": "conv5", "basset": "conv3"}

#: DeepSEA's 919 outputs (cell, assay, treatment), shipped with the package.


class AlphabetOrder(nn.Module):
    """Reorder the channels of A, C, G, T one-hot input (N, 4, L) into the order a port was trained on."""

    def __init__(self, order: str):
        super().__init__()
        if sorted(order) != sorted("ACGT"):
            raise ArgumentError(f"order: expected a permutation of 'ACGT'; got {order!r}")
        self.order = order
        self.index = ["ACGT".index(c) for c in order]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index]

    def extra_repr(self) -> str:
        return f"ACGT -> {self.order}"


class ReverseComplementAverage(nn.Module):
    """Average a model's outputs on a sequence and on its reverse complement (Kipoi's DeepSEA predict model).

    For A, C, G, T one-hot input (N, 4, L) the reverse complement is the input flipped along both the channel axis
    (A <-> T, C <-> G) and the length axis. The single-strand model is ``self.strand``.
    """

    def __init__(self, strand: nn.Module):
        super().__init__()
        self.strand = strand

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Halves summed as Kipoi's AverageRC does, so the result matches its float32 round-off.
        return self.strand(x) / 2 + self.strand(x.flip(1, 2)) / 2


@dataclass(frozen=True)
class _Port:
    """How one port's state dict maps onto the named model."""

    build: Callable[[], nn.Sequential]
    keys: dict[str, str]          # port module path -> layer name
    prefixes: tuple[str, ...]     # accepted prefixes of every key (the port's wrappers)
    conv_axis: int                # where the port's Conv2d weight has its extra size-1 axis
    length: int
    n_outputs: int


def _deepsea_layers() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("alphabet", AlphabetOrder("AGCT")),
        ("conv1", nn.Conv1d(4, 320, 8)), ("thresh1", nn.Threshold(0, 1e-6)), ("pool1", nn.MaxPool1d(4, 4)),
        ("drop1", nn.Dropout(0.2)),
        ("conv2", nn.Conv1d(320, 480, 8)), ("thresh2", nn.Threshold(0, 1e-6)), ("pool2", nn.MaxPool1d(4, 4)),
        ("drop2", nn.Dropout(0.2)),
        ("conv3", nn.Conv1d(480, 960, 8)), ("thresh3", nn.Threshold(0, 1e-6)), ("drop3", nn.Dropout(0.5)),
        ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(50880, 925)), ("thresh4", nn.Threshold(0, 1e-6)),
        ("dense2", nn.Linear(925, 919)), ("sigmoid", nn.Sigmoid()),
    ]))


def _beluga_layers() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("alphabet", AlphabetOrder("AGCT")),
        ("conv1", nn.Conv1d(4, 320, 8)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv1d(320, 320, 8)), ("relu2", nn.ReLU()), ("drop1", nn.Dropout(0.2)),
        ("pool1", nn.MaxPool1d(4, 4)),
        ("conv3", nn.Conv1d(320, 480, 8)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv1d(480, 480, 8)), ("relu4", nn.ReLU()), ("drop2", nn.Dropout(0.2)),
        ("pool2", nn.MaxPool1d(4, 4)),
        ("conv5", nn.Conv1d(480, 640, 8)), ("relu5", nn.ReLU()),
        ("conv6", nn.Conv1d(640, 640, 8)), ("relu6", nn.ReLU()), ("drop3", nn.Dropout(0.5)),
        ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(67840, 2003)), ("relu7", nn.ReLU()),
        ("dense2", nn.Linear(2003, 2002)), ("sigmoid", nn.Sigmoid()),
    ]))


def _basset_layers() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv1d(4, 300, 19)), ("bn1", nn.BatchNorm1d(300)),
        ("relu1", nn.ReLU()), ("pool1", nn.MaxPool1d(3, 3)),
        ("conv2", nn.Conv1d(300, 200, 11)), ("bn2", nn.BatchNorm1d(200)),
        ("relu2", nn.ReLU()), ("pool2", nn.MaxPool1d(4, 4)),
        ("conv3", nn.Conv1d(200, 200, 7)), ("bn3", nn.BatchNorm1d(200)),
        ("relu3", nn.ReLU()), ("pool3", nn.MaxPool1d(4, 4)),
        ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(2000, 1000)), ("bn4", nn.BatchNorm1d(1000)),
        ("relu4", nn.ReLU()), ("drop1", nn.Dropout(0.3)),
        ("dense2", nn.Linear(1000, 1000)), ("bn5", nn.BatchNorm1d(1000)),
        ("relu5", nn.ReLU()), ("drop2", nn.Dropout(0.3)),
        ("dense3", nn.Linear(1000, 164)), ("sigmoid", nn.Sigmoid()),
    ]))


_PORTS = {
    "deepsea": _Port(_deepsea_layers, {"0": "conv1", "4": "conv2", "8": "conv3", "12.1": "dense1", "14.1": "dense2"},
                     prefixes=("", "2.", "1."), conv_axis=2, length=1000, n_outputs=919),
    "beluga": _Port(_beluga_layers, {"model.0.0": "conv1", "model.0.2": "conv2", "model.0.6": "conv3",
                                     "model.0.8": "conv4", "model.0.12": "conv5", "model.0.14": "conv6",
                                     "model.1.2.1": "dense1", "model.1.4.1": "dense2"},
                    prefixes=("",), conv_axis=2, length=2000, n_outputs=2002),
    "basset": _Port(_basset_layers, {"0": "conv1", "1": "bn1", "4": "conv2", "5": "bn2", "8": "conv3", "9": "bn3",
                                     "13.1": "dense1", "14": "bn4", "17.1": "dense2", "18": "bn5", "21.1": "dense3"},
                    prefixes=("",), conv_axis=3, length=600, n_outputs=164),
}


def _check_architecture(architecture: str) -> _Port:
    if not isinstance(architecture, str) or architecture.lower() not in _PORTS:
        raise ArgumentError(f"architecture: expected one of {list(ARCHITECTURES)}, got {architecture!r}")
    return _PORTS[architecture.lower()]


def build_architecture(architecture: str) -> nn.Sequential:
    """The named single-strand model of a port, with freshly initialised weights, in eval mode.

    See :func:`deepsea`, :func:`beluga` and :func:`basset` for the layers.
    """
    port = _check_architecture(architecture)
    model = port.build().eval()
    model.architecture, model.input_length = architecture.lower(), port.length
    return model


def deepsea() -> nn.Sequential:
    """DeepSEA as ported by Kipoi, on (N, 4, 1000) A, C, G, T one-hot; 919 outputs.

    alphabet (A, G, C, T) -> conv1 320 (8) -> thresh1 -> pool1 (4) -> drop1 -> conv2 480 (8) -> thresh2 -> pool2 (4)
    -> drop2 -> conv3 960 (8) -> thresh3 -> drop3 -> flatten (960 x 53 = 50880) -> dense1 925 -> thresh4 ->
    dense2 919 -> sigmoid. ``thresh`` is ``Threshold(0, 1e-6)``, the port's ReLU.

    The paper's layer is the input of the third convolution: ``resolve(model, "conv3", at="input", ...)``,
    a 480 x 60 feature map.
    """
    return build_architecture("deepsea")


def beluga() -> nn.Sequential:
    """Beluga (ExPecto's DeepSEA successor), on (N, 4, 2000) A, C, G, T one-hot; 2002 outputs.

    alphabet (A, G, C, T) -> conv1 320 -> conv2 320 -> drop1 -> pool1 (4) -> conv3 480 -> conv4 480 -> drop2 ->
    pool2 (4) -> conv5 640 -> conv6 640 -> drop3 -> flatten (640 x 106 = 67840) -> dense1 2003 -> dense2 2002 ->
    sigmoid; every convolution has width 8 and a ReLU.

    The layer that matches the paper's DeepSEA choice (after the second max-pool, the input of the next
    convolution) is the input of ``conv5``: ``resolve(model, "conv5", at="input", ...)``, 480 x 120. The input of
    the third convolution (``conv3``, at="input") is 320 x 496: 2002 classes x 10 restarts of it are 12.7 GB.
    """
    return build_architecture("beluga")


def basset() -> nn.Sequential:
    """Basset as ported by Kipoi, on (N, 4, 600) A, C, G, T one-hot; 164 outputs.

    conv1 300 (19) -> bn1 -> relu1 -> pool1 (3) -> conv2 200 (11) -> bn2 -> relu2 -> pool2 (4) -> conv3 200 (7) ->
    bn3 -> relu3 -> pool3 (4) -> flatten (200 x 10 = 2000) -> dense1 1000 -> bn4 -> relu4 -> drop1 -> dense2 1000
    -> bn5 -> relu5 -> drop2 -> dense3 164 -> sigmoid. Batch norm uses its running statistics (eval mode).

    The layer that matches the paper's DeepSEA choice (after the second max-pool, the input of the third
    convolution) is ``resolve(model, "conv3", at="input", ...)``, 200 x 46.
    """
    return build_architecture("basset")


def _read_state_dict(path: Path, architecture: str) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise MissingFileError(f"{architecture} weights: {str(path)!r} does not exist")
    if sniff(path) == "torchscript":
        raise FileFormatError(f"{architecture} weights: expected the port's state dict (torch.save(model."
                              f"state_dict())), got the TorchScript model {str(path)!r}; load it without "
                              f"--architecture")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickled whole model or not a torch file at all: say what is needed
        raise FileFormatError(f"{architecture} weights: {str(path)!r} is not a torch state-dict file readable with "
                         f"torch.load(weights_only=True) ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                         f"save the port's model.state_dict()") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FileFormatError(f"{architecture} weights: {str(path)!r} holds a {type(state).__name__}, "
                         f"expected a state dict (parameter name -> tensor)")
    return state


def _expected(port: _Port, model: nn.Sequential) -> dict[str, tuple[str, torch.Size]]:
    """Port key -> (our key, the shape the port stores), for every tensor of the named model."""
    modules = dict(model.named_children())
    out = {}
    for port_path, name in port.keys.items():
        module = modules[name]
        for key, value in module.state_dict().items():
            shape = value.shape
            if isinstance(module, nn.Conv1d) and key == "weight":
                shape = torch.Size([*shape[:port.conv_axis], 1, *shape[port.conv_axis:]])
            out[f"{port_path}.{key}"] = (f"{name}.{key}", shape)
    return out


def _describe(shape: torch.Size) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def load_architecture(path: str | Path, architecture: str, *, rc_average: bool = False,
                      features: str | Path | None = None) -> nn.Module:
    """Load a published port's weight file as a model on (N, 4, L) A, C, G, T one-hot.

    Parameters
    ----------
    path : str or Path
        A torch state-dict file of the port (``torch.save(port.state_dict(), path)``), bare or under a
        ``"state_dict"`` key: Kipoi's ``deepsea_cpu.pth`` (or its predict model's, keys prefixed ``2.``), ExPecto's
        Beluga ``deepsea.beluga.pth``, Kipoi's Basset ``pretrained_model_reloaded_th.pth``.
    architecture : {"deepsea", "beluga", "basset"}
    rc_average : bool
        Average the probabilities of each sequence and its reverse complement (Kipoi's DeepSEA predict model).
        The single-strand model is then ``model.strand``; DeepResolve should analyse that one.
    features : path, optional
        DeepSEA only: a table of the 919 outputs (see :func:`deepsea_class_names`) whose names become
        ``model.class_names`` (e.g. DeepSEA's ``deepsea919_features.tsv``). Default: no names.

    Returns
    -------
    nn.Module in eval mode mapping (N, 4, L) to probabilities (N, C), with L = ``model.input_length``
    (1000, 2000 or 600) and attributes ``architecture``, ``input_length`` and, for DeepSEA, ``class_names``.
    Without ``rc_average`` it is the named ``nn.Sequential`` of :func:`deepsea` / :func:`beluga` / :func:`basset`.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The architecture is unknown, or the file is not a state dict of that port: the message names the first
        missing, unexpected or wrongly shaped key with the shape expected and the shape found.
    """
    port = _check_architecture(architecture)
    architecture = architecture.lower()
    if not isinstance(rc_average, bool):
        raise ArgumentError(f"rc_average: expected True or False, got {rc_average!r}")
    names = deepsea_class_names(features) if architecture == "deepsea" and features is not None else None
    if features is not None and architecture != "deepsea":
        raise ArgumentError(f"features names DeepSEA's 919 outputs; architecture is {architecture!r}")
    path = Path(path)
    state = _read_state_dict(path, architecture)

    # Built on the meta device: no time or memory spent initialising weights that the file replaces.
    with torch.device("meta"):
        model = port.build()
    expected = _expected(port, model)
    first = next(iter(expected))
    prefix = next((p for p in port.prefixes if p + first in state), None)
    where = f"{architecture} weights {str(path)!r}"
    if prefix is None:
        accepted = " or ".join(repr(p + first) for p in port.prefixes)
        raise FileFormatError(f"{where}: missing key {accepted} (Conv2d weight of shape "
                              f"{_describe(expected[first][1])}); the file's first keys are {list(state)[:6]}: is it "
                              f"a {architecture} port's state dict?")
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} if prefix else state

    mapped: dict[str, torch.Tensor] = {}
    for key, (ours, shape) in expected.items():
        if key not in state:
            if key.endswith("num_batches_tracked"):  # absent from files written before PyTorch 0.4.1
                mapped[ours] = torch.tensor(0)
                continue
            raise FileFormatError(f"{where}: missing key {prefix + key!r} (expected shape {_describe(shape)})")
        value = state[key]
        if value.shape != shape:
            raise FileFormatError(f"{where}: key {prefix + key!r} has shape {_describe(value.shape)}; "
                                  f"expected {_describe(shape)}")
        mapped[ours] = value.squeeze(port.conv_axis) if len(shape) == 4 else value
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise FileFormatError(f"{where}: unexpected key {prefix + unexpected[0]!r} ({len(unexpected)} unexpected "
                              f"in all); a {architecture} port has only {sorted(prefix + k for k in expected)[:4]}...")
    model.load_state_dict({k: v.float() for k, v in mapped.items()}, strict=True, assign=True)
    model.eval()
    model.architecture, model.input_length = architecture, port.length
    if names is not None:
        model.class_names = names
    if not rc_average:
        return model
    wrapped = ReverseComplementAverage(model).eval()
    wrapped.architecture, wrapped.input_length = architecture, port.length
    if names is not None:
        wrapped.class_names = names
    return wrapped


def deepsea_class_names(features: str | Path) -> list[str]:
    """Names of DeepSEA's 919 outputs, ``"<cell>|<assay>|<treatment>"`` in output order.

    Parameters
    ----------
    features : path
        A tab-separated table with columns index, cell, assay, treatment (see
        :func:`deepresolve.io.deepsea.feature_table`).

    Returns
    -------
    list of 919 str
    """
    table = feature_table(features)
    if len(table) != 919 or list(table.index) != list(range(919)):
        raise FileFormatError(f"features {str(features)!r} must list DeepSEA's 919 outputs with index 0..918; "
                         f"got {len(table)} rows")
    return table["name"].tolist()
