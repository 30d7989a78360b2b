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
  python benchmarks/set_three.py --out set3_out [--seeds 0 1 2] [--l2 norm] [--epochs 25] [--figures DIR]

``--figures DIR`` also draws the paper's DeepSEA figures on set III for the first seed, from the models and results
kept in OUT (``deepresolve.viz.plot``):

  fig7_similarity.png     the OFIV+ similarity of all classes, hierarchically clustered (paper Fig 7), the designed
                          group of every class as a colour strip: are the clusters the groups?
  fig7_measures.png       OFIV+ similarity, label correlation and last-layer cosine side by side, in the OFIV+
                          dendrogram's order (the paper's Fig 7 comparison)
  fig9_clusters.png       the most cohesive clusters, OFIV+ similarity beside label correlation (paper Fig 9)
  difference_<i>_<j>.png  difference maps D = OFIV_i - OFIV_j of ``--pairs`` (default: two classes of one designed
                          group, and two of different groups); channels are named by the planted motif they respond
                          to most (``planted_motif_response``, standardised effect >= 1), so the shared motif
                          channels (large OFIVs in both rows, short bars) stand apart from the distinct ones

Measured on 2 CPU cores shared with other jobs, 1 torch thread (CPU not recorded); 24,096 sequences of 200 bp;
conv 64-64-64 with batch norm, dense 128; positive weight 30; 3-6 min of training per seed at 25 epochs. With
``--l2 auto``, this script's and resolve's default (the "reach" policy of :mod:`deepresolve.regularization`:
every class's linearised optimum gains at least 8 nats; lambda 0.583 1.98 0.959; the restarts' scale follows the
policy), on models trained with this script's defaults (test AUC 0.978 0.979 0.980):

  --l2 auto (reach)                        Spearman per seed     mean   ARI per seed          mean
  OFIV+ similarity                         0.638 0.632 0.659    0.643   0.386 0.472 0.575    0.478
  label correlation                        0.003 0.003 0.003    0.003   0.001 0.001 0.001    0.001
  last-layer cosine                        0.604 0.602 0.607    0.604   0.524 0.538 0.557    0.540

The same models' OFIV+ similarity with the other policies (``--l2 <policy>``; lambda per seed in brackets):

  --l2 gradient (61.1 126 99.8)            0.528 0.503 0.512    0.514   0.384 0.424 0.399    0.402
  --l2 norm (0.473 0.565 0.506)            0.638 0.651 0.655    0.648   0.350 0.512 0.547    0.470
  --l2 prior (24.1 28.1 25.4)              0.568 0.532 0.569    0.556   0.619 0.572 0.531    0.574

No setting's ARI beats the cosine's on every seed ("prior" on two of three, at a Spearman below the cosine's). An
earlier training (test AUC 0.977 0.976 0.980) gave, with ``--l2 norm`` (lambda 0.525 0.501 0.499):

  25 epochs (test AUC 0.977 0.976 0.980)   Spearman per seed     mean   ARI per seed          mean
  OFIV+ similarity                         0.644 0.624 0.647    0.638   0.446 0.467 0.453    0.455
  label correlation                        0.003 0.003 0.003    0.003   0.001 0.001 0.001    0.001
  last-layer cosine                        0.598 0.581 0.605    0.595   0.529 0.558 0.563    0.550

  25 epochs (test AUC 0.977 0.976 0.980)   Spearman per seed     mean   ARI per seed          mean
  OFIV+ similarity                         0.644 0.624 0.647    0.638   0.446 0.467 0.453    0.455
  label correlation                        0.003 0.003 0.003    0.003   0.001 0.001 0.001    0.001
  last-layer cosine                        0.598 0.581 0.605    0.595   0.529 0.558 0.563    0.550

and with ``--l2 gradient`` (lambda 72 101 68) Spearman 0.541 0.470 0.513, ARI 0.459 0.488 0.410.

An earlier measurement on those models, from before the lambda policies of :mod:`deepresolve.regularization`
(lambda by the same heuristic, 0.541 0.513 0.512, restarts drawn at scale 1), gave OFIV+ Spearman 0.647 0.629 0.649
(mean 0.641) and ARI 0.475 0.464 0.432 (0.457); at 15 epochs (test AUC 0.954 0.954 0.960):

  OFIV+ similarity                         0.560 0.555 0.603    0.573   0.568 0.447 0.548    0.521
  label correlation                        0.003 0.003 0.003    0.003   0.001 0.001 0.001    0.001
  last-layer cosine                        0.543 0.550 0.553    0.549   0.507 0.480 0.509    0.499

A seed's result.h5 in OUT is reused as it is: delete it to run DeepResolve again with other settings.

Why OFIV+ similarity's ARI (0.455-0.457) is below the last-layer cosine's (0.550) while its Spearman is above: not the
cut or the linkage. Clustering the true Jaccard itself (average, complete, weighted or single linkage, cut into 12)
gives the designed groups exactly (ARI 1.0); no measure's cut leaves singletons (smallest clusters 1-4 classes for
both); complete linkage moves each measure's ARI by up to +-0.1 either way (OFIV+ 0.517 0.525 0.414, cosine 0.500
0.492 0.611), noise rather than a better method. What differs is how strongly a class's extra motif, which it shares
with classes of another group, pulls it there: the nearest neighbour of a class lies in another group for 40 39 47
classes by OFIV+ similarity against 32 35 39 by cosine, and 123 of those 126 OFIV+ neighbours (105 of 106 for cosine)
share a motif with the class. OFIV+ similarity of such cross-group pairs (0.39) sits far above unrelated pairs (-0.10;
cosine 0.45 against 0.25): it follows the motif overlap, which the Spearman rewards, while the designed groups (the
core pair only) count it as an error. Classes with weak positive OFIVs (under a quarter of the median mass: 4 1 4) are
too few to explain it.
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
from deepresolve.paper import zoo
from deepresolve.paper.set_three import (
    planted_motif_response,
    recovery,
    set_three_design,
    synthetic_set_three,
)
from deepresolve.paper.train import train_model
from deepresolve.regularization import POLICIES
from deepresolve.viz import plot

MEASURES = ("OFIV+ similarity", "label correlation", "last-layer cosine")


def run_seed(seed: int, data, design, args) -> dict:
    out = args.out / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = zoo.deepsea(n_outputs=data.y.shape[1], length=data.x.shape[2], hidden=args.hidden,
                        filters=tuple(args.filters), batch_norm=True)
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
    l2 = args.l2 if args.l2 in ("auto", *POLICIES) else float(args.l2)
    kept = out / "result.h5"
    if kept.exists():  # kept like the model: delete it to compute it again (e.g. with another --l2)
        res = dr.load(kept)
    else:
        res = dr.resolve(model, "conv3", at="input", input_shape=(4, data.x.shape[2]), restarts=args.restarts, l2=l2,
                         inputs=data.x[:256], seed=seed, class_names=data.class_names)
        res.save(kept)
    print(f"seed {seed}: DeepResolve {res.n_classes} x {res.n_restarts} at {res.layer}, lambda {res.params['l2']:.3g}, "
          f"{time.perf_counter() - start:.0f} s, {res.steps.mean():.1f} head evaluations per row (mean steps)",
          flush=True)
    sims = {
        "OFIV+ similarity": dr.class_similarity(res),
        "label correlation": dr.label_correlation(data.y),
        "last-layer cosine": dr.weight_cosine(model),
    }
    if args.figures is not None and seed == args.seeds[0]:
        figures(res, model, data, design, sims, args)
    return {name: recovery(sim, design) for name, sim in sims.items()} | {"info": info}


def figures(res: dr.Result, model: torch.nn.Module, data, design, sims: dict, args) -> None:
    """The paper's Figs 7 and 9 and difference maps on set III (see the module docstring)."""
    out = args.figures
    names, groups = res.class_names, [f"g{g}" for g in design.groups]
    similarity = sims["OFIV+ similarity"]
    plot.clustered_heatmap(similarity, names, groups=groups, path=out / "fig7_similarity.png",
                           title=f"Set III: OFIV\u207a class similarity of {res.n_classes} classes, hierarchically "
                                 f"clustered; strips: designed groups")
    plot.similarity_panels({"class_similarity": similarity, "label_correlation": sims["label correlation"],
                            "weight_cosine": sims["last-layer cosine"]}, names, order=plot.leaf_order(similarity),
                           path=out / "fig7_measures.png")
    plot.cluster_panels(similarity, names, labels_corr=sims["label correlation"], n_clusters=len(set(groups)),
                        path=out / "fig9_clusters.png")
    effect = planted_motif_response(model, "conv3", data)
    tf = [m.split(" ", 1)[-1] for m in design.motifs]
    res.channel_names = [f"{tf[e.argmax()]} ({k})" if e.max() >= 1 else f"ch{k}" for k, e in enumerate(effect)]
    for i, j in args.pairs:
        plot.difference(res, i, j, top=res.n_channels, order="difference", path=out / f"difference_{i}_{j}.png")
        print(f"  difference map {names[res.index_of(i)]} - {names[res.index_of(j)]}: "
              f"{'same' if design.groups[res.index_of(i)] == design.groups[res.index_of(j)] else 'different'} "
              "designed group", flush=True)
    print(f"figures in {out}", flush=True)


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
    parser.add_argument("--l2", default="auto", help="lambda, or a policy of deepresolve.resolve: 'auto' (= 'reach', "
                        "resolve's default), 'gradient', 'prior', 'norm' (the paper's feature-norm heuristic)")
    parser.add_argument("--figures", type=Path, default=None, help="draw the paper's Figs 7 and 9 and difference "
                        "maps for the first seed into this folder")
    parser.add_argument("--pairs", type=lambda v: tuple(int(c) for c in v.split(",")), nargs="+",
                        default=[(1, 2), (1, 12)], metavar="I,J",
                        help="class pairs of the difference maps (default: 1,2 of one designed group; 1,12 of two)")
    args = parser.parse_args()
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
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
