"""Command-line interface: ``deepresolve layers|run|demo|motifs|report``."""

from __future__ import annotations

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


def _model(spec: str, weights: Path | None) -> torch.nn.Module:
    """:func:`deepresolve.io.models.load_model`, its errors as a usage error on MODEL."""
    from .io.models import load_model

    try:
        return load_model(spec, weights=weights)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise typer.BadParameter(str(err), param_hint="MODEL") from None


def _inputs(path: Path | None, option: str) -> np.ndarray | None:
    """One-hot inputs from a .npy/.npz/FASTA file, its errors as a usage error on ``option``."""
    from .io.sequences import load_inputs

    if path is None:
        return None
    try:
        return load_inputs(path)
    except (ValueError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err), param_hint=option) from None


def print_table(result, top: int = 5) -> None:
    """The per-class table of important and non-additive channels, as a rich table."""
    df = result.table(top)
    table = Table(title=f"DeepResolve: layer {result.layer_label!r}, {result.n_restarts} restarts, lambda = {result.params.get('l2'):.3g}")
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
    from .split import list_layers
    net = _model(model, weights)
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
        inputs: Optional[Path] = typer.Option(None, help=".npy/.npz/FASTA of a few real inputs (for l2=auto, --l2-center mean)."),
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
    net = _model(model, weights)
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
    result = resolve(net, layer, input_shape=parse_shape(input_shape), classes=parse_classes(classes), restarts=restarts,
                     l2=l2_value, steps=steps, lr=lr, seed=seed, device=device, batch_size=batch_size,
                     optimizer=optimizer, at=at, precision=precision, inconsistency=inconsistency, nonnegative=nonnegative, l2_center=l2_center,
                     inputs=_inputs(inputs, "--inputs"), class_names=names, checkpoint=out / "checkpoint.h5", progress=True)
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
    from .paper.demo import run_demo
    run_demo(out, full=full, seed=seed, console=console, train=train)


@app.command()
def motifs(model: str = typer.Argument(..., help=MODEL_HELP),
           out: Path = typer.Option(..., help="Output folder: channels.meme and the Tomtom table."),
           weights: Optional[Path] = typer.Option(None, help="State-dict file for a 'module:factory' model."),
           layer: Optional[str] = typer.Option(None, help="Deeper layer whose channels to visualise (default: first-layer filters)."),
           inputs: Optional[Path] = typer.Option(None, help="One-hot sequences (.npy/.npz/FASTA) to start the channel ascent from; needed with --layer."),
           jaspar: str = typer.Option("JASPAR2024", help="pyjaspar release (CORE vertebrates), e.g. JASPAR2016."),
           matches: int = typer.Option(5, help="JASPAR matches kept per channel.")) -> None:
    """Channels as sequence motifs (PWMs), written as MEME and matched against JASPAR with Tomtom."""
    table = motifs_main(_model(model, weights), out, layer=layer, inputs=_inputs(inputs, "--inputs"),
                        jaspar_release=jaspar, n_matches=matches)
    best = table.sort_values("p_value").groupby("query", sort=False).head(1)
    console.print(best.head(20).to_string(index=False))
    console.print(f"wrote {out}")


def motifs_main(
    model: torch.nn.Module,
    out_dir: str | Path,
    *,
    layer: str | None = None,
    inputs: np.ndarray | None = None,
    jaspar_release: str = "JASPAR2024",
    n_matches: int = 5,
) -> pd.DataFrame:
    """Channel PWMs of a model → MEME file and a Tomtom table of their best JASPAR matches.

    Parameters
    ----------
    model : torch.nn.Module
        E.g. from :func:`deepresolve.io.models.load_model`.
    out_dir : path
        Receives ``channels.meme`` and ``tomtom_<release>.tsv``.
    layer : str, optional
        None: the first-layer convolution filters (:func:`~deepresolve.motifs.pwm.filter_pwms`). Otherwise a module
        name whose channels are visualised by :func:`~deepresolve.motifs.input_ascent.channel_motifs`, which then
        needs ``inputs``.
    inputs : (N, 4, L) array, optional
        One-hot sequences to initialise the channel ascent from.
    jaspar_release : str
        A pyjaspar release (CORE vertebrates).
    n_matches : int
        JASPAR matches kept per channel.

    Returns
    -------
    pandas.DataFrame
        The Tomtom table written to the TSV.
    """
    from ._utils import check_int
    from .motifs import channel_motifs, filter_pwms, jaspar_motifs, tomtom_matches, write_meme

    n_matches = check_int(n_matches, "n_matches", minimum=1)
    if layer is None:
        pwms = list(filter_pwms(model))
    else:
        if inputs is None:
            raise ValueError(f"layer {layer!r} given without inputs: channel motifs start from sequence fragments")
        pwms = list(channel_motifs(model, layer, inputs)[0])
    names = [f"ch{k}" for k in range(len(pwms))]
    out_dir = Path(out_dir)
    write_meme(pwms, names, out_dir / "channels.meme")
    df = tomtom_matches(pwms, jaspar_motifs(jaspar_release), names=names, n_matches=n_matches)
    df.to_csv(out_dir / f"tomtom_{jaspar_release}.tsv", sep="\t", index=False)
    return df


@app.command()
def report(result: Path = typer.Argument(..., help="A result.h5 written by `deepresolve run` or Result.save."),
           out: Path = typer.Option(Path("report.html"), help="The HTML file to write."),
           model: Optional[str] = typer.Option(None, help="The model: adds first-layer filter logos and last-layer-weight cosine."),
           weights: Optional[Path] = typer.Option(None, help="State-dict file for a 'module:factory' model."),
           motif_table: Optional[Path] = typer.Option(None, "--motifs", help="Tomtom TSV from `deepresolve motifs`."),
           labels: Optional[Path] = typer.Option(None, help=".npy label matrix (N, C): adds label correlation."),
           max_classes: int = typer.Option(50, help="Classes that get a section with figures.")) -> None:
    """One self-contained HTML report (figures embedded, works offline) of a result."""
    from .viz.report import write_report
    from .result import load

    if not result.exists():
        raise typer.BadParameter(f"{str(result)!r} does not exist", param_hint="RESULT")
    res = load(result)
    net = _model(model, weights) if model else None
    pwms = None
    if net is not None:
        from .motifs.pwm import filter_pwms
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
