"""Feature interactions in the product: ``resolve(..., interactions=)``, saving them with the result,
the summary and ``summary.tsv`` columns, the CLI, and the Fig 2 marking of interacting pairs.

The model is the hand-built XOR head of :func:`deepresolve.paper.logic.hand_built` ("relu": the piecewise-linear
form whose XOR the paper's ascent cannot see), whose truth table is known exactly: [[0, 1], [1, 0]].
"""

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import deepresolve as dr
from deepresolve.cli import app
from deepresolve.errors import ArgumentError
from deepresolve.paper.logic import hand_built
from deepresolve.results import top_pairs

runner = CliRunner()


def xor_model():
    return hand_built("relu")


@pytest.fixture(scope="module")
def xor_result():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return dr.resolve(xor_model(), "pool1", input_shape=(4, 40), restarts=3, l2=1.0, seed=0,
                          channel_names=["A", "B"], class_names=["A XOR B"], interactions={"contexts": 48})
    finally:
        torch.set_num_threads(old)


def test_resolve_attaches_the_same_analysis_as_a_separate_call(xor_result):
    ix = xor_result.interactions
    assert isinstance(ix, dr.Interactions)
    assert ix.classes.tolist() == xor_result.classes.tolist() and ix.class_names == ["A XOR B"]
    assert ix.channel_names == ["A", "B"] and ix.params["seed"] == 0 and ix.params["contexts"] == 48
    np.testing.assert_allclose(ix.truth_table(0, 0, 1), [[0, 1], [1, 0]], atol=0.08)  # analytic XOR
    alone = dr.interactions(xor_model(), "pool1", input_shape=(4, 40), contexts=48, seed=0)
    np.testing.assert_array_equal(ix.values, alone.values)
    np.testing.assert_array_equal(ix.group_tables, alone.group_tables)


def test_resolve_keeps_its_batch_size_to_the_ascent():
    # resolve's batch_size counts (class, restart) rows; passed on, batch_size=2 made the word scan write one k-mer
    # per pass (16,384 passes at the default word length of a 40-bp input). The analysis takes its own from the dict
    model = xor_model()
    sizes = []
    model.conv1.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))  # copied with the model
    dr.resolve(model, "pool1", input_shape=(4, 40), restarts=2, l2=1.0, steps=5, batch_size=2,
               interactions={"contexts": 8})
    assert max(sizes) == 4096 and len(sizes) < 50  # the analysis's default: 4,096 sequences per pass
    sizes.clear()
    dr.resolve(model, "pool1", input_shape=(4, 40), restarts=2, l2=1.0, steps=5, batch_size=2,
               interactions={"contexts": 8, "batch_size": 64})
    assert max(sizes) == 64


def test_resolve_gives_its_inputs_to_the_interactions():
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (12, 40))].transpose(0, 2, 1)
    res = dr.resolve(xor_model(), "pool1", inputs=x, restarts=2, l2=1.0, steps=5, interactions={"contexts": 8})
    ix = res.interactions
    assert ix.params["background"] == "shuffle"
    alone = dr.interactions(xor_model(), "pool1", input_shape=(4, 40), inputs=x, contexts=8, seed=0)
    np.testing.assert_array_equal(ix.tables, alone.tables)
    np.testing.assert_array_equal(ix.group_tables, alone.group_tables)


def test_resolve_passes_the_old_alpha_option_on_as_significance():
    with pytest.warns(FutureWarning, match=r"interactions\(alpha=...\)"):
        res = dr.resolve(xor_model(), "pool1", input_shape=(4, 40), restarts=2, l2=1.0, steps=5,
                         interactions={"contexts": 8, "alpha": 0.05})
    assert res.interactions.params["significance"] == 0.05


def test_without_the_option_there_are_no_interactions():
    res = dr.resolve(xor_model(), "pool1", input_shape=(4, 40), restarts=2, l2=1.0, steps=5)
    assert res.interactions is None and "top pair" not in res.table()


def test_interactions_round_trip_inside_the_result_file(xor_result, tmp_path):
    path = xor_result.save(tmp_path / "r.h5")
    with h5py.File(path, "r") as f:
        assert f["interactions"].attrs["format"] == "deepresolve-interactions-2"
    back = dr.load(path)
    ix, iy = xor_result.interactions, back.interactions
    for name in ix._ARRAYS:
        np.testing.assert_array_equal(getattr(iy, name), getattr(ix, name), err_msg=name)
    assert iy.class_names == ix.class_names and iy.channel_names == ix.channel_names and iy.layer == ix.layer
    assert iy.params == ix.params
    np.testing.assert_array_equal(back.ofiv, xor_result.ofiv)
    # a result saved without interactions loads with None
    xor_result.interactions = None
    try:
        assert dr.load(xor_result.save(tmp_path / "plain.h5")).interactions is None
    finally:
        xor_result.interactions = ix


def test_summary_and_table_name_the_top_pair(xor_result):
    text = str(xor_result)
    # groups are named by their word and channels, in the order of their reads (GCTCAT reads a little more: one
    # of the word reader's 32 random sequences carries CGCTTG already: 1 against 31/32)
    assert "feature interactions" in text and "GCTCAT (A) x CGCTTG (B)" in text and "XOR-like" in text
    row = xor_result.table().iloc[0]
    assert row["top pair"] == "GCTCAT (A) x CGCTTG (B)" and row["pair kind"] == "XOR-like"
    assert row["pair interaction"] == pytest.approx(-2, abs=0.15) and row["pair p-value"] < 1e-6


def test_top_pairs_leave_classes_not_analysed_empty(xor_result):
    df = top_pairs(xor_result.interactions, np.array([0, 5]))
    assert df["output"].tolist() == [0, 5] and df.loc[1, "top pair"] == "" and np.isnan(df.loc[1, "pair interaction"])


@pytest.mark.parametrize("option, match", [
    ("yes", "interactions: expected False, True or a dict of options for deepresolve.interactions, got str 'yes'"),
    ({"seed": 1}, "interactions: expected options of deepresolve.interactions other than those resolve passes itself"),
    ({"contxts": 8}, r"interactions: expected keyword options of deepresolve.interactions \(.*contexts.*\), "
                     r"got unknown contxts"),
    ({"inputs": None}, "interactions: expected options of deepresolve.interactions other than those resolve passes"),
    ({"alpha": 0.05, "significance": 0.05}, "interactions: expected significance alone"),
])
def test_bad_interactions_option_is_refused_before_any_work(option, match, tmp_path):
    with pytest.raises(ArgumentError, match=match):
        dr.resolve(xor_model(), "pool1", input_shape=(4, 40), restarts=2, interactions=option,
                   checkpoint=tmp_path / "ck")
    assert not (tmp_path / "ck").exists()


def test_inputs_the_interactions_cannot_shuffle_are_refused_before_any_work(tmp_path):
    with pytest.raises(ArgumentError, match="inputs: expected one-hot sequences"):
        dr.resolve(xor_model(), "pool1", inputs=np.full((3, 4, 40), 0.25), restarts=2, interactions=True,
                   checkpoint=tmp_path / "ck")
    assert not (tmp_path / "ck").exists()


def test_interactions_with_a_given_head_is_refused():
    model = xor_model()
    with pytest.raises(ArgumentError, match="interactions: cannot be combined with head="):
        dr.resolve(model, "pool1", input_shape=(4, 40), head=model.head, interactions=True)


def test_ensemble_marks_the_significant_pair(xor_result):
    fig = dr.plot.ensemble(xor_result, 0)
    lines = [a for a in fig.axes[0].lines if a.get_gid() == "interacting"]
    assert len(lines) == 1 and sorted(lines[0].get_xdata()) == [0, 1]
    assert "interacting pairs" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert not [a for a in dr.plot.ensemble(xor_result, 0, pairs=0).axes[0].lines if a.get_gid() == "interacting"]


# ---------------------------------------------------------------------------------------------------------------
# CLI


def factory():
    return xor_model()


def test_cli_interactions_writes_every_evaluated_pair(tmp_path):
    out = runner.invoke(app, ["interactions", "tests.test_interactions_product:factory", "--layer", "pool1",
                              "--input-shape", "4,40", "--out", str(tmp_path / "o"), "--contexts", "48"])
    assert out.exit_code == 0, out.output
    ix = dr.Interactions.load(tmp_path / "o" / "interactions.h5")
    ref = dr.interactions(xor_model(), "pool1", input_shape=(4, 40), contexts=48, seed=0)
    np.testing.assert_array_equal(ix.values, ref.values)
    assert ix.class_names == ["class 0"]
    tsv = pd.read_csv(tmp_path / "o" / "interactions.tsv", sep="\t")
    assert sorted(tsv["level"].value_counts().items()) == [("channel", len(ix.pairs)), ("group", len(ix.group_pairs))]
    row = tsv[tsv.level == "channel"].iloc[0]
    assert row["kind"] == "XOR-like" and row["interaction"] == pytest.approx(ix.values[0, 0])


def test_cli_run_with_interactions(tmp_path):
    out = runner.invoke(app, ["run", "tests.test_interactions_product:factory", "--layer", "pool1", "--input-shape",
                              "4,40", "--out", str(tmp_path / "o"), "--restarts", "2", "--l2", "1", "--interactions"])
    assert out.exit_code == 0, out.output
    res = dr.load(tmp_path / "o" / "result.h5")
    assert res.interactions is not None
    summary = pd.read_csv(tmp_path / "o" / "summary.tsv", sep="\t")
    assert summary.loc[0, "top pair"] == "GCTCAT (ch0) x CGCTTG (ch1)" and summary.loc[0, "pair kind"] == "XOR-like"
    assert summary.loc[0, "pair interaction"] < -1.5 and summary.loc[0, "pair p-value"] < 1e-6
    assert (tmp_path / "o" / "interactions.tsv").exists()


def test_cli_interactions_mistakes_are_one_line(tmp_path, refused):
    args = ["interactions", "tests.test_interactions_product:factory", "--layer", "pool1", "--input-shape", "4,40",
            "--out", str(tmp_path / "o")]
    for extra, message in ((["--contexts", "0"], "contexts: expected an integer >= 1, got 0"),
                           (["--scale", "odds"], "scale: expected one of"),
                           (["--motif-words", "kmers"], "--motif-words: expected one of"),
                           (["--word-length", "12"], "--word-length: expected an integer"),
                           (["--classes", "3"], "--classes: expected output indices in 0-0")):
        err = refused(args + extra, tmp_path / "o")
        assert message in err, err
