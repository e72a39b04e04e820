"""The floor of a SeedCNN train step on this machine: what the GEMMs alone take, and what
moving the step's arrays through memory takes, measured here.

    PYTHONPATH=. python benchmarks/floor.py            # table for batch 1, 32 and 128

For each batch size it times (best of several rounds, 2 BLAS threads):

* GEMMs: exactly the matrix products of one train step (the three convolutions' forward,
  input-gradient and weight-gradient GEMMs in the shapes kernels.py runs them, and the two
  dense layers' three each), on random arrays, nothing else;
* traffic: the bytes of every array the step must write once and read back once (the
  im2col columns, each layer's output and its gradient, the pool's phase planes and their
  gradient), divided by the bandwidth of a numpy pass measured on arrays of that size.

GEMMs + traffic is a floor for any numpy implementation that builds the columns and keeps
the layers as separate passes; the time above it is passes over memory that compiled, fused
kernels (PyTorch's) do not make.

Below the table, for comparison: OpenBLAS's rate on a large square product (what the step's
thin products fall short of), and, when PyTorch is importable, its three convolutions forward
and backward on the same shapes (oneDNN's direct convolution, no columns), next to our
convolutions' GEMMs alone.
"""

from __future__ import annotations

import os
import time
from typing import Optional

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # 2 BLAS threads, as PyTorch's side gets (set before numpy loads)

import numpy as np  # noqa: E402

from tinygrad_cnn.kernels import PoolWindows

# (name, in channels, out channels, input size, pooled after?)
CONVS = [("conv1", 1, 16, 28, True), ("conv2", 16, 32, 14, True), ("conv3", 32, 64, 7, False)]
DENSE = [(3136, 100), (100, 10)]


def best_seconds(run, rounds: int = 7, repeat: int = 3) -> float:
    run()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            run()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def gemm_products(batch: int, rng: np.random.Generator) -> tuple[list, list]:
    """(A, B) pairs of every matrix product of one train step: the convolutions', the dense layers'."""
    pairs: list = []
    for index, (_, channels, out_channels, size, _) in enumerate(CONVS):
        rows, length = 9 * channels, size * size * batch
        columns = rng.standard_normal((rows, length), dtype=np.float32)
        grad = rng.standard_normal((out_channels, length), dtype=np.float32)
        weight = rng.standard_normal((out_channels, rows), dtype=np.float32)
        pairs.append((weight, columns))  # forward
        if rows * out_channels <= 512 and length >= 16384:  # weight gradient per output row (kernels.weight_gradient)
            pairs.append((columns.reshape(rows, size, -1).transpose(1, 0, 2), grad.reshape(out_channels, size, -1).transpose(1, 2, 0)))
        else:
            pairs.append((columns, grad.T))
        if index > 0:  # input gradient, one GEMM per kernel row
            for _ in range(3):
                pairs.append((np.ascontiguousarray(weight[:, : 3 * channels].T), grad))
    dense: list = []
    for inputs, outputs in DENSE:
        x = rng.standard_normal((batch, inputs), dtype=np.float32)
        weight = rng.standard_normal((inputs, outputs), dtype=np.float32)
        grad = rng.standard_normal((batch, outputs), dtype=np.float32)
        dense += [(x, weight), (grad, weight.T), (x.T, grad)]
    return pairs, dense


def gemm_seconds(pairs: list) -> float:
    """Each product alone, best of several rounds, into a kept buffer (as in a step: a fresh
    multi-MB result would be page-faulted in each time), summed."""
    seconds = 0.0
    for a, b in pairs:
        out = np.empty(np.matmul(a, b).shape, dtype=np.float32)
        # an outer product (inner size 1, batch 1's dense weight gradient) via np.dot, as ops.MatMul does
        product = np.dot if a.ndim == 2 and a.shape[1] == 1 else np.matmul
        seconds += best_seconds(lambda: product(a, b, out=out))
    return seconds


def flop_of(pairs: list) -> int:
    return sum(2 * int(np.prod(a.shape)) * b.shape[-1] for a, b in pairs)


def square_gemm_rate(size: int = 2048) -> float:
    """FLOP per second of OpenBLAS on one size × size float32 product."""
    a = np.ones((size, size), np.float32)
    out = np.empty_like(a)
    return 2 * size**3 / best_seconds(lambda: np.matmul(a, a, out=out), rounds=5, repeat=1)


def torch_convolutions_seconds(batch: int) -> Optional[float]:
    """PyTorch's three SeedCNN convolutions, forward + backward (the weight gradient of each,
    the input gradient of conv2 and conv3, as in a step), 2 threads; None without PyTorch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(2)
    layers = []
    for index, (_, channels, out_channels, size, _) in enumerate(CONVS):
        x = torch.randn(batch, channels, size, size, requires_grad=index > 0)
        weight = torch.randn(out_channels, channels, 3, 3, requires_grad=True)
        layers.append((x, weight, torch.randn(batch, out_channels, size, size)))

    def run() -> None:
        for x, weight, grad in layers:
            F.conv2d(x, weight, padding=1).backward(grad)

    return best_seconds(run)


def torch_gemm_seconds(pairs: list) -> Optional[float]:
    """The same products through PyTorch's ``matmul`` (its own BLAS, 2 threads), each timed
    alone into a kept tensor, best of several rounds, summed; None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    seconds = 0.0
    for a, b in pairs:
        left, right = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
        out = torch.empty(tuple(np.matmul(a, b).shape))
        seconds += best_seconds(lambda: torch.matmul(left, right, out=out))
    return seconds


def traffic_bytes(batch: int) -> int:
    """Bytes written once and read once by a train step's non-GEMM passes (float32)."""
    elements = 0
    for index, (_, channels, out_channels, size, pooled) in enumerate(CONVS):
        columns = 9 * channels * size * size * batch
        output = out_channels * size * size * batch
        elements += columns + 2 * output  # the columns (forward); the output and its gradient
        if index > 0:  # col2im's input gradient (conv1 has none: the images need no gradient)
            elements += columns
        if pooled:
            windows = PoolWindows((batch, out_channels, size, size), (3, 3), (2, 2), ((0, 1), (0, 1)))
            planes = 4 * windows.plane_size
            grid = int(np.prod(windows.grid_shape))
            # the phase planes (forward); the pooled output and its gradient (the input gradient,
            # the conv output's, is counted above: the pool's backward scatters straight into it)
            elements += planes + 2 * grid
    return 2 * 4 * elements  # each written once and read once, 4 bytes each


def pass_bandwidth(elements: int) -> float:
    """Bytes per second of a numpy add (read two arrays, write one) on arrays of ``elements``."""
    a, b = np.ones(elements, np.float32), np.ones(elements, np.float32)
    out = np.empty_like(a)
    seconds = best_seconds(lambda: np.add(a, b, out=out))
    return 3 * 4 * elements / seconds


def main() -> None:
    rng = np.random.default_rng(0)
    conv_seconds: dict[int, float] = {}
    print(f"{'batch':>6}{'GEMMs ms':>10}{'GFLOP/s':>9}{'traffic MB':>12}{'GB/s':>7}{'traffic ms':>12}{'floor ms':>10}")
    for batch in (1, 32, 128):
        conv_pairs, dense_pairs = gemm_products(batch, rng)
        conv_seconds[batch] = gemm_seconds(conv_pairs)
        seconds = conv_seconds[batch] + gemm_seconds(dense_pairs)
        flop = flop_of(conv_pairs + dense_pairs)
        traffic = traffic_bytes(batch)
        # the typical array of this batch size: one conv1 output
        bandwidth = pass_bandwidth(16 * 28 * 28 * batch)
        traffic_seconds = traffic / bandwidth
        print(f"{batch:>6}{seconds * 1e3:>10.2f}{flop / seconds / 1e9:>9.1f}{traffic / 1e6:>12.1f}"
              f"{bandwidth / 1e9:>7.1f}{traffic_seconds * 1e3:>12.2f}{(seconds + traffic_seconds) * 1e3:>10.2f}")
    print(f"OpenBLAS on one 2048 x 2048 product: {square_gemm_rate() / 1e9:.1f} GFLOP/s")
    for batch in (32, 128):
        conv_pairs = gemm_products(batch, rng)[0]
        conv_flop = flop_of(conv_pairs)
        line = (f"batch {batch}: convolutions forward + backward, our GEMMs alone {conv_seconds[batch] * 1e3:.2f} ms"
                f" ({conv_flop / conv_seconds[batch] / 1e9:.1f} GFLOP/s)")
        torch_gemms = torch_gemm_seconds(conv_pairs)
        if torch_gemms is not None:
            line += f"; the same products through PyTorch's matmul {torch_gemms * 1e3:.2f} ms ({conv_flop / torch_gemms / 1e9:.1f} GFLOP/s)"
        torch_seconds = torch_convolutions_seconds(batch)
        if torch_seconds is not None:
            line += f"; PyTorch's whole convolutions {torch_seconds * 1e3:.2f} ms ({conv_flop / torch_seconds / 1e9:.1f} GFLOP/s)"
        print(line)


if __name__ == "__main__":
    main()
