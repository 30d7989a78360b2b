"""The checkpoint of one analysis (``interactions(..., checkpoint=folder)``): each stage's result on disk as it
finishes, so that a rerun of the same call skips every finished stage.

The folder is a :class:`~deepresolve.store.Store` of kind "interactions"::

    settings.json            what the analysis computes (model fingerprint, layer, classes, every option that
                             changes results)
    players.npz              the players: preferred words, on-levels, motif groups (the word scan), copies
    strength.npz             the groups' strength alone or with one partner (C, G)
    main-effects.npz         the main effects (C, K + G), output and logit scale
    pairs-000000.npz ...     one per chunk of pairs (:func:`~.effects.pair_chunks`): the chunk's pairs, truth
                             tables (C, P', 2, 2) and standard errors (C, P') of the second differences

A chunk keeps what the statistics need of its (n, P', 2, 2, C) outputs, 4 n / 5 times smaller, and exactly: the
interactions, p-values and q-values are computed from the tables and standard errors of all chunks at the end.
Settings that do not change these files (batch size, device, ``verbose``, ``significance``, ``fdr``, ``jaspar``)
are not part of ``settings.json``: a rerun with another significance level or JASPAR release reuses every stage.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..store import Store
from .options import Options
from .players import Players

#: Options that change none of the checkpointed stages (how they are computed, or only what is made of them at the
#: end); every other option is a setting.
NOT_SETTINGS = frozenset({"device", "batch", "verbose", "significance", "fdr", "jaspar"})


def checkpoint_settings(*, model: str, layer: str, classes: list[int], opts: Options, words: np.ndarray | None,
                        groups: np.ndarray | None, adapters: dict[str, Any],
                        fixed_inputs: dict[str, Any] | None) -> dict[str, Any]:
    """What the analysis computes, for ``settings.json``: the ``model`` fingerprint
    (:func:`deepresolve._model.model_fingerprint`), ``layer``, ``classes``, the given channel ``words`` (a digest)
    and ``groups``, the ``adapters`` (:func:`deepresolve.split.adapter_params`; the ``fixed_inputs`` by their
    values' digests, not only their shapes) and every option of ``opts`` but :data:`NOT_SETTINGS`, under the names
    of the arguments, arrays (given motif words, ``inputs``) as digests."""
    out: dict[str, Any] = {"model": model, "layer": layer, "classes": list(classes), "words": _digest(words),
                           "groups": None if groups is None else np.asarray(groups).tolist(), **adapters}
    out["fixed_inputs"] = {name: _digest(v) if isinstance(v, (np.ndarray, torch.Tensor)) else repr(v)
                           for name, v in (fixed_inputs or {}).items()}
    for f in fields(opts):
        if f.name not in NOT_SETTINGS:
            value = getattr(opts, f.name)
            out[f.name] = _digest(value) if isinstance(value, (np.ndarray, torch.Tensor)) else value
    # as the arguments are named: input_shape, and motif_words given as words by their digest
    out["input_shape"] = [4, out.pop("length")]
    given = out.pop("group_words")
    out["motif_words"] = given if given is not None else out["motif_words"]
    return out


def _digest(array: np.ndarray | torch.Tensor | None) -> str | None:
    """SHA-256 of an array's dtype, shape and values; None stays None."""
    if array is None:
        return None
    a = np.ascontiguousarray(array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else array)
    digest = hashlib.sha256(f"{a.dtype}:{a.shape}".encode())
    digest.update(a.tobytes())
    return "sha256:" + digest.hexdigest()


class Checkpoint:
    """The finished stages of one analysis in ``store`` (None: no checkpoint, every stage is computed).

    Parameters
    ----------
    store : Store or None
        Of kind "interactions", with the analysis' :func:`checkpoint_settings`.
    """

    def __init__(self, store: Store | None):
        self.store = store

    @classmethod
    def at(cls, folder: str | Path, settings: dict[str, Any]) -> "Checkpoint":
        """The checkpoint in ``folder``; one another analysis wrote is refused
        (:class:`~deepresolve.errors.CheckpointError` naming each setting that differs)."""
        return cls(Store(folder, settings, kind="interactions"))

    def read(self, name: str, check: Callable[[dict[str, np.ndarray]], object] | None = None
             ) -> dict[str, np.ndarray] | None:
        """The arrays of the stage ``name`` if it is finished (and ``check`` accepts them), else None."""
        return None if self.store is None else self.store.read(name, check)

    def write(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """The arrays of the finished stage ``name``, written atomically (nothing without a store)."""
        if self.store is not None:
            self.store.write(name, arrays)

    def stage(self, name: str, compute: Callable[[], dict[str, np.ndarray]],
              check: Callable[[dict[str, np.ndarray]], object] | None = None) -> dict[str, np.ndarray]:
        """The stage ``name``: read if finished, else computed and written."""
        arrays = self.read(name, check)
        if arrays is None:
            arrays = compute()
            self.write(name, arrays)
        return arrays

    def players(self, find: Callable[[], Players]) -> Players:
        """The players, read or found (``find()``, the word scan included) and written."""
        return players_from(self.stage("players", lambda: players_arrays(find()), check=players_from))


def players_arrays(players: Players) -> dict[str, np.ndarray]:
    """:class:`~.players.Players` as named arrays (:func:`players_from` reads them back, equal to the last bit):
    every field as an array; a list of arrays (``player_groups``) concatenated, with its ``<name>__offsets``."""
    out = {}
    for f in fields(Players):
        value = getattr(players, f.name)
        if isinstance(value, list):
            out[f.name] = np.concatenate(value)
            out[f.name + "__offsets"] = np.cumsum([0] + [len(a) for a in value])
        else:
            out[f.name] = np.asarray(value)
    return out


def players_from(arrays: dict[str, np.ndarray]) -> Players:
    """:class:`~.players.Players` from :func:`players_arrays` (a KeyError when a field is missing)."""
    kw: dict[str, Any] = {}
    for f in fields(Players):
        value = arrays[f.name]
        if f.name + "__offsets" in arrays:
            o = arrays[f.name + "__offsets"]
            kw[f.name] = [value[o[i]:o[i + 1]] for i in range(len(o) - 1)]
        else:
            kw[f.name] = str(value) if value.dtype.kind == "U" else value
    return Players(**kw)
