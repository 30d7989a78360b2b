import pytest
import torch
from torch import nn

import deepresolve as dr
from deepresolve.split import SplitError


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv1d(4, 8, 5), nn.ReLU(), nn.MaxPool1d(2)),
        nn.Sequential(nn.Conv1d(8, 6, 3), nn.ReLU()),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(6 * 6, 3), nn.Sigmoid(),
    )


class Branchy(nn.Module):
    """Not a Sequential: torch.fx must trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 5, 3)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return torch.sigmoid(self.fc(self.pool(h).flatten(1)))


class Skip(Branchy):
    def forward(self, x):
        h = self.conv(x)
        return self.fc(self.pool(h).flatten(1) + x.mean(dim=(1, 2))[:, None])


class Dynamic(Branchy):
    def forward(self, x):
        h = self.conv(x)
        if h.sum() > 0:  # data-dependent control flow: not traceable
            h = h * 2
        return self.fc(self.pool(h).flatten(1))


def test_nested_sequential_split_reproduces_model():
    model = small_cnn().eval()
    x = torch.randn(7, 4, 20)
    body, head = dr.split_model(model, "1.0", input_shape=(4, 20))
    assert not any(isinstance(m, nn.Sigmoid) for m in head.modules()), "the final sigmoid must be stripped"
    torch.testing.assert_close(torch.sigmoid(head(body(x))), model(x))
    assert body(x).shape == (7, 6, 6)
    # the user's model is untouched: still has its sigmoid and gradients enabled
    assert isinstance(model[-1], nn.Sigmoid) and all(p.requires_grad for p in model.parameters())


def test_split_at_input_of_a_layer():
    model = small_cnn().eval()
    x = torch.randn(3, 4, 20)
    body, head = dr.split_model(model, "1.0", input_shape=(4, 20), at="input")
    assert body(x).shape == (3, 8, 8)  # the output of the first block = the input of conv 1.0
    torch.testing.assert_close(torch.sigmoid(head(body(x))), model(x))


def test_fx_split_of_a_custom_module():
    model = Branchy().eval()
    x = torch.randn(5, 4, 12)
    body, head = dr.split_model(model, "pool", input_shape=(4, 12))
    assert body(x).shape == (5, 5, 1)
    torch.testing.assert_close(torch.sigmoid(head(body(x))), model(x))


def test_unknown_layer_lists_close_names():
    with pytest.raises(SplitError, match=r"layer='1.O' is not a module.*Close names: .*'1.0'"):
        dr.split_model(small_cnn(), "1.O", input_shape=(4, 20))


def test_skip_connection_needs_a_head():
    with pytest.raises(SplitError, match="skip connection.*head="):
        dr.split_model(Skip(), "conv", input_shape=(4, 12))


def test_untraceable_model_says_how_to_pass_head():
    with pytest.raises(SplitError, match="Pass head="):
        dr.split_model(Dynamic(), "conv", input_shape=(4, 12))
    model = Dynamic().eval()
    head = nn.Sequential(nn.AdaptiveMaxPool1d(1), nn.Flatten(), model.fc)
    body, head = dr.split_model(model, "conv", input_shape=(4, 12), head=head)
    assert body(torch.randn(2, 4, 12)).shape == (2, 5, 10)


def test_head_must_return_class_scores():
    model = nn.Sequential(nn.Conv1d(4, 3, 3), nn.ReLU(), nn.Conv1d(3, 2, 3))
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        dr.split_model(model, "0", input_shape=(4, 10))


def test_input_shape_that_does_not_fit():
    with pytest.raises(ValueError, match=r"input of shape \(1, 5, 20\)"):
        dr.split_model(small_cnn(), "1.0", input_shape=(5, 20))
    with pytest.raises(ValueError, match="input_shape: expected .* got neither"):
        dr.resolve(small_cnn(), "1.0")


def test_list_layers_gives_names_and_shapes():
    layers = {name: shape for name, _, shape in dr.list_layers(small_cnn(), (4, 20))}
    assert layers["0.2"] == (8, 8) and layers["2"] == (36,) and layers["4"] == (3,)
