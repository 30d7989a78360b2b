"""Command-line interface: ``deepresolve layers|run|demo|motifs|report``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="DeepResolve: which learned features drive each output of a genomic CNN, which interact "
                       "non-additively, and which outputs share features - computed inside the network, no data needed.")
console = Console()

MODEL_HELP = ("The model: a TorchScript file (.pt/.ts), a Keras 1.x model folder or .json (weights beside it), "
              "an ONNX file, or 'package.module:factory' (a function returning an nn.Module) with --weights.")


def parse_shape(text: str) -> tuple[int, ...]:
    """'4,1000' -> (4, 1000)."""
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"expected sizes separated by commas, e.g. 4,1000; got {text!r}", param_hint="--input-shape")
    if not shape or any(s <= 0 for s in shape):
        raise typer.BadParameter(f"expected positive sizes, e.g. 4,1000; got {text!r}", param_hint="--input-shape")
    return shape


def parse_classes(text: str | None) -> list[int] | None:
    """'0,3,10-12' -> [0, 3, 10, 11, 12]; None -> every output."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise typer.BadParameter(f"expected indices and ranges like 0,3,10-12; got {text!r}", param_hint="--classes")
    return out


def load_model(spec: str, weights: Path | None = None) -> torch.nn.Module:
    """A model from a file (TorchScript, Keras, ONNX) or from 'package.module:factory' plus a state-dict file."""
    path = Path(spec)
    if not path.exists() and ":" in spec:
        module_name, _, factory = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise typer.BadParameter(f"cannot import module {module_name!r} from {spec!r}: {err}", param_hint="MODEL")
        if not hasattr(module, factory):
            raise typer.BadParameter(f"module {module_name!r} has no {factory!r}", param_hint="MODEL")
        model = getattr(module, factory)()
        if not isinstance(model, torch.nn.Module):
            raise typer.BadParameter(f"{spec} returned {type(model).__name__}, not a torch.nn.Module", param_hint="MODEL")
        if weights is not None:
            if not weights.exists():
                raise typer.BadParameter(f"weights file {str(weights)!r} does not exist", param_hint="--weights")
            state = torch.load(weights, map_location="cpu", weights_only=True)
            try:
                model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
            except RuntimeError as err:
                raise typer.BadParameter(f"{str(weights)!r} does not fit {spec}: {err}", param_hint="--weights")
        return model.eval()
    if not path.exists():
        raise typer.BadParameter(f"{spec!r} is neither an existing file/folder nor 'package.module:factory'", param_hint="MODEL")
    from .keras import load_model as load_file
    try:
        # Keras models take one-hot (N, 4, L) like every other model here
        return load_file(path, onehot=True)
    except ValueError as err:
        raise typer.BadParameter(
            f"{err}. A plain state dict needs the architecture too: give MODEL as 'package.module:factory' and the "
            "file as --weights.", param_hint="MODEL")


def _load_inputs(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    if not path.exists():
        raise typer.BadParameter(f"{str(path)!r} does not exist", param_hint="--inputs")
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".npz":
        data = np.load(path)
        return data[data.files[0]]
    raise typer.BadParameter(f"expected a .npy or .npz array of one-hot inputs (N, 4, L); got {path.suffix!r}", param_hint="--inputs")


def print_table(result, top: int = 5) -> None:
    """The per-class table of important and non-additive channels, as a rich table."""
    df = result.table(top)
    table = Table(title=f"DeepResolve: layer {result.layer!r}, {result.n_restarts} restarts, lambda = {result.params.get('l2'):.3g}")
    for col in df.columns:
        table.add_column(col, overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)


def channel_tsv(result) -> pd.DataFrame:
    """Long table: one row per (class, channel)."""
    frames = []
    for name in result.class_names:
        df = result.channel_table(name)
        df.insert(0, "class", name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


@app.command()
def layers(model: str = typer.Argument(..., help=MODEL_HELP),
           input_shape: str = typer.Option(..., "--input-shape", help="Input shape without the batch axis, e.g. 4,1000."),
           weights: Optional[Path] = typer.Option(None, help="State-dict file for a 'module:factory' model.")) -> None:
    """List the layers of a model with their output shapes, to choose --layer."""
    from .network import list_layers
    net = load_model(model, weights)
    table = Table(title="layers (H = a layer's output; use --at input for its input)")
    for col in ("name", "type", "output shape (K, W...)"):
        table.add_column(col)
    for name, kind, shape in list_layers(net, parse_shape(input_shape)):
        table.add_row(name, kind, str(shape))
    console.print(table)


@app.command()
def run(model: str = typer.Argument(..., help=MODEL_HELP),
        layer: str = typer.Option(..., help="Layer name (see `deepresolve layers`)."),
        input_shape: str = typer.Option(..., "--input-shape", help="Input shape without the batch axis, e.g. 4,1000."),
        out: Path = typer.Option(..., help="Output folder: result.h5, summary.tsv, channels.tsv."),
        weights: Optional[Path] = typer.Option(None, help="State-dict file for a 'module:factory' model."),
        at: str = typer.Option("output", help="Analyse the layer's 'output' or its 'input'."),
        classes: Optional[str] = typer.Option(None, help="Outputs to explain, e.g. 0,3,10-12 (default: all)."),
        restarts: int = typer.Option(10, help="Random restarts per class."),
        l2: str = typer.Option("1.0", help="lambda, or 'auto' (needs --inputs)."),
        optimizer: str = typer.Option("matched", help="'matched' (fast) or 'paper' (decaying plain ascent)."),
        steps: Optional[int] = typer.Option(None, help="Maximum ascent steps."),
        lr: Optional[float] = typer.Option(None, help="Step size (see the docs for each optimiser)."),
        inputs: Optional[Path] = typer.Option(None, help=".npy/.npz of a few real inputs (for l2=auto, --l2-center mean)."),
        l2_center: Optional[str] = typer.Option(None, help="'mean': pull H toward the mean real feature map."),
        nonnegative: bool = typer.Option(False, help="Constrain H >= 0."),
        precision: str = typer.Option("float32", help="'float32' or 'bfloat16' (faster on AMX CPUs and GPUs)."),
        inconsistency: str = typer.Option("variance", help="IL: 'variance' (the paper) or 'sign' (its sign-disagreement part)."),
        class_names: Optional[Path] = typer.Option(None, help="Text file, one output name per line."),
        seed: int = typer.Option(0),
        device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)."),
        batch_size: Optional[int] = typer.Option(None, help="Rows per forward pass (bounds memory)."),
        ) -> None:
    """Run DeepResolve on a model; resumes from OUT/checkpoint.h5 after an interruption."""
    from .resolve import resolve
    net = load_model(model, weights)
    if l2 != "auto":
        try:
            l2_value: float | str = float(l2)
        except ValueError:
            raise typer.BadParameter(f"expected a positive number or 'auto'; got {l2!r}", param_hint="--l2")
    else:
        l2_value = "auto"
    names = None
    if class_names is not None:
        if not class_names.exists():
            raise typer.BadParameter(f"{str(class_names)!r} does not exist", param_hint="--class-names")
        names = [line.strip() for line in class_names.read_text().splitlines() if line.strip()]
    out.mkdir(parents=True, exist_ok=True)
    result = resolve(net, layer, parse_shape(input_shape), classes=parse_classes(classes), restarts=restarts,
                     l2=l2_value, steps=steps, lr=lr, seed=seed, device=device, batch_size=batch_size,
                     optimizer=optimizer, at=at, precision=precision, inconsistency=inconsistency, nonnegative=nonnegative, l2_center=l2_center,
                     inputs=_load_inputs(inputs), class_names=names, checkpoint=out / "checkpoint.h5", progress=True)
    result.save(out / "result.h5")
    result.table(top=10).to_csv(out / "summary.tsv", sep="\t", index=False)
    channel_tsv(result).to_csv(out / "channels.tsv", sep="\t", index=False)
    (out / "checkpoint.h5").unlink(missing_ok=True)
    print_table(result)
    console.print(f"wrote {out / 'result.h5'}, {out / 'summary.tsv'} and {out / 'channels.tsv'}")



@app.command()
def demo(out: Path = typer.Option(Path("deepresolve_demo"), help="Output folder (data, model, result, report)."),
         full: bool = typer.Option(False, help="The paper's sizes (100,000 + 20,000 sequences of 100 bp)."),
         seed: int = typer.Option(0, help="Seeds data, training and ascent."),
         train: bool = typer.Option(False, "--train", help="Train a new model instead of using the committed one "
                                                           "(trained weights differ from CPU to CPU).")) -> None:
    """Synthetic set I end to end: generate, load (or train) the paper's CNN, run DeepResolve, print and report."""
    from .demo import run_demo
    run_demo(out, full=full, seed=seed, console=console, train=train)


@app.command()
def motifs(model: str = typer.Argument(..., help="A Keras 1.x model folder/.json, TorchScript or ONNX file."),
           out: Path = typer.Option(..., help="Output folder: channels.meme and the Tomtom table."),
           layer: Optional[str] = typer.Option(None, help="Deeper layer whose channels to visualise (default: first-layer filters)."),
           sequences: Optional[Path] = typer.Option(None, help="One-hot sequences (.npy/.npz/FASTA) to start the channel ascent from; needed with --layer."),
           jaspar: str = typer.Option("JASPAR2024", help="pyjaspar release (CORE vertebrates), e.g. JASPAR2016."),
           top: int = typer.Option(5, help="JASPAR matches kept per channel.")) -> None:
    """Channels as sequence motifs (PWMs), written as MEME and matched against JASPAR with Tomtom."""
    from .motifs import motifs_main
    table = motifs_main(model, out, layer=layer, sequences=sequences, jaspar_release=jaspar, top=top)
    best = table.sort_values("p_value").groupby("query", sort=False).head(1)
    console.print(best.head(20).to_string(index=False))
    console.print(f"wrote {out}")


@app.command()
def report(result: Path = typer.Argument(..., help="A result.h5 written by `deepresolve run` or Result.save."),
           out: Path = typer.Option(Path("report.html"), help="The HTML file to write."),
           model: Optional[str] = typer.Option(None, help="The model: adds first-layer filter logos and last-layer-weight cosine."),
           weights: Optional[Path] = typer.Option(None, help="State-dict file for a 'module:factory' model."),
           motif_table: Optional[Path] = typer.Option(None, "--motifs", help="Tomtom TSV from `deepresolve motifs`."),
           labels: Optional[Path] = typer.Option(None, help=".npy label matrix (N, C): adds label correlation."),
           max_classes: int = typer.Option(50, help="Classes that get a section with figures.")) -> None:
    """One self-contained HTML report (figures embedded, works offline) of a result."""
    from .report import write_report
    from .result import load

    if not result.exists():
        raise typer.BadParameter(f"{str(result)!r} does not exist", param_hint="RESULT")
    res = load(result)
    net = load_model(model, weights) if model else None
    pwms = None
    if net is not None:
        from .motifs import filter_pwms
        try:
            candidate = filter_pwms(net)
            pwms = candidate if len(candidate) == res.n_channels else None  # logos only when channels are filters
        except ValueError:
            pwms = None
    matches = None
    if motif_table is not None:
        if not motif_table.exists():
            raise typer.BadParameter(f"{str(motif_table)!r} does not exist", param_hint="--motifs")
        matches = pd.read_csv(motif_table, sep="\t")
    label_matrix = None
    if labels is not None:
        if not labels.exists():
            raise typer.BadParameter(f"{str(labels)!r} does not exist", param_hint="--labels")
        label_matrix = np.load(labels)
    path = write_report(res, out, pwms=pwms, motif_matches=matches, labels=label_matrix, model=net,
                        max_class_sections=max_classes)
    console.print(f"wrote {path}")
