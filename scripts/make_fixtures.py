"""Train the committed fixture models once, check them, and write them as float32 state dicts with a JSON sidecar.

Two families, one procedure (train with the case's seed on one thread, check, write only if the check passes):

- the paper's synthetic models, ``deepresolve.paper.fixtures.CASES`` (set I at the demo's size, set II), checked by
  ``deepresolve.paper.fixtures.verify`` (test AUC, every presence pattern of the planted motifs learned) and written
  into the package, ``src/deepresolve/paper/fixtures/NAME.pt`` (the demo and ``tests/paper/test_claims.py`` load
  them);
- the logic models of the interaction tests, :data:`LOGIC` (cases of ``deepresolve.paper.logic.CASES``), checked by
  ``deepresolve.paper.logic.check_logic`` on the held-out split (every presence pattern: the mean output has the
  label's sign and >= 70 % of its sequences are classified right; regression: every pattern's mean within 0.2 of the
  target) and written to ``tests/fixtures/logic/NAME.pt`` (``tests/test_interactions.py``);
- 200-bp models of the genomics-like suite, :data:`GENOMIC` (cases of ``deepresolve.paper.genomic.CASES``), checked
  the same way on every task and written to ``tests/fixtures/genomic/NAME.pt`` (``tests/paper/test_genomic.py``).

Each sidecar ``NAME.json`` records the data, architecture, training settings, seed, the check's figures, sha256 of the
``.pt``, torch/numpy/python versions, the kernel-choosing environment variables and the command.

The weights depend on the CPU's float kernels; that is the point of committing them. Rerunning on another machine
gives another (equally valid) model: commit new files only on purpose, then rerun the tests that read them.

Usage::

    python scripts/make_fixtures.py                 # every fixture of both families
    python scripts/make_fixtures.py set_one xor40   # some
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
from torch import nn

from deepresolve.paper import fixtures
from deepresolve.paper.genomic import CASES as GENOMIC_CASES
from deepresolve.paper.logic import CASES as LOGIC_CASES
from deepresolve.paper.logic import check_logic, train_logic_model

PACKAGE_DIR = Path(fixtures.__file__).parent
LOGIC_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "logic"
#: Logic fixture name -> (case of deepresolve.paper.logic.CASES, training seed).
LOGIC = {"xor40": ("xor40", 0), "not": ("not", 0), "or": ("or", 0), "additive": ("additive", 0)}
GENOMIC_DIR = LOGIC_DIR.parent / "genomic"
#: Genomic fixture name -> (case of deepresolve.paper.genomic.CASES, training seed): the long-partner AND and the
#: 3-task model (C AND (A XOR B) AND NOT D and the shared-core AND did not pass their check at seed 0).
GENOMIC = {"and_long_200": ("and_long_200", 0), "multitask_200": ("multitask_200", 0)}


def _write(model: nn.Module, out: Path, name: str, meta: dict, started: float, command: str) -> dict:
    """Save the float32 state dict and its sidecar (``meta`` plus provenance); return the sidecar."""
    state = {k: v.detach().to(torch.float32).cpu().contiguous() for k, v in model.state_dict().items()}
    weights = out / f"{name}.pt"
    torch.save(state, weights)
    meta = {
        "name": name,
        **meta,
        "n_parameters": int(sum(v.numel() for v in state.values())),
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
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


def make_paper(name: str, out: Path, command: str) -> dict:
    """Train, verify (raises if the model failed to learn) and write one of the paper's synthetic fixtures."""
    case = fixtures.CASES[name]
    started = time.perf_counter()
    model, fit, data = fixtures.train_case(name)
    figures = fixtures.verify(name, model, data, fit.split)
    meta = _write(model, out, name, {
        "description": case.description,
        "architecture": {"builder": case.model[0], "kwargs": case.model[1]},
        "data": {"builder": case.data[0], "kwargs": case.data[1], "n_sequences": len(data),
                 "n_test": len(fit.split["test"])},
        "train": fit.params,
        "seed": case.seed,
        **figures,
        "val_auc": fit.val_auc.tolist(),
        "best_epoch": fit.best_epoch,
        "checks": {"min_auc": case.min_auc, "min_pattern_accuracy": case.min_pattern_accuracy},
    }, started, command)
    size = (out / f"{name}.pt").stat().st_size
    print(f"{name}: test AUC {np.round(meta['test_auc'], 4).tolist()}, {meta['train']['epochs_run']} epochs, "
          f"{size / 1024:.0f} KB, {meta['seconds']:.0f} s; pattern accuracy "
          f"{ {p: round(min(a), 3) for p, a in meta['pattern_accuracy'].items()} }", flush=True)
    return meta


def make_logic(name: str, out: Path, command: str) -> dict | None:
    """Train, check and write one logic or genomic fixture; None (nothing written) when the model does not implement
    its logic."""
    case_name, seed = LOGIC[name] if name in LOGIC else GENOMIC[name]
    case = LOGIC_CASES[case_name] if name in LOGIC else GENOMIC_CASES[case_name]
    started = time.perf_counter()
    data = case.data(seed)
    model, info = train_logic_model(case, data, seed)
    ok, rows = check_logic(model, data, regression=case.regression, index=info["split"]["test"])
    if not ok:
        print(f"{name}: the trained model does not implement its logic; nothing written", flush=True)
        return None
    meta = _write(model, out, name, {
        "case": case_name, "seed": seed, "motifs": list(case.motifs), "layer": case.layer, "length": case.length,
        "regression": case.regression, **{k: v for k, v in info.items() if k != "split"}, "ok": ok, "patterns": rows,
    }, started, command)
    print(f"{name}: written ({meta['seconds']} s)", flush=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    every = [*fixtures.CASES, *LOGIC, *GENOMIC]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"fixtures to make (default: all of {every})")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to write (default: the package's for the paper's, tests/fixtures/logic for logic, "
                             "tests/fixtures/genomic for the genomic suite)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(every))
    if unknown:
        parser.error(f"unknown fixture(s) {unknown}; expected some of {every}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a folder")
    # One thread: the arithmetic order does not depend on the core count (it still depends on the CPU).
    torch.set_num_threads(1)
    command = ("python scripts/make_fixtures.py " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
    failed = []
    for name in args.names or every:
        out = args.out or (PACKAGE_DIR if name in fixtures.CASES else LOGIC_DIR if name in LOGIC else GENOMIC_DIR)
        out.mkdir(parents=True, exist_ok=True)
        if name in fixtures.CASES:
            make_paper(name, out, command)
        elif make_logic(name, out, command) is None:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
