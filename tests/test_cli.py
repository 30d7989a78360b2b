import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import deepresolve as dr
from deepresolve.ascent import ASCENT_OPTIONS
from deepresolve.cli import app

runner = CliRunner()


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(), nn.Linear(6 * 4, 3),
                         nn.Sigmoid())


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


def test_optimizer_settings_reach_the_ascent(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    out = runner.invoke(app, ["run", str(path), "--layer", "2", "--input-shape", "4,20", "--out", str(tmp_path / "o"),
                              "--restarts", "2", "--optimizer", "bundle", "--tol", "1e-4"])
    assert out.exit_code == 0, out.output
    res = dr.load(tmp_path / "o" / "result.h5")
    assert res.params["optimizer"] == "bundle" and res.params["tol"] == 1e-4


def test_run_help_reads_the_ascent_option_table():
    out = runner.invoke(app, ["run", "--help"], terminal_width=200)
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.replace("│", " ").split())
    for name in ("steps", "tol", "lr", "restarts", "precision", "batch_size"):
        help_text = ASCENT_OPTIONS[name].describe()
        assert help_text[1:60] in text, (name, help_text)


def test_report_and_motifs_commands(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    dr.resolve(tiny_model(), "2", input_shape=(4, 20), restarts=3).save(tmp_path / "r.h5")
    out = runner.invoke(app, ["motifs", str(path), "--out", str(tmp_path / "motifs"), "--matches", "2"])
    assert out.exit_code == 0, out.output
    tsv = next((tmp_path / "motifs").glob("tomtom_*.tsv"))
    out = runner.invoke(app, ["report", str(tmp_path / "r.h5"), "--out", str(tmp_path / "rep.html"),
                              "--model", str(path), "--motifs", str(tsv)])
    assert out.exit_code == 0, out.output
    html = (tmp_path / "rep.html").read_text()
    assert "class 2" in html and "data:image/png;base64" in html


def test_demo_uses_the_committed_model_unless_told_to_train(tmp_path, monkeypatch):
    import deepresolve.paper.demo

    calls = []
    monkeypatch.setattr(deepresolve.paper.demo, "run_demo", lambda out, **kw: calls.append((out, kw)))
    assert runner.invoke(app, ["demo", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["demo", "--out", str(tmp_path), "--train", "--seed", "3"]).exit_code == 0
    assert [kw["train"] for _, kw in calls] == [False, True] and calls[1][1]["seed"] == 3


# ---------------------------------------------------------------------------------------------------------------
# Every ordinary mistake: one line on stderr, exit 2, no traceback, no file left behind


def _files(tmp_path):
    """A TorchScript model, a state dict, a Keras folder with one weight missing, a truncated h5, names files."""
    import h5py

    from tests._factories import layer, write_keras

    torch.jit.script(tiny_model().eval()).save(str(tmp_path / "m.pt"))
    torch.save(tiny_model().state_dict(), tmp_path / "w.pt")
    (tmp_path / "w_bad.pt").write_bytes(b"not a torch file")
    rng = np.random.default_rng(0)
    layers = [layer("Convolution1D", "c", nb_filter=2, filter_length=3, border_mode="valid", activation="relu",
                    batch_input_shape=[None, 10, 4]),
              layer("Flatten", "f"), layer("Dense", "d", output_dim=1, activation="sigmoid")]
    weights = {"c": [rng.normal(size=(3, 1, 4, 2)), np.zeros(2)], "d": [rng.normal(size=(16, 1)), np.zeros(1)]}
    k1 = write_keras(tmp_path / "k1", layers, weights)
    with h5py.File(k1 / "model.h5", "a") as f:
        del f["model_weights/d/d_W"]
    write_keras(tmp_path / "k2", [dict(l, config={k: v for k, v in l["config"].items() if k != "output_dim"})
                                        if l["config"]["name"] == "d" else l for l in layers], weights)
    k3 = write_keras(tmp_path / "k3", layers, weights)
    data = (k3 / "model.h5").read_bytes()
    (k3 / "model.h5").write_bytes(data[: len(data) // 3])
    (tmp_path / "names2.txt").write_text("a\nb\n")
    (tmp_path / "afile").write_text("x")
    return tmp_path


RUN = ["run", "{m}", "--layer", "2", "--input-shape", "4,20", "--out", "{out}", "--restarts", "2"]
MISTAKES = [
    (RUN + ["--classes", "5-2"], "--classes: expected ranges that run upwards"),
    (RUN + ["--classes", "0-99999"],
     "--classes: expected output indices in 0-2 .the model has 3 outputs., got '0-99999'"),
    (RUN + ["--classes", "0-999999999"], "--classes: expected output indices in 0-2"),
    (RUN + ["--classes", "one"], "--classes: expected output indices and ranges like 0,3,10-12"),
    (RUN[:2] + ["--layer", "nosuch"] + RUN[4:], "layer='nosuch' is not a module of this model"),
    ([a if a != "{out}" else "{dir}/afile" for a in RUN], "--out: expected a folder, got the file"),
    ([a if a != "4,20" else "5,20" for a in RUN], r"the model failed on an input of shape \(1, 5, 20\)"),
    ([a if a != "4,20" else "4;20" for a in RUN], "--input-shape: expected positive sizes separated by commas"),
    (RUN + ["--optimizer", "adam"], "optimizer: expected one of 'matched', 'bundle', 'paper', got 'adam'"),
    (RUN + ["--l2", "0"], r"l2 \(lambda\): expected a finite number > 0, got 0"),
    (RUN + ["--l2", "big"], "--l2: expected a positive number or one of auto, reach, gradient, prior, norm, got 'big'"),
    (RUN[:-1] + ["0"], "restarts: expected an integer >= 1, got 0"),
    (RUN + ["--steps", "0"], "steps: expected an integer >= 1, got 0"),
    (RUN + ["--tol", "-1"], r"tol: expected a finite number >= 0.0, got -1.0"),
    (RUN + ["--device", "cuda:9"], "device: expected a device this machine has, got 'cuda:9'"),
    (RUN + ["--class-names", "{dir}/names2.txt"], "--class-names: expected one name per output .3. or per selected"),
    (RUN + ["--class-names", "{dir}/nope.txt"], "--class-names: expected a text file, got .* which does not exist"),
    (RUN + ["--weights", "{dir}/w.pt"], "weights= is read only for a 'package.module:factory' model"),
    ([a if a != "{m}" else "{dir}/nope.pt" for a in RUN], "model: expected an existing file/folder .* does not exist"),
    ([a if a != "{m}" else "tests.test_cli:factory" for a in RUN] + ["--weights", "{dir}/w_bad.pt"],
     "weights .* cannot be read as a state dict"),
    (["layers", "{dir}/k1", "--input-shape", "4,10"], r"layer 'd' lists weight 'd_W', but the file has no such"),
    (["layers", "{dir}/w.pt", "--input-shape", "4,20"], "is not a TorchScript archive .* 'package.module:factory'"),
    (["layers", "{dir}/k2", "--input-shape", "4,10"], r"output_dim"),
    (["layers", "{dir}/k3", "--input-shape", "4,10"], r"model.h5"),
    (["report", "{dir}/missing.h5"], "RESULT: expected a result.h5 file, got .* which does not exist"),
]


@pytest.mark.parametrize("argv, message", MISTAKES, ids=[str(i) for i in range(len(MISTAKES))])
def test_every_mistake_is_one_line_and_exit_2(tmp_path_factory, refused, argv, message):
    import re

    d = _files(tmp_path_factory.mktemp("files"))
    out = d / "out"
    err = refused([a.format(m=d / "m.pt", out=out, dir=d) for a in argv], out)  # nothing was written
    assert re.search(message, err), err


def test_debug_shows_the_traceback(tmp_path):
    from deepresolve.cli import main
    from deepresolve.errors import ArgumentError

    with pytest.raises(ArgumentError, match="--input-shape"):
        main(["--debug", "layers", str(tmp_path / "m.pt"), "--input-shape", "4;20"])


def test_a_corrected_rerun_after_a_refused_one_works(tmp_path, capsys):
    from deepresolve.cli import main

    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    args = ["run", str(path), "--layer", "2", "--input-shape", "4,20", "--out", str(tmp_path / "o"), "--restarts", "2"]
    with pytest.raises(SystemExit) as info:
        main(args + ["--optimizer", "adam"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "o" / "result.h5").exists() and not (tmp_path / "o" / "checkpoint").exists()


def test_channels_tsv_keeps_classes_with_repeated_names_apart(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    (tmp_path / "names.txt").write_text("same\nsame\nother\n")
    out = runner.invoke(app, ["run", str(path), "--layer", "2", "--input-shape", "4,20", "--out", str(tmp_path / "o"),
                              "--restarts", "3", "--class-names", str(tmp_path / "names.txt"), "--l2", "1"])
    assert out.exit_code == 0, out.output
    import pandas as pd

    table = pd.read_csv(tmp_path / "o" / "channels.tsv", sep="\t")
    res = dr.load(tmp_path / "o" / "result.h5")
    assert table["output"].tolist() == [c for c in (0, 1, 2) for _ in range(res.n_channels)]
    for c in (0, 1):
        rows = table[table.output == c].set_index("channel")
        np.testing.assert_allclose(rows.loc[res.channel_names, "ofiv"], res.ofiv[c], rtol=1e-6)
    assert not np.allclose(res.ofiv[0], res.ofiv[1])
