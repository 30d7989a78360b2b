"""The genomics-like ground-truth suite (:mod:`deepresolve.paper.genomic`): train its models, score every method.

Stage ``train`` trains every (case, seed) and caches it in ``--out`` as ``<case>_s<seed>.pt`` (state dict of
``CASES[case].model()``) and ``<case>_s<seed>.json`` (case, seed, test AUC or R2, epochs, the per-pattern check
and whether it passed), both written atomically; a (case, seed) whose ``.json`` exists is not trained again. A
model that fails :func:`deepresolve.paper.logic.check_logic` (every presence pattern, every task, on the test split)
is replaced by seed + 100, up to four times; the replacements are counted.

Stage ``analyse`` runs, per model that passed, :func:`deepresolve.interactions` at its defaults on the case's
layer, :func:`deepresolve.resolve` at its defaults, and (when importable) the baselines
``deepresolve.baselines.marginal_interactions`` / ``shapley_interactions`` on the same group words, and writes one
row per (model, method) to ``<out>/scores.tsv`` as it goes (``--tsv`` to name another file). Scores, per task with
a primary pair:

- ``rank``/``sign``: the primary pair's rank among the group pairs by |interaction| and the sign of its value
  (and3: the worst rank of its three pairs); a group is a planted motif when
  :func:`deepresolve.paper.genomic.match_motifs` (case motifs and distractors as candidates) names it;
- ``groups``: groups per planted motif the model uses (:func:`deepresolve.paper.genomic.used_motifs`); ``one_group``
  whether every used motif has exactly one; ``groups_tomtom`` / ``one_group_tomtom`` the same with each group named
  by Tomtom instead (its PWM as the network reads it, ``Interactions.group_pwms``, against JASPAR2024: the case motif
  or distractor with the smallest p-value, if below :data:`TOMTOM_P`), the way a user names a group from the report;
- ``false_sig``: significant group pairs between two different planted motifs that do not interact on the task
  (by ``group_qvalues`` when the result has them, else ``group_pvalues``, at the result's ``significance``);
- ``ofiv_top3`` (resolve): whether every AND partner has a channel among the class's 3 channels of largest OFIV
  (a channel is a motif's when its preferred word from the interaction run matches it).

The summary per half prints, per case, the targets of the suite with counts over models: true pair first with
the right sign (>= 4/5 seeds), every used motif one group (>= 90 %), no significant non-interacting pair (>= 90 %),
additive control clean.

``--reuse`` scores the interaction analyses saved by an earlier run (``<case>_s<seed>.interactions.h5``) instead of
running them again (with ``--tsv`` to write a new scores file).

``--logic`` scores the cases of :mod:`deepresolve.paper.logic` (``--logic-cases``, default all) the same way
(models cached in ``<out>/logic``, trained when missing by ``benchmarks/interactions_logic.py``'s procedure; groups
named by :func:`deepresolve.paper.logic.word_motifs`), to compare with the old suite's level.

A run that refuses (e.g. the word scan finds no word) is a row with ``error``: not first, no group, not counted as
clean. Rows are per (model, method, task); a multi-task model is first / clean when every task is.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/genomic_suite.py --out runs/genomic --stage train --half tune
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/genomic_suite.py --out runs/genomic --stage analyse
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/genomic_suite.py --out runs/genomic --cases xor_200 --seeds 0 1
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/genomic_suite.py --out runs/genomic --logic --logic-cases set1

Load a cached model::

    from deepresolve.paper.genomic import CASES
    meta = json.load(open("runs/genomic/and_200_s0.json"))
    case = CASES[meta["case"]]; model = case.model(); model.load_state_dict(torch.load("runs/genomic/and_200_s0.pt"))
    data = case.data(meta["seed"])  # the training data; test split: split_indices(len(data), seed=meta["seed"])
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hardware import device_name

from deepresolve.errors import DeepResolveError
from deepresolve.paper.genomic import CASES
from deepresolve.paper.logic import check_logic, train_logic_model
from deepresolve.paper.train import split_indices

MAX_TRIES = 3
#: Tomtom p-value below which a group PWM is named after a case motif or distractor (``groups_tomtom``).
TOMTOM_P = 1e-3


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def train_one(out: Path, name: str, seed: int) -> dict:
    """Train (or read the cache of) one (case, seed); returns its sidecar."""
    case = CASES[name]
    meta_path = out / f"{name}_s{seed}.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if case.regression:  # judged again from the stored rows: the tolerance is the case's
            meta["ok"] = all(r["error"] <= case.max_error for r in meta["patterns"])
        return meta
    t = time.perf_counter()
    data = case.data(seed)
    model, info = train_logic_model(case, data, seed)
    ok, rows = check_logic(model, data, regression=case.regression, max_error=case.max_error,
                           index=info["split"]["test"])
    meta = dict(case=name, seed=seed, half=case.half, logic=case.logic, length=case.length, arch=case.arch,
                layer=case.layer, motifs=list(case.motifs), regression=case.regression,
                **{k: v for k, v in info.items() if k != "split"}, ok=ok, patterns=rows,
                seconds=round(time.perf_counter() - t, 1), torch=torch.__version__)
    _atomic_write(out / f"{name}_s{seed}.pt", lambda p: torch.save(model.state_dict(), p))
    _atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta, default=str)))
    fit = f"AUC {meta['test_auc']:.4f}" if "test_auc" in meta else f"R2 {meta['test_r2']:.4f}"
    print(f"  trained {name} seed {seed}: {fit}, {meta['epochs']} epochs, logic {'ok' if ok else 'FAILED'} "
          f"({meta['seconds']:.0f} s)", flush=True)
    return meta


def passing_seed(out: Path, name: str, seed: int, *, train: bool = True) -> dict | None:
    """The sidecar of the first of seed, seed + 100, ... (``MAX_TRIES``) whose model passes the check, with
    ``replaced`` (failed seeds before it) and ``requested_seed`` added; ``ok`` False when none passed. Without
    ``train``, None when a needed model is not cached."""
    for attempt in range(MAX_TRIES):
        s = seed + 100 * attempt
        if not train and not (out / f"{name}_s{s}.json").exists():
            return None
        meta = train_one(out, name, s)
        if meta["ok"]:
            return dict(meta, replaced=attempt, requested_seed=seed)
    return dict(case=name, seed=seed, requested_seed=seed, replaced=MAX_TRIES, ok=False)


def load_model(out: Path, meta: dict):
    """The cached model of a sidecar, in eval mode, and its case's data for the model's seed."""
    case = CASES[meta["case"]]
    model = case.model()
    model.load_state_dict(torch.load(out / f"{meta['case']}_s{meta['seed']}.pt", weights_only=True))
    return model.eval(), case.data(meta["seed"])


FIELDS = ("suite", "case", "half", "logic", "length", "arch", "seed", "requested_seed", "replaced", "method",
          "task", "primary", "rank", "sign", "want", "first", "true_ranks", "used", "groups_per_motif", "one_group",
          "groups_tomtom", "one_group_tomtom", "n_groups", "n_pairs", "n_sig", "false_sig", "sig_by", "ofiv_top3",
          "seconds", "error")


class Truth:
    """The ground truth of one model, in the form the scoring reads (a genomic or a logic case)."""

    def __init__(self, suite: str, case, data, model, meta: dict):
        from deepresolve.paper.genomic import DISTRACTORS, match_motifs, pattern_means, used_motifs
        from deepresolve.paper.logic import word_motifs

        self.suite, self.case, self.meta = suite, case, meta
        if suite == "genomic":
            self.pairs, self.primary = case.pairs, case.primary
            candidates = list(case.motifs) + list(DISTRACTORS)
            self.name = lambda words: match_motifs(words, candidates)
            self.tomtom_name = lambda pwms: tomtom_motifs(pwms, candidates)
        else:
            self.pairs, self.primary = (case.pairs,), (case.primary,)
            self.name = lambda words: word_motifs(words, case.motifs)
            self.tomtom_name = None
        test = split_indices(len(data), seed=meta["seed"])["test"]
        patterns, means = pattern_means(model, data, test)
        self.used = used_motifs(patterns, means)  # (T, M)

    def row(self, method: str, task: int) -> dict:
        c, m = self.case, self.meta
        return dict(suite=self.suite, case=c.name, half=getattr(c, "half", "logic"), logic=getattr(c, "logic", c.name),
                    length=c.length, arch=getattr(c, "arch", "deep" if getattr(c, "deep", False) else "conv1"),
                    seed=m["seed"], requested_seed=m["requested_seed"], replaced=m["replaced"], method=method,
                    task=task)


def score_pairs(truth: Truth, task: int, motif_of: list, pairs: np.ndarray, values: np.ndarray,
                significant: np.ndarray) -> dict:
    """Scores of one task from player pairs (Q, 2), their values (Q,) and significance (Q,) bool."""
    true = {frozenset(p): s for p, s in truth.pairs[task].items()}
    order = np.argsort(-np.nan_to_num(np.abs(values), nan=-1.0), kind="stable")
    keys = [frozenset((motif_of[i], motif_of[j])) if motif_of[i] and motif_of[j] and motif_of[i] != motif_of[j]
            else None for i, j in pairs]
    ranks = {}
    for p in true:
        hit = [r for r, q in enumerate(order) if keys[q] == p and np.isfinite(values[q])]
        ranks[p] = (hit[0] + 1, int(np.sign(values[order[hit[0]]]))) if hit else (None, 0)
    out = dict(true_ranks=";".join(f"{'x'.join(sorted(p))}:{r}:{s:+d}" for p, (r, s) in ranks.items()))
    primary = truth.primary[task]
    if primary is not None:
        r, sgn = ranks[frozenset(primary)]
        want = true[frozenset(primary)]
        signed = [p for p, w in true.items() if w != 0]
        if truth.case.name.startswith("and3"):  # every pair of the three partners in the top 3, right sign
            first = all(ranks[p][0] is not None and ranks[p][0] <= len(signed) and ranks[p][1] == true[p]
                        for p in signed)
        else:
            first = r == 1 and sgn == want
        out.update(primary="x".join(primary), rank=r, sign=sgn, want=want, first=first)
    planted = [q for q in range(len(pairs)) if keys[q] is not None]
    out.update(n_pairs=int(np.isfinite(values).sum()), n_sig=int(np.sum(significant)),
               false_sig=sum(bool(significant[q]) for q in planted if keys[q] not in true))
    return out


def tomtom_motifs(pwms: np.ndarray, candidates: list[str]) -> list[str | None]:
    """The candidate motif each PWM (G, 4, w; zero columns are no part of it) is by Tomtom against all of
    JASPAR2024 (the null needs the whole database): the candidate with the smallest p-value, if below
    :data:`TOMTOM_P`, else None."""
    from deepresolve.motifs import jaspar_motifs, tomtom_matches
    from deepresolve.paper.genomic import MOTIF_IDS

    jaspar = jaspar_motifs("JASPAR2024")
    of = {t: m for t in jaspar for m in candidates if t.split()[0] == MOTIF_IDS[m]}
    df = tomtom_matches([p[:, p.sum(0) > 0] for p in pwms], jaspar, n_jobs=1)
    df = df[df["target"].isin(list(of))]
    out: list[str | None] = []
    for g in range(len(pwms)):
        d = df[df["query"] == str(g)]
        best = d.loc[d["p_value"].idxmin()] if len(d) else None
        out.append(of[best["target"]] if best is not None and best["p_value"] < TOMTOM_P else None)
    return out


def score_groups(truth: Truth, motif_of: list, tomtom_of: list | None = None) -> dict:
    """Groups per planted motif the model uses (any task), with the groups named by word (``motif_of``) and, when
    given, by Tomtom (``tomtom_of``)."""
    used = [m for m, u in zip(truth.case.motifs, truth.used.any(0)) if u]
    out = dict(used=",".join(used), n_groups=len(motif_of))
    for key, names in (("", motif_of), ("_tomtom", tomtom_of)):
        if names is not None:
            counts = {m: sum(g == m for g in names) for m in used}
            out.update({("groups_per_motif" if not key else "groups_tomtom"): ",".join(f"{m}:{k}"
                                                                                       for m, k in counts.items()),
                        f"one_group{key}": all(k == 1 for k in counts.values())})
    return out


METHODS = ("interactions", "resolve", "marginal", "shapley")


def analyse(out: Path, truth: Truth, model, *, done: set, emit, methods: tuple[str, ...] = METHODS,
            reuse: bool = False) -> None:
    """The ``methods`` on one model (the baselines and resolve need the interactions' groups and words); each
    (method, task) row passed to ``emit`` as soon as it is scored. With ``reuse``, the interaction analysis saved by
    an earlier run is scored when there is one."""
    import deepresolve as dr

    case, meta = truth.case, truth.meta
    shape = (4, case.length)
    key = (truth.suite, case.name, meta["seed"])
    res, ch_motif = None, None
    saved = out / f"{case.name}_s{meta['seed']}.interactions.h5"
    if (*key, "interactions") not in done:
        t = time.perf_counter()
        try:
            res = (dr.Interactions.load(saved) if reuse and saved.exists() else
                   dr.interactions(model, case.layer, input_shape=shape, seed=meta["requested_seed"]))
        except DeepResolveError as e:  # a refusal is a failure on every target of the model
            for task in range(len(truth.pairs)):
                row = truth.row("interactions", task)
                row.update(first=False if truth.primary[task] is not None else "", one_group=False,
                           seconds=round(time.perf_counter() - t, 1), error=str(e).replace("\t", " ")[:200])
                emit(row)
            return
        secs = time.perf_counter() - t
        if not (reuse and saved.exists()):
            np.save(out / f"{case.name}_s{meta['seed']}.group_words.npy", res.group_words)
            res.save(saved)  # for rescoring without rerunning (--reuse)
        g_motif = truth.name(res.group_words)
        qv = getattr(res, "group_qvalues", None)
        sig_by, stat = ("q", qv) if qv is not None else ("p", res.group_pvalues)
        groups = score_groups(truth, g_motif, None if truth.tomtom_name is None or res.group_pwms is None else
                              truth.tomtom_name(res.group_pwms))
        for task in range(len(truth.pairs)):
            row = truth.row("interactions", task)
            row.update(score_pairs(truth, task, g_motif, res.group_pairs, res.group_values[task],
                                   stat[task] < res.significance), **groups, sig_by=sig_by, seconds=round(secs, 1))
            emit(row)
        ch_motif = truth.name(res.words)
    if "resolve" in methods and (*key, "resolve") not in done and res is not None:
        t = time.perf_counter()
        rr = dr.resolve(model, case.layer, input_shape=shape, seed=meta["requested_seed"])
        secs = time.perf_counter() - t
        for task in range(len(truth.pairs)):
            partners = {m for p, s in truth.pairs[task].items() if s > 0 for m in p}
            top3 = np.argsort(-np.abs(rr.ofiv[task]), kind="stable")[:3]
            row = truth.row("resolve", task)
            row.update(ofiv_top3=(all(any(ch_motif[k] == m for k in top3) for m in partners) if partners else ""),
                       seconds=round(secs, 1))
            emit(row)
    for method in ("marginal", "shapley"):
        if method not in methods or (*key, method) in done or res is None:
            continue
        try:
            from deepresolve import baselines
            fn = getattr(baselines, f"{method}_interactions")
        except (ImportError, AttributeError):
            continue
        t = time.perf_counter()
        try:
            ps = fn(model, res.group_words, input_shape=shape, seed=meta["requested_seed"])
        except DeepResolveError as e:  # e.g. fewer than two group words: the pair cannot be found
            for task in range(len(truth.pairs)):
                row = truth.row(method, task)
                row.update(first=False if truth.primary[task] is not None else "",
                           seconds=round(time.perf_counter() - t, 1), error=str(e).replace("\t", " ")[:200])
                emit(row)
            continue
        secs = time.perf_counter() - t
        motif_of = truth.name(ps.words)
        for task in range(len(truth.pairs)):
            q = ps.qvalues[task]
            row = truth.row(method, task)
            row.update(score_pairs(truth, task, motif_of, ps.pairs, ps.values[task],
                                   np.nan_to_num(q, nan=1.0) < res.significance), sig_by="q", seconds=round(secs, 1))
            emit(row)


def _tsv_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:]]


def summary(rows: list[dict]) -> list[str]:
    """Per half and case, the suite's targets with counts over models."""
    def frac(vals):
        vals = [v for v in vals if v != ""]
        return f"{sum(v == 'True' for v in vals)}/{len(vals)}" if vals else "-"

    lines = []
    for half in ("tune", "report", "logic"):
        sel = [r for r in rows if r["half"] == half]
        if not sel:
            continue
        lines.append(f"\n== {half} ==")
        lines.append(f"{'case':18s} {'models':>6s} {'first+sign':>10s} {'one group':>9s} {'1 grp TT':>8s} "
                     f"{'no false sig':>12s} "
                     f"{'OFIV top3':>9s} {'marg first':>10s} {'marg clean':>10s} {'shap first':>10s} "
                     f"{'shap clean':>10s}")
        for name in dict.fromkeys(r["case"] for r in sel):
            by = {m: [r for r in sel if r["case"] == name and r["method"] == m]
                  for m in ("interactions", "resolve", "marginal", "shapley")}
            ia = by["interactions"]
            per_model = {}
            for r in ia:  # a model is first / clean when every task is; a refused run is not clean or not
                k = r["seed"]
                f0, c0 = per_model.get(k, ("", "True"))
                first = "False" if f0 == "False" else (r["first"] or f0)
                clean = "" if r["error"] else "True" if c0 == "True" and r["false_sig"] == "0" else "False"
                per_model[k] = (first, clean)

            def method_counts(rs):
                firsts = [r["first"] for r in rs if r["first"] != ""]
                clean = {}
                for r in rs:
                    if not r["error"]:
                        clean[r["seed"]] = clean.get(r["seed"], True) and r["false_sig"] == "0"
                return frac(firsts), frac([str(v) for v in clean.values()])

            mf, mc = method_counts(by["marginal"])
            sf, sc = method_counts(by["shapley"])
            one = {r["seed"]: r["one_group"] for r in ia}  # refused: no group for any motif
            one_tt = {r["seed"]: r.get("one_group_tomtom", "") for r in ia}
            lines.append(f"{name:18s} {len(per_model):6d} {frac([v[0] for v in per_model.values()]):>10s} "
                         f"{frac(list(one.values())):>9s} {frac(list(one_tt.values())):>8s} "
                         f"{frac([v[1] for v in per_model.values()]):>12s} "
                         f"{frac([r['ofiv_top3'] for r in by['resolve']]):>9s} {mf:>10s} {mc:>10s} {sf:>10s} "
                         f"{sc:>10s}")
    return lines


def training_summary(out: Path, names: list[str], seeds: list[int]) -> list[str]:
    """Per case: models kept (passing the check) of the seeds asked, seeds replaced, test AUC (R2) of the kept."""
    lines = [f"{'case':18s} {'half':6s} {'arch':8s} {'kept':>5s} {'replaced':>8s} {'failed seeds':>12s}  test AUC / R2 "
             f"of the kept models"]
    for name in names:
        metas = [passing_seed(out, name, s, train=False) for s in seeds]
        done = [m for m in metas if m is not None]
        if not done:
            continue
        kept = [m for m in done if m["ok"]]
        fits = [m.get("test_auc", m.get("test_r2")) for m in kept]
        lines.append(f"{name:18s} {CASES[name].half:6s} {CASES[name].arch:8s} {len(kept):>2d}/{len(done):<2d} "
                     f"{sum(m['replaced'] for m in done):8d} {len(done) - len(kept):12d}  "
                     + " ".join(f"{f:.3f}" for f in fits))
    return lines


def _cases_of(args) -> list[str]:
    names = [n for n in args.cases if args.half == "all" or CASES[n].half == args.half]
    if args.half == "all":  # tune half first
        names = sorted(names, key=lambda n: CASES[n].half != "tune")
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stage", choices=["train", "analyse", "all"], default="all")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--half", choices=["tune", "report", "all"], default="all")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                    help="methods to score (the interactions always run: the others use its groups)")
    ap.add_argument("--logic", action="store_true", help="score deepresolve.paper.logic's cases instead")
    ap.add_argument("--logic-cases", nargs="+", default=None, help="with --logic: these cases (default all)")
    ap.add_argument("--tsv", type=Path, default=None, help="scores file (default <out>/scores.tsv)")
    ap.add_argument("--reuse", action="store_true",
                    help="score the interaction analyses saved in --out by an earlier run instead of running them")
    args = ap.parse_args(argv)
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    names = _cases_of(args)
    if args.stage in ("train", "all") and not args.logic:
        for name in names:
            for seed in args.seeds:
                meta = passing_seed(args.out, name, seed)
                if not meta["ok"]:
                    print(f"{name} seed {seed}: no model implementing the logic in {MAX_TRIES} tries", flush=True)
    if args.stage == "train":
        print("\n".join(training_summary(args.out, names, args.seeds)))
        return 0
    tsv = args.tsv or args.out / "scores.tsv"
    rows = _tsv_rows(tsv)
    done = {(r["suite"], r["case"], int(r["seed"]), r["method"]) for r in rows}
    if not tsv.exists():
        tsv.write_text("\t".join(FIELDS) + "\n")

    def emit(row: dict) -> None:
        row = {k: row.get(k, "") for k in FIELDS}
        rows.append({k: str(v) for k, v in row.items()})
        with open(tsv, "a") as f:
            f.write("\t".join(str(row[k]) for k in FIELDS) + "\n")
        print("  " + " ".join(f"{k}={row[k]}" for k in FIELDS[9:] if row[k] != ""), flush=True)

    if args.logic:
        sys.path.insert(0, str(Path(__file__).parent))
        from interactions_logic import get_model as logic_model

        from deepresolve.paper.logic import CASES as LOGIC_CASES

        (args.out / "logic").mkdir(exist_ok=True)
        for name in args.logic_cases or LOGIC_CASES:
            if name not in LOGIC_CASES:
                ap.error(f"--logic-cases: {name!r} is not one of {list(LOGIC_CASES)}")
            for seed in args.seeds:
                model, data, meta = logic_model(args.out / "logic", name, seed)
                if model is None or ("logic", name, meta["seed"], "interactions") in done:
                    continue
                meta = dict(meta, requested_seed=seed)
                print(f"logic {name} seed {meta['seed']}", flush=True)
                analyse(args.out, Truth("logic", LOGIC_CASES[name], data, model, meta), model, done=done, emit=emit,
                        methods=tuple(args.methods))
    else:
        for name in names:
            for seed in args.seeds:
                meta = passing_seed(args.out, name, seed, train=args.stage == "all")
                if meta is None or not meta["ok"] or ("genomic", name, meta["seed"], "interactions") in done:
                    continue
                model, data = load_model(args.out, meta)
                print(f"{name} seed {meta['seed']} ({CASES[name].half})", flush=True)
                analyse(args.out, Truth("genomic", CASES[name], data, model, meta), model, done=done, emit=emit,
                        methods=tuple(args.methods), reuse=args.reuse)
    print("\n".join(summary(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
