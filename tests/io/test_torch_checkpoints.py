"""PyTorch models as they are saved: factories with arguments, checkpoints with wrapper prefixes (DataParallel,
Selene, Lightning), whole pickled modules (only when trusted), ONNX."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections import OrderedDict

import published as P
import pytest
import torch

import deepresolve as dr
from deepresolve.errors import ArgumentError, FileFormatError, ModelError
from deepresolve.io.models import load_model


def same_function(a, b, shape=(4, 40)):
    x = torch.randn(3, *shape)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_factory_with_keyword_arguments(tmp_path):
    net = P.bpnet(n_filters=6, n_layers=2)
    torch.save(net.state_dict(), tmp_path / "bpnet.pt")
    model = load_model("published:BPNet", factory_kwargs={"n_filters": 6, "n_layers": 2}, weights=tmp_path / "bpnet.pt")
    same_function(lambda x: model(x)[1], lambda x: net(x)[1], (4, 160))
    with pytest.raises(ArgumentError, match=r"factory_kwargs: expected the arguments published:BPNet takes, got "
                                            r"\{'n_filter': 6\}"):
        load_model("published:BPNet", factory_kwargs={"n_filter": 6})
    with pytest.raises(ModelError, match="do not fit published:BPNet"):
        load_model("published:BPNet", weights=tmp_path / "bpnet.pt")  # default sizes: another architecture
    with pytest.raises(ArgumentError, match="factory_kwargs: expected only with a 'package.module:factory' model"):
        load_model(tmp_path / "bpnet.pt", factory_kwargs={"n_filters": 6})


def test_selene_checkpoint_with_dataparallel_and_wrapper_prefixes(tmp_path):
    """Selene saves DataParallel(NonStrandSpecific(model)): keys 'module.model.*', under 'state_dict'."""
    net = P.deeper_deepsea()
    wrapped = OrderedDict((f"module.model.{k}", v) for k, v in net.state_dict().items())
    torch.save({"state_dict": wrapped, "epoch": 3, "arch": "DeeperDeepSEA", "min_loss": 0.1,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}}, tmp_path / "best_model.pth.tar")
    with pytest.warns(UserWarning, match=r"removed the prefix 'module\.model\.'"):
        model = load_model("published:DeeperDeepSEA", weights=tmp_path / "best_model.pth.tar")
    same_function(model, net)
    res = dr.resolve(model, "conv_net.3", input_shape=(4, 40), restarts=2, steps=10)
    assert res.fivs.shape == (3, 2, 8)


def test_lightning_checkpoint(tmp_path):
    """A Lightning checkpoint: the LightningModule's state dict (the network as self.model, plus the module's own
    entries) under 'state_dict', with the trainer's state beside it."""
    net = P.deeper_deepsea()
    lit = P.LitModule(net)
    lit.register_buffer("class_weights", torch.ones(3))  # the LightningModule's own entry, not the network's
    checkpoint = {"epoch": 9, "global_step": 900, "pytorch-lightning_version": "2.4.0", "state_dict": lit.state_dict(),
                  "loops": {}, "callbacks": {}, "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
                  "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": {"lr": 1e-3, "length": 40}}
    torch.save(checkpoint, tmp_path / "epoch=9.ckpt")
    with pytest.warns(UserWarning, match=r"removed the prefix 'model\.'"):
        model = load_model("published:DeeperDeepSEA", weights=tmp_path / "epoch=9.ckpt")
    same_function(model, net)
    # hyper-parameters held as an object: only loaded when the file is trusted
    checkpoint["hyper_parameters"] = Namespace(lr=1e-3)
    torch.save(checkpoint, tmp_path / "objects.ckpt")
    with pytest.raises(FileFormatError, match=r"cannot be read as a state dict .* trust_pickle=True"):
        load_model("published:DeeperDeepSEA", weights=tmp_path / "objects.ckpt")
    with pytest.warns(UserWarning, match="removed the prefix"):
        model = load_model("published:DeeperDeepSEA", weights=tmp_path / "objects.ckpt", trust_pickle=True)
    same_function(model, net)


class Namespace:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def test_whole_pickled_module_only_when_trusted(tmp_path):
    net = P.bpnet()
    torch.save(net, tmp_path / "model.torch")  # how bpnet-lite saves its models
    with pytest.raises(FileFormatError, match=r"not unpickled because that runs arbitrary code.*trust_pickle=True"):
        load_model(tmp_path / "model.torch")
    model = load_model(tmp_path / "model.torch", trust_pickle=True)
    same_function(lambda x: model(x)[0], lambda x: net(x)[0], (4, 160))
    res = dr.resolve(model, "irelu", input_shape=(4, 160), output=1, restarts=2, steps=10)
    assert res.scores.shape == (1, 2)
    torch.save(net.state_dict(), tmp_path / "state.pt")
    with pytest.raises(FileFormatError, match=r"holds a OrderedDict, not a whole module"):
        load_model(tmp_path / "state.pt", trust_pickle=True)


def onnx_model(path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = torch.Generator().manual_seed(0)
    w, b = torch.randn(3, 4, 5, generator=rng), torch.randn(3, generator=rng)
    fw, fb = torch.randn(2, 3 * 6, generator=rng), torch.randn(2, generator=rng)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[5]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(t.numpy(), name) for t, name in ((w, "w"), (b, "b"), (fw, "fw"), (fb, "fb"))]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    x = torch.randn(2, 4, 10)
    want = torch.relu(torch.nn.functional.conv1d(x, w, b)).flatten(1) @ fw.T + fb
    return x, want


def test_onnx_converts_without_torchvision(tmp_path):
    if importlib.util.find_spec("onnx2torch") is None:  # found, not imported: importing it may need torchvision
        pytest.skip(ONNX_SKIP)
    x, want = onnx_model(tmp_path / "net.onnx")
    model = load_model(tmp_path / "net.onnx")
    torch.testing.assert_close(model(x), want, rtol=1e-4, atol=1e-5)
    layer = next(name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv1d))
    body, head = dr.split_model(model, layer, input_shape=(4, 10))
    torch.testing.assert_close(head(body(x)), want, rtol=1e-4, atol=1e-5)


ONNX_SKIP = "onnx2torch is not installed: pip install onnx, then pip install onnx2torch --no-deps"


class ConvNet(torch.nn.Module):
    """A small genomic CNN: conv, pool, a second conv with padding, a sigmoid per task."""

    def __init__(self):
        super().__init__()
        self.conv1, self.pool = torch.nn.Conv1d(4, 6, 7), torch.nn.MaxPool1d(2)
        self.conv2, self.dense = torch.nn.Conv1d(6, 5, 3, padding=1), torch.nn.Linear(5 * 12, 3)

    def forward(self, x):
        h = self.conv2(self.pool(torch.relu(self.conv1(x))))
        return torch.sigmoid(self.dense(torch.relu(h).flatten(1)))


def test_onnx_round_trip_from_torch_onnx_export(tmp_path):
    """A model exported by torch.onnx.export (the TorchScript exporter, dynamo=False: the dynamo exporter needs
    onnxscript), loaded back through onnx2torch, cut and resolved."""
    if importlib.util.find_spec("onnx2torch") is None or importlib.util.find_spec("onnx") is None:
        pytest.skip(ONNX_SKIP)
    torch.manual_seed(0)
    net = ConvNet().eval()
    x = torch.randn(4, 4, 30)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated in favour of the dynamo one
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x[:1],), tmp_path / "net.onnx", dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    model = load_model(tmp_path / "net.onnx")
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-5)
    convs = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 2
    body, head = dr.split_model(model, convs[1], input_shape=(4, 30))
    with torch.no_grad():  # the head scores logits: the sigmoid is left out
        logits = net.dense(torch.relu(net.conv2(net.pool(torch.relu(net.conv1(x))))).flatten(1))
        torch.testing.assert_close(head(body(x)), logits, rtol=1e-5, atol=1e-5)
    res = dr.resolve(model, convs[1], input_shape=(4, 30), restarts=2, steps=10, seed=0)
    assert res.ofiv.shape == (3, 5)


def test_onnx_refusals_are_one_line(tmp_path):
    if importlib.util.find_spec("onnx2torch") is None or importlib.util.find_spec("onnx") is None:
        pytest.skip(ONNX_SKIP)
    from onnx import TensorProto, helper, save

    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xff\xff\xff")
    graph = helper.make_graph([helper.make_node("Hardmax", ["x"], ["y"], axis=1)], "net",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 10])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "hardmax.onnx"))
    for name, error, message in (("empty", FileFormatError, "holds no ONNX graph"),
                                 ("junk", FileFormatError, "is not a readable ONNX model"),
                                 ("hardmax", ModelError, r"no converter for the ONNX operator Hardmax \(opset 13\)")):
        with pytest.raises(error, match=message) as caught:
            load_model(tmp_path / f"{name}.onnx")
        assert "\n" not in str(caught.value)


def test_onnx_without_the_converter_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "net.onnx").write_bytes(b"\x08\x07")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    with pytest.raises(ModelError, match=r"needs onnx and onnx2torch: pip install onnx, then pip install "
                                         r"onnx2torch --no-deps") as caught:
        load_model(tmp_path / "net.onnx")
    assert "\n" not in str(caught.value)
