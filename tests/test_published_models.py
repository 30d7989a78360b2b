"""Models as published (tests/published.py reproduces their code patterns): loaded, cut at a layer, run through
resolve and interactions; what cannot be cut is refused with where to cut instead."""

from __future__ import annotations

import published as P
import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.errors import ArgumentError, ModelError
from deepresolve.split import SplitError, adapt

L = 160  # > 2 x bpnet trimming (61 for 3 layers)


def check_split(model, layer, shape, **kw):
    """head(body(x)) equals the adapted model's scores on a batch of different inputs; returns (body, head)."""
    body, head = dr.split_model(model, layer, input_shape=shape, **kw)
    x = torch.randn(5, *shape)
    adapted = {k: v for k, v in kw.items() if k in ("output", "channels_last", "fixed_inputs")}
    want = adapt(model, **adapted)(x)
    torch.testing.assert_close(head(body(x)), want, rtol=1e-4, atol=1e-5)
    return body, head


def test_bpnet_cut_where_the_residual_stream_is_whole():
    model = P.bpnet()
    body, _ = check_split(model, "irelu", (4, L), output=1)  # counts
    assert body(torch.randn(2, 4, L)).shape == (2, 8, L)
    check_split(model, "fconv", (4, L), at="input", output="0:logsumexp")  # the whole trunk, profile scores
    check_split(model, "fconv", (4, L), at="input", output="0:bpnet")
    check_split(model, "fconv", (4, L), at="input", output="0:sum:20")
    # inside the residual stack the next block also reads the block's input: refused, with where to cut instead
    with pytest.raises(SplitError, match=r"skip connection.*Cut instead at layer='rconvs\.2', at='input'.*head="):
        dr.split_model(model, "rrelus.1", input_shape=(4, L), output=1)


def test_bpnet_wrapped_with_control_tracks_and_kwargs():
    """ControlWrapper forwards **kwargs and builds zero controls from X.shape[0]; fixed_inputs gives them too."""
    model = P.ControlWrapper(P.bpnet(n_control_tracks=2))
    body, _ = check_split(model, "model.fconv", (4, L), at="input", output="0:bpnet")
    assert body(torch.randn(3, 4, L)).shape == (3, 10, L)  # the trunk and the two control tracks
    check_split(model.model, "irelu", (4, L), output=1, fixed_inputs={"X_ctl": torch.zeros(2, L)})


def test_chrombpnet_refers_to_its_accessibility_model():
    model = P.chrombpnet()
    with pytest.raises(SplitError, match=r"analyse the part that holds the layer on its own \(model\.accessibility, "
                                         r"layer 'irelu'\)"):
        dr.split_model(model, "accessibility.irelu", input_shape=(4, L), output=1)
    check_split(model.accessibility, "irelu", (4, L), output=1)


def test_chrombpnet_pytorch_layout_check_and_cropped_residuals():
    model = P.chrombpnet_torch()  # if x.shape[1] != 4: folded, not traced
    check_split(model, "first", (4, 100), output=1)
    check_split(model, "profile", (4, 100), at="input", output="0:logsumexp")
    with pytest.raises(SplitError, match=r"Cut instead at layer='profile', at='input'"):
        dr.split_model(model, "convs.2", input_shape=(4, 100), output=1)


def test_enformer_like_channels_last_dict_output():
    model = P.enformer_like()
    check_split(model, "tower.1", (4, 32), output="human:sum", channels_last=True)
    check_split(model, "stem_block", (4, 32), output="mouse:logsumexp:2", channels_last=True)
    with pytest.raises(ArgumentError, match=r"output: expected a key of the model's output, a dict with keys "
                                            r"'human', 'mouse'; got 'rat'"):
        dr.split_model(model, "tower.1", input_shape=(4, 32), output="rat:sum", channels_last=True)


def test_sei_like_lazy_spline_basis():
    model = P.sei_like()
    dr.split_model(model, "spline_tr", input_shape=(4, 40))  # plain torch.fx fails on the first forward's branch
    assert model.spline_tr[1]._spline_tr is None, "the user's model is left as it was"
    check_split(model, "spline_tr", (4, 40), logits=False)  # scores with the final sigmoid, as the model's
    check_split(model, "lconv1", (4, 40), logits=False)
    with pytest.raises(SplitError, match=r"Cut instead at layer='lconv2\.0', at='input' or layer='lconv1\.1'"):
        dr.split_model(model, "conv1", input_shape=(4, 40))


class Dynamic(nn.Module):
    """Control flow on the data: no tracer follows it, the replayed head does."""

    def __init__(self, skip=False):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.fc, self.skip = nn.Conv1d(4, 5, 3), nn.Linear(5, 2), skip

    def forward(self, x):
        h = self.conv(x)
        if h.sum() > 0:
            h = h * 2
        out = self.fc(h.amax(dim=2))
        return out + x.mean(dim=(1, 2))[:, None] if self.skip else out


def test_replay_head_for_untraceable_models():
    with pytest.raises(SplitError, match=r"torch\.fx: .*torch\.export: .*head='replay'"):
        dr.split_model(Dynamic(), "conv", input_shape=(4, 12))
    body, head = dr.split_model(Dynamic(), "conv", input_shape=(4, 12), head="replay")
    x = torch.randn(6, 4, 12)
    torch.testing.assert_close(head(body(x)), Dynamic()(x))
    with pytest.raises(SplitError, match=r"head='replay': .* differ from the model's own.*skip connection"):
        dr.split_model(Dynamic(skip=True), "conv", input_shape=(4, 12), head="replay")


def test_output_spec_is_checked_before_any_work():
    for bad, message in ((True, "output: expected an index"), ("0:max", "output: expected a reduction among"),
                         ("0:sum:0", "output: expected a window of at least 1"), (2.5, "output: expected an index")):
        with pytest.raises(ArgumentError, match=message):
            dr.split_model(P.bpnet(), "irelu", input_shape=(4, L), output=bad)
    with pytest.raises(ArgumentError, match=r"output: expected an index into the model's output, a tuple of 2 "
                                            r"\(\(1, 2, 38\), \(1, 1\)\); got 2"):
        dr.split_model(P.bpnet(), "irelu", input_shape=(4, L), output=2)
    with pytest.raises(ModelError, match=r"output: expected a choice that gives a tensor .* a tuple of 2"):
        dr.split_model(P.bpnet(), "irelu", input_shape=(4, L))


@pytest.mark.parametrize("case", ["bpnet", "enformer", "sei", "chrombpnet_torch"])
def test_resolve_and_interactions_end_to_end(case, one_thread):
    model, layer, shape, kw = {
        "bpnet": (P.bpnet(), "irelu", (4, L), {"output": 1}),
        "enformer": (P.enformer_like(), "tower.1", (4, 32), {"output": "human:sum", "channels_last": True}),
        "sei": (P.sei_like(), "lconv1", (4, 40), {}),
        "chrombpnet_torch": (P.chrombpnet_torch(), "first", (4, 100), {"output": "0:logsumexp"}),
    }[case]
    res = dr.resolve(model, layer, input_shape=shape, restarts=2, steps=20, seed=0, **kw)
    assert res.fivs.shape[:2] == (res.scores.shape[0], 2)
    assert res.params["output"] == (None if "output" not in kw else str(kw["output"]))
    assert res.params["channels_last"] == kw.get("channels_last", False)
    ix = dr.interactions(model, layer, input_shape=shape, contexts=4, backgrounds=4, top=3, motif_words="filters",
                         seed=0, **kw)
    assert ix.main.shape[0] == res.scores.shape[0] and ix.params["output"] == res.params["output"]
