"""Optimizers and schedules: the update rules, written out by hand for comparison."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, kernels
from tinygrad_cnn.optim import SGD, Adam, AdamW, ConstantLR, StepLR, WarmupCosine


def quadratic_step(optimizer, param, target):
    optimizer.zero_grad()
    ((param - target) * (param - target)).sum().backward()
    optimizer.step()


@given(momentum=st.floats(0, 0.99), weight_decay=st.floats(0, 0.1), nesterov=st.booleans(),
       lr=st.floats(1e-3, 0.5), seed=st.integers(0, 1000))
def test_sgd_matches_the_update_rule_written_out(momentum, weight_decay, nesterov, lr, seed):
    if nesterov and momentum == 0:
        momentum = 0.5
    rng = np.random.default_rng(seed)
    start, target = rng.standard_normal(4), rng.standard_normal(4)
    param = Tensor(start.copy(), requires_grad=True)
    optimizer = SGD([param], lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    expected, velocity = start.copy(), None
    for _ in range(4):
        quadratic_step(optimizer, param, target)
        grad = 2 * (expected - target) + weight_decay * expected
        velocity = grad if velocity is None else momentum * velocity + grad
        step = grad + momentum * velocity if nesterov else velocity
        expected = expected - lr * (step if momentum else grad)
    np.testing.assert_allclose(param.data, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda params: SGD(params, lr=0.1),
    lambda params: SGD(params, lr=0.1, momentum=0.9),
    lambda params: SGD(params, lr=0.1, momentum=0.8, weight_decay=0.01, nesterov=True),
    lambda params: Adam(params, lr=0.01, weight_decay=0.01),
    lambda params: AdamW(params, lr=0.01, weight_decay=0.1),
], ids=["sgd", "momentum", "nesterov-decay", "adam", "adamw"])
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), block=st.integers(1, 40),
       transposed=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 1000))
def test_updates_by_cache_sized_blocks_equal_whole_updates_to_the_bit(make, shape, block, transposed, dtype, seed):
    """kernels.update_blocks runs an update a block of UPDATE_BLOCK_ELEMENTS at a time; with
    blocks of 1 to 40 elements (a ragged last one), three steps (the first creates the
    buffers) give the same parameters and buffers, bit for bit, as whole-array updates; a
    transposed (column-major) parameter with its transposed gradient is updated by the blocks
    of its row-major transpose."""
    rng = np.random.default_rng(seed)
    start, grads = rng.standard_normal(shape).astype(dtype), rng.standard_normal((3, *shape)).astype(dtype)
    results = []
    for block_elements in (10**9, block):
        saved, kernels.UPDATE_BLOCK_ELEMENTS = kernels.UPDATE_BLOCK_ELEMENTS, block_elements
        try:
            param = Tensor(start.T.copy().T if transposed else start.copy(), requires_grad=True)
            optimizer = make([param])
            for grad in grads:
                param.grad = grad.T.copy().T if transposed else grad.copy()
                optimizer.step()
        finally:
            kernels.UPDATE_BLOCK_ELEMENTS = saved
        results.append((param.data, optimizer.state_dict()))
    (whole, whole_state), (blocked, blocked_state) = results
    np.testing.assert_array_equal(blocked, whole)
    assert blocked.dtype == whole.dtype and blocked.flags.c_contiguous == whole.flags.c_contiguous
    assert whole_state.keys() == blocked_state.keys()
    for key in whole_state:
        np.testing.assert_array_equal(blocked_state[key], whole_state[key])


def test_update_blocks_cover_the_arrays_once_and_skip_missing_buffers():
    saved, kernels.UPDATE_BLOCK_ELEMENTS = kernels.UPDATE_BLOCK_ELEMENTS, 4
    try:
        data, grad = np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)
        blocks = list(kernels.update_blocks(data, grad, None))
        assert [len(block_data) for block_data, _, _ in blocks] == [4, 4, 1]
        assert all(buffer is None for _, _, buffer in blocks)
        for block_data, block_grad, _ in blocks:
            block_data += block_grad  # the blocks are views: the update lands in the arrays
        np.testing.assert_array_equal(data, grad)
        strided = np.zeros((3, 6))[:, ::2]  # not contiguous: whole
        assert [len(whole) for whole in kernels.update_blocks(strided, grad)] == [2]
        assert next(iter(kernels.update_blocks(strided, grad)))[0] is strided
        transposed = np.zeros((3, 3)).T  # column-major, its gradient row-major: a copy of it in column-major order
        for block_data, block_grad in kernels.update_blocks(transposed, grad):
            block_data += block_grad
        np.testing.assert_array_equal(transposed, grad)
        transposed[...] = 0
        # all column-major: the blocks of their transposes, which are row-major
        velocity = np.zeros((3, 3)).T
        blocks = list(kernels.update_blocks(transposed, grad.T, velocity))
        assert [len(block_data) for block_data, _, _ in blocks] == [4, 4, 1]
        for block_data, block_grad, block_velocity in blocks:
            block_velocity += block_grad
            block_data += 2 * block_velocity
        np.testing.assert_array_equal(velocity, grad.T)
        np.testing.assert_array_equal(transposed, 2 * grad.T)
    finally:
        kernels.UPDATE_BLOCK_ELEMENTS = saved


@pytest.mark.parametrize("make", [
    lambda params: SGD(params, lr=0.1, momentum=0.9),
    lambda params: SGD(params, lr=0.1, momentum=0.8, weight_decay=0.01, nesterov=True),
    lambda params: Adam(params, lr=0.01, weight_decay=0.01),
], ids=["momentum", "nesterov-decay", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grad_order", ["same", "other"])
def test_a_column_major_parameter_is_updated_as_its_row_major_copy_to_the_bit(make, dtype, grad_order):
    """nn.Linear's and the seed networks' weights are column-major (kernels.column_major): the
    optimizers update them through their row-major transposes (by blocks, or through BLAS at
    this size, 300 x 301 ≥ BLAS_PASS_ELEMENTS), to the same bits as a row-major copy of the
    same numbers, and keep their buffers in the parameter's order, checkpoints restored too.
    A gradient in the other order (assigned by hand) is taken in the parameter's order."""
    rng = np.random.default_rng(7)
    start, grads = rng.standard_normal((300, 301)).astype(dtype), rng.standard_normal((3, 300, 301)).astype(dtype)
    results = []
    for order in ("C", "F"):
        other = {"C": "F", "F": "C"}[order] if grad_order == "other" else order
        param = Tensor(np.array(start, order=order), requires_grad=True)
        optimizer = make([param])
        for grad in grads[:2]:
            param.grad = np.array(grad, order=other)
            optimizer.step()
        restored = make([param])
        restored.load_state_dict({key: np.ascontiguousarray(value) for key, value in optimizer.state_dict().items()})
        param.grad = np.array(grads[2], order=other)
        restored.step()
        buffers = [value for key, value in restored.state_dict().items() if key != "steps"]
        internal = getattr(restored, "velocities", None) or restored.first_moments + restored.second_moments
        assert all(buffer.flags.f_contiguous == (order == "F") for buffer in internal)
        results.append((param.data, buffers))
    (row_param, row_buffers), (column_param, column_buffers) = results
    assert column_param.flags.f_contiguous
    np.testing.assert_array_equal(column_param, row_param)
    for row_buffer, column_buffer in zip(row_buffers, column_buffers, strict=True):
        np.testing.assert_array_equal(column_buffer, row_buffer)


needs_numpys_blas = pytest.mark.skipif(
    kernels.level1_blas() is None,
    reason="this numpy was built without the OpenBLAS its wheels bundle (kernels.level1_blas): only numpy's passes run here")


def blas_sized(rng: np.random.Generator, dtype, size: int) -> np.ndarray:
    """``size`` numbers of every kind a buffer meets: ordinary, huge, tiny and subnormal, ±0."""
    values = rng.standard_normal(size) * 10.0 ** rng.integers(-3, 4, size)
    kinds = rng.integers(0, 8, size)
    values[kinds == 0] = 0.0
    values[kinds == 1] = -0.0
    values[kinds == 2] = rng.standard_normal(np.count_nonzero(kinds == 2)) * float(np.finfo(dtype).tiny)  # subnormal or near
    values[kinds == 3] = rng.standard_normal(np.count_nonzero(kinds == 3)) * (float(np.finfo(dtype).max) / 100)  # huge
    return values.astype(dtype)


@needs_numpys_blas
@settings(max_examples=40, deadline=None)
@given(extra=st.integers(0, 200), momentum=st.sampled_from([0.0, 0.3, 0.5, 0.9, 0.99, 1.0, 1.5, 2.0, 2.5]) | st.floats(0, 3),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 1000))
def test_momentum_step_through_blas_gives_numpys_bits_for_finite_velocities(extra, momentum, dtype, seed):
    """v = m·v + g through OpenBLAS's axpy, v *= m as v += (m − 1)·v where that is exact on this
    CPU (``scales_exactly``) and by numpy elsewhere: for finite v, the same bits as numpy's
    v *= m, v += g, subnormals and huge values included; and the same with v *= m by numpy."""
    rng = np.random.default_rng(seed)
    size = kernels.BLAS_PASS_ELEMENTS + extra  # (a ragged tail for the kernels' vector loops)
    start, grad = blas_sized(rng, dtype, size), blas_sized(rng, dtype, size)
    expected = start.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        expected *= momentum
        expected += grad
        for exact in (kernels.scales_exactly(np.dtype(dtype)), False):
            velocity = start.copy()
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(kernels, "scales_exactly", lambda dtype, exact=exact: exact)
                assert kernels.blas_takes(velocity, grad)
                kernels.momentum_step(velocity, momentum, grad)
            np.testing.assert_array_equal(velocity, expected)


@needs_numpys_blas
def test_momentum_step_through_blas_turns_an_infinite_velocity_into_nan_as_its_docstring_says():
    """(m − 1)·inf + inf is NaN for m < 1: the documented difference from numpy's passes (v = ±inf
    means its parameter is already ∓inf: the run has diverged), where v *= m runs through BLAS;
    m > 1 keeps the infinity, and so does numpy's v *= m on a CPU where BLAS's is not exact."""
    for momentum, stays_infinite in ((0.9, not kernels.scales_exactly(np.dtype(np.float32))), (1.5, True)):
        velocity, grad = np.ones(kernels.BLAS_PASS_ELEMENTS, np.float32), np.ones(kernels.BLAS_PASS_ELEMENTS, np.float32)
        velocity[:2] = [np.inf, -np.inf]
        with np.errstate(invalid="ignore"):
            kernels.momentum_step(velocity, momentum, grad)
        np.testing.assert_array_equal(velocity[:2], [np.inf, -np.inf] if stays_infinite else [np.nan, np.nan])
        assert (velocity[2:] == np.float32(momentum) + 1).all()


@needs_numpys_blas
@settings(max_examples=30, deadline=None)
@given(extra=st.integers(0, 200), factor=st.floats(-2, 2).filter(lambda factor: factor != 0),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 1000))
def test_add_scaled_through_blas_is_numpys_update_rounded_once(extra, factor, dtype, seed):
    """target += factor·source through axpy is one fused multiply-add an entry: it differs from
    numpy's round(target + round(factor·source)) by at most the rounding of factor·source and
    one rounding of the result."""
    rng = np.random.default_rng(seed)
    size = kernels.BLAS_PASS_ELEMENTS + extra
    target, source = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    expected = target + dtype(factor) * source
    assert kernels.blas_takes(target, source)
    kernels.add_scaled(target, factor, source)
    bound = np.finfo(dtype).eps * (np.abs(dtype(factor) * source.astype(np.float64)) + np.abs(expected))
    assert (np.abs(target.astype(np.float64) - expected) <= bound).all()
    target, exact = rng.standard_normal(size).astype(dtype), dtype(2.0 ** int(rng.integers(-8, 8)))
    expected = target + exact * source  # (a power of two: factor·source is exact, one rounding either way)
    kernels.add_scaled(target, float(exact), source)
    np.testing.assert_array_equal(target, expected)


def test_the_blas_passes_are_only_for_big_contiguous_float_arrays_they_may_write(monkeypatch):
    """Small, strided, read-only, integer, half-precision and overlapping arrays, and a factor of
    0 (OpenBLAS would skip the pass: 0·inf must still give NaN), take numpy's passes."""
    size = kernels.BLAS_PASS_ELEMENTS
    big, other = np.ones(size, np.float32), np.ones(size, np.float32)
    read_only = np.ones(size, np.float32)
    read_only.flags.writeable = False
    assert not kernels.blas_takes(big[:-1], other[:-1])  # small
    assert not kernels.blas_takes(np.ones(2 * size, np.float32)[::2], other)  # strided
    assert not kernels.blas_takes(big, np.ones(2 * size, np.float32)[::2])
    assert not kernels.blas_takes(read_only, other)
    assert not kernels.blas_takes(np.ones(size, np.int64), np.ones(size, np.int64))
    assert not kernels.blas_takes(np.ones(size, np.float16), np.ones(size, np.float16))
    assert not kernels.blas_takes(big, other.astype(np.float64))
    assert not kernels.blas_takes(big, big)  # overlapping
    for zero in (0.0, 1e-50):  # (1e-50 is 0 in float32)
        target, source = np.ones(size, np.float32), np.ones(size, np.float32)
        source[0] = np.inf
        with np.errstate(invalid="ignore"):
            kernels.add_scaled(target, zero, source)
        assert np.isnan(target[0]) and (target[1:] == 1).all()
    with pytest.raises(ValueError, match="read-only"):  # numpy's own refusal, not a write through BLAS
        kernels.add_scaled(read_only, 1.0, other)
    monkeypatch.setattr(kernels, "level1_blas", lambda: None)  # a numpy without its OpenBLAS
    assert not kernels.blas_takes(big, other)
    kernels.momentum_step(big, 0.9, other)
    np.testing.assert_array_equal(big, np.float32(0.9) + 1)


@needs_numpys_blas
@pytest.mark.parametrize("options", [dict(momentum=0.9), dict(), dict(momentum=0.8, weight_decay=0.01, nesterov=True)],
                         ids=["momentum", "plain", "nesterov-decay"])
def test_sgd_through_blas_gives_numpys_velocities_and_parameters_to_a_rounding(options, monkeypatch):
    """SGD on a parameter big enough for the BLAS passes, whole, against the same steps by
    numpy's passes (by blocks): the momentum buffers agree to the bit, the parameters to one
    rounding of each step."""
    rng = np.random.default_rng(0)
    shape = (kernels.BLAS_PASS_ELEMENTS // 100 + 3, 100)
    start, grads = rng.standard_normal(shape).astype(np.float32), rng.standard_normal((4, *shape)).astype(np.float32)
    routines, calls = kernels.level1_blas(), []

    def counted(routine):
        return lambda *arguments: (calls.append(arguments[0]), routine(*arguments))[1]

    monkeypatch.setattr(kernels, "level1_blas", lambda: {dtype: counted(routine) for dtype, routine in routines.items()})
    results = []
    for blas_elements in (kernels.BLAS_PASS_ELEMENTS, 10**12):
        monkeypatch.setattr(kernels, "BLAS_PASS_ELEMENTS", blas_elements)
        param = Tensor(start.copy(), requires_grad=True)
        optimizer = SGD([param], lr=0.1, **options)
        calls.clear()
        for grad in grads:
            param.grad = grad.copy()
            optimizer.step()
        # through BLAS: the parameter's update every step, and the momentum's after the first
        assert len(calls) >= (len(grads) if blas_elements < 10**12 else 0) and len(calls) <= 3 * len(grads)
        assert (len(calls) > 0) == (blas_elements < 10**12) and set(calls) <= {param.data.size}
        results.append((param.data, optimizer.state_dict()))
    (through_blas, blas_state), (by_numpy, numpy_state) = results
    np.testing.assert_allclose(through_blas, by_numpy, rtol=1e-6, atol=1e-6)
    assert blas_state.keys() == numpy_state.keys()
    if "nesterov" not in options:  # (with weight decay, g = grad + wd·p reads the parameters)
        for key in blas_state:
            np.testing.assert_array_equal(blas_state[key], numpy_state[key])


def test_flush_subnormals_zeroes_only_the_entries_below_its_margin():
    for dtype in (np.float32, np.float64):
        threshold = np.finfo(dtype).tiny * kernels.FLUSH_MARGIN
        values = np.array([0.0, threshold, -threshold, threshold * 0.999, -np.finfo(dtype).smallest_subnormal,
                           1e-3, -2.0, np.inf, -np.inf, np.nan], dtype=dtype)
        flushed = values.copy()
        kernels.flush_subnormals(flushed)
        expected = values.copy()
        expected[[3, 4]] = 0
        np.testing.assert_array_equal(flushed, expected)
        assert not np.signbit(flushed[4]) and flushed.dtype == dtype


@pytest.mark.parametrize("make", [
    lambda params: SGD(params, lr=0.05, momentum=0.9),
    lambda params: SGD(params, lr=0.05, momentum=0.21, nesterov=True),
    lambda params: Adam(params, lr=0.01, betas=(0.9, 0.21)),
], ids=["momentum 0.9", "nesterov 0.21", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffers_of_a_parameter_whose_gradient_stays_zero_never_turn_subnormal(make, dtype):
    """A dead unit's momentum decays geometrically into the subnormal floats and would stay
    there (slow arithmetic); the optimizers set such entries to 0 every SUBNORMAL_FLUSH_STEPS
    steps (SGD every kernels.flush_steps(momentum): 144 for 0.9). Over 2,000 steps no buffer
    holds a subnormal after any step, and the parameters are exactly those of the same run
    without flushing."""
    rng = np.random.default_rng(0)
    start = rng.standard_normal(5).astype(dtype)
    first_grad = rng.standard_normal(5).astype(dtype)
    runs = []
    for flush_steps in (kernels.SUBNORMAL_FLUSH_STEPS, 10**9):
        saved, kernels.SUBNORMAL_FLUSH_STEPS = kernels.SUBNORMAL_FLUSH_STEPS, flush_steps
        try:
            param = Tensor(start.copy(), requires_grad=True)
            optimizer = make([param])
            subnormal_steps = 0
            for step in range(2000):
                param.grad = first_grad.copy() if step == 0 else np.zeros(5, dtype=dtype)
                optimizer.step()
                buffers = list(optimizer.state_dict().values())[-2:]
                if any(((buffer != 0) & (np.abs(buffer) < np.finfo(dtype).tiny)).any() for buffer in buffers
                       if buffer.dtype.kind == "f"):
                    subnormal_steps += 1
        finally:
            kernels.SUBNORMAL_FLUSH_STEPS = saved
        runs.append((param.data.copy(), subnormal_steps))
    (flushed, flushed_subnormal_steps), (unflushed, unflushed_subnormal_steps) = runs
    assert flushed_subnormal_steps == 0
    if dtype == np.float32:  # (float64 would need far more steps to get there)
        assert unflushed_subnormal_steps > 0  # the test can tell
    np.testing.assert_array_equal(flushed, unflushed)


@pytest.mark.parametrize("eps_per_gradient", [0.0, 1e-5, 0.1], ids=["eps 0", "eps 1e-5 g", "eps 0.1 g"])
@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e-15), (np.float64, 1e-152)], ids=["float32", "float64"])
def test_adams_flush_leaves_the_steps_alone_when_eps_is_too_small_to_hide_the_second_moments(eps_per_gradient, dtype,
                                                                                               scale):
    """Adam's step is lr·m̂/(√v̂ + eps). Gradients of 1e-15 (float32) give second moments v of
    about 1e-33, below the flush limit, and first moments far above it: setting v to 0 there
    changed the steps wherever eps does not dwarf √v̂: with eps = 0, a zero gradient after a
    flush made a step m/0 = -inf; with eps = 1e-20 the parameters went from 1 to -850 instead
    of 0.63 (the gradient's size, 1e-152, is where float64 meets the same). The flushed run must
    equal the unflushed one to the bit, and stay finite."""
    eps = eps_per_gradient * scale
    rng = np.random.default_rng(0)
    grads = (rng.uniform(0.5, 1.5, size=(40, 4)) * scale).astype(dtype)
    grads[19] = 0  # the step after the second flush: v, if flushed, gets nothing back
    runs = []
    for interval in (10, 10**9):  # (both moments flushed every 10 steps, whatever their intervals would be; never)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(kernels, "flush_steps", lambda decay, headroom=None, interval=interval: interval)
            param = Tensor(np.ones(4, dtype), requires_grad=True)
            optimizer = Adam([param], lr=0.01, eps=eps)
            for grad in grads:
                param.grad = grad.copy()
                optimizer.step()
        runs.append(param.data.copy())
    flushed, unflushed = runs
    assert np.isfinite(unflushed).all() and not np.array_equal(unflushed, np.ones(4))  # (the steps are not 0)
    np.testing.assert_array_equal(flushed, unflushed)


@pytest.mark.parametrize("make, buffers", [
    (lambda params: SGD(params, lr=0.1, momentum=0.9), lambda optimizer: optimizer.velocities),
    (lambda params: Adam(params, lr=0.1), lambda optimizer: optimizer.first_moments + optimizer.second_moments),
], ids=["sgd", "adam"])
def test_a_flush_step_flushes_every_block_of_every_buffer_and_those_of_parameters_without_a_gradient(make, buffers,
                                                                                                  monkeypatch):
    """The optimizers flush each cache-sized block of a buffer right after its update
    (kernels.py): every block's tiny entries go, the others stay; a parameter without a
    gradient on the flush step (skipped, its buffers unchanged) is flushed too, or one that
    gets gradients only between flush steps could decay into the subnormals unflushed."""
    monkeypatch.setattr(kernels, "UPDATE_BLOCK_ELEMENTS", 4)
    monkeypatch.setattr(kernels, "SUBNORMAL_FLUSH_STEPS", 2)
    monkeypatch.setattr(kernels, "flush_steps", lambda decay, headroom=None: 2)  # (144 for a factor of 0.9)
    limit = kernels.flush_limit(np.dtype(np.float32))  # (Adam's limit for v is lower, still above the subnormals)
    updated, skipped = Tensor(np.ones(10, np.float32), requires_grad=True), Tensor(np.ones(3, np.float32), requires_grad=True)
    optimizer = make([updated, skipped])
    updated.grad, skipped.grad = np.ones(10, np.float32), np.ones(3, np.float32)
    optimizer.step()  # step 1 makes the buffers: now give them tiny entries in every block
    for buffer in buffers(optimizer):
        buffer[::3] = np.finfo(np.float32).tiny / 4  # a subnormal at 0, 3, 6, 9: in each of the blocks 0-3, 4-7, 8-9
    updated.grad, skipped.grad = np.zeros(10, np.float32), None
    optimizer.step()  # step 2 flushes
    for buffer in buffers(optimizer):
        assert np.all(buffer[::3] == 0) and not np.signbit(buffer).any(), buffer
        others = np.delete(buffer, np.arange(0, buffer.size, 3))
        assert np.all(others > limit), buffer


@pytest.mark.parametrize("momentum", [0.21, 0.5, 0.6, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("placed_after", ["flush step", "step before a flush step"])
def test_momentum_just_above_the_flush_limit_cannot_reach_the_subnormals_before_the_next_flush(momentum, dtype,
                                                                                              placed_after, monkeypatch):
    """The flush's promise (kernels.py) for a buffer decaying by β ≥ 0.21 a step: an entry just
    above the limit at one flush is still normal at the next (0.2 was said, but 0.2¹⁰ < 2⁻²³:
    such an entry turned subnormal for a step), SGD flushing every kernels.flush_steps(β)
    steps (10 for 0.21, 144 for 0.9, 1,517 for 0.99). The optimizers flush each buffer right
    after its update on a flush step, so the worst case is an entry just above the limit when the
    flush of step `steps` leaves it: it then goes through `steps` updates, the last on the next
    flush step, right before that flush. A subnormal made there is flushed before the step
    ends, so every value the velocity takes is checked: after each step and as the flush gets
    it. (Also placed after the step before a flush step, the worst case of a flush before the
    update.)"""
    tiny, limit = np.finfo(dtype).tiny, np.finfo(dtype).tiny * kernels.FLUSH_MARGIN
    steps = kernels.flush_steps(momentum)
    seen = []
    flush = kernels.flush_subnormals

    def watched_flush(array, limit=None):
        seen.append(array.copy())  # (what the last update computed, before the flush)
        flush(array, limit)

    monkeypatch.setattr(kernels, "flush_subnormals", watched_flush)
    param = Tensor(np.ones(1, dtype), requires_grad=True)
    optimizer = SGD([param], lr=0.1, momentum=momentum)
    placed = steps if placed_after == "flush step" else steps - 1
    first_grad = np.array([limit * (1 + 1e-5) / momentum ** (placed - 1)], dtype)  # (the velocity after step k: g·β^(k−1))
    for step in range(1, 3 * steps + 1):
        param.grad = first_grad if step == 1 else np.zeros(1, dtype)
        optimizer.step()
        velocity = optimizer.velocities[0]
        seen.append(velocity.copy())
        if step == placed:
            assert limit <= velocity[0] <= limit * (1 + 1e-4), velocity
    assert len(seen) > 3 * steps  # (the flush was watched)
    for value in seen:
        assert value[0] == 0 or abs(value[0]) >= tiny, seen


@pytest.mark.parametrize("moment", ["m", "v"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("betas, eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 1e-3)], ids=["defaults", "short"])
def test_adams_moments_just_above_their_flush_limits_stay_normal_until_their_next_flush(moment, dtype, betas, eps,
                                                                                         monkeypatch):
    """Adam flushes each moment every kernels.flush_steps(β, limit / smallest normal float)
    steps, its own factor and limit (Adam._flush_limits_now: with the defaults in float32, m
    every 144 steps and v every 11,004). An entry just above its limit when a flush leaves it
    decays by β a step with no gradient, and must still be a normal float when the next flush
    gets it: every value the moment takes is checked, after each step and as each flush sees it
    (a subnormal made by the last update before a flush is flushed before the step ends)."""
    param = Tensor(np.ones(1, dtype), requires_grad=True)
    optimizer = Adam([param], lr=0.01, betas=betas, eps=eps)
    index = 0 if moment == "m" else 1
    limit, tiny = optimizer._flush_limits(np.dtype(dtype))[index], np.finfo(dtype).tiny
    steps = kernels.flush_steps(betas[index], limit / tiny)
    buffers = optimizer.first_moments if moment == "m" else optimizer.second_moments
    seen, flush = [], kernels.flush_subnormals

    def watched_flush(array, limit=None):
        if array is buffers[0] or np.shares_memory(array, buffers[0]):
            seen.append(array.copy())  # (what the last update computed, before the flush)
        flush(array, limit)

    monkeypatch.setattr(kernels, "flush_subnormals", watched_flush)
    for step in range(1, 2 * steps + 1):
        param.grad = np.zeros(1, dtype)
        optimizer.step()
        if step == steps:  # right after a flush of this moment: just above its limit
            buffers[0][...] = limit * (1 + 1e-5)
        seen.append(buffers[0].copy())
    assert limit > 0 and steps > kernels.SUBNORMAL_FLUSH_STEPS
    assert any(0 < value[0] < limit * (1 + 1e-4) for value in seen)  # (the entry was placed and watched)
    for value in seen:
        assert value[0] == 0 or abs(value[0]) >= tiny, (moment, value)
    assert buffers[0][0] == 0  # the next flush took it


def test_sgd_zero_grad_sets_none_and_skips_parameters_without_gradient():
    used, unused = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    optimizer = SGD([used, unused], lr=0.1)
    (used * 3.0).sum().backward()
    optimizer.step()
    np.testing.assert_allclose(used.data, [0.7, 0.7])
    np.testing.assert_array_equal(unused.data, [1.0, 1.0])
    optimizer.zero_grad()
    assert used.grad is None


def test_lr_can_change_between_steps():
    param = Tensor(np.zeros(1), requires_grad=True)
    optimizer = SGD([param], lr=1.0)
    for lr in (1.0, 0.5):
        optimizer.lr = lr
        optimizer.zero_grad()
        (param * 1.0).sum().backward()
        optimizer.step()
    np.testing.assert_allclose(param.data, [-1.5])


def test_sgd_minimises_a_quadratic():
    param, target = Tensor(np.zeros(3), requires_grad=True), np.array([1.0, -2.0, 3.0])
    optimizer = SGD([param], lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(200):
        quadratic_step(optimizer, param, target)
    np.testing.assert_allclose(param.data, target, atol=1e-6)


def test_adam_minimises_a_quadratic_and_its_first_step_is_lr_sized():
    param, target = Tensor(np.zeros(2), requires_grad=True), np.array([3.0, -1.0])
    optimizer = Adam([param], lr=0.01)
    quadratic_step(optimizer, param, target)
    np.testing.assert_allclose(np.abs(param.data), [0.01, 0.01], rtol=1e-5)  # m̂/√v̂ = ±1
    optimizer.lr = 0.1
    for _ in range(500):
        quadratic_step(optimizer, param, target)
    np.testing.assert_allclose(param.data, target, atol=1e-3)


@pytest.mark.parametrize("optimizer_class", [SGD, Adam])
def test_optimizer_state_round_trip_continues_identically(optimizer_class):
    def make():
        param = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        kwargs = {"momentum": 0.9} if optimizer_class is SGD else {}
        return param, optimizer_class([param], lr=0.05, **kwargs)

    param, optimizer = make()
    for _ in range(3):
        quadratic_step(optimizer, param, np.zeros(2))
    copy, copy_optimizer = make()
    copy.data[:] = param.data
    copy_optimizer.load_state_dict(optimizer.state_dict())
    for _ in range(3):
        quadratic_step(optimizer, param, np.zeros(2))
        quadratic_step(copy_optimizer, copy, np.zeros(2))
    np.testing.assert_array_equal(param.data, copy.data)


def test_optimizer_arguments_are_checked():
    param = Tensor(np.ones(1))
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        SGD([param], lr=-0.1)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([param], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="not a Tensor"):
        SGD([np.ones(2)], lr=0.1)


def test_warmup_cosine_schedule():
    schedule = WarmupCosine(max_lr=0.1, total_steps=110, warmup_steps=10)
    assert schedule(0) == 0.0
    assert math.isclose(schedule(5), 0.05)
    assert math.isclose(schedule(10), 0.1)
    assert math.isclose(schedule(60), 0.05)  # half-way through the cosine
    assert math.isclose(schedule(110), 0.0, abs_tol=1e-12)
    values = [schedule(step) for step in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert ConstantLR(0.3)(1234) == 0.3
    with pytest.raises(ValueError):
        WarmupCosine(0.1, total_steps=5, warmup_steps=6)


def test_warmup_cosine_that_is_all_warm_up_still_ends_at_min_lr():
    """warmup_steps == total_steps leaves no decay: the ramp, then min_lr from step total on
    (it gave max_lr at step total and min_lr only one step later)."""
    schedule = WarmupCosine(max_lr=0.1, total_steps=10, warmup_steps=10, min_lr=0.01)
    assert math.isclose(schedule(5), 0.05)
    assert schedule(10) == 0.01 and schedule(11) == 0.01


def test_warmup_cosine_reaches_max_lr_at_step_warmup_steps_as_pytorch():
    """transformers' get_cosine_schedule_with_warmup: lr(s) = max · s / warmup during the warm-up,
    max_lr at step warmup_steps, min_lr at step total_steps."""
    schedule = WarmupCosine(max_lr=0.1, total_steps=2, warmup_steps=1)
    assert [schedule(step) for step in range(3)] == [0.0, 0.1, 0.0]
    one_step = WarmupCosine(max_lr=0.1, total_steps=1, warmup_steps=0)
    assert one_step(0) == 0.1 and one_step(1) == 0.0


def test_warmup_cosine_refuses_a_one_step_run_that_is_all_warm_up_at_lr_0():
    """Its only step would train at start_lr, lr 0, never at max_lr; from a start_lr above 0
    that step trains, and the schedule is accepted."""
    with pytest.raises(ValueError, match=r"warmup_steps \(1\) == total_steps \(1\).*warmup_steps=0"):
        WarmupCosine(max_lr=0.1, total_steps=1, warmup_steps=1)
    assert WarmupCosine(max_lr=0.1, total_steps=1, warmup_steps=1, start_lr=0.01)(0) == 0.01


def test_warmup_cosine_takes_whole_floats_and_a_min_lr_above_max_lr_as_pytorch():
    # step counts from float arithmetic (np.ceil gives 2814.0), and a rising "decay", which
    # CosineAnnealingLR allows (eta_min above the base lr)
    schedule = WarmupCosine(max_lr=0.1, total_steps=np.ceil(2813.2), warmup_steps=0.05 * 1000, min_lr=0.2)
    assert (schedule.total_steps, schedule.warmup_steps) == (2814, 50)
    assert type(schedule.total_steps) is int and schedule(50.0) == schedule(50) == 0.1
    assert schedule(2814) == 0.2 and schedule(100) < schedule(2000)


@pytest.mark.parametrize("arguments, message", [
    ({"max_lr": float("nan")}, "max_lr must be a finite number >= 0, got nan"),
    ({"max_lr": float("inf")}, "max_lr must be a finite number >= 0, got inf"),
    ({"max_lr": -0.1}, "max_lr must be a finite number >= 0, got -0.1"),
    ({"min_lr": -0.01}, "min_lr must be a finite number >= 0, got -0.01"),
    ({"start_lr": float("nan")}, "start_lr must be a finite number >= 0, got nan"),
    ({"start_lr": 0.2}, r"start_lr \(0.2\) must not exceed max_lr \(0.1\)"),
    ({"total_steps": 0}, "total_steps must be a whole number >= 1, got 0"),
    ({"total_steps": -5, "warmup_steps": 0}, "total_steps must be a whole number >= 1, got -5"),
    ({"total_steps": 10.5}, "total_steps must be a whole number >= 1, got 10.5"),
    ({"warmup_steps": -1}, "warmup_steps must be a whole number >= 0, got -1"),
    ({"warmup_steps": 2.5}, "warmup_steps must be a whole number >= 0, got 2.5"),
    ({"warmup_steps": True}, "warmup_steps must be a whole number >= 0, got True"),
    ({"warmup_steps": 11}, r"warmup_steps \(11\) must not exceed total_steps \(10\)"),
])
def test_warmup_cosine_arguments_are_checked(arguments, message):
    with pytest.raises(ValueError, match=f"WarmupCosine {message}"):
        WarmupCosine(**{"max_lr": 0.1, "total_steps": 10, "warmup_steps": 2, **arguments})


@pytest.mark.parametrize("warmup_steps", [0, 2])
@pytest.mark.parametrize("step", [-1, 2.5, True, "3"])
def test_warmup_cosine_refuses_a_negative_or_non_integer_step(warmup_steps, step):
    """A negative step gave a negative lr (or divided by zero without a warm-up)."""
    schedule = WarmupCosine(max_lr=0.1, total_steps=10, warmup_steps=warmup_steps)
    with pytest.raises(ValueError, match=f"WarmupCosine step must be a whole number >= 0, got {step!r}"):
        schedule(step)


def test_warmup_cosine_takes_numpy_integers_and_stays_at_min_lr_after_the_end():
    schedule = WarmupCosine(max_lr=np.float64(0.1), total_steps=np.int64(10), warmup_steps=np.int32(2), min_lr=0.01)
    assert schedule(np.int64(2)) == 0.1
    assert schedule(10) == schedule(1000) == 0.01


# -- what can be optimized ----------------------------------------------------------------------


@pytest.mark.parametrize("optimizer_class", [SGD, Adam])
def test_only_float_tensors_can_be_optimized(optimizer_class):
    floats = Tensor(np.ones(2, dtype=np.float32))
    with pytest.raises(TypeError, match="optimizer parameter 1 has dtype int64; only float32 and float64"):
        optimizer_class([floats, Tensor([1, 2])])
    with pytest.raises(TypeError, match="parameter 0 has dtype bool"):
        optimizer_class([Tensor(np.array([True, False]))])
    assert not floats.requires_grad  # refused before anything was changed


@pytest.mark.parametrize("optimizer_class", [SGD, Adam])
def test_a_computed_tensor_cannot_be_optimized(optimizer_class):
    leaf = Tensor.ones(2, requires_grad=True)
    computed = leaf * 2  # it never gets a grad: it would silently never train
    with pytest.raises(ValueError, match=r"can't optimize a non-leaf Tensor: parameter 1 \(shape \(2,\)\)"):
        optimizer_class([leaf, computed])


@pytest.mark.parametrize("optimizer_class", [SGD, Adam])
def test_the_same_tensor_twice_is_refused(optimizer_class):
    # it would be updated twice per step
    shared, other = Tensor.ones(2, requires_grad=True), Tensor.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter 2 is the same Tensor as parameter 0"):
        optimizer_class([shared, other, shared])
    optimizer_class([shared, Tensor(shared.data)])  # equal values, different tensors: fine


def test_every_models_parameters_are_optimizable():
    from tinygrad_cnn.models import SeedCNN, SeedMLP
    from tinygrad_cnn.nn import BatchNorm2d, Conv2d, Linear, get_parameters

    layers = [Linear(3, 2), Conv2d(2, 4, 3, groups=2), BatchNorm2d(3)]
    for model in [SeedCNN(), SeedCNN(fused=False), SeedMLP(), *layers, layers]:
        parameters = get_parameters(model)
        SGD(parameters, lr=0.1)
        Adam(parameters)


# -- loading state ------------------------------------------------------------------------------


def test_sgd_refuses_another_optimizers_state_naming_the_keys():
    param = Tensor(np.ones(2))
    adam_state = Adam([Tensor(np.ones(2))]).state_dict()
    with pytest.raises(ValueError, match=r"unexpected keys \['m.0', 'steps', 'v.0'\]; SGD's state has one momentum "
                                         r"buffer per parameter, keyed by the parameter's index"):
        SGD([param], momentum=0.9).load_state_dict(adam_state)
    with pytest.raises(ValueError, match=r"unexpected keys \['x'\]"):
        SGD([param], momentum=0.9).load_state_dict({"x": np.zeros(2)})
    with pytest.raises(ValueError, match=r"unexpected keys \['1'\]"):  # only one parameter: index 1 is out of range
        SGD([param], momentum=0.9).load_state_dict({"1": np.zeros(2)})
    with pytest.raises(ValueError, match=r"SGD state entry '0' has shape \(3,\), but its parameter has shape \(2,\)"):
        SGD([param], momentum=0.9).load_state_dict({"0": np.zeros(3)})
    with pytest.raises(TypeError, match="needs a dict of arrays"):
        SGD([param], momentum=0.9).load_state_dict([np.zeros(2)])


def test_sgd_without_momentum_refuses_momentum_buffers():
    param = Tensor(np.ones(2))
    momentum_state = {"0": np.full(2, 0.5)}
    with pytest.raises(ValueError, match=r"momentum buffers for parameters \['0'\], but this SGD has momentum=0"):
        SGD([param]).load_state_dict(momentum_state)
    SGD([param]).load_state_dict({})  # the state of a plain SGD (or of one that has not stepped yet)
    SGD([param], momentum=0.9).load_state_dict({})


def test_a_failed_sgd_load_leaves_the_state_as_it_was():
    param = Tensor(np.ones(2), requires_grad=True)
    optimizer = SGD([param], lr=0.1, momentum=0.9)
    quadratic_step(optimizer, param, np.zeros(2))
    before = optimizer.state_dict()
    with pytest.raises(ValueError):
        optimizer.load_state_dict({"0": np.zeros(2), "steps": np.array(1)})
    np.testing.assert_array_equal(optimizer.state_dict()["0"], before["0"])


@given(lr=st.floats(1e-3, 0.5), weight_decay=st.floats(0, 0.5), beta1=st.floats(0, 0.95), beta2=st.floats(0, 0.999),
       seed=st.integers(0, 1000))
def test_adamw_matches_the_update_rule_written_out(lr, weight_decay, beta1, beta2, seed):
    """AdamW (PyTorch's): p ← p · (1 − lr · wd), then Adam's step with g undecayed:
    m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g², p ← p − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + eps)."""
    rng = np.random.default_rng(seed)
    start, target = rng.standard_normal(4), rng.standard_normal(4)
    param = Tensor(start.copy(), requires_grad=True)
    optimizer = AdamW([param], lr=lr, betas=(beta1, beta2), weight_decay=weight_decay)
    expected, m, v = start.copy(), np.zeros(4), np.zeros(4)
    for step in range(1, 5):
        quadratic_step(optimizer, param, target)
        grad = 2 * (expected - target)
        expected = expected * (1 - lr * weight_decay)
        m, v = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad * grad
        expected = expected - lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
    np.testing.assert_allclose(param.data, expected, rtol=1e-10, atol=1e-12)


def test_adamw_without_decay_is_adam_and_with_it_differs_from_adams_l2():
    """weight_decay=0: the same steps as Adam, to the bit. With decay, AdamW's shrinks the
    weights directly where Adam's adds wd·p to g (scaled by 1/√v̂ with the rest): not the same."""
    rng = np.random.default_rng(0)
    start, target = rng.standard_normal(5), rng.standard_normal(5)
    results = {}
    for name, make in (("adam", lambda p: Adam(p, lr=0.05)), ("adamw 0", lambda p: AdamW(p, lr=0.05, weight_decay=0)),
                       ("adam l2", lambda p: Adam(p, lr=0.05, weight_decay=0.1)),
                       ("adamw", lambda p: AdamW(p, lr=0.05, weight_decay=0.1))):
        param = Tensor(start.copy(), requires_grad=True)
        optimizer = make([param])
        for _ in range(3):
            quadratic_step(optimizer, param, target)
        results[name] = param.data
    np.testing.assert_array_equal(results["adam"], results["adamw 0"])
    assert not np.allclose(results["adam l2"], results["adamw"], rtol=1e-3)
    assert AdamW([Tensor(np.ones(2), requires_grad=True)]).weight_decay == 0.01  # PyTorch's default


def test_adam_names_missing_and_unexpected_keys():
    param = Tensor(np.ones(2))
    state = Adam([Tensor(np.ones(2))]).state_dict()
    del state["steps"]
    with pytest.raises(ValueError, match=r"missing keys \['steps'\]; Adam's state is 'steps' and the moments"):
        Adam([param]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"missing keys \['steps', 'm.0', 'v.0'\]; unexpected keys \['0'\]"):
        Adam([param]).load_state_dict({"0": np.zeros(2)})
    with pytest.raises(ValueError, match=r"'steps' must be one integer >= 0 per parameter \(1\) or a single one"):
        Adam([param]).load_state_dict({**state, "steps": np.array(-1)})
    with pytest.raises(ValueError, match=r"'steps' must be one integer >= 0 per parameter \(1\)"):
        Adam([param]).load_state_dict({**state, "steps": np.array([1, 2])})
    with pytest.raises(ValueError, match=r"Adam state entry 'v.0' has shape \(3,\)"):
        Adam([param]).load_state_dict({**state, "steps": np.array(1), "v.0": np.zeros(3)})


def test_adam_counts_steps_per_parameter_as_pytorch():
    """A parameter that first gets a gradient at step 2 is bias-corrected as at its first step
    (torch.optim.Adam keeps one step count per parameter): b moves by lr, not by less."""
    a, b = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    optimizer = Adam([a, b], lr=0.1)
    a.grad = np.array([1.0], np.float32)
    optimizer.step()  # b has no gradient yet
    a.grad, b.grad = np.array([1.0], np.float32), np.array([1.0], np.float32)
    optimizer.step()
    np.testing.assert_allclose(a.data, [0.8], rtol=1e-7)  # two steps of lr · m̂/√v̂ = lr each
    np.testing.assert_allclose(b.data, [0.9], rtol=1e-7)  # (it was 0.9256 with one shared count)
    assert optimizer.steps == [2, 1]
    restored = Adam([Tensor([0.0], requires_grad=True), Tensor([0.0], requires_grad=True)], lr=0.1)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.steps == [2, 1]
    old_format = {**optimizer.state_dict(), "steps": np.array(3)}  # one count, as older versions saved
    restored.load_state_dict(old_format)
    assert restored.steps == [3, 3]


@pytest.mark.parametrize("make", [lambda params: SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda params: Adam(params, lr=0.1, weight_decay=0.1)])
def test_a_parameter_that_does_not_require_grad_is_frozen_as_in_pytorch(make):
    # freezing a layer the PyTorch way: requires_grad = False, the optimizer still holds it
    trained, frozen = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    frozen.requires_grad = False
    optimizer = make([trained, frozen])
    assert not frozen.requires_grad
    for _ in range(3):
        optimizer.zero_grad()
        ((trained * frozen) ** 2).sum().backward()
        optimizer.step()
    assert frozen.grad is None and np.array_equal(frozen.data, np.ones(3))
    assert not np.array_equal(trained.data, np.ones(3))


def test_a_read_only_parameter_is_refused_before_any_step():
    read_only = Tensor(np.broadcast_to(np.float64(1.0), (3,)), requires_grad=True)
    writable = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"optimizer parameter 1 \(shape \(3,\)\) is backed by a read-only array"):
        SGD([writable, read_only], lr=0.1)


@pytest.mark.parametrize("make", [lambda params: SGD(params, lr=0.1, momentum=0.9),
                                  lambda params: SGD(params, lr=0.1), lambda params: Adam(params, lr=0.1)])
@pytest.mark.parametrize("grad, error, message", [
    (np.ones(3, np.float32), ValueError, r"parameter 1 has shape \(2, 3\), but its grad has shape \(3,\)"),
    (np.ones((), np.float32), ValueError, r"parameter 1 has shape \(2, 3\), but its grad has shape \(\)"),
    ([[1.0] * 3] * 2, TypeError, "parameter 1 has a grad that is a list"),
    (np.ones((2, 3), complex), TypeError, "parameter 1 has a grad that is an array of dtype complex128"),
])
def test_a_grad_that_does_not_fit_is_refused_before_any_parameter_moves(make, grad, error, message):
    # Assigning such a grad is refused (as PyTorch does: tests/test_tensor.py), but a parameter's
    # data can be replaced after its grad was set; numpy would broadcast a (3,) grad over every
    # row of the (2, 3) weight
    first, second = Tensor(np.ones(4, np.float32), requires_grad=True), Tensor(np.ones((2, 3), np.float32),
                                                                               requires_grad=True)
    optimizer = make([first, second])
    first.grad = np.ones(4, np.float32)
    second._grad = grad  # (past the check on assignment: a grad left from before .data was replaced)
    with pytest.raises(error, match=message):
        optimizer.step()
    assert np.array_equal(first.data, np.ones(4)) and np.array_equal(second.data, np.ones((2, 3)))
    second.grad = np.ones((2, 3), np.float32)  # a fitting one trains as before
    optimizer.step()
    assert not np.array_equal(second.data, np.ones((2, 3)))


def test_a_float64_grad_assigned_to_a_float32_parameter_keeps_the_momentum_buffer_float32():
    """The update casts such a grad anyway; the momentum buffer must not keep float64, or a
    checkpoint (which stores buffers in the parameter's dtype) would resume from a rounded one."""
    param = Tensor(np.ones(3, np.float32), requires_grad=True)
    optimizer = SGD([param], lr=0.1, momentum=0.9)
    param._grad = np.array([0.1, 0.2, 0.3])  # float64, as np.array gives (past the check on assignment)
    optimizer.step()
    velocity = optimizer.velocities[0]
    assert velocity is not None and velocity.dtype == np.float32 and param.data.dtype == np.float32


@settings(deadline=None, max_examples=200)
@given(decay=st.floats(-1.5, 1.5), headroom=st.one_of(st.just(kernels.FLUSH_MARGIN), st.floats(0, 2.0**60)))
def test_flush_steps_is_the_longest_wait_that_keeps_a_decaying_entry_normal(decay, headroom):
    """The optimizers flush a buffer decaying by m a step every kernels.flush_steps(m, headroom)
    steps, its limit being headroom times the smallest normal float (FLUSH_MARGIN by default;
    Adam's may be lower): the most k with |m|^k ≥ 2 / headroom (an entry just above the limit
    then stays above 2x the smallest normal float until the next flush), at least
    SUBNORMAL_FLUSH_STEPS, which is also what a factor that does not decay (0, or |m| ≥ 1) and
    a headroom of at most 2 get."""
    steps, margin = kernels.flush_steps(decay, headroom), 2 / headroom if headroom else math.inf
    assert isinstance(steps, int) and steps >= kernels.SUBNORMAL_FLUSH_STEPS
    assert headroom != kernels.FLUSH_MARGIN or steps == kernels.flush_steps(decay)  # (the default)
    if not 0 < abs(decay) < 1 or headroom <= 2:
        assert steps == kernels.SUBNORMAL_FLUSH_STEPS
    elif steps > kernels.SUBNORMAL_FLUSH_STEPS:
        assert abs(decay) ** steps >= margin > abs(decay) ** (steps + 1)
    else:
        assert abs(decay) ** (steps + 1) < margin
    assert [kernels.flush_steps(m) for m in (0.21, 0.5, 0.9, 0.99)] == [10, 22, 144, 1517]


def test_sgd_flushes_on_every_multiple_of_its_flush_steps_and_only_there(monkeypatch):
    """SGD with momentum 0.9 flushes its buffers after steps 144, 288, ... (not every 10th
    step, as Adam does): a flush step of SeedCNN's SGD at batch 1 takes about three times
    another, and a buffer decaying by 0.9 a step needs it only every kernels.flush_steps(0.9)
    steps."""
    flushed_after = []
    flush = kernels.flush_subnormals

    def counted_flush(array, limit=None):
        flushed_after.append(optimizer.steps_taken)
        flush(array, limit)

    monkeypatch.setattr(kernels, "flush_subnormals", counted_flush)
    param = Tensor(np.ones(3, np.float32), requires_grad=True)
    optimizer = SGD([param], lr=0.1, momentum=0.9)
    for _ in range(300):
        param.grad = np.ones(3, np.float32)
        optimizer.step()
    assert flushed_after == [144, 288]


def test_step_lr_multiplies_the_rate_by_gamma_every_step_size_steps():
    schedule = StepLR(lr=0.1, step_size=3)
    rates = [schedule(step) for step in range(10)]
    assert rates[:3] == [0.1] * 3
    assert all(math.isclose(rate, 0.01) for rate in rates[3:6])
    assert all(math.isclose(rate, 0.001) for rate in rates[6:9]) and math.isclose(rates[9], 1e-4)
    assert StepLR(0.5, step_size=np.int64(2), gamma=2)(5.0) == 2.0  # a growing rate, numpy and whole float steps
    assert StepLR(0.5, step_size=1, gamma=0)(0) == 0.5 and StepLR(0.5, step_size=1, gamma=0)(1) == 0.0
    assert StepLR(0.5, step_size=1, gamma=1.5)(5000) == math.inf  # (gamma ** 5000 overflows a float)


@pytest.mark.parametrize("arguments, message", [
    ({"lr": -0.1}, "lr must be a finite number >= 0, got -0.1"),
    ({"lr": float("nan")}, "lr must be a finite number >= 0, got nan"),
    ({"step_size": 0}, "step_size must be a whole number >= 1, got 0"),
    ({"step_size": 2.5}, "step_size must be a whole number >= 1, got 2.5"),
    ({"gamma": float("inf")}, "gamma must be a finite number >= 0, got inf"),
    ({"gamma": -0.5}, "gamma must be a finite number >= 0, got -0.5"),
    ({"gamma": "0.1"}, "gamma must be a finite number >= 0, got '0.1'"),
])
def test_step_lr_arguments_are_checked(arguments, message):
    with pytest.raises(ValueError, match=f"^StepLR {message}"):
        StepLR(**{"lr": 0.1, "step_size": 10, **arguments})


@pytest.mark.parametrize("step", [-1, 2.5, True])
def test_step_lr_refuses_a_negative_or_non_integer_step(step):
    with pytest.raises(ValueError, match=f"^StepLR step must be a whole number >= 0, got {step!r}"):
        StepLR(0.1, step_size=2)(step)
