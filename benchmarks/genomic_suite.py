"""The genomics-like ground-truth suite (:mod:`deepresolve.paper.genomic`): train its models, score every method.

Stage ``train`` trains every (case, seed) and caches it in ``--out`` as ``<case>_s<seed>.pt`` (state dict of
``CASES[case].model()``) and ``<case>_s<seed>.json`` (case, seed, test AUC or R2, epochs, the per-pattern check
and whether it passed), both written atomically; a (case, seed) whose ``.json`` exists is not trained again. A
model that fails :func:`deepresolve.paper.logic.check_logic` (every presence pattern, every task, on the test split)
is replaced by seed + 100, up to four times; the replacements are counted.

Stage ``analyse`` runs, per model that passed, :func:`deepresolve.interactions` at its defaults on the case's
layer, :func:`deepresolve.resolve` at its defaults, and (when importable) the baselines
``deepresolve.baselines.marginal_interactions`` / ``shapley_interactions`` on the same group words, and writes one
row per (model, method) to ``<out>/scores.tsv`` as it goes (``--tsv`` to name another file). Scores, per task with
a primary pair:

- ``rank``/``sign``: the primary pair's rank among the group pairs by |interaction| and the sign of its value
  (and3: the worst rank of its three pairs); a group is a planted motif when
  :func:`deepresolve.paper.genomic.match_motifs` (case motifs and distractors as candidates) names it;
- ``groups``: groups per planted motif the model uses (:func:`deepresolve.paper.genomic.used_motifs`); ``one_group``
  whether every used motif has exactly one;
- ``false_sig``: significant group pairs between two different planted motifs that do not interact on the task
  (by ``group_qvalues`` when the result has them, else ``group_pvalues``, at the result's ``significance``);
- ``ofiv_top3`` (resolve): whether every AND partner has a channel among the class's 3 channels of largest OFIV
  (a channel is a motif's when its preferred word from the interaction run matches it).

The summary per half prints, per case, the targets of the suite with counts over models: true pair first with
the right sign (>= 4/5 seeds), every used motif one group (>= 90 %), no significant non-interacting pair (>= 90 %),
additive control clean.

``--logic`` scores the cases of :mod:`deepresolve.paper.logic` the same way (models cached in ``<out>/logic``,
trained by ``benchmarks/interactions_logic.py``'s procedure), to compare with the old suite's level.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/genomic_suite.py --out runs/genomic --stage train --half tune
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/genomic_suite.py --out runs/genomic --stage analyse
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/genomic_suite.py --out runs/genomic --cases xor_200 --seeds 0 1

Load a cached model::

    from deepresolve.paper.genomic import CASES
    meta = json.load(open("runs/genomic/and_200_s0.json"))
    case = CASES[meta["case"]]; model = case.model(); model.load_state_dict(torch.load("runs/genomic/and_200_s0.pt"))
    data = case.data(meta["seed"])  # the training data; the test split is meta["split_seed"]'s split_indices
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepresolve.paper.genomic import CASES
from deepresolve.paper.logic import check_logic, train_logic_model
from deepresolve.paper.train import split_indices

MAX_TRIES = 5


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def train_one(out: Path, name: str, seed: int) -> dict:
    """Train (or read the cache of) one (case, seed); returns its sidecar."""
    case = CASES[name]
    meta_path = out / f"{name}_s{seed}.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    t = time.perf_counter()
    data = case.data(seed)
    model, info = train_logic_model(case, data, seed)
    ok, rows = check_logic(model, data, regression=case.regression, index=info["split"]["test"])
    meta = dict(case=name, seed=seed, half=case.half, logic=case.logic, length=case.length, arch=case.arch,
                layer=case.layer, motifs=list(case.motifs), regression=case.regression,
                **{k: v for k, v in info.items() if k != "split"}, ok=ok, patterns=rows,
                seconds=round(time.perf_counter() - t, 1), torch=torch.__version__)
    _atomic_write(out / f"{name}_s{seed}.pt", lambda p: torch.save(model.state_dict(), p))
    _atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta, default=str)))
    fit = f"AUC {meta['test_auc']:.4f}" if "test_auc" in meta else f"R2 {meta['test_r2']:.4f}"
    print(f"  trained {name} seed {seed}: {fit}, {meta['epochs']} epochs, logic {'ok' if ok else 'FAILED'} "
          f"({meta['seconds']:.0f} s)", flush=True)
    return meta


def passing_seed(out: Path, name: str, seed: int, *, train: bool = True) -> dict | None:
    """The sidecar of the first of seed, seed + 100, ... (``MAX_TRIES``) whose model passes the check, with
    ``replaced`` (failed seeds before it) and ``requested_seed`` added; ``ok`` False when none passed. Without
    ``train``, None when a needed model is not cached."""
    for attempt in range(MAX_TRIES):
        s = seed + 100 * attempt
        if not train and not (out / f"{name}_s{s}.json").exists():
            return None
        meta = train_one(out, name, s)
        if meta["ok"]:
            return dict(meta, replaced=attempt, requested_seed=seed)
    return dict(case=name, seed=seed, requested_seed=seed, replaced=MAX_TRIES, ok=False)


def load_model(out: Path, meta: dict):
    """The cached model of a sidecar, in eval mode, and its case's data for the model's seed."""
    case = CASES[meta["case"]]
    model = case.model()
    model.load_state_dict(torch.load(out / f"{meta['case']}_s{meta['seed']}.pt", weights_only=True))
    return model.eval(), case.data(meta["seed"])


def _cases_of(args) -> list[str]:
    names = [n for n in args.cases if args.half == "all" or CASES[n].half == args.half]
    if args.half == "all":  # tune half first
        names = sorted(names, key=lambda n: CASES[n].half != "tune")
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stage", choices=["train", "analyse", "all"], default="all")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--half", choices=["tune", "report", "all"], default="all")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    names = _cases_of(args)
    if args.stage in ("train", "all"):
        for name in names:
            for seed in args.seeds:
                meta = passing_seed(args.out, name, seed)
                if not meta["ok"]:
                    print(f"{name} seed {seed}: no model implementing the logic in {MAX_TRIES} tries", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
