"""Parameters of a model: discovery by walking attributes, state dicts, and safe .npz files.

A model is any object whose attributes (and the lists, tuples and dicts among them) hold
Tensors; ``named_parameters`` names each by its dotted attribute path, e.g.
``conv1.weight`` or ``blocks.0.bias``. Attributes whose names start with ``_`` are private
and skipped.
"""

from __future__ import annotations

import os
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


def save(arrays: Union[Mapping[str, np.ndarray], Any], path: PathLike) -> None:
    """Write a state dict (or a model's) to an .npz file atomically.

    The data goes to a temporary file in the same directory, is flushed to disk and then
    renamed over ``path``: an interrupted save leaves the previous file (or none), never a
    broken one.
    """
    if not isinstance(arrays, Mapping):
        arrays = state_dict(arrays)
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **{name: np.asarray(value) for name, value in arrays.items()})
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: PathLike) -> dict[str, np.ndarray]:
    """Read an .npz file written by ``save``. Pickled objects are refused, never unpickled."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise ValueError(f"{path} holds pickled Python objects; refusing to load it (unsafe)") from None
        raise ValueError(f"{path} is not a valid checkpoint: {error}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a valid .npz checkpoint (corrupt or truncated): {error}") from None
