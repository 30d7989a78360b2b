"""The rows of an ascent: one (class, restart) pair each, from its seeded start to its stored result.

- :func:`row_seed` and :func:`initial_maps`: each row's start depends only on (seed, class, restart);
- :class:`Rows`: the state of the rows in a batch, one tensor per quantity, rows leaving and joining together;
- :class:`RowTable` and :class:`AscentOutput`: the finished rows of a run, and what :func:`feature_ascent` returns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch

from ..importance import fiv
from ..store import FinishedRow, FinishedRows


@dataclass
class AscentOutput:
    """Raw output of :func:`~deepresolve.ascent.feature_ascent` for R = C x T rows: row r = (class r // T,
    restart r % T).

    Attributes
    ----------
    fims : (C, T, *feature_shape) float32 tensor on the CPU, or None (``keep_fims=False``)
    fivs : (C, T, K) float64 array -- feature importance vectors, each row's map reduced as it finished
    scores : (C, T) float64 array -- final class score S_c of each row
    objective : (C, T) float64 array -- final objective S_c - lambda ||H - center||^2
    steps : (C, T) int array -- steps each row took
    trace : list of R float32 arrays -- objective at every step of each row
    seconds : float -- wall time
    row_steps : int -- total (row x step) evaluations, for throughput figures
    """

    fims: torch.Tensor | None
    fivs: np.ndarray
    scores: np.ndarray
    objective: np.ndarray
    steps: np.ndarray
    trace: list[np.ndarray]
    seconds: float
    row_steps: int


def row_seed(seed: int, cls: int, restart: int) -> int:
    """Seed of one (class, restart) row: independent of batching, class subset and device."""
    digest = hashlib.blake2b(f"{seed}/{cls}/{restart}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def initial_maps(rows: Sequence[tuple[int, int]], feature_shape: Sequence[int], seed: int,
                 scale: float) -> torch.Tensor:
    """Random normal starting maps, one per (class, restart) row: (len(rows), *feature_shape), float32, CPU."""
    gen = torch.Generator()
    out = torch.empty((len(rows), *feature_shape))
    for i, (c, t) in enumerate(rows):
        gen.manual_seed(row_seed(seed, c, t))
        out[i] = torch.randn(tuple(feature_shape), generator=gen) * scale
    return out


def row_fivs(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """FIVs (float64) of a stack of maps (n, K, ...) -> (n, K); a map of shape (K,) (W = 1) is its own FIV."""
    maps = maps.numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    return fiv(maps.reshape(len(maps), maps.shape[1], -1))


class RowTable:
    """The R = C x T rows of an ascent, filled as rows finish (or are read back from a run store).

    Both the local ascent and the Dask driver collect their rows here and return :meth:`output`. With
    ``keep_fims=False`` only each row's FIV is kept, not its map.
    """

    def __init__(self, n_rows: int, feature_shape: Sequence[int], keep_fims: bool) -> None:
        self.feature_shape = tuple(int(k) for k in feature_shape)
        self.fims = torch.empty((n_rows, *self.feature_shape)) if keep_fims else None
        self.fivs = np.full((n_rows, self.feature_shape[0]), np.nan)
        self.scores, self.objective = np.full(n_rows, np.nan), np.full(n_rows, np.nan)
        self.steps = np.zeros(n_rows, dtype=np.int64)
        self.traces: list[np.ndarray] = [np.empty(0, np.float32)] * n_rows

    def put_row(self, r: int, row: FinishedRow) -> None:
        """One row; its ``map`` may be the FIV (K,) alone when maps are not kept."""
        self.fivs[r] = row_fivs(np.asarray(row.map)[None])[0]
        self.scores[r], self.objective[r], self.steps[r], self.traces[r] = (row.score, row.objective, row.steps,
                                                                            row.trace)
        if self.fims is not None:
            self.fims[r] = torch.as_tensor(row.map)

    def put(self, finished: FinishedRows) -> None:
        """A batch of finished rows."""
        self.fivs[finished.rows] = row_fivs(finished.maps)
        for r, row in finished.items():
            self.scores[r], self.objective[r], self.steps[r], self.traces[r] = (row.score, row.objective, row.steps,
                                                                                row.trace)
            if self.fims is not None:
                self.fims[r] = torch.as_tensor(row.map)

    def output(self, n_classes: int, restarts: int, seconds: float, row_steps: int) -> AscentOutput:
        """The rows as an :class:`AscentOutput` of C classes x T restarts."""
        C, T = n_classes, restarts
        return AscentOutput(fims=None if self.fims is None else self.fims.view(C, T, *self.feature_shape),
                            fivs=self.fivs.reshape(C, T, -1), scores=self.scores.reshape(C, T),
                            objective=self.objective.reshape(C, T), steps=self.steps.reshape(C, T),
                            trace=self.traces, seconds=seconds, row_steps=row_steps)


@dataclass
class Rows:
    """State of the rows in the batch; every tensor has one entry per row on its first axis.

    Rows leave with :meth:`take` (keep a mask) and join in the places of finished rows with :meth:`put`, so that no
    per-row quantity can fall out of step with the others. Each step rule (:mod:`deepresolve.ascent.optimizers`)
    reads and updates the quantities it needs.
    """

    index: torch.Tensor     # (B,) long, CPU: row r = (class r // T, restart r % T)
    cls: torch.Tensor       # (B,) long: the output each row scores
    h: torch.Tensor         # (B, *F) the point evaluated next
    best_h: torch.Tensor    # (B, *F) the best point so far
    best_g: torch.Tensor    # (B, *F) "matched": the objective's gradient at best_h
    best_s: torch.Tensor    # (B,) class score at best_h
    best_obj: torch.Tensor  # (B,) objective at best_h
    eta: torch.Tensor       # (B,) "matched": fraction of the matched step 1 / (2 lambda)
    far: torch.Tensor       # (B,) "bundle": cuts pass at least far x lambda x d^2 above the best point
    count: torch.Tensor     # (B,) long: steps taken
    stall: torch.Tensor     # (B,) long: consecutive non-improving ("paper") or small-gain ("matched", "bundle") steps
    cut_a: torch.Tensor     # (B, k, F) "bundle": gradients of S at the points of the k cuts (k = 0 otherwise)
    cut_x: torch.Tensor     # (B, k, F) "bundle": those points, H - center, flattened
    cut_c: torch.Tensor     # (B, k) float64 "bundle": intercepts, cut i is S ~ cut_c[i] + cut_a[i] . (H - center)
    cut_xx: torch.Tensor    # (B, k) float64 "bundle": squared norms of cut_x
    cut_w: torch.Tensor     # (B, k) float64 "bundle": weight of each cut in the last model optimum; NaN = empty slot
    trace: list[list[float]]  # objective at every step of each row

    @classmethod
    def start(cls, index: list[int], classes: list[int], h0: torch.Tensor, lr: float, cuts: int = 0,
              far: float = 0.0) -> "Rows":
        """Fresh rows at their starting maps ``h0``: nothing evaluated yet; room for ``cuts`` cuts per row, each
        row's ``far`` at the given start."""
        k, dev = len(index), h0.device
        n_features = h0[0].numel()
        return cls(
            index=torch.tensor(index, dtype=torch.long), cls=torch.tensor(classes, dtype=torch.long, device=dev),
            h=h0, best_h=h0, best_g=torch.zeros_like(h0), best_s=torch.full((k,), np.nan, device=dev),
            best_obj=torch.full((k,), -np.inf, device=dev), eta=torch.full((k,), float(lr), device=dev),
            far=torch.full((k,), far, dtype=torch.float64, device=dev),
            count=torch.zeros(k, dtype=torch.long, device=dev), stall=torch.zeros(k, dtype=torch.long, device=dev),
            cut_a=torch.zeros((k, cuts, n_features), device=dev), cut_x=torch.zeros((k, cuts, n_features), device=dev),
            cut_c=torch.zeros((k, cuts), dtype=torch.float64, device=dev),
            cut_xx=torch.zeros((k, cuts), dtype=torch.float64, device=dev),
            cut_w=torch.full((k, cuts), np.nan, dtype=torch.float64, device=dev),
            trace=[[] for _ in range(k)],
        )

    def __len__(self) -> int:
        return len(self.index)

    def take(self, keep: torch.Tensor) -> "Rows":
        """The rows where the boolean ``keep`` is True."""
        flags = keep.tolist()
        return Rows(**{f.name: [t for t, k in zip(value, flags) if k] if isinstance(value, list)
                       else value[keep.to(value.device)]
                       for f in fields(self) for value in [getattr(self, f.name)]})

    def put(self, slots: torch.Tensor, other: "Rows") -> None:
        """Write ``other``'s rows into the positions ``slots`` (finished rows), in place: a batch that stays full
        copies only the new rows, not the whole state (2 x ``cuts`` + 3 maps per row for "bundle")."""
        where = slots.tolist()
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, list):
                for j, k in enumerate(where):
                    mine[k] = theirs[j]
            else:
                mine[slots.to(mine.device)] = theirs

    def finished(self) -> FinishedRows:
        """These rows' results at their best points, on the CPU."""
        return FinishedRows(self.index.tolist(), self.best_h.cpu().numpy(), self.best_s.double().cpu().numpy(),
                            self.best_obj.double().cpu().numpy(), self.count.cpu().numpy(),
                            [np.asarray(t, np.float32) for t in self.trace])
