"""A model argument that is not a module, and a model whose outputs are not finite, are refused by name."""

import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.errors import ArgumentError, ModelError


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 2))


@pytest.mark.parametrize("call", [
    lambda m: dr.resolve(m, "1", input_shape=(4, 20), restarts=2),
    lambda m: dr.split_model(m, "1", input_shape=(4, 20)),
    lambda m: dr.list_layers(m, input_shape=(4, 20)),
], ids=["resolve", "split_model", "list_layers"])
def test_a_path_or_none_where_a_model_is_expected(call, tmp_path):
    with pytest.raises(ArgumentError, match=r"^model: expected a torch\.nn\.Module, got the path '.*m\.pt'; load it "
                                            r"first with model = deepresolve\.load_model\("):
        call(str(tmp_path / "m.pt"))
    with pytest.raises(ArgumentError, match=r"^model: expected a torch\.nn\.Module \(load a file with "
                                            r"deepresolve\.load_model\), got NoneType"):
        call(None)


def test_nan_weights_are_reported_as_such_before_the_split_check():
    model = _model()
    with torch.no_grad():
        model[3].weight[0, 0] = float("nan")
    with pytest.raises(ModelError, match=r"^model: expected finite outputs, got NaN or infinite values on an input of "
                                         r"shape \(1, 4, 20\): 1 of its parameters hold NaN or infinite values "
                                         r"\(3\.weight\)"):
        dr.resolve(model, "1", input_shape=(4, 20), restarts=2)
