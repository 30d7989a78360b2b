"""Tests of deepresolve.report: the HTML file's contents, its atomic write, bad inputs, and the page
as headless Chromium renders it (no console errors, no broken images, sorting works, a screenshot).

Chromium is driven over the Chrome DevTools protocol on a pipe (``--remote-debugging-pipe``), so no
extra Python package and no network are needed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import _factories
import numpy as np
import pandas as pd
import pytest

from deepresolve.errors import ArgumentError
from deepresolve.results import Interactions, Result
from deepresolve.viz.report import normalise_motif_matches, write_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# --------------------------------------------------------------------------- fixtures

def make_result(C: int = 4, T: int = 6, K: int = 16, W: int = 3, S: int = 40, seed: int = 0) -> Result:
    """A random but internally consistent result (non-additive channels only where n_components > 1)."""
    r = _factories.make_result(C, T, K, W, S=S, seed=seed, classes=np.arange(C) * 3,
                               class_names=[f"TF{c}<&>" for c in range(C)], layer="conv2",
                               params={"l2": 0.01, "optimizer": "adam", "restarts": T})
    r.ofiv = r.ofiv * 2
    return r


def make_interactions(result: Result, seed: int = 0) -> Interactions:
    """Random but consistent interactions for ``result``: channel pairs among channels 0-5, groups of two channels,
    group pairs among groups 0-3; tables satisfy t11 - t10 - t01 + t00 = value; pair 0 is significant."""
    rng = np.random.default_rng(seed)
    C, K = result.n_classes, result.n_channels
    pairs = np.array([(i, j) for i in range(6) for j in range(i + 1, 6)])
    group_pairs = np.array([(i, j) for i in range(4) for j in range(i + 1, 4)])

    def stats(P):
        values = rng.normal(size=(C, P))
        pvalues = rng.uniform(0.02, 1, size=(C, P))
        pvalues[:, 0] = 1e-6
        tables = rng.uniform(size=(C, P, 2, 2))
        tables[..., 1, 1] = values + tables[..., 1, 0] + tables[..., 0, 1] - tables[..., 0, 0]
        return values, pvalues, tables

    values, pvalues, tables = stats(len(pairs))
    group_values, group_pvalues, group_tables = stats(len(group_pairs))
    return Interactions(classes=np.asarray(result.classes), class_names=list(result.class_names),
                        channel_names=list(result.channel_names), groups=np.arange(K) // 2,
                        main=rng.normal(size=(C, K)), pairs=pairs, values=values, pvalues=pvalues, tables=tables,
                        group_main=rng.normal(size=(C, K // 2)), group_pairs=group_pairs, group_values=group_values,
                        group_pvalues=group_pvalues, group_tables=group_tables, on_levels=np.ones(K),
                        words=np.zeros((K, 4, 6)),
                        group_words=np.eye(4)[rng.integers(0, 4, (K // 2, 6))].transpose(0, 2, 1),
                        layer=result.layer,
                        params={"alpha": 0.01, "contexts": 16, "scale": "probability", "jaspar": "JASPAR2024"},
                        group_pwms=rng.dirichlet(np.ones(4), (K // 2, 6)).transpose(0, 2, 1),
                        group_copies=np.eye(K // 2, dtype=bool),
                        group_matches=pd.DataFrame({"group": [0, 0, 1], "rank": [1, 2, 1],
                                                    "target": ["MA0139.2 CTCF", "MA1102.3 CTCFL", "MA0035.5 Gata1"],
                                                    "p_value": [1e-6, 1e-4, 0.01], "q_value": [1e-3, 0.03, 0.5],
                                                    "offset": [0, 1, 0], "overlap": [6, 5, 6],
                                                    "strand": ["+", "-", "+"]}))


@pytest.fixture(scope="module")
def result4() -> Result:
    """With interactions, so that the report's interaction figures are rendered and checked too."""
    r = make_result()
    r.interactions = make_interactions(r)
    return r


@pytest.fixture(scope="module")
def pwms() -> np.ndarray:
    return np.random.default_rng(3).dirichlet(np.full(4, 0.4), size=(16, 6)).transpose(0, 2, 1)


@pytest.fixture(scope="module")
def matches() -> pd.DataFrame:
    return pd.DataFrame({"channel": [0, 0, 5, 7], "target": ["GATA1", "GATA2", "CTCF", "REST"],
                         "p-value": [1e-6, 1e-3, 2e-4, 0.01]})


@pytest.fixture(scope="module")
def report4(tmp_path_factory, result4, pwms, matches) -> Path:
    labels = (np.random.default_rng(1).random((300, 4)) > 0.6).astype(float)
    out = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    return write_report(result4, out, pwms=pwms, motif_matches=matches, labels=labels)


# --------------------------------------------------------------------------- Chromium over the DevTools pipe

@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Chromium; installs Debian's package when missing and running as root, else skips."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=900, check=False)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium is not installed and cannot be installed here (needs root and apt-get): "
                    "`apt-get install -y chromium` to run the browser checks")
    return found


class DevTools:
    """Minimal Chrome DevTools protocol client over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # runs in the child: the protocol expects exactly fds 3 and 4
            read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)  # out of the way of 3 and 4
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-quic", "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
             "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            # subprocess closes unlisted fds after preexec_fn has run: keep 3 and 4 as wired there
            pass_fds=(to_child_r, from_child_w, 3, 4), preexec_fn=wire,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium over the DevTools pipe")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe (exit code {self.proc.poll()})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)
        self._log.close()


def check_page(binary: str, page: Path, workdir: Path, screenshot: Path | None = None,
               actions: str | None = None) -> dict:
    """Load ``page`` in headless Chromium and report console errors, exceptions and broken images.

    Returns a dict with ``console_errors`` (console.error/assert calls, uncaught exceptions and
    browser log errors such as failed resource loads), ``broken_images`` (img elements that did
    not decode), ``n_images``, ``title`` and ``actions`` (the value of the ``actions`` JavaScript
    expression, evaluated after load).
    """
    tools = DevTools(binary, workdir / "profile", workdir / "chromium.log")
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            tools.send(f"{domain}.enable", session=session)
        tools.send("Emulation.setDeviceMetricsOverride",
                   {"width": 1360, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        tools.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        tools.wait_for("Page.loadEventFired", timeout=60)

        def evaluate(expression: str):
            reply = tools.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                    "awaitPromise": True}, session=session)
            if "exceptionDetails" in reply:
                raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
            return reply["result"].get("value")

        # let decoding finish, then ask every <img> whether it produced pixels
        evaluate("Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")
        broken = evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                          ".map(i => i.alt || i.src.slice(0, 60))")
        info = {"n_images": evaluate("document.images.length"), "title": evaluate("document.title"),
                "broken_images": broken,
                "actions": evaluate(actions) if actions else None}
        if screenshot is not None:
            height = tools.send("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
            shot = tools.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": 1360, "height": min(float(height), 9000.0), "scale": 1}},
                session=session, timeout=60)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        evaluate("1")  # flush: events raised so far are now in tools.events
    finally:
        tools.close()
    errors = []
    for event in tools.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append("console." + params["type"] + ": " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append("log: " + params["entry"].get("text", ""))
    info["console_errors"] = errors
    return info


PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_checker_flags_console_errors_and_broken_images(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title><link rel='icon' href='data:,'></head><body>"
        f"<img alt='good' src='data:image/png;base64,{PNG_1PX}'>"
        "<img alt='corrupt' src='data:image/png;base64,iVBORw0KGgoAAAAAAAAA'>"
        "<img alt='missing' src='does-not-exist.png'>"
        "<script>console.error('deliberate console error'); undefinedFunction();</script>"
        "</body></html>")
    info = check_page(chromium, page, tmp_path)
    assert info["n_images"] == 3
    assert sorted(info["broken_images"]) == ["corrupt", "missing"]
    text = "\n".join(info["console_errors"])
    assert "deliberate console error" in text
    assert "undefinedFunction" in text
    assert any(e.startswith("log:") for e in info["console_errors"])  # the failed load of does-not-exist.png


def test_checker_passes_a_clean_page(chromium, tmp_path):
    page = tmp_path / "clean.html"
    page.write_text("<!DOCTYPE html><html><head><title>clean</title><link rel='icon' href='data:,'></head><body>"
                    f"<img alt='good' src='data:image/png;base64,{PNG_1PX}'><script>console.log('fine')</script>"
                    "</body></html>")
    info = check_page(chromium, page, tmp_path)
    assert info == {"n_images": 1, "title": "clean", "broken_images": [], "actions": None, "console_errors": []}


SORT_ACTION = """
(() => {
  const table = document.getElementById('class-index');
  const col = Array.from(table.tHead.rows[0].cells).findIndex(th => th.textContent === 'output');
  const read = () => Array.from(table.tBodies[0].rows).map(r => Number(r.cells[col].textContent));
  table.tHead.rows[0].cells[col].click();
  const up = read();
  table.tHead.rows[0].cells[col].click();
  const down = read();
  const box = document.querySelector('input.filter[data-table="class-index"]');
  box.value = 'TF2';
  box.dispatchEvent(new Event('input'));
  const visible = Array.from(table.tBodies[0].rows).filter(r => r.style.display !== 'none').length;
  return {up, down, visible};
})()
"""


def test_report_renders_in_chromium_without_errors(chromium, report4, tmp_path):
    shot = ARTIFACTS / "report_4_classes.png"
    info = check_page(chromium, report4, tmp_path, screenshot=shot, actions=SORT_ACTION)
    assert info["console_errors"] == []
    assert info["broken_images"] == []
    html = report4.read_text()
    assert info["n_images"] == html.count("<img ") >= 10
    assert info["title"].startswith("DeepResolve report")
    assert info["actions"]["up"] == [0, 3, 6, 9]
    assert info["actions"]["down"] == [9, 6, 3, 0]
    assert info["actions"]["visible"] == 1
    assert shot.stat().st_size > 50_000


def test_large_report_renders_in_chromium(chromium, tmp_path):
    result = make_result(C=919, T=3, K=480, W=2, S=20, seed=5)
    out = write_report(result, tmp_path / "big.html", max_class_sections=2)
    info = check_page(chromium, out, tmp_path, screenshot=ARTIFACTS / "report_919_classes.png")
    assert info["console_errors"] == []
    assert info["broken_images"] == []
    html = out.read_text()
    assert html.count('<section id="class-') == 2
    assert html.count('href="#class-') == 2 + 1  # index links + the nav link
    assert "919 classes were analysed" in html
    # the class index lists every class
    index = html[html.index('id="class-index"'):]
    index = index[: index.index("</table>")]
    assert index.count("<tr>") == 919 + 1


# --------------------------------------------------------------------------- contents without a browser

def test_report_is_self_contained(report4):
    html = report4.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # nothing is fetched from anywhere: every src is inline data, no external stylesheet or script
    assert re.findall(r'src="(?!data:)', html) == []
    assert "<script src" not in html and "stylesheet" not in html
    assert "http://" not in html and "https://" not in html
    # figures are embedded PNGs that decode to PNG bytes
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 10
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)


def test_report_contents(report4, result4):
    html = report4.read_text()
    # one section per class, names escaped
    assert html.count('<section id="class-') == 4
    assert "TF0&lt;&amp;&gt;" in html and "TF0<&>" not in html
    # parameters and package versions
    for text in ("optimizer", "adam", "numpy", "torch", "deepresolve", "matplotlib"):
        assert text in html
    # motif matches: best match first, three per channel at most, p-value column
    assert "GATA1 (1e-06), GATA2 (0.001)" in html
    assert "JASPAR matches (p)" in html
    # similarity views with the label correlation present
    assert 'alt="similarity matrices"' in html and 'alt="cluster panels"' in html
    # non-additive table lists exactly the non-additive (class, channel) pairs
    table = html[html.index('id="nonadditive-channels"'):]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") - 1 == int(result4.non_additive.sum())
    # sortable tables carry numeric sort keys
    assert 'class="sortable"' in html and "data-sort=" in html
    # motif groups: one row per group with its logo and JASPAR matches
    groups = html[html.index('id="motif-groups"'):]
    groups = groups[: groups.index("</section>")]
    assert groups.count('alt="logo of group') == result4.interactions.n_groups
    assert "MA0139.2 CTCF (p=1e-06, q=0.001); MA1102.3 CTCFL (p=0.0001, q=0.03)" in groups
    # feature interactions: a heatmap and the truth tables in every class section, the ensemble caption says so
    assert html.count('alt="interaction heatmap of') == html.count('alt="truth tables of') == 4
    assert "Lines above them join the top significant interacting channel pairs" in html


def test_report_without_interactions_has_no_interaction_figures(tmp_path):
    html = write_report(make_result(C=2, K=8), tmp_path / "plain.html").read_text()
    assert "interaction heatmap" not in html and "Feature interactions" not in html


def test_one_class_report(tmp_path):
    result = make_result(C=1, K=8)
    out = write_report(result, tmp_path / "one.html")
    html = out.read_text()
    assert html.count('<section id="class-') == 1
    assert "One class only" in html


def test_write_is_atomic(tmp_path, result4, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("previous report")
    import deepresolve.viz.report as report

    def fail(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report, "_class_section", fail)
    with pytest.raises(RuntimeError, match="figure failed"):
        write_report(result4, out)
    assert out.read_text() == "previous report"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temp file left behind


def test_section_cap_prefers_non_additive_classes(tmp_path):
    result = make_result(C=6, K=8)  # classes 0, 2, 4 have non-additive channels
    html = write_report(result, tmp_path / "cap.html", max_class_sections=2).read_text()
    ids = re.findall(r'<section id="class-(\d+)"', html)
    assert ids == ["0", "2"]
    assert "only 2 get a section" in html


def test_precomputed_similarity_is_used(tmp_path, result4):
    sim = np.eye(4)
    html = write_report(result4, tmp_path / "s.html", similarity={"class_similarity": sim},
                        max_class_sections=0).read_text()
    assert 'alt="similarity matrices"' in html
    assert html.count('<section id="class-') == 0


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_class_sections": -1}, ArgumentError, r"^max_class_sections: expected an integer >= 0, got -1$"),
    ({"max_class_sections": 2.0}, ArgumentError, r"^max_class_sections: expected an integer, got float 2.0$"),
    ({"pwms": np.zeros((3, 4, 5))}, ArgumentError, r"pwms: expected shape \(K=16"),
    ({"motif_matches": pd.DataFrame({"channel": [0], "p-value": [0.1]})}, ArgumentError, "target"),
    ({"motif_matches": pd.DataFrame({"channel": [99], "name": ["X"], "pvalue": [0.1]})}, ArgumentError,
     r"^motif_matches: expected channel indices in \[0, 15\], got \[99\]$"),
    ({"motif_matches": pd.DataFrame({"channel": ["nope"], "name": ["X"], "p": [0.1]})}, ArgumentError,
     r"^motif_matches: expected channel names of the result \(ch0, .*\), got \['nope'\]$"),
    ({"motif_matches": [1, 2]}, ArgumentError, "DataFrame"),
    ({"labels": np.zeros((10, 2))}, ArgumentError, "labels: expected 4 columns"),
    ({"labels": np.zeros(10)}, ArgumentError, r"labels: expected an \(N, C\)"),
    ({"similarity": {"class_similarity": np.eye(3)}}, ArgumentError, r"similarity\['class_similarity'\]"),
])
def test_bad_inputs_raise(tmp_path, result4, kwargs, error, match):
    with pytest.raises(error, match=match):
        write_report(result4, tmp_path / "bad.html", **kwargs)
    assert not (tmp_path / "bad.html").exists()


def test_bad_result_and_path(tmp_path, result4):
    with pytest.raises(ArgumentError, match="^result: expected a deepresolve.results.Result, got dict$"):
        write_report({"ofiv": 1}, tmp_path / "x.html")
    with pytest.raises(ArgumentError, match="^out_path: expected a file path, got the directory"):
        write_report(result4, tmp_path)
    with pytest.raises(ArgumentError, match="^out_path: expected a str or Path, got int$"):
        write_report(result4, 42)


def _dense_model(n_outputs: int):
    from torch import nn

    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, n_outputs))


def test_model_with_another_number_of_outputs_is_refused(tmp_path, monkeypatch):
    # the result was computed on a 4-output model; a 6-output model's weight rows belong to other classes
    result = _factories.make_result(C=4, K=8, params={"n_outputs": 4})
    with pytest.raises(ArgumentError, match=r"^model: expected a last layer with 4 outputs \(the model the result was "
                                            r"computed on\), got one with 6$"):
        write_report(result, tmp_path / "bad.html", model=_dense_model(6))
    assert not (tmp_path / "bad.html").exists()
    with pytest.raises(ArgumentError, match=r"^model: expected a torch nn.Module, got str$"):
        write_report(result, tmp_path / "bad.html", model="model.pt")
    from deepresolve.viz import report

    drawn, panels = {}, report.plot.similarity_panels
    monkeypatch.setattr(report.plot, "similarity_panels", lambda m, *a, **k: drawn.update(m) or panels(m, *a, **k))
    model = _dense_model(4)
    write_report(result, tmp_path / "ok.html", model=model, max_class_sections=0)
    w = model[2].weight.detach().numpy().astype(float)
    unit = w / np.linalg.norm(w, axis=1, keepdims=True)
    np.testing.assert_allclose(drawn["weight_cosine"], unit @ unit.T, atol=1e-6)


def test_motif_matches_from_tomtom_table():
    """The table of deepresolve.motifs.tomtom_matches (query, target, p_value, q_value, ...) is accepted as is."""
    df = pd.DataFrame({"query": ["ch1", "ch1", "ch0"], "target": ["MA0139.1 CTCF", "MA0035.4 Gata1", "MA0007.3 Ar"],
                       "p_value": [1e-4, 1e-2, 0.3], "q_value": [1e-3, 0.05, 0.9], "rank": [1, 2, 1]})
    out = normalise_motif_matches(df, ["ch0", "ch1", "ch2"])
    assert out["k"].tolist() == [0, 1, 1] and out["target"].tolist()[1] == "MA0139.1 CTCF"
    numbered = df.assign(query=["1", "1", "0"])
    assert normalise_motif_matches(numbered, ["a", "b", "c"])["k"].tolist() == [0, 1, 1]


def test_motif_matches_by_channel_name():
    df = pd.DataFrame({"Channel": ["b", "a", "b"], "Target_ID": ["M2", "M1", "M3"], "p-value": [0.2, 0.1, 0.01]})
    out = normalise_motif_matches(df, ["a", "b"])
    assert out["k"].tolist() == [0, 1, 1]
    assert out["target"].tolist() == ["M1", "M3", "M2"]  # per channel, best p first
