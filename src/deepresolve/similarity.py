"""Class similarity from OFIVs, and the conventional measures it is compared with (paper, Fig 4b and Fig 7).

- ``class_similarity``: A, the Pearson correlation of non-negative OFIVs between classes (the paper's measure:
  only positively contributing channels are truly associated with a class).
- ``ofiv_correlation``: the same with the full OFIVs (negative terms confound it).
- ``class_difference``: D = OFIV_i - OFIV_j.
- ``label_correlation``: Pearson correlation of the label columns.
- ``weight_cosine``: cosine of the rows of the last linear layer's weight matrix.
- ``cluster_classes``: hierarchical clustering of classes on A (distance 1 - A).
- ``dnase_association``: for every TF or histone-mark output of a DeepSEA-like model, how many DNase outputs it
  is strongly positively and strongly negatively similar to (the paper's Fig 8b).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from torch import nn

from ._checks import AnyOf, Array, Choice, ClassKey, Int, OptionalOf, Spec, Via, check_float, declare
from ._model import Model, type_name
from .errors import ArgumentError, ModelError
from .results import Result, check_result


def _result() -> Spec:
    return Via(lambda value, argument: check_result(value), "a deepresolve.results.Result", wrong="result.h5")


def _pearson_rows(x: np.ndarray) -> np.ndarray:
    """Pearson correlation between rows; a constant row correlates 0 with the others (1 with itself)."""
    x = np.asarray(x, dtype=np.float64)
    centered = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centered, axis=1)
    safe = np.where(norm > 0, norm, 1.0)
    unit = centered / safe[:, None]
    corr = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


@declare(result=_result())
def class_similarity(result: Result) -> np.ndarray:
    """Class similarity matrix A: Pearson correlation of the non-negative OFIVs, (C, C).

    Classes whose non-negative OFIV is constant (e.g. no positive channel) get correlation 0 with the others.
    """
    return _pearson_rows(np.clip(result.ofiv, 0.0, None))


@declare(result=_result())
def ofiv_correlation(result: Result) -> np.ndarray:
    """Pearson correlation of the full OFIVs (positive and negative terms), (C, C)."""
    return _pearson_rows(result.ofiv)


@declare(result=_result(), i=ClassKey(), j=ClassKey())
def class_difference(result: Result, i: int | str, j: int | str) -> np.ndarray:
    """Difference map D = OFIV_i - OFIV_j, (K,). ``i``/``j`` are output indices or class names."""
    return result.ofiv[result.index_of(i, "i")] - result.ofiv[result.index_of(j, "j")]


@declare(labels=Array(("N", "C")))
def label_correlation(labels: np.ndarray) -> np.ndarray:
    """Pearson correlation between the label columns of an (N, C) label matrix, (C, C)."""
    labels = np.asarray(labels, dtype=np.float64)
    return _pearson_rows(labels.T)


def last_linear_weight(model: nn.Module) -> np.ndarray:
    """Weight matrix (C, hidden) of the last ``nn.Linear`` in ``model``."""
    linears = [m for m in model.modules() if type_name(m) == "Linear"]
    if not linears:
        raise ModelError(f"model: expected a model with an nn.Linear output layer, got a {type(model).__name__} "
                         f"without one; pass its last-layer weight matrix (C, hidden) instead")
    return linears[-1].weight.detach().cpu().numpy()


@declare(model_or_weight=AnyOf(Model(), Array(("C", "hidden"))), classes=OptionalOf(Array(("C",), integer=True)),
         n_outputs=OptionalOf(Int(minimum=1)))
def weight_cosine(model_or_weight: nn.Module | np.ndarray, classes: np.ndarray | None = None, *,
                  n_outputs: int | None = None) -> np.ndarray:
    """Cosine similarity of last-layer weight rows, (C, C).

    Parameters
    ----------
    model_or_weight : nn.Module or (C_all, hidden) array
        A model (its last ``nn.Linear`` is used) or the weight matrix itself.
    classes : (C,) int array, optional
        Rows to keep, e.g. ``result.classes``.
    n_outputs : int, optional
        The number of outputs the weights must have, e.g. ``result.params["n_outputs"]`` of the model a result was
        computed on; a model with another number is refused (its rows would belong to other classes).
    """
    if isinstance(model_or_weight, nn.Module):
        w, what = last_linear_weight(model_or_weight), "model"
    else:
        w, what = np.asarray(model_or_weight, dtype=np.float64), "model_or_weight"
    if n_outputs is not None and w.shape[0] != n_outputs:
        raise ArgumentError(f"{what}: expected a last layer with {n_outputs} outputs (the model the result was "
                            f"computed on), got one with {w.shape[0]}")
    if classes is not None:
        rows = np.asarray(classes)
        if np.any((rows < 0) | (rows >= len(w))):
            raise ArgumentError(f"classes: expected output indices in [0, {len(w) - 1}] (the last layer has {len(w)} "
                                f"outputs), got {rows.tolist()!r:.80}")
        w = w[rows]
    norm = np.linalg.norm(w, axis=1)
    unit = w / np.where(norm > 0, norm, 1.0)[:, None]
    return np.clip(unit @ unit.T, -1.0, 1.0)


@dataclass
class Clustering:
    """Hierarchical clustering of classes."""

    linkage: np.ndarray  # scipy linkage matrix (C - 1, 4)
    order: np.ndarray    # (C,) leaf order of the dendrogram
    labels: np.ndarray   # (C,) cluster label of each class (1-based), when n_clusters was given; else all 1


def class_distance(similarity: np.ndarray) -> np.ndarray:
    """Distances 1 - similarity of a (C, C) similarity matrix, symmetrised, in [0, 2], zero diagonal.

    NaN similarities (a class whose OFIV is constant has no correlation) count as 0, i.e. distance 1.
    """
    s = np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=0.0)
    d = np.clip(1.0 - (s + s.T) / 2.0, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    return d


@declare(similarity=Array(("C", "C")), method=Choice("average", "complete", "single", "weighted"),
         n_clusters=OptionalOf(Int(minimum=1)))
def cluster_classes(similarity: np.ndarray, *, method: str = "average", n_clusters: int | None = None) -> Clustering:
    """Cluster classes hierarchically with distance 1 - similarity.

    Parameters
    ----------
    similarity : (C, C) symmetric array, e.g. :func:`class_similarity`; distances are :func:`class_distance`.
    method : str
        scipy linkage method for a precomputed distance ("average", "complete", "single", "weighted").
    n_clusters : int, optional
        Cut the tree into this many clusters.
    """
    a = np.asarray(similarity, dtype=np.float64)
    if a.shape[0] != a.shape[1]:
        raise ArgumentError(f"similarity: expected a square (C, C) matrix, got shape {a.shape}")
    C = a.shape[0]
    if C < 2:
        return Clustering(np.empty((0, 4)), np.arange(C), np.ones(C, dtype=int))
    z = hierarchy.linkage(squareform(class_distance(a), checks=False), method=method)
    labels = hierarchy.fcluster(z, n_clusters, criterion="maxclust") if n_clusters else np.ones(C, dtype=int)
    return Clustering(z, hierarchy.leaves_list(z), np.asarray(labels))


def dnase_association(similarity: np.ndarray, assays: pd.Series | list[str], *, high: float | None = None,
                      low: float | None = None, quantiles: tuple[float, float] = (0.15, 0.85)) -> pd.DataFrame:
    """Count, for each non-DNase output, its strong positive and strong negative similarities with DNase outputs.

    Parameters
    ----------
    similarity : (C, C) array
        A class similarity matrix over outputs, e.g. :func:`class_similarity`.
    assays : sequence of str, length C
        The assay or target of each output (``"DNase"`` marks accessibility outputs), e.g. the ``assay`` column
        of :func:`deepresolve.io.deepsea.feature_table`.
    high, low : float, optional
        Thresholds of a strong positive / strong negative similarity. Default: the ``quantiles`` of all
        off-diagonal similarities (the paper: 0.52 = 85 %, 0 = 15 %).
    quantiles : (float, float)
        The quantiles (in [0, 1]) that give ``low`` and ``high`` when they are not given.

    Returns
    -------
    DataFrame, one row per non-DNase output (position in the matrix as index), with columns ``assay``,
    ``positive``, ``negative`` and ``net`` = positive - negative, sorted by ``net`` (most accessibility-associated
    first); ``attrs`` holds the thresholds used (``high``, ``low``).
    """
    a = np.asarray(similarity, dtype=np.float64)
    assays = np.asarray(list(assays), dtype=object)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] != len(assays):
        raise ArgumentError(f"similarity: expected shape (C, C) with C = len(assays) = {len(assays)}, got {a.shape}")
    dnase = assays == "DNase"
    if not dnase.any() or dnase.all():
        raise ArgumentError(f"assays: expected both 'DNase' outputs and other outputs, got "
                            f"{'only' if dnase.all() else 'no'} 'DNase' outputs")
    if isinstance(quantiles, (str, bytes)) or len(quantiles) != 2:
        raise ArgumentError(f"quantiles: expected two quantiles (low, high) in [0, 1], got {quantiles!r}")
    q_low, q_high = (check_float(q, "quantiles", minimum=0.0, maximum=1.0) for q in quantiles)
    off = a[~np.eye(len(a), dtype=bool)]
    low = float(np.quantile(off, q_low)) if low is None else check_float(low, "low")
    high = float(np.quantile(off, q_high)) if high is None else check_float(high, "high")
    block = a[np.ix_(~dnase, dnase)]
    df = pd.DataFrame({
        "assay": assays[~dnase],
        "positive": (block > high).sum(axis=1),
        "negative": (block < low).sum(axis=1),
    }, index=np.flatnonzero(~dnase))
    df["net"] = df["positive"] - df["negative"]
    df.attrs.update(high=high, low=low)
    return df.sort_values("net", ascending=False, kind="stable")
