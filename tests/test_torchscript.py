"""TorchScript models take no forward hooks: every analysis reads their layers without them, with equal results."""

import numpy as np
import torch

import deepresolve as dr
from tests.test_interactions import load_fixture


def test_interactions_of_a_torchscript_model_equal_those_of_the_module():
    case, model, _ = load_fixture("xor40")
    scripted = torch.jit.script(model)
    a = dr.interactions(model, case.layer, input_shape=(4, case.length), seed=0, contexts=16)
    b = dr.interactions(scripted, case.layer, input_shape=(4, case.length), seed=0, contexts=16)
    np.testing.assert_array_equal(a.group_words, b.group_words)
    np.testing.assert_allclose(a.group_values, b.group_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-6)


def test_channel_motifs_of_a_torchscript_model_equal_those_of_the_module():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 5), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
                                torch.nn.Conv1d(8, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(36, 2)).eval()
    x = torch.eye(4)[torch.randint(0, 4, (10, 20))].transpose(1, 2)
    a, _ = dr.channel_motifs(model, "3", x, seed=0)
    b, _ = dr.channel_motifs(torch.jit.script(model), "3", x, seed=0)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
