"""The run store: atomic chunks, kill -9 at every stage of a write, refusal of another run's store."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deepresolve._model import model_fingerprint
from deepresolve.errors import ArgumentError, CheckpointError
from deepresolve.store import FinishedRows, RunStore

SHAPE = (3, 2)
SETTINGS = {"model": "abc", "l2": 1.0, "classes": [0, 1], "seed": 0}


def _rows(rows):
    rows = list(rows)
    fims = np.stack([np.full(SHAPE, float(r), np.float32) for r in rows])
    traces = [np.arange(r + 1, dtype=np.float32) for r in rows]
    return FinishedRows(rows, fims, np.array(rows, float) * 2, np.array(rows, float) * 3, np.array(rows) + 1, traces)


def _check_rows(done, expected):
    assert sorted(done) == sorted(expected)
    for r in expected:
        fim, score, objective, steps, trace = done[r]
        np.testing.assert_array_equal(fim, np.full(SHAPE, float(r), np.float32))
        assert (score, objective, steps) == (2 * r, 3 * r, r + 1)
        np.testing.assert_array_equal(trace, np.arange(r + 1, dtype=np.float32))


def test_rows_round_trip_across_chunks(tmp_path):
    store = RunStore(tmp_path / "ck", SETTINGS, n_rows=10, feature_shape=SHAPE, every=1e9)
    assert not (tmp_path / "ck").exists()  # nothing written before the first rows
    store.add(_rows([4, 1]))
    store.flush()
    store.add(_rows([7]))
    store.flush()
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["chunk-000000.npz", "chunk-000001.npz",
                                                                    "settings.json"]
    again = RunStore(tmp_path / "ck", SETTINGS, n_rows=10, feature_shape=SHAPE)
    _check_rows(again.finished(), [1, 4, 7])
    again.add(_rows([2]))
    again.flush()  # numbering continues after the existing chunks
    assert (tmp_path / "ck" / "chunk-000002.npz").exists()


def test_other_settings_are_refused_naming_each_difference(tmp_path):
    store = RunStore(tmp_path / "ck", SETTINGS, n_rows=10, feature_shape=SHAPE)
    store.add(_rows([0]))
    store.flush()
    stored = json.loads((tmp_path / "ck" / "settings.json").read_text())
    assert stored["l2"] == 1.0 and stored["model"] == "abc"  # readable
    with pytest.raises(CheckpointError, match=r"l2: stored 1.0, now 2.0; model: stored \"abc\", now \"xyz\""):
        RunStore(tmp_path / "ck", {**SETTINGS, "l2": 2.0, "model": "xyz"}, n_rows=10, feature_shape=SHAPE)


def test_a_file_or_foreign_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentError, match="checkpoint must be a folder"):
        RunStore(tmp_path / "file", SETTINGS, n_rows=1, feature_shape=SHAPE)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(CheckpointError, match="not a deepresolve run store"):
        RunStore(tmp_path / "other", SETTINGS, n_rows=1, feature_shape=SHAPE)


def test_an_unreadable_chunk_is_recomputed_with_a_warning(tmp_path):
    store = RunStore(tmp_path / "ck", SETTINGS, n_rows=10, feature_shape=SHAPE)
    for rows in ([0, 1], [2]):
        store.add(_rows(rows))
        store.flush()
    (tmp_path / "ck" / "chunk-000000.npz").write_bytes(b"PK\x03\x04 damaged")
    again = RunStore(tmp_path / "ck", SETTINGS, n_rows=10, feature_shape=SHAPE)
    with pytest.warns(RuntimeWarning, match="chunk-000000.npz' cannot be read .* computed again"):
        done = again.finished()
    _check_rows(done, [2])
    assert (tmp_path / "ck" / "chunk-000000.npz.unreadable").exists()


def test_a_chunk_of_another_shape_is_recomputed(tmp_path):
    store = RunStore(tmp_path / "ck", SETTINGS, n_rows=10, feature_shape=SHAPE)
    store.add(_rows([0]))
    store.flush()
    wrong = RunStore(tmp_path / "ck", SETTINGS, n_rows=10, feature_shape=(2, 3))
    with pytest.warns(RuntimeWarning, match="do not fit this run"):
        assert wrong.finished() == {}


# A real kill -9 runs no cleanup: the child process exits with os._exit inside the write, at each stage.
_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_store import SETTINGS, SHAPE, _rows
    import deepresolve.store as st
    import deepresolve._files as files

    stage = {stage!r}
    store = st.RunStore({path!r}, SETTINGS, n_rows=10, feature_shape=SHAPE)
    store.add(_rows([0, 1]))
    store.flush()                      # one complete chunk before the kill
    real_replace, real_fsync, real_savez = os.replace, os.fsync, np.savez

    def die(*a, **k):
        os._exit(9)

    if stage == "mid-write":           # half the bytes of the chunk written
        def savez(f, **arrays):
            f.write(b"PK\\x03\\x04" + b"\\0" * 100)
            os._exit(9)
        np.savez = savez
    elif stage == "before-fsync":
        files.os.fsync = die
    elif stage == "before-rename":
        files.os.replace = die
    elif stage == "after-rename":
        def replace(a, b):
            real_replace(a, b)
            os._exit(9)
        files.os.replace = replace
    store.add(_rows([5, 6]))
    store.flush()
    os._exit(0)
""")


@pytest.mark.parametrize("stage", ["mid-write", "before-fsync", "before-rename", "after-rename"])
def test_kill_at_each_stage_of_a_write_leaves_a_store_that_resumes(tmp_path, stage):
    path = tmp_path / "ck"
    code = _CHILD.format(tests=str(Path(__file__).parent), stage=stage, path=str(path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    store = RunStore(path, SETTINGS, n_rows=10, feature_shape=SHAPE)
    assert not list(path.glob(".tmp-*"))  # leftovers of the interrupted write are gone
    expected = [0, 1, 5, 6] if stage == "after-rename" else [0, 1]
    _check_rows(store.finished(), expected)
    store.add(_rows([5, 6, 9]))  # resume: the rows are written again, once
    store.flush()
    _check_rows(RunStore(path, SETTINGS, n_rows=10, feature_shape=SHAPE).finished(), [0, 1, 5, 6, 9])


def test_kill_while_writing_the_settings_leaves_nothing_that_blocks_a_rerun(tmp_path):
    path = tmp_path / "ck"
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import SETTINGS, SHAPE, _rows
        import deepresolve.store as st
        import deepresolve._files as files
        files.os.replace = lambda a, b: os._exit(9)
        store = st.RunStore({str(path)!r}, SETTINGS, n_rows=10, feature_shape=SHAPE)
        store.add(_rows([0]))
        store.flush()
    """)
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 9
    store = RunStore(path, SETTINGS, n_rows=10, feature_shape=SHAPE)  # an empty folder: a fresh store
    assert store.finished() == {}


def test_model_fingerprint_sees_weights_buffers_and_structure():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    b = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    b.load_state_dict(a.state_dict())
    assert model_fingerprint(a) == model_fingerprint(b)
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-6
    assert model_fingerprint(a) != model_fingerprint(b)
    c = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid())
    c.load_state_dict(a.state_dict())
    assert model_fingerprint(a) != model_fingerprint(c)
    d, e = nn.BatchNorm1d(2).eval(), nn.BatchNorm1d(2).eval()
    e.running_mean += 1
    assert model_fingerprint(d) != model_fingerprint(e)
