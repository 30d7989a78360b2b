"""interactions(client=...): the chunks of pairs are evaluated on a Dask cluster, one task each, and the result equals
a local run's to the last bit (one torch thread everywhere); each chunk reaches the checkpoint as it arrives, so a
run stopped half-way resumes on the cluster with the missing chunks only; a bad client or a model that cannot
travel is refused before any work; resolve forwards its client; the CLI takes --scheduler and --workers.

The model is the committed set I fixture (39 pairs at 16 contexts) with chunks of 5 pairs, as in
tests/test_interactions_resume.py: 8 chunks. The cluster is two in-process workers of one thread each.
"""

import numpy as np
import pytest
from typer.testing import CliRunner

import deepresolve as dr
import deepresolve.interaction_analysis.analysis as analysis
import deepresolve.interaction_analysis.effects as effects
from deepresolve.cli import app
from deepresolve.errors import ArgumentError, ModelError
from deepresolve.interaction_analysis import interactions
from deepresolve.results import Interactions
from tests import test_interactions_resume as resume
from tests.test_interactions_resume import KW, Counter, _assert_same, _n_chunks, _no_word_scan, set_one

distributed = pytest.importorskip("distributed")
# the resume tests' fixtures: one torch thread and small chunks (autouse), the local run and its rows per call
_one_thread_small_chunks = resume._one_thread_small_chunks
reference = resume.reference


@pytest.fixture(scope="module")
def client():
    """Two in-process workers, one thread each: the same scheduling as separate processes, without their start-up."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def where_evaluated(monkeypatch):
    """Per Evaluator call, in the order calls start: its rows, and whether a Dask worker made it."""
    calls = []
    real = effects.Evaluator.__call__

    def recorded(ev, ctx, on, drop):
        try:
            distributed.get_worker()
            on_worker = True
        except ValueError:
            on_worker = False
        calls.append((len(ctx), on_worker))
        return real(ev, ctx, on, drop)
    monkeypatch.setattr(effects.Evaluator, "__call__", recorded)
    return calls


def test_a_cluster_run_evaluates_the_pairs_on_the_workers_and_equals_the_local_run(client, monkeypatch, reference):
    ref, ref_rows = reference
    n = _n_chunks(ref)
    assert n == 8
    calls = where_evaluated(monkeypatch)
    res = interactions(set_one(), "pool1", client=client, **KW)
    _assert_same(res, ref)  # tables, values, p- and q-values, main effects, pairs, groups: to the last bit
    # the word scan, strength and main effects on the driver as locally; the same 8 chunks of pairs on the workers
    assert [rows for rows, on_worker in calls if not on_worker] == ref_rows[:-n]
    assert sorted(rows for rows, on_worker in calls if on_worker) == sorted(ref_rows[-n:])


def test_a_run_stopped_half_way_resumes_on_the_cluster_with_the_missing_chunks_only(client, tmp_path, monkeypatch,
                                                                                  reference):
    ref, ref_rows = reference
    n, ck = _n_chunks(ref), tmp_path / "ck"
    with monkeypatch.context() as mp:  # a local run stopped after 3 chunks of pairs
        Counter(mp, fail=len(ref_rows) - n + 3 + 1)
        with pytest.raises(RuntimeError, match="interrupted"):
            interactions(set_one(), "pool1", checkpoint=ck, **KW)
    assert len(list(ck.glob("pairs-*.npz"))) == 3
    with monkeypatch.context() as mp:  # a cluster run resumes it, and a task fails: its error reaches the driver
        Counter(mp, fail=len(ref_rows) - n + 2)  # the second pair chunk evaluated fails
        with pytest.raises(RuntimeError, match="interrupted"):
            interactions(set_one(), "pool1", checkpoint=ck, client=client, **KW)
    written = len(list(ck.glob("pairs-*.npz")))
    assert 3 <= written < n  # the chunks collected before the failure were written at once

    _no_word_scan(monkeypatch)  # players, strength and main effects are read back; the rest is sent to the workers
    calls = where_evaluated(monkeypatch)
    res = interactions(set_one(), "pool1", checkpoint=ck, client=client, **KW)
    assert all(on_worker for _, on_worker in calls) and len(calls) == n - written
    _assert_same(res, ref)
    calls.clear()  # a finished checkpoint: no task is sent
    _assert_same(interactions(set_one(), "pool1", checkpoint=ck, client=client, **KW), ref)
    assert calls == []


class Handle:
    """Copied by reference (as a handle to something outside Python is), but not picklable."""

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("cannot pickle 'Handle' object")


def test_a_bad_client_or_a_model_that_cannot_travel_is_refused_before_any_work(client, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work began")
    monkeypatch.setattr(analysis, "find_players", no_work)
    ck = tmp_path / "ck"
    with pytest.raises(ArgumentError, match="client: expected a dask distributed.Client .* got str 'tcp://x:8786'"):
        interactions(set_one(), "pool1", client="tcp://x:8786", checkpoint=ck, **KW)
    closed = distributed.Client(client.scheduler.address)
    closed.close()
    with pytest.raises(ArgumentError, match="client: expected a connected distributed.Client, got one whose status"):
        interactions(set_one(), "pool1", client=closed, checkpoint=ck, **KW)
    with pytest.raises(ArgumentError, match="interactions: expected options of deepresolve.interactions other than "
                                            "those resolve passes itself .*, got client"):
        dr.resolve(set_one(), "pool1", input_shape=(4, 40), interactions={"client": client}, checkpoint=ck)
    model = set_one()
    model.conv1.handle = Handle()  # held by the split network: pickle cannot carry it
    with pytest.raises(ModelError, match="model: expected a module that can be pickled to send it to the Dask "
                                         "workers, got one holding something that cannot be \\(TypeError"):
        interactions(model, "pool1", client=client, checkpoint=ck, **KW)
    assert not ck.exists()


def test_resolve_forwards_its_client_to_the_interaction_analysis(client, monkeypatch):
    run = dict(input_shape=(4, 40), restarts=2, l2=1.0, steps=5, interactions={"contexts": 16, "jaspar": None})
    local = dr.resolve(set_one(), "pool1", **run)
    calls = where_evaluated(monkeypatch)
    remote = dr.resolve(set_one(), "pool1", client=client, **run)
    assert sum(on_worker for _, on_worker in calls) == _n_chunks(local.interactions)  # every chunk of pairs
    for name in ("tables", "values", "pvalues", "group_tables", "group_values", "group_pvalues", "group_pairs"):
        np.testing.assert_array_equal(getattr(remote.interactions, name), getattr(local.interactions, name), name)


CLI = ["interactions", "tests.test_interactions_resume:set_one", "--layer", "pool1", "--input-shape", "4,40",
       "--contexts", "16", "--jaspar", "none"]


def test_the_command_line_evaluates_the_pairs_on_a_running_scheduler(client, tmp_path, monkeypatch, reference):
    calls = where_evaluated(monkeypatch)
    done = CliRunner().invoke(app, CLI + ["--out", str(tmp_path / "o"), "--scheduler", client.scheduler.address])
    assert done.exit_code == 0, done.output
    assert sum(on_worker for _, on_worker in calls) == _n_chunks(reference[0])
    local = CliRunner().invoke(app, CLI + ["--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    _assert_same(Interactions.load(tmp_path / "o" / "interactions.h5"),
                 Interactions.load(tmp_path / "local" / "interactions.h5"))
    assert not (tmp_path / "o" / "checkpoint").exists()
    assert client.status == "running"  # the CLI closed its own client only, not the cluster


@pytest.mark.parametrize("extra, message", [
    (["--workers", "2", "--scheduler", "tcp://x:8786"], "--workers, --scheduler: expected at most one"),
    (["--workers", "0"], "--workers: expected an integer >= 1, got 0"),
    (["--scheduler", "::bad"], "--scheduler: expected a running Dask scheduler at '::bad'"),
])
def test_cluster_option_mistakes_are_one_line(tmp_path, refused, extra, message):
    out = tmp_path / "o"
    err = refused(CLI + ["--out", str(out), *extra], out)
    assert message in err, err


@pytest.mark.slow
def test_workers_starts_a_local_cluster_of_processes_that_writes_the_local_tables(tmp_path, reference):
    done = CliRunner().invoke(app, CLI + ["--out", str(tmp_path / "o"), "--workers", "2"])
    assert done.exit_code == 0, done.output
    _assert_same(Interactions.load(tmp_path / "o" / "interactions.h5"), reference[0])
