"""The results object of a DeepResolve run: arrays, summaries, save/load and a readable summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .._checks import ExistingFile, OutputFile, declare
from ..errors import ArgumentError, CheckpointError, FileFormatError
from ..store import RunStore
from ._format import check_format, json_attribute, save_hdf5
from ._rows import class_row
from .interactions import Interactions

#: The format tag this version writes and reads.
FORMAT = "deepresolve-result-1"
_ATTRS = ("layer", "class_names", "channel_names", "params")
_ARRAYS = (
    "classes", "fims", "fivs", "scores", "weights", "inconsistency", "bic", "n_components",
    "non_additive", "consistent_sign", "ofiv", "trace", "steps",
)


#: What ``path`` of :func:`load` and :meth:`Result.load` accepts.
RESULT_FILE = ExistingFile("result file")

#: Channel categories of one class, long and short (for narrow tables; "±": the sign changes between restarts).
CATEGORIES = {
    "additive": "additive",
    "non-additive (consistent sign)": "non-additive",
    "non-additive (inconsistent sign)": "non-additive \u00b1",
}


def categories(non_additive: np.ndarray, consistent_sign: np.ndarray, *, short: bool = False) -> np.ndarray:
    """The category label of every channel from the boolean arrays ``non_additive`` and ``consistent_sign``."""
    long = np.where(~np.asarray(non_additive, dtype=bool), "additive",
                    np.where(consistent_sign, "non-additive (consistent sign)", "non-additive (inconsistent sign)"))
    return np.vectorize(CATEGORIES.get, otypes=[object])(long).astype(str) if short else long


@dataclass
class Result:
    """Everything DeepResolve computed for one model, layer and set of classes.

    Shapes use C classes analysed, T restarts, K channels and W positions of the layer
    (W = 1 when the layer output has no spatial axis, e.g. after global pooling).

    Attributes
    ----------
    classes : (C,) int
        Output indices analysed, in the order of the first axis of every array.
    class_names : list of str, length C
    fims : (C, T, K, W) float32, or None
        Feature importance maps (FIM): the optimised feature map of every restart. None when the run did not
        keep them (``resolve(..., keep_fims=False)``; the maps are then only in its run store, if it had one, and
        :meth:`fims_of` reads one class's from there); what needs them all raises an ArgumentError saying so
        (:meth:`require_fims`).
    fivs : (C, T, K) float
        Feature importance vectors (FIV): spatial means of the FIMs.
    scores : (C, T) float
        Final class score S_c (pre-activation logit) of every restart.
    weights : (C, T) float
        Restart weights: ``scores`` offset so that all are non-negative.
    inconsistency : (C, K) float
        Inconsistency level (IL): weighted variance of the FIVs over restarts.
    bic : (C, 3) float
        BIC of Gaussian mixtures with 1, 2, 3 components fitted to each class's IL scores.
    n_components : (C,) int
        Mixture components chosen (lowest BIC).
    non_additive : (C, K) bool
        Channels outside the lowest-mean mixture component.
    consistent_sign : (C, K) bool
        Whether all restarts with non-zero weight give the channel's FIV the same sign.
    ofiv : (C, K) float
        Overall feature importance vector (OFIV).
    trace : (C, T, S) float
        Objective at every ascent step (:attr:`objective`: S_c(H) - lambda * ||H||^2, or ||H - center||^2 with
        ``l2_center``); NaN after a restart converged.
    steps : (C, T) int
        Steps each restart took.
    layer : str
        The layer analysed, as given to :func:`deepresolve.resolve` (``params["at"]`` says whether H is its output
        or its input; :attr:`layer_label` shows both).
    channel_names : list of str, length K
    params : dict
        Every setting of the run (lambda, optimiser, seeds, package versions, ...).
    interactions : Interactions or None
        Feature interactions of the same layer and classes (:func:`deepresolve.interactions.interactions`), from
        ``resolve(..., interactions=True)``; saved with the result as the HDF5 group ``interactions``.
    """

    classes: np.ndarray
    class_names: list[str]
    fims: np.ndarray | None
    fivs: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    inconsistency: np.ndarray
    bic: np.ndarray
    n_components: np.ndarray
    non_additive: np.ndarray
    consistent_sign: np.ndarray
    ofiv: np.ndarray
    trace: np.ndarray
    steps: np.ndarray
    layer: str = ""
    channel_names: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    interactions: Interactions | None = None

    def __post_init__(self) -> None:
        if not self.channel_names:
            self.channel_names = [f"ch{k}" for k in range(self.fivs.shape[-1])]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_restarts(self) -> int:
        return self.fivs.shape[1]

    @property
    def n_channels(self) -> int:
        return self.fivs.shape[2]

    @property
    def n_positions(self) -> int:
        """W, positions of the layer's map (from the FIMs, or from ``params`` when they were not kept)."""
        if self.fims is not None:
            return int(self.fims.shape[-1])
        shape = self.params.get("feature_shape") or [0, 1]
        return int(np.prod(shape[1:])) if len(shape) > 1 else 1

    def require_fims(self, purpose: str) -> np.ndarray:
        """The FIMs, or an ArgumentError saying that ``purpose`` needs them and this run did not keep them."""
        if self.fims is None:
            raise ArgumentError(f"result.fims: {purpose} needs the feature importance maps, but this result has "
                                "none: the run used keep_fims=False, which keeps only their FIVs (the maps are in "
                                "its checkpoint folder, if it had one: result.fims_of(cls) reads a class's maps "
                                "from there); rerun with keep_fims=True")
        return self.fims

    def fims_of(self, cls: int | str, *, checkpoint: str | Path | None = None) -> np.ndarray:
        """The feature importance maps of one class, (T, K, W) float32, kept or not.

        From :attr:`fims` when the run kept them; otherwise read from the run's store
        (:meth:`deepresolve.store.RunStore.maps`), the ``checkpoint`` folder it wrote (``params["checkpoint"]``,
        e.g. ``OUT/checkpoint/`` of ``deepresolve run --no-keep-fims``). Only the chunks holding the class's
        rows are read, so a 919-class run's maps are never all in memory.

        Parameters
        ----------
        cls : int or str
            Output index or class name.
        checkpoint : str or Path, optional
            The run's store folder, when it is no longer where the run wrote it; given, the maps are read from
            it even when the result kept them.

        Raises
        ------
        ArgumentError
            The run kept no maps anywhere (``keep_fims=False`` without ``checkpoint``).
        CheckpointError
            The folder is missing or not a run store, was written by another run (other classes, layer,
            restarts, seed ...), or lacks some of the class's rows.
        """
        row = self.index_of(cls)
        if checkpoint is None:
            if self.fims is not None:
                return self.fims[row]
            checkpoint = self.params.get("checkpoint")
            if checkpoint is None:
                raise ArgumentError("checkpoint: this result's run kept no feature importance maps (keep_fims=False) "
                                    "and wrote no run store; pass checkpoint=FOLDER if its store is elsewhere, or "
                                    "rerun with keep_fims=True or checkpoint=")
        store = RunStore.open(checkpoint)
        T, K = self.n_restarts, self.n_channels
        ours = {"layer": self.layer, "at": self.params.get("at"), "classes": self.classes.tolist(), "restarts": T,
                "seed": self.params.get("seed"), "feature_shape": self.params.get("feature_shape")}
        differ = [k for k, v in ours.items() if store.settings.get(k) != v]
        if differ:
            shown = "; ".join(f"{k}: store {store.settings.get(k)!r:.40}, result {ours[k]!r:.40}" for k in differ)
            raise CheckpointError(f"checkpoint: expected the run store of this result, got {str(checkpoint)!r}, "
                                  f"written by another run ({shown})")
        return store.maps(range(row * T, (row + 1) * T)).reshape(T, K, -1)

    @property
    def layer_label(self) -> str:
        """The layer for display: ``"conv3"``, or ``"conv3 (input)"`` when H was the layer's input."""
        return f"{self.layer} (input)" if self.params.get("at") == "input" else self.layer

    @property
    def objective(self) -> str:
        """The ascent's objective as a formula (what :attr:`trace` records)."""
        penalty = "||H - center||\u00b2" if self.params.get("l2_center") is not None else "||H||\u00b2"
        return f"S_c(H) - \u03bb{penalty}"

    def index_of(self, cls: int | str, argument: str = "cls") -> int:
        """Row of ``cls`` (an output index or a class name) in this result's arrays (:func:`class_row`)."""
        return class_row(self.classes, self.class_names, cls, argument)

    @declare(path=OutputFile())
    def save(self, path: str | Path) -> Path:
        """Write the result to an HDF5 file (readable with plain h5py: one dataset per array), atomically.

        A full disk or a kill leaves the previous file (or none) and an OSError naming the problem, never half a file.
        """
        return save_hdf5(path, self._fill)

    def _fill(self, f: h5py.File) -> None:
        for name in _ARRAYS:
            if name == "fims" and self.fims is None:  # keep_fims=False: no dataset; load reads None
                continue
            gzip = name == "fims"
            f.create_dataset(name, data=np.asarray(getattr(self, name)), compression="gzip" if gzip else None,
                             compression_opts=1 if gzip else None)
        f.attrs["layer"] = self.layer
        f.attrs["class_names"] = json.dumps(list(self.class_names))
        f.attrs["channel_names"] = json.dumps(list(self.channel_names))
        f.attrs["params"] = json.dumps(self.params, default=str)
        f.attrs["format"] = FORMAT
        if self.interactions is not None:
            self.interactions.save(f, "interactions")

    @classmethod
    @declare(path=RESULT_FILE)
    def load(cls, path: str | Path) -> "Result":
        """Read a result written by :meth:`save`.

        Raises
        ------
        MissingFileError
            ``path`` does not exist or is a folder.
        FileFormatError
            Not a deepresolve result (not HDF5, truncated, another format tag), written by a newer deepresolve, an
            array or attribute missing or damaged, or arrays whose shapes disagree; the message names the file and
            the field.
        """
        where = f"result file {str(path)!r}"
        try:
            with h5py.File(path, "r") as f:
                check_format(f.attrs.get("format"), FORMAT, where, "result file")
                missing = [name for name in _ARRAYS if name not in f and name != "fims"]
                missing += [name for name in _ATTRS if name not in f.attrs]
                if missing:
                    raise FileFormatError(f"{where}: expected a deepresolve result with every array and attribute, "
                                          f"got one without {', '.join(missing)}")
                arrays = {name: f[name][()] if name in f else None for name in _ARRAYS}
                attrs = {name: f.attrs[name] for name in _ATTRS}
                inter = Interactions.load(f, "interactions") if "interactions" in f else None
        except OSError as err:  # not HDF5, or truncated
            raise FileFormatError(f"{where}: expected a deepresolve result file (HDF5), got a file h5py "
                                  f"cannot read ({err})") from None
        names = {name: json_attribute(attrs[name], name, where) for name in ("class_names", "channel_names", "params")}
        problem = _shape_problem(arrays, names["class_names"], names["channel_names"])
        if problem:
            raise FileFormatError(f"{where}: expected a result whose arrays agree in shape, got {problem}")
        return cls(**arrays, layer=str(attrs["layer"]), **names, interactions=inter)

    def table(self, top: int = 5) -> pd.DataFrame:
        """Per-class table of the most important channels (by |OFIV|) and of the non-additive channels.

        With :attr:`interactions`, four more columns give each class's top motif-group pair by |interaction|
        (:func:`top_pairs`).
        """
        rows = []
        for i, name in enumerate(self.class_names):
            order = np.argsort(-np.abs(self.ofiv[i]))[:top]
            rows.append({
                "class": name,
                "components": int(self.n_components[i]),
                "top channels (OFIV)": ", ".join(f"{self.channel_names[k]}({self.ofiv[i, k]:+.3g})" for k in order),
                "positive": ", ".join(self.channel_names[k] for k in order if self.ofiv[i, k] > 0),
                "negative": ", ".join(self.channel_names[k] for k in order if self.ofiv[i, k] < 0),
                "non-additive": ", ".join(
                    self.channel_names[k] + ("" if self.consistent_sign[i, k] else "±")
                    for k in np.flatnonzero(self.non_additive[i])
                ),
            })
        df = pd.DataFrame(rows)
        if self.interactions is not None:
            pairs = top_pairs(self.interactions, self.classes)
            df = pd.concat([df, pairs.drop(columns=["output", "class"])], axis=1)
        return df

    def channel_table(self, cls: int | str) -> pd.DataFrame:
        """One row per channel of one class: OFIV, IL, mean FIV, category; sorted by OFIV."""
        i = self.index_of(cls)
        category = categories(self.non_additive[i], self.consistent_sign[i])
        df = pd.DataFrame({
            "channel": self.channel_names,
            "ofiv": self.ofiv[i],
            "inconsistency": self.inconsistency[i],
            "fiv_mean": self.fivs[i].mean(axis=0),
            "fiv_positive_fraction": (self.fivs[i] > 0).mean(axis=0),
            "category": category,
        })
        return df.sort_values("ofiv", ascending=False, ignore_index=True)

    def __repr__(self) -> str:
        C, T, K = self.fivs.shape
        return (f"<deepresolve.Result layer={self.layer_label!r} classes={C} restarts={T} channels={K} "
                f"W={self.n_positions}>")

    def summary(self, top: int = 5) -> str:
        """A readable text summary: settings, then the per-class table."""
        C, T, K = self.fivs.shape
        head = [
            f"DeepResolve result: layer {self.layer_label!r}, {C} classes x {T} restarts, {K} channels x "
            f"{self.n_positions} positions"
            + ("" if self.fims is not None else " (FIMs not kept)"),
            f"lambda = {self.params.get('l2')}, optimiser = {self.params.get('optimizer')}, "
            f"mean steps = {float(np.mean(self.steps)):.1f}",
            f"classes with non-additive channels: {int((self.n_components > 1).sum())} of {C}",
        ]
        if self.interactions is not None:
            ix = self.interactions
            head.append(f"feature interactions: {len(ix.group_pairs)} motif-group pairs over "
                        f"{ix.params.get('contexts')} random contexts ({ix.params.get('scale')} scale); columns "
                        "'top pair' .. 'pair kind' give each class's top pair by |interaction|")
        with pd.option_context("display.max_colwidth", 80, "display.width", 200):
            return "\n".join(head) + "\n" + self.table(top).to_string(index=False)

    def __str__(self) -> str:
        return self.summary()


def top_pairs(interactions: Interactions, classes: np.ndarray | None = None, *, level: str = "group") -> pd.DataFrame:
    """One row per class: its top pair by |interaction| (names, interaction, p-value, the q-value that decides its
    significance (:attr:`Interactions.fdr`), truth-table kind).

    ``classes`` (output indices) sets the rows' order; a class that ``interactions`` did not analyse, or that has no
    evaluated pair, gets empty cells.
    """
    classes = interactions.classes if classes is None else np.asarray(classes)
    rows = []
    for output in classes.tolist():
        row: dict[str, Any] = {"output": int(output), "class": "", "top pair": "", "pair interaction": np.nan,
                               "pair p-value": np.nan, "pair q-value": np.nan, "pair kind": ""}
        if int(output) in interactions.classes:
            c = interactions.index_of(int(output))
            row["class"] = interactions.class_names[c]
            best = interactions.table(int(output), level=level, top=1)
            if len(best):
                r = best.iloc[0]
                row.update({"top pair": f"{r.label_i} x {r.label_j}", "pair interaction": float(r.interaction),
                            "pair p-value": float(r.pvalue),
                            "pair q-value": float(r.qvalue_all if interactions.fdr == "all" else r.qvalue),
                            "pair kind": r.kind})
        rows.append(row)
    return pd.DataFrame(rows)


@declare(path=RESULT_FILE)
def load(path: str | Path) -> Result:
    """Read a :class:`Result` saved with :meth:`Result.save`."""
    return Result.load(path)


def check_result(result: object) -> Result:
    """``result`` if it is a :class:`Result` whose arrays agree in shape; else ArgumentError naming the field."""
    if not isinstance(result, Result):
        raise ArgumentError(f"result: expected a deepresolve.results.Result, got {type(result).__name__}")
    problem = _shape_problem({name: getattr(result, name) for name in _ARRAYS}, result.class_names,
                             result.channel_names)
    if problem:
        raise ArgumentError(f"result.{problem}")
    return result


def _shape_problem(arrays: dict[str, Any], class_names: list[str], channel_names: list[str]) -> str | None:
    """The first array or name list whose shape disagrees with ``fivs`` (C, T, K), as "<field>: ..."; else None."""
    fivs_shape = np.shape(arrays["fivs"])
    if len(fivs_shape) != 3:
        return f"fivs: expected shape (classes, restarts, channels), got {fivs_shape}"
    C, T, K = fivs_shape
    expected = {"classes": (C,), "ofiv": (C, K), "inconsistency": (C, K), "non_additive": (C, K),
                "consistent_sign": (C, K), "scores": (C, T), "weights": (C, T), "bic": (C, 3), "n_components": (C,),
                "steps": (C, T)}
    for name, shape in expected.items():
        got = np.shape(arrays[name])
        if got != shape:
            return f"{name}: expected shape {shape} to match fivs {(C, T, K)}, got {got}"
    trace, fims = np.shape(arrays["trace"]), arrays["fims"]
    if len(trace) != 3 or trace[:2] != (C, T):
        return f"trace: expected shape (C, T, S) = ({C}, {T}, S), got {trace}"
    if fims is not None and (np.ndim(fims) not in (3, 4) or np.shape(fims)[:3] != (C, T, K)):
        return f"fims: expected shape (C, T, K, W) = ({C}, {T}, {K}, W), got {np.shape(fims)}"
    if len(class_names) != C:
        return f"class_names: expected {C} names, got {len(class_names)}"
    if channel_names and len(channel_names) != K:
        return f"channel_names: expected {K} names, got {len(channel_names)}"
    return None
