"""enformer-pytorch's own Enformer (skipped without enformer-pytorch), at a tiny configuration: built through its
class-method factory, cut at its stem and conv tower (modules it calls through a second name, ``_trunk``), resolved
and measured for interactions on a dict output of channels-last profiles."""

from __future__ import annotations

import pytest
import torch

import deepresolve as dr
from deepresolve.io.models import load_model
from deepresolve.split import SplitError

pytest.importorskip("enformer_pytorch")

L = 256
TINY = dict(dim=48, depth=1, heads=2, output_heads=dict(human=3), target_length=4, num_downsamples=3,
            dim_divisible_by=8)


@pytest.fixture(scope="module")
def enformer():
    torch.manual_seed(0)
    return load_model("enformer_pytorch:Enformer.from_hparams", factory_kwargs=TINY)


def test_enformer_cuts_where_its_trunk_calls_the_module(enformer, one_thread):
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (3, L)), 4).float().transpose(1, 2)
    want = dr.split.adapt(enformer, "human:sum", channels_last=True)(x)
    for layer in ("stem", "conv_tower.0", "conv_tower.1"):
        body, head = dr.split_model(enformer, layer, input_shape=(4, L), output="human:sum", channels_last=True)
        torch.testing.assert_close(head(body(x)), want, rtol=1e-4, atol=1e-5)
    # a convolution inside a residual block is not a cut: the block's sum reads its input too
    with pytest.raises(SplitError, match="Cut instead"):
        dr.split_model(enformer, "conv_tower.0.1.fn", input_shape=(4, L), output="human:sum", channels_last=True)


def test_enformer_resolve_and_interactions(enformer, one_thread):
    res = dr.resolve(enformer, "conv_tower.0", input_shape=(4, L), output="human:sum", channels_last=True,
                     restarts=2, steps=20, seed=0)
    assert res.ofiv.shape == (3, 24) and res.params["output"] == "human:sum"
    ia = dr.interactions(enformer, "stem", input_shape=(4, L), output="human:sum", channels_last=True, contexts=4,
                         backgrounds=4, top=2, motif_words="filters", seed=0)
    assert ia.main.shape == (3, 24) and ia.params["channels_last"] is True


def test_enformer_factory_errors(one_thread):
    with pytest.raises(dr.errors.ModelError, match="has no 'Enformer.nothing'"):
        load_model("enformer_pytorch:Enformer.nothing")
