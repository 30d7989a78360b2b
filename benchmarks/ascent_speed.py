"""Speed of the batched feature-map ascent on a DeepSEA-shaped head. Prints figures; asserts nothing.

The head is the part of DeepSEA after the input of its 3rd convolution: H of shape (480, 60) ->
conv 960 x 8 + ReLU -> dense 919 + ReLU -> dense 919 (random weights, PyTorch's default initialisation).

Figures (all measured in one run, on whatever device is picked):
  (a) row-steps per second of the batched engine (every class x restart pair in one batch);
  (b) the same work as a per-class loop (batch = T restarts, one class at a time, as the original code did), and
      the ratio;
  (c) achieved GFLOP/s of an ascent step against a large plain torch.matmul on the same device;
  (d) steps to convergence (objective within 1e-4 relative of a 5,000-step reference run) for the default
      optimiser ("matched"), the bundle step ("bundle") and the paper's schedule (plain ascent, decay from
      step 500 with decay = 0.2, min_lr 1e-6, stop after 10 non-improving steps);
  (e) with --full: all 919 classes x 10 restarts end to end through deepresolve.resolve at --l2 (default 1),
      keep_fims=False, with --optimizer, --tol and --cuts; with --compare N, N spread classes are rerun with the
      default optimiser and the final objectives compared;
  (f) with --subset N: N classes (spread over the 919) x --subset-restarts restarts, "bundle" and "matched" at --l2
      (with --tol and --cuts when given, else each optimiser's defaults): steps per row, wall time and the
      objective gap to the best of them and a "bundle" run of --subset-steps steps (median, 90 %, max).

--l2 auto (or a policy name: reach, gradient) takes the lambda of resolve's default policy (or of that policy) over
all 919 classes, and its restart scale.
--plain-conv runs the head's convolutions through torch's own backward instead of the CPU fast path
(deepresolve.ascent.fastconv), to compare the two.
The measured figures, with the command and CPU of each, are in docs/ascent_figures.md.

Usage:
  python benchmarks/ascent_speed.py [--classes 16] [--restarts 10] [--device cpu|cuda]
                                    [--subset 24 [--subset-restarts 2]] [--l2 L|auto|gradient] [--tol T] [--cuts K]
                                    [--full [--full-only] [--optimizer NAME] [--compare N]] [--plain-conv]
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict

import numpy as np
import torch
from hardware import device_name
from torch import nn

import deepresolve as dr
from deepresolve._model import check_device
from deepresolve.ascent import evaluate, feature_ascent
from deepresolve.regularization import choose_l2

FEATURES = (480, 60)


def deepsea_head(n_out: int = 919) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(
        conv3=nn.Conv1d(480, 960, 8), relu3=nn.ReLU(), flatten=nn.Flatten(),
        dense1=nn.Linear(960 * 53, n_out), relu4=nn.ReLU(), dense2=nn.Linear(n_out, n_out),
    )).eval().requires_grad_(False)


def step_flops(n_out: int = 919) -> float:
    """FLOPs of one row's forward + backward with respect to H (no weight gradients)."""
    conv = 2 * 53 * 960 * 480 * 8
    dense = 2 * 960 * 53 * n_out + 2 * n_out * n_out
    return 2.0 * (conv + dense)


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def matmul_gflops(device: torch.device, n: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    seconds = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / seconds / 1e9


def fixed_steps(head, classes, restarts, device, batch_size, steps):
    # patience > steps: no row converges early, so every row runs exactly `steps` steps
    return feature_ascent(head, FEATURES, classes, restarts, 1.0, steps=steps, tol=0.0, patience=steps + 1,
                          device=device, batch_size=batch_size)


def steps_to_reach(trace: np.ndarray, target: float, rel: float = 1e-4) -> int:
    hit = np.flatnonzero(trace >= target - rel * abs(target))
    return int(hit[0]) + 1 if len(hit) else -1


def policy_l2(head: nn.Module, policy: str) -> tuple[float, float]:
    """lambda and restart scale of a head-only policy ("auto", "reach", "gradient") on this head (all 919 classes)."""
    choice = choose_l2(policy, head, nn.Identity(), FEATURES, range(919), input_shape=None)
    return choice.l2, choice.init_scale


def step_options(args: argparse.Namespace, optimizer: str) -> dict:
    """--tol for every optimiser and --cuts for "bundle", where given."""
    options = {} if args.tol is None else {"tol": args.tol}
    if args.cuts is not None and optimizer == "bundle":
        options["cuts"] = args.cuts
    return options


def subset_comparison(head: nn.Module, args: argparse.Namespace, device: torch.device) -> None:
    """(f): "matched" and "bundle" against a long "bundle" run on a spread subset of classes."""
    n_classes, restarts, reference_steps = args.subset, args.subset_restarts, args.subset_steps
    classes = list(range(3, 919, 919 // n_classes))[:n_classes]
    l2, init_scale = policy_l2(head, args.l2) if isinstance(args.l2, str) else (args.l2, 1.0)
    t0 = time.perf_counter()
    reference = feature_ascent(head, FEATURES, classes, restarts, l2, optimizer="bundle", tol=0.0,
                               patience=reference_steps + 1, steps=reference_steps, init_scale=init_scale,
                               device=device)
    print(f"(f) {len(classes)} classes x {restarts} restarts, l2 {l2:.4g} (init_scale {init_scale:.3g}); reference: "
          f"bundle, {reference_steps} steps ({time.perf_counter() - t0:.0f} s)", flush=True)
    runs = {name: feature_ascent(head, FEATURES, classes, restarts, l2, optimizer=name, init_scale=init_scale,
                                 device=device, **step_options(args, name))
            for name in ("bundle", "matched")}
    best = np.maximum.reduce([reference.objective.ravel()] + [out.objective.ravel() for out in runs.values()])
    for name, out in runs.items():
        gap = (best - out.objective.ravel()) / np.abs(best)
        print(f"    {name:8s} {step_options(args, name) or 'defaults'}: steps per row mean {out.steps.mean():.1f} "
              f"(max {out.steps.max()}); {out.seconds:.0f} s, {out.row_steps / out.seconds:.1f} row-steps/s; "
              f"objective gap median {np.median(gap):.1e}, 90 % {np.quantile(gap, 0.9):.1e}, max {gap.max():.1e}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=16, help="classes for (a)-(c)")
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3, help="fixed steps for the throughput figures")
    parser.add_argument("--convergence-rows", type=int, default=4, help="classes (x 1 restart) for (d); 0 skips it")
    parser.add_argument("--reference-steps", type=int, default=5000)
    parser.add_argument("--device", default=None)
    parser.add_argument("--full", action="store_true", help="also run all 919 classes x 10 restarts")
    parser.add_argument("--precision", nargs="+", default=["float32"], choices=["float32", "bfloat16"],
                        help="precisions of the full run (each one runs)")
    parser.add_argument("--optimizer", default=None, choices=["bundle", "matched", "paper"],
                        help="optimiser of the full run (default: resolve's default)")
    parser.add_argument("--full-only", action="store_true", help="skip (a)-(d)")
    parser.add_argument("--l2", default="1", help="lambda of (e) and (f): a number, 'auto', 'reach' or 'gradient' "
                        "(default 1)")
    parser.add_argument("--tol", type=float, default=None, help="tol of (e) and (f) (default: the optimiser's)")
    parser.add_argument("--cuts", type=int, default=None, help="cuts of \"bundle\" in (e) and (f) (default: 6)")
    parser.add_argument("--compare", type=int, default=0,
                        help="after the full run, rerun N spread classes with the default optimiser and compare "
                             "objectives")
    parser.add_argument("--subset", type=int, default=0, help="classes for (f); 0 skips it")
    parser.add_argument("--subset-restarts", type=int, default=2, help="restarts per class in (f)")
    parser.add_argument("--subset-steps", type=int, default=200, help="steps of the reference run of (f)")
    parser.add_argument("--plain-conv", action="store_true",
                        help="torch's own convolution backward instead of the CPU fast path (to compare them)")
    args = parser.parse_args()
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
    if args.plain_conv:
        import deepresolve.ascent.engine

        deepresolve.ascent.engine.fast_input_gradients = lambda module: module
    if args.l2 not in ("auto", "reach", "gradient"):
        args.l2 = float(args.l2)

    device = check_device(args.device)
    head = deepsea_head().to(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"device: {device} ({where})")
    print(f"torch {torch.__version__}; head: H (480, 60) -> conv 960x8 -> dense 919 -> dense 919; "
          f"{step_flops() / 1e9:.2f} GFLOP per row-step")

    if not args.full_only:
        basics(head, args, device)
    if args.subset:
        subset_comparison(head, args, device)
    if args.full:
        full_run(args, device)


def basics(head: nn.Module, args: argparse.Namespace, device: torch.device) -> None:
    """(a) to (d)."""
    classes = list(range(args.classes))
    rows = len(classes) * args.restarts
    fixed_steps(head, classes[:1], 2, device, None, 1)  # warm-up
    batched = fixed_steps(head, classes, args.restarts, device, None, args.steps)
    rate = batched.row_steps / batched.seconds
    print(f"(a) batched engine: {rows} rows x {args.steps} steps in {batched.seconds:.2f} s = {rate:.1f} row-steps/s")

    start = time.perf_counter()
    looped_rows = 0
    for c in classes:
        looped_rows += fixed_steps(head, [c], args.restarts, device, args.restarts, args.steps).row_steps
    loop_seconds = time.perf_counter() - start
    loop_rate = looped_rows / loop_seconds
    print(f"(b) per-class loop (batch = {args.restarts}): {loop_rate:.1f} row-steps/s; batched / loop = "
          f"{rate / loop_rate:.2f}x")

    achieved = rate * step_flops() / 1e9
    peak = matmul_gflops(device)
    print(f"(c) ascent step: {achieved:.1f} GFLOP/s; plain 4096^3 matmul: {peak:.1f} GFLOP/s; "
          f"ratio {achieved / peak:.0%}")

    if not args.convergence_rows:
        return
    conv_classes = list(range(args.convergence_rows))
    t0 = time.perf_counter()
    reference = feature_ascent(head, FEATURES, conv_classes, 1, 1.0, optimizer="paper", lr=0.1,
                               steps=args.reference_steps, patience=args.reference_steps, device=device)
    ref_obj = reference.objective[:, 0]
    print(f"(d) reference: paper ascent lr0 0.1 for {args.reference_steps} steps on {len(conv_classes)} rows "
          f"({time.perf_counter() - t0:.0f} s)")
    runs = {"matched (default)": dict(optimizer="matched"), "bundle": dict(optimizer="bundle"),
            "matched, bfloat16": dict(precision="bfloat16")}
    for lr0 in (0.1, 0.01):
        runs[f"paper, lr0 = {lr0}"] = dict(optimizer="paper", lr=lr0)
    for name, kwargs in runs.items():
        out = feature_ascent(head, FEATURES, conv_classes, 1, 1.0, device=device, **kwargs)
        reach = [steps_to_reach(t, o) for t, o in zip(out.trace, ref_obj)]
        # the final maps scored in float32, whatever precision found them
        _, final = evaluate(head, out.fims[:, 0].to(device), conv_classes, 1.0)
        gap = (final.cpu().numpy() - ref_obj) / np.abs(ref_obj)  # > 0: ends above the reference
        print(f"    {name:20s} steps to within 1e-4 of reference: {reach}; stopped after {out.steps[:, 0].tolist()}; "
              "final objective vs reference (float32, > 0 = higher): "
              f"{np.array2string(gap, formatter={'float_kind': lambda v: f'{v:+.1e}'})}")



def full_run(args: argparse.Namespace, device: torch.device) -> None:
    """(e): all 919 classes x 10 restarts through resolve, and the objective against the default optimiser."""
    model = nn.Sequential(OrderedDict(h=nn.Identity(), head=deepsea_head()))
    chosen = {} if args.optimizer is None else {"optimizer": args.optimizer}
    chosen.update(step_options(args, args.optimizer or "matched"))
    for precision in args.precision:
        t0 = time.perf_counter()
        res = dr.resolve(model, "h", input_shape=FEATURES, restarts=10, l2=args.l2, device=device,
                         precision=precision, keep_fims=False, **chosen)
        print(f"(e) all {res.n_classes} classes x {res.n_restarts} restarts, l2 {res.params['l2']:.4g}, "
              f"{res.params['optimizer']} "
              f"(tol {res.params['tol']:g}), {precision}: {time.perf_counter() - t0:.0f} s (ascent "
              f"{res.params['ascent_seconds']:.0f} s, {res.params['row_steps']} row-steps = "
              f"{res.params['row_steps'] / res.params['ascent_seconds']:.0f}/s, mean steps {res.steps.mean():.2f}, "
              f"max {res.steps.max()}); classes with >1 component: {int((res.n_components > 1).sum())}", flush=True)
        if args.compare:
            # the same rows with the default optimiser and its defaults: is the objective the same?
            rows = list(range(0, res.n_classes, res.n_classes // args.compare))[:args.compare]
            t1 = time.perf_counter()
            ref = dr.resolve(model, "h", input_shape=FEATURES, classes=rows, restarts=10, l2=args.l2, device=device,
                             keep_fims=False)
            mine = np.nanmax(res.trace[rows], axis=-1).ravel()
            base = np.nanmax(ref.trace, axis=-1).ravel()
            below = (base - mine) / np.abs(base)  # > 0: this run ended below the default's objective
            print(f"    against the default ({ref.params['optimizer']}, tol {ref.params['tol']:g}) on {len(rows)} "
                  "classes "
                  f"x 10 restarts ({time.perf_counter() - t1:.0f} s, mean steps {ref.steps.mean():.2f}): final "
                  f"objective below it by median {np.median(below):.1e} (|difference| median "
                  f"{np.median(np.abs(below)):.1e}), 90 % {np.quantile(below, 0.9):.1e}, max {below.max():.1e}",
                  flush=True)


if __name__ == "__main__":
    main()
