"""Builders shared by the tests: the one fake-:class:`~deepresolve.results.Result` factory, Keras 0.x, 1.2 and 2
files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from deepresolve.importance import summarize
from deepresolve.results import Result


def make_result(C: int = 4, T: int = 6, K: int = 16, W: int = 3, *, S: int = 40, seed: int = 0,
                nonadd_every: int = 2, quantile: float = 0.85, summarized: bool = False, **fields) -> Result:
    """A random but internally consistent result.

    ``summarized=False``: FIVs, ILs and mixtures drawn directly (classes 0, ``nonadd_every``, ... have two
    components, and their channels with IL above the ``quantile`` are non-additive), with ascent traces of ``S``
    steps. ``summarized=True``: random FIMs and scores put through :func:`deepresolve.importance`. ``fields``
    override any field (``layer``, ``params``, ``class_names``, ``classes``, ...).
    """
    rng = np.random.default_rng(seed)
    if summarized:
        fims = rng.normal(size=(C, T, K, W)).astype(np.float32)
        scores = rng.normal(size=(C, T))
        base = dict(classes=np.arange(C), class_names=[f"c{i}" for i in range(C)], fims=fims, scores=scores,
                    trace=rng.normal(size=(C, T, 7)).astype(np.float32), steps=np.full((C, T), 7), layer="conv2",
                    params={"l2": 1.0, "optimizer": "matched"}, **summarize(fims, scores))
        return Result(**{**base, **fields})
    fivs = rng.normal(size=(C, T, K))
    scores = rng.normal(size=(C, T))
    il = fivs.var(axis=1)
    n_comp = np.where(np.arange(C) % nonadd_every == 0, 2, 1)
    non_add = (il >= np.quantile(il, quantile, axis=1, keepdims=True)) & (n_comp[:, None] > 1)
    steps = rng.integers(S // 3, S + 1, size=(C, T))
    trace = np.full((C, T, S), np.nan)
    for c in range(C):
        for t in range(T):
            trace[c, t, : steps[c, t]] = 3 * (1 - np.exp(-np.arange(steps[c, t]) / 5)) + rng.normal()
    bic = rng.normal(100, 5, size=(C, 3))
    base = dict(
        classes=np.arange(C), class_names=[f"class{c}" for c in range(C)],
        fims=rng.normal(size=(C, T, K, W)).astype(np.float32), fivs=fivs, scores=scores,
        weights=scores - scores.min(axis=1, keepdims=True), inconsistency=il, bic=bic, n_components=n_comp,
        non_additive=non_add, consistent_sign=rng.random((C, K)) > 0.5, ofiv=fivs.mean(axis=1),
        trace=trace, steps=steps, layer="conv", params={},
    )
    return Result(**{**base, **fields})


# ----------------------------------------------------------------------------------------------------------
# Writing Keras 1.2 files with h5py (the layout model.save() produced)


def write_keras(folder: Path, layers: list[dict], weights: dict[str, list[np.ndarray]], stem: str = "model") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(
        json.dumps({"class_name": "Sequential", "keras_version": "1.2.0", "config": layers}))
    with h5py.File(folder / f"{stem}.h5", "w") as f:
        g = f.create_group("model_weights")
        names = [l["config"]["name"] for l in layers]
        g.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            lg = g.create_group(n)
            arrays = weights.get(n, [])
            wn = [f"{n}_W", f"{n}_b"][: len(arrays)]
            lg.attrs["weight_names"] = np.array([w.encode() for w in wn]) if wn else np.array([], dtype=float)
            for w, a in zip(wn, arrays):
                lg.create_dataset(w, data=a.astype(np.float32))
    return folder


def layer(cls: str, name: str, **cfg) -> dict:
    return {"class_name": cls, "config": {"name": name, **cfg}}


def write_keras2(path: Path, layers: list[dict], weights: dict[str, dict[str, np.ndarray]], *,
                 backend: str = "tensorflow", keras_version: str = "2.2.4", wrapped: bool = True) -> Path:
    """One Keras 2 ``model.save()`` file: ``model_config`` attribute + ``model_weights/<layer>/<layer>/<w>:0``.

    ``weights`` maps a layer name to its arrays in Keras's order, keyed by variable name (``kernel``, ``bias``,
    ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``). ``wrapped=False`` writes the Keras 2.0-2.2.2
    Sequential config (a bare list of layers) instead of ``{"name": ..., "layers": [...]}``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {"name": "sequential_1", "layers": layers} if wrapped else layers
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = keras_version.encode()
        f.attrs["backend"] = backend.encode()
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": config}).encode()
        g = f.create_group("model_weights")
        names = [l["config"]["name"] for l in layers]
        g.attrs["layer_names"] = np.array([n.encode() for n in names])
        g.attrs["backend"] = backend.encode()
        g.attrs["keras_version"] = keras_version.encode()
        for n in names:
            lg = g.create_group(n)
            arrays = weights.get(n, {})
            wn = [f"{n}/{w}:0" for w in arrays]
            lg.attrs["weight_names"] = np.array([w.encode() for w in wn]) if wn else np.array([], dtype=float)
            for w, a in zip(wn, arrays.values()):
                lg.create_dataset(w, data=a.astype(np.float32))  # the "/" in the name makes a nested group
    return path


def write_keras0(folder: Path, layers: list[dict], weights: dict[int, list[np.ndarray]], stem: str = "model") -> Path:
    """Keras 0.x files: ``{"name": "Sequential", "layers": [{"name": <class>, ...}]}`` json +
    ``layer_{i}/param_{j}`` h5.

    ``layers`` are dicts of the layer's parameters with ``"name"`` the class; ``weights`` maps a layer's index to its
    arrays.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps({"name": "Sequential", "layers": layers, "class_mode": "binary"}))
    with h5py.File(folder / f"{stem}.h5", "w") as f:
        f.attrs["nb_layers"] = len(layers)
        for i in range(len(layers)):
            g = f.create_group(f"layer_{i}")
            arrays = weights.get(i, [])
            g.attrs["nb_params"] = len(arrays)
            for j, a in enumerate(arrays):
                g.create_dataset(f"param_{j}", data=a.astype(np.float32))
    return folder
