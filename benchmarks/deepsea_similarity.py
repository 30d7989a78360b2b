"""The paper's DeepSEA experiment: 919 classes at the input of the 3rd convolution, class similarity, clustering
and DNase association counts (Figs 7-8). Prints figures and writes tables; asserts nothing.

The script downloads nothing: give DeepSEA's published weights as a torch state-dict file, either Kipoi's port
(``--weights deepsea_cpu.pth --architecture deepsea``; also ``beluga`` or ``basset`` files, analysed at the layer of
``deepresolve.io.architectures.PAPER_LAYERS``) or of ``deepresolve.paper.zoo.deepsea`` (``--weights`` alone).
Without one the script runs the same pipeline on random weights, which measures speed only (the similarity of a
random network means nothing).

Resumable: finished (class, restart) rows go to OUT/checkpoint/ as they come; rerun the same command after
an interruption.

Figures (``deepresolve.viz.plot``) go to OUT/figures/:

  fig7_similarity.png   the OFIV+ similarity of the outputs, hierarchically clustered (paper Fig 7); with the feature
                        table, colour strips mark DNase, TF and histone-mark outputs
  fig8_dnase.png        with the feature table and both DNase and other outputs: (a) the TF/histone x DNase block,
                        bi-clustered, (b) each TF/histone output's strong positive and negative similarities with
                        DNase outputs (85 % and 15 % quantiles), the most associated named (paper Fig 8)
  fig9_clusters.png     the most cohesive of the ``--clusters`` clusters (paper Fig 9; no label matrix here, so
                        without the label-correlation panels)

Usage:
  python benchmarks/deepsea_similarity.py --out deepsea_out [--weights deepsea.pt] [--classes 919] [--restarts 10]
  python benchmarks/deepsea_similarity.py --out smoke --classes 160 --restarts 2 --steps 3   # random weights, minutes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hardware import device_name

import deepresolve as dr
from deepresolve.io.architectures import ARCHITECTURES, PAPER_LAYERS, load_architecture
from deepresolve.io.deepsea import feature_table
from deepresolve.paper import zoo
from deepresolve.similarity import dnase_association, last_linear_weight
from deepresolve.viz import plot

SHARED_FEATURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "deepsea" / "deepsea919_features.tsv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None,
                        help="state dict of a port (with --architecture) or of deepresolve.paper.zoo.deepsea")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default=None, help="the port --weights comes from")
    parser.add_argument("--features", type=Path, default=SHARED_FEATURES, help="TSV of the 919 outputs")
    parser.add_argument("--classes", type=int, default=919, help="analyse the first N outputs")
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--l2", default="1.0")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--steps", type=int, default=None, help="cap on ascent steps per row (a quick smoke run)")
    args = parser.parse_args()
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor

    layer = "conv3"
    if args.architecture is not None:
        if args.weights is None:
            parser.error("--architecture needs --weights FILE")
        model = load_architecture(args.weights, args.architecture)
        layer = PAPER_LAYERS[args.architecture]
    elif args.weights is not None:
        model = zoo.deepsea_from_file(args.weights)
    else:
        torch.manual_seed(0)
        model = zoo.deepsea()
        print("no --weights: random DeepSEA-shaped network (speed only; its similarities are meaningless)")
    features = feature_table(args.features) if args.features.exists() else None
    names = features["name"].tolist() if features is not None and len(features) == 919 else None
    n_outputs = last_linear_weight(model).shape[0]
    if getattr(model, "architecture", "deepsea") != "deepsea":
        names, features = None, None  # the feature table names DeepSEA's outputs only

    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    res = dr.resolve(model, layer, at="input", input_shape=(4, getattr(model, "input_length", 1000)),
                     classes=list(range(min(args.classes, n_outputs))), restarts=args.restarts,
                     l2=float(args.l2), steps=args.steps, batch_size=args.batch_size, device=args.device,
                     class_names=names, checkpoint=args.out / "checkpoint", progress=True)
    seconds = time.perf_counter() - start
    res.save(args.out / "result.h5")
    print(f"{res.n_classes} classes x {res.n_restarts} restarts in {seconds:.0f} s "
          f"(ascent {res.params['ascent_seconds']:.0f} s, mean steps {res.steps.mean():.1f}, "
          f"device {res.params['device']})")
    counts = pd.Series(res.n_components).value_counts().sort_index()
    print("mixture components chosen:", dict(counts))

    similarity = dr.class_similarity(res)
    cosine = dr.weight_cosine(model, res.classes)
    off = ~np.eye(len(similarity), dtype=bool)
    print(f"OFIV+ similarity vs last-layer cosine: Pearson r = {np.corrcoef(similarity[off], cosine[off])[0, 1]:.3f}")
    clusters = dr.cluster_classes(similarity, n_clusters=min(args.clusters, res.n_classes))
    pd.DataFrame({"class": res.class_names, "cluster": clusters.labels}).to_csv(args.out / "clusters.tsv", sep="\t",
                                                                              index=False)
    np.save(args.out / "similarity.npy", similarity)

    figures = args.out / "figures"
    categories = features.loc[res.classes, "category"].tolist() if features is not None else None
    plot.clustered_heatmap(similarity, res.class_names, linkage=clusters, groups=categories,
                           path=figures / "fig7_similarity.png",
                           title=f"OFIV\u207a class similarity of {res.n_classes} outputs, hierarchically clustered")
    plot.cluster_panels(similarity, res.class_names, n_clusters=min(args.clusters, res.n_classes), linkage=clusters,
                        path=figures / "fig9_clusters.png")
    if features is not None:
        assays = features.loc[res.classes, "assay"].tolist()
        if "DNase" in assays and set(assays) != {"DNase"}:
            assoc = dnase_association(similarity, assays)
            assoc.insert(0, "class", [res.class_names[i] for i in assoc.index])
            assoc.to_csv(args.out / "dnase_association.tsv", sep="\t", index=False)
            print(f"DNase association (strong > {assoc.attrs['high']:.2f}, weak < {assoc.attrs['low']:.2f}); "
                  "most positive:")
            print(assoc.head(10).to_string(index=False))
            print("most negative:")
            print(assoc.tail(10).to_string(index=False))
            plot.dnase_association(similarity, assays, names=res.class_names, path=figures / "fig8_dnase.png")
        else:
            print("no Fig 8: the analysed outputs are not both DNase and other outputs (the first 125 are DNase)")
    print(f"wrote {args.out} (figures in {figures})")


if __name__ == "__main__":
    main()
