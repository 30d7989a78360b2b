"""Finished work on disk, so that an interrupted run resumes where it stopped and never mixes runs.

A store (:class:`Store`) is a folder of named ``.npz`` files and the ``settings.json`` of the computation that
wrote them. The ascent's :class:`RunStore`::

    settings.json            what the run computes (model fingerprint, layer, classes, seed, every ascent setting)
    chunk-000000.npz ...     finished rows, one file per flush

and the interaction analysis' checkpoint (:mod:`deepresolve.interaction_analysis.checkpoint`): its players, main
effects and chunks of pairs.

Every file is written under a temporary name, flushed to disk and renamed into place: a rename is atomic, so a
``kill -9`` at any instant leaves either the whole file or none of it, never half a file. Leftover temporary files are
removed when the store is opened; a file that still cannot be read (a damaged disk, a file edited by hand) is set
aside with a warning and what it held is computed again.

``settings.json`` ties the store to its run: a run with another model or other settings (or a store of another kind)
is refused with a message naming each setting that differs. Settings that do not change results (batch size, device,
number of workers) are not part of it, so a run may resume with another batch size or on another device.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from ._files import LOCK_NAME, TMP_PREFIX, write_atomic, write_text_atomic
from .errors import ArgumentError, CheckpointError

SETTINGS = "settings.json"


class FinishedRow(NamedTuple):
    """One finished (class, restart) row of the ascent: its best point and how it got there.

    ``map`` is the feature importance map (FIM), shape ``feature_shape`` float32, or its FIV (K,) when the rows
    were read with a ``reduce`` (:meth:`RunStore.finished`).
    """

    map: np.ndarray
    score: float
    objective: float
    steps: int
    trace: np.ndarray


class FinishedRows(NamedTuple):
    """A batch of finished rows, as the ascent hands them on (its ``on_done``) and the run store takes them.

    Shapes: R rows. ``rows`` (R,) row numbers (row r is restart ``r % T`` of class ``r // T`` of the run);
    ``maps`` (R, *feature_shape) float32; ``scores``, ``objective`` (R,) float64; ``steps`` (R,) int64;
    ``traces``: R arrays of the objective at every step.
    """

    rows: list[int]
    maps: np.ndarray
    scores: np.ndarray
    objective: np.ndarray
    steps: np.ndarray
    traces: list[np.ndarray]

    def items(self) -> Iterator[tuple[int, FinishedRow]]:
        """(row, :class:`FinishedRow`) for every row of the batch."""
        for j, r in enumerate(self.rows):
            yield int(r), FinishedRow(self.maps[j], float(self.scores[j]), float(self.objective[j]),
                                      int(self.steps[j]), self.traces[j])


def _jsonable(value: Any) -> Any:
    """Settings as plain JSON (tuples become lists, numpy scalars numbers) so a reread compares equal."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


class Store:
    """Named parts of one computation, each an ``.npz`` file written atomically as it finishes.

    Parameters
    ----------
    path : str or Path
        The store's folder. Nothing is created until the first part is written, so a run that fails before any
        part finishes leaves no file behind.
    settings : dict
        Everything that determines the computation's results (JSON-serialisable). An existing store with other
        settings is refused, naming each setting that differs.
    kind : str
        What computes the parts ("run": the ascent's rows); ``settings.json`` records it as its ``format``, so a
        store of another kind is refused too.
    """

    def __init__(self, path: str | Path, settings: dict, *, kind: str, _writing: bool = True) -> None:
        self.path, self.kind = Path(path), kind
        self.settings = _jsonable({"format": _format(kind), **settings})
        if self.path.exists() and not self.path.is_dir():
            raise ArgumentError(f"checkpoint must be a folder; {str(self.path)!r} is a file")
        if self.path.is_dir() and _writing:  # a store opened to read (RunStore.open) leaves the folder as it is
            self._check_existing()

    def _check_existing(self) -> None:
        for tmp in self.path.glob(f"{TMP_PREFIX}*"):  # a write that a kill interrupted: never renamed, never counted
            tmp.unlink(missing_ok=True)
        stored = _read_settings(self.path)
        if stored is None:
            if any(p.name != LOCK_NAME for p in self.path.iterdir()):
                raise CheckpointError(
                    f"checkpoint folder {str(self.path)!r} is not empty and holds no {SETTINGS}: it is not a "
                    f"deepresolve {self.kind} store; choose an empty or new folder")
            return
        differ = [k for k in sorted(set(stored) | set(self.settings)) if stored.get(k) != self.settings.get(k)]
        if differ:
            shown = "; ".join(f"{k}: stored {_short(stored.get(k))}, now {_short(self.settings.get(k))}"
                              for k in differ)
            raise CheckpointError(f"checkpoint {str(self.path)!r} was written by another run ({shown}); delete it or "
                                  "choose another checkpoint folder")

    def write(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Write the part ``name`` (``name.npz``, replacing one of that name) atomically, and ``settings.json``
        with the first part."""
        if not self.path.exists():
            self.path.mkdir(parents=True)
        settings_file = self.path / SETTINGS
        if not settings_file.exists():
            write_text_atomic(settings_file, json.dumps(self.settings, indent=1, sort_keys=True))
        write_atomic(self.path / f"{name}.npz", lambda f: np.savez(f, **arrays))

    def read(self, name: str, check: Callable[[dict[str, np.ndarray]], None] | None = None
             ) -> dict[str, np.ndarray] | None:
        """The arrays of the part ``name``, or None when it is not written yet or cannot be used: unreadable, or
        refused by ``check`` (which raises ValueError saying why); such a file is set aside with a warning
        (:meth:`_usable`), so its part is computed again."""
        path = self.path / f"{name}.npz"
        if not path.exists():
            return None

        def load(p: Path) -> dict[str, np.ndarray]:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if check is not None:
                check(arrays)
            return arrays
        return self._usable(path, load)

    def _usable(self, path: Path, load: Callable[[Path], Any]) -> Any:
        """``load(path)``, or None with a warning when it fails: the file is renamed ``*.unreadable``."""
        try:
            return load(path)
        except Exception as e:  # noqa: BLE001 -- any damage means: compute this part again, never crash
            warnings.warn(f"checkpoint file {str(path)!r} cannot be read ({type(e).__name__}: {e}); what it holds "
                          "will be computed again", RuntimeWarning, stacklevel=3)
            path.replace(path.with_name(path.name + ".unreadable"))
            return None


class RunStore(Store):
    """Finished (class, restart) rows of one run, written as they come.

    Parameters
    ----------
    path : str or Path
        The store's folder. Nothing is created until the first rows are written, so a run that fails before any
        row finishes leaves no file behind.
    settings : dict
        Everything that determines the run's results (JSON-serialisable). An existing store with other settings is
        refused, naming each setting that differs.
    n_rows : int
        Number of rows R of the run; rows are numbered 0..R-1.
    feature_shape : tuple of int
        Shape of one feature map (K, W) or (K,).
    every : float
        Seconds between flushes of finished rows to disk (rows also flush when the run ends).
    """

    def __init__(self, path: str | Path, settings: dict, *, n_rows: int, feature_shape: Sequence[int],
                 every: float = 5.0, _writing: bool = True) -> None:
        self.n_rows, self.feature_shape, self.every = int(n_rows), tuple(int(k) for k in feature_shape), float(every)
        self._buffer: list[tuple] = []
        self._last = time.monotonic()
        self._next_chunk = 0
        super().__init__(path, settings, kind="run", _writing=_writing)

    # -- opening -------------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> "RunStore":
        """An existing store, to read its maps (:meth:`maps`); its settings, rows and map shape from ``settings.json``.

        Opening reads only ``settings.json`` and changes nothing in the folder, so a store can be read while its
        run is still writing it.

        Raises
        ------
        CheckpointError
            ``path`` is not a folder, or holds no ``settings.json`` of a deepresolve run store (a run writes it with
            its first finished rows).
        """
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"checkpoint: expected the folder of a run store (resolve(..., checkpoint=...)), got "
                                  f"{str(path)!r}, which {'is a file' if path.exists() else 'does not exist'}")
        stored = _read_settings(path)
        if stored is None or stored.get("format") != _format("run"):
            raise CheckpointError(f"checkpoint: expected a deepresolve run store, got the folder {str(path)!r}, which "
                                  f"holds {'no ' + SETTINGS if stored is None else 'another ' + SETTINGS} (a run "
                                  "writes it with its first finished rows)")
        settings = {k: v for k, v in stored.items() if k != "format"}
        return cls(path, settings, n_rows=len(stored["classes"]) * int(stored["restarts"]),
                   feature_shape=stored["feature_shape"], _writing=False)

    def _check_existing(self) -> None:
        super()._check_existing()
        self._next_chunk = 1 + max((_chunk_number(p) for p in self._chunk_files()), default=-1)

    def _chunk_files(self) -> list[Path]:
        return sorted(self.path.glob("chunk-*.npz")) if self.path.is_dir() else []

    # -- reading -------------------------------------------------------------------------------------------------

    def _read_chunk(self, path: Path, reduce: Callable[[np.ndarray], np.ndarray] | None) -> FinishedRows:
        with np.load(path, allow_pickle=False) as z:
            rows, fims = z["rows"], z["fims"]
            scores, objective, steps = z["scores"], z["objective"], z["steps"]
            offsets, trace = z["trace_offsets"], z["trace"]
        n = len(rows)
        if (fims.shape != (n, *self.feature_shape) or not (len(scores) == len(objective) == len(steps) == n)
                or len(offsets) != n + 1 or offsets[-1] != len(trace)
                or (n and (rows.min() < 0 or rows.max() >= self.n_rows))):
            raise ValueError("its arrays do not fit this run")
        if reduce is not None:  # one chunk's maps at a time in memory
            fims = reduce(fims)
        return FinishedRows(rows.tolist(), fims, scores, objective, steps,
                            [trace[offsets[j]:offsets[j + 1]].astype(np.float32) for j in range(n)])

    def finished(self, *, reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[int, FinishedRow]:
        """Rows already on disk, row -> :class:`FinishedRow`: the ``skip`` of the ascent.

        ``reduce`` maps each chunk's maps (n, *feature_shape) to what the caller keeps of them, e.g. their FIVs
        (:func:`deepresolve.ascent.row_fivs`), chunk by chunk, so a resume never holds every map.
        """
        done: dict[int, FinishedRow] = {}
        for path in self._chunk_files():
            rows = self._usable(path, lambda p: dict(self._read_chunk(p, reduce).items()))
            for r, row in (rows or {}).items():
                done.setdefault(r, row)
        return done

    def maps(self, rows: Sequence[int]) -> np.ndarray:
        """The feature importance maps of ``rows`` as the run wrote them, shape (len(rows), *feature_shape) float32.

        Row r is restart ``r % T`` of the ``r // T``-th class of the run (``settings["classes"]``, T =
        ``settings["restarts"]``). Only the chunks that hold a wanted row have their maps read, one chunk at a
        time, so reading one class of a 919-class run never holds the run's maps in memory.

        Raises
        ------
        ArgumentError
            A row outside 0..R-1, or a row given twice.
        CheckpointError
            A chunk cannot be read, or a wanted row is in no chunk (the run has not finished it).
        """
        want: dict[int, int] = {}
        for j, r in enumerate(rows):
            if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer)) or not 0 <= r < self.n_rows:
                raise ArgumentError(f"rows: expected row indices in [0, {self.n_rows - 1}], got {r!r}")
            if int(r) in want:
                raise ArgumentError(f"rows: expected distinct row indices, got {int(r)} twice")
            want[int(r)] = j
        out = np.empty((len(rows), *self.feature_shape), np.float32)
        found = np.zeros(len(rows), bool)
        for path in self._chunk_files():
            if found.all():
                break
            try:
                with np.load(path, allow_pickle=False) as z:
                    chunk_rows = z["rows"].tolist()
                    # the first chunk holding a row wins, as in finished()
                    hits = [(i, want[r]) for i, r in enumerate(chunk_rows) if r in want and not found[want[r]]]
                    if not hits:
                        continue
                    fims = z["fims"]
                    if fims.shape != (len(chunk_rows), *self.feature_shape):
                        raise ValueError(f"maps of shape {fims.shape} for {len(chunk_rows)} rows of maps "
                                         f"{self.feature_shape}")
            except Exception as e:  # noqa: BLE001 -- reading only: name the file, change nothing
                raise CheckpointError(f"checkpoint chunk {str(path)!r} cannot be read "
                                      f"({type(e).__name__}: {e})") from None
            src, dst = zip(*hits)
            out[list(dst)] = fims[list(src)]
            found[list(dst)] = True
        if not found.all():
            missing = [int(rows[j]) for j in np.flatnonzero(~found)]
            raise CheckpointError(f"checkpoint {str(self.path)!r}: expected the maps of rows {_short(missing)}, got a "
                                  f"store without them ({len(missing)} of {len(rows)} missing: the run has not "
                                  "finished them; resume it with the same settings)")
        return out

    # -- writing -------------------------------------------------------------------------------------------------

    def add(self, finished: FinishedRows) -> None:
        """Take finished rows (the ascent's ``on_done`` callback); they reach disk at the next flush."""
        self._buffer.extend(zip(finished.rows, np.asarray(finished.maps), finished.scores, finished.objective,
                                finished.steps, finished.traces))
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one new chunk (atomically)."""
        if not self._buffer:
            return
        buf = sorted(self._buffer, key=lambda b: b[0])
        traces = [np.asarray(b[5], np.float32) for b in buf]
        arrays = dict(
            rows=np.array([b[0] for b in buf], np.int64),
            fims=np.stack([b[1] for b in buf]).astype(np.float32),
            scores=np.array([b[2] for b in buf], np.float64),
            objective=np.array([b[3] for b in buf], np.float64),
            steps=np.array([b[4] for b in buf], np.int64),
            trace_offsets=np.concatenate([[0], np.cumsum([len(t) for t in traces])]).astype(np.int64),
            trace=np.concatenate(traces) if traces else np.empty(0, np.float32),
        )
        self.write(f"chunk-{self._next_chunk:06d}", arrays)
        self._next_chunk += 1
        self._buffer.clear()
        self._last = time.monotonic()


def _read_settings(path: Path) -> dict | None:
    """The ``settings.json`` of the store folder ``path``, or None when there is none."""
    settings_file = path / SETTINGS
    if not settings_file.exists():
        return None
    try:
        return json.loads(settings_file.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {str(settings_file)!r} cannot be read ({e}); delete the folder to start "
                              "again") from None


def _format(kind: str) -> str:
    """The ``format`` recorded in a store's ``settings.json``."""
    return f"deepresolve-{kind}-store-1"


def _chunk_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
