"""More than one machine: the gradient ascent of :func:`deepresolve.resolve` and the pair stage of
:func:`deepresolve.interactions` on a Dask cluster.

Both cut their work into fixed *chunks*, one Dask task each (:func:`client_map`): what every task needs (the
network, as bytes from :func:`pack`) is sent to the cluster once and unpickled once per worker process; the driver
collects the chunks as they complete (``distributed.as_completed``) and writes each to its checkpoint at once, so a
killed run resumes at chunk level, and everything else is computed on the driver exactly as in a local run.

* The ascent (``resolve(..., client=Client(...))``, :func:`client_ascent`): the (class, restart) rows that the run
  store does not hold yet are cut into chunks of whole classes (:func:`plan_chunks`); each task runs
  :func:`~deepresolve.ascent.feature_ascent` on a worker for its classes and returns its rows' arrays. Every row
  starts from a map that depends only on (seed, class, restart), so a cluster run equals a local run within the
  batching tolerance of :mod:`deepresolve.ascent` (objectives 1e-3 relative, FIVs 5e-2 of the class's largest): a
  chunk is just another batch composition. The ascent's settings are checked on the driver before any task is sent.
* The interaction analysis (``interactions(..., client=Client(...))``, also from ``resolve(..., interactions=True,
  client=...)``): the chunks of pairs (:func:`~deepresolve.interaction_analysis.effects.pair_chunks`) that its
  checkpoint does not hold yet; each task returns its chunk's truth tables and standard errors. The chunks are those
  of a local run and each is evaluated as locally, so the result equals a local run's to the last bit on the same
  kind of processor with the same number of torch threads (another number moved the set I fixture's truth tables
  by up to 6e-10). The players (word scan), the groups' strength and the main effects stay on the driver.

Threads: a worker that runs K tasks at once (``--nthreads K`` with K > 1) gives each its own core (one torch
thread per task, so K chunks never oversubscribe K cores); a worker with one thread leaves torch its default
(every core of its machine).
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ._checks import OptionalOf, Via, renamed_arguments
from .ascent import AscentOutput, RowTable, check_ascent_options, feature_ascent
from .ascent.options import check_known
from .errors import ArgumentError, ModelError
from .store import FinishedRow, FinishedRows

#: Keywords of ``feature_ascent`` that ``client_ascent`` forwards besides the ascent's settings.
_WORKER_KEYWORDS = ("center", "device")
#: Chunks per worker thread that the rows are cut into: enough for the fast workers to take the slow ones' share.
CHUNKS_PER_THREAD = 4
#: How long to wait for a scheduler to answer.
CONNECT_TIMEOUT = "20s"
#: At most this many rows per chunk, so that a chunk's maps stay small on the worker and reach the store early.
MAX_CHUNK_ROWS = 2048


def check_client(client: object) -> Any:
    """``client`` as a running ``distributed.Client`` (checked before any work).

    Raises
    ------
    deepresolve.errors.ArgumentError
        Not a Client, or a closed one.
    """
    from distributed import Client

    if not isinstance(client, Client):
        raise ArgumentError(f"client: expected a dask distributed.Client (or None for a local run), "
                            f"got {type(client).__name__} {client!r}")
    if client.status != "running":
        raise ArgumentError(f"client: expected a connected distributed.Client, got one whose status is "
                            f"{client.status!r}")
    return client


#: The ``client`` parameter of :func:`deepresolve.resolve` and :func:`deepresolve.interactions`: None (a local run)
#: or a running ``distributed.Client`` (:func:`check_client`; dask is imported only when a client is given).
CLIENT = OptionalOf(Via(lambda client, argument: check_client(client), "a running dask distributed.Client",
                        wrong="scheduler:8786"))


def connect(*, workers: int | None = None, scheduler: str | None = None) -> Any:
    """A Dask client: a new ``LocalCluster`` of ``workers`` processes, or a running cluster's ``scheduler``.

    Parameters
    ----------
    workers : int, optional
        Start ``LocalCluster(n_workers=workers, threads_per_worker=max(1, cores // workers), processes=True)`` on the
        local machine. Every worker runs one torch thread per task, so the N x threads_per_worker tasks share the cores
        without oversubscribing them.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://host:8786`` (``dask scheduler`` prints it).

    Returns
    -------
    distributed.Client
        Closing it (``client.close()``, or a ``with`` block) also stops a cluster it started.

    Raises
    ------
    deepresolve.errors.ArgumentError
        Both or neither given, a bad ``workers``, or no scheduler answering at ``scheduler``.
    """
    from distributed import Client

    from ._checks import check_int

    if (workers is None) == (scheduler is None):
        raise ArgumentError("workers, scheduler: expected exactly one (workers starts a local cluster, "
                            f"scheduler connects to a running one), got workers={workers!r}, scheduler={scheduler!r}")
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ArgumentError(f"scheduler: expected an address such as 'tcp://host:8786', got {scheduler!r}")
        try:
            return Client(scheduler.strip(), timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as err:
            raise ArgumentError(f"scheduler: expected a running Dask scheduler at {scheduler!r}, could not connect "
                                f"({type(err).__name__}: {' '.join(str(err).split())})") from None
    workers = check_int(workers, "workers", minimum=1)
    threads = max(1, _cores() // workers)
    # The client owns the cluster it starts here: closing the client stops it.
    client = Client(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None)
    client.run(torch.set_num_threads, 1)  # one core per task slot, see the module docstring
    return client


def _cores() -> int:
    """CPU cores this process may use."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_chunks(classes: Sequence[int], restarts: int, done: Sequence[int] | set[int], n_threads: int) -> list[range]:
    """Cut the classes with rows still to compute into chunks of consecutive classes.

    Parameters
    ----------
    classes : C output indices (row r = (classes[r // T], restart r % T))
    restarts : T
    done : rows already finished (e.g. in the run store)
    n_threads : worker threads of the cluster

    Returns
    -------
    list of range
        Positions in ``classes`` (not output indices), each range one task; classes whose every row is done are in
        none.
    """
    T, done = int(restarts), set(done)
    todo = [i for i in range(len(classes)) if any(i * T + t not in done for t in range(T))]
    if not todo:
        return []
    per_chunk = math.ceil(len(todo) / (CHUNKS_PER_THREAD * max(1, n_threads)))
    per_chunk = max(1, min(per_chunk, MAX_CHUNK_ROWS // T))
    chunks: list[range] = []
    start = prev = todo[0]
    for i in todo[1:] + [None]:  # runs of consecutive positions, cut every per_chunk classes
        if i is None or i != prev + 1 or i - start >= per_chunk:
            chunks.append(range(start, prev + 1))
            start = i
        prev = i
    return chunks


def _load_script(data: bytes) -> torch.jit.ScriptModule:
    return torch.jit.load(io.BytesIO(data), map_location="cpu")


def pack(obj: object, argument: str) -> tuple[str, bytes]:
    """What the tasks need, as bytes for the workers: (SHA-256 of the bytes, the bytes).

    cloudpickle, except that TorchScript parts (of a model loaded from TorchScript) travel as TorchScript archives,
    since a ScriptModule cannot be pickled.

    Parameters
    ----------
    obj : object
        E.g. the head of the ascent, or the split network of the interaction analysis.
    argument : str
        The argument ``obj`` comes from, named when it cannot be pickled.

    Raises
    ------
    deepresolve.errors.ModelError
        ``obj`` holds something that cannot be pickled.
    """
    import cloudpickle

    class _Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, torch.jit.ScriptModule):
                buffer = io.BytesIO()
                torch.jit.save(obj, buffer)
                return _load_script, (buffer.getvalue(),)
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception as err:  # noqa: BLE001 -- pickling fails with many types; each means the same to the user
        raise ModelError(f"{argument}: expected a module that can be pickled to send it to the Dask workers, got "
                         f"one holding something that cannot be ({type(err).__name__}: {' '.join(str(err).split())}); "
                         f"run without client= or give a plain nn.Module {argument}") from None
    data = buffer.getvalue()
    return hashlib.sha256(data).hexdigest(), data


#: Objects unpacked on this worker process, by their digest: a worker unpickles each once, not once per chunk.
_UNPACKED: dict[str, Any] = {}
_UNPACKED_LOCK = threading.Lock()


def _unpack(packed: tuple[str, bytes]) -> Any:
    digest, data = packed
    with _UNPACKED_LOCK:
        if digest not in _UNPACKED:
            _UNPACKED.clear()  # one run at a time: keep only the newest object in memory
            _UNPACKED[digest] = pickle.loads(data)
        return _UNPACKED[digest]


def _run_chunk(task: Callable[..., Any], packed: tuple[str, bytes], *args: Any) -> Any:
    """On a worker: ``task(obj, *args)`` with ``obj`` unpacked from ``packed``."""
    try:
        from distributed import get_worker

        if get_worker().state.nthreads > 1:  # several tasks at once: one core each
            torch.set_num_threads(1)
    except ValueError:  # not inside a worker (called directly)
        pass
    return task(_unpack(packed), *args)


def client_map(client: Any, task: Callable[..., Any], packed: tuple[str, bytes], chunks: Sequence[tuple],
               on_result: Callable[[int, Any], None], *, shared: Sequence[object] = (), name: str) -> None:
    """Chunks of work on a Dask cluster, one task each: ``task(obj, *shared, *chunks[i])`` for every i.

    Parameters
    ----------
    client : distributed.Client
    task : callable
        A function of a module the workers can import (it travels by reference).
    packed : (str, bytes)
        ``obj``, from :func:`pack`: sent to the cluster once, unpickled once per worker process.
    chunks : sequence of tuple
        Each chunk's own arguments (small: they travel with its task).
    on_result : callable
        ``on_result(i, result)`` on the driver for each chunk i, in the order the tasks complete.
    shared : sequence, optional
        Arguments every task takes after ``obj``, sent to the cluster once (scattered).
    name : str
        Part of the tasks' keys (e.g. "ascent").

    Raises
    ------
    Exception
        A task's own error; then, or when the driver is interrupted, the tasks left are cancelled (results passed
        to ``on_result`` before are kept).
    """
    from distributed import as_completed

    futures = []
    try:
        if chunks:
            remote = client.scatter([packed, *shared], hash=False)
            stamp = time.time_ns()
            futures = [client.submit(_run_chunk, task, *remote, *args, pure=False,
                                     key=f"deepresolve-{name}-{i}-{stamp}") for i, args in enumerate(chunks)]
        number = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures):
            on_result(number[future.key], future.result())
    finally:
        for future in futures:  # an error or an interrupt: leave no task running for nothing
            future.cancel()


def _chunk_task(head: nn.Module, feature_shape: tuple[int, ...], classes: list[int], restarts: int, l2: float,
                first_row: int, done: list[int], options: dict) -> dict:
    """On a worker: the ascent of one chunk's rows not in ``done`` (rows numbered from ``first_row``)."""
    # rows the store holds: skipped (a zero FIV stands for their map; the maps this task computes reach the driver
    # through on_done, so the ascent keeps none itself)
    placeholder = FinishedRow(np.zeros(feature_shape[0]), np.nan, np.nan, 0, np.empty(0, np.float32))
    finished: list[FinishedRows] = []
    out = feature_ascent(head, feature_shape, classes, restarts, l2, skip={r - first_row: placeholder for r in done},
                         on_done=finished.append, keep_fims=False, **options)
    # a chunk always has rows to compute (plan_chunks), so ``finished`` is never empty
    rows = [first_row + r for part in finished for r in part.rows]
    return {"rows": np.asarray(rows, np.int64), "fims": np.concatenate([part.maps for part in finished]),
            **{key: np.concatenate([getattr(part, key) for part in finished])
               for key in ("scores", "objective", "steps")},
            "traces": [t for part in finished for t in part.traces], "row_steps": out.row_steps}


@renamed_arguments(keep_maps="keep_fims", alpha="decay")
def client_ascent(
    client: Any,
    head: nn.Module,
    feature_shape: Sequence[int],
    classes: Sequence[int],
    restarts: int = 10,
    l2: float = 1.0,
    *,
    skip: dict[int, FinishedRow] | None = None,
    on_done: Callable[[FinishedRows], None] | None = None,
    progress: Callable[[int], None] | None = None,
    flush: Callable[[], None] | None = None,
    n_threads: int | None = None,
    keep_fims: bool = True,
    **options: Any,
) -> AscentOutput:
    """:func:`~deepresolve.ascent.feature_ascent` with its rows computed on a Dask cluster, chunk by chunk.

    Parameters
    ----------
    client : distributed.Client
    head, feature_shape, classes, restarts, l2, skip
        As for :func:`~deepresolve.ascent.feature_ascent`.
    on_done : callable, optional
        Called on the driver with each finished chunk's :class:`~deepresolve.store.FinishedRows`.
    progress : callable, optional
        Called with the number of rows of each finished chunk.
    flush : callable, optional
        Called after ``on_done`` for every chunk (e.g. ``RunStore.flush``: the chunk reaches disk at once).
    n_threads : int, optional
        Worker threads to plan chunks for (default: the cluster's total now).
    keep_fims : bool
        As for ``feature_ascent``: with False the driver keeps only each row's FIV (the maps still reach
        ``on_done``, e.g. the run store, chunk by chunk). ``keep_maps`` is its old name (FutureWarning).
    **options
        The other keyword arguments of ``feature_ascent`` (its settings of
        :data:`~deepresolve.ascent.ASCENT_OPTIONS`, ``center``, ``device``), used on every worker.
        ``device=None`` lets each worker choose (CUDA when it has one).

    Returns
    -------
    AscentOutput
        As from ``feature_ascent``; ``seconds`` is the driver's wall time, ``row_steps`` the workers' total.

    Raises
    ------
    deepresolve.errors.ArgumentError
        A bad or unknown setting, before any task is sent.
    deepresolve.errors.ModelError
        The head cannot be pickled, so it cannot reach the workers (TorchScript parts travel as TorchScript).
    Exception
        A task's own error (e.g. a diverging ascent) is raised on the driver; chunks finished before are kept.
    """
    check_client(client)
    check_known(options, also=_WORKER_KEYWORDS)
    check_ascent_options(restarts=restarts, l2=l2,
                         **{name: value for name, value in options.items() if name not in _WORKER_KEYWORDS})
    feature_shape, classes, T = tuple(int(k) for k in feature_shape), [int(c) for c in classes], int(restarts)
    C, R = len(classes), len(classes) * T
    skip = skip or {}
    packed = pack(head, "head")  # before any task is sent: a head that cannot travel is refused here
    started = time.perf_counter()
    table = RowTable(R, feature_shape, keep_fims)
    for r, row in skip.items():
        table.put_row(r, row)

    threads = n_threads if n_threads is not None else sum(client.nthreads().values())
    chunks = [(feature_shape, classes[span.start:span.stop], T, float(l2), span.start * T,
               [r for r in range(span.start * T, span.stop * T) if r in skip], options)
              for span in plan_chunks(classes, T, skip.keys(), threads)]
    row_steps = 0

    def collect(i: int, part: dict) -> None:
        nonlocal row_steps
        finished = FinishedRows(part["rows"].tolist(), part["fims"], part["scores"], part["objective"],
                                part["steps"].astype(np.int64), part["traces"])
        table.put(finished)
        row_steps += part["row_steps"]
        if on_done is not None:
            on_done(finished)
        if flush is not None:
            flush()
        if progress is not None:
            progress(len(finished.rows))

    client_map(client, _chunk_task, packed, chunks, collect, name="ascent")
    return table.output(C, T, time.perf_counter() - started, row_steps)
