"""Synthetic data sets: shapes and labels that agree with the planted k-mers."""

import numpy as np
import pytest

from deepresolve.errors import ArgumentError
from deepresolve.io.sequences import decode
from deepresolve.paper.datasets import (
    SET_ONE_MOTIFS,
    SET_TWO_CLASSES,
    SET_TWO_MOTIFS,
    planted_example,
    synthetic_set_one,
    synthetic_set_two,
)


def _contains(seqs, motif):
    return np.array([motif in s for s in seqs])


def test_set_one_labels_follow_the_planted_kmers():
    d = synthetic_set_one(n=1600, n_random=400, seed=3)
    assert d.x.shape == (2000, 4, 100) and d.y.shape == (2000, 1)
    assert np.all(d.x.sum(axis=1) == 1)  # proper one-hot, no N
    seqs = decode(d.x)
    has = np.stack([_contains(seqs, m) for m in SET_ONE_MOTIFS], axis=1)
    # The sequence content, not only the bookkeeping, carries exactly the recorded motifs.
    np.testing.assert_array_equal(has, d.present)
    rule = has[:, 0] & (has[:, 1] ^ has[:, 2])
    np.testing.assert_array_equal(d.y[:, 0].astype(bool), rule)
    assert d.y[d.background].sum() == 0 and d.background.sum() == 400
    # Every planted motif sits where recorded, and planted motifs never overlap.
    planted = np.flatnonzero(~d.background)[:300]
    for s, pos, pres in zip([seqs[i] for i in planted], d.positions[planted], d.present[planted]):
        spans = []
        for m, p, ok in zip(SET_ONE_MOTIFS, pos, pres):
            assert (p >= 0) == ok
            if ok:
                assert s[p:p + len(m)] == m
                spans.append((p, p + len(m)))
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # Presence patterns of the planted sequences are balanced over all 8 patterns.
    codes = (d.present[~d.background] * [1, 2, 4]).sum(axis=1)
    counts = np.bincount(codes, minlength=8)
    assert counts.min() == counts.max() == 200
    assert d.y[~d.background].mean() == pytest.approx(0.25)


def test_set_one_is_seeded():
    a, b, c = synthetic_set_one(80, 20, seed=1), synthetic_set_one(80, 20, seed=1), synthetic_set_one(80, 20, seed=2)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_set_one_sizes_and_errors():
    d = synthetic_set_one(n=16, n_random=0, length=30)
    assert d.x.shape == (16, 4, 30)
    with pytest.raises(ArgumentError, match="^length: expected an integer >= 18, got 10$"):
        synthetic_set_one(n=8, length=10)
    with pytest.raises(ArgumentError, match="^n: expected an integer, got float 1.5$"):
        synthetic_set_one(n=1.5)
    with pytest.raises(ArgumentError, match="^n_random: expected an integer >= 0, got -1$"):
        synthetic_set_one(n=8, n_random=-1)
    with pytest.raises(ArgumentError,
                       match="^n, n_random: expected at least one sequence in all, got n = n_random = 0$"):
        synthetic_set_one(n=0, n_random=0)


def test_set_two_one_label_per_sequence_matching_its_motifs():
    d = synthetic_set_two(n_per_class=150, seed=5)
    assert d.x.shape == (600, 4, 100) and d.y.shape == (600, 4)
    np.testing.assert_array_equal(d.y.sum(axis=1), 1)
    np.testing.assert_array_equal(d.y.sum(axis=0), 150)
    seqs = decode(d.x)
    has = {m: _contains(seqs, m) for m in SET_TWO_MOTIFS}
    for c, motifs in enumerate(SET_TWO_CLASSES):
        rows = d.y[:, c] == 1
        for m in SET_TWO_MOTIFS:
            # Each class carries exactly its own motifs (chance occurrences were redrawn).
            assert has[m][rows].all() if m in motifs else not has[m][rows].any(), (c, m)


def test_set_two_without_exclusive_keeps_chance_occurrences():
    d = synthetic_set_two(n_per_class=200, seed=0, exclusive=False)
    seqs = decode(d.x)
    class4 = d.y[:, 3] == 1
    # GATA is a 4-mer: in 100 random bp it occurs by chance in roughly a third of sequences.
    assert 0.15 < _contains(seqs, "GATA")[class4].mean() < 0.5


def test_planted_example():
    x = planted_example(["CAGGTC", "GCTCAT", "CGCTTG"], seed=0)
    s = decode(x)[0]
    assert x.shape == (1, 4, 100) and all(s.count(m) == 1 for m in SET_ONE_MOTIFS)
    s = decode(planted_example(["GCTCAT"], seed=1))[0]
    assert "GCTCAT" in s and "CAGGTC" not in s and "CGCTTG" not in s
    with pytest.raises(ArgumentError, match=r"^motifs: expected strings over ACGT, got \['GCTCAN'\]$"):
        planted_example(["GCTCAN"])
    with pytest.raises(ArgumentError, match="^length: expected an integer >= 12, got 10$"):
        planted_example(["CAGGTC", "GCTCAT"], length=10)
