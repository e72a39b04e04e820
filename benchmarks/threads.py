"""What a second Python thread gains our train step on this machine, and why it is not used.

    PYTHONPATH=. python benchmarks/threads.py        # the table, OpenBLAS at 2 and at 1 thread

numpy runs every element-wise pass on one core, while PyTorch runs its kernels on both. This
measures what splitting our work over two Python threads gains, in two fresh processes:
OpenBLAS at 2 threads (as benchmarks/train_step.py runs it) and at 1 thread
(OPENBLAS_NUM_THREADS is read once, when numpy loads). Within a process the two ways of
running alternate round by round; the medians are printed.

* hand-offs: the price of giving the second thread one pass: 100 empty tasks handed over and
  waited for; 100 multiplies of 100,000 and of 400,000 floats (a pass of a batch-32 and of a
  batch-128 step), whole in this thread or as two halves on two threads, one hand-off each;
* adds: 50 ``np.add`` of 400,000 floats in this thread, or 25 in each of two threads, timed
  on their own, and from right after a GEMM (as each element-wise pass of a step comes soon
  after one);
* pools: the SeedCNN's two max pools at batch 128, forward and backward, each as two halves
  of its channels, one after the other or on two threads, right after a GEMM;
* step: a SeedCNN train step (forward, backward, SGD momentum) at batch 32 and 128, or the
  same batch as two halves, each run forward and backward by its own replica of the
  network, one after the other or on two threads (data parallel); then the replicas'
  gradients are summed, one SGD step taken and the weights copied back.

Splitting the batch in halves changes two things at once, the size of each pass and the
number of cores; the "halves in turn" rows separate the two.

The kernels keep their work buffers per purpose and shape, so two threads running the same
kernel on equal shapes would share them: here each thread gets its own (a patch of
``kernels.scratch`` for this process only; the library itself runs on one thread).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

if __name__ == "__main__" and "--child" not in sys.argv:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # (the parent only starts the children)

import numpy as np  # noqa: E402

from tinygrad_cnn import kernels  # noqa: E402
from tinygrad_cnn.models import SeedCNN  # noqa: E402
from tinygrad_cnn.nn import get_parameters  # noqa: E402
from tinygrad_cnn.ops.neural import MaxPool2d  # noqa: E402
from tinygrad_cnn.optim import SGD  # noqa: E402

ROUNDS = 11
shared_scratch = kernels.scratch


def per_thread_scratch(purpose: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return shared_scratch(f"{purpose} (thread {threading.get_ident()})", shape, dtype)


def alternate(ways: dict, repeat: int, before: Optional[Callable[[], object]] = None) -> dict[str, float]:
    """Median over rounds of the best of ``repeat`` runs (ms), the ways alternating round by
    round; ``before``, if given, runs (untimed) before each run."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, run in ways.items():
            best = float("inf")
            for _ in range(repeat):
                if before is not None:
                    before()
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            times[name].append(best * 1e3)
    return {name: statistics.median(samples) for name, samples in times.items()}


def adds(worker: ThreadPoolExecutor, rng: np.random.Generator, after_gemm: bool) -> dict[str, float]:
    """50 adds of 1.6 MB arrays, all in this thread or 25 in each of two, timed from right
    after a GEMM (as every element-wise pass of a step comes soon after one) or on their own."""
    arrays = [(rng.random(400_000, np.float32), np.empty(400_000, np.float32)) for _ in range(2)]
    gemm_a, gemm_b = rng.random((64, 288), np.float32), rng.random((288, 6272), np.float32)

    def add(count: int, index: int) -> None:
        x, out = arrays[index]
        for _ in range(count):
            np.add(x, x, out=out)

    def one_thread() -> None:
        add(50, 0)

    def two_threads() -> None:
        other = worker.submit(add, 25, 1)
        add(25, 0)
        other.result()

    when = "after a GEMM" if after_gemm else "alone"
    return alternate({f"adds {when}, one thread": one_thread, f"adds {when}, two threads": two_threads},
                     repeat=5, before=(lambda: gemm_a @ gemm_b) if after_gemm else None)


def handoffs(worker: ThreadPoolExecutor, rng: np.random.Generator) -> dict[str, float]:
    """One hand-off per pass, as splitting every pass of a kernel over two threads would need:
    100 empty tasks handed to the worker and waited for, and 100 multiplies of 100,000 and of
    400,000 floats (a pass of a batch-32 step and of a batch-128 one), each whole in this thread
    or as two halves, one on each thread. ms per 100 = µs per hand-off or pass."""
    results = alternate({"100 hand-offs of an empty task": lambda: _hand_off(worker, 100, lambda: None,
                                                                              lambda: None)}, repeat=5)
    for size in (100_000, 400_000):
        x, out = rng.random((2, size // 2), np.float32), np.empty((2, size // 2), np.float32)
        halves = [lambda index=index: np.multiply(x[index], 0.5, out=out[index]) for index in (0, 1)]
        results.update(alternate({
            f"100 multiplies of {size:,}, one thread": lambda: [np.multiply(x, 0.5, out=out) for _ in range(100)],
            f"100 multiplies of {size:,}, two threads": lambda: _hand_off(worker, 100, *halves),
        }, repeat=5))
    return results


def _hand_off(worker: ThreadPoolExecutor, count: int, mine: Callable[[], object], theirs: Callable[[], object]) -> None:
    """``count`` times: hand ``theirs`` to the worker, run ``mine`` here, wait for the worker."""
    for _ in range(count):
        other = worker.submit(theirs)
        mine()
        other.result()


def pools(worker: ThreadPoolExecutor, rng: np.random.Generator) -> dict[str, float]:
    """Both pools of a batch-128 step, forward and backward, each as two halves of its
    channels: one after the other, or on two threads, each right after a GEMM."""
    gemm_a, gemm_b = rng.random((64, 288), np.float32), rng.random((288, 6272), np.float32)

    def activations(channels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        x = kernels.batch_first(rng.random((channels, size, size, 128), np.float32))  # C,H,W,N inside
        return x, rng.standard_normal((128, channels, size // 2, size // 2)).astype(np.float32)

    def pool(x: np.ndarray, grad: np.ndarray) -> None:
        op = MaxPool2d((3, 3), (2, 2), ((0, 1), (0, 1)), relu=True)
        op.needs_input_grad = (True,)
        op.forward(x)
        op.backward(grad)

    halves = [(activations(channels // 2, size), activations(channels // 2, size)) for channels, size in ((16, 28), (32, 14))]

    def in_turn() -> None:
        for first, second in halves:
            pool(*first)
            pool(*second)

    def two_threads() -> None:
        for first, second in halves:
            other = worker.submit(pool, *first)
            pool(*second)
            other.result()

    return alternate({"pools, halves in turn": in_turn, "pools, halves on two threads": two_threads},
                     repeat=5, before=lambda: gemm_a @ gemm_b)


def steps(worker: ThreadPoolExecutor, batch: int) -> dict[str, float]:
    """A train step, or the same batch as two halves on two replicas in two threads.

    Every run takes the next batch of the training set (of 64 random batches without MNIST),
    as benchmarks/train_step.py does: trained on one batch over and over, the loss goes to 0,
    the relus die, and the momentum of the dead units' weights sinks toward the subnormal
    floats, which this Intel CPU computes on many times slower."""
    from tinygrad_cnn.datasets import mnist

    root = os.environ.get("TINYGRAD_CNN_DATA")
    if root:
        all_images, all_labels = mnist(root=root, download=False)[:2]
        all_labels = np.asarray(all_labels)
    else:
        rng = np.random.default_rng(0)
        all_images = rng.integers(0, 256, (64 * batch, 1, 28, 28), np.uint8)
        all_labels = rng.integers(0, 10, 64 * batch)
    current = [all_images[:batch], all_labels[:batch]]  # the next run's images and labels
    next_start = [batch]
    model, replica = SeedCNN(seed=0), SeedCNN(seed=0)
    params, replica_params = list(get_parameters(model)), list(get_parameters(replica))
    optimizer = SGD(params, lr=0.01, momentum=0.9)
    half = batch // 2

    def next_batch() -> None:
        start = next_start[0] if next_start[0] + batch <= len(all_images) else 0
        current[:] = [all_images[start : start + batch], all_labels[start : start + batch]]
        next_start[0] = start + batch

    def one_thread() -> None:
        optimizer.zero_grad()
        model(current[0]).cross_entropy(current[1]).backward()
        optimizer.step()

    def half_batch(network: SeedCNN, part: slice) -> None:
        (network(current[0][part]).cross_entropy(current[1][part]) * 0.5).backward()

    def halves(threads: int) -> None:
        optimizer.zero_grad()
        for param in replica_params:
            param.grad = None
        if threads == 2:
            other = worker.submit(half_batch, replica, slice(half, None))
            half_batch(model, slice(None, half))
            other.result()
        else:
            half_batch(replica, slice(half, None))
            half_batch(model, slice(None, half))
        for param, copy in zip(params, replica_params):
            param.grad += copy.grad
        optimizer.step()
        for param, copy in zip(params, replica_params):
            np.copyto(copy.data, param.data)

    return alternate({f"step {batch}, whole batch": one_thread, f"step {batch}, halves in turn": lambda: halves(1),
                      f"step {batch}, halves on two threads": lambda: halves(2)},
                     repeat=max(2, 256 // batch), before=next_batch)


def child() -> None:
    kernels.scratch = per_thread_scratch
    worker, rng = ThreadPoolExecutor(1), np.random.default_rng(0)
    results = {**handoffs(worker, rng), **adds(worker, rng, after_gemm=False), **adds(worker, rng, after_gemm=True),
               **pools(worker, rng),
               **steps(worker, 32), **steps(worker, 128)}
    print(json.dumps(results))


def main() -> None:
    results = {}
    for blas_threads in ("2", "1"):
        # glibc keeps freed memory mapped, as the train step's steady state does by itself: called
        # alone in a loop, a pool's 7 MB arrays would be unmapped after each call and page-faulted
        # back in (about 4,000 faults a call), and two threads faulting at once wait on each other
        environment = {**os.environ, "OPENBLAS_NUM_THREADS": blas_threads,
                       "MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)}
        done = subprocess.run([sys.executable, __file__, "--child"], env=environment, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the child with OpenBLAS at {blas_threads} thread(s) failed:\n{done.stderr}")
        results[blas_threads] = json.loads(done.stdout.splitlines()[-1])
    print(f"{'ms (median of ' + str(ROUNDS) + ' rounds)':44}{'OpenBLAS 2 threads':>20}{'OpenBLAS 1 thread':>20}")
    for name in results["2"]:
        print(f"{name:44}{results['2'][name]:>20.2f}{results['1'][name]:>20.2f}")


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
