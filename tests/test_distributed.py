"""resolve(client=...): a Dask cluster computes the rows in chunks of classes, equal to a local run within the batching
tolerance of deepresolve.ascent, written to the run store chunk by chunk so that a rerun computes only what is
missing."""

import io

import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.distributed import client_ascent, connect, plan_chunks
from deepresolve.errors import ArgumentError, DivergenceError

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    """Two in-process workers, one thread each: the same scheduling as separate processes, without their start-up."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Identity(), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5))


def conv_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(), nn.Linear(6 * 4, 3),
                         nn.Sigmoid())


def scripted(model):
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model.eval()), buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def assert_within_batching_tolerance(a, b):
    """The statement of deepresolve.ascent ("Batching"): objectives within 1e-3 relative, FIVs within 5e-2 of the
    class's largest |FIV|; the decisions taken from them agree."""
    l2 = a.params["l2"]
    assert l2 == b.params["l2"]
    obj_a = a.scores - l2 * (a.fims.astype(np.float64) ** 2).reshape(*a.scores.shape, -1).sum(-1)
    obj_b = b.scores - l2 * (b.fims.astype(np.float64) ** 2).reshape(*b.scores.shape, -1).sum(-1)
    np.testing.assert_allclose(obj_a, obj_b, rtol=1e-3, atol=1e-6)
    scale = np.abs(b.fivs).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(a.fivs - b.fivs) <= 5e-2 * scale)
    np.testing.assert_array_equal(a.n_components, b.n_components)
    np.testing.assert_array_equal(a.non_additive, b.non_additive)
    np.testing.assert_array_equal(np.sign(a.ofiv)[np.abs(b.ofiv) > 0.1 * np.abs(b.ofiv).max(1, keepdims=True)],
                                  np.sign(b.ofiv)[np.abs(b.ofiv) > 0.1 * np.abs(b.ofiv).max(1, keepdims=True)])


def chunk_rows(folder):
    """The rows of each chunk file of a run store, in file order."""
    out = []
    for path in sorted(folder.glob("chunk-*.npz")):
        with np.load(path) as z:
            out.append(z["rows"].tolist())
    return out


def test_a_cluster_run_equals_a_local_run_and_writes_one_store_chunk_per_task(client, tmp_path):
    local = dr.resolve(mlp(), "0", input_shape=(6,), restarts=4, l2=0.5)
    ck = tmp_path / "ck"
    remote = dr.resolve(mlp(), "0", input_shape=(6,), restarts=4, l2=0.5, client=client, checkpoint=ck)
    assert_within_batching_tolerance(remote, local)
    assert remote.fims.shape == local.fims.shape == (5, 4, 6, 1)
    assert remote.params["row_steps"] > 0
    # 5 classes on 2 worker threads: one class per task, each task's rows one chunk of the store
    rows = chunk_rows(ck)
    assert sorted(map(sorted, rows)) == [list(range(4 * c, 4 * c + 4)) for c in range(5)]
    again = dr.resolve(mlp(), "0", input_shape=(6,), restarts=4, l2=0.5, client=client, checkpoint=ck)
    assert again.params["row_steps"] == 0  # every chunk came from the store: no task was sent
    np.testing.assert_array_equal(again.fims, remote.fims)
    lean = dr.resolve(mlp(), "0", input_shape=(6,), restarts=4, l2=0.5, client=client, checkpoint=ck, keep_fims=False)
    assert lean.fims is None and lean.params["row_steps"] == 0  # the store's maps, reduced to FIVs
    np.testing.assert_array_equal(lean.fivs, remote.fivs)
    np.testing.assert_array_equal(lean.ofiv, remote.ofiv)
    fresh = dr.resolve(mlp(), "0", input_shape=(6,), restarts=4, l2=0.5, client=client, checkpoint=tmp_path / "ck2",
                       keep_fims=False)  # computed on the cluster, the driver keeping FIVs only
    assert fresh.fims is None and fresh.params["row_steps"] > 0
    assert np.all(np.abs(fresh.fivs - local.fivs) <= 5e-2 * np.abs(local.fivs).max(axis=(1, 2), keepdims=True))
    np.testing.assert_array_equal(fresh.non_additive, local.non_additive)
    assert sorted(r for rows in chunk_rows(tmp_path / "ck2") for r in rows) == list(range(20))


def test_a_torchscript_model_with_two_axis_maps_runs_on_the_cluster(client):
    # the head of a TorchScript model holds ScriptModules, which pickle cannot carry; they travel as TorchScript
    local = dr.resolve(conv_model(), "2", input_shape=(4, 20), restarts=3, seed=3)
    remote = dr.resolve(scripted(conv_model()), "2", input_shape=(4, 20), restarts=3, seed=3, client=client)
    assert remote.fims.shape == (3, 3, 6, 4)
    assert_within_batching_tolerance(remote, local)


def test_a_half_finished_store_resumes_on_the_cluster_computing_only_the_rest(client, tmp_path):
    model = mlp(seed=1)
    ck = tmp_path / "ck"
    full = dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.5, checkpoint=ck)
    [rows] = chunk_rows(ck)  # a local run writes its rows in one chunk here
    assert sorted(rows) == list(range(20))
    path = next(ck.glob("chunk-*.npz"))
    with np.load(path) as z:  # keep rows 0..9, as if killed half-way (class 2 half done: restarts 0 and 1)
        arrays = {k: z[k] for k in z.files}
    keep = arrays["rows"] < 10
    offsets = arrays["trace_offsets"]
    trace = np.concatenate([arrays["trace"][offsets[j]:offsets[j + 1]] for j in np.flatnonzero(keep)])
    path.unlink()
    np.savez(ck / "chunk-000000.npz", rows=arrays["rows"][keep], fims=arrays["fims"][keep],
             scores=arrays["scores"][keep], objective=arrays["objective"][keep], steps=arrays["steps"][keep],
             trace_offsets=np.concatenate([[0], np.cumsum(np.diff(offsets)[keep])]), trace=trace)

    resumed = dr.resolve(model, "0", input_shape=(6,), restarts=4, l2=0.5, checkpoint=ck, client=client)
    new = chunk_rows(ck)[1:]
    assert sorted(r for chunk in new for r in chunk) == list(range(10, 20))  # only the missing rows were computed
    assert 0 < resumed.params["row_steps"] < full.params["row_steps"]
    stored = arrays["fims"][keep][np.argsort(arrays["rows"][keep])]
    np.testing.assert_array_equal(resumed.fims.reshape(20, -1)[:10], stored.reshape(10, -1))  # kept rows untouched
    assert_within_batching_tolerance(resumed, full)


def test_chunks_are_runs_of_whole_classes_that_still_have_rows_to_compute():
    # 10 classes x 2 restarts; class 0 done, class 1 half done, class 5 done; 1 thread: ceil(8 / 4) = 2 per chunk
    done = {0, 1, 2, 10, 11}
    chunks = plan_chunks(list(range(100, 110)), 2, done, n_threads=1)
    assert chunks == [range(1, 3), range(3, 5), range(6, 8), range(8, 10)]
    assert plan_chunks([7, 8], 3, set(range(6)), n_threads=4) == []
    many = plan_chunks(list(range(919)), 10, set(), n_threads=16)
    assert sum(len(c) for c in many) == 919 and max(len(c) for c in many) == 15 and len(many) == 62


class Exploding(nn.Module):
    """A head whose class 1 score is so steep that its ascent overflows float32 on the worker."""

    def forward(self, h):
        return torch.stack([h.sum(1), h.sum(1) * 1e30], dim=1)


def test_a_failing_task_raises_its_error_on_the_driver(client, tmp_path):
    with pytest.raises(DivergenceError, match="the objective became .* for class 1"):
        dr.resolve(nn.Sequential(nn.Identity(), Exploding()), "0", input_shape=(3,), restarts=2, l2=1.0, client=client,
                   checkpoint=tmp_path / "ck")


def test_bad_clients_and_cluster_options_are_refused_before_any_work(client, tmp_path):
    ck = tmp_path / "ck"
    with pytest.raises(ArgumentError, match="client: expected a dask distributed.Client .* got str 'tcp://x:8786'"):
        dr.resolve(mlp(), "0", input_shape=(6,), client="tcp://x:8786", checkpoint=ck)
    closed = distributed.Client(client.scheduler.address)
    closed.close()
    with pytest.raises(ArgumentError, match="client: expected a connected distributed.Client, got one whose status"):
        dr.resolve(mlp(), "0", input_shape=(6,), client=closed, checkpoint=ck)
    with pytest.raises(ArgumentError, match="restarts: expected an integer >= 1"):  # the usual checks come first too
        dr.resolve(mlp(), "0", input_shape=(6,), restarts=0, client=client, checkpoint=ck)
    assert not ck.exists()
    with pytest.raises(ArgumentError, match="tolerance: unknown ascent option.*did you mean tol"):  # on the driver
        client_ascent(client, nn.Linear(6, 5), (6,), [0], 2, 0.5, tolerance=1e-3)
    with pytest.raises(ArgumentError, match="cuts: an option of optimizer='bundle' only"):
        client_ascent(client, nn.Linear(6, 5), (6,), [0], 2, 0.5, cuts=4)
    with pytest.raises(ArgumentError, match="workers, scheduler: expected exactly one"):
        connect(workers=2, scheduler="tcp://x:8786")
    with pytest.raises(ArgumentError, match="workers, scheduler: expected exactly one"):
        connect()
    with pytest.raises(ArgumentError, match="workers: expected an integer >= 1, got 0"):
        connect(workers=0)
    with pytest.raises(ArgumentError,
                       match="scheduler: expected a running Dask scheduler at '::bad', could not connect"):
        connect(scheduler="::bad")


def test_the_command_line_runs_on_a_running_scheduler(client, tmp_path, capsys):
    from deepresolve.cli import main

    path = tmp_path / "m.pt"
    torch.jit.script(conv_model().eval()).save(str(path))
    args = ["run", str(path), "--layer", "2", "--input-shape", "4,20", "--restarts", "3", "--seed", "3"]
    with pytest.raises(SystemExit) as info:
        main(args + ["--out", str(tmp_path / "o"), "--scheduler", client.scheduler.address])
    assert info.value.code == 0, capsys.readouterr().err
    local = dr.resolve(conv_model(), "2", input_shape=(4, 20), restarts=3, seed=3)
    assert_within_batching_tolerance(dr.load(tmp_path / "o" / "result.h5"), local)
    assert not (tmp_path / "o" / "checkpoint").exists()


@pytest.mark.parametrize("extra, message", [
    (["--workers", "2", "--scheduler", "tcp://x:8786"], "--workers, --scheduler: expected at most one"),
    (["--workers", "0"], "--workers: expected an integer >= 1, got 0"),
    (["--scheduler", " "], "--scheduler: expected an address such as tcp://host:8786, got ' '"),
    (["--scheduler", "::bad"], "--scheduler: expected a running Dask scheduler at '::bad'"),
])
def test_cluster_options_mistakes_are_one_line(tmp_path, refused, extra, message):
    path = tmp_path / "m.pt"
    torch.jit.script(conv_model().eval()).save(str(path))
    out = tmp_path / "o"
    err = refused(["run", str(path), "--layer", "2", "--input-shape", "4,20", "--out", str(out), *extra], out)
    assert message in err, err


@pytest.mark.slow
def test_workers_starts_a_local_cluster_of_processes(tmp_path, capsys):
    from deepresolve.cli import main

    path = tmp_path / "m.pt"
    torch.jit.script(conv_model().eval()).save(str(path))
    with pytest.raises(SystemExit) as info:
        main(["run", str(path), "--layer", "2", "--input-shape", "4,20", "--restarts", "3",
              "--out", str(tmp_path / "o"), "--workers", "2"])
    assert info.value.code == 0, capsys.readouterr().err
    local = dr.resolve(conv_model(), "2", input_shape=(4, 20), restarts=3)
    assert_within_batching_tolerance(dr.load(tmp_path / "o" / "result.h5"), local)
