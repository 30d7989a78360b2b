"""Feature interactions on trained models with known logic: does the method recover it across seeds?

For every case of :data:`deepresolve.paper.logic.CASES` (set I, additive regression, OR, 3-way AND, NOT, XOR at 40 and
100 bp, XOR read at a deeper layer) trains the case's model on several seeds, keeps a seed only when the model
implements the logic on every presence pattern (mean logit of the label's sign and >= 70 % classified right, on the
test split; regression: every pattern's mean within 0.2; a failing seed is replaced by seed + 100, up to four times, and
counted), runs :func:`deepresolve.interactions` on the case's layer and prints per seed: the rank of the true
interacting motif-group pair by |interaction|, its sign, and how many non-interacting group pairs are significant (their
Benjamini-Hochberg q-value below the run's significance level, as the analysis calls a pair). Also checks
hand-built XOR heads written three ways against their analytic truth tables.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/interactions_logic.py --out /tmp/logic            # all cases, 5 seeds
    PYTHONPATH=src .venv/bin/python benchmarks/interactions_logic.py --out /tmp/logic --stage train
    PYTHONPATH=src .venv/bin/python benchmarks/interactions_logic.py --out /tmp/logic --deepsea   # cost figures
    PYTHONPATH=src .venv/bin/python benchmarks/interactions_logic.py --out /tmp/logic --cases set1 --analysis-seeds 6
    PYTHONPATH=src .venv/bin/python benchmarks/interactions_logic.py --out /tmp/logic --shapley --marginal  # baselines

A pair's rank is its position by |interaction| among all group (or channel) pairs evaluated; the true motif pair
is the best-ranked group pair whose two groups' words match the two motifs
(:func:`deepresolve.paper.logic.word_motifs`).
"Significant non-interacting pairs" are pairs (q < significance) that are not a true pair and not two groups of one
motif; pairs of two groups of one motif (redundancy, OR-like) are counted apart.

Trained models are cached in ``--out`` (``<case>_s<seed>.pt`` + ``.json``), so a rerun only redoes the analysis.

The analysis itself is random (backgrounds, contexts, the word scan's placements), and on the weaker models the rank
of the true pair changes with its seed: by default each model is analysed once, with ``seed`` = the model's seed
as given (0-4; a replaced model keeps it); ``--analysis-seeds N`` analyses every model with seeds 0..N-1 and the
summary counts every (model, analysis seed). Measured: set I's XOR pair first on 5 / 5 models with the default
seeds and on 25 / 30 with ``--analysis-seeds 6`` (the word scan judging copies by their core; before, with a rule
on whole words: 3 / 5 and 21 / 30); the 3-way AND 4 / 5 and 12 / 15 with ``--analysis-seeds 3`` (before: 5 / 5 and
12 / 15).
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
from deepresolve.interaction_analysis import interactions as dr_interactions
from deepresolve.paper.logic import (
    CASES,
    check_logic,
    hand_built,
    train_logic_model,
    word_motifs,
)


def get_model(out: Path, name: str, seed: int, max_tries: int = 5):
    """The cached or newly trained model of ``case`` for ``seed``, replaced by seed + 100k while it fails the check.

    Returns (model, data, meta) where meta holds the seed actually used and the number of replaced seeds.
    """
    case = CASES[name]
    for attempt in range(max_tries):
        s = seed + 100 * attempt
        path, meta_path = out / f"{name}_s{s}.pt", out / f"{name}_s{s}.json"
        data = case.data(s)
        model = case.model()
        if case.regression:
            model = model[:-1]
        if path.exists() and meta_path.exists():
            model.load_state_dict(torch.load(path, weights_only=True))
            meta = json.loads(meta_path.read_text())
            if "test_auc" in meta:  # re-judge with the current criterion (the rows are stored)
                meta["ok"] = all(r["accuracy"] >= 0.7 and (r["mean"] > 0) == (r["target"] > 0.5)
                                 for r in meta["patterns"])
        else:
            t = time.perf_counter()
            model, info = train_logic_model(case, data, s)
            ok, rows = check_logic(model, data, regression=case.regression, index=info["split"]["test"])
            meta = {k: v for k, v in info.items() if k != "split"}
            meta.update(ok=ok, patterns=rows, seconds=time.perf_counter() - t, seed=s)
            torch.save(model.state_dict(), path)
            meta_path.write_text(json.dumps(meta, default=str))
            fit = f"AUC {meta['test_auc']:.4f}" if "test_auc" in meta else f"R2 {meta['test_r2']:.4f}"
            print(f"  trained {name} seed {s}: {fit}, logic {'ok' if ok else 'FAILED'} ({meta['seconds']:.0f} s)",
                  flush=True)
        if meta["ok"]:
            meta["replaced"] = attempt
            return model.eval(), data, meta
    meta["replaced"] = max_tries
    return None, data, meta


def evaluate(res, case) -> dict:
    """Rank and sign of the true motif pairs among the group pairs (and channel pairs), false positives."""
    ch_motif = word_motifs(res.words, case.motifs)
    g_motif = word_motifs(res.group_words, case.motifs)
    out = {}
    significance = res.significance
    for level, pairs, values, qvalues, motif_of in (
            ("group", res.group_pairs, res.group_values[0], res.group_qvalues[0], g_motif),
            ("channel", res.pairs, res.values[0], res.qvalues[0], ch_motif)):
        order = np.argsort(-np.abs(values), kind="stable")
        keys = [frozenset((motif_of[i], motif_of[j])) if motif_of[i] and motif_of[j] and motif_of[i] != motif_of[j]
                else None for i, j in pairs]
        true = {frozenset(p): sign for p, sign in case.pairs.items()}
        for p, sign in case.pairs.items():
            hit = [r for r, q in enumerate(order) if keys[q] == frozenset(p)]
            q = order[hit[0]] if hit else None
            out[f"{level}:{p[0]}x{p[1]}"] = dict(rank=hit[0] + 1 if hit else None,
                                                sign=int(np.sign(values[q])) if hit else 0, want=sign,
                                                value=float(values[q]) if hit else float("nan"),
                                                q=float(qvalues[q]) if hit else float("nan"))
        same = [motif_of[i] is not None and motif_of[i] == motif_of[j] for i, j in pairs]
        false = [q for q in range(len(pairs)) if keys[q] not in true and not same[q] and qvalues[q] < significance]
        # significant non-interacting pairs: two different motifs (e.g. a distractor), or a motif and a group that
        # matches no planted motif; pairs of two groups of one motif are redundancy (counted apart)
        out[f"{level}:false_positives"] = len(false)
        out[f"{level}:false_motif"] = sum(motif_of[pairs[q][0]] is not None and motif_of[pairs[q][1]] is not None
                                          for q in false)
        out[f"{level}:redundant"] = sum(same[q] and qvalues[q] < significance for q in range(len(pairs)))
        out[f"{level}:n_pairs"] = len(pairs)
    out["group_motifs"] = [m or "-" for m in g_motif]
    return out


def baseline_study(method, model, case, res, seed: int, contexts: int = 32) -> dict:
    """A baseline of :mod:`deepresolve.baselines` (``shapley_interactions``: the exact Shapley interaction index,
    SII, of the game v(S) = mean output over random contexts with the words of S written in; or
    ``marginal_interactions``) with motif groups as players: the groups taking part in the strongest pairs of ``res``
    (|main| + largest |interaction|), as many as fit side by side in the input, at most 6. Returns the rank of each
    true motif pair by |interaction| among the players' pairs, and its sign."""
    w = res.group_words.shape[2]
    m = min(case.length // w, res.n_groups, 6)
    inv = np.zeros(res.n_groups)
    for q, (i, j) in enumerate(res.group_pairs):
        v = abs(np.nan_to_num(res.group_values[0, q]))
        inv[i], inv[j] = max(inv[i], v), max(inv[j], v)
    players = np.argsort(-(np.abs(res.group_main[0]) + inv), kind="stable")[:m]
    words = res.group_words[players]
    motif = word_motifs(words, case.motifs)
    out = {"players": [mm or "-" for mm in motif]}
    if m < 2:
        return {**{f"{u}x{v}": dict(rank=None, want=sign, sign=0) for (u, v), sign in case.pairs.items()}, **out}
    extra = {"index": "SII"} if method is shapley_interactions else {}
    scores = method(model, words, input_shape=(4, case.length), classes=0, contexts=contexts, seed=seed, **extra)
    order = np.argsort(-np.abs(scores.values[0]), kind="stable")
    keys = [{motif[a], motif[b]} for a, b in scores.pairs[order]]
    for (u, v), sign in case.pairs.items():
        hit = [r for r, key in enumerate(keys) if key == {u, v}]
        out[f"{u}x{v}"] = dict(rank=hit[0] + 1 if hit else None, want=sign,
                              sign=int(np.sign(scores.values[0, order[hit[0]]])) if hit else 0)
    return out


#: The baselines of ``--shapley`` and ``--marginal`` by result key: the function, and how a line and the summary
#: name it.
BASELINES = {"shapley": (shapley_interactions, "Shapley SII", "exact Shapley interaction index (SII)"),
             "marginal": (marginal_interactions, "marginalisation", "input-space pairwise marginalisation")}


def xor_heads() -> list[str]:
    """Hand-built XOR heads written three ways, on exact motif detectors: interactions vs analytic truth tables."""
    lines = []
    for form in ("abs", "relu", "minmax"):
        model = hand_built(form, length=40)
        res = dr_interactions(model, "pool1", input_shape=(4, 40), seed=0)
        t = res.truth_table(0, 0, 1)
        lines.append(f"XOR head {form:7s}: truth table {np.round(t, 3).tolist()} (analytic [[0, 1], [1, 0]]), "
                     f"interaction {res.values[0, 0]:+.3f} (analytic -2), p = {res.pvalues[0, 0]:.3g}, "
                     f"kind {res.table(0, level='channel')['kind'][0]}")
    return lines


def deepsea_cost(batch: int = 32, repeats: int = 3) -> list[str]:
    """Seconds per evaluation (body + head on one 1000-bp sequence) of a DeepSEA-shaped model (919 classes) at
    ``drop2`` (480 channels x 60 positions, the paper's layer), and the resulting bound for K = 1000, C = 2000."""
    from deepresolve.paper.zoo import deepsea
    from deepresolve.split import split_model

    torch.manual_seed(0)
    model = deepsea().eval()
    body, head = split_model(model, "drop2", input_shape=(4, 1000))
    x = torch.eye(4)[torch.randint(0, 4, (batch, 1000))].transpose(1, 2).contiguous()
    with torch.no_grad():
        body(x[:2])
        t = time.perf_counter()
        for _ in range(repeats):
            head(body(x))
    per = (time.perf_counter() - t) / (repeats * batch)
    lines = [f"DeepSEA-shaped model at drop2, 919 classes: {per * 1e3:.1f} ms per evaluation (body + head, "
             f"batch {batch}, {torch.get_num_threads()} thread(s), this CPU)"]
    for k in (6, 8):
        lines.append(f"  word scan, k = {k}: {4 * 4 ** k:,} passes = {4 * 4 ** k * per / 60:.3g} min here")
    for K, C, top, n in ((1000, 2000, 8, 16), (1000, 2000, 24, 64), (480, 919, 8, 16)):
        G = K  # worst case: every channel its own group (motif_words="filters"; the scan keeps G <= top)
        per_class = top * (top - 1) // 2
        pairs = min(C * per_class, K * (K - 1) // 2) + min(C * per_class, G * (G - 1) // 2)  # union over classes
        screened = min(2 * top, G)
        passes = (2 * n * G + 4 * n * screened * (screened - 1) // 2  # the groups' strength, alone and in pairs
                  + 2 * n * (K + G) + 4 * n * pairs + 16 * K)  # main effects, pairs, on-levels
        lines.append(f"  K={K}, C={C}, top={top}, contexts={n}: at most {pairs:,} pairs, {passes:.3g} evaluations "
                     f"= {passes * per / 3600:.3g} h here (classes sharing top channels make it smaller)")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--analysis-seeds", type=int, default=None,
                    help="analyse every model with seeds 0..N-1 (default: once, with the model's seed as given)")
    ap.add_argument("--stage", choices=["train", "all"], default="all")
    ap.add_argument("--significance", type=float, default=None,
                    help="level of the q-values that makes a pair significant (default: the analysis' own)")
    ap.add_argument("--context-on", type=float, default=1 / 3)
    ap.add_argument("--group-threshold", type=float, default=0.5)
    ap.add_argument("--motif-words", choices=["scan", "filters"], default="scan")
    ap.add_argument("--shapley", action="store_true", help="also the exact Shapley interaction index (shapiq)")
    ap.add_argument("--marginal", action="store_true", help="also the input-space pairwise marginalisation")
    ap.add_argument("--deepsea", action="store_true", help="only print the cost for a DeepSEA-shaped model")
    args = ap.parse_args(argv)
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
    torch.set_num_threads(1)
    if args.deepsea:
        print("\n".join(deepsea_cost()))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "all":
        for line in xor_heads():
            print(line, flush=True)
    summary = []
    for name in args.cases:
        case = CASES[name]
        for seed in args.seeds:
            model, data, meta = get_model(args.out, name, seed)
            if args.stage == "train" or model is None:
                if model is None:
                    print(f"{name} seed {seed}: no model implementing the logic in 3 tries", flush=True)
                continue
            for a_seed in [seed] if args.analysis_seeds is None else range(args.analysis_seeds):
                t = time.perf_counter()
                res = dr_interactions(model, case.layer, input_shape=(4, case.length), seed=a_seed,
                                      **({} if args.significance is None else {"significance": args.significance}),
                                      context_on=args.context_on, group_threshold=args.group_threshold,
                                      motif_words=args.motif_words)
                ev = evaluate(res, case)
                baselines = [b for b in BASELINES if getattr(args, b)]
                for b in baselines:
                    ev[b] = baseline_study(BASELINES[b][0], model, case, res, a_seed)
                secs = time.perf_counter() - t
                parts = []
                for key, v in ev.items():
                    if isinstance(v, dict) and key not in BASELINES:
                        ok = v["rank"] == 1 and v["sign"] == v["want"]
                        parts.append(f"{key} rank {v['rank']} sign {v['sign']:+d}{' OK' if ok else ''} "
                                     f"({v['value']:+.2f}, q={v['q']:.2g})")
                for b in baselines:
                    parts.append(f"{BASELINES[b][1]} " + ", ".join(f"{k} rank {v['rank']} sign {v['sign']:+d}"
                                             for k, v in ev[b].items() if isinstance(v, dict))
                                 + f" (players {ev[b]['players']})")
                print(f"{name} seed {meta['seed']} (replaced {meta['replaced']})"
                      + ("" if args.analysis_seeds is None else f" analysis seed {a_seed}") + ": " + "; ".join(parts) +
                      f"; significant non-interacting pairs: group {ev['group:false_positives']}/"
                      f"{ev['group:n_pairs']} (between planted motifs {ev['group:false_motif']}; same-motif redundant "
                      f"pairs {ev['group:redundant']}), channel {ev['channel:false_positives']}/"
                      f"{ev['channel:n_pairs']}; groups {ev['group_motifs']} ({secs:.0f} s)",
                      flush=True)
                summary.append((name, meta["seed"], ev))
    if summary:
        print("\nSummary per case (group level): analyses (models x analysis seeds) where the primary pair ranks "
              "first with the right sign; median false positives")
        for name in args.cases:
            rows = [ev for n, _, ev in summary if n == name]
            if not rows:
                continue
            case = CASES[name]
            if case.primary is None:
                good = sum(ev["group:false_positives"] == 0 for ev in rows)
                print(f"  {name:9s} no significant pair on {good}/{len(rows)} analyses")
                continue
            keys = [f"group:{p[0]}x{p[1]}" for p in case.pairs] if name == "and3" else \
                [f"group:{case.primary[0]}x{case.primary[1]}"]
            good = sum(all(ev[k]["rank"] is not None and ev[k]["rank"] <= len(keys) and ev[k]["sign"] == ev[k]["want"]
                           for k in keys) for ev in rows)
            signs = sum(all(ev[f"group:{p[0]}x{p[1]}"]["sign"] == s for p, s in case.pairs.items()) for ev in rows)
            evaluated = sum(all(ev[k]["rank"] is not None for k in keys) for ev in rows)
            print(f"  {name:9s} primary first with right sign {good}/{len(rows)}; all true pairs right sign "
                  f"{signs}/{len(rows)}; primary evaluated {evaluated}/{len(rows)}; median false positives "
                  f"{np.median([ev['group:false_positives'] for ev in rows]):.0f}")
            sk = [k.split(":")[1] for k in keys]
            for b, (_, _, label) in BASELINES.items():
                if b in rows[0]:
                    sgood = sum(all(ev[b][k]["rank"] is not None and ev[b][k]["rank"] <= len(sk)
                                    and ev[b][k]["sign"] == ev[b][k]["want"] for k in sk) for ev in rows)
                    print(f"  {'':9s} {label} on the same groups: primary first with right sign "
                          f"{sgood}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
