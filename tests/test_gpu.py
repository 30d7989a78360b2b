"""The analyses on a CUDA device give the CPU's answer (run only where a GPU is present).

cuDNN convolutions use TF32 on recent GPUs (about 1e-3 relative), so values are compared to a share of their
largest magnitude, and discrete answers (groups, pairs, the top channel) exactly.
"""

import numpy as np
import pytest
import torch

import deepresolve as dr
from deepresolve.paper.fixtures import load_fixture as paper_fixture
from tests.test_interactions import load_fixture

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
              pytest.mark.usefixtures("one_thread")]

GPU = "cuda"
SETTINGS = dict(input_shape=(4, 40), seed=0)


def close(got: np.ndarray, want: np.ndarray, share: float = 2e-2) -> None:
    np.testing.assert_allclose(got, want, rtol=0, atol=share * max(float(np.abs(want).max()), 1e-12))


def test_resolve_on_the_gpu_gives_the_cpu_answer():
    model, _ = paper_fixture("set_one")
    want = dr.resolve(model, "pool1", restarts=4, device="cpu", **SETTINGS)
    got = dr.resolve(model, "pool1", restarts=4, device=GPU, **SETTINGS)
    assert got.params["l2"] == pytest.approx(want.params["l2"], rel=1e-3)
    close(got.ofiv, want.ofiv)
    np.testing.assert_array_equal(np.argmax(got.ofiv, axis=1), np.argmax(want.ofiv, axis=1))


def test_interactions_on_the_gpu_give_the_cpu_answer():
    _, model, _ = load_fixture("xor40")
    want = dr.interactions(model, "pool1", contexts=32, device="cpu", **SETTINGS)
    got = dr.interactions(model, "pool1", contexts=32, device=GPU, **SETTINGS)
    np.testing.assert_array_equal(got.group_words, want.group_words)
    np.testing.assert_array_equal(got.group_pairs, want.group_pairs)
    close(got.group_values, want.group_values)
    np.testing.assert_array_equal(got.group_qvalues < got.significance, want.group_qvalues < want.significance)
