"""The interaction baselines on the committed trained logic fixtures, with the planted motifs as the players.

For every fixture of ``tests/fixtures/logic`` (XOR, NOT, OR at 40 bp, the additive regression at 60 bp; three
planted motifs, the third a distractor) runs :func:`deepresolve.baselines.marginal_interactions` and
:func:`deepresolve.baselines.shapley_interactions` (exact, 2^3 coalitions) on its motifs with analysis seeds
0..N-1, and prints per method: the true pair's value, sign, rank by |interaction| among the 3 pairs and q-value;
the pairs between non-interacting motifs with q < 0.05; and the seconds per call (one thread, after one warm-up
call; the model's forward passes dominate).

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/baselines_fixtures.py            # 5 analysis seeds
    PYTHONPATH=src .venv/bin/python benchmarks/baselines_fixtures.py --seeds 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hardware import device_name

from deepresolve.baselines import marginal_interactions, shapley_interactions
from deepresolve.paper.logic import CASES

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "logic"
METHODS = {"marginal": marginal_interactions, "shapley": shapley_interactions}


def load(name: str):
    """The case and the trained model of fixture ``name``."""
    case = CASES[json.loads((FIXTURES / f"{name}.json").read_text())["case"]]
    model = case.model()
    if case.regression:
        model = model[:-1]
    model.load_state_dict(torch.load(FIXTURES / f"{name}.pt", weights_only=True))
    return case, model.eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", nargs="+", default=["xor40", "not", "or", "additive"])
    ap.add_argument("--seeds", type=int, default=5, help="analysis seeds 0..N-1")
    ap.add_argument("--significance", type=float, default=0.05, help="q-value threshold")
    args = ap.parse_args(argv)
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
    torch.set_num_threads(1)
    print("fixture   method    true pair: value (mean over seeds), sign, rank among the 3 pairs, q; pairs of "
          "non-interacting motifs called significant, over all seeds; median time per call")
    for name in args.fixtures:
        case, model = load(name)
        words = list(case.motifs)
        true = {frozenset(p): s for p, s in case.pairs.items()}
        for label, method in METHODS.items():
            method(model, words, input_shape=(4, case.length), seed=0)  # warm-up: imports, first passes
            values, ranks, signs, qs, false, secs = [], [], [], [], 0, []
            for seed in range(args.seeds):
                t = time.perf_counter()
                res = method(model, words, input_shape=(4, case.length), seed=seed)
                secs.append(time.perf_counter() - t)
                rank = np.argsort(np.argsort(-np.abs(res.values[0]), kind="stable")) + 1
                for q, (i, j) in enumerate(res.pairs):
                    key = frozenset((words[i], words[j]))
                    if key in true:
                        values.append(res.values[0, q])
                        ranks.append(int(rank[q]))
                        signs.append(int(np.sign(res.values[0, q])) == true[key])
                        qs.append(res.qvalues[0, q])
                    elif res.qvalues[0, q] < args.significance:
                        false += 1
            n_false = args.seeds * (len(res.pairs) - len(true))
            pair = (f"{np.mean(values):+.3f} (min {np.min(values):+.3f}, max {np.max(values):+.3f}), right sign "
                    f"{sum(signs)}/{len(signs)}, ranks {ranks}, median q {np.median(qs):.2g}" if values else
                    "none (additive control)")
            print(f"{name:9s} {label:9s} {pair}; non-interacting q < {args.significance}: {false}/{n_false}; "
                  f"{np.median(secs):.3f} s per call", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
