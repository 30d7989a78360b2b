"""Train the logic fixture models of the interaction tests once, check their logic and write them as state dicts.

Each case of :data:`deepresolve.paper.logic.CASES` named below is trained with its seed on one thread, checked with
:func:`deepresolve.paper.logic.check_logic` on its held-out test split (every presence pattern: the mean output has the
label's sign and at least 70 % of the sequences are classified right; regression: every pattern's mean within
0.2 of the target) and written, only if it passes, as ``tests/fixtures/logic/NAME.pt`` (float32 state dict) with a
JSON sidecar ``NAME.json`` (case, seed, test figures, per-pattern check, sha256, torch version, command).

The weights depend on the CPU's float kernels; that is why they are committed: the tests in
``tests/test_interactions.py`` read them and make deterministic assertions on any CPU. Rerunning on another
machine gives another (equally valid) model: commit new files only on purpose, then rerun those tests.

Usage::

    PYTHONPATH=src .venv/bin/python scripts/make_logic_fixtures.py              # every fixture
    PYTHONPATH=src .venv/bin/python scripts/make_logic_fixtures.py xor40 not    # some
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepresolve.paper.logic import CASES, check_logic, train_logic_model

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "logic"
#: Fixture name -> (case, training seed).
FIXTURES = {"xor40": ("xor40", 0), "not": ("not", 0), "or": ("or", 0), "additive": ("additive", 0)}


def make(name: str, out: Path, command: str) -> dict | None:
    case_name, seed = FIXTURES[name]
    case = CASES[case_name]
    started = time.perf_counter()
    data = case.data(seed)
    model, info = train_logic_model(case, data, seed)
    ok, rows = check_logic(model, data, regression=case.regression, index=info["split"]["test"])
    if not ok:
        print(f"{name}: the trained model does not implement its logic; nothing written", flush=True)
        return None
    state = {k: v.detach().to(torch.float32).cpu().contiguous() for k, v in model.state_dict().items()}
    weights = out / f"{name}.pt"
    torch.save(state, weights)
    meta = {"name": name, "case": case_name, "seed": seed, "motifs": list(case.motifs), "layer": case.layer,
            "length": case.length, "regression": case.regression,
            **{k: v for k, v in info.items() if k != "split"}, "patterns": rows,
            "n_parameters": int(sum(v.numel() for v in state.values())),
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - started, 1), "command": command}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{name}: written ({meta['seconds']} s)", flush=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"fixtures (default all: {list(FIXTURES)})")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python scripts/make_logic_fixtures.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    unknown = [n for n in args.names if n not in FIXTURES]
    if unknown:
        parser.error(f"unknown fixtures {unknown}; choose from {list(FIXTURES)}")
    failed = [n for n in (args.names or list(FIXTURES)) if make(n, args.out, command.strip()) is None]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
