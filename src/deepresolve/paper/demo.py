"""Synthetic set I end to end: the README's demo.

:func:`run_demo` generates synthetic set I, loads the committed paper's CNN trained on it (``--train`` trains a new
one), runs DeepResolve on the pooled convolution layer, names each channel after the planted k-mer its filter matches
best, prints the important and non-additive channels, then the feature interactions of the same layer
(:mod:`deepresolve.interactions`, an addition to the paper) beside them, and writes everything to a folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from .._checks import check_int
from ..errors import ArgumentError
from ..io.sequences import write_fasta
from ..motifs.pwm import filter_pwms
from ..pipeline import resolve
from ..results import CATEGORIES, Interactions
from ..viz.report import write_report
from .claims import conv_weights, kmer_channel_names, motif_of, set_one_claims
from .datasets import SET_ONE_MOTIFS, demo_sizes, synthetic_set_one
from .fixtures import load_fixture
from .logic import word_motifs
from .train import auc_per_class, predict_logits, split_indices, train_model
from .zoo import synthetic_cnn

#: The pairs of planted motifs set I's logic makes interact: CAGGTC AND (GCTCAT XOR CGCTTG).
SET_ONE_PAIRS = {"XOR pair": ("GCTCAT", "CGCTTG"), "AND partner of GCTCAT": ("CAGGTC", "GCTCAT"),
                 "AND partner of CGCTTG": ("CAGGTC", "CGCTTG")}


def interaction_claims(ix: Interactions) -> dict:
    """Where set I's interacting motif pairs come among the motif-group pairs of class 0 of ``ix``.

    A group counts as a motif's when its word matches it (:func:`deepresolve.paper.logic.word_motifs`). For each
    pair of :data:`SET_ONE_PAIRS`: the best-ranked group pair joining the two
    motifs (rank 1-based by |interaction| among all evaluated group pairs, None when no such pair was evaluated),
    its interaction, p-value, q-value (over the class's group pairs), significance (by q) and truth-table kind.
    ``expected`` is the sign the logic predicts.
    """
    df = ix.table(int(ix.classes[0]), level="group", top=None).reset_index(drop=True)
    group_motifs = [{m} for m in word_motifs(ix.group_words, SET_ONE_MOTIFS)]
    out = {}
    for label, (a, b) in SET_ONE_PAIRS.items():
        hits = [r for r in df.itertuples() if (a in group_motifs[r.i] and b in group_motifs[r.j])
                or (b in group_motifs[r.i] and a in group_motifs[r.j])]
        best = hits[0] if hits else None
        out[label] = {"motifs": [a, b], "expected": "antagonistic" if label == "XOR pair" else "synergistic",
                      "rank": None if best is None else int(best.Index) + 1, "of": len(df),
                      "pair": None if best is None else f"{best.label_i} x {best.label_j}",
                      "interaction": None if best is None else float(best.interaction),
                      "pvalue": None if best is None else float(best.pvalue),
                      "qvalue": None if best is None else float(best.qvalue),
                      "significant": bool(best is not None and best.significant),
                      "kind": None if best is None else best.kind}
    return out


def _print_interactions(console, ix: Interactions, found: dict) -> None:
    """The top motif-group pairs with their truth tables, then set I's pairs stated beside the paper's IL view."""
    console.print(f"[bold]Feature interactions[/bold] of pool1 (an addition to the paper): {ix.params['contexts']} "
                  f"random contexts, {ix.params['scale']} scale; top pairs of motif groups (* significant at "
                  f"Benjamini-Hochberg q < {ix.significance}), truth table = mean output with neither / the first / "
                  f"the second / both on:")
    for rank, r in enumerate(ix.table(int(ix.classes[0]), level="group", top=5).itertuples(), 1):
        console.print(f"  {rank}. {r.label_i} x {r.label_j}: {r.interaction:+.3f} (q={r.qvalue:.2g}"
                      f"{' *' if r.significant else ''}), {r.kind}; {r.t00:.2f} / {r.t10:.2f} / {r.t01:.2f} / "
                      f"{r.t11:.2f}")
    for label, f in found.items():
        a, b = f["motifs"]
        if f["rank"] is None:
            console.print(f"{label} {a} x {b} (expected {f['expected']}): not evaluated (one of the motifs has no "
                          f"group with a main effect of at least {ix.params['min_effect']:.0%} of the largest)")
            continue
        sign = "antagonistic" if f["interaction"] < 0 else "synergistic"
        verdict = "as the logic says" if sign == f["expected"] else f"NOT {f['expected']} as the logic says"
        console.print(f"{label} {a} x {b}: {sign} ({verdict}), rank {f['rank']} of {f['of']} group pairs "
                      f"({f['pair']}, {f['interaction']:+.3f}, q={f['qvalue']:.2g}"
                      f"{', significant' if f['significant'] else ', not significant'}; {f['kind']})")


def run_demo(out_dir: str | Path, *, full: bool = False, seed: int = 0, console=None, train: bool = False):
    """Synthetic set I end to end: generate, load (or train) the model, resolve, name channels, print and save.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``data.fa``, ``labels.tsv``, ``model.pt``, ``result.h5`` (with the interactions),
        ``summary.tsv``, ``interactions.tsv``,
        ``demo.json`` and ``report.html``.
    full : bool
        The paper's sizes (minutes) instead of the quick reduced set (see :func:`demo_sizes`); always trains.
    seed : int
        Seeds the data, the training and the gradient ascent (the committed model was trained with seed 0).
    console : rich.console.Console, optional
        Where to print (default: a new console on stdout).
    train : bool
        Train a new model. By default the reduced-size demo uses the committed model
        ``deepresolve.paper.fixtures.load_fixture("set_one")`` (trained exactly so, with seed 0), so that
        it shows the same result on every machine: trained weights depend on the CPU's float kernels.

    Returns
    -------
    Result of DeepResolve on the pooled convolution layer (``pool1``), with the paper's
    settings (lambda = 1, 10 restarts), channels named after their best-matching k-mer, and its
    ``interactions`` (default settings).
    """
    from rich.console import Console
    from rich.table import Table

    seed = check_int(seed, "seed", minimum=0)
    if not isinstance(out_dir, (str, Path)):
        raise ArgumentError(f"out_dir: expected a str or Path, got {type(out_dir).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ArgumentError(f"out_dir: expected a folder, got the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console()
    cfg = demo_sizes(full)
    started = time.perf_counter()

    console.print(f"[bold]Synthetic set I[/bold]: {cfg['n']:,} sequences with a subset of CAGGTC, GCTCAT, CGCTTG "
                  f"+ {cfg['n_random']:,} random, {cfg['length']} bp; label = CAGGTC AND (GCTCAT XOR CGCTTG)")
    data = synthetic_set_one(cfg["n"], cfg["n_random"], length=cfg["length"], seed=seed)
    write_fasta(out / "data.fa", data.x)
    with open(out / "labels.tsv", "w") as f:
        f.write("name\tlabel\t" + "\t".join(data.motifs) + "\n")
        for i in range(len(data)):
            f.write(f"seq{i}\t{int(data.y[i, 0])}\t" + "\t".join(str(int(v)) for v in data.present[i]) + "\n")

    if train or full:
        torch.manual_seed(seed)
        model = synthetic_cnn(length=cfg["length"])
        fit = train_model(model, data.x, data.y, seed=seed, **cfg["train"])
        test_auc, train_params = fit.test_auc, fit.params
        how = f"trained the paper's CNN (32 x 8-bp filters, max-pool 4, dense 64) in {len(fit.history)} epochs"
    else:
        model, meta = load_fixture("set_one")
        # Scored on this run's test split: for seed 0 these are the fixture's own held-out sequences.
        test = split_indices(len(data), seed=seed)["test"]
        test_auc = auc_per_class(data.y[test], predict_logits(model, data.x[test]))
        train_params = {**meta["train"], "fixture": "set_one"}
        how = "loaded the committed paper's CNN (deepresolve.paper.fixtures 'set_one'; --train trains a new one)"
    torch.save(model.state_dict(), out / "model.pt")
    console.print(f"{how}: test AUC {test_auc[0]:.3f} (paper: 0.985)")

    weights = conv_weights(model)
    names = kmer_channel_names(weights, list(SET_ONE_MOTIFS))
    res = resolve(model, "pool1", input_shape=(4, cfg["length"]), restarts=10, l2=1.0, seed=seed,
                  class_names=["CAGGTC AND (GCTCAT XOR CGCTTG)"], channel_names=names,
                  interactions=True)
    claims = set_one_claims(res, [motif_of(n) for n in names])
    found = interaction_claims(res.interactions)

    table = Table(title=f"DeepResolve on pool1 (lambda = 1, 10 restarts): {int(res.n_components[0])} mixture "
                        "component(s) chosen by BIC")
    for col in ("rank", "channel", "motif", "OFIV", "IL", "category", "FIV > 0 in"):
        table.add_column(col, justify="right" if col in ("rank", "OFIV", "IL", "FIV > 0 in") else "left")
    df = res.channel_table(0)
    df = df.reindex(df["ofiv"].abs().sort_values(ascending=False).index)
    shown = list(df.index[:10]) + [i for i in df.index[10:] if df.loc[i, "category"] != "additive"]
    for rank, i in enumerate(shown, 1):
        row = df.loc[i]
        motif = motif_of(row["channel"])
        style = {"CAGGTC": "green", "GCTCAT": "magenta", "CGCTTG": "magenta"}.get(motif)
        table.add_row(str(rank), row["channel"], f"[{style}]{motif}[/{style}]" if style else motif,
                      f"{row['ofiv']:+.3f}", f"{row['inconsistency']:.3g}", CATEGORIES[row["category"]],
                      f"{row['fiv_positive_fraction']:.0%}")
    console.print(table)
    na = [names[k] for k in np.flatnonzero(res.non_additive[0])]
    console.print(f"non-additive channels: {', '.join(na) if na else 'none'}")
    console.print(f"paper's claims on this model: BIC > 1 component: {claims['bic_gt1']}; top non-additive "
                  f"channels are the XOR pair: {claims['xor_nonadditive']}; XOR pair with opposite signs in "
                  f"{claims['opposite_fraction']:.0%} of restarts; top additive positive channels are CAGGTC: "
                  f"{claims['and_additive_positive']}")
    _print_interactions(console, res.interactions, found)
    console.print("The two views answer different questions: the paper's IL looks at where penalised ascent optima "
                  "disagree, the interaction view measures what switching motifs on together does to the output "
                  "(see the README, 'Feature interactions').")

    res.save(out / "result.h5")
    res.channel_table(0).to_csv(out / "summary.tsv", sep="\t", index=False)
    res.interactions.table(0, level="group", top=None).to_csv(out / "interactions.tsv", sep="\t", index=False)
    summary = {"test_auc": test_auc.tolist(), "sizes": {k: v for k, v in cfg.items() if k != "train"},
               "train": train_params, "claims": claims, "interactions": found,
               "seconds": time.perf_counter() - started}
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=str))
    write_report(res, out / "report.html", pwms=filter_pwms(model), labels=data.y, model=model,
                 title="DeepResolve demo: synthetic set I")
    console.print(f"wrote {', '.join(sorted(p.name for p in out.iterdir() if not p.name.startswith('.')))} to {out} "
                  f"({time.perf_counter() - started:.0f} s)")
    return res
