"""Parameter discovery, state dicts, and .npz save/load (atomic, never pickle)."""

import errno
import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import get_parameters, load, load_state_dict, named_buffers, named_parameters, save, state_dict

REPOSITORY = Path(__file__).resolve().parents[1]


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


class Holder:
    """A model made of whatever attributes a test sets."""


def colliding_models() -> list[tuple[Holder, str, str, str]]:
    """(model, the name both arrays get, where one is, where the other is)."""
    dotted_key = Holder()
    dotted_key.layers = {"a.b": Tensor([1.0], requires_grad=True), "a": {"b": Tensor([2.0], requires_grad=True)}}
    dotted_attribute = Holder()
    dotted_attribute.layers = {"a": Tensor([1.0], requires_grad=True)}
    setattr(dotted_attribute, "layers.a", Tensor([2.0], requires_grad=True))
    same_text = Holder()
    same_text.running = {1: np.zeros(2), "1": np.ones(2)}  # buffers
    parameter_and_buffer = Holder()
    parameter_and_buffer.block = [Tensor([1.0], requires_grad=True)]
    parameter_and_buffer.__dict__["block.0"] = np.zeros(1)
    return [(dotted_key, "layers.a.b", "model.layers['a.b']", "model.layers['a']['b']"),
            (dotted_attribute, "layers.a", "model.layers['a']", "getattr(model, 'layers.a')"),
            (same_text, "running.1", "model.running[1]", "model.running['1']"),
            (parameter_and_buffer, "block.0", "model.block[0]", "getattr(model, 'block.0')")]


@pytest.mark.parametrize("model, name, first, second", colliding_models(),
                         ids=["dotted key", "dotted attribute", "keys 1 and '1'", "a parameter and a buffer"])
def test_two_arrays_under_one_name_are_refused_naming_both_places(model, name, first, second):
    """The second array used to replace the first silently: a checkpoint saved one, and a
    load wrote one of the two (PyTorch refuses names containing '.')."""
    message = rf"would both be named '{re.escape(name)}'.*: {re.escape(first)} and {re.escape(second)}\."
    for naming in (named_parameters, named_buffers, state_dict, get_parameters,
                   lambda model: load_state_dict(model, {name: np.zeros(1)})):
        with pytest.raises(ValueError, match=message):
            naming(model)


def test_a_dotted_name_that_collides_with_nothing_is_kept_and_round_trips():
    model = Holder()
    model.layers = {"a.b": Tensor([1.0], requires_grad=True), "c": Tensor([2.0], requires_grad=True)}
    state = state_dict(model)
    assert list(state) == ["layers.a.b", "layers.c"]
    load_state_dict(model, {"layers.a.b": np.array([5.0]), "layers.c": np.array([6.0])})
    assert model.layers["a.b"].item() == 5.0 and model.layers["c"].item() == 6.0


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
        original = nn.np.lib.format.write_array
        def dying_write_array(file, array, **options):
            original(file, array, **options)
            if array.size > 1:
                os._exit(9)  # as if killed after writing most of the file, before the rename
        nn.np.lib.format.write_array = dying_write_array
        nn.save({{"generation": np.array(2), "big": np.zeros(10**6), "after": np.ones(3)}}, {str(path)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 9
    assert int(load(path)["generation"]) == 1


def test_save_takes_any_string_key_even_numpys_own_parameter_names(tmp_path):
    """np.savez(file, **arrays) dropped a key "allow_pickle" and failed on "file"."""
    path = tmp_path / "state.npz"
    arrays = {"file": np.arange(3), "allow_pickle": np.zeros(2), "x.npy": np.ones(1), "": np.array(True),
              "model/conv1.weight": np.ones((2, 2), np.float32), "step": np.array(7), "meta": np.array('{"a": 1}'),
              "tensor": Tensor(np.full(2, 5.0))}
    save(arrays, path)
    loaded = load(path)
    assert list(loaded) == list(arrays)
    for key, value in arrays.items():
        expected = np.asarray(value.data if isinstance(value, Tensor) else value)
        assert loaded[key].dtype == expected.dtype and loaded[key].shape == expected.shape, key
        np.testing.assert_array_equal(loaded[key], expected)
    with np.load(path, allow_pickle=False) as archive:  # a plain .npz that numpy itself reads
        assert sorted(archive.files) == sorted(arrays)
        assert int(archive["step"]) == 7


@pytest.mark.parametrize("arrays, error, message", [
    ({"a": np.array([None])}, ValueError, r"save: 'a' has dtype object .*pickle"),
    ({"w": np.zeros(2), "box": np.array([{"lr": 0.1}], dtype=object)}, ValueError, r"'box' has dtype object"),
    ({"r": np.zeros(1, dtype=[("x", "f8"), ("o", "O")])}, ValueError, r"'r' has dtype .*Python objects"),
    ({1: np.zeros(2)}, TypeError, r"save: key 1 is not a string \(int\)"),
    ({"a": np.zeros(1), "a.npy": np.ones(1)}, ValueError, r"keys 'a' and 'a\.npy' cannot both be saved"),
    ({"a\0b": np.zeros(1)}, ValueError, r"key 'a\\x00b' holds a NUL character"),
    ({"\udc80": np.zeros(1)}, ValueError, r"key '\\udc80' is not valid Unicode"),
    ({"ragged": [[1.0], [1.0, 2.0]]}, ValueError, r"save: 'ragged' is not an array"),
])
def test_save_refuses_what_load_could_not_give_back_before_writing(tmp_path, arrays, error, message):
    path = tmp_path / "state.npz"
    save({"kept": np.arange(4)}, path)
    with pytest.raises(error, match=message):
        save(arrays, path)
    assert list(load(path)) == ["kept"]  # the previous file is untouched
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.npz"]  # and nothing else was written


def test_atomic_file_raises_the_block_s_error_even_when_closing_fails(tmp_path, monkeypatch):
    """Closing flushes what is still buffered; on a full disk that fails too. The error the
    block raised (here Ctrl-C) must come out, not the flush's, and nothing is left behind."""
    from tinygrad_cnn import nn

    class FullDiskFile(io.BytesIO):
        def close(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_on_a_full_disk(descriptor: int, mode: str) -> FullDiskFile:
        os.close(descriptor)
        return FullDiskFile()

    monkeypatch.setattr(nn.os, "fdopen", open_on_a_full_disk)
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with nn.atomic_file(target) as file:
            file.write(b"new")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.npz"]


def test_atomic_file_interrupted_before_its_block_leaves_no_temporary_file(tmp_path, monkeypatch):
    """Ctrl-C between creating the temporary file and opening it used to leave the hidden
    temporary file (and its descriptor) behind: the cleanup began only after the open."""
    from tinygrad_cnn import nn

    closed = []
    original_close = os.close

    def interrupted_open(descriptor: int, mode: str):
        raise KeyboardInterrupt

    def recording_close(descriptor: int) -> None:
        closed.append(descriptor)
        original_close(descriptor)

    monkeypatch.setattr(nn.os, "fdopen", interrupted_open)
    monkeypatch.setattr(nn.os, "close", recording_close)
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with nn.atomic_file(target):
            pass
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.npz"]
    assert len(closed) == 1  # the temporary file's descriptor


def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "runs" / "weights.npz"
    target.parent.mkdir()
    save({"w": np.zeros(2)}, target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    save({"w": np.ones(2)}, link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert load(target)["w"].tolist() == [1.0, 1.0]
    assert sorted(entry.name for entry in target.parent.iterdir()) == ["weights.npz"]  # temp file in the target's directory


def test_save_syncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    """The rename is only durable once the directory entry is on disk."""
    import stat

    synced = []
    original_fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        original_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    save({"w": np.zeros(2)}, tmp_path / "weights.npz")
    assert synced == [False, True]  # the file's data, then its directory


def a_finished_process_id() -> int:
    """The pid of a process that has ended (and been waited for): no process has it now."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_save_removes_the_temporaries_a_killed_save_of_the_same_file_left(tmp_path):
    """kill -9 (or a power loss) mid-save leaves the hidden temporary file; the next save of
    the same file removes it, since the process that wrote it is gone."""
    target = tmp_path / "model.npz"
    save({"w": np.zeros(2)}, target)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from tinygrad_cnn.nn import atomic_file
        with atomic_file({str(target)!r}) as file:
            file.write(b"half a checkpoint")
            file.flush()
            print("writing", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    try:
        assert writer.stdout.readline() == "writing\n"
        left = [path.name for path in tmp_path.iterdir() if path.name != "model.npz"]
        assert len(left) == 1 and left[0].endswith(f".{writer.pid}.tmp")  # a live writer's: kept
        save({"w": np.ones(2)}, target)
        assert (tmp_path / left[0]).exists()
    finally:
        writer.kill()
        writer.wait()
    save({"w": np.full(2, 2.0)}, target)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.npz"]
    assert load(target)["w"].tolist() == [2.0, 2.0]


def test_only_abandoned_temporaries_of_the_file_being_saved_are_removed(tmp_path):
    dead, alive = a_finished_process_id(), os.getpid()
    stale = tmp_path / f".model.npz.abc_1234.{dead}.tmp"
    kept = [
        f".model.npz.abc_1234.{alive}.tmp",  # being written by a live process (this one)
        f".other.npz.abc_1234.{dead}.tmp",  # another file's
        f".model.npz.7.abc_1234.{dead}.tmp",  # the file "model.npz.7"'s
        ".model.npz.abc_1234.tmp",  # written before pids were in the names: its writer is unknown
        f".model.npz.abc_12345.{dead}.tmp",  # not mkstemp's 8 random characters
        f"model.npz.abc_1234.{dead}.tmp",  # not hidden
        f".model.npz.abc_1234.{dead}.tmp.old",
        f".model.npz.abc_1234.{dead}.tmp.npz",
        "model.npz.tmp",
    ]
    stale.write_bytes(b"half a checkpoint")
    for name in kept:
        (tmp_path / name).write_bytes(b"not ours")
    (tmp_path / f".model.npz.abc_9999.{dead}.tmp").mkdir()  # the right name, but a directory
    kept.append(f".model.npz.abc_9999.{dead}.tmp")
    save({"w": np.zeros(2)}, tmp_path / "model.npz")
    assert not stale.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*kept, "model.npz"])


def test_a_temporary_that_cannot_be_removed_does_not_stop_the_save(tmp_path, monkeypatch):
    from tinygrad_cnn import nn

    stale = tmp_path / f".model.npz.abc_1234.{a_finished_process_id()}.tmp"
    stale.write_bytes(b"half a checkpoint")

    def refused(path):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(nn.os, "unlink", refused)
    save({"w": np.zeros(2)}, tmp_path / "model.npz")
    assert stale.exists() and load(tmp_path / "model.npz")["w"].tolist() == [0.0, 0.0]


def test_a_graph_built_before_load_state_dict_raises_at_backward():
    """Loading writes the parameters in place: a loss computed from the old weights must not
    get gradients that silently mix in the new ones."""
    model = SeedMLP(seed=0)
    images = np.zeros((2, 1, 28, 28), dtype=np.uint8)
    loss = model(images).cross_entropy([0, 1])
    load_state_dict(model, state_dict(SeedMLP(seed=1)))
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


@pytest.mark.parametrize("ending", sorted({os.sep, os.altsep or os.sep, os.sep + "."}))
def test_save_to_a_path_naming_a_directory_is_refused_and_creates_nothing(tmp_path, ending):
    """Path() drops a trailing separator: "checkpoints/" used to create a FILE "checkpoints"."""
    path = str(tmp_path / "checkpoints") + ending
    with pytest.raises(IsADirectoryError, match="names a directory") as caught:
        save({"w": np.zeros(2)}, path)
    assert caught.value.filename == path
    assert list(tmp_path.iterdir()) == []


def test_save_onto_an_existing_directory_says_so_before_writing(tmp_path):
    from tinygrad_cnn import nn

    directory = tmp_path / "runs"
    directory.mkdir()
    link = tmp_path / "latest"
    link.symlink_to(directory)
    for path in (directory, link):
        written = []
        with pytest.raises(IsADirectoryError, match="is a directory, not a file") as caught:
            nn.atomic_write(path, written.append)
        assert caught.value.filename == str(path)
        assert written == []  # refused before the block ran
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["latest", "runs"]
    assert list(directory.iterdir()) == []


def test_load_of_a_directory_says_it_is_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory, not a checkpoint file") as caught:
        load(tmp_path)
    assert caught.value.filename == str(tmp_path)


@pytest.mark.parametrize("make_state, message", [
    (lambda path: str(path), r"got a str.*load_state_dict\(model, load\(path\)\)"),
    (lambda path: path, r"got a \w*Path.*load_state_dict\(model, load\(path\)\)"),
    (lambda path: list(load(path).values()), r"got a list"),
    (lambda path: SeedMLP(seed=0), r"got a SeedMLP"),
])
def test_load_state_dict_refuses_what_is_not_a_mapping(tmp_path, make_state, message):
    path = tmp_path / "ck.npz"
    model = SeedMLP(seed=1)
    save(model, path)
    before = state_dict(model)
    with pytest.raises(TypeError, match=message):
        load_state_dict(model, make_state(path))
    for name, value in state_dict(model).items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_with_swapped_arguments_says_so(tmp_path):
    model = SeedMLP(seed=1)
    with pytest.raises(TypeError, match=r"got a SeedMLP.*swapped"):
        load_state_dict(state_dict(model), model)


def test_save_with_swapped_arguments_says_so_and_writes_nothing(tmp_path):
    model = SeedMLP(seed=1)
    with pytest.raises(TypeError, match=r"save needs a file path \(a str or os.PathLike\) as its second argument, got SeedMLP \(are the "
                                        r"arguments swapped\? it is save\(model or state, path\)\)"):
        save(tmp_path / "model.npz", model)
    with pytest.raises(TypeError, match=r"as its second argument, got int$"):
        save(model, 3)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("read_only", [
    lambda: np.frombuffer(np.arange(3, dtype=np.float32).tobytes(), dtype=np.float32),
    lambda: np.broadcast_to(np.float32(2), (3,)),
])
@pytest.mark.parametrize("as_parameter", [True, False])
def test_load_state_dict_refuses_a_read_only_parameter_before_writing_anything(read_only, as_parameter):
    class Model:
        def __init__(self):
            self.a = Tensor(np.zeros(3, np.float32), requires_grad=True)
            self.b = Tensor(read_only(), requires_grad=True) if as_parameter else read_only()

    model = Model()
    before = state_dict(model)
    with pytest.raises(ValueError, match=r"b is backed by a read-only array.*the model was not changed"):
        load_state_dict(model, {"a": np.ones(3), "b": np.ones(3)})
    for name, value in state_dict(model).items():
        np.testing.assert_array_equal(value, before[name])


def test_reading_the_umask_does_not_change_it(tmp_path, monkeypatch):
    """Setting the umask to read it made files other threads created meanwhile world-writable."""
    from tinygrad_cnn import nn

    old = os.umask(0o027)
    try:
        expected = os.umask(0o027)  # the old trick, as a reference
        assert nn._current_umask() == expected == 0o027
        if sys.platform.startswith("linux") and nn._PROC_STATUS.exists():
            def refusing_umask(mask):
                raise AssertionError("os.umask called: it changes the umask for every thread")

            monkeypatch.setattr(os, "umask", refusing_umask)
            assert nn._current_umask() == 0o027
            assert nn._permissions_for(tmp_path / "new.npz") == 0o640
            monkeypatch.undo()
        monkeypatch.setattr(nn, "_PROC_STATUS", tmp_path / "absent" / "status")  # no /proc: the fallback
        assert nn._current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # and it put the umask back
    finally:
        os.umask(old)
