"""Bad input gets a clear error that names the problem, raised at the public API."""

import gc
import os
import stat

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.function import Function
from tinygrad_cnn.models import SeedCNN
from tinygrad_cnn.nn import get_parameters, load, named_parameters, save
from tinygrad_cnn.optim import SGD, Adam


def tensor(*shape):
    return Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)


@pytest.mark.parametrize("call, error, message", [
    (lambda: tensor(28, 28).conv2d(tensor(4, 1, 3, 3)), ValueError, r"conv2d input must be 4-D .*or 3-D .*\(28, 28\)"),
    (lambda: tensor(1, 1, 1, 8, 8).conv2d(tensor(4, 1, 3, 3)), ValueError, r"conv2d input must be 4-D.*\(1, 1, 1, 8, 8\)"),
    (lambda: tensor(3, 8, 8).conv2d(tensor(4, 2, 3, 3)), ValueError, r"channel mismatch: input \(3, 8, 8\) has 3 channels"),
    (lambda: tensor(1, 1, 8, 8).conv2d(tensor(4, 3, 3)), ValueError, r"conv2d weight must be 4-D.*\(4, 3, 3\)"),
    (lambda: tensor(2, 3, 8, 8).conv2d(tensor(4, 2, 3, 3)), ValueError, r"channel mismatch.*3 channels.*expects 2"),
    (lambda: tensor(1, 1, 4, 4).conv2d(tensor(2, 1, 7, 7), padding=1), ValueError, r"kernel 7x7 \(dilation \(1, 1\)\) does not fit the padded input 6x6"),
    (lambda: tensor(1, 1, 8, 8).conv2d(tensor(2, 1, 3, 3), stride=0), ValueError, r"stride must be positive, got 0"),
    (lambda: tensor(1, 1, 8, 8).conv2d(tensor(2, 1, 3, 3), stride=(1, -2)), ValueError, r"stride must be positive"),
    (lambda: tensor(1, 1, 8, 8).conv2d(tensor(2, 1, 3, 3), padding=-1), ValueError, r"padding must be non-negative, got -1"),
    (lambda: tensor(1, 1, 8, 8).conv2d(tensor(2, 1, 3, 3), padding=1.5), TypeError, r"padding must be an int or a pair"),
    (lambda: tensor(1, 2, 8, 8).conv2d(tensor(4, 2, 3, 3), tensor(4, 7, 7), padding=1), ValueError,
     r"bias of shape \(4, 7, 7\) fits neither .* \(4,\) nor .* \(4, 8, 8\)"),
    (lambda: tensor(1, 2, 8, 8).conv2d(tensor(4, 2, 3, 3), tensor(6)), ValueError, r"bias of shape \(6,\)"),
    (lambda: tensor(1, 3, 8, 8).conv2d(tensor(4, 2, 3, 3), tensor(4)), ValueError, r"channel mismatch"),
    (lambda: tensor(1, 4, 8, 8).conv2d(tensor(6, 2, 3, 3), groups=4), ValueError, r"groups=4 must divide .* \(6\)"),
    (lambda: tensor(1, 4, 8, 8).conv2d(tensor(6, 4, 3, 3), groups=True), ValueError, r"groups must be a positive int, got True"),
    (lambda: tensor(1, 1, 8, 8).conv2d(tensor(2, 1, 3, 3), dilation=4), ValueError, r"dilation \(4, 4\)\) does not fit"),
    (lambda: tensor(1, 1, 4, 4).conv2d(tensor(0, 1, 3, 3)), ValueError,
     r"conv2d weight needs at least one output channel, got weight of shape \(0, 1, 3, 3\)"),
    (lambda: tensor(1, 1, 8, 8).avg_pool2d(9), ValueError, r"avg_pool2d kernel 9x9 is larger than the input 8x8"),
    (lambda: tensor(1, 1, 2, 2).pad_max_pool2d(((0, 1), (0, 1)), 4), ValueError, r"kernel 4x4 is larger than the input 3x3"),
    (lambda: tensor(1, 1, 4, 4).pad_max_pool2d(((0, -1), (0, 1)), 2), ValueError, r"non-negative"),
    (lambda: tensor(4, 4).pad_max_pool2d(((0, 1), (0, 1)), 2), ValueError, r"must be 4-D"),
    (lambda: tensor(8, 8).max_pool2d(2), ValueError, r"max_pool2d input must be 4-D.*\(8, 8\)"),
    (lambda: tensor(2, 2, 1, 8, 8).avg_pool2d(2), ValueError, r"avg_pool2d input must be 4-D.*\(2, 2, 1, 8, 8\)"),
    (lambda: tensor(1, 3, 3).max_pool2d(4), ValueError, r"max_pool2d kernel 4x4 is larger than the input 3x3"),
    (lambda: tensor(1, 1, 4, 4).pad_max_pool2d(1, 2), TypeError,
     r"pad_max_pool2d padding must be \(\(top, bottom\), \(left, right\)\), pairs of ints, got 1"),
    (lambda: tensor(1, 1, 4, 4).pad_max_pool2d((1, 1), 2), TypeError, r"padding must be \(\(top, bottom\).*got \(1, 1\)"),
    (lambda: tensor(1, 1, 4, 4).pad_max_pool2d(((1, 1), (1,)), 2), TypeError, r"pairs of ints, got \(\(1, 1\), \(1,\)\)"),
    (lambda: tensor(1, 1, 4, 4).pad_max_pool2d(((1, 0.5), (0, 0)), 2), TypeError, r"pairs of ints"),
    (lambda: tensor(1, 1, 2, 2).max_pool2d(3), ValueError, r"kernel 3x3 is larger than the input 2x2"),
    (lambda: tensor(1, 1, 4, 4).max_pool2d(2, stride=0), ValueError, r"stride must be positive"),
    (lambda: tensor(1, 1, 4, 4).max_pool2d(0), ValueError, r"kernel_size must be positive"),
    (lambda: tensor(2, 3) @ tensor(4, 5), ValueError, r"matmul shape mismatch: \(2, 3\) @ \(4, 5\)"),
    (lambda: tensor(3) @ tensor(4), ValueError, r"matmul shape mismatch: \(3,\) @ \(4,\) \(inner sizes 3 and 4 differ\)"),
    (lambda: tensor(2, 3) @ tensor(4), ValueError, r"matmul shape mismatch: \(2, 3\) @ \(4,\)"),
    (lambda: tensor(3) @ tensor(4, 2), ValueError, r"matmul shape mismatch: \(3,\) @ \(4, 2\)"),
    (lambda: tensor(2, 3, 4) @ tensor(5, 4, 2), ValueError, r"cannot be broadcast"),
    (lambda: tensor(2, 3) + tensor(4, 3), ValueError, r"shapes \(2, 3\) and \(4, 3\) cannot be broadcast together for '\+'"),
    (lambda: tensor(2, 3) * np.ones(2), ValueError, r"\(2, 3\) and \(2,\).*'\*'"),
    (lambda: tensor(2, 3).pad(((1, 1), (0, 0), (2, 2))), ValueError, r"one pair per axis of the tensor's 2 axes"),
    (lambda: tensor(2, 3).pad(((1, 1.5), (0, 0))), ValueError, r"non-negative integers"),
    (lambda: tensor(2, 3).pad(((1, -1), (0, 0))), ValueError, r"non-negative"),
    (lambda: tensor(2, 3).reshape(4, 2), ValueError, r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
    (lambda: tensor(2, 3).reshape(-1, -1), ValueError, r"cannot reshape"),
    (lambda: tensor(2, 3).sum(axis=2), ValueError, r"axis 2 is out of range for a tensor with 2 dimensions"),
    (lambda: tensor(2, 3).softmax(axis=-3), ValueError, r"axis -3 is out of range"),
    (lambda: tensor(2, 3).sum(axis=(0, -2)), ValueError, r"axis \(0, -2\) names the same axis twice"),
    (lambda: tensor(2, 3, 4).sum(axis=(3, 0)), ValueError, r"axis 3 is out of range for a tensor with 3 dimensions"),
    (lambda: tensor(2, 3).sum(1.0), TypeError, r"sum: axis must be an int or a sequence of ints, got 1.0"),
    (lambda: tensor(2, 3).mean(axis=(0, 1.0)), TypeError, r"mean: axis must be an int or a sequence of ints, got \(0, 1.0\)"),
    (lambda: tensor(2, 3).softmax(axis="1"), TypeError, r"softmax: axis must be an int"),
    (lambda: Tensor(np.array(["a"])), TypeError, r"numeric"),
    (lambda: Tensor([1.0, 2.0], dtype="U3"), TypeError, r"Tensor: dtype must be bool, an integer type, float32 or float64, got <U3"),
    (lambda: Tensor([1.0, 2.0], dtype=np.complex64), TypeError, r"dtype must be .*got complex64"),
    (lambda: Tensor([1.0, 2.0], dtype=object), TypeError, r"dtype must be .*got object"),
    (lambda: Tensor([1.0, 2.0], dtype=np.float16), TypeError, r"dtype must be bool, an integer type, float32 or float64, got float16"),
    (lambda: Tensor([1.0, 2.0], dtype="no such dtype"), TypeError, r"Tensor: 'no such dtype' is not a dtype"),
    (lambda: tensor(4, 3).cross_entropy([0, 1, 2, 3]), ValueError, r"label 3 is out of range for 3 classes \(0..2\)"),
    (lambda: tensor(1, 3).cross_entropy(np.array([1e20])), ValueError, r"label 1e\+20 is out of range for 3 classes"),
    (lambda: tensor(1, 3).cross_entropy(np.array([2**63 + 5], dtype=np.uint64)), ValueError, r"label 9223372036854775813 is out of range"),
    (lambda: tensor(4, 3).cross_entropy([0, -1, 2, 1]), ValueError, r"label -1 is out of range"),
    (lambda: tensor(2, 3).cross_entropy([0.5, 1.0]), TypeError, r"labels must be integers, got dtype float64"),
    (lambda: tensor(2, 3).cross_entropy(["a", "b"]), TypeError, r"labels must be integers"),
    (lambda: tensor(4, 3).cross_entropy([0, 1]), ValueError, r"expected labels of shape \(4,\), got \(2,\)"),
    (lambda: tensor(2, 2, 3).cross_entropy([0, 1]), ValueError, r"2-D logits \(N,K\), got shape \(2, 2, 3\)"),
    (lambda: (tensor(2, 3) * 2.0).backward(), ValueError, r"scalar.*\(2, 3\)"),
    (lambda: SeedCNN()(np.zeros((4, 28, 28, 1))), ValueError, r"\(N, 1, 28, 28\).*N,H,W,C"),
    (lambda: SGD(get_parameters(SeedCNN()), lr=-1.0), ValueError, r"learning rate must be a finite number >= 0, got -1.0"),
    (lambda: SGD([], lr=0.1), ValueError, r"empty parameter list"),
    (lambda: SGD(SeedCNN(), lr=0.1), TypeError, r"got a SeedCNN, not a list of Tensors.*SGD\(get_parameters\(model\)"),
    (lambda: Adam(named_parameters(SeedCNN())), TypeError, r"parameter 0 is a str.*Adam\(get_parameters\(model\)"),
    (lambda: SGD(tensor(2, 2), lr=0.1), TypeError, r"a single Tensor; pass a list of them"),
    (lambda: SGD([tensor(2)], lr=True), ValueError, r"learning rate must be a finite number >= 0, got True"),
    (lambda: SGD([tensor(2)], lr=np.float32("nan")), ValueError, r"learning rate must be a finite number"),
    (lambda: SGD([tensor(2)], lr=0.1, momentum=float("nan")), ValueError, r"momentum must be a finite number >= 0"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_live_graph_nodes_return_to_zero_after_a_training_step():
    model = SeedCNN(seed=0)
    optimizer = SGD(get_parameters(model), lr=0.01, momentum=0.9)
    images = np.random.default_rng(0).integers(0, 256, size=(4, 1, 28, 28), dtype=np.uint8)
    for _ in range(3):
        loss = model(images).cross_entropy(np.array([0, 1, 2, 3]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        gc.collect()
        assert sum(isinstance(item, Function) for item in gc.get_objects()) == 0


def test_numpy_scalars_are_numbers_to_the_optimizers():
    parameters = [tensor(3)]
    optimizer = SGD(parameters, lr=np.float32(0.1), momentum=np.float64(0.9), weight_decay=np.int64(0))
    assert optimizer.lr == pytest.approx(0.1) and type(optimizer.lr) is float
    adam = Adam(parameters, lr=np.float32(1e-3), betas=(np.float32(0.8), np.float64(0.9)), eps=np.float32(1e-8))
    assert adam.betas == pytest.approx((0.8, 0.9))


def _pickle_bytes() -> bytes:
    import pickle

    return pickle.dumps({"conv1.weight": [1.0]}, protocol=4)


def _object_array_npz(path) -> None:
    np.savez(path, weights=np.array([{"a": 1}], dtype=object))  # needs pickle to load


@pytest.mark.parametrize("content, message", [
    (b"loss 0.31 after epoch 3\n", r"is not an \.npz archive: it is a text file starting with 'loss 0\.31"),
    (bytes(range(200, 256)), r"is not an \.npz archive: it starts with the bytes c8 c9 ca"),
    (b"", r"is empty"),
    (b"PK\x03\x04 then garbage", r"not a valid \.npz checkpoint \(corrupt or truncated\)"),
    (_pickle_bytes(), r"is a Python pickle .*refusing to unpickle it \(unsafe\)"),
    ("npy", r"is a single \.npy array"),
    ("object array", r"holds pickled Python objects \(object arrays\); refusing to load it \(unsafe\)"),
])
def test_load_says_what_a_wrong_file_is(tmp_path, content, message):
    path = tmp_path / "checkpoint.npz"
    if content == "npy":
        with open(path, "wb") as file:
            np.save(file, np.zeros(3))
    elif content == "object array":
        _object_array_npz(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as raised:
        load(path)
    if not isinstance(content, str) and not content.startswith(b"\x80"):
        assert "pickle" not in str(raised.value)  # text and random bytes are not called pickles


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_save_follows_the_umask_like_any_other_file(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        save({"w": np.zeros(2)}, tmp_path / "weights.npz")
        (tmp_path / "other.txt").write_text("any other output")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "weights.npz").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "other.txt").stat().st_mode) == mode


def test_save_keeps_the_mode_of_the_file_it_replaces_and_names_a_missing_directory(tmp_path):
    path = tmp_path / "weights.npz"
    save({"w": np.zeros(2)}, path)
    path.chmod(0o640)
    save({"w": np.ones(2)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and load(path)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(FileNotFoundError, match=r"no such directory to save into.*missing"):
        save({"w": np.zeros(2)}, tmp_path / "missing" / "weights.npz")
