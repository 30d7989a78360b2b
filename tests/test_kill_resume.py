"""A real ``deepresolve run`` killed with SIGKILL at random moments, then resumed, gives the uninterrupted result.

Slow (a minute or more): run with ``pytest -m slow``. The default suite kills the store at each stage of a write
(``tests/test_store.py``) and resumes partial stores (``tests/test_resolve.py``).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr

pytestmark = pytest.mark.slow

KILLS = 24


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 24, 7), nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(), nn.Linear(24 * 23, 64),
                         nn.ReLU(), nn.Linear(64, 48))


def _command(model_path, out):
    return [sys.executable, "-m", "deepresolve", "run", str(model_path), "--layer", "2", "--input-shape", "4,98",
            "--out", str(out), "--restarts", "8", "--l2", "0.5", "--checkpoint-every", "0.2", "--batch-size", "64"]


def test_random_kills_resume_to_the_uninterrupted_result(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(_model().eval()).save(str(path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    started = time.monotonic()
    subprocess.run(_command(path, tmp_path / "ref"), check=True, capture_output=True, env=env, timeout=900)
    full = time.monotonic() - started

    rng = np.random.default_rng(0)
    out = tmp_path / "killed"
    kills = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(_command(path, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        time.sleep(rng.uniform(0.2, full))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()[-2000:]
        if proc.returncode == 0:  # it finished before the kill: start over so that every kill lands mid-run
            for f in out.iterdir():
                f.unlink()
    final = subprocess.run(_command(path, out), capture_output=True, env=env, timeout=900)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    assert kills >= 20

    ref, res = dr.load(tmp_path / "ref" / "result.h5"), dr.load(out / "result.h5")
    # The tolerance of batching (deepresolve.ascent, "Batching"): a resumed run fills its batches with other rows.
    scale = np.abs(ref.fivs).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(res.fivs - ref.fivs) <= 5e-2 * scale)
    ref_objective = ref.scores - ref.params["l2"] * (ref.fims.astype(np.float64) ** 2).sum(axis=(2, 3))
    objective = res.scores - res.params["l2"] * (res.fims.astype(np.float64) ** 2).sum(axis=(2, 3))
    np.testing.assert_allclose(objective, ref_objective, rtol=1e-3, atol=1e-3 * np.abs(ref_objective).max())
    for name in ("n_components", "non_additive", "consistent_sign"):
        np.testing.assert_array_equal(getattr(res, name), getattr(ref, name), err_msg=name)
    assert not (out / "checkpoint").exists()
