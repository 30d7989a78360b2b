"""Runs that do not keep the FIMs (keep_fims=False): same summaries, maps only on disk, clear errors."""

import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.ascent import feature_ascent
from deepresolve.errors import ArgumentError, CheckpointError
from deepresolve.importance import fiv, summarize, summarize_fivs
from deepresolve.results import Result
from deepresolve.store import RunStore
from tests._factories import make_result


def conv_model(seed=0):
    """A map with a spatial axis (K = 6 channels x W = 10 positions at the input of module "2")."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(4, 6, 3, padding=1), nn.ReLU(), nn.Conv1d(6, 5, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(5 * 8, 4))


RUN = dict(input_shape=(4, 10), at="input", restarts=5, l2=0.5, batch_size=7)


@pytest.fixture(scope="module")
def full():
    return dr.resolve(conv_model(), "2", **RUN)


def test_dropping_the_fims_changes_no_summary(full, tmp_path):
    ck = tmp_path / "ck"
    lean = dr.resolve(conv_model(), "2", keep_fims=False, checkpoint=ck, **RUN)
    assert lean.fims is None and full.fims.shape == (4, 5, 6, 10)
    assert lean.params["keep_fims"] is False and full.params["keep_fims"] is True
    for name in ("fivs", "scores", "weights", "inconsistency", "bic", "n_components", "non_additive",
                 "consistent_sign", "ofiv", "steps", "trace"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name), err_msg=name)
    np.testing.assert_array_equal(lean.fivs, fiv(full.fims))  # the FIV of each row's map, reduced as it finished
    # the full maps went to the run store, bit for bit
    stored = np.zeros_like(full.fims).reshape(20, 6, 10)
    for chunk in ck.glob("chunk-*.npz"):
        with np.load(chunk) as z:
            stored[z["rows"]] = z["fims"]
    np.testing.assert_array_equal(stored.reshape(full.fims.shape), full.fims)
    # a rerun takes every row from the store (reduced chunk by chunk) and gives the same summaries again
    again = dr.resolve(conv_model(), "2", keep_fims=False, checkpoint=ck, **RUN)
    assert again.params["row_steps"] == 0 and again.fims is None
    np.testing.assert_array_equal(again.fivs, full.fivs)
    np.testing.assert_array_equal(again.ofiv, full.ofiv)
    # and a run that keeps the maps resumes from the same store with them
    kept = dr.resolve(conv_model(), "2", checkpoint=ck, **RUN)
    np.testing.assert_array_equal(kept.fims, full.fims)


def test_ascent_without_maps_gives_them_to_on_done_only():
    head = conv_model()[2:]
    seen = {}
    on_done = lambda finished: seen.update(zip(finished.rows, finished.maps.copy()))  # noqa: E731
    kept = feature_ascent(head, (6, 10), [1, 3], 3, 0.5, batch_size=4)
    lean = feature_ascent(head, (6, 10), [1, 3], 3, 0.5, batch_size=4, keep_fims=False, on_done=on_done)
    assert lean.fims is None and lean.fivs.shape == (2, 3, 6)
    np.testing.assert_array_equal(lean.fivs, kept.fivs)
    np.testing.assert_array_equal(lean.fivs, fiv(kept.fims.numpy()))
    np.testing.assert_array_equal(lean.objective, kept.objective)
    np.testing.assert_array_equal(np.stack([seen[r] for r in range(6)]), kept.fims.reshape(6, 6, 10).numpy())
    with pytest.raises(ArgumentError, match="keep_fims: expected one of True, False, got 'no'"):
        feature_ascent(head, (6, 10), [1], 2, 0.5, keep_fims="no")


def test_summaries_from_fivs_equal_those_from_fims():
    rng = np.random.default_rng(3)
    fims, scores = rng.normal(size=(3, 6, 8, 5)).astype(np.float32), rng.normal(size=(3, 6))
    a, b = summarize(fims, scores, seed=2), summarize_fivs(fiv(fims), scores, seed=2)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with pytest.raises(ArgumentError, match=r"^fivs: expected shape \(C, T, K\), got \(3, 6, 8, 5\)$"):
        summarize_fivs(fims, scores)
    with pytest.raises(ArgumentError,
                       match=r"^scores: expected shape \(C, T\) = \(3, 6\) to match fivs, got \(6, 3\)$"):
        summarize_fivs(fiv(fims), scores.T)


def test_a_result_without_fims_saves_loads_and_says_why_they_are_missing(tmp_path):
    result = make_result(W=7, fims=None, params={"l2": 1.0, "feature_shape": [16, 7], "keep_fims": False})
    assert result.n_positions == 7 and "W=7" in repr(result) and "(FIMs not kept)" in result.summary()
    path = result.save(tmp_path / "r.h5")
    back = Result.load(path)
    assert back.fims is None and back.n_positions == 7
    np.testing.assert_array_equal(back.ofiv, result.ofiv)
    with pytest.raises(ArgumentError, match=r"^result.fims: plotting FIMs needs the feature importance maps, but this "
                                            r"result has none: the run used keep_fims=False"):
        back.require_fims("plotting FIMs")
    kept = make_result(W=3)
    np.testing.assert_array_equal(kept.require_fims("x"), kept.fims)
    assert Result.load(kept.save(tmp_path / "k.h5")).fims.shape == kept.fims.shape


def test_keep_fims_must_be_a_bool(tmp_path):
    with pytest.raises(ArgumentError, match="keep_fims: expected one of True, False, got 0"):
        dr.resolve(conv_model(), "2", keep_fims=0, checkpoint=tmp_path / "ck", **RUN)
    assert not (tmp_path / "ck").exists()


def test_cli_run_without_fims_keeps_the_maps_in_the_store(tmp_path):
    from typer.testing import CliRunner

    from deepresolve.cli import app
    from tests.test_cli import tiny_model

    path = tmp_path / "m.pt"
    torch.jit.script(tiny_model().eval()).save(str(path))
    args = ["run", str(path), "--layer", "2", "--input-shape", "4,20", "--restarts", "3", "--classes", "0,2",
            "--l2", "1"]
    lean = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "lean"), "--no-keep-fims"])
    kept = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "kept")])
    assert lean.exit_code == 0 and kept.exit_code == 0, lean.output + kept.output
    a, b = dr.load(tmp_path / "lean" / "result.h5"), dr.load(tmp_path / "kept" / "result.h5")
    assert a.fims is None and b.fims.shape == (2, 3, 6, 4)
    np.testing.assert_array_equal(a.ofiv, b.ofiv)
    assert sorted((tmp_path / "lean" / "checkpoint").glob("chunk-*.npz"))
    assert not (tmp_path / "kept" / "checkpoint").exists()


def test_maps_of_a_class_read_back_from_the_store_equal_the_kept_ones(full, tmp_path):
    ck = tmp_path / "ck"
    lean = dr.resolve(conv_model(), "2", keep_fims=False, checkpoint=ck, checkpoint_every=0, class_names=list("abcd"),
                      **RUN)
    assert lean.params["checkpoint"] == str(ck.resolve()) and len(list(ck.glob("chunk-*.npz"))) > 1
    back = Result.load(lean.save(tmp_path / "r.h5"))  # the store's folder travels in params
    for c in range(4):
        maps = back.fims_of(c)
        assert maps.shape == (5, 6, 10) and maps.dtype == np.float32
        np.testing.assert_array_equal(maps, full.fims[c])
        np.testing.assert_array_equal(full.fims_of(c), full.fims[c])  # kept: from memory, no store needed
    np.testing.assert_array_equal(lean.fims_of("c"), full.fims[2])
    # a store that moved: the old folder is named in the error, the new one is read when given
    moved = ck.rename(tmp_path / "moved")
    with pytest.raises(CheckpointError, match=r"^checkpoint: expected the folder of a run store .*ck', which does "
                                              r"not exist$"):
        lean.fims_of(0)
    np.testing.assert_array_equal(lean.fims_of(3, checkpoint=moved), full.fims[3])


def test_reading_maps_back_fails_clearly(full, tmp_path):
    nowhere = dr.resolve(conv_model(), "2", keep_fims=False, **RUN)
    with pytest.raises(ArgumentError, match=r"^checkpoint: this result's run kept no feature importance maps "
                                            r"\(keep_fims=False\) and wrote no run store"):
        nowhere.fims_of(0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty', which holds no settings.json"):
        nowhere.fims_of(0, checkpoint=tmp_path / "empty")
    # the store of another run (other classes): refused, naming what differs
    other = tmp_path / "other"
    dr.resolve(conv_model(), "2", classes=[0, 1], keep_fims=False, checkpoint=other, **RUN)
    with pytest.raises(CheckpointError,
                       match=r"written by another run \(classes: store \[0, 1\], result \[0, 1, 2, 3\]\)"):
        full.fims_of(0, checkpoint=other)
    # an unfinished store: the missing rows are named
    ck = tmp_path / "ck"
    lean = dr.resolve(conv_model(), "2", keep_fims=False, checkpoint=ck, checkpoint_every=0, **RUN)
    with np.load(sorted(ck.glob("chunk-*.npz"))[-1]) as z:
        lost = z["rows"].tolist()
    sorted(ck.glob("chunk-*.npz"))[-1].unlink()
    cls = lost[0] // 5
    with pytest.raises(CheckpointError, match=rf"expected the maps of rows \[{lost[0]}.*the run has not finished them"):
        lean.fims_of(cls)
    with pytest.raises(ArgumentError, match=r"^rows: expected row indices in \[0, 19\], got 20$"):
        RunStore.open(ck).maps([20])
    with pytest.raises(ArgumentError, match=r"^rows: expected distinct row indices, got 3 twice$"):
        RunStore.open(ck).maps([3, 3])
