"""Atomic writes and the one-run-per-folder lock."""

import os
import subprocess
import sys
import textwrap

import pytest

from deepresolve._files import LOCK_NAME, exclusive, write_atomic
from deepresolve.errors import CheckpointError

_HOLD = textwrap.dedent("""
    import sys, time
    from deepresolve._files import exclusive
    with exclusive(sys.argv[1], "--out"):
        print("held", flush=True)
        time.sleep(60)
""")


def _holder(folder):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_a_held_folder_is_refused_and_a_killed_run_frees_it(tmp_path):
    out = tmp_path / "out"
    proc = _holder(out)
    try:
        with pytest.raises(CheckpointError, match=rf"^--out: expected a folder no other run is writing, got .*out', "
                                                  rf"which a running deepresolve \(process {proc.pid}\) holds"):
            with exclusive(out, "--out"):
                pass
    finally:
        proc.kill()  # kill -9: no cleanup runs, the lock file stays
        proc.wait()
    assert (out / LOCK_NAME).exists()
    with exclusive(out, "--out") as folder:  # the OS released the dead process's lock
        assert folder == out
    assert not (out / LOCK_NAME).exists()


def test_exclusive_removes_a_folder_it_created_when_nothing_was_written(tmp_path):
    with exclusive(tmp_path / "new", "checkpoint"):
        pass
    assert not (tmp_path / "new").exists()
    with exclusive(tmp_path / "kept", "checkpoint") as folder:
        (folder / "result.h5").write_text("x")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["result.h5"]


def test_write_atomic_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "table.tsv"
    write_atomic(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"half")
        raise OSError(27, "File too large")

    with pytest.raises(OSError):
        write_atomic(path, fail)
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["table.tsv"]


def test_resolve_refuses_a_checkpoint_folder_that_a_live_run_holds(tmp_path):
    import torch
    from torch import nn

    import deepresolve as dr

    ck = tmp_path / "ck"
    proc = _holder(ck)
    try:
        model = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
        with pytest.raises(CheckpointError, match=rf"^checkpoint: expected a folder no other run is writing, "
                                                  rf"got .*ck', which a running deepresolve \(process {proc.pid}\) "
                                                  rf"holds"):
            dr.resolve(model, "1", input_shape=(4, 20), restarts=2, l2=1.0, checkpoint=ck)
    finally:
        proc.kill()
        proc.wait()
    torch.manual_seed(0)
    res = dr.resolve(model, "1", input_shape=(4, 20), restarts=2, l2=1.0, checkpoint=ck)  # freed by the kill
    assert res.fivs.shape == (2, 2, 3) and not (ck / ".lock").exists()


def test_a_checkpoint_without_the_space_its_maps_need_is_refused_before_any_work(tmp_path, monkeypatch):
    from collections import namedtuple

    from torch import nn

    import deepresolve as dr
    import deepresolve._files as files
    from deepresolve.errors import ArgumentError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    model = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
    with pytest.raises(ArgumentError, match=r"^checkpoint: expected a folder with at least 768 bytes free for the "
                                            r"run's maps, got .*ck' with 100 bytes free"):
        dr.resolve(model, "1", input_shape=(4, 20), restarts=2, l2=1.0, checkpoint=tmp_path / "ck")
    assert not (tmp_path / "ck").exists()
