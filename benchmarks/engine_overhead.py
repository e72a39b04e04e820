"""What the autograd engine and the API's checks cost a train step: ours, the same ops chained
by hand, and PyTorch, side by side.

    PYTHONPATH=. python benchmarks/engine_overhead.py                  # batch 1, SeedCNN and SeedMLP
    PYTHONPATH=. python benchmarks/engine_overhead.py --batch 32 --rounds 15

Three train steps alternate round by round in one process, each restarted from the same
initial weights on the same batches (``train_step.Batches``):

* ours: ``train_step.Ours.train_step``: ``model(images).cross_entropy(labels)``, ``backward()``
  and ``SGD.step()``;
* chained: the same Function objects that ``model(images).cross_entropy(labels)`` records
  (``record_ops``), made afresh every step and run forward, then backward in reverse, by hand
  (``chained_step``), the gradients summed per input; then the same ``SGD.step()``. No
  Tensor, no graph, no argument checks: our kernels and optimizer alone, with the numpy work
  the engine does besides them (each op's saved arrays freed as backward passes it, a
  parameter's gradient copied where it is a view). Its parameters after a step equal ours to
  the bit (tests/test_benchmark_train_step.py);
* engine: the same recorded ops made afresh every step and handed to the engine itself
  (``Tensor._from_op``, then ``loss.backward()``: the graph, its records and checks, the
  walk), without the Tensor methods, their argument checks and the model's code
  (``engine_step``); then the same ``SGD.step()``. Also equal to ours to the bit;
* torch: ``train_step.Torch.train_step``, the same network in PyTorch.

ours minus chained is what the engine (``Tensor._from_op``, ``Tensor.backward``), the Tensor
methods' checks of their arguments and the model's Python add to the kernels; engine minus
chained is the engine's part of it, ours minus engine the methods' and the model's; chained
against torch is how far our kernels alone are from PyTorch's step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # (as train_step.py: before numpy loads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_step import NETWORKS, SETTLE_SECONDS, Batches, Ours, load_images, try_torch  # noqa: E402

from tinygrad_cnn.function import Function  # noqa: E402
from tinygrad_cnn.nn import state_dict  # noqa: E402
from tinygrad_cnn.ops import CrossEntropy  # noqa: E402
from tinygrad_cnn.tensor import Tensor  # noqa: E402


@dataclass
class RecordedOp:
    """One op of a recorded step: its class, its options (the op's attributes before its
    forward ran), which inputs need a gradient, and the ids of its input and output tensors."""

    kind: type[Function]
    options: dict[str, Any]
    needs_input_grad: tuple[bool, ...]
    inputs: list[int]
    output: int


@dataclass
class RecordedStep:
    """The ops of ``model(images).cross_entropy(labels)`` in the order they ran, and the
    arrays its inputs held: the parameters' (by id), the images' (``images_id``), constants'."""

    ops: list[RecordedOp]
    images_id: int
    constants: dict[int, np.ndarray]


def record_ops(model: Any, params: list[Tensor], images: np.ndarray, labels: np.ndarray) -> RecordedStep:
    """Run ``model(images).cross_entropy(labels)`` once, recording every op it makes."""
    ops: list[RecordedOp] = []
    tensors: dict[int, Tensor] = {}  # (kept alive, so that no id is reused during the recording)
    original = Tensor.__dict__["_from_op"]

    def recording(cls: type[Tensor], op: Function, inputs: tuple[Tensor, ...]) -> Tensor:
        options = dict(op.__dict__)
        output = original.__func__(cls, op, inputs)
        ops.append(RecordedOp(type(op), options, tuple(op.needs_input_grad), [id(tensor) for tensor in inputs], id(output)))
        tensors.update({id(tensor): tensor for tensor in (*inputs, output)})
        return output

    Tensor._from_op = classmethod(recording)  # type: ignore[method-assign, assignment]
    try:
        model(images).cross_entropy(labels)
    finally:
        Tensor._from_op = original  # type: ignore[method-assign]
    param_ids = {id(param) for param in params}
    made = {op.output for op in ops}
    leaves = {key for op in ops for key in op.inputs if key not in made and key not in param_ids}
    images_id = next(key for key in leaves if tensors[key].shape == images.shape)
    constants = {key: tensors[key].data for key in leaves if key != images_id}
    return RecordedStep(ops, images_id, constants)


def chained_step(step: RecordedStep, params: list[Tensor], optimizer: Any, images: np.ndarray,
                 labels: np.ndarray, dtype: type) -> float:
    """One train step through fresh copies of the recorded ops, chained by hand; the loss."""
    values: dict[int, np.ndarray] = {id(param): param.data for param in params}
    values.update(step.constants)
    values[step.images_id] = images.astype(dtype)
    ops = []
    for recorded in step.ops:
        op = recorded.kind.__new__(recorded.kind)
        op.__dict__.update(recorded.options)
        if isinstance(op, CrossEntropy):
            op.labels = labels.astype(np.intp)
        op.needs_input_grad = recorded.needs_input_grad
        values[recorded.output] = op.forward(*[values[key] for key in recorded.inputs])
        ops.append(op)
    loss = values[step.ops[-1].output]
    grads = {step.ops[-1].output: np.ones_like(loss)}
    for op, recorded in zip(reversed(ops), reversed(step.ops)):
        values.pop(recorded.output)
        if recorded.output not in grads:  # (an op on constants only: the division of the pixels)
            continue
        input_grads = op.backward(grads.pop(recorded.output))
        op.release()  # its saved arrays go as backward passes, as the engine frees them
        for key, grad, needed in zip(recorded.inputs, input_grads, recorded.needs_input_grad):
            if needed and grad is not None:
                grads[key] = grads[key] + grad if key in grads else grad
    for param in params:
        grad = grads.pop(id(param), None)
        # a gradient that is a view is copied, as the engine's accumulation copies it (its own memory)
        param.grad = grad if grad is None or grad.base is None else grad.copy()
    optimizer.step()
    return float(loss)


class Chained:
    """``chained_step`` as a framework of train_step.py (restart, train_step)."""

    name = "chained"

    def __init__(self, ours: Ours, images: np.ndarray, labels: np.ndarray):
        self.ours = ours
        self.step = record_ops(ours.model, ours.optimizer.params, images, labels)

    def restart(self) -> None:
        self.ours.restart()

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> float:
        return chained_step(self.step, self.ours.optimizer.params, self.ours.optimizer, images, labels,
                            self.ours.model.dtype)


def engine_step(step: RecordedStep, params: list[Tensor], optimizer: Any, images: np.ndarray,
                labels: np.ndarray, dtype: type) -> float:
    """One train step through fresh copies of the recorded ops run by the engine
    (``Tensor._from_op``, ``backward()``) but not through the Tensor methods; the loss."""
    optimizer.zero_grad()
    tensors: dict[int, Tensor] = {id(param): param for param in params}
    tensors.update({key: Tensor(value) for key, value in step.constants.items()})
    tensors[step.images_id] = Tensor(images.astype(dtype))
    for recorded in step.ops:
        op = recorded.kind.__new__(recorded.kind)
        op.__dict__.update(recorded.options)
        if isinstance(op, CrossEntropy):
            op.labels = labels.astype(np.intp)
        tensors[recorded.output] = Tensor._from_op(op, tuple(tensors[key] for key in recorded.inputs))
    loss = tensors[step.ops[-1].output]
    loss.backward()
    optimizer.step()
    return float(loss.data)


class EngineOnly(Chained):
    """``engine_step`` as a framework of train_step.py (restart, train_step)."""

    name = "engine"

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> float:
        return engine_step(self.step, self.ours.optimizer.params, self.ours.optimizer, images, labels,
                           self.ours.model.dtype)


def time_rounds(frameworks: list[Any], images: np.ndarray, labels: np.ndarray, batch: int, rounds: int,
                steps: int) -> dict[str, list[float]]:
    """Seconds per step of each framework, one entry per round; the frameworks alternate,
    each round after untimed settling steps and a restart (as train_step.py's ``time_round``)."""
    seconds: dict[str, list[float]] = {framework.name: [] for framework in frameworks}
    for round_number in range(rounds + 1):  # (round 0: warm-up, not kept)
        for framework in frameworks:
            batches = Batches(images, labels, batch)

            def run(framework: Any = framework, batches: Batches = batches) -> None:
                framework.train_step(*batches.next())

            settle_until = time.perf_counter() + SETTLE_SECONDS
            while time.perf_counter() < settle_until:
                run()
            framework.restart()
            batches.restart()
            start = time.perf_counter()
            for _ in range(steps):
                run()
            if round_number:
                seconds[framework.name].append((time.perf_counter() - start) / steps)
    return seconds


def report(network: str, batch: int, seconds: dict[str, list[float]]) -> None:
    print(f"{network} train batch {batch}: ms per step, median of {len(seconds['ours'])} rounds "
          "(ratio: median of the rounds' own ratios)")
    for name, samples in seconds.items():
        line = f"  {name:<8}{statistics.median(samples) * 1e3:8.3f} ms"
        if "torch" in seconds and name != "torch":
            line += f"{statistics.median(np.array(samples) / np.array(seconds['torch'])):8.3f}x torch"
        if name == "chained":
            share = statistics.median(1 - np.array(samples) / np.array(seconds["ours"]))
            line += f"   (the engine, checks and model code: {share:.0%} of our step)"
        if name == "engine":
            share = statistics.median(1 - np.array(samples) / np.array(seconds["ours"]))
            line += f"   (the methods' checks and model code: {share:.0%} of our step)"
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--networks", nargs="+", default=["cnn", "mlp"], choices=sorted(NETWORKS))
    arguments = parser.parse_args(argv)
    images, labels, source = load_images(60_000)
    steps = max(10, 500 // (arguments.batch + 1))  # about half a second a round
    print(f"data: {source}; numpy {np.__version__}")
    for network in arguments.networks:
        model = NETWORKS[network](seed=0)
        ours = Ours(model)
        first = (images[: arguments.batch], labels[: arguments.batch])
        frameworks: list[Any] = [ours, Chained(Ours(NETWORKS[network](seed=0)), *first),
                                 EngineOnly(Ours(NETWORKS[network](seed=0)), *first)]
        reference, note = try_torch(state_dict(model), network)
        if reference is not None:
            frameworks.append(reference)
        else:
            print(note)
        report(network, arguments.batch, time_rounds(frameworks, images, labels, arguments.batch, arguments.rounds, steps))


if __name__ == "__main__":
    main()
