"""Set III: does DeepResolve recover which of many classes share motifs? (the paper's DeepSEA analysis, known answer)

For each training seed: train a DeepSEA-shaped three-convolution multi-task model on synthetic set III
(``deepresolve.paper.set_three``: 12 designed groups x 10 classes over 30 JASPAR motifs, labels never co-occur), run
DeepResolve at the input of the last convolution (the paper's DeepSEA layer), and score three class similarities
against the design:

- OFIV+ similarity (``dr.class_similarity``, the paper's measure),
- label correlation (``dr.label_correlation`` of the label matrix),
- last-layer cosine (``dr.weight_cosine`` of the output layer's weight rows),

by the Spearman correlation with the true motif Jaccard over all class pairs and the adjusted Rand index of the
hierarchical clusters (average linkage, cut into 12) against the designed groups. Prints one table; asserts
nothing. One thread; trained models and results are kept in OUT so a rerun skips finished seeds.

Usage:
  python benchmarks/set_three.py --out set3_out [--seeds 0 1 2] [--l2 auto] [--epochs 25]

Measured here (2 shared CPU cores, 1 thread; 24,096 sequences of 200 bp; conv 64-64-64 with batch norm, dense 128;
positive weight 30; lambda by the paper's heuristic, 0.51-0.54; about 10 min of training per seed at 25 epochs):

  25 epochs (test AUC 0.977 0.976 0.980)   Spearman per seed     mean   ARI per seed          mean
  OFIV+ similarity                         0.647 0.629 0.649    0.641   0.475 0.464 0.432    0.457
  label correlation                        0.003 0.003 0.003    0.003   0.001 0.001 0.001    0.001
  last-layer cosine                        0.598 0.581 0.605    0.595   0.529 0.558 0.563    0.550

  15 epochs (test AUC 0.954 0.954 0.960)
  OFIV+ similarity                         0.560 0.555 0.603    0.573   0.568 0.447 0.548    0.521
  label correlation                        0.003 0.003 0.003    0.003   0.001 0.001 0.001    0.001
  last-layer cosine                        0.543 0.550 0.553    0.549   0.507 0.480 0.509    0.499
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import deepresolve as dr
from deepresolve.paper import zoo
from deepresolve.paper.set_three import recovery, set_three_design, synthetic_set_three
from deepresolve.paper.train import train_model

MEASURES = ("OFIV+ similarity", "label correlation", "last-layer cosine")


def run_seed(seed: int, data, design, args) -> dict:
    out = args.out / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = zoo.deepsea(n_outputs=data.y.shape[1], length=data.x.shape[2], hidden=args.hidden, filters=tuple(args.filters),
                        batch_norm=True)
    weights = out / "model.pt"
    start = time.perf_counter()
    if weights.exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        model.eval()
        info = json.loads((out / "train.json").read_text())
    else:
        fit = train_model(model, data.x, data.y, epochs=args.epochs, batch_size=128, lr=args.lr, patience=3, seed=seed,
                          pos_weight=args.pos_weight,
                          verbose=True)
        torch.save(model.state_dict(), weights)
        info = {"test_auc": float(np.nanmean(fit.test_auc)), "epochs": len(fit.history),
                "train_seconds": time.perf_counter() - start}
        (out / "train.json").write_text(json.dumps(info))
    print(f"seed {seed}: mean test AUC {info['test_auc']:.3f} after {info['epochs']} epochs "
          f"({info['train_seconds']:.0f} s)", flush=True)

    start = time.perf_counter()
    l2 = args.l2 if args.l2 == "auto" else float(args.l2)
    res = dr.resolve(model, "conv3", at="input", input_shape=(4, data.x.shape[2]), restarts=args.restarts, l2=l2,
                     inputs=data.x[:256], seed=seed, class_names=data.class_names)
    res.save(out / "result.h5")
    print(f"seed {seed}: DeepResolve {res.n_classes} x {res.n_restarts} at {res.layer}, lambda {res.params['l2']:.3g}, "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    sims = {
        "OFIV+ similarity": dr.class_similarity(res),
        "label correlation": dr.label_correlation(data.y),
        "last-layer cosine": dr.weight_cosine(model),
    }
    return {name: recovery(sim, design) for name, sim in sims.items()} | {"info": info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--n-per-class", type=int, default=200)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--filters", type=int, nargs=3, default=[64, 64, 64])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pos-weight", type=float, default=30.0, help="weight of positive labels in the loss")
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--l2", default="auto", help="lambda, or 'auto' (the paper's feature-norm heuristic)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    design = set_three_design()
    data = synthetic_set_three(design, n_per_class=args.n_per_class, length=args.length, seed=args.data_seed)
    print(f"set III: {len(data)} sequences of {args.length} bp, {data.y.shape[1]} classes in "
          f"{len(np.unique(design.groups))} groups, {len(design.motifs)} JASPAR motifs", flush=True)
    rows = {seed: run_seed(seed, data, design, args) for seed in args.seeds}

    print(f"\nSet III recovery (seeds {args.seeds}; Spearman with the true motif Jaccard over "
          f"{len(design.groups) * (len(design.groups) - 1) // 2} class pairs; ARI of 12 clusters vs designed groups)")
    print(f"{'measure':<20} {'Spearman (per seed)':<30} {'mean':>6}   {'ARI (per seed)':<24} {'mean':>6}")
    for name in MEASURES:
        rho = [rows[s][name].spearman for s in args.seeds]
        ari = [rows[s][name].ari for s in args.seeds]
        print(f"{name:<20} {' '.join(f'{v:6.3f}' for v in rho):<30} {np.mean(rho):6.3f}   "
              f"{' '.join(f'{v:6.3f}' for v in ari):<24} {np.mean(ari):6.3f}")
    print("test AUC per seed:", " ".join(f"{rows[s]['info']['test_auc']:.3f}" for s in args.seeds))


if __name__ == "__main__":
    main()
