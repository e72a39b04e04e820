"""What the example scripts share: loading the data, the trainer's checkpoints, building a
model from a checkpoint, batched prediction, and checking output paths before any work starts.

    from common import CommandLineError, load_data, predict, softmax   # in a script in examples/

These helpers live next to the scripts, not in the package: the checkpoint layout (weights,
optimizer buffers and the trainer's position in one .npz) and the ``error:`` line style are
the examples' conventions. The package supplies what they are built from (``nn.save`` /
``nn.load``, ``Tensor.softmax``, ``datasets.mnist``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from tinygrad_cnn import Tensor, no_grad
from tinygrad_cnn.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FOLDER,
    MNIST_CLASSES,
    MNIST_FILES,
    MNIST_FOLDER,
    default_root,
    fashion_mnist,
    mnist,
)
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import (  # create_parent_directory: the scripts import it from here too
    atomic_write,
    create_parent_directory,
    load,
    load_state_dict,
    named_parameters,
    save,
)

PathLike = Union[str, "os.PathLike[str]"]


class CommandLineError(Exception):
    """A problem the user can fix: the scripts print it as one ``error: ...`` line and exit with 1."""


class ModelDiverged(CommandLineError):
    """The model's logits are not finite (NaN or inf): its weights blew up in training."""


# ---------------------------------------------------------------------------
# Data and models
# ---------------------------------------------------------------------------

#: data set name -> loader returning (x_train, y_train, x_test, y_test); room for more (Fashion-MNIST)
DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {
    "mnist": mnist, "fashion": fashion_mnist}
#: the names --dataset takes -> the names of its ten classes (the plots' titles)
CLASS_NAMES: dict[str, tuple[str, ...]] = {"mnist": MNIST_CLASSES, "fashion": FASHION_MNIST_CLASSES}

#: the data set's name in messages, and its folder under a data root (as tinygrad_cnn.datasets lays them out)
DATASET_NAMES: dict[str, str] = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
DATASET_FOLDERS: dict[str, str] = {"mnist": MNIST_FOLDER, "fashion": FASHION_MNIST_FOLDER}

#: the names --model takes -> the model class
MODELS = {"cnn": SeedCNN, "mlp": SeedMLP}
OPTIMIZERS = ("sgd", "adam")


def data_location(data_dir: Optional[PathLike], dataset: str) -> Path:
    """The directory the loader reads ``dataset`` from: ``data_dir`` (or ``$TINYGRAD_CNN_DATA``,
    or the cache), or its ``mnist/`` / ``fashion-mnist/`` folder when it has one."""
    folder = DATASET_FOLDERS[dataset]
    root = Path(data_dir).expanduser() if data_dir is not None else default_root(folder)
    return root / folder if (root / folder).is_dir() else root


def load_data(data_dir: Optional[PathLike], limit_train: Optional[int] = None, limit_test: Optional[int] = None,
              dataset: str = "mnist", need_train: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from ``data_dir`` (None: ``$TINYGRAD_CNN_DATA`` or the
    download cache), cut to the first ``limit_train`` / ``limit_test`` images when given. An
    empty test split (or training split, with ``need_train``) raises CommandLineError."""
    try:
        x_train, y_train, x_test, y_test = DATASETS[dataset](data_dir)
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandLineError(f"could not load {DATASET_NAMES[dataset]}: {error}") from None
    splits = [("training", x_train, MNIST_FILES[0], "train on"), ("test", x_test, MNIST_FILES[2], "test on")]
    for split, images, file_name, purpose in splits[0 if need_train else 1:]:
        if len(images) == 0:
            raise CommandLineError(f"the {DATASET_NAMES[dataset]} {split} split in {data_location(data_dir, dataset)} "
                                   f"is empty ({file_name} holds 0 images): nothing to {purpose}")
    return x_train[:limit_train], y_train[:limit_train], x_test[:limit_test], y_test[:limit_test]


def build_model(name: str, seed: int):
    """A fresh model by its --model name ("cnn" or "mlp")."""
    return MODELS[name](seed=seed)


def predict(model: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The model's logits (N, classes) for every image, computed under no_grad in batches;
    no images give an empty (0, classes) array."""
    with no_grad():
        if len(images) == 0:  # (np.concatenate needs at least one batch; the model takes an empty one)
            return model(images).data
        return np.concatenate([model(images[start:start + batch_size]).data
                               for start in range(0, len(images), batch_size)])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits, along the last axis (the package's ``Tensor.softmax``)."""
    with no_grad():
        return Tensor(logits).softmax(axis=-1).numpy()


def accuracy_percent(logits: np.ndarray, labels: np.ndarray) -> float:
    """Percentage of rows whose largest logit is at the label. A NaN or inf logit raises
    ModelDiverged: argmax would quietly call a row of NaNs class 0, a made-up accuracy."""
    broken = int((~np.isfinite(logits)).any(axis=1).sum())
    if broken:
        raise ModelDiverged(f"the model diverged: its logits are NaN or inf on {broken} of {len(logits)} test images")
    return float((logits.argmax(axis=1) == labels).mean() * 100)


# ---------------------------------------------------------------------------
# Checkpoints: one .npz holding model/<name> weights, optimizer/<key> buffers and a JSON
# "meta" string (the run's settings, position and history); never pickle
# ---------------------------------------------------------------------------

CHECKPOINT_FORMAT = 1
MODEL_PREFIX, OPTIMIZER_PREFIX = "model/", "optimizer/"


def save_checkpoint(path: PathLike, model: Any, optimizer: Any, meta: dict[str, Any]) -> None:
    """Write a training checkpoint atomically (``nn.save``): the previous file stays whole until
    the new one is complete. Missing directories above ``path`` are made first."""
    arrays = {f"{MODEL_PREFIX}{name}": tensor.data for name, tensor in named_parameters(model).items()}
    arrays.update({f"{OPTIMIZER_PREFIX}{key}": value for key, value in optimizer.state_dict().items()})
    arrays["meta"] = np.array(json.dumps({"format": CHECKPOINT_FORMAT, **meta}))
    create_parent_directory(path)
    save(arrays, path)


def read_checkpoint(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Optional[dict[str, Any]]]:
    """``(weights, optimizer buffers, meta)`` from a checkpoint of examples/mnist.py, or
    ``(weights, {}, None)`` from a plain state dict written by ``tinygrad_cnn.nn.save``."""
    try:
        arrays = load(path)
    except (OSError, ValueError) as error:
        raise CommandLineError(str(error)) from None
    if "meta" not in arrays:
        return arrays, {}, None
    try:
        meta = json.loads(str(arrays["meta"]))
    except ValueError:
        raise CommandLineError(f"{path}: its 'meta' entry is not the JSON examples/mnist.py writes") from None
    check_meta(meta, path)
    weights = {key[len(MODEL_PREFIX):]: value for key, value in arrays.items() if key.startswith(MODEL_PREFIX)}
    buffers = {key[len(OPTIMIZER_PREFIX):]: value for key, value in arrays.items() if key.startswith(OPTIMIZER_PREFIX)}
    return weights, buffers, meta


#: what a checkpoint's meta must hold, beyond "format": the run's settings and its position
CONFIG_KEYS = ("model", "optimizer", "epochs", "batch_size", "lr", "momentum", "warmup_epochs", "seed")
POSITION_KEYS = ("epoch", "step_in_epoch", "global_step", "history", "train_seconds", "running", "epoch_rng_state")


def check_meta(meta: Any, path: PathLike) -> None:
    """Raise CommandLineError naming ``path`` unless ``meta`` has the layout examples/mnist.py
    writes: a JSON object with the format number, a "config" object (with a known model and
    data set) and the position keys, so that no later lookup fails with a KeyError."""
    def refuse(problem: str) -> CommandLineError:
        return CommandLineError(f"{path}: its 'meta' entry {problem}; it is not a checkpoint examples/mnist.py wrote")

    if not isinstance(meta, dict):
        raise refuse(f"is a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CommandLineError(f"{path} has checkpoint format {meta.get('format')}, expected {CHECKPOINT_FORMAT}")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise refuse("has no \"config\" object" if config is None else "has a \"config\" that is not an object")
    missing = [key for key in CONFIG_KEYS if key not in config] + [key for key in POSITION_KEYS if key not in meta]
    if missing:
        raise refuse("lacks " + ", ".join(f"\"{key}\"" for key in missing))
    for key in ("model", "dataset", "optimizer"):  # (a list would fail the lookups below with a TypeError)
        if key in config and not isinstance(config[key], str):
            raise refuse(f"has a \"{key}\" that is a {type(config[key]).__name__}, not a string")
    if config["model"] not in MODELS:
        raise refuse(f"names the model {config['model']!r}, expected one of {', '.join(MODELS)}")
    if config.get("dataset", "mnist") not in DATASETS:
        raise refuse(f"names the data set {config['dataset']!r}, expected one of {', '.join(DATASETS)}")
    if config.get("optimizer") not in OPTIMIZERS:  # (anything else would quietly train with SGD)
        raise refuse(f"names the optimizer {config.get('optimizer')!r}, expected one of {', '.join(OPTIMIZERS)}")
    if not isinstance(meta["history"], list) or not isinstance(meta["running"], dict):
        raise refuse("has a \"history\" that is not a list or a \"running\" that is not an object")


def load_weights(model: Any, weights: dict[str, np.ndarray], path: PathLike) -> None:
    """``load_state_dict`` with its errors turned into one line naming the file."""
    try:
        load_state_dict(model, weights)
    except (KeyError, ValueError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) else str(error)
        raise CommandLineError(f"{path} does not fit the model: {message}") from None


def model_name_for(weights: dict[str, np.ndarray], path: PathLike) -> str:
    """The --model name whose parameter names are exactly the keys of ``weights``."""
    for name, model_class in MODELS.items():
        if set(named_parameters(model_class()).keys()) == set(weights):
            return name
    keys = ", ".join(sorted(weights)[:6]) + (", ..." if len(weights) > 6 else "")
    raise CommandLineError(f"{path} holds arrays ({keys}) that match neither the seed CNN nor the seed MLP")


def model_from_checkpoint(path: PathLike) -> tuple[Any, Optional[dict[str, Any]]]:
    """The model stored in a trainer checkpoint or a plain state dict, and the checkpoint's
    meta (None for a state dict, whose model is recognised by its parameter names)."""
    weights, _, meta = read_checkpoint(path)
    name = meta["config"]["model"] if meta is not None else model_name_for(weights, path)
    model = build_model(name, seed=0)
    load_weights(model, weights, path)
    return model, meta


# ---------------------------------------------------------------------------
# Numbers on the command line, checked by the parser
# ---------------------------------------------------------------------------

#: how the scripts' --lr help ends: the rule refuse_negative applies, and why 0 passes it
LEARNING_RATE_RULE = ("a finite number >= 0; 0 is allowed, as PyTorch's optimizers allow it: the weights then never "
                      "change, a dry run of the data, the loop and the outputs")


def flag_name(name: str) -> str:
    """The command-line flag of an argparse destination: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def refuse_non_positive(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Iterable[str]) -> None:
    """Each named count (epochs, batch size, images, steps), when given, must be at least 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"{flag_name(name)} must be positive, got {value}")


def refuse_negative_integers(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Iterable[str]) -> None:
    """Each named integer flag that may be 0 (a seed, an index, a number of steps), when given,
    must be >= 0: the scripts' one check of --seed, so it reads the same in all of them."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 0:
            parser.error(f"{flag_name(name)} must be >= 0, got {value}")


def refuse_negative(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Iterable[str]) -> None:
    """Each named float flag (a learning rate, a momentum, a warm-up length), when given, must be
    a finite number >= 0 (NaN and inf are refused too): the rule of the package's optimizers
    and schedules (``optim.check_number``) and of PyTorch's, which accept lr=0."""
    for name in names:
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            parser.error(f"{flag_name(name)} must be a finite number >= 0, got {value}")


# ---------------------------------------------------------------------------
# Output paths, checked before any work starts
# ---------------------------------------------------------------------------


def refuse_empty_paths(parser: argparse.ArgumentParser, args: argparse.Namespace, names: Iterable[str]) -> None:
    """A path flag given an empty value (``--save "$OUT"`` with OUT unset) stops at the parser:
    the empty text reads as false, so the flag would be dropped without a word (nothing saved,
    a fresh run instead of a resumed one) or name the current directory."""
    for name in names:
        if getattr(args, name) == "":
            parser.error(f"{flag_name(name)} was given an empty path")


def expand_home(args: argparse.Namespace, names: Iterable[str]) -> None:
    """Expand a leading ``~`` in each named path argument, right after parsing, as the shell
    would have (it leaves ``--json=~/r.json`` alone): every later check, read and write then
    sees the same path. The text is otherwise kept: ``out/`` still names a directory."""
    for name in names:
        value = getattr(args, name)
        if value:
            setattr(args, name, os.path.expanduser(value))


def _first_file_in_the_way(directory: Path) -> Optional[Path]:
    """The first ancestor-or-self of ``directory`` that exists but is not a directory (a
    broken symbolic link counts: no directory can be made there either)."""
    for candidate in reversed([directory, *directory.parents]):
        if os.path.lexists(candidate) and not candidate.is_dir():
            return candidate
    return None


def _nearest_existing_directory(directory: Path) -> Path:
    """``directory`` itself when it exists, else its nearest ancestor that does."""
    return next((candidate for candidate in (directory, *directory.parents) if candidate.exists()), Path("."))


def _check_directory(directory: Path, flag: str, path: Path) -> None:
    """Check, creating nothing, that files can be written in ``directory`` once its missing
    parts are made: no file stands where one of its directories must go, and the nearest
    directory that exists is writable (a file is created and deleted there: what really
    decides, with permissions and read-only disks). The missing directories are made only
    by the write itself (``create_parent_directory``), so a run that is refused or stops
    before writing anything leaves no empty directory behind."""
    in_the_way = _first_file_in_the_way(directory)
    if in_the_way is not None:
        what = "a broken symbolic link" if in_the_way.is_symlink() else "a file"
        raise CommandLineError(f"{flag} {path}: cannot create the directory {directory}: {what} stands at {in_the_way}")
    existing = _nearest_existing_directory(directory)
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as error:
        problem = f"cannot write in {directory}" if existing == directory else f"cannot create the directory {directory}"
        raise CommandLineError(f"{flag} {path}: {problem}: {error.strerror}") from None


def refuse_directory_name(path: PathLike, flag: str) -> None:
    """A file's path must end in a file name: ``out/``, ``out/.`` and ``..`` name directories
    (``Path`` would quietly drop the separator and write a file called ``out``)."""
    text = os.fspath(path)
    if os.path.basename(text) in ("", ".", "..") or (os.altsep and text.endswith(os.altsep)):
        raise CommandLineError(f"{flag} {text}: that names a directory; give a file name inside it")


def prepare_output_file(path: PathLike, flag: str) -> Path:
    """Check, creating nothing, that a file can be written at ``path`` (its missing parent
    directories are made when it is written: ``create_parent_directory``): a directory
    standing at ``path``, a file in the way of its parents or a directory that cannot be
    written raises CommandLineError naming ``flag`` and the path, as does a path that ends
    in a separator (``out/``: a directory's name, even where none exists yet)."""
    refuse_directory_name(path, flag)
    path = Path(path).expanduser()
    if path.is_dir():
        raise CommandLineError(f"{flag} {path}: that is a directory; give a file name inside it")
    _check_directory(path.parent, flag, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise CommandLineError(f"{flag} {path}: the file exists and is read-only")
    return path


def prepare_output_directory(path: PathLike, flag: str) -> Path:
    """Check, creating nothing, that files can be written into the directory ``path`` (made
    when the first of them is written, if missing)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise CommandLineError(f"{flag} {path}: a file stands there; give a directory")
    _check_directory(path, flag, path)
    return path


def silence_closed_stdout() -> None:
    """Send what is left for a standard output its reader closed (``| head``, a ``tee`` that
    died) to /dev/null (Python would raise again flushing it at exit). A stdout without a
    descriptor (a notebook's) is left as it is."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def closed_stdout_exit(what_happened: str) -> int:
    """A script's end once its standard output was closed: stdout silenced, one ``error:`` line
    on stderr (if it can be written) ending with ``what_happened``; exit status 1."""
    silence_closed_stdout()
    with contextlib.suppress(OSError, ValueError):
        print(f"error: the standard output was closed (broken pipe), {what_happened}", file=sys.stderr, flush=True)
    return 1


def write_json(path: PathLike, results: dict[str, Any], flag: str = "--json") -> None:
    """Write ``results`` as indented JSON to ``path``, atomically (``nn.atomic_write``: a full
    disk or a kill mid-write keeps the file's previous results whole), making the missing
    directories above it first; a failure is a CommandLineError naming ``flag``."""
    text = json.dumps(results, indent=2) + "\n"
    try:
        create_parent_directory(path)
        atomic_write(path, lambda file: file.write(text.encode()))
    except OSError as error:
        raise CommandLineError(f"{flag} {path}: could not write the results: {error.strerror or error}") from None


def check_free_space(path: Path, needed_bytes: int, flag: str) -> None:
    """Refuse to start when the disk that will hold ``path`` (that of its nearest existing
    directory) has no room for ``needed_bytes``."""
    directory = _nearest_existing_directory(path.parent)
    free = shutil.disk_usage(directory).free
    if free < needed_bytes:
        raise CommandLineError(f"{flag} {path}: only {free / 1024:.0f} KB free on the disk holding {directory}; "
                               f"a checkpoint needs about {needed_bytes / 2**20:.1f} MB")
