"""Tests of deepresolve.plot: every figure on 1, 4 and 919 classes, counting the marks drawn."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import _factories
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from deepresolve.errors import ArgumentError
from deepresolve.results import Result
from deepresolve.viz import plot

ARTIFACTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "test-artifacts" / "figures"


# --------------------------------------------------------------------------- fixtures

def make_result(C: int, T: int, K: int, W: int, S: int = 30, seed: int = 0, nonadd_every: int = 2) -> Result:
    """Random but consistent result; classes 0, nonadd_every, ... have non-additive channels."""
    return _factories.make_result(C, T, K, W, S=S, seed=seed, nonadd_every=nonadd_every, quantile=0.9,
                                  classes=np.arange(C) + 100)


@pytest.fixture(scope="module")
def r1() -> Result:
    return make_result(C=1, T=5, K=12, W=4)


@pytest.fixture(scope="module")
def r4() -> Result:
    return make_result(C=4, T=8, K=32, W=4)


@pytest.fixture(scope="module")
def r919() -> Result:
    return make_result(C=919, T=3, K=480, W=2, S=12, seed=1, nonadd_every=50)


@pytest.fixture(scope="module")
def pwms32() -> np.ndarray:
    """One probability matrix (4, 7) per channel of ``r4``."""
    return np.random.default_rng(0).dirichlet(np.full(4, 0.3), size=(32, 7)).transpose(0, 2, 1)


@pytest.fixture(scope="module")
def blocks() -> tuple[np.ndarray, list[str], np.ndarray]:
    """A 15-class similarity with three planted blocks of five classes, shuffled."""
    rng = np.random.default_rng(4)
    group = np.repeat(np.arange(3), 5)
    perm = rng.permutation(15)
    group = group[perm]
    s = np.where(group[:, None] == group[None, :], 0.8, 0.0) + rng.normal(0, 0.05, (15, 15))
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    return s, [f"c{i}" for i in range(15)], group


def marks(fig: Figure, gid: str, kind=PathCollection) -> list:
    return [a for ax in fig.axes for a in ax.get_children() if isinstance(a, kind) and a.get_gid() == gid]


def n_offsets(fig: Figure, gid: str) -> int:
    return sum(len(c.get_offsets()) for c in marks(fig, gid))


# --------------------------------------------------------------------------- ensemble

@pytest.mark.parametrize("name", ["r1", "r4"])
def test_ensemble_marks_every_fiv_il_ofiv_and_star(request, name):
    res = request.getfixturevalue(name)
    for row in range(res.n_classes):
        fig = plot.ensemble(res, int(res.classes[row]))
        T, K = res.n_restarts, res.n_channels
        assert n_offsets(fig, "fiv") == T * K
        assert n_offsets(fig, "il") == K
        assert n_offsets(fig, "ofiv") == K
        assert n_offsets(fig, "nonadditive") == int(res.non_additive[row].sum())


def test_ensemble_colours_sizes_and_order(r4):
    fig = plot.ensemble(r4, "class0")
    (ofiv,) = marks(fig, "ofiv")
    order = np.argsort(-r4.ofiv[0], kind="stable")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [r4.channel_names[k] for k in order]
    values = r4.ofiv[0, order]
    colours = [to_hex(c) for c in ofiv.get_facecolors()]
    assert colours == [plot.POSITIVE if v >= 0 else plot.NEGATIVE for v in values]
    sizes = ofiv.get_sizes()
    assert np.allclose(sizes / sizes.max(), np.abs(values) / np.abs(values).max())  # area ~ |OFIV|
    (fiv,) = marks(fig, "fiv")
    fcol = [to_hex(c) for c in fiv.get_facecolors()]
    expected = r4.fivs[0][:, order].ravel()
    assert fcol == [plot.POSITIVE if v >= 0 else plot.NEGATIVE for v in expected]
    assert "top" not in ax.get_title(loc="left")


def test_ensemble_large_layer_shows_top_channels_and_non_additive(r919):
    row = 0  # class 0 has non-additive channels
    fig = plot.ensemble(r919, int(r919.classes[row]), top=40)
    n_non_add = int(r919.non_additive[row].sum())
    top40 = set(np.argsort(-np.abs(r919.ofiv[row]))[:40])
    extra = len(set(np.flatnonzero(r919.non_additive[row])) - top40)
    N = 40 + min(extra, 20)
    assert n_offsets(fig, "fiv") == r919.n_restarts * N
    assert n_offsets(fig, "ofiv") == N
    assert n_offsets(fig, "nonadditive") == min(n_non_add, n_non_add - extra + min(extra, 20))
    assert "top 40 of 480 channels by |OFIV|" in fig.axes[0].get_title(loc="left")
    shown = {t.get_text() for t in fig.axes[0].get_xticklabels()}
    assert {r919.channel_names[k] for k in top40} <= shown


def test_ensemble_logos_line_up_with_columns(r4, pwms32, tmp_path):
    fig = plot.ensemble(r4, 101, pwms=pwms32, path=tmp_path / "e.png")
    main, logo_ax = fig.axes[0], fig.axes[1]
    logos = [a for a in logo_ax.get_images() if a.get_gid() == "logo"]
    assert len(logos) == 32
    assert main.get_xlim() == logo_ax.get_xlim()  # shared x: logo j sits under column j
    centres = sorted((im.get_extent()[0] + im.get_extent()[1]) / 2 for im in logos)
    assert np.allclose(centres, np.arange(32))
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_logo_image_is_cached_and_in_bits():
    pwm = np.array([[1, 0.25], [0, 0.25], [0, 0.25], [0, 0.25]])
    a = plot.logo_image(pwm)
    assert a is plot.logo_image(pwm)
    assert a.ndim == 3 and a.shape[2] == 4
    with pytest.raises(ArgumentError, match=r"^pwm: expected shape \(4, w\), got \(5, 3\)$"):
        plot.logo_image(np.ones((5, 3)))


def test_ensemble_bad_inputs(r4):
    with pytest.raises(ArgumentError, match="^result: expected a deepresolve.results.Result, got str$"):
        plot.ensemble("not a result", 0)
    with pytest.raises(ArgumentError, match=r"^cls: expected an output index this result analysed \(100, 101, 102, "
                                            r"103\), got 7, which was not analysed$"):
        plot.ensemble(r4, 7)
    with pytest.raises(ArgumentError,
                       match=r"^cls: expected a class name of this result \('class0', .*\), got 'nope'$"):
        plot.ensemble(r4, "nope")
    with pytest.raises(ArgumentError, match=r"^cls: expected an output index \(int\) or a class name \(str\), "
                                            r"got float 1.5$"):
        plot.ensemble(r4, 1.5)
    with pytest.raises(ArgumentError, match=r"^pwms: expected shape \(K=32, 4, w\), got \(3, 4, 5\)$"):
        plot.ensemble(r4, 100, pwms=np.ones((3, 4, 5)))
    with pytest.raises(ArgumentError, match="^top: expected an integer >= 1, got 0$"):
        plot.ensemble(r4, 100, top=0)
    with pytest.raises(ArgumentError, match="^order: expected one of 'ofiv', 'channel', got 'random'$"):
        plot.ensemble(r4, 100, order="random")
    fig = Figure()
    with pytest.raises(ArgumentError, match="^ax: cannot be combined with pwms"):
        plot.ensemble(r4, 100, pwms=np.ones((32, 4, 5)) / 4, ax=fig.add_subplot())


def test_ensemble_draws_into_given_axes(r4):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.ensemble(r4, 100, ax=ax) is fig
    assert n_offsets(fig, "fiv") == 8 * 32


# --------------------------------------------------------------------------- OFIVs of several classes

def test_ofivs_circles(r1, r4):
    assert n_offsets(plot.ofivs(r1), "ofiv") == 12
    fig = plot.ofivs(r4)
    (c,) = marks(fig, "ofiv")
    assert len(c.get_offsets()) == 4 * 32
    ringed = np.asarray(c.get_linewidths()) > 0
    assert ringed.sum() == r4.non_additive.sum()
    fig = plot.ofivs(r4, classes=["class2", 100])
    assert n_offsets(fig, "ofiv") == 2 * 32
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["class2", "class0"]


def test_ofivs_heatmap_for_many_classes(r919):
    fig = plot.ofivs(r919)
    (im,) = [a for a in fig.axes[0].get_images() if a.get_gid() == "ofiv"]
    data = np.asarray(im.get_array())
    assert data.shape == (919, 480)
    # rows are the classes in dendrogram order: a permutation of the OFIV rows
    assert np.allclose(np.sort(data.sum(axis=1)), np.sort(r919.ofiv.sum(axis=1)))
    assert fig.axes[0].get_yticklabels() == [] or len(fig.axes[0].get_yticks()) == 0
    assert "dendrogram order" in fig.axes[0].get_title(loc="left")
    fig = plot.ofivs(r919, order="none")
    (im,) = [a for a in fig.axes[0].get_images() if a.get_gid() == "ofiv"]
    assert np.allclose(np.asarray(im.get_array()), r919.ofiv)


def test_ofivs_bad_inputs(r4):
    with pytest.raises(ArgumentError, match="^style: expected one of 'auto', 'circles', 'heatmap', got 'bars'$"):
        plot.ofivs(r4, style="bars")
    with pytest.raises(ArgumentError, match="^order: expected one of 'auto', 'cluster', 'none', got 'up'$"):
        plot.ofivs(r4, order="up")
    with pytest.raises(ArgumentError, match="^classes: expected at least one class, got an empty sequence$"):
        plot.ofivs(r4, classes=[])
    with pytest.raises(ArgumentError, match=r"^classes: expected an output index this result analysed .*, got 3, "):
        plot.ofivs(r4, classes=[3])


# --------------------------------------------------------------------------- similarity panels

def _matrices(C: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("class_similarity", "label_correlation", "ofiv_correlation", "weight_cosine"):
        x = rng.normal(size=(C, 20))
        out[name] = np.corrcoef(x)
    return out


def test_similarity_panels_four_matrices_annotated(r4):
    m = _matrices(4)
    fig = plot.similarity_panels(m, r4.class_names)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert sorted(im.get_gid() for im in images) == sorted(m)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles == [plot.SIMILARITY_TITLES[k] for k in plot.SIMILARITY_TITLES]  # paper's 2 x 2 order
    texts = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "annotation"]
    assert len(texts) == 4 * 16
    for im in images:  # drawn unreordered and on one scale
        assert np.allclose(im.get_array(), m[im.get_gid()])
        assert im.get_clim() == (-1.0, 1.0)


def test_similarity_panels_subset_aliases_and_one_class(r1, r4):
    m = _matrices(4)
    fig = plot.similarity_panels({"ofiv+": m["class_similarity"], "weights": m["weight_cosine"]}, r4.class_names)
    assert [im.get_gid() for ax in fig.axes for im in ax.get_images()] == ["class_similarity", "weight_cosine"]
    fig = plot.similarity_panels({"class_similarity": np.ones((1, 1))}, r1.class_names)
    assert len([im for ax in fig.axes for im in ax.get_images()]) == 1


def test_similarity_panels_919_no_labels_and_clustered(r919):
    s = np.corrcoef(np.clip(r919.ofiv, 0, None))
    fig = plot.similarity_panels({"class_similarity": s, "ofiv_correlation": np.corrcoef(r919.ofiv)},
                                 r919.class_names)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2
    for ax in fig.axes:
        if ax.get_images():
            assert len(ax.get_xticks()) == 0 and not ax.texts
    perm = plot.leaf_order(s)
    assert np.allclose(images[0].get_array(), s[np.ix_(perm, perm)])


def test_similarity_panels_bad_inputs(r4):
    with pytest.raises(ArgumentError, match="matrices: expected a non-empty dict"):
        plot.similarity_panels({}, r4.class_names)
    with pytest.raises(ArgumentError, match=r"matrices\['label'\]: expected shape \(4, 4\)"):
        plot.similarity_panels({"label": np.eye(3)}, r4.class_names)
    with pytest.raises(ArgumentError, match="duplicates 'class_similarity'"):
        plot.similarity_panels({"ofiv+": np.eye(4), "class_similarity": np.eye(4)}, r4.class_names)
    with pytest.raises(ArgumentError, match="order: expected a permutation"):
        plot.similarity_panels({"x": np.eye(4)}, r4.class_names, order=[0, 0, 1, 2])
    with pytest.raises(ArgumentError, match="names: expected a sequence"):
        plot.similarity_panels({"x": np.eye(4)}, "abcd")


# --------------------------------------------------------------------------- clustered heatmap and cluster panels

def _segments(fig: Figure) -> list[int]:
    return [len(c.get_segments()) for c in marks(fig, "dendrogram", LineCollection)]


def test_clustered_heatmap_small(r4):
    s = _matrices(4)["class_similarity"]
    fig = plot.clustered_heatmap(s, r4.class_names)
    assert _segments(fig) == [3, 3]  # C - 1 merges, top and left
    (im,) = [im for ax in fig.axes for im in ax.get_images()]
    d = np.clip(1 - s, 0, 2)
    np.fill_diagonal(d, 0)
    perm = leaves_list(linkage(squareform(d, checks=False), "average"))
    assert np.allclose(im.get_array(), s[np.ix_(perm, perm)])
    heat = im.axes
    assert [t.get_text() for t in heat.get_yticklabels()] == [r4.class_names[i] for i in perm]
    assert len([t for t in heat.texts if t.get_gid() == "annotation"]) == 16


def test_clustered_heatmap_one_and_919_classes(r1, r919):
    fig = plot.clustered_heatmap(np.ones((1, 1)), r1.class_names)
    assert _segments(fig) == [] and len([im for ax in fig.axes for im in ax.get_images()]) == 1
    s = np.corrcoef(np.clip(r919.ofiv, 0, None))
    fig = plot.clustered_heatmap(s, r919.class_names)
    assert _segments(fig) == [150, 150]
    (im,) = [im for ax in fig.axes for im in ax.get_images()]
    assert im.get_array().shape == (919, 919)
    assert len(im.axes.get_xticks()) == 0 and not im.axes.texts


def test_clustered_heatmap_marks_groups(blocks):
    s, names, group = blocks
    labels = [f"group {g}" for g in group]
    fig = plot.clustered_heatmap(s, names, groups=labels)
    (heat,) = [im for ax in fig.axes for im in ax.get_images() if im.get_gid() == "similarity"]
    strips = [im for ax in fig.axes for im in ax.get_images() if im.get_gid() == "groups"]
    assert len(strips) == 2
    perm = leaf_order_of(s)
    codes = np.asarray(strips[0].get_array()).ravel()
    # the strip follows the heatmap's order: one colour per group, runs where the planted blocks are
    assert len(np.unique(codes)) == 3
    assert all(len(np.unique(codes[group[perm] == g])) == 1 for g in range(3))
    np.testing.assert_array_equal(np.asarray(strips[1].get_array()).ravel(), codes)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "group_label"]
    assert sorted(texts) == ["group 0", "group 1", "group 2"]  # each block is one run of 5 classes
    assert heat.axes.get_yticklabels()[0].get_text() == names[perm[0]]  # names stay on the heatmap
    with pytest.raises(ArgumentError, match=r"^groups: expected one group label per class \(15\), got 3$"):
        plot.clustered_heatmap(s, names, groups=["a", "b", "c"])


def leaf_order_of(s: np.ndarray) -> np.ndarray:
    d = np.clip(1 - s, 0, 2)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0)
    return leaves_list(linkage(squareform(d, checks=False), "average"))


def test_clustered_heatmap_uses_given_linkage_or_clustering(blocks):
    from deepresolve.similarity import cluster_classes

    s, names, _ = blocks
    clustering = cluster_classes(s)
    fig = plot.clustered_heatmap(s, names, linkage=clustering)
    (im,) = [im for ax in fig.axes for im in ax.get_images()]
    assert np.allclose(im.get_array(), s[np.ix_(clustering.order, clustering.order)])
    with pytest.raises(ArgumentError, match=r"linkage: expected a scipy linkage matrix of shape \(14, 4\)"):
        plot.clustered_heatmap(s, names, linkage=np.zeros((3, 4)))
    with pytest.raises(ArgumentError, match=r"similarity: expected shape \(15, 15\) to match 15 names"):
        plot.clustered_heatmap(s[:3, :3], names)


def test_cluster_panels_find_planted_blocks(blocks):
    s, names, group = blocks
    labels_corr = np.eye(15)
    fig = plot.cluster_panels(s, names, labels_corr=labels_corr, n_clusters=3)
    sims = [im for ax in fig.axes for im in ax.get_images() if im.get_gid() == "cluster_similarity"]
    labs = [im for ax in fig.axes for im in ax.get_images() if im.get_gid() == "cluster_labels"]
    assert len(sims) == len(labs) == 3
    found = sorted(sorted(t.get_text() for t in im.axes.get_yticklabels()) for im in sims)
    planted = sorted(sorted(names[i] for i in np.flatnonzero(group == g)) for g in range(3))
    assert found == planted
    fig = plot.cluster_panels(s, names, n_clusters=3)
    assert len([im for ax in fig.axes for im in ax.get_images()]) == 3


def test_cluster_panels_919_and_one(r1, r919):
    s = np.corrcoef(np.clip(r919.ofiv, 0, None))
    fig = plot.cluster_panels(s, r919.class_names, labels_corr=np.eye(919), max_panels=4, max_size=10)
    sims = [im for ax in fig.axes for im in ax.get_images() if im.get_gid() == "cluster_similarity"]
    assert 1 <= len(sims) <= 4
    assert all(2 <= im.get_array().shape[0] <= 10 for im in sims)
    fig = plot.cluster_panels(np.ones((1, 1)), r1.class_names)
    assert len([im for ax in fig.axes for im in ax.get_images()]) == 1
    with pytest.raises(ArgumentError, match="max_panels: expected an integer >= 1"):
        plot.cluster_panels(s, r919.class_names, max_panels=0)


def test_pick_clusters_ranks_by_cohesion(blocks):
    s, _, group = blocks
    s = s.copy()
    first = np.flatnonzero(group == 1)
    s[np.ix_(first, first)] = np.where(np.eye(5, dtype=bool), 1.0, 0.95)  # make block 1 the tightest
    clusters = plot.pick_clusters(s, n_clusters=3)
    assert sorted(clusters[0]) == sorted(first)


# --------------------------------------------------------------------------- difference

def test_difference_bars(r4):
    fig = plot.difference(r4, 100, "class2")
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == 32
    assert np.allclose([b.get_height() for b in bars], r4.ofiv[0] - r4.ofiv[2])
    assert [to_hex(b.get_facecolor()) for b in bars] == \
        [plot.POSITIVE if d >= 0 else plot.NEGATIVE for d in r4.ofiv[0] - r4.ofiv[2]]


def test_difference_top_channels_for_large_layer(r919):
    fig = plot.difference(r919, 100, 101, top=25)
    heights = np.array([b.get_height() for b in fig.axes[0].patches])
    d = r919.ofiv[0] - r919.ofiv[1]
    assert len(heights) == 25
    assert np.all(np.diff(heights) <= 0)
    assert np.isclose(np.abs(heights).min(), np.sort(np.abs(d))[-25])
    assert "top 25 of 480" in " ".join(a.get_title(loc="left") for a in fig.axes)


def test_difference_shows_both_ofivs_and_orders_by_difference(r4):
    fig = plot.difference(r4, 100, "class2", order="difference")
    d = r4.ofiv[0] - r4.ofiv[2]
    order = np.argsort(-d, kind="stable")
    np.testing.assert_allclose([b.get_height() for b in fig.axes[0].patches], d[order])
    rows = marks(fig, "ofiv")
    assert len(rows) == 2
    top = max(row.get_sizes().max() for row in rows)
    for row, values in zip(rows, r4.ofiv[[0, 2]]):
        # area ~ |OFIV| of the class, on one scale for both rows, in the bars' order
        np.testing.assert_allclose(row.get_sizes() / top, np.abs(values[order]) / np.abs(r4.ofiv[[0, 2]]).max(),
                                   rtol=1e-6)
    assert [t.get_text() for t in rows[0].axes.get_yticklabels()] == [f"OFIV {r4.class_names[0]}",
                                                                      f"OFIV {r4.class_names[2]}"]
    assert not marks(plot.difference(r4, 100, "class2", ofivs=False), "ofiv")
    with pytest.raises(ArgumentError, match="order: expected one of 'auto', 'channel', 'difference', got 'size'"):
        plot.difference(r4, 100, "class2", order="size")


def test_difference_needs_two_classes(r1, r4):
    with pytest.raises(ArgumentError, match="^i, j: expected two different classes"):
        plot.difference(r1, 100, 100)
    with pytest.raises(ArgumentError, match=r"^j: expected an output index this result analysed .*, got 5, "):
        plot.difference(r4, 100, 5)


# --------------------------------------------------------------------------- BIC

def test_bic_one_class(r1):
    fig = plot.bic(r1)
    assert len(fig.axes) == 1
    (line,) = [l for l in fig.axes[0].lines if l.get_gid() == "bic"]
    assert np.allclose(line.get_ydata(), r1.bic[0])
    (star,) = [l for l in fig.axes[0].lines if l.get_gid() == "chosen"]
    assert star.get_xdata()[0] == r1.n_components[0]


def test_bic_marks_impossible_fits():
    res = make_result(C=1, T=5, K=12, W=4)
    res.bic = np.array([[-50.0, np.inf, np.inf]])
    res.n_components = np.array([1])
    fig = plot.bic(res)
    assert [t.get_position()[0] for t in fig.axes[0].texts if t.get_gid() == "not_fitted"] == [2, 3]
    (star,) = [l for l in fig.axes[0].lines if l.get_gid() == "chosen"]
    assert star.get_xdata()[0] == 1


@pytest.mark.parametrize("name", ["r4", "r919"])
def test_bic_histogram_over_classes(request, name):
    res = request.getfixturevalue(name)
    fig = plot.bic(res)
    assert len(fig.axes) == 1
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [int((res.n_components == k).sum()) for k in (1, 2, 3)]
    assert sum(heights) == res.n_classes
    fig = plot.bic(res, cls="class1")
    assert len(fig.axes) == 2
    assert len(plot.bic(res, cls="class1", histogram=False).axes) == 1


# --------------------------------------------------------------------------- convergence

def test_convergence_few_classes(r4):
    fig = plot.convergence(r4)
    collections = marks(fig, "trace", LineCollection)
    assert len(collections) == 4
    for row, c in enumerate(collections):
        assert [len(seg) for seg in c.get_segments()] == list(r4.steps[row])  # stops where it converged
    hist = fig.axes[1].patches
    assert sum(p.get_height() for p in hist) == 4 * 8


def test_convergence_many_classes_subsamples(r919, r1):
    fig = plot.convergence(r919, max_traces=200)
    (c,) = marks(fig, "trace", LineCollection)
    assert len(c.get_segments()) == 200
    assert "200 of 2757 traces" in fig.axes[0].get_title(loc="left")
    assert [l for l in fig.axes[0].lines if l.get_gid() == "median"]
    assert len(marks(plot.convergence(r1), "trace", LineCollection)) == 1


def test_convergence_clips_far_off_starting_values():
    res = make_result(C=2, T=4, K=6, W=1, S=20)
    res.trace[:, :, 0] = -1000.0  # random starts with a huge L2 penalty
    fig = plot.convergence(res)
    lo, hi = fig.axes[0].get_ylim()
    later = res.trace[:, :, 1:]
    assert lo > -1000 and lo <= np.nanmin(later) and hi >= np.nanmax(later)
    assert "y-axis clipped: step-0 values reach -1e+03" in fig.axes[0].get_title(loc="left")
    fig = plot.convergence(make_result(C=2, T=4, K=6, W=1, S=20))  # ordinary curves: nothing clipped
    assert "clipped" not in fig.axes[0].get_title(loc="left")


def test_convergence_without_trace(r1):
    res = make_result(C=1, T=5, K=12, W=4, S=1)
    res.trace = np.full((1, 5, 0), np.nan)
    fig = plot.convergence(res)
    assert any("no objective trace" in t.get_text() for t in fig.axes[0].texts)
    res.trace = np.zeros((2, 5, 3))
    with pytest.raises(ArgumentError, match=r"result.trace: expected shape \(C, T, S\) = \(1, 5, S\)"):
        plot.convergence(res)


def test_result_shape_mismatch_is_reported(r4):
    bad = make_result(C=2, T=3, K=5, W=1)
    bad.ofiv = np.zeros((2, 6))
    with pytest.raises(ArgumentError, match=r"result.ofiv: expected shape \(2, 5\)"):
        plot.ofivs(bad)


# --------------------------------------------------------------------------- pictures for people

def test_save_gallery(r4, pwms32, blocks):
    """Write the 4-class figures as PNGs under test-artifacts/figures for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    s, names, _ = blocks
    figures = {
        "ensemble": plot.ensemble(r4, 100, pwms=pwms32),
        "ofivs": plot.ofivs(r4),
        "similarity_panels": plot.similarity_panels(_matrices(4), r4.class_names),
        "clustered_heatmap": plot.clustered_heatmap(s, names),
        "cluster_panels": plot.cluster_panels(s, names, labels_corr=np.eye(15), n_clusters=3),
        "difference": plot.difference(r4, 100, 101),
        "bic": plot.bic(r4, 100),
        "convergence": plot.convergence(r4),
    }
    for name, fig in figures.items():
        path = ARTIFACTS / f"{name}.png"
        fig.savefig(path, dpi=80)
        assert path.read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- DNase association (Fig 8)

def test_dnase_association_counts_and_biclustered_block():
    from deepresolve.similarity import dnase_association

    rng = np.random.default_rng(5)
    assays = ["DNase"] * 6 + ["CTCF", "EZH2", "H3K27ac", "Pol2", "H3K9me3"]
    s = np.corrcoef(rng.normal(size=(11, 8)))
    fig = plot.dnase_association(s, assays)
    table = dnase_association(s, assays)
    heat, bars = fig.axes[:2]
    pos = [p.get_height() for p in bars.patches if p.get_gid() == "positive"]
    neg = [p.get_height() for p in bars.patches if p.get_gid() == "negative"]
    np.testing.assert_array_equal(pos, table["positive"])
    np.testing.assert_array_equal(neg, -table["negative"])
    assert [t.get_text() for t in bars.get_xticklabels()] == [assays[i] for i in table.index]
    (block,) = [im for im in heat.get_images() if im.get_gid() == "dnase_block"]
    shown = np.asarray(block.get_array())
    assert shown.shape == (6, 5)  # DNase rows x TF/histone columns, each axis reordered
    np.testing.assert_allclose(np.sort(shown.ravel()), np.sort(s[:6, 6:].ravel()))
    assert sorted(t.get_text() for t in heat.get_yticklabels()) == ["DNase"] * 6
    with pytest.raises(ArgumentError, match=r"^assays: expected both 'DNase' outputs and other outputs, got no"):
        plot.dnase_association(s, ["CTCF"] * 11)
    with pytest.raises(ArgumentError, match=r"^names: expected one name per output \(11\), got 2$"):
        plot.dnase_association(s, assays, names=["a", "b"])


def test_dnase_association_919_lists_the_extremes(r919):
    from deepresolve.similarity import dnase_association

    assays = ["DNase"] * 125 + ["TF"] * 794
    names = [f"out{i}" for i in range(919)]
    s = np.corrcoef(np.clip(r919.ofiv, 0, None))
    fig = plot.dnase_association(s, assays, names=names, listed=3)
    table = dnase_association(s, assays)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "listed"]
    assert texts == ["most positive:\n" + "\n".join(names[i] for i in table.index[:3]),
                     "most negative:\n" + "\n".join(names[i] for i in table.index[-3:])]
    assert len(fig.axes[0].get_xticks()) == 0


# --------------------------------------------------------------------------- saving, signatures, layout

def test_saving_writes_the_suffix_format_atomically(tmp_path, r4):
    s = np.corrcoef(r4.ofiv)
    plot.clustered_heatmap(s, r4.class_names, path=tmp_path / "deep" / "f.svg")
    plot.clustered_heatmap(s, r4.class_names, path=tmp_path / "f")  # no suffix: matplotlib's default, png
    assert (tmp_path / "deep" / "f.svg").read_text().startswith("<?xml")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ArgumentError, match=r"^path: expected a file name ending in a format matplotlib writes "
                                            r"\(.*\.png.*\), got '.*f\.xyz'$"):
        plot.clustered_heatmap(s, r4.class_names, path=tmp_path / "f.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "f.png"]  # no temporary file left behind


def test_arguments_after_the_data_are_keyword_only(r4):
    s = np.corrcoef(r4.ofiv)
    with pytest.raises(TypeError, match="positional"):
        plot.clustered_heatmap(s, r4.class_names, None)
    with pytest.raises(TypeError, match="positional"):
        plot.ensemble(r4, 100, None)
    with pytest.raises(TypeError, match="positional"):
        plot.leaf_order(s, None)


def test_interaction_figures_check_their_result():
    from deepresolve.viz.interactions import heatmap, truth_tables

    for draw in (heatmap, truth_tables):
        with pytest.raises(ArgumentError, match=r"^res: expected an Interactions result \(deepresolve.interactions\), "
                                                r"got Result$"):
            draw(make_result(C=1, T=2, K=4, W=2), 0)


def test_figures_import_no_torch():
    import subprocess
    import sys

    code = "import sys, deepresolve.viz.plot, deepresolve.viz.interactions; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
