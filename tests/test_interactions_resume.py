"""Long runs of the interaction analysis: ``interactions(..., checkpoint=)`` writes every stage as it finishes (the
pairs chunk by chunk), an interrupted run (an exception, a real ``kill -9``, the CLI) resumes with only the missing
chunks evaluated and gives the uninterrupted result to the last bit, and another run's checkpoint is refused.

The model is the committed set I fixture (3 motif groups, 32 channels: 39 pairs at 16 contexts); the chunks are
made small (5 pairs) so that the pair stage has 8 of them.
"""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import deepresolve.interaction_analysis.analysis as analysis
import deepresolve.interaction_analysis.effects as effects
from deepresolve.cli import app
from deepresolve.errors import CheckpointError
from deepresolve.interaction_analysis import interactions
from deepresolve.paper.fixtures import load_fixture
from deepresolve.paper.logic import hand_built

KW = dict(input_shape=(4, 40), contexts=16, seed=0, jaspar=None)
#: Rows per chunk of pairs: 5 pairs x 16 contexts x 4 rows.
CHUNK_ROWS = 5 * 16 * 4
FIELDS = ("tables", "values", "pvalues", "qvalues", "qvalues_all", "main", "group_tables", "group_values",
          "group_pvalues", "group_qvalues", "group_main", "pairs", "group_pairs", "group_words", "on_levels", "groups")


def set_one():
    return load_fixture("set_one")[0]


@pytest.fixture(scope="module", autouse=True)
def _one_thread_small_chunks(one_thread):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(effects, "PAIR_CHUNK_ROWS", CHUNK_ROWS)
        yield


_EVALUATE = effects.Evaluator.__call__


class Counter:
    """Counts the Evaluator's calls and the rows of each; raises at call ``fail`` (1-based)."""

    def __init__(self, monkeypatch, fail=None):
        self.rows, self.fail = [], fail
        real = _EVALUATE

        def counted(ev, ctx, on, drop):
            if self.fail is not None and len(self.rows) + 1 == self.fail:
                raise RuntimeError("interrupted")
            self.rows.append(len(ctx))
            return real(ev, ctx, on, drop)
        monkeypatch.setattr(effects.Evaluator, "__call__", counted)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run without a checkpoint, and the rows of each Evaluator call (the pair stage's last)."""
    with pytest.MonkeyPatch.context() as mp:
        counter = Counter(mp)
        res = interactions(set_one(), "pool1", **KW)
    return res, counter.rows


def _n_chunks(res):
    return len(effects.pair_chunks(len(res.pairs) + len(res.group_pairs), KW["contexts"], len(res.classes)))


def _assert_same(res, ref):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(res, name), getattr(ref, name), err_msg=name)  # bit for bit, NaN = NaN


def _no_word_scan(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the players were found again")
    monkeypatch.setattr(analysis, "find_players", fail)


def test_an_interrupted_run_resumes_with_the_missing_chunks_only(tmp_path, monkeypatch, reference):
    ref, ref_rows = reference
    n_chunks, k = _n_chunks(ref), 3
    assert n_chunks == 8  # 39 pairs, 5 per chunk
    ck = tmp_path / "ck"
    Counter(monkeypatch, fail=len(ref_rows) - n_chunks + k + 1)  # the (k + 1)-th chunk of pairs fails
    with pytest.raises(RuntimeError, match="interrupted"):
        interactions(set_one(), "pool1", checkpoint=ck, **KW)
    written = sorted(p.name for p in ck.iterdir())
    assert written == ["main-effects.npz", "pairs-000000.npz", "pairs-000001.npz", "pairs-000002.npz",
                       "players.npz", "settings.json", "strength.npz"]

    _no_word_scan(monkeypatch)  # the players (word scan), strength and main effects are read back
    counter = Counter(monkeypatch)
    res = interactions(set_one(), "pool1", checkpoint=ck, **KW)
    assert counter.rows == ref_rows[-(n_chunks - k):]  # the 5 missing chunks: 1,536 rows of the run's 3,904
    _assert_same(res, ref)

    counter.rows.clear()  # a finished checkpoint: nothing is evaluated again, the result is the same
    _assert_same(interactions(set_one(), "pool1", checkpoint=ck, **KW), ref)
    assert counter.rows == []


def test_a_damaged_chunk_is_evaluated_again_with_a_warning(tmp_path, monkeypatch, reference):
    ref, ref_rows = reference
    ck = tmp_path / "ck"
    interactions(set_one(), "pool1", checkpoint=ck, **KW)
    (ck / "pairs-000004.npz").write_bytes(b"PK\x03\x04 damaged")
    counter = Counter(monkeypatch)
    with pytest.warns(RuntimeWarning, match="pairs-000004.npz' cannot be read"):
        res = interactions(set_one(), "pool1", checkpoint=ck, **KW)
    assert counter.rows == [ref_rows[-_n_chunks(ref) + 4]]
    _assert_same(res, ref)


# A real kill -9 during the pair stage: each chunk of pairs announces itself and takes half a second, and the
# process is killed while the fourth is evaluated (three are on disk).
_CHILD = textwrap.dedent("""
    import sys, time
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {root!r})
    import deepresolve.interaction_analysis.analysis as analysis
    import deepresolve.interaction_analysis.effects as effects
    from tests.test_interactions_resume import CHUNK_ROWS, KW, set_one

    effects.PAIR_CHUNK_ROWS = CHUNK_ROWS
    real = analysis.pair_tables

    def slow(ev, pairs):
        print("chunk", flush=True)
        time.sleep(0.5)
        return real(ev, pairs)
    analysis.pair_tables = slow
    analysis.interactions(set_one(), "pool1", checkpoint={ck!r}, **KW)
    print("finished", flush=True)
""")


def test_a_run_killed_in_the_pair_stage_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, reference):
    ref, ref_rows = reference
    ck = tmp_path / "ck"
    code = _CHILD.format(root=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ck=str(ck))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        for _ in range(4):
            line = proc.stdout.readline()
            assert line == "chunk\n", line + proc.stderr.read()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in ck.glob("pairs-*")) == ["pairs-000000.npz", "pairs-000001.npz", "pairs-000002.npz"]

    _no_word_scan(monkeypatch)
    counter = Counter(monkeypatch)
    res = interactions(set_one(), "pool1", checkpoint=ck, **KW)
    assert counter.rows == ref_rows[-(_n_chunks(ref) - 3):]
    _assert_same(res, ref)


def test_another_runs_checkpoint_is_refused_naming_the_setting(tmp_path, monkeypatch):
    model, ck = hand_built("and"), tmp_path / "ck"
    first = interactions(model, "pool1", checkpoint=ck, **KW)
    other = hand_built("and")
    with torch.no_grad():
        other.conv1.bias[0] += 0.5

    def refused_before_any_work(*args, **kwargs):
        raise AssertionError("work began")
    with monkeypatch.context() as mp:
        mp.setattr(analysis, "find_players", refused_before_any_work)
        for changed, setting in (({"seed": 1}, "seed: stored 0, now 1"), ({"contexts": 32}, "contexts: stored 16"),
                                 ({"motif_words": "filters"}, 'motif_words: stored "scan", now "filters"')):
            with pytest.raises(CheckpointError, match=f"written by another run \\({setting}"):
                interactions(model, "pool1", checkpoint=ck, **{**KW, **changed})
        with pytest.raises(CheckpointError, match=r"\(model: stored \"[0-9a-f]{16}"):
            interactions(other, "pool1", checkpoint=ck, **KW)
        # the batch size, the significance level and the JASPAR matching change none of the stages: resumed
        again = interactions(model, "pool1", checkpoint=ck, **{**KW, "batch_size": 7, "significance": 0.01})
    np.testing.assert_array_equal(again.values, first.values)
    assert again.params["significance"] == 0.01


def test_the_cli_resumes_from_its_checkpoint_and_removes_it(tmp_path, monkeypatch, reference):
    ref, ref_rows = reference
    out = tmp_path / "o"
    args = ["interactions", "tests.test_interactions_resume:set_one", "--layer", "pool1", "--input-shape", "4,40",
            "--contexts", "16", "--jaspar", "none", "--out", str(out)]
    with monkeypatch.context() as mp:
        Counter(mp, fail=len(ref_rows) - _n_chunks(ref) + 2 + 1)  # stopped after two chunks of pairs
        stopped = CliRunner().invoke(app, args)
    assert stopped.exit_code != 0 and isinstance(stopped.exception, RuntimeError)
    assert len(list((out / "checkpoint").glob("pairs-*.npz"))) == 2

    _no_word_scan(monkeypatch)
    counter = Counter(monkeypatch)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert counter.rows == ref_rows[-(_n_chunks(ref) - 2):]
    assert not (out / "checkpoint").exists() and (out / "interactions.h5").exists()
    from deepresolve.results import Interactions

    _assert_same(Interactions.load(out / "interactions.h5"), ref)


def test_resolve_checkpoints_its_interaction_analysis_in_a_subfolder(tmp_path, monkeypatch):
    import deepresolve as dr

    ck = tmp_path / "ck"
    run = dict(input_shape=(4, 40), restarts=2, l2=1.0, steps=5, checkpoint=ck, interactions={"contexts": 16})
    first = dr.resolve(hand_built("and"), "pool1", **run)
    assert (ck / "interactions" / "settings.json").exists() and list((ck / "interactions").glob("pairs-*.npz"))
    _no_word_scan(monkeypatch)
    counter = Counter(monkeypatch)
    again = dr.resolve(hand_built("and"), "pool1", **run)  # both resumed: the ascent's rows and the analysis
    assert counter.rows == []
    np.testing.assert_array_equal(again.interactions.group_tables, first.interactions.group_tables)
