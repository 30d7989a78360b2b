"""Faults a user meets on the command line: every one is one line on stderr, exit status 2, nothing left behind.

Each case runs the real program (``python -m deepresolve``) in a subprocess, so exit status and stderr are what a
user sees. Output locations: a folder under a regular file, one that cannot be created, one another run holds;
a full disk (a file-size limit) during ``run`` and ``interactions``, after which the same command completes.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr
from tests.test_interactions import load_fixture

COMMANDS = {
    "run": ["run", "{m}", "--layer", "2", "--input-shape", "4,20", "--restarts", "2", "--l2", "1"],
    "interactions": ["interactions", "{m}", "--layer", "2", "--input-shape", "4,20", "--contexts", "8", "--top", "3",
                     "--word-length", "4"],
    "motifs": ["motifs", "{m}", "--jaspar", "JASPAR2016", "--matches", "1"],
    "demo": ["demo"],
}


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(4), nn.Flatten(), nn.Linear(6 * 4, 3))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.pt"
    torch.jit.script(_model().eval()).save(str(path))
    return path


@pytest.fixture(scope="module")
def logic_file(tmp_path_factory):
    """The committed XOR logic model (its motifs give the word scan something to find), as TorchScript."""
    case, model, _ = load_fixture("xor40")
    path = tmp_path_factory.mktemp("logic") / "xor40.pt"
    torch.jit.script(model).save(str(path))
    return path, case


def _cli(args, *, fsize=None, timeout=300):
    """Run the program; with ``fsize`` (bytes) no file it writes may grow past that (a full disk, as the OS says it)."""
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))\n" if fsize else ""
    code = limit + "from deepresolve.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def _one_line(proc):
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepresolve: error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


def _args(name, model_file, out):
    return [a.replace("{m}", str(model_file)) for a in COMMANDS[name]] + ["--out", str(out)]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_out_under_a_file_is_refused_before_any_work(tmp_path, model_file, name):
    (tmp_path / "afile").write_text("x")
    line = _one_line(_cli(_args(name, model_file, tmp_path / "afile" / "out")))
    assert "--out: expected a folder that can be created, got" in line and "which is under the file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_out_that_cannot_be_created_is_refused_before_any_work(model_file, name):
    line = _one_line(_cli(_args(name, model_file, "/proc/deepresolve-out")))
    assert "--out: expected a folder that can be created and written, got '/proc/deepresolve-out'" in line


def test_report_out_under_a_file_and_labels_of_another_result(tmp_path):
    dr.resolve(_model(), "2", input_shape=(4, 20), restarts=2, l2=1.0).save(tmp_path / "r.h5")
    (tmp_path / "afile").write_text("x")
    line = _one_line(_cli(["report", str(tmp_path / "r.h5"), "--out", str(tmp_path / "afile" / "report.html")]))
    assert "--out: expected a folder, got the file" in line
    np.save(tmp_path / "y.npy", np.ones((5, 7)))
    line = _one_line(_cli(["report", str(tmp_path / "r.h5"), "--labels", str(tmp_path / "y.npy"),
                           "--out", str(tmp_path / "rep.html")]))
    assert "--labels" in line and "expected 3 columns, one per class of the result, got 7" in line
    line = _one_line(_cli(["report", str(tmp_path), "--out", str(tmp_path / "rep.html")]))
    assert "RESULT: expected a file, got the folder" in line
    assert not (tmp_path / "rep.html").exists()


def test_a_second_run_on_an_out_that_a_live_run_holds_is_refused(tmp_path, model_file):
    out = tmp_path / "out"
    hold = textwrap.dedent(f"""
        import time
        from deepresolve._files import exclusive
        with exclusive({str(out)!r}, "--out"):
            print("held", flush=True)
            time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = _one_line(_cli(_args("run", model_file, out)))
        assert f"which a running deepresolve (process {holder.pid}) holds" in line
    finally:
        holder.kill()
        holder.wait()
    assert _cli(_args("run", model_file, out)).returncode == 0  # the killed holder left nothing stuck


@pytest.mark.parametrize("name", ["run", "interactions"])
def test_a_full_disk_is_one_line_and_the_same_command_then_completes(tmp_path, logic_file, name):
    path, case = logic_file
    args = [name, str(path), "--layer", case.layer, "--input-shape", f"4,{case.length}"]
    args += ["--restarts", "2", "--l2", "1"] if name == "run" else ["--contexts", "8", "--top", "4"]
    out = tmp_path / "out"
    line = _one_line(_cli(args + ["--out", str(out)], fsize=1500))
    assert "File too large while writing" in line
    done = _cli(args + ["--out", str(out)])
    assert done.returncode == 0, done.stderr[-2000:]
    reference = _cli(args + ["--out", str(tmp_path / "reference")])
    assert reference.returncode == 0
    if name == "run":
        a, b = dr.load(out / "result.h5"), dr.load(tmp_path / "reference" / "result.h5")
        fields = ("ofiv", "fivs")
    else:
        a, b = (dr.Interactions.load(p / "interactions.h5") for p in (out, tmp_path / "reference"))
        fields = ("values", "group_values")
    for field in fields:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_usage_errors_are_one_line(model_file, tmp_path):
    line = _one_line(_cli(_args("run", model_file, tmp_path / "o") + ["--restarts", "abc"]))
    assert line == "deepresolve: error: --restarts: expected an integer, got 'abc'"
    line = _one_line(_cli(_args("run", model_file, tmp_path / "o") + ["--restrts", "3"]))
    assert line.endswith("--restrts: expected an option of this command, got an unknown option; "
                         "did you mean --restarts?")
    line = _one_line(_cli(["run"]))
    assert line == "deepresolve: error: MODEL: expected a value, got none (see --help)"
    line = _one_line(_cli(["demo", "--seed", "-1", "--out", str(tmp_path / "d")]))
    assert "--seed: expected an integer >= 0, got -1" in line
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("name", ["motifs", "demo", "report"])
def test_a_full_disk_is_one_line_for_every_writing_command(tmp_path, model_file, name):
    if name == "report":
        dr.resolve(_model(), "2", input_shape=(4, 20), restarts=2, l2=1.0).save(tmp_path / "r.h5")
        args = ["report", str(tmp_path / "r.h5"), "--out", str(tmp_path / "rep" / "report.html")]
    else:
        args = _args(name, model_file, tmp_path / "out")
    line = _one_line(_cli(args, fsize=1500))
    assert "File too large while writing" in line
