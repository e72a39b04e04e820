"""The package's random number generator: dropout masks and layer initialisations draw from it.

``manual_seed(n)`` makes every later draw reproducible, as ``torch.manual_seed`` does.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Re-seed the package generator: the draws that follow repeat for the same ``seed``."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The package generator (fetch it at each use: ``manual_seed`` replaces it)."""
    return _generator
