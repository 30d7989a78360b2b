import re

import numpy as np
import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.ascent import ASCENT_OPTIONS, DEFAULTS, OPTIMIZERS, check_ascent_options, feature_ascent
from deepresolve.errors import ArgumentError, DivergenceError, ModelError


def linear_model(k=8, c=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Identity(), nn.Linear(k, c))


@pytest.mark.parametrize("optimizer", ["matched", "bundle", "paper"])
def test_linear_head_reaches_closed_form_optimum(optimizer):
    model, lam = linear_model(), 0.7
    res = dr.resolve(model, "0", input_shape=(8,), restarts=4, l2=lam, optimizer=optimizer, seed=3,
                     **({"steps": 3000} if optimizer == "paper" else {}))
    w = model[1].weight.detach().numpy()
    expected = np.broadcast_to((w / (2 * lam))[:, None, :], res.fims[..., 0].shape)
    tol = 1e-3 if optimizer == "paper" else 1e-5
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


def test_seeded_starts_do_not_depend_on_batching_or_class_subset():
    from deepresolve.ascent import initial_maps

    model = nn.Sequential(nn.Identity(), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    a = dr.resolve(model, "0", input_shape=(6,), restarts=5, l2=0.3, seed=7)
    b = dr.resolve(model, "0", input_shape=(6,), restarts=5, l2=0.3, seed=7, batch_size=3)
    c = dr.resolve(model, "0", input_shape=(6,), classes=[2, 3], restarts=5, l2=0.3, seed=7)
    # the starts are exactly equal; the results within the stated tolerance (rounding depends on the batch)
    rows = [(k, t) for k in range(4) for t in range(5)]
    np.testing.assert_array_equal(initial_maps(rows, (6,), 7, 1.0)[10:], initial_maps(rows[10:], (6,), 7, 1.0))

    def obj(r):  # the ascent's objective: the class score minus the l2 penalty
        return r.scores - 0.3 * (r.fims.astype(np.float64) ** 2).sum(axis=(2, 3))

    assert_within_batching_tolerance(a.fims, b.fims, obj(a), obj(b))
    assert_within_batching_tolerance(a.fims[2:], c.fims, obj(a)[2:], obj(c))
    d = dr.resolve(model, "0", input_shape=(6,), restarts=5, l2=0.3, seed=8)
    assert not np.allclose(a.fims, d.fims)


def assert_within_batching_tolerance(fims_a, fims_b, obj_a, obj_b):
    """The tolerance stated in the ascent's docstring ("Batching"), for (C, T, K, ...) FIMs and (C, T) objectives."""
    fims_a, fims_b = np.asarray(fims_a, np.float64), np.asarray(fims_b, np.float64)
    C, T, K = fims_a.shape[:3]
    np.testing.assert_allclose(obj_b, obj_a, rtol=1e-3, atol=0)
    fiv_a, fiv_b = fims_a.reshape(C, T, K, -1).mean(-1), fims_b.reshape(C, T, K, -1).mean(-1)
    class_max = np.abs(fiv_a).reshape(C, -1).max(1)[:, None, None]
    assert (np.abs(fiv_b - fiv_a) <= 5e-2 * class_max).all()
    clear = np.abs(fiv_a) > 0.1 * class_max
    assert clear.any() and (np.sign(fiv_a) == np.sign(fiv_b))[clear].all()


def small_conv_head(seed):
    """An untrained head H (8, 12) -> conv, ReLU, max-pool, dense, ReLU, dense -> 4 outputs: ReLU kinks everywhere."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(8, 12, 5), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(12 * 4, 16),
                         nn.ReLU(), nn.Linear(16, 4)).eval().requires_grad_(False)


@pytest.mark.parametrize("optimizer", ["matched", "bundle", "paper"])
def test_batch_size_changes_results_only_within_the_stated_tolerance(optimizer):
    head = small_conv_head(9)
    kwargs = dict(optimizer=optimizer, seed=9, **({"lr": 0.05, "steps": 200} if optimizer == "paper" else {}))
    ref = feature_ascent(head, (8, 12), range(4), 3, 0.7, **kwargs)  # default batch: all 12 rows at once
    for batch_size in (1, 5):  # 5 < 12 rows: finished rows leave and pending rows join mid-run
        out = feature_ascent(head, (8, 12), range(4), 3, 0.7, batch_size=batch_size, **kwargs)
        assert_within_batching_tolerance(ref.fims, out.fims, ref.objective, out.objective)


def test_paper_optimizer_with_more_rows_than_the_batch_refills_it():
    # rows joining a running batch used to get no gradient ("size of tensor a (4) must match ... (3)")
    head = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    full = feature_ascent(head, (6,), range(4), 3, 0.5, optimizer="paper", lr=0.05, steps=300, seed=1)
    small = feature_ascent(head, (6,), range(4), 3, 0.5, optimizer="paper", lr=0.05, steps=300, seed=1, batch_size=4)
    assert_within_batching_tolerance(full.fims, small.fims, full.objective, small.objective)
    assert small.row_steps == small.steps.sum()


def test_matched_steps_need_far_fewer_steps_than_the_paper_schedule():
    model = nn.Sequential(nn.Identity(), nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
    fast = dr.resolve(model, "0", input_shape=(20,), restarts=4, l2=1.0)
    slow = dr.resolve(model, "0", input_shape=(20,), restarts=4, l2=1.0, optimizer="paper", lr=0.01)
    assert fast.steps.mean() * 10 < slow.steps.mean()

    def obj(r):  # the ascent's objective: the class score minus the l2 penalty
        return r.scores - 1.0 * (r.fims.astype(np.float64) ** 2).sum(axis=(2, 3))

    assert obj(fast).mean() >= obj(slow).mean() - 1e-3


@pytest.mark.parametrize("optimizer", ["matched", "bundle"])
def test_nonnegative_and_center_options(optimizer):
    model, lam = linear_model(), 1.0
    w = model[1].weight.detach().numpy()
    res = dr.resolve(model, "0", input_shape=(8,), restarts=2, l2=lam, nonnegative=True, optimizer=optimizer)
    np.testing.assert_allclose(res.fims[..., 0], np.broadcast_to(np.clip(w / 2, 0, None)[:, None], (3, 2, 8)),
                               atol=1e-5)
    center = torch.linspace(-1, 1, 8)
    res = dr.resolve(model, "0", input_shape=(8,), restarts=2, l2=lam, l2_center=center, optimizer=optimizer)
    np.testing.assert_allclose(res.fims[..., 0], np.broadcast_to((w / 2 + center.numpy())[:, None], (3, 2, 8)),
                               atol=1e-5)


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

    with pytest.raises(DivergenceError, match="class 0, restart .* diverged"):
        feature_ascent(Blowup(), (4,), [0], restarts=2, l2=1.0)


def test_non_differentiable_head_is_reported():
    class Argmax(nn.Module):
        def forward(self, h):
            return h.argmax(dim=1, keepdim=True).float()

    with pytest.raises(ModelError, match="do not depend differentiably on H"):
        feature_ascent(Argmax(), (4,), [0], restarts=2, l2=1.0)


@pytest.mark.parametrize("option, value, message", [
    ("optimizer", "sgd", "optimizer: expected one of 'matched', 'bundle', 'paper', got 'sgd'"),
    ("restarts", 0, "restarts: expected an integer >= 1, got 0"),
    ("restarts", 2.0, "restarts: expected an integer, got float 2.0"),
    ("l2", -1.0, "l2 (lambda): expected a finite number > 0, got -1.0"),
    ("l2", float("inf"), "l2 (lambda): expected a finite number > 0, got inf"),
    ("lr", 0.0, "lr: expected a finite number > 0, got 0.0"),
    ("steps", 0, "steps: expected an integer >= 1, got 0"),
    ("tol", -1e-3, "tol: expected a finite number >= 0.0, got -0.001"),
    ("patience", 0, "patience: expected an integer >= 1, got 0"),
    ("fiv_tol", -1.0, "fiv_tol: expected a finite number >= 0.0, got -1.0"),
    ("start_decay", -1, "start_decay: expected an integer >= 0, got -1"),
    ("decay", 0, "decay: expected a finite number > 0, got 0"),
    ("min_lr", 0.0, "min_lr: expected a finite number > 0, got 0.0"),
    ("cuts", 1, "cuts: expected an integer in [2, 8], got 1"),
    ("batch_size", 0, "batch_size: expected an integer >= 1, got 0"),
    ("init_scale", -2.0, "init_scale: expected a finite number > 0, got -2.0"),
    ("precision", "float16", "precision: expected one of 'float32', 'bfloat16', got 'float16'"),
    ("tolerance", 1e-3, "tolerance: unknown ascent option(s)"),
])
def test_every_option_is_checked_before_any_work(option, value, message):
    class Untouchable(nn.Module):
        def forward(self, h):
            raise AssertionError("the head ran before the options were checked")

    with pytest.raises(ArgumentError, match=re.escape(message)):
        check_ascent_options(**{option: value, **({"optimizer": "bundle"} if option == "cuts" else {})})
    kwargs = {"optimizer": "paper", option: value} if option in ("start_decay", "decay", "min_lr") else {option: value}
    if option == "cuts":
        kwargs["optimizer"] = "bundle"
    with pytest.raises(ArgumentError, match=re.escape(message)):
        feature_ascent(Untouchable(), (4,), [0], **kwargs)


def test_cuts_belong_to_the_bundle_optimizer():
    with pytest.raises(ArgumentError, match=re.escape("cuts: an option of optimizer='bundle' only; got cuts=4 with "
                                                      "optimizer='matched'")):
        check_ascent_options("matched", cuts=4)


def test_check_ascent_options_resolves_the_defaults():
    assert check_ascent_options("matched") == DEFAULTS["matched"]
    assert check_ascent_options("paper", lr=0.5, patience=3, l2=None) == {**DEFAULTS["paper"], "lr": 0.5, "patience": 3}


def test_bfloat16_reaches_the_optimum_to_its_precision():
    model, lam = linear_model(k=32), 0.5
    res = dr.resolve(model, "0", input_shape=(32,), restarts=2, l2=lam, precision="bfloat16")
    w = model[1].weight.detach().numpy()
    np.testing.assert_allclose(res.fims[..., 0], np.broadcast_to((w / (2 * lam))[:, None], res.fims[..., 0].shape),
                               atol=2e-2 * np.abs(w).max())
    with pytest.raises(ValueError, match="precision: expected one of"):
        dr.resolve(model, "0", input_shape=(32,), l2=lam, precision="float16")


def test_evaluate_scores_maps():
    from deepresolve.ascent import evaluate

    model = linear_model()
    res = dr.resolve(model, "0", input_shape=(8,), restarts=2, l2=0.5)
    s, obj = evaluate(model[1], torch.from_numpy(res.fims[:, 0, :, 0]), [0, 1, 2], 0.5)
    np.testing.assert_allclose(s.numpy(), res.scores[:, 0], rtol=1e-5)
    w, b = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    np.testing.assert_allclose(obj.numpy(), b + (w**2).sum(1) / (4 * 0.5), rtol=1e-5)  # closed-form optimum


class TwoKinkHead(nn.Module):
    """S(h) = a.h - b1 relu(w1.h) - b2 relu(w2.h), w1 orthogonal to w2, b_i > a.w_i / |w_i|^2.

    Both penalties bind at the optimum of S - lam |h|^2, which lies on both kinks: the projection of a onto the
    complement of (w1, w2), over 2 lam (closed form), with objective |P a|^2 / (4 lam).
    """

    def __init__(self, n=12, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        a, w1, w2 = torch.randn(3, n, generator=gen, dtype=torch.float64)
        w1 = w1 * torch.sign(a @ w1)  # a.w1 > 0: the unconstrained optimum lies beyond kink 1
        w2 = w2 - (w2 @ w1) / (w1 @ w1) * w1
        w2 = w2 * torch.sign(a @ w2)
        self.register_buffer("w", torch.stack([a, w1, w2]).float())
        self.register_buffer("b", torch.tensor([1.0, 3 * float(a @ w1 / (w1 @ w1)), 2 * float(a @ w2 / (w2 @ w2))]))
        basis = torch.linalg.qr(torch.stack([w1, w2], 1))[0]
        self.optimum_direction = a - basis @ (basis.T @ a)  # P a, float64

    def forward(self, h):
        z = h @ self.w.T
        return (z[:, 0] - self.b[1] * torch.relu(z[:, 1]) - self.b[2] * torch.relu(z[:, 2]))[:, None]


def test_bundle_reaches_an_optimum_on_two_kinks_in_a_few_steps_where_the_matched_rule_crawls():
    head, lam = TwoKinkHead(), 0.5
    expected = (head.optimum_direction / (2 * lam)).numpy()
    best = float(head.optimum_direction @ head.optimum_direction) / (4 * lam)
    fast = feature_ascent(head, (12,), [0], 4, lam, optimizer="bundle", seed=2)
    np.testing.assert_allclose(fast.fims[0], np.broadcast_to(expected, (4, 12)), atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(fast.objective[0], best, rtol=1e-6)
    assert fast.steps.max() <= 10
    # the old rule, with as many steps, is still far from the optimum (it halves its step on the kinks)
    slow = feature_ascent(head, (12,), [0], 4, lam, optimizer="matched", tol=0.0, steps=12, patience=13, seed=2)
    assert (slow.objective[0] < best * (1 - 1e-4)).all()
    slow_steps = feature_ascent(head, (12,), [0], 4, lam, optimizer="matched", seed=2).steps
    assert slow_steps.mean() > 2 * fast.steps.mean()


def test_bundle_cut_products_equal_the_direct_products_across_row_chunks():
    from deepresolve.ascent.optimizers import CHUNK, cut_products
    gen = torch.Generator().manual_seed(0)
    B, k, F = 2 * CHUNK + 3, 4, 50  # two full chunks and a partial one
    cut_a, a0, best_u = (torch.randn(B, k, F, generator=gen), torch.randn(B, F, generator=gen),
                         torch.randn(B, F, generator=gen))
    got = cut_products(cut_a, a0, best_u).numpy()
    v = torch.cat([cut_a - a0[:, None], a0[:, None], best_u[:, None]], 1).double()
    np.testing.assert_allclose(got, (v @ v.transpose(1, 2)).numpy(), rtol=1e-5, atol=1e-4)


def test_bundle_distrusts_far_cuts_more_after_each_failed_step():
    from deepresolve.ascent.optimizers import BUNDLE_FAR, BUNDLE_FAR_MAX, step_bundle
    from deepresolve.ascent.rows import Rows
    head = TwoKinkHead()
    opts = check_ascent_options("bundle")
    rows = Rows.start([0], [0], torch.randn(1, 12), opts["lr"], opts["cuts"], BUNDLE_FAR)
    values = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]  # every step after the first lowers the objective
    for step, value in enumerate(values):
        u = rows.h.flatten(1)
        obj = torch.tensor([value])
        s = obj + 0.5 * u.square().sum(1)
        grad = head.optimum_direction.float()[None] - u  # the objective's gradient at l2 = 0.5
        step_bundle(rows, s, obj, grad, opts, 0.5, None)
        assert rows.far.item() == pytest.approx(min(BUNDLE_FAR * 2 ** step, BUNDLE_FAR_MAX))
    assert rows.best_obj.item() == 5.0


@pytest.mark.parametrize("padding", [0, 3])
def test_cpu_convolution_input_gradient_equals_autograd_and_leaves_the_head_alone(padding):
    from deepresolve.ascent.fastconv import FrozenConv1d, fast_input_gradients
    from deepresolve.ascent.objective import value_and_grad
    torch.manual_seed(0)
    head = nn.Sequential(nn.Conv1d(6, 5, 4, padding=padding), nn.ReLU(), nn.Conv1d(5, 3, 3), nn.ReLU(),
                         nn.Conv1d(3, 3, 2, stride=2), nn.Flatten(), nn.Linear(3 * ((20 + 2 * padding - 5) // 2), 2))
    fast = fast_input_gradients(head)
    assert [type(m) for m in fast] == [FrozenConv1d, nn.ReLU, FrozenConv1d, nn.ReLU, nn.Conv1d, nn.Flatten, nn.Linear]
    assert all(type(m) is not FrozenConv1d for m in head) and fast[4] is head[4]  # caller's head untouched
    h, cls = torch.randn(7, 6, 20), torch.randint(0, 2, (7,))
    for a, b in zip(value_and_grad(head, h, cls, 0.5, None), value_and_grad(fast, h, cls, 0.5, None)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


def test_convolution_head_reaches_its_closed_form_optimum():
    # a linear convolution then a linear read-out: S(H) = w . conv(H) + b, so the optimum is conv^T w / (2 lambda),
    # which only the convolution's input gradient (the fast CPU path) can produce
    torch.manual_seed(2)
    conv, lam = nn.Conv1d(5, 4, 3, padding=1), 0.8
    model = nn.Sequential(nn.Identity(), nn.Sequential(conv, nn.Flatten(), nn.Linear(4 * 9, 2)))
    res = dr.resolve(model, "0", input_shape=(5, 9), restarts=3, l2=lam)
    w = model[1][2].weight.detach().reshape(2, 4, 9)
    expected = torch.nn.grad.conv1d_input((2, 5, 9), conv.weight.detach(), w, padding=1).numpy() / (2 * lam)
    np.testing.assert_allclose(res.fims, np.broadcast_to(expected[:, None], res.fims.shape), atol=1e-5)


def test_the_head_must_return_class_scores_per_row():
    class Flat(nn.Module):
        def forward(self, h):
            return h.sum(dim=1)

    with pytest.raises(ModelError, match=re.escape("head: expected class scores of shape (N, C), got (2,)")):
        feature_ascent(Flat(), (4,), [0], restarts=2, l2=1.0)


def test_an_option_of_another_optimizer_is_refused():
    for optimizer, option, value, owner in [("matched", "start_decay", 100, "'paper'"),
                                            ("bundle", "decay", 0.3, "'paper'"), ("paper", "cuts", 4, "'bundle'"),
                                            ("paper", "fiv_tol", 0.01, "'matched' or 'bundle'")]:
        with pytest.raises(ArgumentError, match=re.escape(f"{option}: an option of optimizer={owner} only; got "
                                                          f"{option}={value!r} with optimizer={optimizer!r}")):
            feature_ascent(linear_model()[1], (8,), [0], optimizer=optimizer, **{option: value})


def test_a_misspelt_option_names_the_nearest_one():
    message = ("tolerance: unknown ascent option(s); expected some of lr, steps, tol, patience, fiv_tol, cuts, "
               "start_decay, decay, min_lr, got tolerance=0.001; did you mean tol?")
    with pytest.raises(ArgumentError, match=re.escape(message)):
        feature_ascent(linear_model()[1], (8,), [0], tolerance=1e-3)
    with pytest.raises(ArgumentError, match=re.escape("did you mean batch_size?")):  # the function's own keywords too
        feature_ascent(linear_model()[1], (8,), [0], batchsize=4)
    with pytest.raises(ArgumentError, match=re.escape("did you mean cuts (for cut), min_lr (for minlr)?")):
        check_ascent_options("bundle", cut=3, minlr=1e-3)


def test_old_keyword_names_still_work_with_a_future_warning():
    head = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    kwargs = dict(optimizer="paper", lr=0.05, steps=60, start_decay=20, seed=1)
    new = feature_ascent(head, (6,), range(2), 2, 0.5, decay=0.5, keep_fims=False, **kwargs)
    with pytest.warns(FutureWarning, match=r"feature_ascent\(alpha=...\) is now feature_ascent\(decay=...\)"):
        old = feature_ascent(head, (6,), range(2), 2, 0.5, alpha=0.5, keep_fims=False, **kwargs)
    np.testing.assert_array_equal(old.fivs, new.fivs)
    with pytest.warns(FutureWarning, match=r"keep_maps=...\) is now feature_ascent\(keep_fims=...\)"):
        lean = feature_ascent(head, (6,), range(2), 2, 0.5, decay=0.5, keep_maps=False, **kwargs)
    assert lean.fims is None
    np.testing.assert_array_equal(lean.fivs, new.fivs)
    with pytest.warns(FutureWarning, match="alpha"):
        assert check_ascent_options("paper", alpha=0.3)["decay"] == 0.3
    with pytest.raises(ArgumentError, match="alpha: expected decay= alone"):
        check_ascent_options("paper", alpha=0.3, decay=0.3)


def test_the_option_table_gives_every_optimizer_its_defaults_and_its_step_rule():
    from deepresolve.ascent.optimizers import STEP_RULES

    assert set(STEP_RULES) == set(OPTIMIZERS) == set(DEFAULTS)
    assert DEFAULTS["matched"] == {"lr": 1.0, "steps": 500, "tol": 1e-5, "patience": 2, "fiv_tol": 0.0}
    assert DEFAULTS["bundle"] == {"lr": 1.0, "steps": 500, "tol": 3e-5, "patience": 3, "fiv_tol": 0.0, "cuts": 6}
    assert DEFAULTS["paper"] == {"lr": 0.1, "steps": 10_000, "tol": 0.0, "patience": 10, "start_decay": 500,
                                 "decay": 0.2, "min_lr": 1e-6}
    # every setting of the table is a keyword of feature_ascent, by name or through its **step_options
    import inspect
    named = set(inspect.signature(feature_ascent).parameters)
    assert {name for name, o in ASCENT_OPTIONS.items() if o.per_optimizer is None} <= named
    assert ASCENT_OPTIONS["steps"].describe() == ("most steps per row (an integer >= 1; default 500 ('matched', "
                                                   "'bundle'), 10000 ('paper')).")


@pytest.mark.parametrize("optimizer", ["matched", "bundle"])
def test_the_fiv_rule_stops_a_linear_head_at_its_closed_form_optimum(optimizer):
    torch.manual_seed(1)
    head, lam = nn.Sequential(nn.Flatten(), nn.Linear(5 * 6, 2)), 2.0
    # tol 0: only the FIV rule can stop a row before the step cap
    out = feature_ascent(head, (5, 6), [0, 1], 3, lam, optimizer=optimizer, tol=0.0, fiv_tol=1e-4, steps=200)
    w = head[1].weight.detach().numpy().reshape(2, 5, 6) / (2 * lam)
    np.testing.assert_allclose(out.fims.numpy(), np.broadcast_to(w[:, None], out.fims.shape), atol=1e-5)
    np.testing.assert_allclose(out.fivs, np.broadcast_to(w.mean(-1)[:, None], out.fivs.shape), atol=1e-6)
    assert out.steps.max() < 20


def test_the_fiv_rule_stops_a_relu_row_at_the_first_steps_that_leave_its_fiv_in_place():
    # batch_size 1: every row runs the same arithmetic alone, so a run capped at n steps retraces the first n
    head, fiv_tol = small_conv_head(4), 1e-2
    kwargs = dict(optimizer="matched", tol=0.0, patience=1, seed=4, batch_size=1)
    out = feature_ascent(head, (8, 12), [0, 1], 2, 0.3, fiv_tol=fiv_tol, **kwargs)
    plain = feature_ascent(head, (8, 12), [0, 1], 2, 0.3, **kwargs)
    assert (out.steps < plain.steps).all()
    for r, n in enumerate(out.steps.ravel()):
        c, t = divmod(r, 2)
        at = [feature_ascent(head, (8, 12), [c], 2, 0.3, optimizer="matched", tol=0.0, steps=k, patience=k + 1,
                             seed=4, batch_size=1).fivs[0, t] for k in (n - 1, n)]
        np.testing.assert_array_equal(at[1], out.fivs[c, t])
        assert np.abs(at[1] - at[0]).max() <= fiv_tol * np.abs(at[1]).max()
