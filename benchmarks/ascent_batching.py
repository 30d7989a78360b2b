"""How much the ascent's results move with the batch size: the same rows at several batch sizes against the default
batch. Prints figures; asserts nothing.

:mod:`deepresolve.ascent` ("Batching") states the tolerance: final objectives within 1e-3 relative ("bundle":
2e-3), FIVs within 5e-2 x the class's largest |FIV|. For each optimiser and batch size this prints the largest and
median |objective difference| / |objective|, |FIV difference| / the class's largest |FIV|, |FIM entry difference| /
the class's largest |FIM|, and the largest difference in steps, against the default batch.

  --heads N        N seeded untrained heads H (8, 12) -> conv 12 x 5, ReLU, max-pool 2, dense 16, ReLU, dense 4
                   (ReLU kinks everywhere): 4 classes x 3 restarts at l2 = 0.7, the default batch holding all 12 rows
                   ("paper": lr 0.05, 400 steps);
  --keras FOLDER   a Keras model (deepresolve.load_keras, one-hot input) through deepresolve.resolve at --layer
                   (default "flatten", the input of the dense layer of the paper's tf422 models), l2="prior",
                   10 restarts, random reference sequences of --length; also prints each optimiser's mean objective.

The measured figures, with the command and CPU of each, are in docs/ascent_figures.md.

Usage:
  python benchmarks/ascent_batching.py --heads 24 [--batch-sizes 1 5 7] [--optimizers matched bundle paper] [--cuts K]
  python benchmarks/ascent_batching.py --keras FOLDER [--layer flatten] [--length 101] [--batch-sizes 1 3 7]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from hardware import device_name
from torch import nn

import deepresolve as dr
from deepresolve.ascent import feature_ascent

FEATURES = (8, 12)


def small_head(seed: int) -> nn.Sequential:
    """An untrained head (8, 12) -> 4 outputs, as in tests/test_ascent.py."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(8, 12, 5), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(12 * 4, 16),
                         nn.ReLU(), nn.Linear(16, 4)).eval().requires_grad_(False)


def differences(ref: dict, out: dict) -> dict:
    """Per-row differences of ``out`` from ``ref``; each holds fims (C, T, K, ...), objective and steps (C, T)."""
    C, T = ref["objective"].shape
    fims_a, fims_b = (np.asarray(x["fims"], np.float64).reshape(C, T, -1) for x in (ref, out))
    K = np.asarray(ref["fims"]).shape[2]
    fiv_a, fiv_b = fims_a.reshape(C, T, K, -1).mean(-1), fims_b.reshape(C, T, K, -1).mean(-1)
    fiv_scale = np.abs(fiv_a).reshape(C, -1).max(1)[:, None, None]
    fim_scale = np.abs(fims_a).reshape(C, -1).max(1)[:, None, None]
    return {"objective": (np.abs(out["objective"] - ref["objective"]) / np.abs(ref["objective"])).ravel(),
            "fiv": (np.abs(fiv_b - fiv_a) / fiv_scale).ravel(), "fim": (np.abs(fims_b - fims_a) / fim_scale).ravel(),
            "steps": np.abs(out["steps"] - ref["steps"]).ravel()}


def report(name: str, batch_size: int, found: list[dict]) -> None:
    d = {key: np.concatenate([f[key] for f in found]) for key in found[0]}
    print(f"  {name:8s} batch {batch_size:3d}: objective max {d['objective'].max():.1e} (median "
          f"{np.median(d['objective']):.1e}); FIV max {d['fiv'].max():.1e} (median {np.median(d['fiv']):.1e}); "
          f"FIM entry max {d['fim'].max():.1e} (median {np.median(d['fim']):.1e}); steps max {int(d['steps'].max())}",
          flush=True)


def seeded_heads(args: argparse.Namespace) -> None:
    print(f"{args.heads} seeded heads, 4 classes x 3 restarts, l2 0.7; against the default batch (12 rows)")
    for optimizer in args.optimizers:
        kwargs = {"optimizer": optimizer, **({"lr": 0.05, "steps": 400} if optimizer == "paper" else {}),
                  **({"cuts": args.cuts} if optimizer == "bundle" and args.cuts else {})}
        found: dict[int, list[dict]] = {b: [] for b in args.batch_sizes}
        for seed in range(args.heads):
            head = small_head(seed)
            runs = {b: feature_ascent(head, FEATURES, range(4), 3, 0.7, seed=seed, batch_size=b, **kwargs)
                    for b in [None, *args.batch_sizes]}
            ref = vars(runs[None])
            for b in args.batch_sizes:
                found[b].append(differences(ref, vars(runs[b])))
        for b in args.batch_sizes:
            report(optimizer, b, found[b])


def keras_model(args: argparse.Namespace) -> None:
    model = dr.load_keras(args.keras, onehot=True)
    print(f"{args.keras} at {args.layer!r}, l2='prior', 10 restarts; against the default batch")
    for optimizer in args.optimizers:
        def run(batch_size: int | None, optimizer: str = optimizer) -> dict:
            res = dr.resolve(model, args.layer, input_shape=(4, args.length), restarts=10, l2="prior",
                             optimizer=optimizer, batch_size=batch_size,
                             **({"cuts": args.cuts} if optimizer == "bundle" and args.cuts else {}))
            objective = res.scores - res.params["l2"] * (res.fims.astype(np.float64) ** 2).reshape(
                *res.scores.shape, -1).sum(-1)
            return {"fims": res.fims, "objective": objective, "steps": res.steps}

        ref = run(None)
        print(f"  {optimizer:8s} mean objective {ref['objective'].mean():.3f}")
        for b in args.batch_sizes:
            report(optimizer, b, [differences(ref, run(b))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", type=int, default=0, help="seeded small heads; 0 skips them")
    parser.add_argument("--keras", default=None, help="a Keras model folder, e.g. one of the tf422 CTCF models")
    parser.add_argument("--layer", default="flatten")
    parser.add_argument("--length", type=int, default=101, help="input length of the Keras model")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 5, 7])
    parser.add_argument("--cuts", type=int, default=None, help="cuts of \"bundle\" (default: 6)")
    parser.add_argument("--optimizers", nargs="+", default=["matched", "bundle", "paper"],
                        choices=["matched", "bundle", "paper"])
    args = parser.parse_args()
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
    torch.set_num_threads(1)  # as in the tests: the thread count can change the rounding too, and is not measured here
    if args.heads:
        seeded_heads(args)
    if args.keras:
        keras_model(args)


if __name__ == "__main__":
    main()
