"""Model files as users keep them: the format told from the content, whatever the name; what cannot be loaded is
refused in one line that says what to do."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from _factories import layer, write_keras
from keras_writers import Graph, write

from deepresolve.errors import ArgumentError, DeepResolveError, FileFormatError, ModelError
from deepresolve.io.formats import sniff
from deepresolve.io.keras import load_keras
from deepresolve.io.models import load_model


def tiny():
    return torch.nn.Sequential(torch.nn.Conv1d(4, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 8, 1)).eval()


def keras_functional(tmp_path, dialect="k2", name="model.bin"):
    rng = np.random.default_rng(0)
    g = Graph()
    h = g.add("Conv1D", "conv", g.input("sequence", (10, 4)), [("kernel", rng.normal(size=(3, 4, 2))),
                                                                ("bias", np.zeros(2))],
              filters=2, kernel_size=[3], padding="valid", activation="relu")
    h = g.add("Flatten", "flatten", h)
    h = g.add("Dense", "dense", h, [("kernel", rng.normal(size=(16, 1))), ("bias", np.zeros(1))], units=1)
    return write(g.output(h), tmp_path / name, dialect)


def test_sniff_tells_files_apart_by_content(tmp_path):
    torch.jit.script(tiny()).save(str(tmp_path / "net.bin"))
    torch.save(tiny().state_dict(), tmp_path / "state.bin")
    torch.save(tiny().state_dict(), tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    (tmp_path / "arch.txt").write_text('  {"class_name": "Sequential"}')
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"\x08\x01")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    (tmp_path / "empty").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    assert sniff(keras_functional(tmp_path)) == "hdf5"
    assert sniff(keras_functional(tmp_path, "keras", "model.h5")) == "keras_zip"
    assert sniff(tmp_path / "net.bin") == "torchscript"
    assert sniff(tmp_path / "state.bin") == "torch_pickle"
    assert sniff(tmp_path / "legacy.bin") == "torch_pickle"
    assert sniff(tmp_path / "arch.txt") == "json"
    assert sniff(tmp_path / "saved") == "saved_model"
    assert sniff(tmp_path) == "folder"
    assert sniff(tmp_path / "m.onnx") == "onnx"
    assert sniff(tmp_path / "empty") == "unknown"
    assert sniff(tmp_path / "other.zip") == "unknown"


def test_load_model_by_content_under_any_name(tmp_path):
    net = tiny()
    torch.jit.script(net).save(str(tmp_path / "net.bin"))
    x = torch.randn(2, 4, 10)
    torch.testing.assert_close(load_model(tmp_path / "net.bin")(x), net(x))
    for dialect in ("k2", "k3h5", "keras"):
        model = load_model(keras_functional(tmp_path, dialect, f"{dialect}.model"))
        assert model(x).shape == (2, 1) and model.input_shape == (4, 10)


def test_sequential_json_with_weights_of_any_name(tmp_path):
    rng = np.random.default_rng(1)
    layers = [layer("Convolution1D", "c", nb_filter=2, filter_length=3, border_mode="valid", activation="relu",
                    batch_input_shape=[None, 10, 4]),
              layer("Flatten", "f"), layer("Dense", "d", output_dim=1, activation="sigmoid")]
    folder = write_keras(tmp_path / "k1", layers, {"c": [rng.normal(size=(3, 1, 4, 2)), np.zeros(2)],
                                                   "d": [rng.normal(size=(16, 1)), np.zeros(1)]})
    (folder / "model.h5").rename(tmp_path / "trained_weights.bin")
    with pytest.raises(DeepResolveError, match=r"no weights for .*model\.json.*or weights=<file>"):
        load_model(folder / "model.json")
    model = load_model(folder / "model.json", weights=tmp_path / "trained_weights.bin")
    assert isinstance(model, torch.nn.Sequential) and model.input_shape == (4, 10)
    assert model.keras_input_shape == (10, 4)
    assert list(dict(model.named_children()))[:3] == ["from_onehot", "to_channels_first", "conv1"]


def test_what_cannot_be_loaded_is_refused_in_one_line(tmp_path):
    torch.jit.script(tiny()).save(str(tmp_path / "net.bin"))
    torch.save(tiny().state_dict(), tmp_path / "state.bin")
    torch.save(tiny(), tmp_path / "module.pt")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"\x08\x01")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("readme.txt", "hello")
    keras_zip = keras_functional(tmp_path, "keras", "m.keras")
    (tmp_path / "cut.keras").write_bytes(keras_zip.read_bytes()[:200])
    cases = [
        (lambda: load_model(tmp_path / "state.bin"), FileFormatError,
         r"state\.bin' is not a TorchScript archive \(it holds a torch\.save pickle .* 'package\.module:factory'"),
        (lambda: load_model(tmp_path / "module.pt"), FileFormatError, r"not unpickled because that runs arbitrary"),
        (lambda: load_model(tmp_path / "net.bin", weights=tmp_path / "state.bin"), ArgumentError,
         r"weights= is read only for a 'package\.module:factory' model or a Keras architecture"),
        (lambda: load_model(tmp_path / "net.bin", fixed_inputs={"a": 1.0}), ArgumentError,
         r"fixed_inputs: expected only for a Keras model, got a torchscript file"),
        (lambda: load_model(tmp_path / "saved"), ModelError,
         r"TensorFlow SavedModel folder, which cannot be read without TensorFlow; .*model\.save\('model\.h5'\)"),
        (lambda: load_keras(tmp_path / "net.bin"), FileFormatError,
         r"net\.bin' is not a Keras model \(its content is torchscript\)"),
        (lambda: load_keras(tmp_path / "other.keras"), FileFormatError,
         r"other\.keras' is a zip archive without config\.json; expected a Keras 3 \.keras file"),
        (lambda: load_keras(tmp_path / "cut.keras"), FileFormatError, r"cut\.keras' is not a readable \.keras"),
        (lambda: load_keras(keras_zip, fixed_inputs={"sequence": 0.0}), ArgumentError,
         r"fixed_inputs: expected values for every input but the DNA sequence"),
        (lambda: load_keras(keras_zip, weights=tmp_path / "nope.h5"), DeepResolveError,
         r"weights: expected a Keras weights file, got .*nope\.h5', which does not exist"),
    ]
    for make, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            make()
        assert "\n" not in str(caught.value)


def test_keras3_sequential_archive(tmp_path):
    """A Keras 3 Sequential .keras: InputLayer with batch_shape, layers naming their module, weights by class."""
    import io
    import json

    import h5py
    from keras_numpy import conv1d, dense, relu

    rng = np.random.default_rng(2)
    Wc, bc, Wd, bd = rng.normal(size=(3, 4, 2)), rng.normal(size=2), rng.normal(size=(16, 1)), rng.normal(size=1)

    def spec(cls, name, **cfg):
        return {"module": "keras.layers", "class_name": cls, "config": {"name": name, **cfg}, "registered_name": None}

    config = {"module": "keras", "class_name": "Sequential", "registered_name": None, "config": {
        "name": "sequential", "layers": [
            spec("InputLayer", "input_layer", batch_shape=[None, 10, 4], dtype="float32"),
            spec("Conv1D", "conv1d", filters=2, kernel_size=[3], strides=[1], padding="valid", activation="relu",
                 data_format="channels_last", dilation_rate=[1], groups=1, use_bias=True),
            spec("Flatten", "flatten", data_format="channels_last"),
            spec("Dense", "dense", units=1, activation="linear", use_bias=True)]}}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, arrays in (("conv1d", (Wc, bc)), ("dense", (Wd, bd)), ("flatten", ())):
            group = f.create_group(f"layers/{key}/vars")
            for i, a in enumerate(arrays):
                group.create_dataset(str(i), data=a.astype(np.float32))
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buffer.getvalue())
    model = load_model(tmp_path / "model.keras")
    assert isinstance(model, torch.nn.Sequential) and model.keras_version == 3 and model.input_shape == (4, 10)
    x = np.eye(4)[rng.integers(0, 4, (2, 10))]  # (N, L, 4)
    want = [dense(relu(conv1d(xi, Wc, bc)).reshape(-1), Wd, bd) for xi in x]
    got = model(torch.tensor(x.transpose(0, 2, 1), dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5)
