"""Parameters of a model: discovery by walking attributes, state dicts, and safe .npz files.

A model is any object whose attributes (and the lists, tuples and dicts among them) hold
Tensors; ``named_parameters`` names each by its dotted attribute path, e.g.
``conv1.weight`` or ``blocks.0.bias``. Attributes whose names start with ``_`` are private
and skipped.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from tinygrad_cnn.tensor import Tensor

PathLike = Union[str, "os.PathLike[str]"]


def named_parameters(model: Any) -> dict[str, Tensor]:
    """Every Tensor reachable from ``model``'s attributes, keyed by dotted path, in a
    stable order (attribute definition order, list order, dict insertion order)."""
    found: dict[str, Tensor] = {}
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", model)]
    while stack:
        prefix, item = stack.pop()
        if isinstance(item, Tensor):
            if id(item) not in seen:  # a shared tensor is listed once, under its first name
                seen.add(id(item))
                found[prefix] = item
            continue
        if id(item) in seen:
            continue
        if isinstance(item, dict):
            children = [(str(key), value) for key, value in item.items()]
        elif isinstance(item, (list, tuple)):
            children = [(str(index), value) for index, value in enumerate(item)]
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            children = [(name, value) for name, value in vars(item).items() if not name.startswith("_")]
        else:
            continue
        seen.add(id(item))
        for name, value in reversed(children):  # reversed: the stack pops them in order
            stack.append((f"{prefix}.{name}" if prefix else name, value))
    return found


def get_parameters(model: Any) -> list[Tensor]:
    """The Tensors of ``named_parameters(model)`` as a list, in the same order."""
    return list(named_parameters(model).values())


def state_dict(model: Any) -> dict[str, np.ndarray]:
    """{dotted name: a copy of the parameter's array}."""
    return {name: tensor.data.copy() for name, tensor in named_parameters(model).items()}


def load_state_dict(model: Any, state: Mapping[str, np.ndarray]) -> None:
    """Copy ``state``'s arrays into the model's parameters, keeping the model's dtype.

    Every key and shape is checked before anything is written, so a failed load leaves
    the model exactly as it was.
    """
    parameters = named_parameters(model)
    missing = [name for name in parameters if name not in state]
    unexpected = [name for name in state if name not in parameters]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        raise KeyError("load_state_dict: " + "; ".join(problems) + "; the model was not changed")
    converted = {}
    for name, tensor in parameters.items():
        value = np.asarray(state[name])
        if value.shape != tensor.shape:
            raise ValueError(
                f"load_state_dict: {name} has shape {value.shape} in the state dict but "
                f"{tensor.shape} in the model; the model was not changed"
            )
        if value.dtype.kind not in "biuf":
            raise TypeError(f"load_state_dict: {name} holds non-numeric data of dtype {value.dtype}")
        converted[name] = value.astype(tensor.dtype, copy=False)
    for name, tensor in parameters.items():
        tensor.data[...] = converted[name]


def _permissions_for(path: Path) -> int:
    """The mode a new file at ``path`` gets from ``open()``: an existing file's own mode, else
    0666 less the umask (read once, then put back: Python has no other way to read it)."""
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def save(arrays: Union[Mapping[str, np.ndarray], Any], path: PathLike) -> None:
    """Write a state dict (or a model's) to an .npz file atomically.

    The data goes to a temporary file in the same directory, is flushed to disk and then
    renamed over ``path``: an interrupted save leaves the previous file (or none), never a
    broken one. The file gets the permissions any other new file would (the umask), or keeps
    those of the file it replaces. A failed write raises OSError naming ``path``.
    """
    if not isinstance(arrays, Mapping):
        arrays = state_dict(arrays)
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory to save into", str(directory))
    permissions = _permissions_for(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **{name: np.asarray(value) for name, value in arrays.items()})
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, permissions)  # mkstemp made it private (0600)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


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

    Raises FileNotFoundError when there is no file, and ValueError naming the file and what it
    is instead (text, an .npy array, a pickle, a corrupt archive, object arrays) otherwise.
    """
    path = Path(path)
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
