"""Every public entry point checks every argument before any work: tests generated from the declarations.

Each entry point (the functions of ``deepresolve.__all__``, ``Result.save`` and ``Result.load``) declares what each
parameter accepts (``func.__parameters__``, :func:`deepresolve._checks.declare`). From the declarations:

- every parameter has one (a new parameter without one fails here), and the defaults pass it;
- every wrong value a declaration gives (:meth:`~deepresolve._checks.Spec.bad_values`: a wrong type, out of range)
  and every wrong path (:meth:`~deepresolve._checks.Spec.bad_paths`: missing, a folder, unreadable, a file where a
  folder goes, under a file) raises its exception with a one-line message starting as declared;
- every file that is read, given with corrupt content, raises a FileFormatError naming the argument or the file;
- a misspelt keyword is refused with the nearest name, a missing argument with what it expects;

and none of them writes anything (output locations stay absent) or runs the model.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.errors import ArgumentError, DeepResolveError, FileFormatError
from deepresolve.motifs import match_channels
from deepresolve.results import Result
from tests._factories import layer, make_result, write_keras

#: The public entry points, by the name a user calls them.
ENTRY_POINTS: dict[str, Callable] = {
    **{name: getattr(dr, name) for name in dr.__all__ if inspect.isfunction(getattr(dr, name))},
    "Result.save": Result.save, "Result.load": Result.load, "match_channels": match_channels,
}

#: Entry points whose module does not declare its parameters yet: their enumeration is expected to fail (strict, so
#: that declaring them makes this set shrink).
UNDECLARED: set[str] = set()

DECLARED = {name: func for name, func in ENTRY_POINTS.items() if hasattr(func, "__parameters__")}


def _ran(module: nn.Module, inputs: tuple) -> None:
    raise AssertionError("the model ran before every argument was checked")


class Inputs:
    """Valid arguments, made on demand in ``folder``: a few-parameter Conv1d net on (4, 20), a small result, files."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(exist_ok=True)

    @staticmethod
    def model(untouchable: bool = True) -> nn.Module:
        """Layers "0" conv (2, 18), "1" ReLU, "2" pool (2, 1), "3" flatten, "4" linear: 2 outputs. Untouchable: it
        fails when run (its copies too), so a check that comes after any work fails the test."""
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv1d(4, 2, 3), nn.ReLU(), nn.MaxPool1d(18), nn.Flatten(), nn.Linear(2, 2))
        if untouchable:
            model[0].register_forward_pre_hook(_ran)
        return model

    @staticmethod
    def head() -> nn.Module:
        head = nn.Sequential(nn.MaxPool1d(18), nn.Flatten(), nn.Linear(2, 2))
        head[0].register_forward_pre_hook(_ran)
        return head

    @staticmethod
    def onehot(n: int = 3) -> np.ndarray:
        return np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(0, 4, (n, 20))].transpose(0, 2, 1)

    @staticmethod
    def result() -> Result:
        return make_result(C=2, T=3, K=2, W=3, S=5)

    @staticmethod
    def pwms() -> list[np.ndarray]:
        return list(np.random.default_rng(0).dirichlet(np.ones(4), size=(3, 6)).transpose(0, 2, 1))

    def result_file(self) -> Path:
        return self.result().save(self.folder / "result.h5")

    def torchscript(self) -> Path:
        path = self.folder / "model.pt"
        torch.jit.script(self.model(untouchable=False).eval()).save(str(path))
        return path

    def keras(self) -> Path:
        rng = np.random.default_rng(0)
        layers = [layer("Convolution1D", "c", nb_filter=2, filter_length=3, border_mode="valid", activation="relu",
                        batch_input_shape=[None, 10, 4]),
                  layer("Flatten", "f"), layer("Dense", "d", output_dim=1, activation="sigmoid")]
        weights = {"c": [rng.normal(size=(3, 1, 4, 2)), np.zeros(2)], "d": [rng.normal(size=(16, 1)), np.zeros(1)]}
        return write_keras(self.folder / "keras", layers, weights) / "model.json"


#: A valid call of every entry point: (positional, keyword) arguments from the inputs and the output folder ``out``
#: (which must stay absent).
BASE: dict[str, Callable[[Inputs, Path], tuple[tuple, dict]]] = {
    "resolve": lambda i, out: ((i.model(), "1"), dict(input_shape=(4, 20), restarts=2, steps=5, device="cpu",
                                                     checkpoint=out / "ck")),
    "interactions": lambda i, out: ((i.model(), "1"), dict(input_shape=(4, 20), contexts=2, backgrounds=2, top=2,
                                                           motif_words="filters", device="cpu")),
    "marginal_interactions": lambda i, out: ((i.model(), ["ACG", "TTA"]), dict(input_shape=(4, 20), contexts=2,
                                                                                device="cpu")),
    "shapley_interactions": lambda i, out: ((i.model(), ["ACG", "TTA"]), dict(input_shape=(4, 20), contexts=2,
                                                                               device="cpu")),
    "feature_ascent": lambda i, out: ((i.head(), (2, 18), [0, 1]), dict(restarts=2, steps=5, device="cpu")),
    "list_layers": lambda i, out: ((i.model(), (4, 20)), {}),
    "split_model": lambda i, out: ((i.model(), "1"), dict(input_shape=(4, 20))),
    "summarize": lambda i, out: ((np.ones((2, 3, 2, 4)), np.ones((2, 3))), {}),
    "summarize_fivs": lambda i, out: ((np.ones((2, 3, 2)), np.ones((2, 3))), {}),
    "class_similarity": lambda i, out: ((i.result(),), {}),
    "ofiv_correlation": lambda i, out: ((i.result(),), {}),
    "class_difference": lambda i, out: ((i.result(), 0, 1), {}),
    "cluster_classes": lambda i, out: ((np.eye(2),), {}),
    "label_correlation": lambda i, out: ((np.ones((5, 2)),), {}),
    "weight_cosine": lambda i, out: ((i.model(),), {}),
    "channel_motifs": lambda i, out: ((i.model(), "1", i.onehot()), dict(restarts=1, steps=1)),
    "deepmotif": lambda i, out: ((i.model(),), dict(length=20, n_starts=2, n_best=1, steps=1, width=5)),
    "filter_pwms": lambda i, out: ((i.model(),), {}),
    "jaspar_motifs": lambda i, out: ((), {}),
    "tomtom_matches": lambda i, out: ((i.pwms()[:1], dict(zip("abc", i.pwms()))), {}),
    "match_channels": lambda i, out: ((i.model(), out / "motifs"), dict(n_matches=1)),
    "write_report": lambda i, out: ((i.result(), out / "report.html"), {}),
    "load": lambda i, out: ((i.result_file(),), {}),
    "Result.load": lambda i, out: ((i.result_file(),), {}),
    "Result.save": lambda i, out: ((i.result(), out / "result.h5"), {}),
    "load_model": lambda i, out: ((i.torchscript(),), {}),
    "load_keras": lambda i, out: ((i.keras(),), {}),
}

#: The files each file parameter reads, with corrupt content: (file name, content, keyword arguments to change
#: besides it, how the message starts: "{path}" is the file's path). None: not read with the other arguments valid.
CORRUPT: dict[tuple[str, str], tuple[str, bytes, dict, str] | None] = {
    ("load", "path"): ("result.h5", b"not HDF5", {}, "result file '{path}'"),
    ("Result.load", "path"): ("result.h5", b"not HDF5", {}, "result file '{path}'"),
    ("load_model", "source"): ("model.bin", b"not a model", {}, "model '{path}'"),
    ("load_model", "weights"): ("weights.pt", b"not a state dict", {"source": "torch.nn:Identity"}, "weights '{path}'"),
    ("load_model", "features"): None,  # read only with architecture= and its 919-output port's weights
    # a Keras file's messages name the file (and the layer) they could not read
    ("load_keras", "path"): ("model.h5", b"not HDF5", {}, "'{path}'"),
    ("load_keras", "weights"): ("weights.h5", b"not HDF5", {}, "'{path}'"),
}


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def _arguments(entry: str, tmp_path: Path) -> dict[str, Any]:
    """The valid call of ``entry`` as keyword arguments (the ``**kwargs`` of a function under its own name)."""
    func = ENTRY_POINTS[entry]
    args, kwargs = BASE[entry](Inputs(tmp_path / "in"), tmp_path / "out")
    return dict(inspect.signature(func).bind_partial(*args, **kwargs).arguments)


def _refused(entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: dict[str, Any],
             error: type[Exception]) -> str:
    """Call ``entry`` with ``arguments``; it must raise ``error`` with one line and write nothing. The message."""
    func = ENTRY_POINTS[entry]
    extra = next((n for n, p in inspect.signature(func).parameters.items() if p.kind is p.VAR_KEYWORD), None)
    kwargs = {**{k: v for k, v in arguments.items() if k != extra}, **arguments.get(extra, {})}
    (tmp_path / "cwd").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path / "cwd")
    before = _files(tmp_path)
    with pytest.raises(error) as caught:
        func(**kwargs)
    message = str(caught.value)
    assert "\n" not in message, message
    assert _files(tmp_path) == before, "something was written"
    assert not (tmp_path / "out").exists()
    return message


# ----------------------------------------------------------------------------------------------------------------
# The declarations themselves


@pytest.mark.parametrize("entry", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="its module declares no parameters"))
    if name in UNDECLARED else name for name in ENTRY_POINTS])
def test_every_parameter_is_declared(entry):
    func = ENTRY_POINTS[entry]
    params = [name for name in inspect.signature(func).parameters if name != "self"]
    assert set(getattr(func, "__parameters__", {})) == set(params)


def test_every_entry_point_has_a_valid_call_and_its_files_a_corrupt_one():
    assert set(BASE) == set(ENTRY_POINTS)
    read = {(entry, name) for entry, func in DECLARED.items() for name, spec in func.__parameters__.items()
            if any(bad.kind == "missing" for bad in _bad_paths(spec, name))}
    assert read <= set(CORRUPT), "a file parameter without a corrupt file"
    assert {key for key in CORRUPT if key[0] in DECLARED} <= read


@pytest.mark.parametrize("entry, name", [(e, n) for e, f in DECLARED.items() for n in f.__parameters__])
def test_defaults_pass_their_declarations(entry, name):
    func = ENTRY_POINTS[entry]
    param = inspect.signature(func).parameters[name]
    if param.default is not param.empty:
        func.__parameters__[name].check(param.default, name)


# ----------------------------------------------------------------------------------------------------------------
# Wrong values, wrong paths, corrupt files: generated


def _bad_paths(spec, name: str) -> list:
    """The wrong paths ``spec`` declares, made in a scratch folder (for their kinds and messages)."""
    with tempfile.TemporaryDirectory() as scratch:
        return spec.bad_paths(name, Path(scratch))


VALUE_CASES = [pytest.param(entry, name, bad, id=f"{entry}-{name}-{bad.kind}-{i}")
               for entry, func in DECLARED.items() for name, spec in func.__parameters__.items()
               for i, bad in enumerate(spec.bad_values(name))]
PATH_CASES = [pytest.param(entry, name, i, id=f"{entry}-{name}-{bad.kind}")
              for entry, func in DECLARED.items() for name, spec in func.__parameters__.items()
              for i, bad in enumerate(_bad_paths(spec, name))]


@pytest.mark.parametrize("entry, name, bad", VALUE_CASES)
def test_a_wrong_value_is_refused_before_any_work(entry, name, bad, tmp_path, monkeypatch):
    arguments = _arguments(entry, tmp_path)
    if isinstance(bad.value, dict) and inspect.signature(ENTRY_POINTS[entry]).parameters[name].kind is \
            inspect.Parameter.VAR_KEYWORD:
        arguments[name] = {**arguments.get(name, {}), **bad.value}
    else:
        arguments[name] = bad.value
    message = _refused(entry, tmp_path, monkeypatch, arguments, bad.error)
    assert message.startswith(bad.message), message


@pytest.mark.parametrize("entry, name, index", PATH_CASES)
def test_a_wrong_path_is_refused_before_any_work(entry, name, index, tmp_path, monkeypatch):
    (tmp_path / "bad").mkdir()
    bad = ENTRY_POINTS[entry].__parameters__[name].bad_paths(name, tmp_path / "bad")[index]
    if bad.kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    arguments = _arguments(entry, tmp_path)
    arguments[name] = bad.value
    message = _refused(entry, tmp_path, monkeypatch, arguments, bad.error)
    assert message.startswith(bad.message), message


@pytest.mark.parametrize("entry, name", [pytest.param(*key, id="-".join(key)) for key, case in CORRUPT.items()
                                         if case is not None and key[0] in DECLARED])
def test_a_corrupt_file_is_refused_by_name(entry, name, tmp_path, monkeypatch):
    file_name, content, changes, start = CORRUPT[entry, name]
    (tmp_path / "bad").mkdir()
    path = tmp_path / "bad" / file_name
    path.write_bytes(content)
    arguments = {**_arguments(entry, tmp_path), **changes, name: path}
    message = _refused(entry, tmp_path, monkeypatch, arguments, FileFormatError)
    assert message.startswith(start.format(path=path)), message


# ----------------------------------------------------------------------------------------------------------------
# Keywords


def _named(entry: str) -> list[str]:
    return [name for name, p in inspect.signature(ENTRY_POINTS[entry]).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize("entry", DECLARED)
def test_a_misspelt_keyword_names_the_nearest(entry, tmp_path, monkeypatch):
    name = _named(entry)[-1]
    arguments = _arguments(entry, tmp_path)
    arguments[name + name[-1]] = arguments.pop(name, None)
    message = _refused(entry, tmp_path, monkeypatch, arguments, ArgumentError)
    assert message.startswith(name + name[-1]) and f"did you mean {name}?" in message, message


@pytest.mark.parametrize("entry, name", [(e, n) for e in DECLARED for n in _named(e)
                                         if inspect.signature(ENTRY_POINTS[e]).parameters[n].default
                                         is inspect.Parameter.empty])
def test_a_missing_argument_says_what_it_expects(entry, name, tmp_path, monkeypatch):
    arguments = _arguments(entry, tmp_path)
    del arguments[name]
    message = _refused(entry, tmp_path, monkeypatch, arguments, ArgumentError)
    assert message.startswith(f"{name}: expected {ENTRY_POINTS[entry].__parameters__[name].describe()}"), message


def test_an_unreadable_file_is_refused_by_name(tmp_path, monkeypatch):
    """The permission check itself, also where the tests run as root (which reads any file)."""
    from deepresolve import _checks

    path = tmp_path / "result.h5"
    Inputs(tmp_path).result().save(path)
    monkeypatch.setattr(_checks.os, "access", lambda p, mode: Path(p) != path)
    with pytest.raises(DeepResolveError, match=r"^result file: expected a file this process can read, got '.*"
                                               r"result\.h5' \(permission denied\)$"):
        dr.load(path)
