"""The package's one random number generator, so that a single seed makes a run repeatable.

``Tensor.randn``, ``Tensor.rand`` and dropout draw from ``generator()``;
``tinygrad_cnn.manual_seed(n)`` replaces it by a fresh generator seeded with n. Unseeded, it
starts from fresh operating-system entropy, as PyTorch's CPU generator does.

    tinygrad_cnn.manual_seed(0)
    a = Tensor.randn(3)
    tinygrad_cnn.manual_seed(0)
    b = Tensor.randn(3)             # the same numbers as a
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["manual_seed", "generator"]

_generator: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the package's generator with the non-negative integer ``seed`` and return it."""
    seed = checked_seed("manual_seed: seed", seed)
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def checked_seed(argument: str, seed: object) -> int:
    """``seed`` as an int, or an error naming ``argument`` (numpy's own says only "expected
    non-negative integer", or fails deep inside SeedSequence for a float)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{argument} must be a non-negative integer, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"{argument} must be a non-negative integer, got {seed}")
    return int(seed)


def generator() -> np.random.Generator:
    """The current ``np.random.Generator`` (look it up at each draw: manual_seed replaces it)."""
    return _generator
