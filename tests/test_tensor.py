"""The tensor core: graph recording, the iterative backward walk, accumulation, freeing."""

import gc

import numpy as np
import pytest

from tinygrad_cnn import Tensor, no_grad
from tinygrad_cnn.function import Function


def test_fan_out_gradients_add_up():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x + x * 3.0).sum().backward()  # d/dx (x² + 3x) = 2x + 3
    np.testing.assert_allclose(x.grad, [5.0, 7.0, 9.0])


def test_diamond_graph():
    x = Tensor(np.array(2.0), requires_grad=True)
    a = x * 3.0
    b = a * a  # both paths from b to x go through a
    c = a + b
    d = (c * b).sum()  # d = (a + a²)·a², a = 3x  →  dd/dx = 3·(2a + 3a²·... ) computed below
    d.backward()
    a_value = 6.0
    expected = 3.0 * (3 * a_value**2 + 4 * a_value**3)  # d/da (a³ + a⁴) = 3a² + 4a³
    np.testing.assert_allclose(x.grad, expected)


def test_input_used_directly_and_through_a_later_node():
    """y depends on x both directly and via z = f(x): x must get z's gradient before its own VJP."""
    x = Tensor(np.array([1.5]), requires_grad=True)
    y = x * 2.0
    z = y * y
    (y + z).sum().backward()  # d/dx (2x + 4x²) = 2 + 8x
    np.testing.assert_allclose(x.grad, [2 + 8 * 1.5])


def test_a_chain_of_ten_thousand_ops_has_no_recursion_limit():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001**10_000, rtol=1e-9)


def test_gradients_accumulate_until_zeroed():
    w = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    for _ in range(3):
        (w * 2.0).sum().backward()
    np.testing.assert_allclose(w.grad, [6.0, 6.0])
    w.zero_grad()
    assert w.grad is None
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, [2.0, -4.0])


class PassThrough(Function):
    """y = a + b.   VJP: da = db = G, the very array received (a VJP may return it as is)."""

    def forward(self, a, b):
        return a + b

    def backward(self, grad_out):
        return grad_out, grad_out


kept_elsewhere: list = []


class KeepsItsGradient(Function):
    """y = 2x.   VJP: dx = 2G, a fresh array that the op also keeps in a module-level list."""

    def forward(self, x):
        return 2 * x

    def backward(self, grad_out):
        gradient = 2 * grad_out
        kept_elsewhere.append(gradient)
        return gradient


class RecordsItsGradient(Function):
    """y = 2x.   VJP: dx = 2G, a fresh array of which only the address is recorded."""

    addresses: list = []

    def forward(self, x):
        return 2 * x

    def backward(self, grad_out):
        gradient = 2 * grad_out
        RecordsItsGradient.addresses.append(gradient.ctypes.data)
        return gradient


def test_a_leaf_gradient_is_private_even_when_vjps_return_shared_arrays():
    """Leaves may take a VJP's array without a copy only when nothing else can see it: an
    in-place change of one grad must never show up in another grad or in the user's arrays."""
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    seed = np.ones(3)
    PassThrough.apply(a, b).backward(seed)  # the same array for a, for b, and the user's seed
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, np.ones(3))
    np.testing.assert_array_equal(seed, np.ones(3))
    x = Tensor(np.ones(2), requires_grad=True)
    KeepsItsGradient.apply(x).sum().backward()
    x.grad += 1
    np.testing.assert_array_equal(kept_elsewhere.pop(), [2.0, 2.0])
    matrix, flat_seed = Tensor(np.ones((2, 3)), requires_grad=True), np.arange(6.0)
    matrix.reshape(6).backward(flat_seed)  # matrix's gradient: a view of the user's array
    matrix.grad[0, 0] = 99
    np.testing.assert_array_equal(flat_seed, np.arange(6.0))
    leaf, given = Tensor(np.ones(3), requires_grad=True), np.ones(3)
    leaf.backward(given)  # the leaf itself: its gradient is the user's array
    leaf.grad *= 5
    np.testing.assert_array_equal(given, np.ones(3))


def test_a_fresh_vjp_result_that_nothing_else_holds_becomes_the_leaf_gradient_without_a_copy():
    x = Tensor(np.ones((30, 30)), requires_grad=True)
    RecordsItsGradient.addresses.clear()
    RecordsItsGradient.apply(x).sum().backward()
    assert x.grad.ctypes.data == RecordsItsGradient.addresses[0]
    (x @ Tensor(np.ones((30, 1)))).sum().backward()  # accumulates in place from now on
    np.testing.assert_array_equal(x.grad, np.full((30, 30), 3.0))
    assert x.grad.ctypes.data == RecordsItsGradient.addresses[0]


def test_without_reference_counts_a_leaf_gradient_is_always_a_private_copy(monkeypatch):
    """On an interpreter with no sys.getrefcount (PyPy) the no-copy shortcut is off: the leaf
    gets a copy of the VJP's array, with the same values."""
    from tinygrad_cnn import tensor as tensor_module

    monkeypatch.setattr(tensor_module, "_LONE_ARGUMENT", None)
    x = Tensor(np.ones((30, 30)), requires_grad=True)
    RecordsItsGradient.addresses.clear()
    RecordsItsGradient.apply(x).sum().backward()
    assert x.grad.ctypes.data != RecordsItsGradient.addresses[0]
    np.testing.assert_array_equal(x.grad, np.full((30, 30), 2.0))


def test_second_backward_through_the_same_graph_raises():
    x = Tensor(np.ones(3), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed by backward.*second time"):
        loss.backward()


def test_backward_frees_the_saved_arrays_and_every_node():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 6, 6)), requires_grad=True)
    weight = Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    gc.collect()
    before = sum(isinstance(item, Function) for item in gc.get_objects())
    loss = x.conv2d(weight, padding=1).relu().max_pool2d(2).sum()
    during = sum(isinstance(item, Function) for item in gc.get_objects())
    loss.backward()
    gc.collect()
    after = sum(isinstance(item, Function) for item in gc.get_objects())
    assert during - before == 4
    assert after == before  # the loss tensor is still alive, but its graph is gone
    assert x.grad is not None and weight.grad is not None


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = x * 2.0 + 1.0
    assert not y.requires_grad and y.node is None
    z = x * 2.0  # recording is back on after the block
    assert z.requires_grad and z.node is not None


def test_enable_grad_records_inside_no_grad_and_restores_the_mode_after():
    from tinygrad_cnn import enable_grad, is_grad_enabled

    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        with enable_grad():
            y = x * 2.0
        z = x * 2.0
        assert not is_grad_enabled()
    assert y.requires_grad and not z.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full(3, 2.0))

    @enable_grad()
    def doubled(t):
        return t * 2.0

    with no_grad():
        assert doubled(x).requires_grad and not is_grad_enabled()


@pytest.mark.parametrize("mode", [True, False])
def test_set_grad_enabled_as_pytorch_a_block_or_from_now_on(mode):
    """One loop for training and evaluation: ``with set_grad_enabled(training):``; called on
    its own it sets the mode until changed (PyTorch's two uses)."""
    from tinygrad_cnn import is_grad_enabled, set_grad_enabled

    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        with set_grad_enabled(mode):
            assert (x * 2.0).requires_grad is mode and is_grad_enabled() is mode
        assert not is_grad_enabled()
    assert is_grad_enabled()
    try:
        set_grad_enabled(False)
        assert not (x * 2.0).requires_grad
    finally:
        set_grad_enabled(True)
    assert (x * 2.0).requires_grad
    with pytest.raises(TypeError, match="mode must be True or False, got 'no'"):
        set_grad_enabled("no")
    assert is_grad_enabled()


def test_no_grad_as_a_decorator_restores_recording_after_an_exception():
    @no_grad()
    def failing(t):
        raise KeyError("boom")

    with pytest.raises(KeyError):
        failing(Tensor(1.0))
    assert (Tensor(1.0, requires_grad=True) * 2.0).requires_grad


def test_grad_mode_is_per_thread_as_pytorch():
    """A no_grad block in one thread does not stop recording in another (PyTorch's grad mode is
    thread-local): while a worker sits inside its block, the main thread records, and its
    in-place update of a leaf is still refused; the worker records nothing and may update one."""
    import threading

    from tinygrad_cnn import is_grad_enabled

    x = Tensor(np.ones(2), requires_grad=True)
    inside_block, main_done = threading.Event(), threading.Event()
    seen = {}

    def worker() -> None:
        with no_grad():
            inside_block.set()
            main_done.wait(timeout=30)
            seen["worker"] = (is_grad_enabled(), (x * 2.0).requires_grad)
            parameter = Tensor(np.ones(2), requires_grad=True)
            parameter -= 0.5  # allowed under no_grad: an optimizer's step
            seen["worker's update"] = parameter.data.tolist()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert inside_block.wait(timeout=30)
        seen["main"] = (is_grad_enabled(), (x * 2.0).requires_grad)
        with pytest.raises(RuntimeError, match="outside no_grad"):
            x += 1.0
    finally:
        main_done.set()
        thread.join(timeout=30)
    assert seen == {"main": (True, True), "worker": (False, False), "worker's update": [0.5, 0.5]}


def test_a_new_thread_starts_with_recording_on_as_pytorch():
    """Whatever the mode of the thread that starts it (no_grad, set_grad_enabled(False))."""
    import threading

    from tinygrad_cnn import is_grad_enabled, set_grad_enabled

    x = Tensor(np.ones(2), requires_grad=True)
    seen = []

    def record_in_a_new_thread() -> None:
        thread = threading.Thread(target=lambda: seen.append((is_grad_enabled(), (x * 2.0).requires_grad)))
        thread.start()
        thread.join(timeout=30)

    with no_grad():
        record_in_a_new_thread()
        assert not is_grad_enabled()
    try:
        set_grad_enabled(False)
        record_in_a_new_thread()
        assert not (x * 2.0).requires_grad
    finally:
        set_grad_enabled(True)
    assert seen == [(True, True), (True, True)]


def test_requires_grad_propagates_and_constants_get_no_gradient():
    x = Tensor(np.ones(2), requires_grad=True)
    constant = Tensor(np.full(2, 3.0))
    y = x * constant
    assert y.requires_grad and not constant.requires_grad
    assert not (constant * 2.0).requires_grad
    y.sum().backward()
    assert constant.grad is None
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_detach_cuts_the_graph():
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = x * x
    (y.detach() * x).sum().backward()  # only the direct path: d/dx (c·x) = c = 4
    np.testing.assert_allclose(x.grad, [4.0])


def test_backward_on_non_scalar_needs_a_gradient():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"scalar.*\(2, 3\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad, np.ones((2, 3)))


def test_backward_without_any_gradient_to_compute_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor(np.ones(2)) * 2.0).sum().backward()


def test_dtypes_as_pytorch_float32_by_default_float64_and_integers_kept():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(2.5).dtype == np.float32
    assert Tensor([1, 2]).dtype == np.int64
    assert Tensor([True, False]).dtype == np.bool_
    assert Tensor(np.arange(3)).dtype == np.int64
    assert Tensor(np.ones(2, dtype=np.uint8)).dtype == np.uint8
    assert Tensor(np.ones(2, dtype=np.float16)).dtype == np.float32
    assert Tensor(np.ones(2, dtype=np.float64)).dtype == np.float64
    assert Tensor(np.ones(2, dtype=np.float32), dtype=np.float64).dtype == np.float64
    assert Tensor(np.ones(2), dtype=np.int32).dtype == np.int32


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="only float32 and float64 tensors can require grad.*int64"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="bool"):
        Tensor([True], requires_grad=True)


def test_promotion_as_pytorch():
    ints, floats = Tensor([1, 2]), Tensor(np.array([0.5, 1.5], dtype=np.float32))
    assert (ints + floats).dtype == np.float32  # numpy alone would give float64
    assert (ints * 2).dtype == np.int64
    assert (ints * 2.5).dtype == np.float32
    assert (ints / ints).dtype == np.float32  # true division
    np.testing.assert_array_equal((ints / Tensor([2, 4])).data, [0.5, 0.5])
    assert (floats + Tensor(np.ones(2))).dtype == np.float64
    assert (Tensor(np.ones(2)) * 3).dtype == np.float64  # a Python number takes the tensor's dtype


def test_a_0d_float_tensor_takes_the_other_side_s_float_dtype_as_pytorch():
    """PyTorch treats a 0-d tensor as a number in promotion: float32 x times a float64 0-d t is
    float32 (it was float64), with t's gradient kept, in t's own dtype."""
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    scale = Tensor(np.array(2.0), requires_grad=True)  # float64, 0-d
    for product in (x * scale, scale * x):
        assert product.dtype == np.float32
    (x * scale).sum().backward()
    assert x.grad.dtype == np.float32 and scale.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    assert scale.grad == 3.0
    assert (Tensor(np.ones(2)) + Tensor(np.array(1.0, dtype=np.float32))).dtype == np.float64
    assert (Tensor(np.array(1.0)) + Tensor(np.array(1.0, dtype=np.float32))).dtype == np.float64  # both 0-d


def test_comparisons_and_in_place_updates_treat_a_0d_float_tensor_as_a_number_too():
    """x == t must agree with x - t == 0 (both in float32, as PyTorch), and x += t must round
    once, as x + t does (computing in float64 and then storing float32 rounded twice)."""
    x = Tensor(np.array([0.1, 0.2], dtype=np.float32))
    t = Tensor(np.array(0.1))  # float64, 0-d: not equal to float32 0.1 in float64
    np.testing.assert_array_equal((x == t).data, ((x - t) == 0).data)
    np.testing.assert_array_equal((x == t).data, [True, False])
    np.testing.assert_array_equal((x <= t).data, [True, False])
    y = Tensor(np.array([1.0], dtype=np.float32))
    tiny = Tensor(np.array(2.0**-24 + 2.0**-50))  # float32(tiny) = 2**-24: 1 + it rounds to even, 1
    expected = (y + tiny).data
    y += tiny
    np.testing.assert_array_equal(y.data, expected)
    np.testing.assert_array_equal(y.data, [1.0])


def test_a_0d_integer_tensor_takes_the_other_side_s_integer_dtype_as_a_number_does():
    """uint8 x + Tensor(100) is uint8, as x + 100 and PyTorch (it was int64), and x += Tensor(10)
    works as x += 10 (it was a TypeError); a value that does not fit keeps numpy's wider dtype,
    whose result is the true one, as comparisons with such a number give."""
    x = Tensor(np.array([200, 3], dtype=np.uint8))
    for result in (x + Tensor(100), Tensor(100) + x):
        assert result.dtype == np.uint8 and result.data.tolist() == (x + 100).data.tolist() == [44, 103]
    assert (Tensor(np.array([1, 2], dtype=np.int32)) * Tensor(3)).dtype == np.int32
    assert (x + Tensor(300)).dtype == np.int64 and (x + Tensor(300)).data.tolist() == [500, 303]
    assert (x < Tensor(256)).data.tolist() == [True, True] and (x == Tensor(-56)).data.tolist() == [False, False]
    assert (Tensor(np.array([True])) + Tensor(np.array(3, dtype=np.int8))).dtype == np.int8  # a higher kind: its own
    x += Tensor(60)
    assert x.dtype == np.uint8 and x.data.tolist() == [4, 63]


@pytest.mark.parametrize("data, dtype", [
    ([np.float64(0.1), np.float64(1 + 1e-9)], np.float64),  # numpy float64 scalars keep float64 (were float32)
    ([np.float64(0.1), 0.2], np.float64),
    ([[np.float32(1.0)], [2.0]], np.float32),
    ([np.array([1.0, 2.0])], np.float64),
    ([np.int32(1)], np.int32),  # (was int64)
    ([np.uint8(1), np.int8(2)], np.int16),
    ([True, np.int8(3)], np.int8),
    ([np.int32(1), 5], np.int64),  # a Python int is int64
    ([1.5, 2.5], np.float32), ([1, 2], np.int64), ([True, False], np.bool_), (5.0, np.float32), (5, np.int64),
])
def test_a_list_of_numpy_scalars_or_tensors_takes_their_dtype_as_pytorch(data, dtype):
    """Only Python floats default to float32: a float64 among the elements keeps the precision
    (it was rounded to float32: 1 + 1e-9 became 1.0)."""
    tensor = Tensor(data)
    assert tensor.dtype == dtype
    np.testing.assert_array_equal(tensor.data, np.asarray(data).astype(dtype))
    assert Tensor([Tensor(np.float64(1 + 1e-12)), Tensor(np.float64(2.0))]).dtype == np.float64


def test_a_list_of_tensors_that_require_grad_is_refused():
    a = Tensor(1.0, requires_grad=True)
    with pytest.raises(TypeError, match="stack"):
        Tensor([a, a])
    assert Tensor([Tensor(1.0), Tensor(2.0)]).dtype == np.float32


def test_python_numbers_do_not_change_the_dtype():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = (2.5 * x + 1) / 3.0 - 0.5
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_numpy_arrays_mix_in_on_either_side():
    x = Tensor(np.ones(3), requires_grad=True)
    y = np.arange(3.0) + x * np.full(3, 2.0)
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(np.asarray(y), [2.0, 3.0, 4.0])


def test_numpy_float64_array_mixing_into_float64_tensor_keeps_float64():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    assert (x @ np.eye(2)).dtype == np.float64


def test_non_numeric_data_is_refused():
    with pytest.raises(TypeError, match="numeric"):
        Tensor(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="numeric"):
        Tensor([object()])


def test_item_numpy_and_shape():
    x = Tensor(np.array([[3.0]]))
    assert x.item() == 3.0 and x.shape == (1, 1) and x.numpy() is x.data
    with pytest.raises(ValueError, match="one element"):
        Tensor(np.ones(2)).item()


def test_seed_network_as_an_ordinary_expression():
    """The seed CNN is just an expression on Tensors; its gradients flow to every parameter."""
    rng = np.random.default_rng(0)
    images = Tensor(rng.integers(0, 256, size=(2, 1, 28, 28)).astype(np.float32))
    shapes = {
        "w1": (16, 1, 3, 3), "b1": (16, 28, 28), "w2": (32, 16, 3, 3), "b2": (32, 14, 14),
        "w3": (64, 32, 3, 3), "b3": (64, 7, 7), "w4": (3136, 100), "b4": (100,), "w5": (100, 10), "b5": (10,),
    }
    p = {name: Tensor(rng.standard_normal(shape).astype(np.float32) * 0.05, requires_grad=True)
         for name, shape in shapes.items()}
    x = images / 255
    x = (x.conv2d(p["w1"], padding=1) + p["b1"]).relu().pad(((0, 0), (0, 0), (0, 1), (0, 1))).max_pool2d(3, 2)
    x = (x.conv2d(p["w2"], padding=1) + p["b2"]).relu().pad(((0, 0), (0, 0), (0, 1), (0, 1))).max_pool2d(3, 2)
    x = (x.conv2d(p["w3"], padding=1) + p["b3"]).relu().flatten()
    logits = ((x @ p["w4"] + p["b4"]).relu()) @ p["w5"] + p["b5"]
    assert logits.shape == (2, 10)
    loss = logits.cross_entropy(np.array([3, 7]))
    loss.backward()
    for name, tensor in p.items():
        assert tensor.grad is not None and tensor.grad.shape == tensor.shape, name


def test_np_array_copies_and_np_asarray_shares():
    x = Tensor(np.ones(3))
    copied, shared = np.array(x), np.asarray(x)
    x.data += 1
    np.testing.assert_array_equal(copied, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(shared, [2.0, 2.0, 2.0])


def test_a_one_element_integer_tensor_is_an_index_as_in_pytorch():
    count = Tensor(3)
    assert np.array_equal(Tensor(np.arange(5.0))[:count].data, [0.0, 1.0, 2.0])
    assert list(range(count)) == [0, 1, 2] and [10, 20, 30, 40][Tensor(np.array([1]))] == 20
    with pytest.raises(TypeError, match="only an integer or bool tensor can be used as an index, got dtype float32"):
        [1, 2, 3][Tensor(1.0)]
    with pytest.raises(ValueError, match="needs a tensor with one element; this one has shape"):
        range(Tensor(np.arange(2)))


def test_a_0d_tensor_takes_axis_0_or_minus_1_as_in_pytorch():
    x = Tensor(3.0)
    assert x.softmax().item() == 1.0 and x.log_softmax().item() == 0.0
    assert x.sum(-1).item() == x.sum(0).item() == x.max(-1).item() == 3.0
    with pytest.raises(ValueError, match="axis 1 is out of range for a tensor with 0 dimensions"):
        x.sum(1)
    with pytest.raises(ValueError, match="axis -2 is out of range for a tensor with 0 dimensions"):
        x.sum(-2)


def test_tolist_gives_python_numbers_as_pytorch():
    """PyTorch's x.tolist() was an AttributeError."""
    assert Tensor([[1.5, 2.0]]).tolist() == [[1.5, 2.0]]
    values = Tensor([1, 2]).tolist()
    assert values == [1, 2] and all(type(value) is int for value in values)
    assert Tensor(np.float64(0.25)).tolist() == 0.25 and Tensor([True]).tolist() == [True]


# -- assigning grad by hand: checked then, as PyTorch -------------------------------------------


@pytest.mark.parametrize("grad, error, message", [
    (np.ones(3, np.float32), ValueError, r"a grad of shape \(3,\) was assigned to a tensor of shape \(2, 3\)"),
    (np.ones((1, 3), np.float32), ValueError, r"shape \(1, 3\) was assigned .* \(it would not be broadcast\)"),
    (np.ones((2, 3)), TypeError, r"a grad of dtype float64 was assigned to a tensor of dtype float32.*astype\(np.float32\)"),
    (np.ones((2, 3), np.int64), TypeError, r"a grad of dtype int64 was assigned to a tensor of dtype float32"),
    ([[1.0] * 3] * 2, TypeError, r"tensor.grad must be None or a numpy array, got a list$"),
    (2.0, TypeError, r"must be None or a numpy array, got a float"),
    (Tensor(np.ones((2, 3), np.float32)), TypeError, r"got a Tensor: assign an array, e.g. t.data.copy\(\)"),
    (np.broadcast_to(np.float32(1.0), (2, 3)), ValueError, r"read-only array .* backward\(\) adds into a grad in place"),
])
def test_assigning_a_grad_that_does_not_fit_is_refused_then_as_pytorch(grad, error, message):
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with pytest.raises(error, match=message):
        x.grad = grad
    assert x.grad is None


def test_a_tensor_s_own_data_or_an_integer_tensor_s_grad_is_refused():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="shares memory with the tensor's own data"):
        x.grad = x.data
    with pytest.raises(ValueError, match="shares memory with the tensor's own data"):
        x.grad = x.data.reshape(3, 2).T  # (a view of it)
    labels = Tensor([1, 2])
    with pytest.raises(TypeError, match=r"a tensor of dtype int64 has no gradient .*its grad can only be None"):
        labels.grad = np.zeros(2, np.int64)
    labels.grad = None


def test_an_assigned_grad_is_kept_and_backward_adds_into_it_in_place_as_pytorch():
    x = Tensor(np.ones(3), requires_grad=True)
    given = np.full(3, 0.5)
    x.grad = given
    assert x.grad is given
    (x * 2.0).sum().backward()
    assert x.grad is given
    np.testing.assert_array_equal(given, [2.5, 2.5, 2.5])  # (torch: g = ones; x.grad = g; ... g is 3)
    x.grad *= 2  # in place on the grad: assigns the same array again, which passes
    x.grad = None
    assert x.grad is None
    y = x * 3.0
    y.grad = np.zeros(3)  # a non-leaf may be given one too, as in PyTorch
    assert y.grad is not None


def test_backward_does_not_pay_for_the_assignment_check(monkeypatch):
    """The check runs on assignment by hand only: backward's accumulation writes the slot."""
    import tinygrad_cnn.tensor as tensor_module

    def refuse(grad, data):
        raise AssertionError("backward() went through the assignment check")

    monkeypatch.setattr(tensor_module, "check_assigned_grad", refuse)
    x = Tensor(np.ones(3), requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0, 4.0])
