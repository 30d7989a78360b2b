"""Synthetic set III: the design, the sequences carrying exactly their class's motifs, and the recovery scores."""

from __future__ import annotations

import numpy as np
import pytest

from deepresolve.paper.set_three import (
    SET_THREE_JASPAR,
    motif_jaccard,
    planted_motif_response,
    recovery,
    set_three_design,
    set_three_motifs,
    synthetic_set_three,
)


@pytest.fixture(scope="module")
def design():
    return set_three_design()


@pytest.fixture(scope="module")
def data(design):
    return synthetic_set_three(design, n_per_class=8, length=200, seed=0)


def test_motifs_are_the_frozen_jaspar_matrices():
    motifs = set_three_motifs()
    assert [name.split()[0] for name in motifs] == list(SET_THREE_JASPAR)
    for pwm in motifs.values():
        assert pwm.shape[0] == 4 and 8 <= pwm.shape[1] <= 12
        np.testing.assert_allclose(pwm.sum(axis=0), 1.0, atol=1e-6)


def test_design(design):
    C = len(design.class_motifs)
    assert C == 120 and len(design.motifs) == 30
    assert len({frozenset(ms) for ms in design.class_motifs}) == C  # every class its own motif set
    assert all(len(ms) in (2, 3) for ms in design.class_motifs)
    for g in range(12):
        members = [design.class_motifs[c] for c in np.flatnonzero(design.groups == g)]
        assert len(members) == 10 and all(ms[:2] == (2 * g, 2 * g + 1) for ms in members)
    assert design.class_names[0] == "g0:TGIF1+TFEC"


def test_jaccard(design):
    j = motif_jaccard(design)
    np.testing.assert_allclose(np.diag(j), 1.0)
    np.testing.assert_allclose(j, j.T)
    # the pair alone vs the pair plus one: 2 / 3; two members with different extras: 2 / 4
    assert j[0, 1] == pytest.approx(2 / 3) and j[1, 2] == pytest.approx(0.5)
    a, b = set(design.class_motifs[5]), set(design.class_motifs[77])
    assert j[5, 77] == pytest.approx(len(a & b) / len(a | b))


def test_sequences_carry_exactly_their_class_motifs(design, data):
    assert data.x.shape[1:] == (4, 200) and np.all(data.x.sum(axis=1) == 1)
    assert np.all(data.y.sum(axis=1) == 1)
    cls = data.y.argmax(axis=1)
    np.testing.assert_array_equal(data.present, design.membership()[cls])
    sizes = data.y.sum(axis=0)
    assert sizes.min() >= 6 and sizes.max() <= 10  # 0.75 .. 1.25 x 8
    motifs = list(set_three_motifs().values())
    # planted instances sit where recorded, do not overlap, and are likely under their PWM
    for n in range(0, len(data), 37):
        spans = []
        for m in np.flatnonzero(data.present[n]):
            start, width = data.positions[n, m], motifs[m].shape[1]
            spans.append((start, start + width))
            window = data.x[n, :, start:start + width]
            probs = (motifs[m] * window).sum(axis=0)  # PWM probability of each planted base
            assert np.all(probs > 0)
            # far above a random 4-letter window's log-likelihood under the PWM
            assert np.log(probs).sum() > np.log(0.25) * width
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert np.all(data.positions[~data.present] == -1)


def test_seed_reproducible(design):
    a = synthetic_set_three(design, n_per_class=4, seed=3)
    b = synthetic_set_three(design, n_per_class=4, seed=3)
    c = synthetic_set_three(design, n_per_class=4, seed=4)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.shape != c.x.shape or not np.array_equal(a.x, c.x)


def test_recovery_oracle_and_noise(design):
    truth = motif_jaccard(design)
    perfect = recovery(truth, design)
    assert perfect.spearman == pytest.approx(1.0) and perfect.ari == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=truth.shape)
    chance = recovery((noise + noise.T) / 2, design)
    assert abs(chance.spearman) < 0.1 and abs(chance.ari) < 0.1


def test_errors(design):
    with pytest.raises(ValueError, match=r"n_groups: expected an int in 1\.\.15, got 16"):
        set_three_design(16)
    with pytest.raises(ValueError, match=r"classes_per_group: expected an int in 1\.\.29, got 0"):
        set_three_design(3, 0)
    with pytest.raises(ValueError, match=r"length: expected an int >= \d+"):
        synthetic_set_three(design, length=20)
    with pytest.raises(ValueError, match="n_per_class: expected an int >= 4"):
        synthetic_set_three(design, n_per_class=2)
    with pytest.raises(ValueError, match=r"similarity: expected \(120, 120\)"):
        recovery(np.eye(5), design)


def test_planted_motif_response_names_a_pwm_scanner_by_its_motif(design, data):
    """Channel m of a convolution holding motif m's log-odds matrix responds most to motif m; a constant one to none."""
    import torch
    from torch import nn

    pwms = list(set_three_motifs().values())
    width = max(p.shape[1] for p in pwms)
    conv = nn.Conv1d(4, len(pwms) + 1, width)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for m, p in enumerate(pwms):
            conv.weight[m, :, :p.shape[1]] = torch.as_tensor(np.log2(p / 0.25 + 1e-3), dtype=torch.float32)
    model = nn.Sequential(conv, nn.ReLU())
    effect = planted_motif_response(model, "0", data, at="output")
    assert effect.shape == (31, 30)
    np.testing.assert_array_equal(effect[:30].argmax(axis=1), np.arange(30))
    assert (effect[np.arange(30), np.arange(30)] > 1.5).all()
    np.testing.assert_array_equal(effect[30], 0.0)  # the constant channel
    with pytest.raises(ValueError, match=r"at: expected one of 'input', 'output', got 'middle'"):
        planted_motif_response(model, "0", data, at="middle")
