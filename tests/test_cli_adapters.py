"""The command line reaches models that need adapters: factory arguments, a tuple output, a constant extra input."""

import numpy as np
from typer.testing import CliRunner

import deepresolve as dr
from deepresolve.cli import app

runner = CliRunner()


def test_run_a_bpnet_shaped_model_with_a_control_track_through_its_counts_output(tmp_path):
    np.save(tmp_path / "ctl.npy", np.zeros((2, 200), np.float32))
    args = ["run", "tests.published:BPNet", "--factory-kwargs", '{"n_filters": 6, "n_control_tracks": 2}',
            "--fixed-input", f"X_ctl={tmp_path / 'ctl.npy'}", "--output", "1", "--layer", "irelu",
            "--input-shape", "4,200", "--restarts", "2", "--l2", "1", "--out", str(tmp_path / "o")]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    res = dr.load(tmp_path / "o" / "result.h5")
    assert res.params["output"] == "1" and res.params["fixed_inputs"] == {"X_ctl": [2, 200]}
    assert res.fivs.shape == (1, 2, 6)  # bpnet-lite's counts: one log-count output


def test_adapter_mistakes_are_one_line(tmp_path, refused):
    base = ["run", "tests.published:BPNet", "--layer", "irelu", "--input-shape", "4,200", "--out", str(tmp_path / "o")]
    for extra, message in ((["--factory-kwargs", "[1]"], "--factory-kwargs: expected a JSON object"),
                           (["--fixed-input", "X_ctl"], "--fixed-input: expected NAME=FILE.npy, got 'X_ctl'"),
                           ([], "expected a model returning class scores of shape (N, C)")):
        err = refused(base + extra, tmp_path / "o")
        assert message in err, err
