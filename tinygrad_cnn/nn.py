"""Parameters of a model: discovery by walking attributes, state dicts, safe .npz files,
and the small layers: Linear, Conv2d, BatchNorm2d, LayerNorm, Embedding; Sequential; and the layers without
parameters, each a Tensor method as a callable (ReLU, LeakyReLU, GELU, Sigmoid, Tanh, Softmax,
LogSoftmax, Flatten, MaxPool2d, AvgPool2d, Dropout), as PyTorch's nn.

A model is any object whose attributes (and the lists, tuples and dicts among them) hold
Tensors; ``named_parameters`` names each by its dotted attribute path, e.g.
``conv1.weight`` or ``blocks.0.bias``. Attributes whose names start with ``_`` are private
and skipped. Two arrays that would get one name (a dict key with a dot in it) are an error.

Buffers: state a layer updates itself and the optimizer must not touch (batch norm's
running statistics) is held as plain numpy arrays. ``named_buffers`` finds every numpy
array attribute the same way; ``state_dict``, ``load_state_dict`` and ``save`` cover
parameters and buffers, as PyTorch's do.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Optional, Union

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.checks import (
    check_batch_norm_numbers,
    check_dropout,
    check_eps,
    check_is_number,
    check_pool2d,
    int_pair,
    is_int,
    normalized_shape_argument,
    pool_geometry,
)
from tinygrad_cnn.random import generator
from tinygrad_cnn.tensor import Tensor

PathLike = Union[str, "os.PathLike[str]"]
#: a layer: any callable from one tensor to one tensor (see Sequential)
Layer = Callable[[Tensor], Tensor]


def named_parameters(model: Any) -> dict[str, Tensor]:
    """Every Tensor reachable from ``model``'s attributes, keyed by dotted path, in a
    stable order (attribute definition order, list order, dict insertion order)."""
    return {name: item for name, item in _named_state(model).items() if isinstance(item, Tensor)}


def named_buffers(model: Any) -> dict[str, np.ndarray]:
    """Every numpy array reachable from ``model``'s attributes (e.g. ``bn.running_mean``),
    keyed and ordered as ``named_parameters``: state that is saved but not learned."""
    return {name: item for name, item in _named_state(model).items() if isinstance(item, np.ndarray)}


def _named_state(model: Any) -> dict[str, Union[Tensor, np.ndarray]]:
    """Every Tensor and numpy array reachable from ``model``'s attributes, in walk order.

    Two different arrays reached under the same dotted name (a dict key or attribute name with
    a dot in it, ``{"a.b": t1, "a": {"b": t2}}``, or keys 1 and "1") are a ValueError naming the
    two places: a checkpoint would keep one and drop the other, or load one into both. (Names
    with dots are allowed where they do not collide; PyTorch refuses them all.)"""
    found: dict[str, Union[Tensor, np.ndarray]] = {}
    places: dict[str, str] = {}  # name -> where it was found, as Python code (for the error)
    seen: set[int] = set()
    stack: list[tuple[str, str, Any]] = [("", "model", model)]
    while stack:
        prefix, place, item = stack.pop()
        if isinstance(item, (Tensor, np.ndarray)):
            if id(item) not in seen:  # a shared tensor is listed once, under its first name
                seen.add(id(item))
                if prefix in found:
                    raise ValueError(_name_collision(prefix, places[prefix], place))
                found[prefix], places[prefix] = item, place
            continue
        if id(item) in seen:
            continue
        if isinstance(item, dict):
            children = [(str(key), f"{place}[{key!r}]", value) for key, value in item.items()]
        elif isinstance(item, (list, tuple)):
            children = [(str(index), f"{place}[{index}]", value) for index, value in enumerate(item)]
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            children = [(name, f"{place}.{name}" if name.isidentifier() else f"getattr({place}, {name!r})", value)
                        for name, value in vars(item).items() if not name.startswith("_")]
        else:
            continue
        seen.add(id(item))
        for name, child_place, value in reversed(children):  # reversed: the stack pops them in order
            stack.append((f"{prefix}.{name}" if prefix else name, child_place, value))
    return found


def _name_collision(name: str, first: str, second: str) -> str:
    """Why two arrays cannot be named (the ValueError's message)."""
    return (f"two different arrays of the model would both be named {name!r} in its parameters and state dict: "
            f"{first} and {second}. A checkpoint would keep one of them and drop the other (or load one into "
            "both); rename a dict key or attribute so that no name part contains '.' (PyTorch refuses such names) "
            "and no two keys of a dict read the same as text (1 and '1')")


def get_parameters(model: Any) -> list[Tensor]:
    """The Tensors of ``named_parameters(model)`` as a list, in the same order."""
    return list(named_parameters(model).values())


def state_dict(model: Any) -> dict[str, np.ndarray]:
    """{dotted name: a copy of the parameter's (or buffer's) array}, in walk order."""
    return {name: np.array(_array(item)) for name, item in _named_state(model).items()}


def _array(item: Union[Tensor, np.ndarray]) -> np.ndarray:
    return item.data if isinstance(item, Tensor) else item


def load_state_dict(model: Any, state: Mapping[str, np.ndarray]) -> None:
    """Copy ``state``'s arrays into the model's parameters and buffers, keeping the model's dtype.

    ``state`` is a mapping of names to arrays (``state_dict(model)``, ``load(path)``); anything
    else, a path included, is a TypeError. Every key, shape and dtype, and that every target
    array is writable, is checked before anything is written, so a failed load leaves the
    model exactly as it was.
    """
    _check_state_mapping(model, state)
    items = _named_state(model)
    targets = {name: _array(item) for name, item in items.items()}
    missing = [name for name in targets if name not in state]
    unexpected = [name for name in state if name not in targets]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        raise KeyError("load_state_dict: " + "; ".join(problems) + "; the model was not changed")
    converted = {}
    for name, target in targets.items():
        value = np.asarray(state[name])
        if value.shape != target.shape:
            raise ValueError(
                f"load_state_dict: {name} has shape {value.shape} in the state dict but "
                f"{target.shape} in the model; the model was not changed"
            )
        if value.dtype.kind not in "biuf":
            raise TypeError(f"load_state_dict: {name} holds non-numeric data of dtype {value.dtype}")
        if not target.flags.writeable:
            raise ValueError(
                f"load_state_dict: {name} is backed by a read-only array (as np.frombuffer, np.load with "
                f"mmap_mode='r' or np.broadcast_to give), which cannot be loaded into; give the model a "
                f"writable copy (np.array(...)) first; the model was not changed"
            )
        converted[name] = value.astype(target.dtype, copy=False)
    for name, target in targets.items():
        target[...] = converted[name]
        item = items[name]
        if isinstance(item, Tensor):  # a graph built before the load raises at backward()
            item.note_in_place_change()


def _check_state_mapping(model: Any, state: Any) -> None:
    """Refuse a ``state`` that is not a mapping of names to arrays, saying what it is instead."""
    if isinstance(state, Mapping):
        return
    message = (f"load_state_dict needs a state dict (a mapping of names to arrays, from state_dict(model) "
               f"or load(path)), got a {type(state).__name__}")
    if isinstance(state, (str, os.PathLike)):
        message += "; to load a checkpoint file, read it first: load_state_dict(model, load(path))"
    elif isinstance(model, Mapping):
        message += " (are the arguments swapped? it is load_state_dict(model, state))"
    raise TypeError(message)


@contextlib.contextmanager
def unchanged_state(model: Any) -> Iterator[None]:
    """Run the ``with`` block, then put back every parameter and buffer of ``model`` that it changed.

    For code that only looks at a model (``summary``, the ONNX export) yet must call it: a
    ``batch_norm(..., training=True)`` updates its running statistics in every mode. A copy
    of the state (``state_dict``) is taken before the block; after it, whether it ended
    normally or not, each array whose bytes differ from its copy is written back in place:
    the arrays the model holds stay the same objects, and an unchanged (maybe read-only)
    array is not written. A parameter put back counts as changed in place
    (``note_in_place_change``), so a graph that saved it raises at backward(). Arrays the model
    does not hold as attributes (a global passed as a running mean) are not its state and
    are not seen here."""
    saved = state_dict(model)
    try:
        yield
    finally:
        for name, item in _named_state(model).items():
            array, before = _array(item), saved.get(name)
            if before is not None and array.shape == before.shape and array.tobytes() != before.tobytes():
                np.copyto(array, before)
                if isinstance(item, Tensor):
                    item.note_in_place_change()


# Linux: the "Umask:" line of this file (since Linux 4.7) gives the umask without changing it.
_PROC_STATUS = Path("/proc/self/status")


def _current_umask() -> int:
    """The process's umask, read without changing it where the platform allows.

    ``os.umask`` can only read the umask by setting another one and putting it back; for that
    moment every other thread creates its files with the wrong permissions. So Linux's
    /proc/self/status is read instead; only without it is ``os.umask`` used, setting the
    strictest mask (0o077) for that moment, so that other threads' files come out too private
    rather than world-writable.
    """
    try:
        with _PROC_STATUS.open() as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def _permissions_for(path: Path) -> int:
    """The mode a new file at ``path`` gets from ``open()``: an existing file's own mode, else
    0666 less the umask."""
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    return 0o666 & ~_current_umask()


def _refuse_directory(path: PathLike, target: Path) -> None:
    """Refuse a ``path`` that names a directory rather than a file to write: one that ends in a
    separator, "." or ".." (``Path`` drops a trailing "/" or "/.", so "checkpoints/" would
    silently become a file "checkpoints"), or one that is a directory (``target``, the path
    through any symlinks)."""
    text = os.fspath(path)
    separators = tuple(separator for separator in (os.sep, os.altsep) if separator)
    if text.endswith(separators) or os.path.basename(text) in (".", ".."):
        raise IsADirectoryError(errno.EISDIR, "the path names a directory, not a file to write "
                                "(remove the trailing separator, or add a file name)", text)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "the path is a directory, not a file; give a file path "
                                "(e.g. one inside it)", text)


def _sync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries (a rename in it) to disk; a no-op where the platform
    cannot open or sync a directory (Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def temporary_name_pattern(target_name: str) -> re.Pattern[str]:
    """The names ``atomic_file`` gives the temporary files of a file called ``target_name``:
    ``.<target_name>.<8 random characters>.<pid of the writing process>.tmp``.

    The pid comes last, after mkstemp's 8 random letters, digits or underscores, and a pid has
    at most 7 digits (Linux's largest is 4194304): so no other file's temporary matches, nor
    one written before pids were in the names (``.<name>.<8 random characters>.tmp``, whose
    last part has 8 characters)."""
    return re.compile(rf"\.{re.escape(target_name)}\.[a-z0-9_]{{8}}\.([1-9][0-9]{{0,6}})\.tmp")


def process_is_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine. True whenever that cannot be told:
    a process of another user (PermissionError), or Windows, where ``os.kill(pid, 0)`` would
    end the process instead of asking after it."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent; only whether the process exists is checked
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_abandoned_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files that ``atomic_file`` of ``target`` left behind in processes
    that were killed (kill -9, a power loss) before they could remove them; returns them.

    The rule, so that nothing else is ever removed: a file is removed only when its name is
    exactly this target's temporary name (``temporary_name_pattern``), it is a plain file
    (not a link or a directory), and the process whose pid the name holds is no longer
    running. A temporary being written by a live process (this one included) is left alone;
    so is one whose pid has since been reused (it stays until that process ends). Pids are
    per machine: a directory shared with another machine or container that writes the same
    file at the same moment is not protected (two writers of one file race anyway). Removing
    is best-effort: a file that cannot be removed is left, and the save goes on."""
    pattern = temporary_name_pattern(target.name)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or process_is_running(int(match.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # (gone already, or not ours to remove)
            pass
    return removed


def create_parent_directory(path: PathLike) -> None:
    """Make the missing directories above the file ``path``, right before it is written. They
    are made where ``atomic_file`` will write: above the file that ``path``'s symbolic links
    lead to, with ``..`` taken after them (``missing/../g.dot`` makes no ``missing/``)."""
    Path(os.path.realpath(path)).parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def atomic_file(path: PathLike) -> Iterator[BinaryIO]:
    """Create or replace the file ``path`` with what the ``with`` block writes, atomically.

    The block writes to a temporary file in the same directory. When it ends normally the
    file is flushed to disk (fsync), given the permissions any other new file would get (the
    umask) or those of the file it replaces, and renamed over ``path``; the directory is then
    synced too, so the rename itself survives a power loss. An interrupt, a kill or a full
    disk at any moment leaves the previous file (or none), never a broken one; an error or
    interrupt removes the temporary file. Only a hard kill (or a power loss) can leave the
    hidden ``.<name>.<random>.<pid>.tmp`` behind: the next ``atomic_file`` of the same path
    removes it once its process is gone (``remove_abandoned_temporaries``), before it writes.
    A symlink is followed: the file it points to is replaced and
    the link stays. A path that names a directory (an existing one, or one ending in a
    separator) is an IsADirectoryError naming it, before anything is written. Creating,
    syncing or renaming the file raises OSError naming ``path``; an error raised inside the
    block comes out as it is.
    """
    target = Path(os.path.realpath(path))  # through symlinks: replace the file, keep the link
    _refuse_directory(path, target)
    path = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory to save into", str(directory))
    permissions = _permissions_for(target)
    remove_abandoned_temporaries(target)  # (first: on a full disk, they may be what fills it)
    temporary: Optional[str] = None
    file: Optional[BinaryIO] = None
    block_finished = False
    try:  # (from before the temporary file exists: an interrupt at any point after removes it)
        try:
            descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}.tmp",
                                                     dir=directory)
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(path)) from None
        file = os.fdopen(descriptor, "wb")
        yield file
        block_finished = True
        file.flush()
        os.fsync(file.fileno())
        file.close()
        os.chmod(temporary, permissions)  # mkstemp made it private (0600)
        os.replace(temporary, target)
    except BaseException as error:
        if file is not None:
            with contextlib.suppress(OSError):  # (closing flushes what is buffered: on a full disk that
                file.close()                    # fails too, and must not hide the error being raised)
        elif temporary is not None:  # (interrupted between mkstemp and fdopen)
            os.close(descriptor)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if block_finished and isinstance(error, OSError):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    _sync_directory(directory)


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> None:
    """``atomic_file`` filled by ``write(file)``. A failed write raises OSError naming
    ``path``; any other error from ``write`` is raised as it is."""
    with atomic_file(path) as file:
        try:
            write(file)
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error


NPY_SUFFIX = ".npy"  # an .npz holds each array as the zip member "<key>.npy"


def _checked_arrays(arrays: Mapping[Any, Any]) -> dict[str, np.ndarray]:
    """``arrays`` as numpy arrays, refusing what ``load`` could not give back unchanged."""
    checked: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str):
            raise TypeError(f"save: key {key!r} is not a string ({type(key).__name__}); keys must be strings")
        if "\0" in key:
            raise ValueError(f"save: key {key!r} holds a NUL character, which the .npz format (a zip archive) cuts the name at")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"save: key {key!r} is not valid Unicode text (a lone surrogate); it cannot name an .npz entry") from None
        try:
            array = np.asarray(_array(value))
        except ValueError as error:
            raise ValueError(f"save: {key!r} is not an array: {error}") from None
        if array.dtype.hasobject:
            raise ValueError(f"save: {key!r} has dtype {array.dtype} (Python objects), which only pickle can store and "
                             "load refuses (unsafe); save numbers, booleans or strings")
        checked[key] = array
    for key in checked:
        if key.endswith(NPY_SUFFIX) and key[:-len(NPY_SUFFIX)] in checked:
            stem = key[:-len(NPY_SUFFIX)]
            raise ValueError(f"save: keys {stem!r} and {key!r} cannot both be saved: np.load (and so load) "
                             f"would give the array of {stem!r} for {key!r} too")
    return checked


def _write_npz(file: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """The .npz format, as ``np.savez`` writes it: an uncompressed zip of "<key>.npy" members.
    Written here because ``np.savez(file, **arrays)`` cannot take the keys "file" and
    "allow_pickle" (its own parameters)."""
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(key + NPY_SUFFIX, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def save(arrays: Union[Mapping[str, np.ndarray], Any], path: PathLike) -> None:
    """Write a state dict (or a model's) to an .npz file atomically (``atomic_write``).

    Any string key works (a key "file" or "allow_pickle" too); the values are arrays (or
    Tensors) of numbers, booleans or strings. Everything is checked before anything is
    written: a non-string key, a key ``load`` could not give back, or an object array
    (which would need pickle) is a TypeError/ValueError naming the key. The data goes to a
    temporary file in the same directory, is flushed to disk and renamed over ``path`` (the
    file a symlink points to; the link stays), and the directory is synced: an interrupted
    save, a kill or a full disk leaves the previous file (or none), never a broken one. The
    file gets the permissions any other new file would (the umask), or keeps those of the
    file it replaces. A failed write raises OSError naming ``path``.
    """
    if not isinstance(path, (str, os.PathLike)):
        swapped = " (are the arguments swapped? it is save(model or state, path))" if isinstance(arrays, (str, os.PathLike)) else ""
        raise TypeError(f"save needs a file path (a str or os.PathLike) as its second argument, got {type(path).__name__}{swapped}")
    if not isinstance(arrays, Mapping):
        arrays = state_dict(arrays)
    checked = _checked_arrays(arrays)
    atomic_write(path, lambda file: _write_npz(file, checked))


# The first bytes of the files a checkpoint path may wrongly point at.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an .npz), an empty one
NPY_SIGNATURE = b"\x93NUMPY"
PICKLE_PROTOCOL_MARK = 0x80  # pickle protocol 2+ (torch.save, pickle.dump) starts with it


def _not_an_npz(path: Path, head: bytes) -> str:
    """Why ``path``, starting with ``head``, is not an .npz archive, in words."""
    if head.startswith(NPY_SIGNATURE):
        return f"{path} is a single .npy array, not an .npz archive of named arrays"
    if head[:1] == bytes([PICKLE_PROTOCOL_MARK]):
        return f"{path} is a Python pickle (as torch.save or pickle.dump write), not an .npz archive; refusing to unpickle it (unsafe)"
    if not head:
        return f"{path} is empty, not an .npz archive"
    for cut in range(4):  # the 64 bytes read may end inside a multi-byte character
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return f"{path} is not an .npz archive: it is a text file starting with {text[:40]!r}"
    return f"{path} is not an .npz archive: it starts with the bytes {head[:8].hex(' ')}, not a zip signature"


def load(path: PathLike) -> dict[str, np.ndarray]:
    """Read an .npz file written by ``save``. Pickled objects are refused, never unpickled.

    Raises FileNotFoundError when there is no file, IsADirectoryError when ``path`` is a
    directory, and ValueError naming the file and what it is instead (text, an .npy array, a
    pickle, a corrupt archive, object arrays) otherwise.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a checkpoint file", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    with path.open("rb") as file:
        head = file.read(64)
    if not head.startswith(ZIP_SIGNATURES):
        raise ValueError(_not_an_npz(path, head))
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):  # an entry holds Python objects (an object array)
            raise ValueError(f"{path} holds pickled Python objects (object arrays); refusing to load it (unsafe)") from None
        raise ValueError(f"{path} is not a valid checkpoint: {error}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a valid .npz checkpoint (corrupt or truncated): {error}") from None


# ---------------------------------------------------------------------------
# Layers: small callables holding their parameters (Tensors) and buffers (numpy arrays)
# ---------------------------------------------------------------------------


def _uniform_parameter(shape: tuple[int, ...], fan_in: int, dtype, order: str = "C") -> Tensor:
    """U(−1/√fan_in, 1/√fan_in) from the package generator: PyTorch's default initialisation
    of Linear and Conv2d (kaiming-uniform with a = √5 for weights, the same bound for biases),
    in memory ``order`` ("C" or "F")."""
    bound = 1 / np.sqrt(fan_in)
    return Tensor(generator().uniform(-bound, bound, size=shape).astype(dtype, order=order), requires_grad=True)


def _layer_input(layer: str, x: Any) -> Tensor:
    """A layer's input as a Tensor: a numpy array becomes a constant one (``Tensor(x)``, its dtype
    kept), as ``x @ weight`` makes it for ``Linear``; anything else is a TypeError naming ``layer``."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    raise TypeError(f"{layer} expects a Tensor or a numpy array, got a {type(x).__name__}")


def _positive_int(layer: str, name: str, value: Any) -> int:
    """``value`` as an int if it is a Python or numpy integer >= 1 (not a bool), else an error naming it."""
    if not is_int(value):
        raise TypeError(f"{layer}: {name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def _float_dtype(layer: str, dtype: Any) -> np.dtype:
    """The parameters' dtype: float32 or float64, the only dtypes that can hold gradients."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.type not in (np.float32, np.float64):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype!r}")
    return resolved


class Linear:
    """y = x @ weight + bias: (…, in_features) → (…, out_features).

    ``weight`` has shape (in_features, out_features), as the seed networks' dense layers
    (PyTorch stores (out, in) and computes x @ weightᵀ), in column-major order, which is
    PyTorch's (out, in) in memory (the faster layout here: ``kernels.column_major``); ``bias`` (out_features,).
    Initialisation as PyTorch: both U(−1/√in_features, 1/√in_features). The sizes are
    positive Python or numpy ints (not bools).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        in_features = _positive_int("Linear", "in_features", in_features)
        out_features = _positive_int("Linear", "out_features", out_features)
        dtype = _float_dtype("Linear", dtype)
        self.in_features, self.out_features = in_features, out_features
        # (column-major: PyTorch's (out, in) in memory, the faster layout here: kernels.column_major)
        self.weight = _uniform_parameter((in_features, out_features), in_features, dtype, order="F")
        self.bias = _uniform_parameter((out_features,), in_features, dtype) if bias else None

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        name = f"Linear({self.in_features}, {self.out_features})"
        x = _layer_input(name, x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{name} expects inputs of shape (…, {self.in_features}), got {x.shape}")
        return x.matmul(self.weight, bias=self.bias)  # (one op with its bias: the seed's matrix multiply and add)

    def __repr__(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None})"


class Conv2d:
    """2-D convolution layer: (N, in_channels, H, W) → (N, out_channels, Ho, Wo).

    ``weight`` (out_channels, in_channels/groups, kh, kw) and ``bias`` (out_channels,), one
    per output channel, as PyTorch; calls ``x.conv2d(weight, bias, stride, padding, dilation,
    groups)``. Initialisation as PyTorch: both U(−1/√fan_in, 1/√fan_in), fan_in =
    in_channels/groups · kh · kw. Sizes are Python or numpy ints (not bools), the
    pair-valued ones an int or a pair: every argument is checked here, before any work.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True, dtype=np.float32):
        in_channels = _positive_int("Conv2d", "in_channels", in_channels)
        out_channels = _positive_int("Conv2d", "out_channels", out_channels)
        groups = _positive_int("Conv2d", "groups", groups)
        kernel_h, kernel_w = int_pair("Conv2d: kernel_size", kernel_size, minimum=1)
        int_pair("Conv2d: stride", stride, minimum=1)
        int_pair("Conv2d: padding", padding, minimum=0)
        int_pair("Conv2d: dilation", dilation, minimum=1)
        dtype = _float_dtype("Conv2d", dtype)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                f"divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        fan_in = in_channels // groups * kernel_h * kernel_w
        self.weight = _uniform_parameter((out_channels, in_channels // groups, kernel_h, kernel_w), fan_in, dtype)
        self.bias = _uniform_parameter((out_channels,), fan_in, dtype) if bias else None

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        name = f"Conv2d({self.in_channels}, {self.out_channels}, …)"
        x = _layer_input(name, x)
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{name} expects inputs of shape (N, {self.in_channels}, H, W), or "
                             f"({self.in_channels}, H, W) for one image, got {x.shape}")
        return x.conv2d(self.weight, self.bias, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, groups=self.groups)

    def __repr__(self) -> str:
        """As PyTorch's: the sizes, then the options that are not their defaults."""
        kernel, stride = tuple(self.weight.shape[2:]), int_pair("stride", self.stride, minimum=1)
        padding, dilation = int_pair("padding", self.padding, minimum=0), int_pair("dilation", self.dilation, minimum=1)
        text = f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={kernel}, stride={stride}"
        if padding != (0, 0):
            text += f", padding={padding}"
        if dilation != (1, 1):
            text += f", dilation={dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + (", bias=False)" if self.bias is None else ")")


class BatchNorm2d:
    """Batch normalization of (N, num_features, H, W) per channel: y = x̂ · weight + bias.

    While ``Tensor.training`` it normalizes with the batch's statistics and updates the
    running ones (``running_mean``, ``running_var``: numpy arrays, i.e. buffers, not
    parameters: saved in the state dict, never seen by the optimizer); otherwise it
    normalizes with the running statistics. ``weight`` starts at ones, ``bias`` at zeros,
    ``running_mean`` at zeros and ``running_var`` at ones, as PyTorch. ``eps`` must be a
    finite number > 0 and ``momentum`` one in [0, 1] (PyTorch's momentum=None, a cumulative
    average, is not supported).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32):
        num_features = _positive_int("BatchNorm2d", "num_features", num_features)
        check_batch_norm_numbers("BatchNorm2d", momentum, eps)
        dtype = _float_dtype("BatchNorm2d", dtype)
        self.num_features, self.eps, self.momentum = num_features, float(eps), float(momentum)
        self.weight = Tensor(np.ones(num_features, dtype=dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(num_features, dtype=dtype), requires_grad=True)
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        name = f"BatchNorm2d({self.num_features})"
        x = _layer_input(name, x)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"{name} expects inputs of shape (N, {self.num_features}, H, W), got {x.shape}")
        return x.batch_norm(self.weight, self.bias, self.running_mean, self.running_var,
                            momentum=self.momentum, eps=self.eps)

    def __repr__(self) -> str:
        return f"BatchNorm2d({self.num_features}, eps={self.eps}, momentum={self.momentum})"


class LayerNorm:
    """Layer normalization over the last axes, those of ``normalized_shape``, as PyTorch's
    ``nn.LayerNorm``: ``x.layer_norm(normalized_shape, weight, bias, eps)`` with ``weight``
    starting at ones and ``bias`` at zeros, both of shape ``normalized_shape``
    (``elementwise_affine=False``: neither; ``bias=False``: no bias)."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=np.float32):
        self.normalized_shape = normalized_shape_argument("LayerNorm", normalized_shape)
        check_eps("LayerNorm", eps)
        dtype = _float_dtype("LayerNorm", dtype)
        self.eps = float(eps)
        self.weight = Tensor(np.ones(self.normalized_shape, dtype=dtype), requires_grad=True) if elementwise_affine else None
        self.bias = Tensor(np.zeros(self.normalized_shape, dtype=dtype), requires_grad=True) \
            if elementwise_affine and bias else None

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return _layer_input("LayerNorm", x).layer_norm(self.normalized_shape, self.weight, self.bias, self.eps)

    def __repr__(self) -> str:
        bias = ", bias=False" if self.weight is not None and self.bias is None else ""
        return f"LayerNorm({self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}{bias})"


class Embedding:
    """A table of ``num_embeddings`` vectors of ``embedding_dim`` numbers, looked up by index, as
    PyTorch's ``nn.Embedding``: indices of any shape (ints 0 .. num_embeddings − 1, a Tensor, an
    array or a list) give vectors of shape indices.shape + (embedding_dim,). ``weight`` starts
    N(0, 1), as PyTorch's. The lookup is the Embedding op (``ops.Embedding``), whose VJP adds
    each row's gradients (an index used twice gets both) and which takes the indices as an
    input: a model that embeds its input exports to ONNX as a Gather of the file's input. No
    ``padding_idx`` or ``max_norm``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32):
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        dtype = _float_dtype("Embedding", dtype)
        weight = generator().standard_normal((self.num_embeddings, self.embedding_dim)).astype(dtype)
        self.weight = Tensor(weight, requires_grad=True)

    def __call__(self, indices: Union[Tensor, np.ndarray, list]) -> Tensor:
        array = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if array.size == 0 and array.dtype.kind == "f":  # (np.asarray([]) is float64: no index at all)
            array = array.astype(np.intp)
        if array.dtype.kind not in "iu":
            raise TypeError(f"Embedding expects integer indices, got dtype {array.dtype}")
        if array.size and (array.min() < 0 or array.max() >= self.num_embeddings):
            wrong = array[(array < 0) | (array >= self.num_embeddings)].flat[0]
            raise IndexError(f"Embedding: index {wrong} is out of range for {self.num_embeddings} embeddings "
                             f"(0..{self.num_embeddings - 1})")
        indices = indices if isinstance(indices, Tensor) and indices.data is array else Tensor(array)
        return ops.Embedding.apply(self.weight, indices)

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


# ---------------------------------------------------------------------------
# A model as a list of layers: Sequential, and the layers that hold no parameters
# ---------------------------------------------------------------------------


class Sequential:
    """Layers applied in order, as PyTorch's ``nn.Sequential``: ``Sequential(a, b, c)(x)`` is
    ``c(b(a(x)))``; ``Sequential({"conv": a, "relu": b})`` names its layers (any mapping, in
    its order, as PyTorch's ``OrderedDict``).

    Layer i is held as the attribute "i" (or under its name), so ``named_parameters`` and
    ``state_dict`` call its tensors "0.weight", "3.bias", … as PyTorch does, and
    "features.0.weight" inside a model that holds it as ``self.features``. A layer is any
    callable from one tensor to one tensor: the layers of this module, a model of your own, or
    a function such as ``Tensor.relu``. Tensors are found in a layer's attributes only: a
    function that uses a layer it does not hold (``lambda t: linear(t).relu()``) hides that
    layer's parameters from the optimizer and the state dict (a bound method of an object
    holding parameters, ``model.forward``, is refused for that reason; pass ``model``).
    ``model[i]`` is a layer; ``model[i:j]`` a Sequential of the same layer objects under their
    names; ``len`` and iteration as PyTorch's. ``append`` names the new layer by its position,
    str(len(model)), as PyTorch's, but refuses that name where it is taken (PyTorch replaces
    the layer). A name is a non-empty string without a dot that does not start with "_" (which
    would hide the layer's parameters) and is neither taken nor the name of a method.
    """

    def __init__(self, *layers: Any):
        self._names: list[str] = []
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            for name, layer in layers[0].items():
                self._add(name, layer)
        else:
            for layer in layers:
                self._add(str(len(self._names)), layer)

    def _add(self, name: Any, layer: Any) -> None:
        """Hold ``layer`` as the attribute ``name``, after the checks the class docstring lists."""
        if not isinstance(name, str):
            raise TypeError(f"Sequential: a layer's name must be a string, got {name!r}")
        if not name or "." in name or name.startswith("_"):
            raise ValueError(f"Sequential: a layer's name must be a non-empty string without a dot that does "
                             f"not start with '_', got {name!r}")
        if name in self._names or name in dir(type(self)):
            taken = "another layer's name" if name in self._names else "the name of a method"
            raise ValueError(f"Sequential: the layer name {name!r} is already {taken}")
        if isinstance(layer, type):
            raise TypeError(f"Sequential: layer {name!r} is the class {layer.__name__}, not a layer; "
                            f"make one: {layer.__name__}(...)")
        if not callable(layer):
            raise TypeError(f"Sequential: layer {name!r} must be callable (a layer, a model or a function), "
                            f"got {layer!r} of type {type(layer).__name__}")
        if inspect.ismethod(layer) and named_parameters(layer.__self__):
            raise TypeError(f"Sequential: layer {name!r} is a method of an object that holds parameters, which "
                            f"the Sequential would not find (no optimizer or state dict would see them); "
                            f"pass the object itself, a callable layer")
        setattr(self, name, layer)
        self._names.append(name)

    def append(self, layer: Layer) -> "Sequential":
        """Add ``layer`` at the end, named str(len(self)) (see the class docstring); returns the Sequential."""
        self._add(str(len(self._names)), layer)
        return self

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Union[Tensor, np.ndarray]:
        """Each layer applied to the output of the one before; an array input becomes a Tensor
        first (a Sequential with no layers returns its input as it is). A layer that returns
        anything but a Tensor is a TypeError: a numpy array would cut the graph, and the layers
        before it would never get a gradient."""
        if not self._names:
            return x
        x = _layer_input("Sequential", x)
        for name in self._names:
            x = getattr(self, name)(x)
            if not isinstance(x, Tensor):
                raise TypeError(f"Sequential: layer {name!r} returned a {type(x).__name__}, not a Tensor (a numpy "
                                "array would cut the graph: the layers before it would get no gradient)")
        return x

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[Any]:
        return (getattr(self, name) for name in self._names)

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            return Sequential({name: getattr(self, name) for name in self._names[index]})
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"Sequential indices must be ints or slices, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"Sequential index {index} is out of range for {len(self)} layers")
        return getattr(self, self._names[index])

    def __repr__(self) -> str:
        """As PyTorch's: one line per layer, ``(name): repr``, nested ones indented."""
        lines = [f"  ({name}): " + repr(getattr(self, name)).replace("\n", "\n  ") for name in self._names]
        return "Sequential(\n" + "\n".join(lines) + "\n)" if lines else "Sequential()"


class _ElementWiseLayer:
    """A layer that applies one Tensor method without options, named by ``method``."""

    method = ""

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return getattr(_layer_input(type(self).__name__, x), self.method)()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_ElementWiseLayer):
    """``x.relu()`` as a layer."""

    method = "relu"


class LeakyReLU:
    """``x.leaky_relu(negative_slope)`` as a layer (the slope a number, checked here)."""

    def __init__(self, negative_slope: float = 0.01):
        check_is_number("LeakyReLU", "negative_slope", negative_slope)
        self.negative_slope = float(negative_slope)

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return _layer_input("LeakyReLU", x).leaky_relu(self.negative_slope)

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class GELU:
    """``x.gelu(approximate)`` as a layer: "none" (PyTorch's default, x · Φ(x)) or "tanh"."""

    def __init__(self, approximate: str = "none"):
        if not isinstance(approximate, str) or approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return _layer_input("GELU", x).gelu(self.approximate)

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"


class Sigmoid(_ElementWiseLayer):
    """``x.sigmoid()`` as a layer."""

    method = "sigmoid"


class Tanh(_ElementWiseLayer):
    """``x.tanh()`` as a layer."""

    method = "tanh"


class _AlongAxisLayer:
    """A layer that applies one Tensor method along the axis ``dim``, named by ``method``.
    ``dim`` has no default: PyTorch's, None, picks an axis from the input's rank with a
    deprecation warning."""

    method = ""

    def __init__(self, dim: int):
        self.dim = _int_argument(type(self).__name__, "dim", dim)

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return getattr(_layer_input(type(self).__name__, x), self.method)(self.dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class Softmax(_AlongAxisLayer):
    """``x.softmax(dim)`` as a layer."""

    method = "softmax"


class LogSoftmax(_AlongAxisLayer):
    """``x.log_softmax(dim)`` as a layer."""

    method = "log_softmax"


class Flatten:
    """``x.flatten(start_dim, end_dim)`` as a layer: by default every axis but the batch's."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim = _int_argument("Flatten", "start_dim", start_dim)
        self.end_dim = _int_argument("Flatten", "end_dim", end_dim)

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return _layer_input("Flatten", x).flatten(self.start_dim, self.end_dim)

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


class MaxPool2d:
    """``x.max_pool2d(kernel_size, stride)`` as a layer (``stride`` None: the kernel size).

    ``padding`` must be 0: PyTorch pads a max pool with −∞, which this package's pools do not
    do (``Tensor.pad_max_pool2d`` pads with zeros, as the seed network)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: Optional[int | tuple[int, int]] = None,
                 padding: int | tuple[int, int] = 0):
        self.kernel_size, self.stride = pool_geometry(kernel_size, stride, "MaxPool2d")
        if int_pair("MaxPool2d: padding", padding, minimum=0) != (0, 0):
            raise ValueError(f"MaxPool2d: padding must be 0, got {padding!r}: PyTorch pads a max pool with -inf, "
                             "which is not supported; Tensor.pad_max_pool2d pads with zeros")

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return _layer_input("MaxPool2d", x).max_pool2d(self.kernel_size, self.stride)

    def __repr__(self) -> str:
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride})"


class AvgPool2d:
    """``x.avg_pool2d(kernel_size, stride)`` as a layer, after zero ``padding`` on each side of
    the last two axes: PyTorch's default ``count_include_pad=True``, where the padding's zeros
    count in each window's mean."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: Optional[int | tuple[int, int]] = None,
                 padding: int | tuple[int, int] = 0):
        self.kernel_size, self.stride = pool_geometry(kernel_size, stride, "AvgPool2d")
        self.padding = int_pair("AvgPool2d: padding", padding, minimum=0)
        if any(2 * pad > size for pad, size in zip(self.padding, self.kernel_size)):
            raise ValueError(f"AvgPool2d: padding {padding!r} must be at most half the kernel size {kernel_size!r}, "
                             "as PyTorch's (a window could hold padding only)")

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        x = _layer_input("AvgPool2d", x)
        if self.padding != (0, 0):  # (checked here, so that an error names the shape given, not the padded one)
            check_pool2d("AvgPool2d", x.shape, (1, 1))  # (the rank)
            rows, columns = self.padding
            if self.kernel_size[0] > x.shape[-2] + 2 * rows or self.kernel_size[1] > x.shape[-1] + 2 * columns:
                raise ValueError(f"AvgPool2d kernel {self.kernel_size[0]}x{self.kernel_size[1]} is larger than the input "
                                 f"{x.shape[-2]}x{x.shape[-1]} padded by {self.padding}")
            x = x.pad(((0, 0),) * (x.ndim - 2) + ((rows, rows), (columns, columns)))
        return x.avg_pool2d(self.kernel_size, self.stride)

    def __repr__(self) -> str:
        return f"AvgPool2d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class Dropout:
    """``x.dropout(p)`` as a layer: active only while ``Tensor.training`` (``train_mode()``)."""

    def __init__(self, p: float = 0.5):
        check_dropout(p)
        self.p = p

    def __call__(self, x: Union[Tensor, np.ndarray]) -> Tensor:
        return _layer_input("Dropout", x).dropout(self.p)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


def _int_argument(layer: str, name: str, value: Any) -> int:
    """``value`` as an int if it is a Python or numpy integer (not a bool), else a TypeError naming it."""
    if not is_int(value):
        raise TypeError(f"{layer}: {name} must be an int, got {value!r}")
    return int(value)
