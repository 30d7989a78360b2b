"""The result of the feature-interaction analysis (:func:`deepresolve.interactions`): arrays, tables, HDF5.

Shapes: C classes, K channels, G motif groups, P channel pairs and Q group pairs evaluated. A pair's 2 x 2 *truth
table* ``t[a, b]`` is the mean output (on the run's output scale, ``params["scale"]``) with player i off/on
(``a``) and player j off/on (``b``); :func:`kind` names its logic. A pair is *significant* when its
Benjamini-Hochberg q-value (:func:`bh_qvalues`) is below the run's level ``params["significance"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
import pandas as pd

from .._checks import existing_file
from ..errors import ArgumentError, FileFormatError
from ._format import check_format, json_attribute, save_hdf5
from ._rows import class_row

#: The format tag of an interactions group.
FORMAT = "deepresolve-interactions-2"
_ATTRS = ("layer", "class_names", "channel_names", "params")

#: The families a pair's q-value is computed over (``params["fdr"]``): each class's pairs of a level, or the pairs
#: of a level over all classes.
FDR_FAMILIES = ("class", "all")
#: The significance level of runs that stored none.
DEFAULT_SIGNIFICANCE = 0.05


def bh_qvalues(pvalues: np.ndarray, *, family: str = "class") -> np.ndarray:
    """Benjamini-Hochberg q-values (:func:`scipy.stats.false_discovery_control`) of p-values (C, P).

    ``family="class"``: over each row (one class's P pairs); ``"all"``: over all C x P values. A NaN p-value (a
    pair a method gives none for) gets a NaN q-value and is not counted. Returns (C, P) float.
    """
    if family not in FDR_FAMILIES:
        raise ArgumentError(f"family: expected one of {', '.join(map(repr, FDR_FAMILIES))}, got {family!r}")
    # imported here: loading a result that stores its q-values imports no scipy (only files written before them,
    # and results built without them, compute them)
    from scipy.stats import false_discovery_control

    p = np.asarray(pvalues, dtype=float)
    q = np.full(p.shape, np.nan)
    for rows in (range(len(p)) if family == "class" else [...]):
        tested = np.isfinite(p[rows])
        if tested.any():
            sub = np.full(p[rows].shape, np.nan)
            sub[tested] = false_discovery_control(p[rows][tested])
            q[rows] = sub
    return q


@dataclass
class Interactions:
    """Pairwise feature interactions of a layer, per class, between channels and between motif groups.

    Shapes: C classes, K channels, G motif groups, P channel pairs and Q group pairs evaluated.

    Attributes
    ----------
    classes : (C,) int
        Output indices, in the order of the first axis of every array.
    class_names : list of str, length C
    channel_names : list of str, length K
    groups : (K,) int
        Motif group of every channel (0..G-1), -1 for a channel that responds to no group's word.
    main : (C, K) float
        Main effect of switching each channel on: mean of v(S+i) - v(S) over contexts.
    pairs : (P, 2) int
        Channel pairs evaluated (i < j).
    values : (C, P) float
        Interaction (mean second difference) of each pair; > 0 synergy, < 0 antagonism.
    pvalues : (C, P) float
        p-value of each pair: a one-sided t-test over the contexts of the interval null
        ``|interaction| <= margin x r_c`` (``params["margin"]``; ``r_c`` the class's output range over the truth
        tables evaluated, ``params["margin_of"]``; files without it used the rms main effect of the class's top
        players).
    tables : (C, P, 2, 2) float
        Truth tables: mean output (on the run's output scale, ``params["scale"]``) with channel i off/on (axis 2)
        and j off/on (axis 3).
    group_main : (C, G) float
    group_pairs : (Q, 2) int
    group_values, group_pvalues : (C, Q) float
    group_tables : (C, Q, 2, 2) float
    on_levels : (K,) float
        The level each channel is switched on at.
    words : (K, 4, w) float
        One-hot preferred word of each channel.
    group_words : (G, 4, k) float
        One-hot word of each motif group (what the group is switched on with); a zero column keeps the background
        base (words of different lengths share the width k, each centred in it).
    layer : str
    params : dict
        Every setting of the run.
    group_pwms : (G, 4, k) float or None
        Each group's PWM as the network reads it: probabilities at the columns of its word, zero columns
        elsewhere (None in files written before PWMs were kept).
    group_copies : (G, G) bool
        ``group_copies[g, h]``: groups g and h are copies of one motif by what the network does with them (the
        diagonal is True; the identity for results without it). A pair of copies is named ``"redundant (copies of
        one motif)"``, not as an interaction of two motifs.
    qvalues, group_qvalues : (C, P) and (C, Q) float
        Benjamini-Hochberg q-values of ``pvalues`` and ``group_pvalues`` over each class's pairs of the level
        (:func:`bh_qvalues`); computed from the p-values when not given (a file written before them loads so).
    qvalues_all, group_qvalues_all : (C, P) and (C, Q) float
        The same over all classes' pairs of the level.
    group_matches : pandas.DataFrame or None
        The best JASPAR matches of each group PWM by Tomtom (``params["jaspar"]``), a few rows per group:
        ``group``, ``rank`` (1 = best), ``target`` ("<matrix id> <name>"), ``p_value``, ``q_value``
        (Benjamini-Hochberg over the group's targets), ``offset``, ``overlap``, ``strand``. None when matching
        was off (or in files written before).
    """

    classes: np.ndarray
    class_names: list[str]
    channel_names: list[str]
    groups: np.ndarray
    main: np.ndarray
    pairs: np.ndarray
    values: np.ndarray
    pvalues: np.ndarray
    tables: np.ndarray
    group_main: np.ndarray
    group_pairs: np.ndarray
    group_values: np.ndarray
    group_pvalues: np.ndarray
    group_tables: np.ndarray
    on_levels: np.ndarray
    words: np.ndarray
    group_words: np.ndarray
    layer: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    group_pwms: np.ndarray | None = None
    group_copies: np.ndarray | None = None
    group_matches: pd.DataFrame | None = None
    qvalues: np.ndarray | None = field(default=None, repr=False)
    group_qvalues: np.ndarray | None = field(default=None, repr=False)
    qvalues_all: np.ndarray | None = field(default=None, repr=False)
    group_qvalues_all: np.ndarray | None = field(default=None, repr=False)

    _ARRAYS = ("classes", "groups", "main", "pairs", "values", "pvalues", "tables", "group_main", "group_pairs",
               "group_values", "group_pvalues", "group_tables", "on_levels", "words", "group_words")
    # arrays files written before them lack: the identity, q-values from the p-values, no PWMs
    _LATER_ARRAYS = ("group_copies", "qvalues", "group_qvalues", "qvalues_all", "group_qvalues_all", "group_pwms")

    def __post_init__(self) -> None:
        if self.group_copies is None:
            self.group_copies = np.eye(self.n_groups, dtype=bool)
        for prefix, p in (("", self.pvalues), ("group_", self.group_pvalues)):
            for suffix, family in (("", "class"), ("_all", "all")):
                if getattr(self, f"{prefix}qvalues{suffix}") is None:
                    setattr(self, f"{prefix}qvalues{suffix}", bh_qvalues(p, family=family))

    @property
    def significance(self) -> float:
        """The level below which a pair's q-value is called significant (``params["significance"]``)."""
        # files written before the option was renamed store it as "alpha"
        return float(self.params.get("significance", self.params.get("alpha", DEFAULT_SIGNIFICANCE)))

    @property
    def fdr(self) -> str:
        """The family of the q-values that decide significance (``params["fdr"]``): "class" (each class's pairs of
        a level, the default) or "all" (all classes' pairs of a level)."""
        return str(self.params.get("fdr", "class"))

    @property
    def n_groups(self) -> int:
        return self.group_main.shape[1]

    @property
    def group_names(self) -> list[str]:
        """Each group named by its word and its channels (``"CAGGTCAA (ch3+ch7)"``, ``"... (no channel)"``); a
        base the word leaves to the background is N."""
        names = []
        for g, w in enumerate(self.group_words):
            w = np.asarray(w)
            on = np.flatnonzero(w.sum(0) > 0)
            word = "".join("ACGT"[w[:, j].argmax()] if w[:, j].sum() > 0 else "N"
                           for j in range(on[0], on[-1] + 1)) if len(on) else ""
            members = "+".join(self.channel_names[k] for k in np.flatnonzero(self.groups == g))
            names.append(f"{word} ({members or 'no channel'})")
        return names

    @property
    def group_best_matches(self) -> list[str]:
        """Each group's best JASPAR match (``group_matches``, rank 1) as ``"MA0139.2 CTCF (q=0.003)"``; "" for a
        group without one (matching off, or no target)."""
        best = {}
        if self.group_matches is not None:
            for r in self.group_matches[self.group_matches["rank"] == 1].itertuples():
                best[int(r.group)] = f"{r.target} (q={r.q_value:.2g})"
        return [best.get(g, "") for g in range(self.n_groups)]

    @staticmethod
    def _dense(pairs: np.ndarray, values: np.ndarray, n: int, diagonal: float) -> np.ndarray:
        out = np.full((values.shape[0], n, n), np.nan)
        out[:, pairs[:, 0], pairs[:, 1]] = values
        out[:, pairs[:, 1], pairs[:, 0]] = values
        idx = np.arange(n)
        out[:, idx, idx] = diagonal
        return out

    @property
    def matrix(self) -> np.ndarray:
        """(C, K, K) interactions: symmetric, diagonal 0, NaN for pairs not evaluated."""
        return self._dense(self.pairs, self.values, len(self.channel_names), 0.0)

    @property
    def pvalue(self) -> np.ndarray:
        """(C, K, K) p-values (diagonal and pairs not evaluated: NaN)."""
        return self._dense(self.pairs, self.pvalues, len(self.channel_names), np.nan)

    @property
    def qvalue(self) -> np.ndarray:
        """(C, K, K) the q-values that decide significance (of the family :attr:`fdr`; as :attr:`pvalue`)."""
        return self._dense(self.pairs, self._level("channel").q, len(self.channel_names), np.nan)

    @property
    def group_matrix(self) -> np.ndarray:
        """(C, G, G) interactions between motif groups (as :attr:`matrix`)."""
        return self._dense(self.group_pairs, self.group_values, self.n_groups, 0.0)

    @property
    def group_pvalue(self) -> np.ndarray:
        """(C, G, G) p-values between motif groups."""
        return self._dense(self.group_pairs, self.group_pvalues, self.n_groups, np.nan)

    @property
    def group_qvalue(self) -> np.ndarray:
        """(C, G, G) the q-values that decide significance between motif groups."""
        return self._dense(self.group_pairs, self._level("group").q, self.n_groups, np.nan)

    def index_of(self, cls: int | str, argument: str = "cls") -> int:
        """Row of ``cls`` (an output index or a class name) in this result's arrays (:func:`class_row`)."""
        return class_row(self.classes, self.class_names, cls, argument)

    def _level(self, level: str) -> _Level:
        if level not in ("channel", "group"):
            raise ArgumentError(f"level: expected 'channel' or 'group', got {level!r}")
        prefix = "" if level == "channel" else "group_"
        q_class, q_all = getattr(self, f"{prefix}qvalues"), getattr(self, f"{prefix}qvalues_all")
        return _Level(pairs=getattr(self, f"{prefix}pairs"), values=getattr(self, f"{prefix}values"),
                      p=getattr(self, f"{prefix}pvalues"), q_class=q_class, q_all=q_all,
                      q=q_all if self.fdr == "all" else q_class, tables=getattr(self, f"{prefix}tables"),
                      names=self.channel_names if level == "channel" else self.group_names)

    def truth_table(self, cls: int | str, i: int, j: int, *, level: str = "channel") -> np.ndarray:
        """2 x 2 truth table t[a, b] of mean outputs (output scale): a = player i off/on, b = player j off/on.

        Players are channels (``level="channel"``) or motif groups (``level="group"``).
        """
        c = self.index_of(cls)
        at = self._level(level)
        pairs, tables, names = at.pairs, at.tables, at.names
        for a, b, swap in ((i, j, False), (j, i, True)):
            hit = np.flatnonzero((pairs[:, 0] == a) & (pairs[:, 1] == b))
            if len(hit):
                t = tables[c, hit[0]]
                return t.T.copy() if swap else t.copy()
        raise ArgumentError(f"i, j: expected a {level} pair that was evaluated (of {len(names)} {level}s), got "
                            f"({i}, {j}), which was not evaluated")

    def table(self, cls: int | str, *, level: str = "group", top: int | None = 20) -> pd.DataFrame:
        """Pairs of one class ranked by |interaction|, with labels, p-value, q-values (``qvalue`` over the class's
        pairs of the level, ``qvalue_all`` over all classes'), significance (the q-value of the family
        :attr:`fdr` below :attr:`significance`) and truth-table kind."""
        c = self.index_of(cls)
        at = self._level(level)
        significance = self.significance
        order = np.argsort(-np.abs(np.nan_to_num(at.values[c], nan=0.0)), kind="stable")
        matches = self.group_best_matches if level == "group" else None
        rows = []
        for x in order[:top]:
            i, j = (int(v) for v in at.pairs[x])
            t = at.tables[c, x]
            copies = level == "group" and bool(self.group_copies[i, j])
            row = {"i": i, "j": j, "label_i": at.names[i], "label_j": at.names[j]}
            if matches is not None:
                row.update(match_i=matches[i], match_j=matches[j])
            rows.append({**row, "interaction": float(at.values[c, x]), "pvalue": float(at.p[c, x]),
                         "qvalue": float(at.q_class[c, x]), "qvalue_all": float(at.q_all[c, x]),
                         "significant": bool(at.q[c, x] < significance),
                         "kind": "redundant (copies of one motif)" if copies else kind(t),
                         "t00": t[0, 0], "t01": t[0, 1], "t10": t[1, 0], "t11": t[1, 1]})
        return pd.DataFrame(rows)

    def save(self, target: str | Path | h5py.Group, name: str = "interactions") -> None:
        """Write to a new HDF5 file (atomically, replacing one there), or into group ``name`` of an open file or group
        (e.g. a Result's file)."""
        if isinstance(target, (str, Path)):
            save_hdf5(target, lambda f: self.save(f, name))
            return
        if name in target:
            del target[name]
        g = target.create_group(name)
        for a in self._ARRAYS + self._LATER_ARRAYS:
            if getattr(self, a) is not None:
                g.create_dataset(a, data=np.asarray(getattr(self, a)))
        if self.group_matches is not None:
            m = g.create_group("group_matches")
            m.attrs["columns"] = json.dumps(list(self.group_matches.columns))
            for column in self.group_matches.columns:
                values = self.group_matches[column].to_numpy()
                m.create_dataset(column, data=values.astype(h5py.string_dtype()) if values.dtype == object else values)
        g.attrs["format"] = FORMAT
        g.attrs["layer"] = self.layer
        g.attrs["class_names"] = json.dumps(list(self.class_names))
        g.attrs["channel_names"] = json.dumps(list(self.channel_names))
        g.attrs["params"] = json.dumps(self.params, default=str)

    @classmethod
    def load(cls, source: str | Path | h5py.Group, name: str = "interactions") -> "Interactions":
        """Read what :meth:`save` wrote (a file path, or an open file/group holding group ``name``)."""
        if isinstance(source, (str, Path)):
            path = existing_file(source, "interactions file")
            try:
                with h5py.File(path, "r") as f:
                    return cls.load(f, name)
            except OSError as err:  # not HDF5, or truncated
                raise FileFormatError(f"{str(path)!r}: expected a deepresolve interactions file (HDF5), got a file "
                                      f"h5py cannot read ({err})") from None
        where = f"{source.file.filename!r}"
        if name not in source:
            raise FileFormatError(f"{where}: expected deepresolve interactions under {name!r}, got no deepresolve "
                                  "interactions there")
        g = source[name]
        check_format(g.attrs.get("format"), FORMAT, where, "interactions group")
        missing = [a for a in cls._ARRAYS if a not in g] + [a for a in _ATTRS if a not in g.attrs]
        if missing:
            raise FileFormatError(f"{where}: expected interactions with every array and attribute, got a group "
                                  f"without {', '.join(missing)}")
        texts = {a: json_attribute(g.attrs[a], f"{name}/{a}", where)
                 for a in ("class_names", "channel_names", "params")}
        a = {n: g[n][()] for n in cls._ARRAYS}
        C, K = len(a["classes"]), len(texts["channel_names"])
        G = a["group_main"].shape[-1] if a["group_main"].ndim == 2 else -1
        P, Q = len(a["pairs"]), len(a["group_pairs"])
        expected = {"class_names": (len(texts["class_names"]), C), "groups": (a["groups"].shape, (K,)),
                    "main": (a["main"].shape, (C, K)), "values": (a["values"].shape, (C, P)),
                    "pvalues": (a["pvalues"].shape, (C, P)), "tables": (a["tables"].shape, (C, P, 2, 2)),
                    "group_main": (a["group_main"].shape, (C, G)), "group_values": (a["group_values"].shape, (C, Q)),
                    "group_pvalues": (a["group_pvalues"].shape, (C, Q)),
                    "group_tables": (a["group_tables"].shape, (C, Q, 2, 2))}
        matches = None
        if "group_matches" in g:
            m = g["group_matches"]
            matches = pd.DataFrame({c: m[c].asstr()[()] if h5py.check_string_dtype(m[c].dtype) else m[c][()]
                                    for c in json_attribute(m.attrs["columns"], f"{name}/group_matches", where)})
        for field_name, (got, want) in expected.items():
            if got != want:
                raise FileFormatError(f"{where}: expected {name}/{field_name} of shape {want} (C = {C} classes, "
                                      f"K = {K} channels, {P} pairs, {Q} group pairs), got {got}")
        later = {n: g[n][()] for n in cls._LATER_ARRAYS if n in g}
        expected = {"group_copies": (G, G), "qvalues": (C, P), "qvalues_all": (C, P), "group_qvalues": (C, Q),
                    "group_qvalues_all": (C, Q), "group_pwms": a["group_words"].shape}
        for field_name, got in later.items():
            if got.shape != expected[field_name]:
                raise FileFormatError(f"{where}: expected {name}/{field_name} of shape {expected[field_name]} (C = "
                                      f"{C} classes, {G} motif groups, {P} pairs, {Q} group pairs), got {got.shape}")
        return cls(**a, layer=str(g.attrs["layer"]), **texts, **later, group_matches=matches)

    def summary(self, top: int = 5) -> str:
        """Readable summary: settings, then each class's top group pairs."""
        lines = [f"Feature interactions: layer {self.layer!r}, {len(self.classes)} classes, {len(self.channel_names)} "
                 f"channels in {self.n_groups} motif groups; {len(self.pairs)} channel pairs and "
                 f"{len(self.group_pairs)} group pairs evaluated over {self.params.get('contexts')} contexts "
                 f"({self.params.get('scale')} scale); p-values against |interaction| <= {self.params.get('margin')} "
                 f"x {self.params.get('margin_of', 'rms main effect')}, significant at Benjamini-Hochberg q < "
                 f"{self.significance} over "
                 f"{'all classes' if self.fdr == 'all' else 'each class'}'s pairs"]
        q_column = "qvalue_all" if self.fdr == "all" else "qvalue"
        if self.group_matches is not None:
            lines.append("Motif groups and their best JASPAR match (Tomtom, " + str(self.params.get("jaspar")) + "): "
                         + "; ".join(f"{n.split(' (')[0]} ~ {m or 'none'}"
                                     for n, m in zip(self.group_names, self.group_best_matches)))
        for c, name in enumerate(self.class_names[:20]):
            df = self.table(self.classes[c], top=top)
            sig = df[df["significant"]] if len(df) else df
            lines.append(f"{name}: " + ("; ".join(
                f"{r.label_i} x {r.label_j} {r.interaction:+.3g} ({r.kind}, q={getattr(r, q_column):.2g})"
                for r in sig.itertuples())
                or "no significant pair"))
        if len(self.class_names) > 20:
            lines.append(f"... {len(self.class_names) - 20} more classes")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<deepresolve.Interactions layer={self.layer!r} classes={len(self.classes)} "
                f"channels={len(self.channel_names)} groups={self.n_groups} pairs={len(self.pairs)}>")

    def __str__(self) -> str:
        return self.summary()


class _Level(NamedTuple):
    """The arrays of one level of a result: q the q-values that decide significance (``q_class`` or ``q_all``)."""

    pairs: np.ndarray
    values: np.ndarray
    p: np.ndarray
    q_class: np.ndarray
    q_all: np.ndarray
    q: np.ndarray
    tables: np.ndarray
    names: list[str]


def kind(t: np.ndarray, tol: float = 0.5) -> str:
    """Name the logic of a 2 x 2 truth table t[a, b] of mean outputs.

    Effects relative to t00: d10, d01 (each alone), d11 (both); interaction I = d11 - d10 - d01.

    * neither alone lowers the output: I > 0 ``synergy (AND-like)``; I <= 0 and one alone does little (less
      than a quarter of the other) ``veto (NOT-like)`` (the other's effect is cancelled); both raise it and together
      less than ``tol`` times the smaller ``XOR-like``; else ``redundant (OR-like)`` (saturation);
    * both lower it: I > 0 ``redundant repression (saturation)``, else ``synergistic repression``;
    * one raises and the other lowers it: I < 0 ``veto (NOT-like)``, else ``mixed``.
    """
    d10, d01, d11 = t[1, 0] - t[0, 0], t[0, 1] - t[0, 0], t[1, 1] - t[0, 0]
    inter = d11 - d10 - d01
    if d10 >= 0 and d01 >= 0:
        if inter > 0:
            return "synergy (AND-like)"
        if min(d10, d01) < 0.25 * max(d10, d01):
            return "veto (NOT-like)"
        return "XOR-like" if d11 < tol * min(d10, d01) else "redundant (OR-like)"
    if d10 < 0 and d01 < 0:
        return "redundant repression (saturation)" if inter > 0 else "synergistic repression"
    return "veto (NOT-like)" if inter < 0 else "mixed"
