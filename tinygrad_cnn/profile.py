"""Per-op profiling through the tensor core's forward and backward hooks.

    from tinygrad_cnn.profile import Profiler
    with Profiler() as profiler:
        loss = model(images).cross_entropy(labels)
        loss.backward()
    print(profiler.table())

Every op's forward and VJP are timed separately and summed per op type (the class name,
e.g. ``Conv2d``), together with how often each ran. Outside the ``with`` block the hooks
are removed again, so an unprofiled run pays nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from tinygrad_cnn import ops, tensor


@dataclass
class OpStats:
    """Summed seconds and call counts of one op type, forward and backward."""

    forward_seconds: float = 0.0
    forward_calls: int = 0
    backward_seconds: float = 0.0
    backward_calls: int = 0

    @property
    def total_seconds(self) -> float:
        return self.forward_seconds + self.backward_seconds


class Profiler:
    """Context manager that sums time and call counts per op type, forward and backward.

    ``stats`` maps op name → OpStats; ``wall_seconds`` is the time spent inside the block
    (so the engine's own overhead is wall_seconds minus the summed op times). A Profiler may
    be entered again after its block ends (the numbers add up), but not inside its own block
    (RuntimeError, as PyTorch's profiler refuses).
    """

    def __init__(self) -> None:
        self.stats: dict[str, OpStats] = {}
        self.wall_seconds = 0.0
        self._start: Optional[float] = None

    def _entry(self, op: ops.Function) -> OpStats:
        name = op.name
        entry = self.stats.get(name)
        if entry is None:
            entry = self.stats[name] = OpStats()
        return entry

    def _on_forward(self, op: ops.Function, inputs, output, seconds: float) -> None:
        entry = self._entry(op)
        entry.forward_seconds += seconds
        entry.forward_calls += 1

    def _on_backward(self, op: ops.Function, seconds: float) -> None:
        entry = self._entry(op)
        entry.backward_seconds += seconds
        entry.backward_calls += 1

    def __enter__(self) -> "Profiler":
        if self._start is not None:  # its hooks would count every op twice
            raise RuntimeError("this Profiler is already running: a profiler cannot be entered again inside its "
                               "own with block (use one with block, or a second Profiler)")
        tensor.forward_hooks.append(self._on_forward)
        tensor.backward_hooks.append(self._on_backward)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exception_info: object) -> None:
        assert self._start is not None, "Profiler exited without being entered"
        self.wall_seconds += time.perf_counter() - self._start
        self._start = None
        tensor.forward_hooks.remove(self._on_forward)
        tensor.backward_hooks.remove(self._on_backward)

    def reset(self) -> None:
        """Forget everything measured so far (e.g. after warm-up steps); inside the block, the
        wall clock restarts too, so wall_seconds counts from here like the op times."""
        self.stats.clear()
        self.wall_seconds = 0.0
        if self._start is not None:
            self._start = time.perf_counter()

    def rows(self) -> list[tuple[str, OpStats]]:
        """(op name, stats), the most expensive op (forward + backward) first."""
        return sorted(self.stats.items(), key=lambda item: item[1].total_seconds, reverse=True)

    def table(self, steps: int = 1) -> str:
        """A readable table of milliseconds and calls per op, divided by ``steps`` (the number
        of training steps profiled: a whole number ≥ 1, else a ValueError)."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"Profiler.table: steps must be a whole number >= 1 (the steps profiled), got {steps!r}")
        scale = 1000.0 / steps
        lines = [
            f"{'op':<22}{'fwd ms':>9}{'fwd calls':>10}{'bwd ms':>9}{'bwd calls':>10}{'total ms':>10}{'share':>7}",
        ]
        summed = sum(entry.total_seconds for entry in self.stats.values())
        for name, entry in self.rows():
            share = entry.total_seconds / summed if summed else 0.0
            lines.append(
                f"{name:<22}{entry.forward_seconds * scale:>9.3f}{entry.forward_calls / steps:>10.1f}"
                f"{entry.backward_seconds * scale:>9.3f}{entry.backward_calls / steps:>10.1f}"
                f"{entry.total_seconds * scale:>10.3f}{share:>7.1%}"
            )
        lines.append(f"{'all ops':<22}{'':>38}{summed * scale:>10.3f}")
        if self.wall_seconds:
            lines.append(f"{'wall (incl. engine)':<22}{'':>38}{self.wall_seconds * scale:>10.3f}")
        return "\n".join(lines)
