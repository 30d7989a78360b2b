"""Does the default ascent give a converged *answer*? Prints figures; asserts nothing.

On the DeepSEA-shaped head of ``benchmarks/ascent_speed.py`` (H (480, 60) -> conv 960 x 8 + ReLU -> dense 919 +
ReLU -> dense 919, random weights), N classes spread over the 919 x T restarts run through
:func:`deepresolve.resolve` at its defaults -- lambda and the restarts' scale of the default policy computed over
all 919 classes (what a run of all 919 would use), the default optimiser and stopping rule -- and every run named
with ``--run`` the same way with some settings changed. Each is scored against a *reference*: the default run's end
points continued until the objective stops rising,

  1. Adam (lr ``--reference-lr``, betas 0.9 / 0.999) on every row from its end point; a row whose best objective
     gained less than ``--reference-tol`` (relative to |S| + lambda ||H||^2) over ``--reference-every`` steps
     goes back to its best point at half the rate, and leaves after ``--reference-halvings`` halvings or
     ``--reference-steps`` steps (the cap);
  2. then the default optimiser with its default settings from each row's best Adam point.

Runs and reference are summarised by the same code as ``resolve`` (``deepresolve.importance.summarize_fivs``,
``deepresolve.similarity.class_similarity``). Per class: Spearman correlation of the OFIVs, whether the 5 channels
of largest OFIV are the same set, whether the non-additive channels are the same set (and their Jaccard index);
over the N classes: the largest |difference| of the class-similarity matrices; per row: the objective's gap to the
reference, (reference - run) / |reference|; the cost in units (head forward + backward evaluations per row, the
engine's step counts) and seconds. The reference's own drift -- its answer after half its Adam steps against its
answer at the end -- is printed as well: how far "converged" itself still moves.

The reference is stored per class in ``--reference-file`` (an .npz) and reused by later invocations with the same
settings, so that it can be computed over several invocations: ``--max-minutes`` stops starting new groups of
``--group`` classes after that many minutes of computing the reference; the figures cover the classes that have a
reference.

``--run "NAME:key=value,key=value"`` adds a run with resolve's settings changed (any ascent option, e.g.
``steps=20``, ``tol=1e-4``, ``optimizer=bundle``); given several times, several runs. ``--continuation F``
adds a lambda-continuation: the default ascent at F x lambda, then at lambda from F x its maps (the optimum of a
linear region scales as 1/lambda); its units are both stages'.

Usage:
  OMP_NUM_THREADS=1 python benchmarks/ascent_answer.py [--classes 24] [--restarts 10] [--l2 auto|L]
      [--reference-file ref.npz] [--reference-steps 400] [--max-minutes 8] [--run "cap 20:steps=20" ...]
      [--continuation 4 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import OrderedDict
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from ascent_speed import FEATURES, deepsea_head, policy_l2
from hardware import device_name
from scipy.stats import spearmanr
from torch import nn

import deepresolve as dr
from deepresolve.ascent import ASCENT_OPTIONS, DEFAULTS, evaluate
from deepresolve.ascent.objective import value_and_grad
from deepresolve.ascent.optimizers import STEP_RULES
from deepresolve.ascent.rows import Rows
from deepresolve.importance import summarize_fivs
from deepresolve.similarity import class_similarity

TOP = 5


def spread_classes(n: int) -> list[int]:
    """``n`` classes spread evenly over the 919."""
    return sorted({int(c) for c in np.linspace(3, 915, n)})


def parse_run(text: str) -> tuple[str, dict]:
    """"NAME:key=value,..." -> (NAME, settings); values are read as int, float or str."""
    name, _, rest = text.partition(":")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        for kind in (int, float, str):
            try:
                settings[key.strip()] = kind(value.strip())
                break
            except ValueError:
                continue
    return name.strip(), settings


def adam_continuation(head: nn.Module, h: torch.Tensor, cls: torch.Tensor, l2: float, args: argparse.Namespace
                      ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Adam from ``h`` (R, *F) until each row's best objective stops rising; returns the best points, the best
    points after half the cap (the drift check) and the steps each row took.

    A row whose best objective gained less than ``--reference-tol`` over ``--reference-every`` steps halves its
    rate (at a fixed rate Adam circles an optimum on ReLU kinks at a distance set by the rate) and leaves after
    ``--reference-halvings`` halvings.
    """
    R = len(h)
    best_h, half_h = h.clone(), None
    best = torch.full((R,), -np.inf, dtype=torch.float64)
    mark = best.clone()  # best objective at the last check
    m, v = torch.zeros_like(h), torch.zeros_like(h)
    rate = torch.full((R,), args.reference_lr)
    halvings = torch.zeros(R, dtype=torch.long)
    steps = np.zeros(R, dtype=np.int64)
    active = torch.arange(R)
    for k in range(1, args.reference_steps + 1):
        x = h[active]
        s, obj, g = value_and_grad(head, x, cls[active], l2, None)
        obj = obj.double()
        better = obj > best[active]
        best_h[active[better]] = x[better]
        best[active[better]] = obj[better]
        steps[active.numpy()] += 1
        m[active] = 0.9 * m[active] + 0.1 * g
        v[active] = 0.999 * v[active] + 0.001 * g * g
        lr = rate[active].view(-1, *[1] * (h.dim() - 1))
        h[active] = x + lr * (m[active] / (1 - 0.9**k)) / ((v[active] / (1 - 0.999**k)).sqrt() + 1e-8)
        if k == args.reference_steps // 2:
            half_h = best_h.clone()
        if k % args.reference_every == 0:
            scale = (s.double().abs() + (s.double() - obj)).clamp_min(1e-12)
            stalled = active[(best[active] - mark[active]) / scale < args.reference_tol]
            mark[active] = best[active]
            rate[stalled] *= 0.5
            halvings[stalled] += 1
            h[stalled] = best_h[stalled]  # go on from the best point at the smaller rate
            active = active[halvings[active] <= args.reference_halvings]
            if not len(active):
                break
    return best_h, best_h.clone() if half_h is None else half_h, steps


def default_continuation(head: nn.Module, h: torch.Tensor, cls: torch.Tensor, l2: float) -> tuple[torch.Tensor,
                                                                                                     np.ndarray]:
    """The default optimiser with its default settings from ``h``; returns the best points and steps per row."""
    optimizer = ASCENT_OPTIONS["optimizer"].default
    opts = DEFAULTS[optimizer]
    rows = Rows.start(list(range(len(h))), cls.tolist(), h.clone(), opts["lr"])
    best_h, steps = h.clone(), np.zeros(len(h), dtype=np.int64)
    while len(rows):
        s, obj, g = value_and_grad(head, rows.h, rows.cls, l2, None)
        for trace, value in zip(rows.trace, obj.tolist()):
            trace.append(value)
        done = STEP_RULES[optimizer](rows, s, obj, g, opts, l2, None)
        if done.any():
            finished = rows.take(done)
            best_h[finished.index] = finished.best_h
            steps[finished.index.numpy()] = finished.count.numpy()
            rows = rows.take(~done)
    return best_h, steps


def reference(head: nn.Module, default: dr.Result, l2: float, args: argparse.Namespace, path: Path | None,
              key: dict) -> dict[int, dict]:
    """The reference of every class that has one (stored ones read back, new ones computed in groups)."""
    done: dict[int, dict] = {}
    if path is not None and path.exists():
        stored = np.load(path, allow_pickle=True)
        if stored["key"].item() == key:
            done = stored["classes"].item()
        else:
            print(f"# {path}: other settings ({stored['key'].item()}); recomputed")
    todo = [i for i, c in enumerate(default.classes.tolist()) if c not in done]
    T = default.fims.shape[1]
    started = time.perf_counter()
    for lo in range(0, len(todo), args.group):
        if time.perf_counter() - started > 60 * args.max_minutes:
            print(f"# --max-minutes {args.max_minutes} reached: {len(todo) - lo} classes left without a reference")
            break
        group = todo[lo:lo + args.group]
        h = torch.as_tensor(default.fims[group]).reshape(-1, *FEATURES).clone()
        cls = torch.as_tensor(default.classes[group]).repeat_interleave(T)
        t0 = time.perf_counter()
        adam_h, half_h, adam_steps = adam_continuation(head, h, cls, l2, args)
        final_h, default_steps = default_continuation(head, adam_h, cls, l2)
        for name, maps in (("half", half_h), ("adam", adam_h), ("final", final_h)):
            s, obj = evaluate(head, maps, cls.tolist(), l2)
            for j, i in enumerate(group):
                rows = slice(j * T, (j + 1) * T)
                entry = done.setdefault(int(default.classes[i]), {})
                entry[f"{name}_fivs"] = maps[rows].double().mean(-1).numpy()
                entry[f"{name}_scores"] = s[rows].double().numpy()
                entry[f"{name}_objective"] = obj[rows].double().numpy()
        for j, i in enumerate(group):
            rows = slice(j * T, (j + 1) * T)
            entry = done[int(default.classes[i])]
            entry["adam_steps"], entry["default_steps"] = adam_steps[rows], default_steps[rows]
            entry["seconds"] = (time.perf_counter() - t0) / len(group)
        if path is not None:
            np.savez(path, key=np.array(key, dtype=object), classes=np.array(done, dtype=object))
        print(f"# reference: classes {default.classes[group].tolist()} in {time.perf_counter() - t0:.0f} s",
              flush=True)
    return done


def summarized(base: dr.Result, fivs: np.ndarray, scores: np.ndarray) -> dr.Result:
    """``base`` with its FIVs and scores replaced and summarised as resolve does."""
    return dataclasses.replace(base, fims=None, scores=scores,
                               **summarize_fivs(fivs, scores, seed=base.params["seed"],
                                                inconsistency=base.params["inconsistency"]))


def compare(name: str, run: dr.Result, ref: dr.Result, objective: np.ndarray | None, ref_objective: np.ndarray,
            units: np.ndarray | None, seconds: float | None, per_class: bool) -> None:
    """Print the answer criteria of ``run`` against ``ref`` (both over the same classes)."""
    C = len(ref.classes)
    rho = np.array([spearmanr(run.ofiv[c], ref.ofiv[c])[0] for c in range(C)])
    top = np.array([set(np.argsort(-run.ofiv[c])[:TOP]) == set(np.argsort(-ref.ofiv[c])[:TOP]) for c in range(C)])
    same_na = (run.non_additive == ref.non_additive).all(axis=1)
    union = (run.non_additive | ref.non_additive).sum(1)
    jaccard = np.where(union > 0, (run.non_additive & ref.non_additive).sum(1) / np.maximum(union, 1), 1.0)
    similarity = np.abs(class_similarity(run) - class_similarity(ref)).max()
    if per_class:
        for c in range(C):
            print(f"    class {int(ref.classes[c]):3d}: Spearman {rho[c]:.4f}, top-{TOP} same {top[c]!s:5s}, "
                  f"non-additive {int(run.non_additive[c].sum()):3d} / reference {int(ref.non_additive[c].sum()):3d}"
                  f" (same {same_na[c]!s:5s}, Jaccard {jaccard[c]:.2f})")
    line = (f"  {name}: OFIV Spearman median {np.median(rho):.4f}, worst {rho.min():.4f}, >= 0.99 in "
            f"{(rho >= 0.99).mean():.0%}; top-{TOP} same in {top.mean():.0%}; non-additive same in {same_na.mean():.0%}"
            f" (Jaccard median {np.median(jaccard):.2f}, worst {jaccard.min():.2f}); similarity max |difference| "
            f"{similarity:.4f} over {C} classes")
    if objective is not None:
        gap = ((ref_objective - objective) / np.abs(ref_objective)).ravel()
        line += f"; objective gap median {np.median(gap):.1e}, 90 % {np.quantile(gap, 0.9):.1e}"
    if units is not None:
        line += f"; units per row mean {units.mean():.1f} (max {units.max()})"
    if seconds is not None:
        line += f"; {seconds:.0f} s"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=24, help="classes spread over the 919")
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--l2", default="auto", help="a number, or a policy computed over all 919 classes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-lr", type=float, default=0.01)
    parser.add_argument("--reference-tol", type=float, default=1e-6)
    parser.add_argument("--reference-every", type=int, default=50)
    parser.add_argument("--reference-halvings", type=int, default=4, help="a row leaves Adam after this many halvings")
    parser.add_argument("--reference-steps", type=int, default=300, help="cap of the reference's Adam steps")
    parser.add_argument("--reference-file", type=Path, default=None, help="store / reuse the reference here")
    parser.add_argument("--group", type=int, default=4, help="classes per reference group")
    parser.add_argument("--max-minutes", type=float, default=1e9,
                        help="start no reference group after this many minutes of reference")
    parser.add_argument("--run", action="append", default=[], type=parse_run, help='"NAME:key=value,..."')
    parser.add_argument("--continuation", type=float, action="append", default=[],
                        help="a lambda-continuation from this many times lambda")
    parser.add_argument("--per-class", action="store_true", help="print every class of every run")
    args = parser.parse_args()
    print(f"# {device_name('cpu')}", flush=True)

    head = deepsea_head()
    model = nn.Sequential(OrderedDict(h=nn.Identity(), head=head))
    if args.l2 in ("auto", "reach", "gradient"):
        l2, init_scale = policy_l2(head, args.l2)
    else:
        l2, init_scale = float(args.l2), 1.0
    classes = spread_classes(args.classes)
    print(f"{len(classes)} classes x {args.restarts} restarts, l2 {args.l2} = {l2:.4g} (restarts' scale "
          f"{init_scale:.3g}), seed {args.seed}", flush=True)

    def run(settings: dict, lam: float = l2) -> tuple[dr.Result, float]:
        t0 = time.perf_counter()
        res = dr.resolve(model, "h", input_shape=FEATURES, classes=classes, restarts=args.restarts, l2=lam,
                         init_scale=init_scale, seed=args.seed, device="cpu", **settings)
        return res, time.perf_counter() - t0

    default, default_seconds = run({})
    key = {"classes_of": "deepsea_head", "l2": float(f"{l2:.6g}"), "restarts": args.restarts, "seed": args.seed,
           **{k: getattr(args, k) for k in ("reference_lr", "reference_tol", "reference_every", "reference_halvings",
                                             "reference_steps")}}
    print(f"default run: {default_seconds:.0f} s", flush=True)
    refs = reference(head, default, l2, args, args.reference_file, key)
    have = [i for i, c in enumerate(classes) if c in refs]
    if not have:
        return
    entries = [refs[classes[i]] for i in have]

    def ref_part(prefix: str) -> tuple[dr.Result, np.ndarray]:
        fivs = np.stack([e[f"{prefix}_fivs"] for e in entries])
        scores = np.stack([e[f"{prefix}_scores"] for e in entries])
        return summarized(sub(default), fivs, scores), np.stack([e[f"{prefix}_objective"] for e in entries])

    def sub(res: dr.Result) -> dr.Result:
        """``res`` restricted to the classes that have a reference."""
        part = dataclasses.replace(res, classes=res.classes[have], class_names=[res.class_names[i] for i in have],
                                   trace=res.trace[have], steps=res.steps[have])
        return summarized(part, res.fivs[have], res.scores[have])

    final, final_objective = ref_part("final")
    adam_steps = np.concatenate([e["adam_steps"] for e in entries])
    default_steps = np.concatenate([e["default_steps"] for e in entries])
    _, adam_objective = ref_part("adam")
    ref_seconds = sum(e["seconds"] for e in entries)
    last_gain = (final_objective - adam_objective) / np.abs(final_objective)
    print(f"reference over {len(have)} classes: Adam lr {args.reference_lr} for median {np.median(adam_steps):.0f} "
          f"steps (max {adam_steps.max()}, cap {args.reference_steps}, "
          f"{(adam_steps >= args.reference_steps).mean():.0%} of rows at the cap), then the default optimiser for "
          f"median {np.median(default_steps):.0f} (max "
          f"{default_steps.max()}); its last part gained median {np.median(last_gain):.1e}, max {last_gain.max():.1e}"
          f"; {ref_seconds:.0f} s", flush=True)
    half, half_objective = ref_part("half")
    compare(f"reference after {args.reference_steps // 2} Adam steps (drift)", half, final, half_objective,
            final_objective, None, None, args.per_class)
    def continuation(factor: float) -> tuple[dr.Result, float, np.ndarray]:
        """The default ascent at factor x lambda, then at lambda from factor x its maps: result, seconds, units."""
        first, first_seconds = run({}, factor * l2)
        row = {c: i for i, c in enumerate(classes)}

        def starts(rows, feature_shape, seed, scale):
            return torch.from_numpy(np.stack([first.fims[row[c], t] * factor for c, t in rows])).float()

        with mock.patch("deepresolve.ascent.engine.initial_maps", starts):
            res, seconds = run({})
        return res, first_seconds + seconds, first.steps + res.steps

    runs = [("default", {})] + args.run + [(f"continuation from {f:g} x lambda", {"continuation": f})
                                           for f in args.continuation]
    shown = ("optimizer", "tol", "patience", "steps")
    for name, settings in runs:
        if "continuation" in settings:
            res, seconds, units = continuation(settings["continuation"])
            label = name
        else:
            res, seconds = (default, default_seconds) if not settings else run(settings)
            units = res.steps
            label = f"{name} ({', '.join(f'{k} {res.params[k]}' for k in shown)}" \
                    f"{''.join(f', {k} {v}' for k, v in settings.items() if k not in shown)})"
        compare(label, sub(res), final, np.nanmax(res.trace, axis=-1)[have], final_objective, units[have].ravel(),
                seconds, args.per_class)


if __name__ == "__main__":
    main()
