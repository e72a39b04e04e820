"""Parameter discovery, state dicts, and .npz save/load (atomic, never pickle)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.models import SeedCNN
from tinygrad_cnn.nn import get_parameters, load, load_state_dict, named_parameters, save, state_dict


class Block:
    def __init__(self, offset):
        self.weight = Tensor(np.full((2, 2), offset), requires_grad=True)
        self._private = Tensor(np.zeros(1))


class Net:
    def __init__(self):
        self.first = Block(1.0)
        self.blocks = [Block(2.0), Block(3.0)]
        self.heads = {"left": Tensor(np.ones(3), requires_grad=True)}
        self.alias = self.first.weight  # the same tensor twice: listed once
        self.settings = {"rate": 0.5}


def test_named_parameters_walks_attributes_lists_and_dicts_in_order():
    names = list(named_parameters(Net()))
    assert names == ["first.weight", "blocks.0.weight", "blocks.1.weight", "heads.left"]


def test_get_parameters_returns_the_same_tensors():
    net = Net()
    assert get_parameters(net)[0] is net.first.weight and len(get_parameters(net)) == 4


def test_seed_cnn_state_dict_keys_and_shapes_match_the_design():
    expected = {
        "conv1.weight": (16, 1, 3, 3), "conv1.bias": (16, 28, 28),
        "conv2.weight": (32, 16, 3, 3), "conv2.bias": (32, 14, 14),
        "conv3.weight": (64, 32, 3, 3), "conv3.bias": (64, 7, 7),
        "fc1.weight": (3136, 100), "fc1.bias": (100,),
        "fc2.weight": (100, 10), "fc2.bias": (10,),
    }
    state = state_dict(SeedCNN(seed=0))
    assert {name: value.shape for name, value in state.items()} == expected
    assert list(state) == list(expected)


def test_state_dict_is_a_copy():
    model = SeedCNN(seed=0)
    state = state_dict(model)
    state["fc2.bias"][:] = 5
    assert np.all(model.fc2.bias.data == 0)


def test_load_state_dict_round_trip_keeps_the_model_dtype():
    source, target = SeedCNN(seed=1), SeedCNN(seed=2, dtype=np.float64)
    load_state_dict(target, state_dict(source))
    assert target.conv1.weight.dtype == np.float64
    np.testing.assert_allclose(target.conv1.weight.data, source.conv1.weight.data)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("fc1.bias"), r"missing keys \['fc1.bias'\]"),
    (lambda s: s.update(extra=np.zeros(1)), r"unexpected keys \['extra'\]"),
    (lambda s: s.update({"conv2.weight": np.zeros((32, 16, 5, 5))}), r"conv2.weight has shape \(32, 16, 5, 5\)"),
])
def test_a_failed_load_names_the_problem_and_changes_nothing(change, message):
    model = SeedCNN(seed=0)
    before = state_dict(model)
    state = {name: value + 1 for name, value in state_dict(SeedCNN(seed=3)).items()}
    change(state)
    with pytest.raises((KeyError, ValueError), match=message):
        load_state_dict(model, state)
    for name, value in state_dict(model).items():
        np.testing.assert_array_equal(value, before[name])


def test_save_and_load_round_trip(tmp_path):
    model = SeedCNN(seed=4)
    path = tmp_path / "weights.npz"
    save(model, path)
    loaded = load(path)
    for name, value in state_dict(model).items():
        np.testing.assert_array_equal(loaded[name], value)
    assert [p.name for p in tmp_path.iterdir()] == ["weights.npz"]  # no temporary file left


def test_load_refuses_missing_corrupt_and_pickled_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load(tmp_path / "absent.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(ValueError, match="corrupt.npz"):
        load(corrupt)
    truncated = tmp_path / "truncated.npz"
    save({"a": np.arange(1000.0)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated.npz"):
        load(truncated)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled Python objects"):
        load(pickled)


def test_an_interrupted_save_keeps_the_previous_file(tmp_path):
    """A process killed while writing must leave the old checkpoint intact and loadable."""
    path = tmp_path / "checkpoint.npz"
    save({"generation": np.array(1)}, path)
    script = textwrap.dedent(f"""
        import os, numpy as np
        from tinygrad_cnn import nn
        original = np.savez
        def dying_savez(file, **arrays):
            original(file, **arrays)
            os._exit(9)  # as if killed right after writing, before the rename
        nn.np.savez = dying_savez
        nn.save({{"generation": np.array(2), "big": np.zeros(10**6)}}, {str(path)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 9
    assert int(load(path)["generation"]) == 1
