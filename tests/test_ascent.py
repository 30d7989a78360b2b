import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.ascent import feature_ascent


def linear_model(k=8, c=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Identity(), nn.Linear(k, c))


@pytest.mark.parametrize("optimizer", ["matched", "paper"])
def test_linear_head_reaches_closed_form_optimum(optimizer):
    model, lam = linear_model(), 0.7
    res = dr.resolve(model, "0", input_shape=(8,), restarts=4, l2=lam, optimizer=optimizer, seed=3,
                     **({"steps": 3000} if optimizer == "paper" else {}))
    w = model[1].weight.detach().numpy()
    expected = np.broadcast_to((w / (2 * lam))[:, None, :], res.fims[..., 0].shape)
    tol = 1e-5 if optimizer == "matched" else 1e-3
    np.testing.assert_allclose(res.fims[..., 0], expected, atol=tol)
    assert res.fims.shape == (3, 4, 8, 1) and (res.n_components == 1).all() and not res.non_additive.any()
    np.testing.assert_allclose(res.ofiv, w / (2 * lam), atol=tol)


def test_spatial_linear_head_optimum_and_fiv_is_spatial_mean():
    torch.manual_seed(1)
    head = nn.Sequential(nn.Flatten(), nn.Linear(5 * 6, 2))
    model = nn.Sequential(nn.Conv1d(4, 5, 3), head)
    res = dr.resolve(model, "0", input_shape=(4, 8), restarts=3, l2=2.0)
    w = head[1].weight.detach().numpy().reshape(2, 5, 6) / 4.0
    np.testing.assert_allclose(res.fims, np.broadcast_to(w[:, None], res.fims.shape), atol=1e-5)
    np.testing.assert_allclose(res.fivs, res.fims.mean(-1), atol=1e-6)


class XorHead(nn.Module):
    """score = |a - b| on channels 0 and 1; the other channels do not matter."""

    def forward(self, h):
        return (h[:, 0] - h[:, 1]).abs()[:, None] + 0.0 * h


def test_xor_head_flags_exactly_the_pair_non_additive():
    model = nn.Sequential(nn.Identity(), nn.Sequential(XorHead(), nn.Linear(10, 1)))
    with torch.no_grad():  # output = sum over channels of the XOR map -> 10 |a - b| ... keep it simple: pick one
        model[1][1].weight.zero_()
        model[1][1].weight[0, 0] = 1.0
        model[1][1].bias.zero_()
    res = dr.resolve(model, "0", input_shape=(10,), restarts=12, l2=1.0, seed=0)
    assert res.n_components[0] > 1
    assert set(np.flatnonzero(res.non_additive[0])) == {0, 1}
    assert not res.consistent_sign[0, :2].any()
    # opposite signs in every restart
    assert (np.sign(res.fivs[0, :, 0]) == -np.sign(res.fivs[0, :, 1])).all()
    # OFIV of an inconsistent non-additive channel: weighted mean of its positive FIVs only
    assert (res.ofiv[0, :2] > 0).all()


def test_seeded_runs_do_not_depend_on_batching():
    model = nn.Sequential(nn.Identity(), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    a = dr.resolve(model, "0", input_shape=(6,), restarts=5, l2=0.3, seed=7)
    b = dr.resolve(model, "0", input_shape=(6,), restarts=5, l2=0.3, seed=7, batch_size=3)
    c = dr.resolve(model, "0", input_shape=(6,), classes=[2], restarts=5, l2=0.3, seed=7)
    np.testing.assert_array_equal(a.fims, b.fims)
    np.testing.assert_array_equal(a.fims[2], c.fims[0])
    d = dr.resolve(model, "0", input_shape=(6,), restarts=5, l2=0.3, seed=8)
    assert not np.allclose(a.fims, d.fims)


def test_matched_steps_need_far_fewer_steps_than_the_paper_schedule():
    model = nn.Sequential(nn.Identity(), nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
    fast = dr.resolve(model, "0", input_shape=(20,), restarts=4, l2=1.0)
    slow = dr.resolve(model, "0", input_shape=(20,), restarts=4, l2=1.0, optimizer="paper", lr=0.01)
    assert fast.steps.mean() * 10 < slow.steps.mean()
    obj = lambda r: r.scores - 1.0 * (r.fims.astype(np.float64) ** 2).sum(axis=(2, 3))
    assert obj(fast).mean() >= obj(slow).mean() - 1e-3


def test_nonnegative_and_center_options():
    model, lam = linear_model(), 1.0
    w = model[1].weight.detach().numpy()
    res = dr.resolve(model, "0", input_shape=(8,), restarts=2, l2=lam, nonnegative=True)
    np.testing.assert_allclose(res.fims[..., 0], np.broadcast_to(np.clip(w / 2, 0, None)[:, None], (3, 2, 8)), atol=1e-5)
    center = torch.linspace(-1, 1, 8)
    res = dr.resolve(model, "0", input_shape=(8,), restarts=2, l2=lam, l2_center=center)
    np.testing.assert_allclose(res.fims[..., 0], np.broadcast_to((w / 2 + center.numpy())[:, None], (3, 2, 8)), atol=1e-5)


def test_norm_l2_matches_the_real_feature_map_norm():
    model = linear_model()
    inputs = torch.randn(50, 8) * 3
    res = dr.resolve(model, "0", restarts=3, l2="norm", inputs=inputs)
    target = inputs.norm(dim=1).mean().item()
    fim_norm = np.linalg.norm(res.fims[..., 0], axis=-1).mean()
    assert res.params["l2_policy"] == "norm" and res.params["l2_reference"] == "inputs (N=50)"
    # classes differ in |w|, so the mean FIM norm over all classes matches the target
    assert fim_norm == pytest.approx(target, rel=0.05)


def test_nan_scores_are_reported():
    class Blowup(nn.Module):
        def forward(self, h):
            return torch.exp(h * 1e3).sum(dim=1, keepdim=True)

    with pytest.raises(FloatingPointError, match="class 0, restart .* diverged"):
        feature_ascent(Blowup(), (4,), [0], restarts=2, l2=1.0)


def test_non_differentiable_head_is_reported():
    class Argmax(nn.Module):
        def forward(self, h):
            return h.argmax(dim=1, keepdim=True).float()

    with pytest.raises(ValueError, match="do not depend differentiably on H"):
        feature_ascent(Argmax(), (4,), [0], restarts=2, l2=1.0)


def test_bad_settings_are_reported():
    with pytest.raises(ValueError, match="l2 .lambda. must be a positive"):
        feature_ascent(nn.Linear(4, 1), (4,), [0], l2=-1.0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        feature_ascent(nn.Linear(4, 1), (4,), [0], optimizer="sgd")


def test_bfloat16_reaches_the_optimum_to_its_precision():
    model, lam = linear_model(k=32), 0.5
    res = dr.resolve(model, "0", input_shape=(32,), restarts=2, l2=lam, precision="bfloat16")
    w = model[1].weight.detach().numpy()
    np.testing.assert_allclose(res.fims[..., 0], np.broadcast_to((w / (2 * lam))[:, None], res.fims[..., 0].shape),
                               atol=2e-2 * np.abs(w).max())
    with pytest.raises(ValueError, match="precision must be"):
        dr.resolve(model, "0", input_shape=(32,), l2=lam, precision="float16")


def test_evaluate_scores_maps():
    from deepresolve.ascent import evaluate

    model = linear_model()
    res = dr.resolve(model, "0", input_shape=(8,), restarts=2, l2=0.5)
    s, obj = evaluate(model[1], torch.from_numpy(res.fims[:, 0, :, 0]), [0, 1, 2], 0.5)
    np.testing.assert_allclose(s.numpy(), res.scores[:, 0], rtol=1e-5)
    w, b = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    np.testing.assert_allclose(obj.numpy(), b + (w**2).sum(1) / (4 * 0.5), rtol=1e-5)  # closed-form optimum
