"""The per-op profiler: counts and structure only (timings are never asserted)."""

import time

import numpy as np
import pytest

from tinygrad_cnn import Tensor, no_grad, tensor
from tinygrad_cnn.profile import Profiler


def small_graph():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    w = Tensor(np.ones((3, 4)), requires_grad=True)
    loss = ((x @ w).relu() + 1.0).sum()
    return loss, x


def test_counts_forward_and_backward_per_op_type():
    with Profiler() as profiler:
        loss, _ = small_graph()
        loss.backward()
    names = set(profiler.stats)
    assert names == {"MatMul", "ReLU", "Add", "Sum"}
    for name in names:
        entry = profiler.stats[name]
        assert entry.forward_calls == 1 and entry.backward_calls == 1
        assert entry.forward_seconds >= 0 and entry.backward_seconds >= 0
    assert [name for name, _ in profiler.rows()] and len(profiler.rows()) == 4


def test_calls_add_up_over_repeats_and_no_grad_has_no_backward():
    with Profiler() as profiler:
        for _ in range(3):
            loss, _ = small_graph()
            loss.backward()
        with no_grad():
            small_graph()
    assert profiler.stats["MatMul"].forward_calls == 4
    assert profiler.stats["MatMul"].backward_calls == 3


def test_hooks_are_removed_on_exit_even_after_an_error():
    before = (list(tensor.forward_hooks), list(tensor.backward_hooks))
    try:
        with Profiler():
            raise KeyError("boom")
    except KeyError:
        pass
    assert (tensor.forward_hooks, tensor.backward_hooks) == before


def test_table_lists_every_op_and_reset_forgets():
    with Profiler() as profiler:
        loss, _ = small_graph()
        loss.backward()
    table = profiler.table(steps=1)
    for name in ("MatMul", "ReLU", "Add", "Sum", "all ops"):
        assert name in table
    profiler.reset()
    assert profiler.stats == {} and profiler.wall_seconds == 0.0


def test_table_divides_by_the_steps_profiled_and_refuses_a_count_that_is_not_one():
    """steps=0 or -3 used to be taken as 1 without a word, printing totals as per-step times."""
    with Profiler() as profiler:
        for _ in range(4):
            loss, _ = small_graph()
            loss.backward()
    per_step = {line.split()[0]: line.split() for line in profiler.table(steps=4).splitlines()[1:]}
    assert float(per_step["MatMul"][2]) == profiler.stats["MatMul"].forward_calls / 4
    for steps in (0, -3, 2.5, True, "4"):
        with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
            profiler.table(steps=steps)


def test_entering_the_same_profiler_again_inside_its_block_is_refused():
    """Nested, its hooks would run twice and count every op twice (PyTorch's profiler refuses too)."""
    before = (list(tensor.forward_hooks), list(tensor.backward_hooks))
    profiler = Profiler()
    with profiler:
        with pytest.raises(RuntimeError, match="this Profiler is already running"):
            with profiler:
                pass
        loss, _ = small_graph()
        loss.backward()
    assert profiler.stats["MatMul"].forward_calls == 1 and profiler.stats["MatMul"].backward_calls == 1
    assert (tensor.forward_hooks, tensor.backward_hooks) == before
    with profiler:  # once its block has ended it may be entered again, and the counts add up
        small_graph()
    assert profiler.stats["MatMul"].forward_calls == 2


def test_reset_inside_the_block_restarts_the_wall_clock_too(monkeypatch):
    """After warm-up steps inside the block, reset() dropped the op times but kept the warm-up
    in wall_seconds (a second of sleep showed as a 1000 ms engine overhead). A fake clock:
    no timing is measured."""
    clock = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    x = Tensor(np.ones((4, 4), dtype=np.float32), requires_grad=True)
    with Profiler() as profiler:
        clock[0] += 100.0  # the warm-up
        profiler.reset()
        (x * x).sum().backward()
        clock[0] += 2.0
    assert profiler.wall_seconds == 2.0
    assert profiler.stats["Mul"].forward_calls == 1

