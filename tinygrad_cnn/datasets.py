"""MNIST: the IDX file reader, download with checksums, the cache directory, and batching.

    x_train, y_train, x_test, y_test = mnist()        # uint8 N,1,28,28 and int64 N
    for images, labels in batches(x_train, y_train, 128, rng=0):
        ...

Where the files live
    ``mnist(root)`` reads the four standard IDX files from ``root``; with no root it uses
    ``$TINYGRAD_CNN_DATA`` if set, else ``$XDG_CACHE_HOME/tinygrad_cnn/mnist`` or
    ``~/.cache/tinygrad_cnn/mnist``. Each file may be gzip-compressed (``.gz``, preferred
    when both exist) or raw. Any directory holding the four files in the same layout works
    (Fashion-MNIST, KMNIST, ...): files already present are validated for their structure,
    not their checksums.

Downloading
    Missing files are fetched as ``.gz`` from the ``MIRRORS`` in turn. Each download goes to
    a temporary file in the target directory, is checked against ``SHA256`` and only then
    renamed into place, so an interrupted or corrupt download never leaves a file under its
    final name.

The IDX format
    A big-endian 32-bit magic number ``0x0000TTDD`` (two zero bytes, the data type TT,
    0x08 = unsigned byte, and the number of dimensions DD), then one big-endian 32-bit size
    per dimension, then the values in row-major order. MNIST images are ``0x00000803``
    (ubyte, 3-D: N x 28 x 28) and labels ``0x00000801`` (ubyte, 1-D: N).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import math
import os
import sys
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence, Union

import numpy as np

__all__ = [
    "MIRRORS",
    "SHA256",
    "MNIST_FILES",
    "IDXFormatError",
    "MNISTFormatError",
    "DownloadError",
    "read_idx",
    "mnist",
    "default_root",
    "download_files",
    "batches",
]

PathLike = Union[str, "os.PathLike[str]"]

# Tried in this order; each is a base URL the file name is appended to.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# SHA-256 of the original gzip files; enforced on every download (any mirror, even plain http).
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# The four files' base names (without .gz), in the order mnist() returns their arrays.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
MNIST_FILES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

IMAGES_MAGIC = 0x00000803  # ubyte, 3 dimensions
LABELS_MAGIC = 0x00000801  # ubyte, 1 dimension
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10

DATA_ENVIRONMENT_VARIABLE = "TINYGRAD_CNN_DATA"

# IDX data-type byte -> the numpy dtype of the values as stored (big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

GZIP_MAGIC = b"\x1f\x8b"
DOWNLOAD_CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_SECONDS = 30.0


# ----------------------------------------------------------------------------- errors


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file. ``str(error)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: PathLike, problem: str) -> None:
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = Path(path)
        self.problem = problem


class MNISTFormatError(ValueError):
    """Well-formed IDX files that do not make an MNIST-layout dataset
    (wrong image size, image and label counts that differ, labels outside 0..9)."""


class DownloadError(RuntimeError):
    """Some dataset files could not be downloaded from any mirror.

    Attributes: ``directory`` (where the files belong) and ``missing`` (their names).
    """

    def __init__(self, message: str, directory: Path, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.directory = directory
        self.missing = list(missing)


class _BadDownload(Exception):
    """A download that arrived but must not be kept (short, or wrong checksum)."""


# ----------------------------------------------------------------------------- IDX reader


def _describe_magic(magic: int) -> str:
    """``0x00000803`` -> ``"ubyte, 3 dimensions"``."""
    type_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    type_names = {0x08: "ubyte", 0x09: "byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}
    type_name = type_names.get(type_code, f"unknown type 0x{type_code:02x}")
    return f"{type_name}, {ndim} dimension{'s' if ndim != 1 else ''}"


def _read_file_bytes(path: Path) -> bytes:
    """The file's content, decompressed when its name ends in ``.gz``."""
    try:
        with open(path, "rb") as file:
            content = file.read()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "IDX file not found", os.fspath(path)) from None

    if path.suffix.lower() != ".gz":
        return content
    if content[:2] != GZIP_MAGIC:
        found = f"0x{content[:2].hex()}" if len(content) >= 2 else f"only {len(content)} byte(s)"
        raise IDXFormatError(
            path,
            f"named .gz but is not gzip-compressed (starts with {found}, not the gzip magic 0x1f8b); "
            "if it is a raw IDX file, remove the .gz from its name",
        )
    try:
        return gzip.decompress(content)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise IDXFormatError(path, f"corrupt or truncated gzip data ({error})") from error


def read_idx(path: PathLike, expected_magic: Optional[int] = None) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed when its name ends in ``.gz``).

    Args:
        path: the file.
        expected_magic: if given, the file's magic number must equal it
            (e.g. ``0x00000803`` for MNIST images, ``0x00000801`` for labels).

    Returns:
        A new, writable array with the header's shape, in native byte order
        (``uint8`` for the MNIST files; the other IDX types map to
        int8, int16, int32, float32, float64).

    Raises:
        FileNotFoundError: the file does not exist (the error names the path).
        IDXFormatError: (a ``ValueError``) naming the path and the problem: a ``.gz`` file that
            is not gzip or is corrupt, a bad or unexpected magic number, an unknown data type,
            an incomplete header, or a payload whose size differs from what the header declares.
    """
    path = Path(path)
    content = _read_file_bytes(path)

    if len(content) < 4:
        raise IDXFormatError(path, f"incomplete header: file has {len(content)} bytes, fewer than the 4-byte magic number")
    magic = int.from_bytes(content[:4], "big")
    type_code, ndim = content[2], content[3]
    if content[:2] != b"\x00\x00":
        hint = " (the file looks gzip-compressed: name it .gz)" if content[:2] == GZIP_MAGIC else ""
        raise IDXFormatError(path, f"bad magic number 0x{magic:08x}: an IDX file starts with two zero bytes{hint}")
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02x}" for code in IDX_DTYPES)
        raise IDXFormatError(path, f"bad magic number 0x{magic:08x}: unknown data type byte 0x{type_code:02x} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(path, f"bad magic number 0x{magic:08x}: declares 0 dimensions")
    if expected_magic is not None and magic != expected_magic:
        raise IDXFormatError(
            path,
            f"bad magic number 0x{magic:08x} ({_describe_magic(magic)}), "
            f"expected 0x{expected_magic:08x} ({_describe_magic(expected_magic)})",
        )

    header_bytes = 4 + 4 * ndim
    if len(content) < header_bytes:
        raise IDXFormatError(
            path,
            f"incomplete header: {ndim} dimensions need a {header_bytes}-byte header "
            f"but the file has only {len(content)} bytes",
        )
    shape = tuple(int.from_bytes(content[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(ndim))

    dtype = IDX_DTYPES[type_code]
    declared_bytes = math.prod(shape) * dtype.itemsize
    payload_bytes = len(content) - header_bytes
    if payload_bytes != declared_bytes:
        dimensions = "x".join(str(size) for size in shape)
        value_size = "" if dtype.itemsize == 1 else f" values x {dtype.itemsize} bytes"
        problem = "truncated" if payload_bytes < declared_bytes else "trailing bytes after the data"
        raise IDXFormatError(
            path,
            f"payload has {payload_bytes} bytes but header declares {dimensions}{value_size} = {declared_bytes} ({problem})",
        )

    values = np.frombuffer(content, dtype=dtype, count=math.prod(shape), offset=header_bytes)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


# ----------------------------------------------------------------------------- where the files live


def default_root() -> Path:
    """The directory ``mnist()`` uses when given no root.

    ``$TINYGRAD_CNN_DATA`` if set (and not empty); else ``$XDG_CACHE_HOME/tinygrad_cnn/mnist``
    if that variable holds an absolute path (as the XDG spec requires); else
    ``~/.cache/tinygrad_cnn/mnist``.
    """
    data_directory = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    if data_directory:
        return Path(data_directory).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME")
    if cache_home and os.path.isabs(cache_home):
        return Path(cache_home) / "tinygrad_cnn" / "mnist"
    return Path.home() / ".cache" / "tinygrad_cnn" / "mnist"


def _find_idx_file(directory: Path, name: str) -> Optional[Path]:
    """``directory/name.gz`` if it exists, else ``directory/name`` if it exists, else None."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _where_to_put_files(directory: Path, missing: Sequence[str]) -> str:
    return (
        f"Missing from {directory}: {', '.join(missing)}. "
        f"Put the files in {directory} (gzip-compressed .gz or uncompressed), "
        f"or set ${DATA_ENVIRONMENT_VARIABLE} to a directory that holds them."
    )


# ----------------------------------------------------------------------------- download


def _progress_bar(total: Optional[int], description: str, enabled: bool):
    """A tqdm byte counter on stderr (shown only on a terminal), or a silent stand-in."""
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing progress bar must not stop a download
        enabled = False
    if not enabled:
        return _NoProgressBar()
    return tqdm(
        total=total,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=None,  # None: disabled when stderr is not a terminal
        leave=False,
    )


class _NoProgressBar:
    def __enter__(self) -> "_NoProgressBar":
        return self

    def __exit__(self, *exception_info: object) -> None:
        return None

    def update(self, count: int) -> None:
        return None


def _download_verified(url: str, destination: Path, expected_sha256: str, timeout: float, progress: bool) -> None:
    """Fetch ``url`` into ``destination`` atomically, keeping it only if its SHA-256 matches.

    The bytes go to a hidden temporary file next to ``destination``, which is renamed with
    ``os.replace`` once complete and verified, and removed on any failure or interruption.
    """
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:12]}.part")
    request = urllib.request.Request(url, headers={"User-Agent": "tinygrad_cnn-datasets"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length_header = response.headers.get("Content-Length")
            expected_length = int(length_header) if length_header and length_header.isdigit() else None
            digest = hashlib.sha256()
            received = 0
            with open(temporary, "xb") as file, _progress_bar(expected_length, destination.name, progress) as bar:
                while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
                    file.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                file.flush()
                os.fsync(file.fileno())
        if expected_length is not None and received != expected_length:
            raise _BadDownload(f"connection closed after {received} of {expected_length} bytes")
        actual_sha256 = digest.hexdigest()
        if actual_sha256 != expected_sha256.lower():
            raise _BadDownload(f"SHA256 mismatch: got {actual_sha256}, expected {expected_sha256.lower()}")
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)  # already gone after a successful os.replace


def download_files(
    filenames: Sequence[str],
    directory: PathLike,
    mirrors: Sequence[str],
    checksums: Mapping[str, str],
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
    progress: bool = True,
) -> list[Path]:
    """Download each of ``filenames`` into ``directory``, trying the ``mirrors`` in turn.

    Args:
        filenames: names as served by the mirrors, e.g. ``"train-images-idx3-ubyte.gz"``.
        directory: where they go; created if needed.
        mirrors: base URLs; a file's URL is the base URL, a ``/``, and the file name.
        checksums: ``{filename: sha256 hex}``; every file must have one, and a download whose
            sum differs is discarded and the next mirror tried.
        timeout: seconds ``urlopen`` waits for a connection or for data before giving up.
        progress: show a tqdm progress bar on stderr (only when stderr is a terminal).

    Returns:
        The paths of the downloaded files.

    Raises:
        ValueError: a file name has no checksum (nothing is downloaded).
        DownloadError: (a ``RuntimeError``) a file failed on every mirror. The message gives
            each mirror's reason, which files are still missing, the directory they belong in,
            and that ``$TINYGRAD_CNN_DATA`` can point to a directory that holds them. Files
            downloaded before the failure are kept; the remaining ones are not attempted.
    """
    directory = Path(directory).expanduser()
    unknown = [name for name in filenames if name not in checksums]
    if unknown:
        raise ValueError(f"no SHA256 checksum known for {', '.join(unknown)}; refusing to download unverified files")
    directory.mkdir(parents=True, exist_ok=True)

    downloaded: list[Path] = []
    for position, filename in enumerate(filenames):
        destination = directory / filename
        failures: list[str] = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + filename
            if progress:
                print(f"downloading {url}", file=sys.stderr)
            try:
                _download_verified(url, destination, checksums[filename], timeout, progress)
            except (OSError, http.client.HTTPException, _BadDownload) as error:  # URLError, HTTPError and timeouts are OSErrors
                failures.append(f"  {url}: {error}")
                continue
            downloaded.append(destination)
            break
        else:
            missing = list(filenames[position:])
            reasons = "\n".join(failures) if failures else "  (no mirrors given)"
            raise DownloadError(
                f"could not download {filename} from any mirror:\n{reasons}\n" + _where_to_put_files(directory, missing),
                directory,
                missing,
            )
    return downloaded


# ----------------------------------------------------------------------------- MNIST


def _load_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one split: images ``uint8 N,1,28,28`` and labels ``int64 N``."""
    images = read_idx(images_path, expected_magic=IMAGES_MAGIC)
    if images.shape[1:] != IMAGE_SIZE:
        height, width = images.shape[1:]
        raise MNISTFormatError(
            f"{images_path}: wrong image size: found {height}x{width} "
            f"(array shape {'x'.join(map(str, images.shape))}), expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
        )
    labels = read_idx(labels_path, expected_magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise MNISTFormatError(
            f"image and label counts differ: {images_path} has {len(images)} images "
            f"but {labels_path} has {len(labels)} labels"
        )
    out_of_range = np.flatnonzero(labels >= NUM_CLASSES)  # uint8 labels cannot be negative
    if out_of_range.size:
        index = int(out_of_range[0])
        raise MNISTFormatError(
            f"{labels_path}: label {int(labels[index])} at index {index} is outside 0..{NUM_CLASSES - 1} "
            f"({out_of_range.size} labels out of range)"
        )
    return images.reshape(len(images), 1, *IMAGE_SIZE), labels.astype(np.int64)


def mnist(root: Optional[PathLike] = None, download: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST (or any dataset in its IDX layout, such as Fashion-MNIST).

    Args:
        root: the directory with the four IDX files (each ``.gz`` or raw; ``.gz`` is used
            when both exist). None: ``default_root()``, i.e. ``$TINYGRAD_CNN_DATA`` or the
            per-user cache directory.
        download: fetch missing files (as ``.gz``, checksum-verified) from ``MIRRORS``.

    Returns:
        ``(x_train, y_train, x_test, y_test)``: images ``uint8`` of shape ``N,1,28,28``
        (0 = background, 255 = ink) and labels ``int64`` of shape ``N``, in 0..9
        (60000 training and 10000 test samples for MNIST).

    Raises:
        FileNotFoundError: files are missing and ``download`` is False (the message says
            which, where to put them, and about ``$TINYGRAD_CNN_DATA``).
        DownloadError: (a ``RuntimeError``) files are missing and no mirror could supply them.
        IDXFormatError: a file is not well-formed IDX (see ``read_idx``).
        MNISTFormatError: images are not 28x28, a split's image and label counts differ,
            or a label is outside 0..9.
    """
    directory = Path(root).expanduser() if root is not None else default_root()
    paths = {name: _find_idx_file(directory, name) for name in MNIST_FILES}
    missing = [f"{name}.gz" for name, path in paths.items() if path is None]
    if missing:
        if not download:
            raise FileNotFoundError(_where_to_put_files(directory, missing) + " (Or call mnist(download=True).)")
        download_files(missing, directory, MIRRORS, SHA256)
        paths = {name: _find_idx_file(directory, name) for name in MNIST_FILES}

    x_train, y_train = _load_split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS])
    x_test, y_test = _load_split(paths[TEST_IMAGES], paths[TEST_LABELS])
    return x_train, y_train, x_test, y_test


# ----------------------------------------------------------------------------- batching


def _as_generator(rng: Union[None, int, np.integer, np.random.Generator]) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, not {type(rng).__name__}")


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    rng: Union[None, int, np.random.Generator] = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over one epoch in mini-batches of ``(images_batch, labels_batch)``.

    Every sample appears exactly once per epoch; the last batch is smaller when
    ``batch_size`` does not divide the sample count, unless ``drop_last`` drops it.

    Args:
        images, labels: arrays with the same first dimension (samples).
        batch_size: samples per batch, a positive integer.
        shuffle: visit samples in a random order (else in order, and batches are views).
        rng: an int seed, or a ``numpy.random.Generator`` whose state advances by exactly one
            ``permutation`` call per epoch, so saving ``rng.bit_generator.state`` before the call
            and restoring it later reproduces the epoch bit for bit. None: a fresh, unseeded
            generator. Ignored when ``shuffle`` is False.
        drop_last: leave out the final incomplete batch.

    The arguments are checked, and the shuffle order drawn, when ``batches`` is called,
    not when iteration starts.

    Raises:
        TypeError: ``batch_size`` is not an integer, or ``rng`` is not a seed or Generator.
        ValueError: ``batch_size`` is not positive, the arrays are 0-dimensional, or their
            sample counts differ.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an integer, not {type(batch_size).__name__}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if images.ndim == 0 or labels.ndim == 0:
        raise ValueError("images and labels must have a leading sample dimension (got a 0-dimensional array)")
    if len(images) != len(labels):
        raise ValueError(f"images and labels must have the same number of samples: {len(images)} images, {len(labels)} labels")

    order = _as_generator(rng).permutation(len(images)) if shuffle else None
    return _iterate_batches(images, labels, int(batch_size), order, drop_last)


def _iterate_batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int, order: Optional[np.ndarray], drop_last: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    count = len(images)
    end = count - count % batch_size if drop_last else count
    for start in range(0, end, batch_size):
        if order is None:
            yield images[start : start + batch_size], labels[start : start + batch_size]
        else:
            indices = order[start : start + batch_size]
            yield images[indices], labels[indices]
