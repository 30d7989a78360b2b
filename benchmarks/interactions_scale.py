"""Cost of the feature-interaction analysis at scale, stage by stage. Prints figures; asserts nothing.

``deepresolve.interactions`` on a DeepSEA- or Basset-shaped network (PyTorch's default random weights; the cost
does not depend on the weights' values except through how many motif groups the word scan finds) or on a trained
model of the genomics-like suite, for one class and for many classes at once. For every stage it prints the wall
time, the rows the stage asked for (a row: one input with some players switched on) and the distinct rows
evaluated (rows with equal inputs are evaluated once; the body once per distinct sequence), so that figures
carry over to other hardware; the processor is named by model.

Usage::

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/interactions_scale.py --model deepsea --layer pool1 \
        --classes 1 919 [--contexts 128] [--top 24]
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/interactions_scale.py --model runs/genomic/and_1000_s0.pt
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hardware import device_name

import deepresolve as dr
from deepresolve.interaction_analysis import analysis
from deepresolve.io.architectures import basset, deepsea

STAGES = ("find_players", "group_strength", "main_effects", "_pair_stage")


def load(spec: str) -> tuple[torch.nn.Module, str, int, int]:
    """The model, its default layer, input length and number of outputs."""
    if spec == "deepsea":
        return deepsea().eval(), "pool1", 1000, 919
    if spec == "basset":
        return basset().eval(), "pool1", 600, 164
    from deepresolve.paper.genomic import CASES

    meta = json.loads(Path(spec).with_suffix(".json").read_text())
    case = CASES[meta["case"]]
    model = case.model()
    model.load_state_dict(torch.load(spec, weights_only=True))
    return model.eval(), case.layer, case.length, len(case.rules)


def measure(model, layer: str, length: int, classes: list[int], args) -> dict[str, list[float]]:
    """Seconds, rows and distinct rows of each stage of one analysis."""
    figures = {s: [0.0, 0, 0] for s in STAGES}
    current = []
    originals = {s: getattr(analysis, s) for s in STAGES}
    call = analysis.Evaluator.__call__

    def counted(ev, ctx, on, drop):
        keys, _ = ev._rows(ctx, on, drop)
        if current:
            figures[current[-1]][1] += len(ctx)
            figures[current[-1]][2] += len(torch.unique(keys, dim=0))
        return call(ev, ctx, on, drop)

    def timed(stage):
        def run(*a, **k):
            current.append(stage)
            t = time.perf_counter()
            try:
                return originals[stage](*a, **k)
            finally:
                figures[stage][0] += time.perf_counter() - t
                current.pop()
        return run

    analysis.Evaluator.__call__ = counted
    for s in STAGES:
        setattr(analysis, s, timed(s))
    try:
        t = time.perf_counter()
        res = dr.interactions(model, layer, input_shape=(4, length), classes=classes, contexts=args.contexts,
                              top=args.top, jaspar=None, seed=0, device=args.device)
        figures["total"] = [time.perf_counter() - t, sum(f[1] for f in figures.values()),
                            sum(f[2] for f in figures.values())]
    finally:
        analysis.Evaluator.__call__ = call
        for s in STAGES:
            setattr(analysis, s, originals[s])
    figures["pairs"] = [len(res.pairs), len(res.group_pairs), len(res.group_words)]
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="deepsea", help="deepsea, basset or a genomic-suite .pt (json beside it)")
    ap.add_argument("--layer", default=None)
    ap.add_argument("--classes", type=int, nargs="+", default=[1], help="numbers of classes (spread over outputs)")
    ap.add_argument("--contexts", type=int, default=128)
    ap.add_argument("--top", type=int, default=24)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    model, layer, length, outputs = load(args.model)
    layer = args.layer or layer
    print(f"{args.model}, layer {layer}, {length} bp, {outputs} outputs, {args.contexts} contexts, top {args.top}; "
          f"{device_name(args.device)}")
    for c in args.classes:
        classes = np.unique(np.linspace(0, outputs - 1, min(c, outputs)).round().astype(int)).tolist()
        f = measure(model, layer, length, classes, args)
        print(f"{len(classes)} classes: {f['pairs'][0]:,} channel pairs, {f['pairs'][1]:,} group pairs, "
              f"{f['pairs'][2]} groups")
        print(f"  {'stage':16s} {'seconds':>9s} {'rows':>12s} {'distinct':>12s}")
        for s in (*STAGES, "total"):
            secs, rows, distinct = f[s]
            print(f"  {s.lstrip('_'):16s} {secs:9.1f} {rows:12,d} {distinct:12,d}")


if __name__ == "__main__":
    main()
