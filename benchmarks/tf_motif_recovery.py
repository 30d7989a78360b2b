"""Table 1 of the DeepResolve paper: is the known motif among the top-ranked channels of TF-binding CNNs?

For every trained model folder (``wgEncodeAwgTfbs<Lab><Cell><Factor>...UniPk`` with the authors' Keras 1.2 files),
the 16 channels of the globally max-pooled layer (module ``flatten``, K = 16, W = 1; channel k is first-layer
filter k) are ranked by

- **DeepResolve**: the OFIV of :func:`deepresolve.resolve` with its default lambda policy (``l2="auto"`` =
  "reach": the linearised optimum at H = 0 raises the logit by 8 nats, :mod:`deepresolve.regularization`;
  10 restarts, seed 0; no input data); also, as a sweep, the other policies -- "prior" (lambda = 1 / (2 v), v the
  variance of the layer's maps of random sequences) and the paper's norm-matching heuristic ("norm", random
  sequences standing in for real ones) -- and fixed lambda = 0.1, 1, 3, 10 (``--l2`` chooses others, e.g.
  "gradient", the one-nat policy that was the default before);
- **authors**: the authors' published OFIVs for the same model (``authors_ofiv.tsv`` beside the model folders);
- **saliency**, **gradient x input**, **DeepLIFT** (zero reference): :func:`deepresolve.baselines.layer_attribution`
  on the same layer, averaged over a positive set (below);
- **chance**: the expected hit rate of a uniformly random ranking (exact, from the number of matching filters);

and **enhanced DeepMotif** (:func:`deepresolve.motifs.deepmotif`: 100 random starts, input-space ascent on the
logit, best 25-bp window of the 5 best sequences) proposes 5 PWMs in order.

Each filter is converted to a PWM the authors' way (:func:`deepresolve.motifs.filter_pwms`) and compared with
every motif of a JASPAR release (CORE vertebrates, default JASPAR2016, the bundled release closest to the paper's
JASPAR 2015) by Tomtom (memelite). A filter *matches* when its Tomtom p-value against a JASPAR motif of the
experiment's factor (:mod:`deepresolve.motifs.encode`; heterodimers count for both partners) is below 0.5 (and,
separately, 0.05). A method *hits at top-k* when one of its k best channels (for DeepMotif, its first k PWMs)
matches. As in the paper, the rank tests compare the rank each method gives the filter with the lowest Tomtom
p-value (the best-matching filter): paired Wilcoxon signed-rank and unpaired Mann-Whitney U, DeepResolve (default
policy) against each input-dependent method and against the authors' OFIVs.

Fig. 5 of the paper (``<out>/fig5.png`` and a printed table): every filter of every model is put in one of four
groups by its OFIV rank (ranks 1-4, 5-8, 9-12, 13-16); per group, the mean activation of the filter (its
globally max-pooled value) on positives (``--fig5-n`` random 101-bp sequences with 1-3 instances of the factor's
JASPAR motif, sampled from its PWM) and on negatives (a dinucleotide shuffle of each positive), min-max normalised
to [0, 1] within each network as in the paper, and the Tomtom p-value of the filter against the factor's motif.

Positive set (the paper used the ChIP-seq positives, which are not shipped): a pool of ``--pool`` random
sequences (uniform bases, 101 bp), each carrying 1-3 instances (random strand and position, bases sampled from the
PWM) of motifs drawn uniformly from *all* of the JASPAR release, not only the factor's, is scored by the model
and the top 1 % by logit are kept. The pool is the same for every model (seeded). Nothing here is tuned to these
models: every setting is a library default or the paper's.

Output: ``<out>/models/<model>.tsv`` (one row per method) and ``<model>.filters.tsv`` (one row per filter), written
atomically as each model finishes; a rerun skips models already done with the current set of methods (resume
after an interruption). At the end ``<out>/table1.tsv``, ``<out>/rank_tests.tsv``, ``<out>/fig5.tsv`` and
``<out>/fig5.png`` are written and the tables are printed, with the number of models in which each lambda setting
flags non-additive channels (the paper: 2 of 422).

``--l2`` replaces the sweep by chosen lambda settings (policy names or numbers); ``--rankings-only`` runs only the
DeepResolve rankings (with the authors' OFIVs and chance for comparison), skipping the positive set, the
input-dependent baselines, DeepMotif and Fig. 5, which cost most of the time.

Measured on the 141 shared models (``--rankings-only --l2 auto gradient prior norm 1 3 10``, one worker, 110 s):
known motif first with Tomtom p < 0.05 in 140 (auto = "reach"), 140 ("gradient"), 135 ("prior"), 116 ("norm"),
133 (lambda = 1), 138 (3 and 10) models, the authors' OFIVs 138; models with non-additive channels: 9, 1, 55, 28,
54, 40, 9 (the authors' results: 1).

Usage::

    .venv/bin/python benchmarks/tf_motif_recovery.py --models tf422/ --out runs/table1 --workers 2
    .venv/bin/python benchmarks/tf_motif_recovery.py --models tf422/ --out runs/lambda --rankings-only \
        --l2 auto prior 1

where ``tf422/`` holds the authors' published model folders (and, optionally, ``authors_ofiv.tsv``).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
from hardware import device_name

#: lambda settings of the default sweep (resolve's l2); the first is resolve's default
SWEEP_L2 = ("auto", "prior", "norm", 0.1, 1.0, 3.0, 10.0)
INPUT_METHODS = ("saliency", "gradient_x_input", "deeplift")
BASELINES = ("authors", *INPUT_METHODS)


def sweep_methods(settings: tuple) -> tuple[tuple[str, str | float], ...]:
    """(method name, resolve's l2) of each lambda setting: "DeepResolve" for the default, "DeepResolve l2=<x>"."""
    return tuple(("DeepResolve" if l2 == "auto" else f"DeepResolve l2={l2:g}" if isinstance(l2, float)
                  else f"DeepResolve l2={l2}", l2) for l2 in settings)


def method_names(sweep: tuple, rankings_only: bool) -> tuple[str, ...]:
    """Every method of a run, in table order."""
    ranked = (*(m for m, _ in sweep), *(("authors",) if rankings_only else BASELINES))
    return (*ranked, *(() if rankings_only else ("enhanced DeepMotif",)), "chance")


def parse_l2(value: str) -> str | float:
    """``--l2``'s values: a policy name of resolve, or a number."""
    try:
        return float(value)
    except ValueError:
        from deepresolve.regularization import POLICIES

        if value not in ("auto", *POLICIES):
            raise argparse.ArgumentTypeError(f"expected a number or a policy ({', '.join(('auto', *POLICIES))}), "
                                             f"got {value!r}") from None
        return value

LAYER = "flatten"
TOPS = (1, 3, 5)
THRESHOLDS = (0.5, 0.05)


def background_pool(motifs: dict[str, np.ndarray], n: int, length: int = 101, seed: int = 0) -> np.ndarray:
    """(n, 4, length) one-hot random sequences, each with 1-3 instances of ``motifs`` sampled from their PWMs."""
    rng = np.random.default_rng(seed)
    pwms = [p for p in motifs.values() if p.shape[1] <= length]
    seqs = rng.integers(0, 4, size=(n, length))
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            pwm = pwms[rng.integers(len(pwms))]
            if rng.random() < 0.5:
                pwm = pwm[::-1, ::-1]  # reverse complement (A,C,G,T order)
            w = pwm.shape[1]
            start = rng.integers(0, length - w + 1)
            cum = np.cumsum(pwm, axis=0)
            u = rng.random(w)
            seqs[i, start:start + w] = np.minimum((u[None, :] > cum).sum(axis=0), 3)
    return np.eye(4, dtype=np.float32)[seqs].transpose(0, 2, 1).copy()


def chance_hit(n_match: int, k: int, n: int = 16) -> float:
    """Probability that a uniformly random ranking of n channels puts one of n_match matching ones in its top k."""
    return 1.0 - math.comb(n - n_match, k) / math.comb(n, k)


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every channel, highest score first (ties broken by channel index)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=int)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def run_model(folder: str, release: str, pool_path: str | None, restarts: int, seed: int,
              authors: np.ndarray | None = None, fig5_n: int = 200, sweep: tuple = sweep_methods(SWEEP_L2)
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 rows (``<model>.tsv``) and filter rows (``<model>.filters.tsv``) of one model.

    ``pool_path`` None: only the DeepResolve rankings of ``sweep`` (and the authors' OFIVs), no baselines,
    DeepMotif or Fig. 5 activations.
    """
    import torch
    from tangermeme.ersatz import dinucleotide_shuffle

    import deepresolve
    from deepresolve._model import strip_probability
    from deepresolve.baselines import layer_attribution
    from deepresolve.io.keras import load_keras
    from deepresolve.motifs import deepmotif, filter_pwms, jaspar_motifs, tomtom_matches
    from deepresolve.motifs.encode import jaspar_keys_for, parse_experiment
    from deepresolve.split import capture

    name = Path(folder).name
    exp = parse_experiment(name)
    targets = jaspar_motifs(release)
    keys = jaspar_keys_for(exp.factor, targets)
    if not keys:
        raise ValueError(f"{name}: factor {exp.factor} has no motif in {release}")
    model = load_keras(folder, onehot=True)
    rankings_only = pool_path is None
    length = 101  # the published models' input length

    pwms = filter_pwms(model)
    K = len(pwms)
    tt = tomtom_matches(list(pwms), targets, names=[str(k) for k in range(K)], n_jobs=1)
    fac = tt[tt.target.isin(keys)].sort_values("p_value").drop_duplicates("query").set_index("query")
    p_factor = np.array([fac.loc[str(k), "p_value"] for k in range(K)])
    best_any = tt[tt["rank"] == 1].set_index("query")

    scores, chosen_l2, flagged, results = {}, {}, {}, {}
    for method, l2 in sweep:
        res = deepresolve.resolve(model, LAYER, input_shape=(4, length), classes=[0], restarts=restarts,
                                  l2=l2, seed=seed, device="cpu")
        scores[method], chosen_l2[method] = np.asarray(res.ofiv[0], dtype=float), float(res.params["l2"])
        flagged[method], results[method] = int(res.non_additive[0].sum()), res
    if authors is not None:
        scores["authors"] = np.asarray(authors, dtype=float)
    n_pos, extra = 0, {}
    if not rankings_only:
        pool = np.load(pool_path)
        net, _ = strip_probability(model)
        with torch.no_grad():
            logits = torch.cat([net(torch.from_numpy(pool[i:i + 4096])) for i in range(0, len(pool), 4096)])[:, 0]
        n_pos = max(1, len(pool) // 100)
        positives = pool[torch.topk(logits, n_pos).indices.numpy()]
        for method in INPUT_METHODS:
            scores[method] = (layer_attribution(model, LAYER, positives, method=method, cls=0)
                              .mean(axis=0).reshape(K, -1).mean(axis=1))

        dm_pwms, _ = deepmotif(model, 0, length=length, n_starts=100, width=25, n_best=5, seed=seed)
        dm_tt = tomtom_matches(list(dm_pwms), targets, names=[str(i) for i in range(len(dm_pwms))], n_jobs=1)
        dm_fac = dm_tt[dm_tt.target.isin(keys)].sort_values("p_value").drop_duplicates("query").set_index("query")
        dm_p = np.array([dm_fac.loc[str(i), "p_value"] for i in range(len(dm_pwms))])

        # Fig. 5: activation on sequences carrying the factor's motif and on their dinucleotide shuffles
        factor_pos = background_pool({k: targets[k] for k in keys}, fig5_n, length=length, seed=seed + 1)
        factor_neg = dinucleotide_shuffle(torch.from_numpy(factor_pos), n=1, random_state=seed)[:, 0].float()
        with torch.no_grad():
            extra["activation_positive"] = (capture(model, LAYER, torch.from_numpy(factor_pos))
                                            .reshape(fig5_n, K, -1).amax(-1).mean(0).numpy())
            extra["activation_negative"] = (capture(model, LAYER, factor_neg)
                                            .reshape(fig5_n, K, -1).amax(-1).mean(0).numpy())

    best_filter = int(np.argmin(p_factor))
    rows = []
    for method in method_names(sweep, rankings_only):
        row = {"model": name, "factor": exp.factor, "method": method, "best_filter": best_filter,
               "best_filter_p": float(p_factor[best_filter]), "n_positives": n_pos, "l2": chosen_l2.get(method, np.nan),
               "non_additive": flagged.get(method, np.nan)}
        if method == "authors" and method not in scores:  # no published OFIVs for this model
            continue
        if method in scores:
            ranks = ranks_from_scores(scores[method])
            order = np.argsort(ranks)
            row["best_filter_rank"] = int(ranks[best_filter])
            for k in TOPS:
                row[f"min_p_top{k}"] = float(p_factor[order[:k]].min())
        elif method == "enhanced DeepMotif":
            row["best_filter_rank"] = np.nan
            for k in TOPS:
                row[f"min_p_top{k}"] = float(dm_p[:k].min())
        for t in THRESHOLDS:
            for k in TOPS:
                col = f"top{k}_p<{t}"
                if method == "chance":
                    row[col] = chance_hit(int((p_factor < t).sum()), k, K)
                else:
                    row[col] = float(row[f"min_p_top{k}"] < t)
        rows.append(row)
    per_method = pd.DataFrame(rows)
    per_filter = pd.DataFrame({
        "model": name, "filter": np.arange(K), "p_factor": p_factor,
        "best_jaspar": [best_any.loc[str(k), "target"] for k in range(K)],
        "best_jaspar_p": [best_any.loc[str(k), "p_value"] for k in range(K)],
        **{f"score_{m}": s for m, s in scores.items()},
        **{f"non_additive_{m}": r.non_additive[0].astype(int) for m, r in results.items()},
        **extra,
    })
    return per_method, per_filter


def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)


def _worker(folder: str, release: str, pool_path: str | None, out: str, restarts: int, seed: int,
            authors: np.ndarray | None, fig5_n: int, sweep: tuple) -> tuple[str, float]:
    import torch

    torch.set_num_threads(1)  # tiny models; a single thread avoids oversubscribing the cores
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:
        pass
    started = time.time()
    per_method, per_filter = run_model(folder, release, pool_path, restarts, seed, authors, fig5_n, sweep)
    name = Path(folder).name
    models = Path(out) / "models"
    _write_atomic(per_filter, models / f"{name}.filters.tsv")
    _write_atomic(per_method, models / f"{name}.tsv")  # written last: its presence marks the model done
    return name, time.time() - started


def summarize(frames: list[pd.DataFrame], methods: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 (hits per method and, for DeepResolve's settings, models with non-additive channels) and the rank
    tests of resolve's default against each baseline (none when the default was not run)."""
    from scipy.stats import mannwhitneyu, wilcoxon

    df = pd.concat(frames, ignore_index=True)
    n = df.model.nunique()
    cols = [f"top{k}_p<{t}" for t in THRESHOLDS for k in TOPS]
    table = df.groupby("method", sort=False)[cols].sum().reindex([m for m in methods if m in set(df.method)])
    table.insert(0, "models", n)
    table["models_non_additive"] = (df.assign(flag=df.non_additive > 0).groupby("method").flag.sum()
                                    .where(df.groupby("method").non_additive.count() > 0))
    tests = []
    dr = df[df.method == "DeepResolve"].set_index("model")["best_filter_rank"]
    for method in BASELINES if not dr.empty else ():
        other = df[df.method == method].set_index("model")["best_filter_rank"]
        if other.empty:
            continue
        mine, other = dr.reindex(other.index), other  # the authors' table may not cover every model
        row = {"comparison": f"DeepResolve vs {method}", "models": len(other),
               "median_rank_DeepResolve": float(mine.median()), "median_rank_other": float(other.median()),
               "mean_rank_DeepResolve": float(mine.mean()), "mean_rank_other": float(other.mean())}
        if (mine.values != other.values).any():
            row["wilcoxon_p"] = float(wilcoxon(mine.values, other.values).pvalue)
        else:
            row["wilcoxon_p"] = 1.0
        row["mannwhitney_p"] = float(mannwhitneyu(mine.values, other.values, alternative="two-sided").pvalue)
        tests.append(row)
    return table, pd.DataFrame(tests)


def fig5(filters: pd.DataFrame, rankings: tuple[str, ...] = ("DeepResolve", "authors"),
         path: Path | None = None) -> pd.DataFrame:
    """The paper's Fig. 5: filters grouped by OFIV rank (4 groups of 4 ranks); activation and Tomtom p-value per group.

    Parameters
    ----------
    filters : DataFrame
        The per-filter rows of every model (``<model>.filters.tsv``), with ``score_<ranking>``,
        ``activation_positive``, ``activation_negative`` and ``p_factor``.
    rankings : tuple of str
        Whose OFIVs rank the filters.
    path : Path, optional
        Where to save the figure (PNG); none drawn when None.

    Returns
    -------
    DataFrame, one row per (ranking, group): filters, median and mean of the per-network [0, 1]-normalised positive
    and negative activations, median Tomtom p-value against the factor's motif, fraction with p < 0.05.
    """
    df = filters.copy()

    def unit(v: pd.Series) -> pd.Series:  # min-max within each network, as in the paper
        span = v.max() - v.min()
        return (v - v.min()) / span if span > 0 else v * 0.0

    for col in ("activation_positive", "activation_negative"):
        df[col + "_norm"] = df.groupby("model")[col].transform(unit)
    rows, groups = [], {}
    for ranking in rankings:
        col = f"score_{ranking}"
        if col not in df:
            continue
        sub = df.dropna(subset=[col]).copy()
        rank = sub.groupby("model")[col].rank(ascending=False, method="first")
        sub["group"] = ((rank - 1) // 4).astype(int) + 1  # 1 = OFIV ranks 1-4 (top)
        for g, part in sub.groupby("group"):
            groups[(ranking, g)] = part
            rows.append({"ranking": ranking, "group": f"ranks {4 * g - 3}-{4 * g}", "filters": len(part),
                         "pos_median": part.activation_positive_norm.median(),
                         "pos_mean": part.activation_positive_norm.mean(),
                         "neg_median": part.activation_negative_norm.median(),
                         "neg_mean": part.activation_negative_norm.mean(),
                         "p_median": part.p_factor.median(), "frac_p<0.05": float((part.p_factor < 0.05).mean())})
    table = pd.DataFrame(rows)
    if path is not None and groups:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        used = [r for r in rankings if (r, 1) in groups]
        fig, axes = plt.subplots(len(used), 3, figsize=(11, 3.2 * len(used)), squeeze=False)
        for i, ranking in enumerate(used):
            # the paper draws the top group on the right: ranks 13-16 ... 1-4 from left to right
            parts = [groups[(ranking, g)] for g in (4, 3, 2, 1) if (ranking, g) in groups]
            labels = [f"{4 * g - 3}-{4 * g}" for g in (4, 3, 2, 1) if (ranking, g) in groups]
            for ax, values, title in zip(axes[i], (
                    [p.activation_positive_norm for p in parts], [p.activation_negative_norm for p in parts],
                    [-np.log10(p.p_factor.clip(lower=1e-12)) for p in parts]),
                    ("positive activation (normalised)", "negative activation (normalised)",
                     "-log10 Tomtom p (factor motif)")):
                ax.boxplot(values, tick_labels=labels, showfliers=False)
                ax.set_title(f"{ranking}: {title}", fontsize=9)
                ax.set_xlabel("OFIV rank group")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return table


def format_table(table: pd.DataFrame) -> str:
    n = int(table["models"].iloc[0])
    lines = [f"Known motif among the top-k channels (out of {n} models)",
             f"{'method':<22}" + "".join(f"{'top' + str(k):>9}" for k in TOPS) + " |" +
             "".join(f"{'top' + str(k):>9}" for k in TOPS),
             f"{'':<22}{'Tomtom p < 0.5':^27} |{'Tomtom p < 0.05':^27}"]
    for method, row in table.iterrows():
        cells = []
        for t in THRESHOLDS:
            for k in TOPS:
                v = row[f"top{k}_p<{t}"]
                cells.append(f"{v:9.1f}" if method == "chance" else f"{int(round(v)):9d}")
        lines.append(f"{method:<22}" + "".join(cells[:3]) + " |" + "".join(cells[3:]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, type=Path, help="folder of the authors' model folders (e.g. tf422/)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N model folders (sorted by name)")
    parser.add_argument("--jaspar", default="JASPAR2016", help="pyjaspar release (CORE vertebrates)")
    parser.add_argument("--out", type=Path, default=Path("runs/tf_motif_recovery"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool", type=int, default=20000, help="background sequences scored per model")
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--authors", type=Path, default=None,
                        help="the authors' OFIV table (default: <models>/authors_ofiv.tsv when present)")
    parser.add_argument("--fig5-n", type=int, default=200, help="positive sequences per model for Fig. 5")
    parser.add_argument("--l2", type=parse_l2, nargs="+", default=list(SWEEP_L2), metavar="L2",
                        help="lambda settings of the DeepResolve rankings: policies of resolve (auto, reach, gradient, "
                             "prior, norm) or numbers (default: %(default)s)")
    parser.add_argument("--rankings-only", action="store_true",
                        help="only the DeepResolve rankings (and the authors' OFIVs): no positive set, input-dependent "
                             "baselines, DeepMotif or Fig. 5")
    args = parser.parse_args(argv)
    print(f"# {device_name(getattr(args, 'device', None) or 'cpu')}", flush=True)  # figures name their processor
    sweep = sweep_methods(tuple(dict.fromkeys(args.l2)))
    methods = method_names(sweep, args.rankings_only)

    if not args.models.is_dir():
        parser.error(f"--models {str(args.models)!r} is not a folder")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1; got {args.limit}")
    if args.workers < 1 or args.pool < 100:
        parser.error("--workers must be >= 1 and --pool >= 100")
    folders = sorted(p for p in args.models.iterdir() if p.is_dir() and any(p.glob("*.json")))
    if not folders:
        parser.error(f"no model folders (with a .json) in {str(args.models)!r}")
    folders = folders[: args.limit]
    authors_path = args.authors if args.authors is not None else args.models / "authors_ofiv.tsv"
    if args.authors is not None and not authors_path.is_file():
        parser.error(f"--authors {str(authors_path)!r} is not a file")
    authors = {}
    if authors_path.is_file():
        table = pd.read_csv(authors_path, sep="\t").set_index("experiment")
        authors = {name: row[[f"ofiv_{k}" for k in range(16)]].to_numpy(float) for name, row in table.iterrows()}

    from deepresolve.motifs import jaspar_motifs, tomtom_matches

    targets = jaspar_motifs(args.jaspar)
    (args.out / "models").mkdir(parents=True, exist_ok=True)
    pool_path = None if args.rankings_only else args.out / f"pool_{args.jaspar}_{args.pool}_{args.seed}.npy"
    if pool_path is not None and not pool_path.exists():
        tmp = pool_path.with_name(pool_path.stem + ".tmp.npy")
        np.save(tmp, background_pool(targets, args.pool, seed=args.seed))
        tmp.replace(pool_path)
    # compile memelite's numba kernels once here (cached on disk), not in every worker
    tomtom_matches([next(iter(targets.values()))], targets, n_jobs=1)

    def done(folder: Path) -> bool:  # finished with the current methods (older runs lack the sweep and authors)
        path = args.out / "models" / f"{folder.name}.tsv"
        wanted = set(methods) - ({"authors"} if folder.name not in authors else set())
        return path.exists() and wanted <= set(pd.read_csv(path, sep="\t").method)

    todo = [f for f in folders if not done(f)]
    print(f"{len(folders)} models, {len(folders) - len(todo)} already done, {len(todo)} to run "
          f"({args.workers} workers, {args.jaspar}, pool {args.pool})", flush=True)
    started = time.time()
    failures = []
    jobs = [(str(f), args.jaspar, None if pool_path is None else str(pool_path), str(args.out), args.restarts,
             args.seed, authors.get(f.name), args.fig5_n, sweep) for f in todo]
    if args.workers == 1:
        for i, job in enumerate(jobs, 1):
            try:
                name, secs = _worker(*job)
                print(f"[{i}/{len(jobs)}] {name} {secs:.1f}s", flush=True)
            except Exception as err:  # keep going: one broken model must not lose the others
                failures.append((job[0], repr(err)))
                print(f"[{i}/{len(jobs)}] FAILED {job[0]}: {err!r}", flush=True)
    else:
        # spawn, not fork: the parent has started numba's OpenMP runtime, which does not survive a fork
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            futures = {ex.submit(_worker, *job): job[0] for job in jobs}
            for i, fut in enumerate(as_completed(futures), 1):
                try:
                    name, secs = fut.result()
                    print(f"[{i}/{len(jobs)}] {name} {secs:.1f}s", flush=True)
                except Exception as err:
                    failures.append((futures[fut], repr(err)))
                    print(f"[{i}/{len(jobs)}] FAILED {futures[fut]}: {err!r}", flush=True)
    print(f"ran {len(jobs) - len(failures)} models in {time.time() - started:.0f}s", flush=True)

    done_paths = [args.out / "models" / f"{f.name}.tsv" for f in folders]
    frames = [pd.read_csv(p, sep="\t") for p in done_paths if p.exists()]
    if not frames:
        print("no finished models to summarise", file=sys.stderr)
        return 1
    table, tests = summarize(frames, methods)
    _write_atomic(table.reset_index(), args.out / "table1.tsv")
    _write_atomic(tests, args.out / "rank_tests.tsv")
    print(format_table(table))
    policies = [m for m, l2 in sweep if isinstance(l2, str)]
    every = pd.concat(frames)
    lam = every[every.method.isin(policies)].groupby("method").l2.describe()
    if not lam.empty:
        print("lambda chosen per model by the policies:")
        print(lam[["min", "25%", "50%", "75%", "max"]].to_string(float_format=lambda v: f"{v:.3g}"))
    print("models with non-additive channels:")
    print(table.models_non_additive.dropna().astype(int).to_string())
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(tests.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if not args.rankings_only:
        filters = pd.concat([pd.read_csv(p.with_name(p.name[:-4] + ".filters.tsv"), sep="\t")
                             for p in done_paths if p.exists()], ignore_index=True)
        f5 = fig5(filters, path=args.out / "fig5.png")
        _write_atomic(f5, args.out / "fig5.tsv")
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(f"Fig. 5: filters grouped by OFIV rank ({args.out / 'fig5.png'})")
            print(f5.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if failures:
        print(f"{len(failures)} models failed: {failures}", file=sys.stderr)
    return 0 if not failures else 2


if __name__ == "__main__":
    sys.exit(main())
