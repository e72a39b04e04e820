"""benchmarks/train_step.py's bookkeeping (never its timings): what each timed round trains on."""

import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "train_step.py"


def load_benchmark(monkeypatch):
    # (the module sets OPENBLAS_NUM_THREADS if unset: keep that out of the other tests' subprocesses)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS", "2"))
    spec = importlib.util.spec_from_file_location("train_step_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    """A framework that records the first label of every batch it trained on since its restart."""

    def __init__(self, name: str, seconds_per_step: float):
        self.name, self.seconds_per_step, self.since_restart = name, seconds_per_step, []

    def restart(self) -> None:
        self.since_restart = []

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> float:
        time.sleep(self.seconds_per_step)
        self.since_restart.append(int(labels[0]))
        return 0.0


def test_every_timed_round_trains_both_frameworks_from_the_restart_on_the_same_first_batches(monkeypatch):
    """Each round restarts both networks and the data so that every round, and each framework,
    times the same early-training steps. The untimed settling steps at the start of a round
    (at least SETTLE_SECONDS: their number depends on the framework's speed) come before the
    restart, not after it: otherwise a faster framework timed later steps on other batches."""
    benchmark = load_benchmark(monkeypatch)
    monkeypatch.setattr(benchmark, "CONFIGS", [("train batch 2", "cnn", 2, True, 5)])
    monkeypatch.setattr(benchmark, "SETTLE_SECONDS", 0.02)
    fast, slow = Recorder("ours", 0.0), Recorder("torch", 0.003)
    images, labels = np.zeros((40, 1, 28, 28), np.uint8), np.arange(40)
    benchmark.measure({"cnn": [fast, slow]}, images, labels, rounds=2)
    for framework in (fast, slow):
        assert framework.since_restart == [0, 2, 4, 6, 8], framework.name


def load_engine_overhead(monkeypatch):
    load_benchmark(monkeypatch)  # (sets OPENBLAS_NUM_THREADS as that one does)
    monkeypatch.syspath_prepend(str(BENCHMARK.parent))
    spec = importlib.util.spec_from_file_location("engine_overhead_benchmark", BENCHMARK.parent / "engine_overhead.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # (its dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("network", ["cnn", "mlp"])
@pytest.mark.parametrize("variant", ["Chained", "EngineOnly"])
def test_the_hand_chained_and_engine_only_steps_are_ours_to_the_bit(monkeypatch, network, variant):
    """benchmarks/engine_overhead.py times our train step against the same ops chained by hand
    (no Tensor, no graph, no checks) and run by the engine without the Tensor methods: a fair
    comparison only if all compute the same. Three steps on successive batches of each leave
    every parameter (and momentum buffer) equal."""
    benchmark = load_engine_overhead(monkeypatch)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (6, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 6)
    ours = benchmark.Ours(benchmark.NETWORKS[network](seed=0))
    other = getattr(benchmark, variant)(benchmark.Ours(benchmark.NETWORKS[network](seed=0)), images[:2], labels[:2])
    assert [op.kind.__name__ for op in other.step.ops][-1] == "CrossEntropy"
    for start in (0, 2, 4):
        batch = (images[start : start + 2], labels[start : start + 2])
        assert ours.train_step(*batch) == other.train_step(*batch)
    for mine, theirs in zip(ours.optimizer.params, other.ours.optimizer.params):
        np.testing.assert_array_equal(mine.data, theirs.data)
    for mine, theirs in zip(ours.optimizer.velocities, other.ours.optimizer.velocities):
        np.testing.assert_array_equal(mine, theirs)
