"""A run's finished rows on disk, so that an interrupted run resumes where it stopped and never mixes runs.

A store is a folder::

    settings.json            what the run computes (model fingerprint, layer, classes, seed, every ascent setting)
    chunk-000000.npz ...     finished rows, one file per flush

Every file is written under a temporary name, flushed to disk and renamed into place: a rename is atomic, so a
``kill -9`` at any instant leaves either the whole file or none of it, never half a file. Leftover temporary files are
removed when the store is opened; a chunk that still cannot be read (a damaged disk, a file edited by hand) is set
aside with a warning and its rows are computed again.

``settings.json`` ties the store to its run: a run with another model or other settings is refused with a message
naming each setting that differs. Settings that do not change results (batch size, device, number of workers) are not
part of it, so a run may resume with another batch size or on another device.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .errors import ArgumentError, CheckpointError
from .summarize import fiv

SETTINGS = "settings.json"
_FORMAT = "deepresolve-run-store-1"


def model_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's structure (its printed form), parameters and buffers: equal iff the same function.

    Parameters
    ----------
    module : nn.Module
        E.g. the head of a split model (the network after the analysed layer).

    Returns
    -------
    str, 64 hexadecimal digits.
    """
    digest = hashlib.sha256(repr(module).encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        # Raw bytes (viewed as uint8 so that bfloat16 and other dtypes numpy lacks hash too).
        digest.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")  # a view: no copy of big weights
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Settings as plain JSON (tuples become lists, numpy scalars numbers) so a reread compares equal."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _write_atomic(path: Path, write) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync it, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass


class RunStore:
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
                 every: float = 5.0) -> None:
        self.path = Path(path)
        self.settings = _jsonable({"format": _FORMAT, **settings})
        self.n_rows, self.feature_shape, self.every = int(n_rows), tuple(int(k) for k in feature_shape), float(every)
        self._buffer: list[tuple] = []
        self._last = time.monotonic()
        self._next_chunk = 0
        if self.path.exists() and not self.path.is_dir():
            raise ArgumentError(f"checkpoint must be a folder; {str(self.path)!r} is a file")
        if self.path.is_dir():
            self._check_existing()

    # -- opening -------------------------------------------------------------------------------------------------

    def _check_existing(self) -> None:
        for tmp in self.path.glob(".tmp-*"):  # a write that a kill interrupted: never renamed, never counted
            tmp.unlink(missing_ok=True)
        settings_file = self.path / SETTINGS
        if not settings_file.exists():
            if any(self.path.iterdir()):
                raise CheckpointError(
                    f"checkpoint folder {str(self.path)!r} is not empty and holds no {SETTINGS}: it is not a "
                    "deepresolve run store; choose an empty or new folder")
            return
        try:
            stored = json.loads(settings_file.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"checkpoint {str(settings_file)!r} cannot be read ({e}); delete the folder to start "
                                  "again") from None
        differ = [k for k in sorted(set(stored) | set(self.settings)) if stored.get(k) != self.settings.get(k)]
        if differ:
            shown = "; ".join(f"{k}: stored {_short(stored.get(k))}, now {_short(self.settings.get(k))}" for k in differ)
            raise CheckpointError(f"checkpoint {str(self.path)!r} was written by another run ({shown}); delete it or "
                                  "choose another checkpoint folder")
        self._next_chunk = 1 + max((_chunk_number(p) for p in self._chunk_files()), default=-1)

    def _chunk_files(self) -> list[Path]:
        return sorted(self.path.glob("chunk-*.npz")) if self.path.is_dir() else []

    # -- reading -------------------------------------------------------------------------------------------------

    def _read_chunk(self, path: Path, maps: bool = True) -> Iterator[tuple[int, tuple]]:
        with np.load(path, allow_pickle=False) as z:
            rows, fims = z["rows"], z["fims"]
            scores, objective, steps = z["scores"], z["objective"], z["steps"]
            offsets, trace = z["trace_offsets"], z["trace"]
        n = len(rows)
        if (fims.shape != (n, *self.feature_shape) or not (len(scores) == len(objective) == len(steps) == n)
                or len(offsets) != n + 1 or offsets[-1] != len(trace)
                or (n and (rows.min() < 0 or rows.max() >= self.n_rows))):
            raise ValueError("its arrays do not fit this run")
        if not maps:  # one chunk's maps at a time in memory, reduced to FIVs (K,) float64
            fims = fiv(fims.reshape(n, self.feature_shape[0], -1))
        for j in range(n):
            yield int(rows[j]), (torch.from_numpy(fims[j].copy()), float(scores[j]), float(objective[j]), int(steps[j]),
                                 trace[offsets[j]:offsets[j + 1]].astype(np.float32))

    def finished(self, *, maps: bool = True) -> dict[int, tuple[torch.Tensor, float, float, int, np.ndarray]]:
        """Rows already on disk: row -> (fim, score, objective, steps, trace), the ``skip`` of the ascent.

        With ``maps=False`` each row's map is replaced by its FIV, shape (K,) float64 (chunk by chunk, so a resume
        never holds every map; for ``feature_ascent(..., keep_maps=False)``).
        """
        done: dict[int, tuple] = {}
        for path in self._chunk_files():
            try:
                rows = dict(self._read_chunk(path, maps))
            except Exception as e:  # noqa: BLE001 -- any damage means: recompute these rows, never crash
                warnings.warn(f"checkpoint chunk {str(path)!r} cannot be read ({type(e).__name__}: {e}); its rows "
                              "will be computed again", RuntimeWarning, stacklevel=2)
                path.replace(path.with_name(path.name + ".unreadable"))
                continue
            for r, row in rows.items():
                done.setdefault(r, row)
        return done

    # -- writing -------------------------------------------------------------------------------------------------

    def add(self, rows: Sequence[int], fims: torch.Tensor, scores: np.ndarray, objective: np.ndarray,
            steps: np.ndarray, traces: Sequence[np.ndarray]) -> None:
        """Take finished rows (the ascent's ``on_done`` callback); they reach disk at the next flush."""
        self._buffer.extend(zip(rows, fims.numpy(), scores, objective, steps, traces))
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one new chunk (atomically)."""
        if not self._buffer:
            return
        if not self.path.exists():
            self.path.mkdir(parents=True)
        settings_file = self.path / SETTINGS
        if not settings_file.exists():
            text = json.dumps(self.settings, indent=1, sort_keys=True).encode()
            _write_atomic(settings_file, lambda f: f.write(text))
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
        _write_atomic(self.path / f"chunk-{self._next_chunk:06d}.npz", lambda f: np.savez(f, **arrays))
        self._next_chunk += 1
        self._buffer.clear()
        self._last = time.monotonic()


def _chunk_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
