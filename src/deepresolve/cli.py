"""Command-line interface: ``deepresolve layers|run|interactions|demo|motifs|report``.

A user's mistake (a :class:`~deepresolve.errors.DeepResolveError`) is printed as one line on stderr with exit status 2;
``deepresolve --debug ...`` shows its traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import errno
import importlib
import json
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from .ascent import ASCENT_OPTIONS
from .errors import ArgumentError, DeepResolveError, MissingFileError
from .regularization import POLICIES

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="DeepResolve: which learned features drive each output of a genomic CNN, which "
                       "interact non-additively, and which outputs share features - computed inside the "
                       "network, no data needed.")
console = Console()


@app.callback()
def _global_options(debug: bool = typer.Option(False, "--debug",
                                               help="Show the traceback of an error (put it before the command: "
                                                    "deepresolve --debug run ...).")) -> None:
    """DeepResolve: which learned features drive each output of a genomic CNN, which interact non-additively, and
    which outputs share features - computed inside the network, no data needed."""


def main(argv: Sequence[str] | None = None) -> None:
    """The ``deepresolve`` program: runs :data:`app`, turning a user's mistake into one line and exit status 2.

    One line on stderr and exit status 2 for: a :class:`~deepresolve.errors.DeepResolveError`, a command-line usage
    error (bad option value, unknown option, missing argument), and a file-system fault while writing (disk full,
    file too large, permission denied, read-only file system). ``--debug`` shows the traceback instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: args.index("--") if "--" in args else len(args)]
    try:
        code = app(args=args, prog_name="deepresolve", standalone_mode=False)
    except typer.Abort:
        print("deepresolve: aborted", file=sys.stderr)
        sys.exit(130)
    except _usage.UsageError as err:
        if debug:
            raise
        _fail(usage_line(err, args))
    except DeepResolveError as err:
        if debug:
            raise
        _fail(as_option(str(err), args))
    except OSError as err:
        if debug or err.errno not in _WRITE_FAULTS:
            raise
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err} while writing; free some space or choose another --out, then run the "
              "same command again (a run resumes where it stopped)")
    sys.exit(code if isinstance(code, int) else 0)


# typer re-exports click's BadParameter; its module (click's, or the copy of click that newer typer carries) holds
# the other usage errors.
_usage = importlib.import_module(typer.BadParameter.__module__)

#: File-system faults that are the user's to fix (not bugs): disk full, quota, file too large, permissions.
_WRITE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS}

#: Option types in words, by annotation (typer) or click type name.
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", Path: "a path", "integer": "an integer",
               "float": "a number", "boolean": "true or false", "path": "a path"}


def usage_line(err: Exception, args: Sequence[str]) -> str:
    """A command-line usage error as one line in the package's format: ``<option>: expected <what>, got <value>``."""
    param = getattr(err, "param", None)
    opts = list(getattr(param, "opts", None) or [])
    if isinstance(err, _usage.MissingParameter) and param is not None:
        name = opts[0] if opts and opts[0].startswith("-") else str(getattr(param, "name", "argument")).upper()
        return f"{name}: expected a value, got none (see --help)"
    if isinstance(err, _usage.BadParameter) and param is not None:
        name = opts[0] if opts else str(getattr(param, "name", "argument")).upper()
        given = None  # the last occurrence wins, as in the parser
        for i, a in enumerate(args):
            if a in opts and i + 1 < len(args):
                given = args[i + 1]
            elif any(a.startswith(o + "=") for o in opts):
                given = a.split("=", 1)[1]
        expected = _expected(param)
        if given is not None and expected:
            return f"{name}: expected {expected}, got {given!r}"
        return f"{name}: {' '.join(err.format_message().split())}"
    if isinstance(err, _usage.NoSuchOption):
        close = difflib.get_close_matches(err.option_name, err.possibilities or [], n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see --help for the options"
        return f"{err.option_name}: expected an option of this command, got an unknown option{hint}"
    return " ".join(err.format_message().split())


def _expected(param: object) -> str | None:
    """What an option takes, in words, from its annotation (typer) or its click type."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:  # older typer: a click parameter type
        annotation = getattr(getattr(param, "type", None), "name", None)
    return _TYPE_NAMES.get(annotation)

def as_option(message: str, args: Sequence[str]) -> str:
    """A library message that starts with a keyword argument's name (``"seed: ..."``) names the command's option
    instead (``"--seed: ..."``), so the user reads what they typed."""
    name, sep, rest = message.partition(":")
    if not sep or not name.isidentifier():
        return message
    from typer.main import get_command

    commands = getattr(get_command(app), "commands", {})
    command = next((commands[a] for a in args if a in commands), None)
    option = "--" + name.replace("_", "-")
    if command is not None and any(option in (getattr(p, "opts", None) or []) for p in command.params):
        return option + sep + rest
    return message


def _fail(message: str) -> None:
    print(f"deepresolve: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)

MODEL_HELP = ("The model: a TorchScript file (.pt/.ts), a Keras model (1.x folder or .json with its .h5, a Keras 2 "
              "model.h5, a Keras 0.x .json), an ONNX file, a published port's state dict with --architecture, or "
              "'package.module:factory' (a function returning an nn.Module) with --weights.")

# Options that several commands share (one definition each).
MODEL_ARGUMENT = typer.Argument(..., help=MODEL_HELP)
LAYER_OPTION = typer.Option(..., help="Layer name (see `deepresolve layers`).")
INPUT_SHAPE_OPTION = typer.Option(None, "--input-shape", help="Input shape without the batch axis, e.g. 4,1000 "
                                   "(default: the shape the model file records, e.g. a Keras file's).")
WEIGHTS_OPTION = typer.Option(None, help="State-dict file for a 'module:factory' model.")
ARCHITECTURE_OPTION = typer.Option(None, help="MODEL is a published port's state dict: deepsea (Kipoi "
                                              "deepsea_cpu.pth), beluga or basset.")
AT_OPTION = typer.Option("output", help="Analyse the layer's 'output' or its 'input'.")
CLASSES_OPTION = typer.Option(None, help="Outputs to explain, e.g. 0,3,10-12 (default: all).")
CLASS_NAMES_OPTION = typer.Option(None, help="Text file, one output name per line.")
OUTPUT_OPTION = typer.Option(None, "--output", help="What to score when the model returns a tuple, a dict or a "
                             "profile: 1 (a tuple index), counts (a key), 0:logsumexp, 0:sum:200, 0:bpnet (a "
                             "profile reduced over its positions).")
CHANNELS_LAST_OPTION = typer.Option(False, "--channels-last", help="The model takes (N, L, 4) sequences.")
FIXED_INPUT_OPTION = typer.Option(None, "--fixed-input", help="NAME=FILE.npy: a constant forward argument, "
                                  "without the batch axis (e.g. X_ctl=zeros.npy), or a Keras model's input held "
                                  "constant, in its Keras shape; repeat for several.")
RC_INPUT_OPTION = typer.Option(None, "--reverse-complement-input", help="A Keras model's input that takes the "
                               "sequence's reverse complement (DeepMEL: the second input); repeat for several.")
FACTORY_KWARGS_OPTION = typer.Option(None, "--factory-kwargs", help="JSON keyword arguments for a "
                                     "'package.module:factory' model, e.g. '{\"n_filters\": 64}'.")
TRUST_PICKLE_OPTION = typer.Option(False, "--trust-pickle", help="Load a whole pickled module (runs arbitrary code "
                                   "from the file: only for files you trust).")
DEVICE_OPTION = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: CUDA when available).")
WORKERS_OPTION = typer.Option(None, help="Compute on a Dask cluster of N worker processes started on the local "
                                         "machine (they share its cores).")
SCHEDULER_OPTION = typer.Option(None, help="Compute on a running Dask cluster, e.g. tcp://host:8786 (see the README, "
                                           "'More than one machine').")


def _ascent_help(name: str) -> str:
    """The help of an ascent option, from its entry in deepresolve.ascent.ASCENT_OPTIONS."""
    text = ASCENT_OPTIONS[name].describe()
    return text[0].upper() + text[1:]


def parse_shape(text: str) -> tuple[int, ...]:
    """'4,1000' -> (4, 1000); every size given (``4x``, ``4,,1000`` are refused)."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(v) for v in parts)
    except ValueError:
        shape = ()
    if not shape or any(v <= 0 for v in shape):
        raise ArgumentError(f"--input-shape: expected positive sizes separated by commas, e.g. 4,1000, got {text!r}")
    return shape


def parse_classes(text: str | None, n_outputs: int) -> list[int] | None:
    """'0,3,10-12' -> [0, 3, 10, 11, 12], each checked against ``n_outputs`` before any list is built; None -> all."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    spans: list[tuple[int, int]] = []
    for part in (p.strip() for p in text.split(",")):
        lo, sep, hi = part.partition("-") if "-" in part[1:] else (part, "", part)
        try:
            span = (int(lo), int(hi))
        except ValueError:
            raise ArgumentError(f"--classes: expected output indices and ranges like 0,3,10-12, got {text!r}") from None
        if span[0] > span[1]:
            raise ArgumentError(f"--classes: expected ranges that run upwards (low-high), got {part!r}")
        if span[0] < 0 or span[1] >= n_outputs:
            raise ArgumentError(f"--classes: expected output indices in 0-{n_outputs - 1} (the model has {n_outputs} "
                                f"outputs), got {part!r}")
        spans.append(span)
    return [c for lo, hi in spans for c in range(lo, hi + 1)]


def _out_folder(out: Path, option: str = "--out") -> Path:
    """``out`` checked without touching the disk: not a file, not under a file. :func:`_output` creates it."""
    from ._checks import OutputFolder

    return OutputFolder(label=option).check(out, option)


@contextmanager
def _output(out: Path, option: str = "--out") -> Iterator[Path]:
    """The output folder created now, before any work (so an unwritable one costs nothing), and held by this run
    alone: a second command on the same folder is refused while this one runs. Removed again if nothing was written."""
    from ._files import exclusive

    with exclusive(_out_folder(out, option), option) as folder:
        yield folder


def _lines(path: Path | None, option: str) -> list[str] | None:
    """The non-empty lines of a text file named by ``option``."""
    from .io.tables import read_names

    if path is None:
        return None
    if not path.exists():
        raise MissingFileError(f"{option}: expected a text file, got {str(path)!r}, which does not exist")
    return read_names(path, option)


def _model(spec: str, weights: Path | None, architecture: str | None = None, factory_kwargs: str | None = None,
           trust_pickle: bool = False, **keras: Any) -> torch.nn.Module:
    """The model; ``keras``: :func:`_keras_inputs` for a Keras file."""
    from .io.models import load_model

    kwargs = None
    if factory_kwargs is not None:
        try:
            kwargs = json.loads(factory_kwargs)
        except ValueError:
            kwargs = None
        if not isinstance(kwargs, dict):
            raise ArgumentError(f"--factory-kwargs: expected a JSON object such as '{{\"n_filters\": 64}}', got "
                                f"{factory_kwargs!r}")
    return load_model(spec, weights=weights, architecture=architecture, factory_kwargs=kwargs,
                      trust_pickle=trust_pickle, **keras)


def _keras_inputs(spec: str, architecture: str | None, adapters: dict, rc_input: list[str] | None,
                  input_shape: str | None) -> dict:
    """A Keras file's inputs are its loader's (:func:`~deepresolve.io.keras.load_keras`): ``--fixed-input`` values
    move from ``adapters`` to ``fixed_inputs``, ``--reverse-complement-input`` names the inputs that take the
    reverse complement, and ``--input-shape`` gives a length the file leaves open. Other models: ``{}``."""
    from .io.formats import KERAS_KINDS, sniff

    keras = architecture is None and Path(spec).exists() and sniff(Path(spec)) in KERAS_KINDS
    if not keras:
        if rc_input:
            raise ArgumentError(f"--reverse-complement-input: expected only for a Keras model file, got {spec!r}")
        return {}
    fixed, adapters["fixed_inputs"] = adapters["fixed_inputs"], None
    return {"fixed_inputs": fixed, "reverse_complement_inputs": rc_input or None,
            "input_shape": None if input_shape is None else parse_shape(input_shape)}


def _adapters(output: str | None, channels_last: bool, fixed_input: list[str] | None) -> dict:
    """``--output``, ``--channels-last`` and ``--fixed-input`` as the adapter arguments of the library."""
    from .io.sequences import load_inputs

    fixed = {}
    for item in fixed_input or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ArgumentError(f"--fixed-input: expected NAME=FILE.npy, got {item!r}")
        fixed[name] = torch.as_tensor(load_inputs(Path(path)), dtype=torch.float32)
    parsed: object = output
    if output is not None and output.lstrip("-").isdigit():
        parsed = int(output)  # a tuple index
    return {"output": parsed, "channels_last": channels_last, "fixed_inputs": fixed or None}


def _inputs(path: Path | None) -> np.ndarray | None:
    from .io.sequences import load_inputs

    return None if path is None else load_inputs(path)


def _consensus_words(path: Path) -> np.ndarray:
    """The motifs of a MEME file as one-hot consensus words (G, 4, w), each PWM column's most likely base; shorter
    motifs end in zero columns (which keep the background's bases), up to the longest."""
    from .motifs import read_meme

    pwms = list(read_meme(path).values())
    words = np.zeros((len(pwms), 4, max(p.shape[1] for p in pwms)), dtype=np.float32)
    for g, pwm in enumerate(pwms):
        words[g, pwm.argmax(0), np.arange(pwm.shape[1])] = 1.0
    return words


def _input_shape(text: str | None, net: torch.nn.Module) -> tuple[int, ...]:
    """``--input-shape`` as given (checked against the layout the model file records), or the recorded shape."""
    from .io.keras import check_input_shape

    if text is None:
        recorded = getattr(net, "input_shape", None)
        if recorded is None or any(v is None for v in recorded):
            raise ArgumentError("--input-shape: expected the model's input shape without the batch axis, e.g. 4,1000 "
                                "(the model file records none), got none")
        return tuple(int(v) for v in recorded)
    return check_input_shape(net, parse_shape(text), "--input-shape")


def _n_outputs(net: torch.nn.Module, shape: tuple[int, ...], adapters: dict) -> int:
    """The model's number of outputs, from one forward pass on zeros (which also checks that the shape fits)."""
    from ._model import forward
    from .split import adapt

    out = forward(adapt(net, **adapters), torch.zeros((1, *shape)), "the model")
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ArgumentError(f"MODEL: expected a model returning class scores of shape (N, C), got output "
                            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return int(out.shape[1])


def print_table(result, top: int = 5) -> None:
    """The per-class table of important and non-additive channels, as a rich table."""
    df = result.table(top)
    if "top pair" in df:  # one readable column instead of five
        df["top pair"] = [f"{r['top pair']} {r['pair interaction']:+.2g} ({r['pair kind']}, q={r['pair q-value']:.2g})"
                          if r["top pair"] else "" for _, r in df.iterrows()]
        df = df.drop(columns=["pair interaction", "pair p-value", "pair q-value", "pair kind"])
    table = Table(title=f"DeepResolve: layer {result.layer_label!r}, {result.n_restarts} restarts, "
                        f"lambda = {result.params.get('l2'):.3g}")
    for col in df.columns:
        table.add_column(col, overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)


@app.command()
def layers(model: str = MODEL_ARGUMENT,
           input_shape: Optional[str] = INPUT_SHAPE_OPTION,
           weights: Optional[Path] = WEIGHTS_OPTION,
           architecture: Optional[str] = ARCHITECTURE_OPTION,
           channels_last: bool = CHANNELS_LAST_OPTION,
           fixed_input: Optional[list[str]] = FIXED_INPUT_OPTION,
           reverse_complement_input: Optional[list[str]] = RC_INPUT_OPTION,
           factory_kwargs: Optional[str] = FACTORY_KWARGS_OPTION,
           trust_pickle: bool = TRUST_PICKLE_OPTION) -> None:
    """List the layers of a model with their output shapes, to choose --layer."""
    from .split import list_layers

    if input_shape is not None:
        parse_shape(input_shape)  # a malformed shape is refused before the model is loaded
    adapters = _adapters(None, channels_last, fixed_input)
    keras = _keras_inputs(model, architecture, adapters, reverse_complement_input, input_shape)
    if adapters["fixed_inputs"]:  # the layers of a PyTorch model are listed from its sequence input alone
        raise ArgumentError(f"--fixed-input: expected only for a Keras model file here, got {model!r}")
    net = _model(model, weights, architecture, factory_kwargs, trust_pickle, **keras)
    shape = _input_shape(input_shape, net)
    table = Table(title="layers (H = a layer's output; use --at input for its input)")
    for col in ("name", "type", "output shape (K, W...)"):
        table.add_column(col)
    for name, kind, output_shape in list_layers(net, input_shape=shape, channels_last=channels_last):
        table.add_row(name, kind, str(output_shape))
    console.print(table)


@app.command()
def run(model: str = MODEL_ARGUMENT,
        layer: str = LAYER_OPTION,
        input_shape: Optional[str] = INPUT_SHAPE_OPTION,
        out: Path = typer.Option(..., help="Output folder: result.h5, summary.tsv, channels.tsv."),
        weights: Optional[Path] = WEIGHTS_OPTION,
        architecture: Optional[str] = ARCHITECTURE_OPTION,
        output: Optional[str] = OUTPUT_OPTION,
        channels_last: bool = CHANNELS_LAST_OPTION,
        fixed_input: Optional[list[str]] = FIXED_INPUT_OPTION,
        reverse_complement_input: Optional[list[str]] = RC_INPUT_OPTION,
        factory_kwargs: Optional[str] = FACTORY_KWARGS_OPTION,
        trust_pickle: bool = TRUST_PICKLE_OPTION,
        replay_head: bool = typer.Option(False, "--replay-head", help="For a model no tracer can follow: rerun it "
                                         "with H in place of the layer's tensor (checked to depend on H alone)."),
        at: str = AT_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        restarts: int = typer.Option(ASCENT_OPTIONS["restarts"].default, help=_ascent_help("restarts")),
        l2: str = typer.Option("auto", help="lambda, or a policy: 'auto' (= 'reach'), 'gradient', 'prior' or "
                                           "'norm' (see deepresolve.regularization)."),
        optimizer: str = typer.Option(ASCENT_OPTIONS["optimizer"].default, help=_ascent_help("optimizer")),
        steps: Optional[int] = typer.Option(None, help=_ascent_help("steps")),
        tol: Optional[float] = typer.Option(None, help=_ascent_help("tol")),
        lr: Optional[float] = typer.Option(None, help=_ascent_help("lr")),
        inputs: Optional[Path] = typer.Option(None, help=".npy/.npz/FASTA of a few real inputs (the l2 policies use "
                                                         "them instead of random sequences; --l2-center mean)."),
        l2_center: Optional[str] = typer.Option(None, help="'mean': pull H toward the mean real feature map."),
        nonnegative: bool = typer.Option(ASCENT_OPTIONS["nonnegative"].default, help=_ascent_help("nonnegative")),
        precision: str = typer.Option(ASCENT_OPTIONS["precision"].default, help=_ascent_help("precision")),
        inconsistency: str = typer.Option("variance", help="IL: 'variance' (the paper) or 'sign' "
                                                          "(its sign-disagreement part)."),
        class_names: Optional[Path] = CLASS_NAMES_OPTION,
        seed: int = typer.Option(0, help="Drives every random choice (restarts, mixture fits, reference sequences)."),
        device: Optional[str] = DEVICE_OPTION,
        batch_size: Optional[int] = typer.Option(None, help=_ascent_help("batch_size")),
        checkpoint_every: float = typer.Option(5.0, help="Seconds between writes of finished rows to "
                                                         "OUT/checkpoint/."),
        keep_fims: bool = typer.Option(True, "--keep-fims/--no-keep-fims",
                                       help="Keep the FIMs in result.h5 (default). --no-keep-fims keeps only their "
                                            "FIVs in memory and in result.h5 (memory O(C T K), not O(C T K W)); the "
                                            "full maps then stay in OUT/checkpoint/ (chunk-*.npz: rows, fims)."),
        interactions: bool = typer.Option(False, "--interactions",
                                          help="Also measure feature interactions (random-context second differences, "
                                               "see `deepresolve interactions`); saved in result.h5, top pair per "
                                               "class in summary.tsv, every pair in interactions.tsv."),
        workers: Optional[int] = WORKERS_OPTION,
        scheduler: Optional[str] = SCHEDULER_OPTION,
        ) -> None:
    """Run DeepResolve on a model. Finished rows go to OUT/checkpoint/ as they come: after an interruption (even
    kill -9) the same command resumes; a run with another model or settings is refused."""
    from .pipeline import interactions_checkpoint, resolve
    from .results import channels_long, groups_long, pairs_long, write_tsv

    out = _out_folder(out)
    _check_cluster_options(workers, scheduler)
    if input_shape is not None:
        parse_shape(input_shape)  # a malformed shape is refused before the model is loaded
    l2_value: float | str = l2
    if l2 not in ("auto", *POLICIES):
        try:
            l2_value = float(l2)
        except ValueError:
            raise ArgumentError(f"--l2: expected a positive number or one of {', '.join(('auto', *POLICIES))}, "
                                f"got {l2!r}") from None
    names = _lines(class_names, "--class-names")
    inputs_array = _inputs(inputs)
    adapters = _adapters(output, channels_last, fixed_input)
    keras = _keras_inputs(model, architecture, adapters, reverse_complement_input, input_shape)
    net = _model(model, weights, architecture, factory_kwargs, trust_pickle, **keras)
    shape = _input_shape(input_shape, net)
    chosen = parse_classes(classes, _n_outputs(net, shape, adapters))
    names = names if names is not None else getattr(net, "output_names", None)
    with _output(out), _cluster(workers, scheduler) as client:
        result = resolve(net, layer, input_shape=shape, classes=chosen, restarts=restarts, l2=l2_value, steps=steps,
                         tol=tol, lr=lr, seed=seed, device=device, batch_size=batch_size, optimizer=optimizer, at=at,
                         precision=precision, inconsistency=inconsistency, nonnegative=nonnegative, l2_center=l2_center,
                         inputs=inputs_array, class_names=names, checkpoint=out / "checkpoint",
                         checkpoint_every=checkpoint_every, progress=True, interactions=interactions, client=client,
                         keep_fims=keep_fims, head="replay" if replay_head else None, **adapters)
        result.save(out / "result.h5")
        write_tsv(result.table(top=10), out / "summary.tsv")
        write_tsv(channels_long(result), out / "channels.tsv")
        written = ["result.h5", "summary.tsv", "channels.tsv"]
        if result.interactions is not None:
            write_tsv(pairs_long(result.interactions), out / "interactions.tsv")
            write_tsv(groups_long(result.interactions), out / "groups.tsv")
            written += ["interactions.tsv", "groups.tsv"]
        if keep_fims:  # the result holds every row now; without the FIMs, the store is where the maps are
            shutil.rmtree(out / "checkpoint", ignore_errors=True)
        else:
            shutil.rmtree(interactions_checkpoint(out / "checkpoint"), ignore_errors=True)
    print_table(result)
    console.print(f"wrote {', '.join(written)} to {out}")


def _check_cluster_options(workers: int | None, scheduler: str | None) -> None:
    """``--workers`` and ``--scheduler`` checked before anything is loaded or started."""
    if workers is not None and scheduler is not None:
        raise ArgumentError(f"--workers, --scheduler: expected at most one (--workers starts a local cluster, "
                            f"--scheduler uses a running one), got --workers {workers} and --scheduler {scheduler}")
    if workers is not None and workers < 1:
        raise ArgumentError(f"--workers: expected an integer >= 1, got {workers}")
    if scheduler is not None and not scheduler.strip():
        raise ArgumentError(f"--scheduler: expected an address such as tcp://host:8786, got {scheduler!r}")


@contextmanager
def _cluster(workers: int | None, scheduler: str | None) -> Iterator[object]:
    """A Dask client for ``--workers``/``--scheduler`` (closed, and a cluster it started stopped, on exit); None
    without either."""
    if workers is None and scheduler is None:
        yield None
        return
    from .distributed import connect

    try:
        client = connect(workers=workers, scheduler=scheduler)
    except ArgumentError as err:  # connect names its arguments as in Python; here they are options
        raise ArgumentError(f"--{err}") from None
    with client:
        yield client


@app.command("interactions")
def interactions_command(
        model: str = MODEL_ARGUMENT,
        layer: str = LAYER_OPTION,
        input_shape: Optional[str] = INPUT_SHAPE_OPTION,
        out: Path = typer.Option(..., help="Output folder: interactions.h5, interactions.tsv and groups.tsv (motif "
                                           "groups, their PWMs' consensus and JASPAR matches)."),
        weights: Optional[Path] = WEIGHTS_OPTION,
        architecture: Optional[str] = ARCHITECTURE_OPTION,
        output: Optional[str] = OUTPUT_OPTION,
        channels_last: bool = CHANNELS_LAST_OPTION,
        fixed_input: Optional[list[str]] = FIXED_INPUT_OPTION,
        reverse_complement_input: Optional[list[str]] = RC_INPUT_OPTION,
        factory_kwargs: Optional[str] = FACTORY_KWARGS_OPTION,
        trust_pickle: bool = TRUST_PICKLE_OPTION,
        at: str = AT_OPTION,
        classes: Optional[str] = CLASSES_OPTION,
        contexts: int = typer.Option(128, help="Random contexts every interaction is averaged over."),
        top: int = typer.Option(24, help="Pairs among each class's top channels and top motif groups by relative "
                                         "strength: |main effect| over the class's largest, on the output or the "
                                         "logit scale (a group's also with one partner)."),
        motif_words: str = typer.Option("scan", help="Motif groups from the word scan of all k-mers ('scan') or "
                                                      "from the filters' own words ('filters')."),
        motifs: Optional[Path] = typer.Option(None, help="MEME file of known motifs (e.g. from JASPAR): their "
                                                         "consensus words are the motif groups, instead of "
                                                         "--motif-words (which pairs of them interact?)."),
        significance: float = typer.Option(0.05, help="A pair is significant when its Benjamini-Hochberg q-value is "
                                                      "below this (a false discovery rate)."),
        fdr: str = typer.Option("class", help="The q-values' family: each class's pairs ('class') or all classes' "
                                              "pairs ('all', for screens over many outputs)."),
        word_length: Optional[int] = typer.Option(None, help="k of the word scan (default 8 up to 200 bp, else 6)."),
        jaspar: str = typer.Option("JASPAR2024", help="JASPAR release (pyjaspar, CORE vertebrates) each motif "
                                                      "group's PWM is matched against by Tomtom, or 'none'."),
        scale: str = typer.Option("auto", help="'auto' (probability for sigmoid/softmax models), 'probability' "
                                               "or 'logit'."),
        inputs: Optional[Path] = typer.Option(None, help=".npy/.npz/FASTA of real inputs for the backgrounds "
                                                         "'shuffle' (the default with them) and 'markov'."),
        background: Optional[str] = typer.Option(None, help="Context backgrounds: 'uniform' (random bases, the "
                                                            "default without --inputs), 'gc' (random bases of GC "
                                                            "fraction --gc), 'shuffle' (dinucleotide shuffles of "
                                                            "--inputs) or 'markov' (an order --markov-order Markov "
                                                            "chain fitted on --inputs)."),
        gc: float = typer.Option(0.41, help="GC fraction of --background gc (default: the human genome's)."),
        markov_order: int = typer.Option(2, help="Order k of --background markov: each base depends on the k "
                                                 "before it."),
        class_names: Optional[Path] = CLASS_NAMES_OPTION,
        seed: int = typer.Option(0, help="Drives every random choice (backgrounds, the word scan's and on-levels' "
                                         "random sequences, contexts' slots, positions and coalitions)."),
        device: Optional[str] = DEVICE_OPTION,
        batch_size: Optional[int] = typer.Option(None, help="Sequences per forward pass in every stage, word scan "
                                                            "included (bounds memory; default 4096)."),
        workers: Optional[int] = WORKERS_OPTION,
        scheduler: Optional[str] = SCHEDULER_OPTION,
        ) -> None:
    """Feature interactions of a layer without a data set: second differences of each class output when motif
    groups and channels are switched on in random contexts (an addition to the paper; see the README). Each
    finished stage (players, main effects, each chunk of pairs) goes to OUT/checkpoint/: after an interruption (even
    kill -9) the same command resumes; one with another model or settings is refused. The checkpoint is removed once
    the results are written. With --workers or --scheduler the chunks of pairs are evaluated on a Dask cluster."""
    from ._checks import class_names as name_classes
    from .interaction_analysis import interactions as measure
    from .results import groups_long, pairs_long, write_tsv

    out = _out_folder(out)
    _check_cluster_options(workers, scheduler)
    if input_shape is not None:
        parse_shape(input_shape)  # a malformed shape is refused before the model is loaded
    names = _lines(class_names, "--class-names")
    inputs_array = _inputs(inputs)
    if motifs is not None and motif_words != "scan":
        raise ArgumentError(f"--motif-words: expected none with --motifs (the file's motifs are the groups), got "
                            f"{motif_words!r}")
    given_words = None if motifs is None else _consensus_words(motifs)
    adapters = _adapters(output, channels_last, fixed_input)
    keras = _keras_inputs(model, architecture, adapters, reverse_complement_input, input_shape)
    net = _model(model, weights, architecture, factory_kwargs, trust_pickle, **keras)
    shape = _input_shape(input_shape, net)
    n_outputs = _n_outputs(net, shape, adapters)
    chosen = parse_classes(classes, n_outputs)
    names = names if names is not None else getattr(net, "output_names", None)
    labels = name_classes(names, chosen or list(range(n_outputs)), n_outputs)
    with _output(out), _cluster(workers, scheduler) as client:
        ix = measure(net, layer, input_shape=shape, classes=chosen, at=at, contexts=contexts, top=top, scale=scale,
                     motif_words=motif_words if given_words is None else given_words, significance=significance,
                     fdr=fdr, word_length=word_length, jaspar=None if jaspar == "none" else jaspar,
                     inputs=inputs_array, background=background, gc=gc, markov_order=markov_order, seed=seed,
                     device=device, batch_size=batch_size, class_names=labels, checkpoint=out / "checkpoint",
                     progress=console.is_terminal, client=client, **adapters)
        ix.save(out / "interactions.h5")
        write_tsv(pairs_long(ix), out / "interactions.tsv")
        write_tsv(groups_long(ix), out / "groups.tsv")
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    console.print(ix.summary())
    console.print(f"wrote interactions.h5, interactions.tsv and groups.tsv to {out}")


@app.command()
def demo(out: Path = typer.Option(Path("deepresolve_demo"), help="Output folder (data, model, result, report)."),
         full: bool = typer.Option(False, help="The paper's sizes (100,000 + 20,000 sequences of 100 bp)."),
         seed: int = typer.Option(0, help="Seeds data, training and ascent."),
         train: bool = typer.Option(False, "--train", help="Train a new model instead of using the committed one "
                                                           "(trained weights differ from CPU to CPU).")) -> None:
    """Synthetic set I end to end: generate, load (or train) the paper's CNN, run DeepResolve, print and report."""
    from ._checks import check_int
    from .paper.demo import run_demo

    check_int(seed, "--seed", minimum=0)
    with _output(out):
        run_demo(out, full=full, seed=seed, console=console, train=train)


@app.command()
def motifs(model: str = MODEL_ARGUMENT,
           out: Path = typer.Option(..., help="Output folder: channels.meme and the Tomtom table."),
           weights: Optional[Path] = WEIGHTS_OPTION,
           architecture: Optional[str] = ARCHITECTURE_OPTION,
           layer: Optional[str] = typer.Option(None, help="Deeper layer whose channels to visualise (default: "
                                                          "first-layer filters)."),
           inputs: Optional[Path] = typer.Option(None, help="One-hot sequences (.npy/.npz/FASTA) to start the "
                                                            "channel ascent from; needed with --layer."),
           jaspar: str = typer.Option("JASPAR2024", help="pyjaspar release (CORE vertebrates), e.g. JASPAR2016."),
           matches: int = typer.Option(5, help="JASPAR matches kept per channel.")) -> None:
    """Channels as sequence motifs (PWMs), written as MEME and matched against JASPAR with Tomtom."""
    from .motifs import jaspar_motifs, match_channels

    _out_folder(out)
    inputs_array, net = _inputs(inputs), _model(model, weights, architecture)
    jaspar_motifs(jaspar)  # a release pyjaspar does not have is refused before anything is written
    with _output(out):
        table = match_channels(net, out, layer=layer, inputs=inputs_array, jaspar_release=jaspar, n_matches=matches)
    best = table.sort_values("p_value").groupby("query", sort=False).head(1)
    console.print(best.head(20).to_string(index=False))
    console.print(f"wrote {out}")


@app.command()
def report(result: Path = typer.Argument(..., help="A result.h5 written by `deepresolve run` or Result.save."),
           out: Path = typer.Option(Path("report.html"), help="The HTML file to write."),
           model: Optional[str] = typer.Option(None, help="The model: adds first-layer filter logos and "
                                                          "last-layer-weight cosine."),
           weights: Optional[Path] = WEIGHTS_OPTION,
           architecture: Optional[str] = ARCHITECTURE_OPTION,
           motif_table: Optional[Path] = typer.Option(None, "--motifs", help="Tomtom TSV from `deepresolve motifs`."),
           labels: Optional[Path] = typer.Option(None, help=".npy label matrix (N, C): adds label correlation."),
           max_classes: int = typer.Option(50, help="Classes that get a section with figures.")) -> None:
    """One self-contained HTML report (figures embedded, works offline) of a result."""
    from ._checks import existing_file
    from .io.tables import read_labels, read_motif_matches
    from .results import load
    from .viz.report import write_report

    if out.is_dir():
        raise ArgumentError(f"--out: expected an HTML file to write, got the folder {str(out)!r}")
    _out_folder(out.parent)
    if not result.exists():
        raise MissingFileError(f"RESULT: expected a result.h5 file, got {str(result)!r}, which does not exist")
    res = load(existing_file(result, "RESULT"))
    matches = None if motif_table is None else read_motif_matches(motif_table, "--motifs")
    label_matrix = None if labels is None else read_labels(labels, res.n_classes, "--labels")
    net = _model(model, weights, architecture) if model else None
    pwms = None
    if net is not None:
        from .motifs.pwm import filter_pwms
        try:
            candidate = filter_pwms(net)
            pwms = candidate if len(candidate) == res.n_channels else None  # logos only when channels are filters
        except DeepResolveError:  # no convolution to read filters from: a report without logos
            pwms = None
    with _output(out.parent):
        path = write_report(res, out, pwms=pwms, motif_matches=matches, labels=label_matrix, model=net,
                            max_class_sections=max_classes)
    console.print(f"wrote {path}")
