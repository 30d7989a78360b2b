"""bpnet-lite's own BPNet and ChromBPNet (skipped without bpnet-lite): saved as bpnet-lite saves them (a whole
pickled module), loaded with trust_pickle, cut, resolved and measured for interactions."""

from __future__ import annotations

import pytest
import torch

import deepresolve as dr
from deepresolve.io.models import load_model
from deepresolve.split import SplitError

bpnet = pytest.importorskip("bpnetlite.bpnet")
chrombpnet = pytest.importorskip("bpnetlite.chrombpnet")

L = 200  # the default trimming of 3 layers is 61 on each side


def tiny_bpnet(n_control_tracks=0, seed=0):
    torch.manual_seed(seed)
    return bpnet.BPNet(n_filters=8, n_layers=3, n_outputs=2, n_control_tracks=n_control_tracks, verbose=False).eval()


def test_bpnet_lite_bpnet_end_to_end(tmp_path, one_thread):
    torch.save(tiny_bpnet(), tmp_path / "bpnet.torch")
    model = load_model(tmp_path / "bpnet.torch", trust_pickle=True)
    x = torch.randn(3, 4, L)
    for layer, at, output in (("irelu", "output", 1), ("fconv", "input", "0:bpnet")):
        body, head = dr.split_model(model, layer, input_shape=(4, L), at=at, output=output)
        want = dr.split.adapt(model, output)(x)
        torch.testing.assert_close(head(body(x)), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(SplitError, match=r"Cut instead at layer='rconvs\.2', at='input'"):
        dr.split_model(model, "rrelus.1", input_shape=(4, L), output=1)
    res = dr.resolve(model, "irelu", input_shape=(4, L), output=1, restarts=2, steps=20, seed=0,
                     interactions={"contexts": 4, "backgrounds": 4, "top": 3, "motif_words": "filters"})
    assert res.fivs.shape == (1, 2, 8) and res.params["output"] == "1"
    assert res.interactions.params["output"] == "1"


def test_bpnet_lite_with_control_tracks_and_chrombpnet(one_thread):
    model = tiny_bpnet(n_control_tracks=2)
    body, head = dr.split_model(bpnet.ControlWrapper(model), "model.fconv", input_shape=(4, L), at="input",
                                output="0:logsumexp")
    assert body(torch.randn(2, 4, L)).shape == (2, 10, L)
    res = dr.resolve(model, "irelu", input_shape=(4, L), output=1, restarts=2, steps=10,
                     fixed_inputs={"X_ctl": torch.zeros(2, L)})
    assert res.params["fixed_inputs"] == {"X_ctl": [2, L]}
    chrom = chrombpnet.ChromBPNet(tiny_bpnet(seed=1), tiny_bpnet(seed=2)).eval()
    with pytest.raises(SplitError, match=r"model\.accessibility, layer 'irelu'"):
        dr.split_model(chrom, "accessibility.irelu", input_shape=(4, L), output=1)
    dr.split_model(chrom.accessibility, "irelu", input_shape=(4, L), output=1)
