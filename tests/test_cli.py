import numpy as np
import torch
from torch import nn
from typer.testing import CliRunner

import deepresolve as dr
from deepresolve.cli import app

runner = CliRunner()


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(), nn.Linear(6 * 4, 3), nn.Sigmoid())


def factory():
    return tiny_model()


def test_layers_and_run_on_a_torchscript_file(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    out = runner.invoke(app, ["layers", str(path), "--input-shape", "4,20"])
    assert out.exit_code == 0, out.output
    assert "(6, 4)" in out.output
    out = runner.invoke(app, ["run", str(path), "--layer", "2", "--input-shape", "4,20", "--out", str(tmp_path / "o"),
                              "--restarts", "3", "--classes", "0,2"])
    assert out.exit_code == 0, out.output
    res = dr.load(tmp_path / "o" / "result.h5")
    assert res.fims.shape == (2, 3, 6, 4) and res.classes.tolist() == [0, 2]
    assert (tmp_path / "o" / "summary.tsv").exists() and (tmp_path / "o" / "channels.tsv").exists()
    # same answer as the library call
    ref = dr.resolve(tiny_model(), "2", input_shape=(4, 20), classes=[0, 2], restarts=3)
    np.testing.assert_allclose(res.ofiv, ref.ofiv, atol=1e-5)


def test_factory_with_state_dict(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(tiny_model().state_dict(), weights)
    out = runner.invoke(app, ["run", "tests.test_cli:factory", "--weights", str(weights), "--layer", "2",
                              "--input-shape", "4,20", "--out", str(tmp_path / "o"), "--restarts", "2"])
    assert out.exit_code == 0, out.output


def test_cli_errors_are_specific(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    out = runner.invoke(app, ["run", str(path), "--layer", "9", "--input-shape", "4,20", "--out", str(tmp_path)])
    assert out.exit_code != 0 and "is not a module" in str(out.exception)
    out = runner.invoke(app, ["run", str(path), "--layer", "2", "--input-shape", "4;20", "--out", str(tmp_path)])
    assert out.exit_code == 2 and "--input-shape" in out.output
    out = runner.invoke(app, ["layers", str(tmp_path / "nope.pt"), "--input-shape", "4,20"])
    assert out.exit_code == 2 and "neither an existing file" in out.output
    state = tmp_path / "w.pt"
    torch.save(tiny_model().state_dict(), state)
    out = runner.invoke(app, ["layers", str(state), "--input-shape", "4,20"])
    assert out.exit_code == 2 and "module:factory" in out.output


def test_report_and_motifs_commands(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    dr.resolve(tiny_model(), "2", input_shape=(4, 20), restarts=3).save(tmp_path / "r.h5")
    out = runner.invoke(app, ["motifs", str(path), "--out", str(tmp_path / "motifs"), "--matches", "2"])
    assert out.exit_code == 0, out.output
    tsv = next((tmp_path / "motifs").glob("tomtom_*.tsv"))
    out = runner.invoke(app, ["report", str(tmp_path / "r.h5"), "--out", str(tmp_path / "rep.html"), "--model", str(path),
                              "--motifs", str(tsv)])
    assert out.exit_code == 0, out.output
    html = (tmp_path / "rep.html").read_text()
    assert "class 2" in html and "data:image/png;base64" in html
    out = runner.invoke(app, ["report", str(tmp_path / "missing.h5")])
    assert out.exit_code == 2 and "does not exist" in out.output


def test_demo_uses_the_committed_model_unless_told_to_train(tmp_path, monkeypatch):
    import deepresolve.paper.demo

    calls = []
    monkeypatch.setattr(deepresolve.paper.demo, "run_demo", lambda out, **kw: calls.append((out, kw)))
    assert runner.invoke(app, ["demo", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["demo", "--out", str(tmp_path), "--train", "--seed", "3"]).exit_code == 0
    assert [kw["train"] for _, kw in calls] == [False, True] and calls[1][1]["seed"] == 3
