"""Speed and memory of the SeedCNN train step, ours against PyTorch side by side.

    PYTHONPATH=. python benchmarks/train_step.py                 # table: ours vs torch
    PYTHONPATH=. python benchmarks/train_step.py --json out.json # also write the results
    PYTHONPATH=. python benchmarks/train_step.py --profile       # per-op table of a batch-128 step
    PYTHONPATH=. python benchmarks/train_step.py --each-round    # also every round's times
    PYTHONPATH=. python benchmarks/train_step.py --steps 2000    # RSS at start vs end of a long run
    PYTHONPATH=. python benchmarks/train_step.py --epoch         # one MNIST epoch + evaluation
    PYTHONPATH=. python benchmarks/train_step.py --end-to-end    # the default recipe, ours then torch
    PYTHONPATH=. python benchmarks/train_step.py --end-to-end --epochs 3   # ... and the time to 99 %
    PYTHONPATH=. python benchmarks/train_step.py --rss-only 128  # (internal) peak RSS of one config

A train step is forward, cross_entropy, backward and an SGD momentum step, in float32.
Inference is a no_grad forward pass. "MLP train batch 1" trains SeedMLP (784 → 1000 → 100 →
10) instead of SeedCNN: the per-op overhead of a small graph with big matrices. With TINYGRAD_CNN_DATA set, real MNIST images are
used; otherwise random 0..255 pixels. See benchmarks/README.md for the columns.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

# numpy's OpenBLAS gets 2 threads, as torch.set_num_threads(2) gives PyTorch (without this, on
# a machine with more cores, ours would use them all); set before numpy is first imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from tinygrad_cnn import no_grad  # noqa: E402
from tinygrad_cnn.models import SeedCNN, SeedMLP  # noqa: E402
from tinygrad_cnn.nn import state_dict  # noqa: E402
from tinygrad_cnn.optim import SGD  # noqa: E402
from tinygrad_cnn.profile import Profiler  # noqa: E402

#: forward, weight gradients and input gradients (3 × 4,467,664), less conv1's input gradient,
#: which neither side computes (the images need none): 2 · 112,896
TRAIN_FLOP_PER_IMAGE = 3 * 4_467_664 - 2 * 112_896
#: SeedMLP: 2 FLOP per weight for the forward and for dW, and for dX except in fc1 (the images need none)
MLP_TRAIN_FLOP_PER_IMAGE = 2 * (2 * (784 * 1000 + 1000 * 100 + 100 * 10) + 1000 * 100 + 100 * 10)
INFER_FLOP_PER_IMAGE = 4.47e6
LEARNING_RATE, MOMENTUM = 0.01, 0.9
#: the networks timed: SeedCNN, and SeedMLP for the batch-1 overhead of a fully connected net
NETWORKS = {"cnn": SeedCNN, "mlp": SeedMLP}
#: (name, network, batch size, train?, timed steps per round: about half a second each)
CONFIGS = [
    ("train batch 1", "cnn", 1, True, 250),
    ("train batch 32", "cnn", 32, True, 40),
    ("train batch 128", "cnn", 128, True, 15),
    ("infer batch 1000", "cnn", 1000, False, 5),
    ("MLP train batch 1", "mlp", 1, True, 250),
]
#: untimed work at the start of every round (at least this many steps and seconds): the
#: other framework just ran, and its BLAS / OpenMP threads may still spin for a while
#: (stealing the second core) and its data fill the caches
SETTLE_STEPS, SETTLE_SECONDS = 2, 0.3
#: the images the train steps take their batches from (``Batches``): MNIST's training set
TRAIN_IMAGES = 60_000


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def load_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``count`` uint8 images N,1,28,28 and labels: real MNIST if TINYGRAD_CNN_DATA is set."""
    root = os.environ.get("TINYGRAD_CNN_DATA")
    if root:
        from tinygrad_cnn.datasets import mnist

        x_train, y_train, _, _ = mnist(root=root, download=False)
        return x_train[:count], np.asarray(y_train[:count]), "MNIST"
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 1, 28, 28), dtype=np.uint8)
    return images, rng.integers(0, 10, size=count), "random pixels"


def current_rss_mb() -> float:
    """Resident set size now (Linux /proc), in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB.

    Linux's VmHWM (of this process image only). ``ru_maxrss`` is the fallback elsewhere; on
    Linux it is inherited across fork, so a child started by a big parent (torch loaded)
    would report the parent's peak instead of its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux reports KiB


# ---------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------


class Ours:
    name = "ours"

    def __init__(self, model: SeedCNN | SeedMLP):
        self.model = model
        self.optimizer = SGD(list(_parameters(model)), lr=LEARNING_RATE, momentum=MOMENTUM)
        self.initial_weights = [param.data.copy() for param in self.optimizer.params]

    def restart(self) -> None:
        """The initial weights again, and no momentum yet (see ``Batches``)."""
        for param, weights in zip(self.optimizer.params, self.initial_weights):
            np.copyto(param.data, weights)
        self.optimizer = SGD(self.optimizer.params, lr=self.optimizer.lr, momentum=MOMENTUM)

    def set_lr(self, lr: float) -> None:
        self.optimizer.lr = lr

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> float:
        self.optimizer.zero_grad()
        loss = self.model(images).cross_entropy(labels)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def infer(self, images: np.ndarray) -> np.ndarray:
        with no_grad():
            return self.model(images).data


def _parameters(model: SeedCNN | SeedMLP):
    from tinygrad_cnn.nn import get_parameters

    return get_parameters(model)


# ---------------------------------------------------------------------------
# PyTorch, the same network with the same weights
# ---------------------------------------------------------------------------


class Torch:
    name = "torch"

    def __init__(self, weights: dict[str, np.ndarray], network: str = "cnn"):
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(2)
        self.torch, self.F, self.network = torch, F, network
        self.params = {key: torch.tensor(value, requires_grad=True) for key, value in weights.items()}
        self.optimizer = torch.optim.SGD(list(self.params.values()), lr=LEARNING_RATE, momentum=MOMENTUM)
        self.initial_weights = {key: torch.tensor(value) for key, value in weights.items()}

    def restart(self) -> None:
        """The initial weights again, and no momentum yet (see ``Batches``)."""
        with self.torch.no_grad():
            for key, param in self.params.items():
                param.copy_(self.initial_weights[key])
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer = self.torch.optim.SGD(list(self.params.values()), lr=lr, momentum=MOMENTUM)

    def logits(self, images: np.ndarray):
        """CNN: x/255 → [conv 3x3 pad 1 + per-position bias → relu → pad b/r 1 → pool 3x3/2] ×2
        → conv + bias → relu → flatten → fc1 (weight in,out) → relu → fc2.
        MLP: x/255 → flatten → fc1 (784→1000) → relu → fc2 (→100) → relu → fc3 (→10)."""
        torch, F, p = self.torch, self.F, self.params
        x = torch.from_numpy(images.astype(np.float32)) * np.float32(1 / 255)
        if self.network == "mlp":
            x = F.relu(x.flatten(1) @ p["fc1.weight"] + p["fc1.bias"])
            x = F.relu(x @ p["fc2.weight"] + p["fc2.bias"])
            return x @ p["fc3.weight"] + p["fc3.bias"]
        for layer, pool in (("conv1", True), ("conv2", True), ("conv3", False)):
            x = F.relu(F.conv2d(x, p[f"{layer}.weight"], padding=1) + p[f"{layer}.bias"])
            if pool:
                x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 3, stride=2)
        x = F.relu(x.flatten(1) @ p["fc1.weight"] + p["fc1.bias"])
        return x @ p["fc2.weight"] + p["fc2.bias"]

    def loss(self, images: np.ndarray, labels: np.ndarray):
        return self.F.cross_entropy(self.logits(images), self.torch.from_numpy(np.asarray(labels, dtype=np.int64)))

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(images, labels)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def infer(self, images: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.logits(images).numpy()


def try_torch(weights: dict[str, np.ndarray], network: str = "cnn") -> tuple[Optional[Torch], str]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, "PyTorch is not importable: timing ours only (pip install torch==2.13.0 to compare)"
    return Torch(weights, network), f"PyTorch {__import__('torch').__version__}, {__import__('torch').get_num_threads()} threads"


def check_agreement(weights: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray,
                    network: str = "cnn") -> str:
    """Losses and every parameter gradient of ours and torch must agree (float32);
    ``weights`` are those of ``NETWORKS[network](seed=0)``."""
    model = NETWORKS[network](seed=0)
    ours = Ours(model)
    reference = Torch(weights, network)
    loss = model(images).cross_entropy(labels)
    loss.backward()
    torch_loss = reference.loss(images, labels)
    torch_loss.backward()
    problems = []
    if not np.isclose(loss.item(), torch_loss.item(), rtol=1e-4, atol=1e-5):
        problems.append(f"loss {loss.item():.6f} vs torch {torch_loss.item():.6f}")
    worst = 0.0
    for name, param in zip(weights, ours.optimizer.params):
        expected = reference.params[name].grad.numpy()
        error = np.abs(param.grad - expected).max() / max(np.abs(expected).max(), 1e-12)
        worst = max(worst, error)
        if error > 1e-3:
            problems.append(f"{name} gradient differs: relative error {error:.2e}")
    if problems:
        raise SystemExit("ours and torch disagree: " + "; ".join(problems))
    return f"loss {loss.item():.5f} = torch {torch_loss.item():.5f}; worst relative gradient error {worst:.1e}"


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def time_round(run: Callable[[], object], steps: int, restart: Optional[Callable[[], None]] = None) -> float:
    """Seconds per ``run`` over ``steps`` runs, after the untimed settling runs; ``restart``
    (untimed) comes between the two, so the timed runs start from it whatever number of
    settling runs the framework's speed allowed."""
    settle_until, settled = time.perf_counter() + SETTLE_SECONDS, 0
    while settled < SETTLE_STEPS or time.perf_counter() < settle_until:
        run()
        settled += 1
    if restart is not None:
        restart()
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - start) / steps


class Batches:
    """Successive batches of ``images`` and ``labels`` from the first (``restart``), starting
    over at the end.

    Each timed round restarts both networks from their initial weights (``restart``) and
    feeds them these batches from the first: every round times the same early-training
    steps. Repeating one batch, or training one network on for thousands of steps at batch
    1, ends where the gradients are 0 (a loss of exactly 0, or every relu dead: at batch 1
    and this lr, after about 1,000 steps on successive images), and the momentum buffers
    then shrink into subnormal floats (0.9 times the smallest one rounds back to it, so they
    stay), which an Intel CPU computes many times slower. On this round's Intel Xeon our
    batch-1 step went 2.3 → 5.0 ms after 1,000 steps of one image (122,668 subnormal buffer
    entries), and 3.0 → 4.8-6.5 ms after 1,000 steps of successive images; PyTorch's slows
    too. (On the AMD EPYC of earlier rounds subnormals cost little, and this was not seen.)"""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch: int):
        self.images, self.labels, self.batch, self.start = images, labels, batch, 0

    def restart(self) -> None:
        self.start = 0

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        if self.start + self.batch > len(self.images):
            self.start = 0
        start, self.start = self.start, self.start + self.batch
        return self.images[start : start + self.batch], self.labels[start : start + self.batch]


def restarter(framework: "Ours | Torch", batches: Batches) -> Callable[[], None]:
    """What restarts a round of train steps: the framework's initial weights, the first batch."""
    def restart() -> None:
        framework.restart()
        batches.restart()
    return restart


def measure(frameworks: dict[str, list], images: np.ndarray, labels: np.ndarray, rounds: int,
            each_round: bool = False) -> list[dict]:
    """Median ms per step of every config, the frameworks (per network: ours, then torch if
    present) alternating round by round; with ``each_round``, every round's times are printed
    as they come (the machine's slow spells show up as runs of slow rounds). Each framework
    trains on the same sequence of batches (``Batches``); inference runs on the first 1,000
    images every time."""
    results = []
    for name, network, batch, train, steps in CONFIGS:
        runs: list[Callable[[], object]] = []
        restarts: list[Callable[[], None]] = []  # in each round, between the settling and the timed steps
        for framework in frameworks[network]:
            if train:
                batches = Batches(images, labels, batch)
                runs.append(lambda f=framework, b=batches: f.train_step(*b.next()))
                restarts.append(restarter(framework, batches))
            else:
                runs.append(lambda f=framework: f.infer(images[:batch]))
                restarts.append(lambda: None)
        for run in runs:  # warm-up: buffers, BLAS threads, caches
            time_round(run, max(2, steps // 2))
        seconds: list[list[float]] = [[] for _ in runs]
        for round_number in range(rounds):
            for index, (run, restart) in enumerate(zip(runs, restarts)):
                seconds[index].append(time_round(run, steps, restart))
            if each_round:
                times = [samples[-1] * 1e3 for samples in seconds]
                ratio = f"  ours/torch {times[0] / times[1]:.2f}" if len(times) > 1 else ""
                print(f"{name} round {round_number + 1}: " + "  ".join(
                    f"{framework.name} {ms:.2f} ms" for framework, ms in zip(frameworks[network], times)) + ratio)
        row: dict[str, Any] = {"config": name, "network": network, "batch": batch, "train": train}
        flop = (MLP_TRAIN_FLOP_PER_IMAGE if network == "mlp" else
                TRAIN_FLOP_PER_IMAGE if train else INFER_FLOP_PER_IMAGE) * batch
        for framework, samples in zip(frameworks[network], seconds):
            median = statistics.median(samples)
            row[framework.name] = {
                "ms": median * 1e3,
                "rounds_ms": [sample * 1e3 for sample in samples],
                "images_per_s": batch / median,
                "gflop_per_s": flop / median / 1e9,
            }
        if "torch" in row:
            row["ratio"] = row["ours"]["ms"] / row["torch"]["ms"]
        results.append(row)
    return results


def rss_of(batch: int, framework: str = "ours", steps: int = 20) -> Optional[float]:
    """Peak RSS (MB) of a fresh process that trains ``steps`` steps at ``batch``."""
    command = [sys.executable, __file__, "--rss-only", str(batch), "--framework", framework, "--rss-steps", str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return None
    return float(done.stdout.strip().splitlines()[-1])


def rss_only(batch: int, framework: str, steps: int) -> None:
    images, labels, _ = load_images(max(batch, 1000))
    model = SeedCNN(seed=0)
    runner = Ours(model) if framework == "ours" else Torch(state_dict(model))
    for step in range(steps):
        start = (step * batch) % (len(images) - batch + 1)
        runner.train_step(images[start : start + batch], labels[start : start + batch])
    print(f"{peak_rss_mb():.1f}")


def print_table(results: list[dict], has_torch: bool) -> None:
    header = f"{'config':<18}{'ours ms':>10}{'img/s':>10}{'GFLOP/s':>9}"
    if has_torch:
        header += f"{'torch ms':>10}{'img/s':>10}{'GFLOP/s':>9}{'ours/torch':>12}"
    print(header)
    print("-" * len(header))
    for row in results:
        ours = row["ours"]
        line = f"{row['config']:<18}{ours['ms']:>10.2f}{ours['images_per_s']:>10.0f}{ours['gflop_per_s']:>9.1f}"
        if has_torch:
            torch_row = row["torch"]
            line += (f"{torch_row['ms']:>10.2f}{torch_row['images_per_s']:>10.0f}"
                     f"{torch_row['gflop_per_s']:>9.1f}{row['ratio']:>11.2f}x")
        print(line)


# ---------------------------------------------------------------------------
# Profile, long run, epoch
# ---------------------------------------------------------------------------


def profile(images: np.ndarray, labels: np.ndarray, steps: int = 20) -> str:
    ours = Ours(SeedCNN(seed=0))
    batch_images, batch_labels = images[:128], labels[:128]
    for _ in range(3):
        ours.train_step(batch_images, batch_labels)
    with Profiler() as profiler:
        for _ in range(steps):
            ours.train_step(batch_images, batch_labels)
    text = f"per-op profile of a batch-128 train step (ms per step, mean of {steps}):\n" + profiler.table(steps)
    reference, _ = try_torch(state_dict(SeedCNN(seed=0)))
    if reference is not None:
        text += "\n" + torch_profile(reference, batch_images, batch_labels, steps)
    return text


def torch_profile(reference: "Torch", images: np.ndarray, labels: np.ndarray, steps: int, rows: int = 12) -> str:
    """PyTorch's own profiler on the same step: its most expensive ops by self time (time in
    the op itself, not in the ops it calls), ms per step. The profiler adds overhead of its own."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profiler

    for _ in range(3):
        reference.train_step(images, labels)
    start = time.perf_counter()
    with torch_profiler(activities=[ProfilerActivity.CPU]) as recorded:
        for _ in range(steps):
            reference.train_step(images, labels)
    wall = (time.perf_counter() - start) / steps * 1e3
    events = sorted(recorded.key_averages(), key=lambda event: -event.self_cpu_time_total)[:rows]
    lines = [f"PyTorch's profiler on its batch-128 step (self time, ms per step, mean of {steps}):",
             f"{'op':<45}{'ms':>8}{'calls':>7}"]
    lines += [f"{event.key[:44]:<45}{event.self_cpu_time_total / 1e3 / steps:>8.3f}{event.count / steps:>7.1f}"
              for event in events]
    lines.append(f"{'wall (under the profiler)':<45}{wall:>8.3f}")
    return "\n".join(lines)


def long_run(images: np.ndarray, labels: np.ndarray, steps: int) -> dict:
    """RSS after a short warm-up vs after ``steps`` batch-128 steps: must not grow."""
    ours = Ours(SeedCNN(seed=0))
    batches = max(len(images) // 128, 1)
    for step in range(steps):
        start = (step % batches) * 128
        ours.train_step(images[start : start + 128], labels[start : start + 128])
        if step == 9:
            start_rss = current_rss_mb()
    end_rss = current_rss_mb()
    return {"steps": steps, "rss_start_mb": start_rss, "rss_end_mb": end_rss,
            "growth_mb": end_rss - start_rss, "peak_mb": peak_rss_mb()}


def epoch(batch: int = 128) -> dict:
    """One epoch of MNIST training (60,000 images) plus evaluation of the 10,000 test images."""
    from tinygrad_cnn.datasets import mnist

    root = os.environ.get("TINYGRAD_CNN_DATA")
    x_train, y_train, x_test, y_test = mnist(root=root, download=False)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    ours = Ours(SeedCNN(seed=0))
    order = np.random.default_rng(0).permutation(len(x_train))
    start = time.perf_counter()
    for first in range(0, len(order), batch):
        chosen = order[first : first + batch]
        ours.train_step(x_train[chosen], y_train[chosen])
    train_seconds = time.perf_counter() - start
    correct = 0
    for first in range(0, len(x_test), 1000):
        logits = ours.infer(x_test[first : first + 1000])
        correct += int((logits.argmax(axis=1) == y_test[first : first + 1000]).sum())
    total_seconds = time.perf_counter() - start
    return {"train_s": train_seconds, "total_s": total_seconds, "test_accuracy": correct / len(x_test)}


def end_to_end(frameworks: list, epochs: int, batch: int = 64, peak_lr: float = 0.05,
               warmup_epochs: float = 0.25) -> list[dict]:
    """examples/mnist.py's default recipe (batch 64, momentum 0.9, linear warm-up to lr 0.05
    over a quarter epoch, cosine decay to 0 at the end of ``epochs``) for each framework, from
    the same weights, on the same data order; evaluation of the 10,000 test images after each
    epoch. Returns per framework the seconds and accuracy of every epoch and the time
    (training + evaluation so far) at which the test accuracy first reached 99 %."""
    from tinygrad_cnn.datasets import mnist
    from tinygrad_cnn.optim import WarmupCosine

    x_train, y_train, x_test, y_test = mnist(root=os.environ.get("TINYGRAD_CNN_DATA"), download=False)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    steps_per_epoch = -(-len(x_train) // batch)
    schedule = WarmupCosine(peak_lr, epochs * steps_per_epoch, int(warmup_epochs * steps_per_epoch))
    results = []
    for framework in frameworks:
        history, elapsed, reached, step = [], 0.0, None, 0
        for epoch_index in range(epochs):
            order = np.random.default_rng(epoch_index).permutation(len(x_train))
            start = time.perf_counter()
            for first in range(0, len(order), batch):
                framework.set_lr(schedule(step))
                chosen = order[first : first + batch]
                framework.train_step(x_train[chosen], y_train[chosen])
                step += 1
            train_seconds = time.perf_counter() - start
            correct = sum(int((framework.infer(x_test[first : first + 1000]).argmax(axis=1)
                               == y_test[first : first + 1000]).sum()) for first in range(0, len(x_test), 1000))
            elapsed += time.perf_counter() - start
            accuracy = 100 * correct / len(x_test)
            history.append({"train_s": train_seconds, "total_s": elapsed, "test_accuracy": accuracy})
            if reached is None and accuracy >= 99.0:
                reached = elapsed
        results.append({"framework": framework.name, "epochs": history, "seconds_to_99": reached})
    return results


def print_end_to_end(results: list[dict]) -> None:
    for result in results:
        for index, epoch_result in enumerate(result["epochs"], 1):
            print(f"{result['framework']:>6} epoch {index}: train {epoch_result['train_s']:.1f} s, "
                  f"train + eval so far {epoch_result['total_s']:.1f} s, test accuracy {epoch_result['test_accuracy']:.2f} %")
        reached = result["seconds_to_99"]
        print(f"{result['framework']:>6} reached 99 % after " + (f"{reached:.1f} s" if reached else "- (not reached)"))
    if len(results) == 2:
        ours, torch_result = (result["epochs"] for result in results)
        print(f"ours/torch, first epoch + evaluation: {ours[0]['total_s'] / torch_result[0]['total_s']:.2f}x; "
              f"all epochs: {ours[-1]['total_s'] / torch_result[-1]['total_s']:.2f}x")
        if results[0]["seconds_to_99"] and results[1]["seconds_to_99"]:
            print(f"ours/torch, time to 99 %: {results[0]['seconds_to_99'] / results[1]['seconds_to_99']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per config (median is reported)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--profile", action="store_true", help="print the per-op profile of a batch-128 step")
    parser.add_argument("--steps", type=int, default=0, help="long batch-128 run: RSS at start vs end")
    parser.add_argument("--epoch", action="store_true", help="time one MNIST epoch plus evaluation")
    parser.add_argument("--end-to-end", action="store_true",
                        help="the default examples/mnist.py recipe, ours then torch (same weights and data order)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of --end-to-end (3: also the time to 99 %%)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--each-round", action="store_true", help="also print every round's times")
    parser.add_argument("--rss-only", type=int, metavar="BATCH", help=argparse.SUPPRESS)
    parser.add_argument("--framework", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--rss-steps", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.rss_only:
        rss_only(args.rss_only, args.framework, args.rss_steps)
        return

    images, labels, source = load_images(TRAIN_IMAGES)
    report: dict = {"data": source, "numpy": np.__version__}
    if args.end_to_end:
        model = SeedCNN(seed=0)
        reference, note = try_torch(state_dict(model))
        print(f"numpy {np.__version__}; {note}")
        report["end_to_end"] = end_to_end([Ours(model)] + ([reference] if reference else []), args.epochs)
        print_end_to_end(report["end_to_end"])
    elif args.epoch:
        report["epoch"] = epoch()
        print(f"epoch (60,000 train at batch 128 + 10,000 eval): train {report['epoch']['train_s']:.1f} s, "
              f"total {report['epoch']['total_s']:.1f} s, test accuracy {report['epoch']['test_accuracy']:.4f}")
    elif args.steps:
        report["long_run"] = result = long_run(images, labels, args.steps)
        print(f"{result['steps']} batch-128 steps: RSS {result['rss_start_mb']:.1f} MB after 10 steps, "
              f"{result['rss_end_mb']:.1f} MB at the end (growth {result['growth_mb']:+.1f} MB), "
              f"peak {result['peak_mb']:.1f} MB")
    else:
        frameworks: dict[str, list] = {}
        for network, network_class in NETWORKS.items():
            model = network_class(seed=0)
            weights = state_dict(model)
            reference, note = try_torch(weights, network)
            if network == "cnn":
                print(f"data: {source}; numpy {np.__version__}; {note}")
            frameworks[network] = [Ours(model)]
            if reference is not None:
                print(f"agreement check ({network_class.__name__}):",
                      check_agreement(weights, images[:64], labels[:64], network))
                frameworks[network].append(reference)
                report["torch"] = __import__("torch").__version__
        report["results"] = measure(frameworks, images, labels, args.rounds, args.each_round)
        print_table(report["results"], "torch" in report)
        if not args.no_rss:
            report["peak_rss_mb"] = {"ours train batch 128": rss_of(128)}
            if "torch" in report:
                report["peak_rss_mb"]["torch train batch 128"] = rss_of(128, "torch")
            print("peak RSS (fresh process, 20 train steps at batch 128): "
                  + ", ".join(f"{key} {value:.0f} MB" for key, value in report["peak_rss_mb"].items() if value))

    if args.profile or os.environ.get("TINYGRAD_CNN_PROFILE") == "1":
        report["profile"] = text = profile(images, labels)
        print(text)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
