"""Result files are validated on load: damaged, foreign, newer or inconsistent files are refused by name."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

import deepresolve as dr
from deepresolve.errors import FileFormatError, MissingFileError
from tests._factories import make_result


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "result.h5"
    make_result(C=2, T=3, K=4, W=2).save(path)
    return path


def test_a_saved_result_loads_without_importing_torch(saved):
    code = ("import sys, deepresolve as dr; r = dr.load(sys.argv[1]); assert 'torch' not in sys.modules, 'torch'; "
            "print(r.n_classes)")
    proc = subprocess.run([sys.executable, "-c", code, str(saved)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"


def test_round_trip_keeps_every_array(saved):
    res = dr.load(saved)
    again = dr.load(res.save(saved.with_name("again.h5")))
    np.testing.assert_array_equal(again.ofiv, res.ofiv)
    assert again.class_names == res.class_names


def test_damaged_params_json_names_the_file_and_field(saved):
    with h5py.File(saved, "a") as f:
        f.attrs["params"] = "{not json"
    with pytest.raises(FileFormatError, match=r"result\.h5'.*attribute 'params'"):
        dr.load(saved)


def test_an_array_of_the_wrong_shape_is_refused(saved):
    with h5py.File(saved, "a") as f:
        del f["ofiv"]
        f["ofiv"] = np.zeros((2, 5))
    with pytest.raises(FileFormatError, match=r"ofiv: expected shape \(2, 4\) to match fivs \(2, 3, 4\), got \(2, 5\)"):
        dr.load(saved)


def test_a_missing_attribute_is_named(saved):
    with h5py.File(saved, "a") as f:
        del f.attrs["channel_names"]
    with pytest.raises(FileFormatError, match="without channel_names"):
        dr.load(saved)


def test_a_newer_format_is_refused_by_name(saved):
    with h5py.File(saved, "a") as f:
        f.attrs["format"] = "deepresolve-result-7"
    with pytest.raises(FileFormatError, match="written by a newer deepresolve; upgrade"):
        dr.load(saved)


def test_another_file_kind_is_refused(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(FileFormatError, match="expected a deepresolve result file \\(format tag "
                                              "'deepresolve-result-1'\\), got no format tag"):
        dr.load(path)
    text = tmp_path / "notes.h5"
    text.write_text(json.dumps({"a": 1}))
    with pytest.raises(FileFormatError, match="HDF5"):
        dr.load(text)


def test_a_folder_or_missing_path_is_refused(tmp_path):
    with pytest.raises(MissingFileError, match="expected a file, got the folder"):
        dr.load(tmp_path)
    with pytest.raises(MissingFileError, match="does not exist"):
        dr.load(tmp_path / "nope.h5")


def test_a_full_disk_while_saving_is_one_oserror_and_leaves_no_file(tmp_path):
    code = ("import resource, sys; sys.path.insert(0, 'tests'); from _factories import make_result; "
            "r = make_result(C=4, T=6, K=64, W=50); resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
            "try:\n    r.save(sys.argv[1])\nexcept OSError as e:\n    print('OSError', e.errno)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out" / "result.h5")], capture_output=True,
                          text=True, timeout=120, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert proc.returncode == 0, proc.stderr  # no crash (HDF5 writing straight to a full disk can segfault)
    assert proc.stdout.strip() == "OSError 27"
    assert list((tmp_path / "out").iterdir()) == []
