"""Model zoo shapes and layer names, the DeepSEA loader, and the trainer."""

import numpy as np
import pytest
import torch
from torch import nn

from deepresolve._model import strip_probability
from deepresolve.errors import ArgumentError, FileFormatError, MissingFileError
from deepresolve.paper.datasets import synthetic_set_two
from deepresolve.paper.train import (
    apply_max_norm,
    auc_per_class,
    predict_logits,
    split_indices,
    train_model,
)
from deepresolve.paper.zoo import deepsea, deepsea_from_file, synthetic_cnn, tf_cnn


def _names(model):
    return [n for n, _ in model.named_children()]


def test_synthetic_cnn_architecture():
    m = synthetic_cnn(n_outputs=4, length=100)
    assert _names(m) == ["conv1", "relu1", "pool1", "flatten", "dense1", "relu2", "dense2", "sigmoid"]
    assert m.conv1.out_channels == 32 and m.conv1.kernel_size == (8,)
    assert m.pool1.kernel_size == 4 and m.pool1.stride == 4
    assert m.dense1.out_features == 64
    x = torch.rand(3, 4, 100)
    assert m(x).shape == (3, 4)
    assert m[:3](x).shape == (3, 32, 23)  # the analysed layer: 32 channels x (93 // 4) positions
    assert ((m(x) > 0) & (m(x) < 1)).all()
    assert "dropout1" in _names(synthetic_cnn(dropout=0.3))


def test_tf_cnn_architecture():
    m = tf_cnn()
    assert _names(m) == ["conv1", "relu1", "pool1", "flatten", "dense1", "relu2", "dropout1", "dense2", "sigmoid"]
    x = torch.rand(2, 4, 101)
    assert m[:2](x).shape == (2, 16, 101)  # 'same' padding keeps the length
    assert m[:3](x).shape == (2, 16, 1)  # global max-pool
    assert m.eval()(x).shape == (2, 1)


def test_deepsea_shapes_and_loader(tmp_path):
    m = deepsea()
    assert m.dense1.in_features == 960 * 53 and m.dense2.out_features == 919
    assert _names(m)[-1] == "sigmoid" and "conv3" in _names(m)
    small = deepsea(n_outputs=5, length=200, hidden=7).eval()
    torch.save(small.state_dict(), tmp_path / "ds.pt")
    loaded = deepsea_from_file(tmp_path / "ds.pt")
    # 200 bp is not 1000, so the loader takes the shortest length with the same width after conv3 (195 bp)
    assert loaded.input_length == 195 and deepsea_from_file(tmp_path / "ds.pt", length=200).input_length == 200
    x = torch.rand(2, 4, 200)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), small(x))
    torch.save({"state_dict": small.state_dict()}, tmp_path / "wrapped.pt")
    assert deepsea_from_file(tmp_path / "wrapped.pt").dense2.out_features == 5


def test_deepsea_loader_errors(tmp_path):
    with pytest.raises(MissingFileError, match=r"^DeepSEA weights file '.*nope\.pt' does not exist$"):
        deepsea_from_file(tmp_path / "nope.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(FileFormatError,
                       match=r"bad\.pt': expected the DeepSEA weights, got keys \['conv1.weight'\] without"):
        deepsea_from_file(tmp_path / "bad.pt")
    sd = deepsea(n_outputs=3, length=200, hidden=4).state_dict()
    sd["conv2.weight"] = torch.zeros(480, 320, 5)
    torch.save(sd, tmp_path / "shape.pt")
    with pytest.raises(FileFormatError,
                       match=r"shape\.pt': expected weights of the DeepSEA architecture, got ones that do not fit"):
        deepsea_from_file(tmp_path / "shape.pt")
    torch.save(deepsea(n_outputs=3, length=200, hidden=4).state_dict(), tmp_path / "ok.pt")
    with pytest.raises(ArgumentError,
                       match=r"^length: expected an input length giving \d+ positions after conv3 .*, got 1000, "):
        deepsea_from_file(tmp_path / "ok.pt", length=1000)
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(FileFormatError,
                       match=r"text\.pt': expected a torch state dict file, got one torch.load cannot read"):
        deepsea_from_file(tmp_path / "text.pt")


@pytest.mark.parametrize("kwargs, match", [(dict(length=5), r"^length: expected >= \d+ for filters of"),
                                           (dict(n_outputs=0), "^n_outputs: expected an integer >= 1, got 0$"),
                                           (dict(dropout=1.0), "^dropout: expected a finite number")])
def test_zoo_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        synthetic_cnn(**kwargs)


def test_strip_probability_shares_parameters():
    m = synthetic_cnn()
    logit, dropped = strip_probability(m)
    assert dropped
    assert not isinstance(logit[-1], nn.Sigmoid) and logit.dense2 is m.dense2
    x = torch.rand(2, 4, 100)
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(logit(x)), m(x))


def test_split_indices_partition():
    s = split_indices(100, test_frac=0.2, val_frac=0.1, seed=0)
    assert len(s["test"]) == 20 and len(s["val"]) == 10 and len(s["train"]) == 70
    assert sorted(np.concatenate(list(s.values())).tolist()) == list(range(100))
    with pytest.raises(ArgumentError, match=r"^test_frac: expected a finite number >= 0 and < 1, got 1.5$"):
        split_indices(100, test_frac=1.5)
    with pytest.raises(ArgumentError, match=r"^val_frac: expected a fraction in \(0, 1\), got 0$"):
        split_indices(100, val_frac=0)
    with pytest.raises(ArgumentError, match=r"^test_frac, val_frac: expected a sum < 1, got 0.6 \+ 0.5$"):
        split_indices(100, test_frac=0.6, val_frac=0.5)
    with pytest.raises(ArgumentError, match=r"^n: expected enough items for a split .*, got 3$"):
        split_indices(3)


def test_max_norm_clips_every_unit():
    m = synthetic_cnn()
    with torch.no_grad():
        m.conv1.weight.mul_(100)
        m.dense1.weight[0].fill_(0.001)  # a small row must be left alone
    small_row = m.dense1.weight[0].clone()
    apply_max_norm(m, 3.0)
    assert m.conv1.weight.flatten(1).norm(dim=1).max() <= 3.0 + 1e-4
    assert m.dense1.weight.norm(dim=1).max() <= 3.0 + 1e-4
    torch.testing.assert_close(m.dense1.weight[0], small_row)


def test_auc_per_class():
    y = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    s = np.array([[0.1, 0.3], [0.9, 0.2], [0.2, 0.1], [0.8, 0.5]])
    auc = auc_per_class(y, s)
    assert auc[0] == 1.0 and np.isnan(auc[1])  # a column with one label value has no AUC


def test_train_model_learns_set_two():
    torch.manual_seed(0)
    # 40-bp sequences: few positions to generalise over, so a small set trains in seconds
    d = synthetic_set_two(n_per_class=500, length=40, seed=0)
    m = synthetic_cnn(n_outputs=4, length=40, dropout=0.1)
    res = train_model(m, d.x, d.y, epochs=15, lr=3e-3, batch_size=64, max_norm=3.0, weight_decay=1e-6, seed=0)
    assert res.test_auc.shape == (4,)
    assert res.test_auc.min() > 0.9, res.test_auc
    assert len(res.test_auc) == 4 and res.best_epoch == int(np.argmax(res.history))
    assert not m.training  # returned in eval mode
    # The returned model is the kept (best validation) one and still has its sigmoid head.
    np.testing.assert_allclose(auc_per_class(d.y[res.split["val"]], predict_logits(m, d.x[res.split["val"]])),
                               res.val_auc)
    assert isinstance(m[-1], nn.Sigmoid)
    assert m.conv1.weight.flatten(1).norm(dim=1).max() <= 3.0 + 1e-4


def test_train_model_rejects_bad_input():
    m = synthetic_cnn()
    x = np.zeros((10, 4, 100), np.float32)
    with pytest.raises(ArgumentError, match=r"^x: expected one-hot of shape \(N, 4, L\), got shape \(10, 100\)$"):
        train_model(m, np.zeros((10, 100)), np.zeros(10))
    with pytest.raises(ArgumentError,
                       match=r"^y: expected shape \(N, C\) with N = 10 \(the length of x\), got shape \(9, 1\)$"):
        train_model(m, x, np.zeros(9))
    with pytest.raises(ArgumentError, match=r"^y: expected 0/1 labels only, got \[0.5\]$"):
        train_model(m, x, np.full(10, 0.5))
    with pytest.raises(ArgumentError, match=r"^epochs: expected an integer >= 1, got 0$"):
        train_model(m, x, np.zeros(10), epochs=0)
    with pytest.raises(ArgumentError, match="^max_norm: expected a finite number >= 0, got -1$"):
        train_model(m, x, np.zeros(10), max_norm=-1)
