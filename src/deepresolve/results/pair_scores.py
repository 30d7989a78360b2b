"""Pairwise interaction scores of words (the players) from a baseline method: arrays, tables, HDF5.

Made by :func:`deepresolve.baselines.marginal_interactions` (input-space pairwise marginalisation) and
:func:`deepresolve.baselines.shapley_interactions` (Shapley interactions, shapiq). Shapes: C classes, G words,
P = G (G - 1) / 2 pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .._checks import existing_file
from ..errors import FileFormatError
from ._format import check_format, json_attribute, save_hdf5
from ._rows import class_row
from .interactions import kind

#: The format tag of a pair-scores group.
FORMAT = "deepresolve-pair-scores-1"
_ARRAYS = ("classes", "words", "pairs", "values", "pvalues", "qvalues", "tables")
_ATTRS = ("method", "class_names", "word_names", "params")


@dataclass
class PairScores:
    """Interaction of every pair of words, per class, from one baseline method.

    Attributes
    ----------
    classes : (C,) int
        Output indices, in the order of the first axis of every array.
    class_names : list of str, length C
    words : (G, 4, w) float
        The players: one-hot words (an all-zero column keeps the background's base).
    word_names : list of str, length G
        Each word as text (N for a column that keeps the background).
    pairs : (P, 2) int
        Word pairs (i < j), all of them.
    values : (C, P) float
        Interaction of each pair on the output scale (``params["scale"]``); > 0 synergy, < 0 antagonism.
    pvalues : (C, P) float
        Two-sided p-value of the interaction's difference from 0 (NaN where the method gives none).
    qvalues : (C, P) float
        Benjamini-Hochberg q-values of ``pvalues`` within each class (NaN where the p-value is).
    tables : (C, P, 2, 2) float
        Truth tables where the method has them: mean output with word i off/on (axis 2) and j off/on (axis 3);
        NaN otherwise.
    method : str
        ``"marginal"`` or ``"shapley"``.
    params : dict
        Every setting of the run.
    """

    classes: np.ndarray
    class_names: list[str]
    words: np.ndarray
    word_names: list[str]
    pairs: np.ndarray
    values: np.ndarray
    pvalues: np.ndarray
    qvalues: np.ndarray
    tables: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def matrix(self) -> np.ndarray:
        """(C, G, G) interactions: symmetric, diagonal 0."""
        G = len(self.word_names)
        out = np.zeros((len(self.classes), G, G))
        out[:, self.pairs[:, 0], self.pairs[:, 1]] = self.values
        out[:, self.pairs[:, 1], self.pairs[:, 0]] = self.values
        return out

    def index_of(self, cls: int | str, argument: str = "cls") -> int:
        """Row of ``cls`` (an output index or a class name) in the arrays (:func:`~._rows.class_row`)."""
        return class_row(self.classes, self.class_names, cls, argument)

    def table(self, cls: int | str, *, top: int | None = 20, significance: float = 0.05) -> pd.DataFrame:
        """Pairs of one class ranked by |interaction|: labels, interaction, p- and q-value, whether the q-value is
        below ``significance`` (a false discovery rate), the truth table's kind and cells (where there is one)."""
        c = self.index_of(cls)
        order = np.argsort(-np.abs(np.nan_to_num(self.values[c], nan=0.0)), kind="stable")
        rows = []
        for q in order[:top]:
            i, j = (int(v) for v in self.pairs[q])
            t = self.tables[c, q]
            rows.append({"i": i, "j": j, "label_i": self.word_names[i], "label_j": self.word_names[j],
                         "interaction": float(self.values[c, q]), "pvalue": float(self.pvalues[c, q]),
                         "qvalue": float(self.qvalues[c, q]), "significant": bool(self.qvalues[c, q] < significance),
                         "kind": kind(t) if np.isfinite(t).all() else "",
                         "t00": t[0, 0], "t01": t[0, 1], "t10": t[1, 0], "t11": t[1, 1]})
        return pd.DataFrame(rows)

    def summary(self, top: int = 5, significance: float = 0.05) -> str:
        """Readable summary: the method and its settings, then each class's strongest pairs."""
        p = self.params
        lines = [f"Pair scores ({self.method}{' ' + p['index'] if 'index' in p else ''}): {len(self.word_names)} "
                 f"words, {len(self.pairs)} pairs, {len(self.classes)} classes, {p.get('contexts')} contexts "
                 f"({p.get('scale')} scale)"]
        for c, name in enumerate(self.class_names[:20]):
            df = self.table(self.classes[c], top=top, significance=significance)
            lines.append(f"{name}: " + "; ".join(
                f"{r.label_i} x {r.label_j} {r.interaction:+.3g}"
                + (f" (q={r.qvalue:.2g}{', significant' if r.significant else ''})" if np.isfinite(r.qvalue) else "")
                for r in df.itertuples()))
        if len(self.class_names) > 20:
            lines.append(f"... {len(self.class_names) - 20} more classes")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<deepresolve.PairScores method={self.method!r} classes={len(self.classes)} "
                f"words={len(self.word_names)} pairs={len(self.pairs)}>")

    def __str__(self) -> str:
        return self.summary()

    def save(self, target: str | Path | h5py.Group, name: str = "pair_scores") -> None:
        """Write to a new HDF5 file (atomically, replacing one there), or into group ``name`` of an open file or
        group."""
        if isinstance(target, (str, Path)):
            save_hdf5(target, lambda f: self.save(f, name))
            return
        if name in target:
            del target[name]
        g = target.create_group(name)
        for a in _ARRAYS:
            g.create_dataset(a, data=np.asarray(getattr(self, a)))
        g.attrs["format"] = FORMAT
        g.attrs["method"] = self.method
        for a in ("class_names", "word_names"):
            g.attrs[a] = json.dumps(list(getattr(self, a)))
        g.attrs["params"] = json.dumps(self.params, default=str)

    @classmethod
    def load(cls, source: str | Path | h5py.Group, name: str = "pair_scores") -> PairScores:
        """Read what :meth:`save` wrote (a file path, or an open file/group holding group ``name``)."""
        if isinstance(source, (str, Path)):
            path = existing_file(source, "pair scores file")
            try:
                with h5py.File(path, "r") as f:
                    return cls.load(f, name)
            except OSError as err:  # not HDF5, or truncated
                raise FileFormatError(f"{str(path)!r}: expected a deepresolve pair scores file (HDF5), got a file "
                                      f"h5py cannot read ({err})") from None
        where = f"{source.file.filename!r}"
        if name not in source:
            raise FileFormatError(f"{where}: expected deepresolve pair scores under {name!r}, got nothing there")
        g = source[name]
        check_format(g.attrs.get("format"), FORMAT, where, "pair scores group")
        missing = [a for a in _ARRAYS if a not in g] + [a for a in _ATTRS if a not in g.attrs]
        if missing:
            raise FileFormatError(f"{where}: expected pair scores with every array and attribute, got a group "
                                  f"without {', '.join(missing)}")
        texts = {a: json_attribute(g.attrs[a], f"{name}/{a}", where) for a in ("class_names", "word_names", "params")}
        out = cls(**{a: g[a][()] for a in _ARRAYS}, method=str(g.attrs["method"]), **texts)
        C, G, P = len(out.classes), len(out.word_names), len(out.pairs)
        expected = {"class_names": (len(out.class_names), C), "words": (len(out.words), G),
                    "pairs": (out.pairs.shape, (G * (G - 1) // 2, 2)), "values": (out.values.shape, (C, P)),
                    "pvalues": (out.pvalues.shape, (C, P)), "qvalues": (out.qvalues.shape, (C, P)),
                    "tables": (out.tables.shape, (C, P, 2, 2))}
        for field_name, (got, want) in expected.items():
            if got != want:
                raise FileFormatError(f"{where}: expected {name}/{field_name} of shape {want} (C = {C} classes, "
                                      f"G = {G} words), got {got}")
        return out
