"""Train the fixture models of ``deepresolve.paper.fixtures.CASES`` once and write them into the package.

Each case is trained with its seed on one thread, checked (test AUC and every presence pattern of
the planted motifs learned, see ``deepresolve.paper.fixtures.verify``; a model that fails is not
written) and saved as ``src/deepresolve/paper/fixtures/NAME.pt`` (float32 state dict) with a JSON
sidecar ``NAME.json`` (architecture, data, training settings, seed, AUC, torch version, command).

The weights depend on the CPU's float kernels; that is the point of committing them. Rerunning
on another machine gives another (equally valid) model: commit the new files only on purpose,
and rerun the claims tests (``tests/paper/test_claims.py``) on them.

Usage::

    python scripts/make_fixtures.py                 # every case
    python scripts/make_fixtures.py set_one         # some cases
    python scripts/make_fixtures.py --out /tmp/fx   # somewhere else (to compare before committing)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepresolve.paper import fixtures

PACKAGE_DIR = Path(fixtures.__file__).parent


def make(name: str, out: Path, command: str) -> dict:
    """Train, verify and write one fixture; return its sidecar."""
    case = fixtures.CASES[name]
    started = time.perf_counter()
    model, fit, data = fixtures.train_case(name)
    figures = fixtures.verify(name, model, data, fit.split)
    state = {k: v.detach().to(torch.float32).cpu().contiguous() for k, v in model.state_dict().items()}
    weights = out / f"{name}.pt"
    torch.save(state, weights)
    meta = {
        "name": name,
        "description": case.description,
        "architecture": {"builder": case.model[0], "kwargs": case.model[1]},
        "data": {"builder": case.data[0], "kwargs": case.data[1], "n_sequences": len(data),
                 "n_test": len(fit.split["test"])},
        "train": fit.params,
        "seed": case.seed,
        **figures,
        "val_auc": fit.val_auc.tolist(),
        "best_epoch": fit.best_epoch,
        "n_parameters": int(sum(v.numel() for v in state.values())),
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "checks": {"min_auc": case.min_auc, "min_pattern_accuracy": case.min_pattern_accuracy},
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        # kernel choices that change the trained weights (see the module docstring of deepresolve.paper.fixtures)
        "environment": {k: os.environ[k] for k in ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
        "seconds": round(time.perf_counter() - started, 1),
        "command": command,
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"cases to make (default: all of {sorted(fixtures.CASES)})")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help="folder to write (default: the package's)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(fixtures.CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; expected some of {sorted(fixtures.CASES)}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    # One thread: the arithmetic order does not depend on the core count (it still depends on the CPU).
    torch.set_num_threads(1)
    command = "python scripts/make_fixtures.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    for name in args.names or list(fixtures.CASES):
        meta = make(name, args.out, command.strip())
        size = (args.out / f"{name}.pt").stat().st_size
        print(f"{name}: test AUC {np.round(meta['test_auc'], 4).tolist()}, {meta['train']['epochs_run']} epochs, "
              f"{size / 1024:.0f} KB, {meta['seconds']:.0f} s; pattern accuracy "
              f"{ {p: round(min(a), 3) for p, a in meta['pattern_accuracy'].items()} }", flush=True)


if __name__ == "__main__":
    main()
