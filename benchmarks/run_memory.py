"""Peak memory and wall time of ``resolve`` keeping the FIMs in memory or not (``keep_fims``). Prints figures.

DeepSEA-shaped head at the input of its 3rd convolution (H: 480 x 60 -> conv 960 x 8 + ReLU -> dense 919 + ReLU ->
dense 919, random weights), a subset of classes x restarts, lambda = 1. Each mode runs in its own process, so that its
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own:

  keep    ``resolve(..., keep_fims=True)``, no run store: every FIM in memory (the default);
  lean    ``resolve(..., keep_fims=False, checkpoint=tmp)``: each row's map reduced to its FIV as it finishes, the maps
          written to the run store in chunks.

For each: wall time, RSS before the run (model built), peak RSS, and the growth (peak - before). The projection to
all 919 classes: the working set of the ascent is bounded by ``batch_size`` (rows in flight), not by the number of
classes; what grows with C x T is what is kept: the FIMs (C T K W float32) with ``keep``, the FIVs (C T K float64) and
step traces with ``lean``. So projected peak = measured peak + (919 - C) T x (bytes kept per row).

Measured at full scale instead (``--classes 919``): no projection is printed. Peak memory does not depend on the
number of ascent steps (each step reuses the batch's buffers; what is kept per row is its map or FIV and a trace of
one float per step), so ``--steps 2`` caps the ascent and measures the real 919 x 10 run's memory in minutes; its
wall time is then that of 2 steps per row, not of a converged run (``benchmarks/ascent_speed.py --full``).

glibc's allocator keeps freed batch buffers in the heap once its mmap threshold has grown, which raises the peak;
``MALLOC_MMAP_THRESHOLD_=131072`` (an environment variable of glibc) fixes the threshold, so they go back to the
system. The measured figures, with the command and CPU of each, are in docs/ascent_figures.md.

Usage:
  python benchmarks/run_memory.py [--classes 64] [--restarts 10] [--batch-size 256] [--threads 1] [--steps N]
  python benchmarks/run_memory.py --classes 919 --steps 2        # the full run, steps capped
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

from hardware import device_name

FEATURES = (480, 60)
N_OUT = 919


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_mode(mode: str, classes: int, restarts: int, batch_size: int, threads: int, steps: int | None) -> dict:
    """Run resolve once in this process; return its figures (MB, seconds)."""
    import torch
    from torch import nn

    import deepresolve as dr

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    head = nn.Sequential(OrderedDict(
        conv3=nn.Conv1d(480, 960, 8), relu3=nn.ReLU(), flatten=nn.Flatten(),
        dense1=nn.Linear(960 * 53, N_OUT), relu4=nn.ReLU(), dense2=nn.Linear(N_OUT, N_OUT),
    )).eval().requires_grad_(False)
    before = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = dr.resolve(head, "conv3", at="input", input_shape=FEATURES, classes=list(range(classes)),
                            restarts=restarts, l2=1.0, seed=0, device="cpu", batch_size=batch_size, steps=steps,
                            keep_fims=mode == "keep", checkpoint=None if mode == "keep" else Path(tmp) / "run")
        seconds = time.perf_counter() - start
        chunks = (Path(tmp) / "run").glob("chunk-*.npz")
        on_disk = sum(p.stat().st_size for p in chunks) / 2**20 if mode != "keep" else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"mode": mode, "seconds": seconds, "rss_before_mb": before, "peak_mb": peak, "growth_mb": peak - before,
            "store_mb": on_disk, "mean_steps": float(result.steps.mean()), "fims_kept": result.fims is not None,
            "ofiv_sum": float(abs(result.ofiv).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=64)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="cap on ascent steps per row (memory does not depend "
                        "on it; wall time does)")
    parser.add_argument("--mode", choices=("keep", "lean"), help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
    if args.mode:
        print(json.dumps(one_mode(args.mode, args.classes, args.restarts, args.batch_size, args.threads, args.steps)))
        return

    C, T, (K, W) = args.classes, args.restarts, FEATURES
    print(f"resolve on a DeepSEA-shaped head, input of conv3 ({K} x {W}), {C} classes x {T} restarts, lambda 1, "
          f"batch_size {args.batch_size}, {args.threads} torch thread(s)"
          + (f", at most {args.steps} ascent steps per row" if args.steps else ""), flush=True)
    figures = {}
    for mode in ("keep", "lean"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--classes", str(C), "--restarts", str(T),
                              "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
                             + (["--steps", str(args.steps)] if args.steps else []),
                             check=True, capture_output=True, text=True)
        figures[mode] = f = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {mode:5s} wall {f['seconds']:7.1f} s   RSS before {f['rss_before_mb']:7.1f} MB   peak "
              f"{f['peak_mb']:7.1f} MB   growth {f['growth_mb']:7.1f} MB   run store {f['store_mb']:6.1f} MB   "
              f"mean steps {f['mean_steps']:.1f}", flush=True)
    same = figures["keep"]["ofiv_sum"] == figures["lean"]["ofiv_sum"]
    print(f"  same OFIVs in both modes: {same}")
    if C >= N_OUT:
        return

    # What each mode keeps per row, beyond the batch-bounded working set (traces: ~mean steps float32 each).
    trace_bytes = 4 * 2 * figures["keep"]["mean_steps"]
    per_row = {"keep": 4 * K * W + 8 * K + trace_bytes, "lean": 8 * K + trace_bytes}
    print(f"projection to all {N_OUT} classes x {T} restarts (peak + the rows' kept data; the ascent's working set is "
          f"bounded by batch_size):")
    for mode, f in figures.items():
        extra = (N_OUT - C) * T * per_row[mode] / 2**20
        print(f"  {mode:5s} peak ~ {f['peak_mb'] + extra:8.1f} MB   (kept per row {per_row[mode] / 1024:7.1f} KiB; "
              f"FIMs {N_OUT * T * K * W * 4 / 2**30:.2f} GiB {'in memory' if mode == 'keep' else 'on disk only'})")


if __name__ == "__main__":
    main()
