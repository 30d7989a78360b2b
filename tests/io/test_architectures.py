"""Published ports (DeepSEA, Beluga, Basset) load from files keyed as the ports write them and compute what the
ports compute. The ports are rebuilt here independently, as the Kipoi/ExPecto definitions write them (Lambda
wrappers included, Conv2d on the original input layout), given random weights and saved with torch.save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deepresolve.errors import ArgumentError, FileFormatError, MissingFileError
from deepresolve.io import architectures as arch
from deepresolve.io.sequences import one_hot
from deepresolve.split import split_model

SHARED_FEATURES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "deepsea" / "deepsea919_features.tsv"


class Lambda(nn.Sequential):
    """The ports' Lambda: a parameter-free Sequential subclass that applies a function."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _linear(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(Lambda(lambda x: x.view(1, -1) if x.dim() == 1 else x), nn.Linear(n_in, n_out))


def _flatten() -> Lambda:
    return Lambda(lambda x: x.view(x.size(0), -1))


def kipoi_deepsea() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(4, 320, (1, 8)), nn.Threshold(0, 1e-6), nn.MaxPool2d((1, 4), (1, 4)), nn.Dropout(0.2),
        nn.Conv2d(320, 480, (1, 8)), nn.Threshold(0, 1e-6), nn.MaxPool2d((1, 4), (1, 4)), nn.Dropout(0.2),
        nn.Conv2d(480, 960, (1, 8)), nn.Threshold(0, 1e-6), nn.Dropout(0.5),
        _flatten(), _linear(50880, 925), nn.Threshold(0, 1e-6), _linear(925, 919), nn.Sigmoid(),
    ).eval()


class ReCodeAlphabet(nn.Module):
    def forward(self, x):  # ACGT -> AGCT
        return torch.stack([x[:, i, ...] for i in [0, 2, 1, 3]], dim=1)


class ConcatenateRC(nn.Module):
    def forward(self, x):  # (N, 4, 1, L) AGCT: complement = flip channels, reverse = flip length
        return torch.cat([x, x.flip(1).flip(3)], dim=0)


class AverageRC(nn.Module):
    def forward(self, x):
        n = x.shape[0] // 2
        return x[:n] / 2 + x[n:] / 2


class Beluga(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(4, 320, (1, 8)), nn.ReLU(), nn.Conv2d(320, 320, (1, 8)), nn.ReLU(), nn.Dropout(0.2),
                nn.MaxPool2d((1, 4), (1, 4)),
                nn.Conv2d(320, 480, (1, 8)), nn.ReLU(), nn.Conv2d(480, 480, (1, 8)), nn.ReLU(), nn.Dropout(0.2),
                nn.MaxPool2d((1, 4), (1, 4)),
                nn.Conv2d(480, 640, (1, 8)), nn.ReLU(), nn.Conv2d(640, 640, (1, 8)), nn.ReLU(),
            ),
            nn.Sequential(nn.Dropout(0.5), _flatten(), _linear(67840, 2003), nn.ReLU(), _linear(2003, 2002)),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.model(x)


def kipoi_basset() -> nn.Sequential:
    model = nn.Sequential(
        nn.Conv2d(4, 300, (19, 1)), nn.BatchNorm2d(300), nn.ReLU(), nn.MaxPool2d((3, 1), (3, 1)),
        nn.Conv2d(300, 200, (11, 1)), nn.BatchNorm2d(200), nn.ReLU(), nn.MaxPool2d((4, 1), (4, 1)),
        nn.Conv2d(200, 200, (7, 1)), nn.BatchNorm2d(200), nn.ReLU(), nn.MaxPool2d((4, 1), (4, 1)),
        _flatten(), _linear(2000, 1000), nn.BatchNorm1d(1000, 1e-05, 0.1, True), nn.ReLU(), nn.Dropout(0.3),
        _linear(1000, 1000), nn.BatchNorm1d(1000, 1e-05, 0.1, True), nn.ReLU(), nn.Dropout(0.3),
        _linear(1000, 164), nn.Sigmoid(),
    )
    # Non-trivial running statistics, so that eval-mode batch norm is not the identity
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


def _random_one_hot(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return one_hot(["".join(rng.choice(list("ACGT"), length)) for _ in range(n)])


def _save(model: nn.Module, path) -> None:
    torch.save(model.state_dict(), path)


@pytest.fixture(scope="module")
def deepsea_port():
    torch.manual_seed(0)
    return kipoi_deepsea()


@pytest.fixture(scope="module")
def deepsea_file(deepsea_port, tmp_path_factory):
    path = tmp_path_factory.mktemp("deepsea") / "deepsea_cpu.pth"
    _save(deepsea_port, path)
    return path


def test_deepsea_port_keys_and_sizes(deepsea_port):
    # the key layout the issue states, from the independent port definition
    convs = {k for k in deepsea_port.state_dict() if k.endswith("weight")}
    assert convs == {"0.weight", "4.weight", "8.weight", "12.1.weight", "14.1.weight"}
    with torch.device("meta"):  # shapes only: skip initialising 190M weights
        assert arch.deepsea().dense1.in_features == 50880 and arch.beluga().dense1.in_features == 67840
        assert arch.basset().dense1.in_features == 2000


def test_deepsea_matches_port(deepsea_port, deepsea_file, one_thread):
    model = arch.load_architecture(deepsea_file, "deepsea")
    assert not hasattr(model, "class_names")  # names only from a feature table
    x = _random_one_hot(3, 1000)
    with torch.no_grad():
        want = deepsea_port(ReCodeAlphabet()(torch.from_numpy(x).unsqueeze(2)))
        got = model(torch.from_numpy(x))
    assert got.shape == (3, 919)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # the paper's layer: the input of the third convolution, 480 x 60
    body, _ = split_model(model, "conv3", input_shape=(4, 1000), at="input")
    with torch.no_grad():
        assert tuple(body(torch.from_numpy(x)).shape) == (3, 480, 60)
    assert model.input_length == 1000


def test_deepsea_predict_model_rc_average(deepsea_port, tmp_path, one_thread):
    predict = nn.Sequential(ReCodeAlphabet(), ConcatenateRC(), deepsea_port, AverageRC()).eval()
    path = tmp_path / "deepsea_predict.pth"
    _save(predict, path)
    assert "2.0.weight" in predict.state_dict()
    model = arch.load_architecture(path, "deepsea", rc_average=True)
    x = _random_one_hot(2, 1000, seed=3)
    with torch.no_grad():
        want = predict(torch.from_numpy(x).unsqueeze(2))
        got = model(torch.from_numpy(x))
        one_strand = model.strand(torch.from_numpy(x))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # the average really involves the other strand (the port's rc output differs from the forward one)
    assert not torch.allclose(got, one_strand, atol=1e-6)


@pytest.mark.slow  # a 545 MB weight file
def test_beluga_matches_port(tmp_path, one_thread):
    torch.manual_seed(0)
    port = Beluga().eval()
    path = tmp_path / "deepsea.beluga.pth"
    _save(port, path)
    assert {"model.0.14.weight", "model.1.2.1.weight", "model.1.4.1.weight"} <= set(port.state_dict())
    x = _random_one_hot(2, 2000, seed=1)
    with torch.no_grad():
        want = port(ReCodeAlphabet()(torch.from_numpy(x).unsqueeze(2)))
    del port
    model = arch.load_architecture(path, "beluga")
    with torch.no_grad():
        got = model(torch.from_numpy(x))
    assert got.shape == (2, 2002) and not hasattr(model, "class_names")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_basset_matches_port(tmp_path, one_thread):
    torch.manual_seed(0)
    port = kipoi_basset()
    path = tmp_path / "pretrained_model_reloaded_th.pth"
    state = port.state_dict()
    # files converted with old PyTorch have no num_batches_tracked buffers
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    assert {"13.1.weight", "14.running_var", "21.1.weight"} <= set(state)
    model = arch.load_architecture(path, "basset")
    x = _random_one_hot(4, 600, seed=2)
    with torch.no_grad():
        want = port(torch.from_numpy(x).unsqueeze(3))
        got = model(torch.from_numpy(x))
    assert got.shape == (4, 164) and not model.training
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_wrong_shape_names_key_and_shapes(deepsea_port, tmp_path):
    state = dict(deepsea_port.state_dict())
    state["4.weight"] = torch.zeros(480, 320, 1, 9)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(FileFormatError,
                       match=r"key '4\.weight' has shape \(480, 320, 1, 9\); expected \(480, 320, 1, 8\)"):
        arch.load_architecture(path, "deepsea")


def test_missing_and_unexpected_keys(deepsea_port, tmp_path):
    state = dict(deepsea_port.state_dict())
    del state["14.1.bias"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    with pytest.raises(FileFormatError, match=r"missing key '14\.1\.bias' \(expected shape \(919\)\)"):
        arch.load_architecture(path, "deepsea")
    state = dict(deepsea_port.state_dict(), **{"16.weight": torch.zeros(3)})
    torch.save(state, path)
    with pytest.raises(FileFormatError, match=r"unexpected key '16\.weight'"):
        arch.load_architecture(path, "deepsea")


def test_other_port_file_is_refused(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "basset.pth"
    torch.save(kipoi_basset().state_dict(), path)
    # Basset's 0.weight is (300, 4, 19, 1), not DeepSEA's (320, 4, 1, 8)
    with pytest.raises(FileFormatError,
                       match=r"key '0\.weight' has shape \(300, 4, 19, 1\); expected \(320, 4, 1, 8\)"):
        arch.load_architecture(path, "deepsea")
    with pytest.raises(FileFormatError, match=r"missing key 'model\.0\.0\.weight'"):
        arch.load_architecture(path, "beluga")


def test_bad_arguments(tmp_path, deepsea_file):
    with pytest.raises(ArgumentError,
                       match=r"architecture: expected one of \['deepsea', 'beluga', 'basset'\], got 'danq'"):
        arch.load_architecture(deepsea_file, "danq")
    with pytest.raises(MissingFileError, match="does not exist"):
        arch.load_architecture(tmp_path / "none.pth", "deepsea")
    (tmp_path / "text.pth").write_text("not torch")
    with pytest.raises(FileFormatError, match="not a torch state-dict file"):
        arch.load_architecture(tmp_path / "text.pth", "deepsea")
    with pytest.raises(ArgumentError, match="rc_average: expected True or False"):
        arch.load_architecture(deepsea_file, "deepsea", rc_average="yes")
    bad = tmp_path / "features.tsv"
    bad.write_text("index\tcell\tassay\ttreatment\n0\tX\tDNase\tNone\n")
    with pytest.raises(FileFormatError, match="919 outputs"):
        arch.deepsea_class_names(bad)


@pytest.mark.skipif(not SHARED_FEATURES.exists(), reason="../shared/data/deepsea (DeepSEA's feature table) is absent")
def test_class_names_from_shared_table(deepsea_file):
    model = arch.load_architecture(deepsea_file, "deepsea", features=SHARED_FEATURES)
    assert len(model.class_names) == 919 and model.class_names[0] == "8988T|DNase|None"
    names = arch.deepsea_class_names(SHARED_FEATURES)
    assert len(names) == 919 and sum("|DNase|" in n for n in names) == 125


def test_load_model_reads_a_port_by_architecture(deepsea_file, tmp_path):
    from deepresolve import load_model

    a = load_model(deepsea_file, architecture="deepsea")
    b = arch.load_architecture(deepsea_file, "deepsea")
    x = torch.from_numpy(_random_one_hot(1, 1000))
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
    with pytest.raises(ArgumentError, match="rc_average/features: expected only with architecture"):
        load_model(deepsea_file, rc_average=True)


def test_cli_lists_the_layers_of_a_port(tmp_path, capsys):
    from deepresolve.cli import main

    torch.manual_seed(0)
    path = tmp_path / "basset.pth"
    torch.save(kipoi_basset().state_dict(), path)
    with pytest.raises(SystemExit) as info:
        main(["layers", str(path), "--architecture", "basset", "--input-shape", "4,600"])
    out = capsys.readouterr()
    assert info.value.code == 0, out.err
    assert "conv3" in out.out and "(164,)" in out.out
    with pytest.raises(SystemExit) as info:
        main(["layers", str(path), "--architecture", "danq", "--input-shape", "4,600"])
    assert info.value.code == 2 and "architecture: expected one of" in capsys.readouterr().err
