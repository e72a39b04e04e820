"""MNIST and Fashion-MNIST: the IDX file reader, download with checksums, where the files live, and batching.

    x_train, y_train, x_test, y_test = mnist()        # uint8 N,1,28,28 and int64 N
    x_train, y_train, x_test, y_test = fashion_mnist()
    for images, labels in batches(x_train, y_train, 128, rng=0):
        ...
    MNIST_CLASSES[3], FASHION_MNIST_CLASSES[3]        # "3", "Dress": names for plots

Where the files live
    ``mnist(root)`` reads the four standard IDX files from ``root``, or from ``root/mnist``
    when ``root`` holds a folder of that name (``root/fashion-mnist`` for ``fashion_mnist``),
    so one directory can hold several data sets. A ``root`` that does not exist is an error:
    it is never created (a typo must not start a download into a new folder). With no root
    the same rules apply to ``$TINYGRAD_CNN_DATA`` if set; else the per-user cache
    ``$XDG_CACHE_HOME/tinygrad_cnn/<data set>`` or ``~/.cache/tinygrad_cnn/<data set>``
    is used (and created). Each file may be gzip-compressed (``.gz``, preferred when both
    exist) or raw. Files already present are validated for their structure, not their
    checksums (except when some are missing and are to be downloaded beside them: see
    Downloading), so any directory of IDX files in this layout loads (KMNIST, your own; see
    ``load_idx_directory``); only the other known data set's files are refused (recognised by
    the labels of either split, under either split's name), so that Fashion-MNIST is never
    trained or tested on MNIST's digits by mistake, and so are a data set's own training and
    test files swapped or copied over each other (its published labels under the other
    split's name), so that a model is never trained on the test set. A file is recognised by
    its SHA-256: a ``.gz`` by the published sums, an uncompressed file (or one gzipped again)
    by the sum of its IDX content (``CONTENT_SHA256``), for MNIST and Fashion-MNIST alike.
    A file's name that exists but is not a file (a directory, a broken link) is an error
    naming it.

Downloading
    In a folder that holds some of the four files, the missing ones are downloaded only once
    each present file is checked to be the data set's published one, by its SHA-256 (its
    ``.gz``, or its uncompressed content): a file of your own, or a corrupt copy, is never
    overwritten nor completed with downloaded files into a mixed data set (a ValueError says
    which files were found, which are not the published ones, and what to do).
    Missing files are fetched as ``.gz`` from the mirrors in turn (``MIRRORS``,
    ``FASHION_MNIST_MIRRORS``; ``http://``, ``https://`` or ``file://`` base URLs); stderr
    says which mirror is being tried. When a file fails on every mirror, an https mirror failed
    to verify its certificate and no other had its certificate verified (they failed before it
    was checked: down, refused, no answer), the error says that this usually means the
    machine's CA certificates are missing or outdated (not when another https mirror got past
    its certificate: that shows they are there). A mirror that does not answer for
    ``DOWNLOAD_TIMEOUT_SECONDS`` (looking up its name, connecting or between two reads), or whose
    file keeps the download waiting longer than ``DOWNLOAD_DEADLINE_SECONDS`` in all, is given
    up for the next (the time the local disk takes to write it counts for neither).
    Each download goes to a temporary file in the target directory, is checked against the
    SHA-256 table (``SHA256``, ``FASHION_MNIST_SHA256``) and only then renamed into place, so
    an interrupted or corrupt download never leaves a file under its final name. Before any
    mirror is asked, the target directory is created (with its missing parents) and an empty
    hidden file is created and removed in it: a directory that cannot be written (permission
    denied, a read-only file system) is an OSError naming it and the OS's reason, not a list
    of mirrors that "failed". An error of the disk while a file is written (a full disk or
    quota, an I/O error, a file-size limit) is no mirror's fault either: the download stops at
    once, keeping the files verified before, with an OSError naming the file, the folder, the
    OS's reason and, for a full disk, the room the missing files need. So does a machine out of
    open files (this process's limit, EMFILE, or the system's, ENFILE), of memory (ENOMEM, or
    Python's MemoryError, which stays one) or of network buffer space (ENOBUFS), wherever it is
    met, looking up, connecting to or reading from a mirror included: every mirror would fail
    the same way, and the error names what ran out and says what to free or which limit to
    raise. The folders a failed download created are removed again while they are empty.

The IDX format
    A big-endian 32-bit magic number ``0x0000TTDD`` (two zero bytes, the data type TT,
    0x08 = unsigned byte, and the number of dimensions DD), then one big-endian 32-bit size
    per dimension, then the values in row-major order. MNIST images are ``0x00000803``
    (ubyte, 3-D: N x 28 x 28) and labels ``0x00000801`` (ubyte, 1-D: N).
"""

from __future__ import annotations

import contextlib
import email.message
import errno
import gzip
import hashlib
import http.client
import math
import numbers
import os
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping, Optional, Protocol, Sequence, Union

import numpy as np

from tinygrad_cnn.nn import atomic_file
from tinygrad_cnn.random import checked_seed

__all__ = [
    "MIRRORS",
    "SHA256",
    "MNIST_FILES",
    "MNIST_CLASSES",
    "FASHION_MNIST_MIRRORS",
    "FASHION_MNIST_SHA256",
    "FASHION_MNIST_CLASSES",
    "DATA_ENVIRONMENT_VARIABLE",
    "DOWNLOAD_TIMEOUT_SECONDS",
    "DOWNLOAD_DEADLINE_SECONDS",
    "IDXFormatError",
    "MNISTFormatError",
    "DownloadError",
    "read_idx",
    "mnist",
    "fashion_mnist",
    "load_idx_directory",
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

MNIST_CLASSES: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")

# Zalando Research's official files (the "Get the data" links of github.com/zalandoresearch/
# fashion-mnist), then the copies in that repository's data/fashion folder.
FASHION_MNIST_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)

# SHA-256 of the published gzip files (same names as MNIST's).
FASHION_MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

# The size in bytes of each published .gz, by its SHA-256 (the sums above): a download that
# fails for want of space says how much room the files need. By sum, not by name, because
# download_files knows a file by its checksum, and the two data sets share file names.
PUBLISHED_SIZES: dict[str, int] = {
    SHA256["train-images-idx3-ubyte.gz"]: 9_912_422,
    SHA256["train-labels-idx1-ubyte.gz"]: 28_881,
    SHA256["t10k-images-idx3-ubyte.gz"]: 1_648_877,
    SHA256["t10k-labels-idx1-ubyte.gz"]: 4_542,
    FASHION_MNIST_SHA256["train-images-idx3-ubyte.gz"]: 26_421_880,
    FASHION_MNIST_SHA256["train-labels-idx1-ubyte.gz"]: 29_515,
    FASHION_MNIST_SHA256["t10k-images-idx3-ubyte.gz"]: 4_422_102,
    FASHION_MNIST_SHA256["t10k-labels-idx1-ubyte.gz"]: 5_148,
}

# SHA-256 of the uncompressed IDX files (the bytes inside the published .gz), so that a data
# set's file is recognised gunzipped (or gzipped again, with other header bytes) too: a .gz sum
# changes with every recompression, the content's never. (Recompressing a raw file to compare it
# with the .gz sums would not work: gzip's bytes depend on its header's name and time stamp, its
# level and its version.) MNIST's were computed here from its published files. Fashion-MNIST
# publishes only its .gz sums, and these machines hold no copy of it: its content sums are the
# ones several independent projects list for its gunzipped files (they agree with one another,
# and the same lists give MNIST's correctly). A wrong sum could only leave a genuine file
# unrecognised (and so refused as "not the published file" in a partial folder being
# completed by a download), never make another file pass for it.
CONTENT_SHA256: dict[str, dict[str, str]] = {
    "MNIST": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "Fashion-MNIST": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# The four files' base names (without .gz), in the order mnist() returns their arrays.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
MNIST_FILES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
LABEL_FILES: tuple[str, ...] = (TRAIN_LABELS, TEST_LABELS)

IMAGES_MAGIC = 0x00000803  # ubyte, 3 dimensions
LABELS_MAGIC = 0x00000801  # ubyte, 1 dimension
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10

DATA_ENVIRONMENT_VARIABLE = "TINYGRAD_CNN_DATA"
MNIST_FOLDER = "mnist"  # the folder each data set has under a data root and in the cache
FASHION_MNIST_FOLDER = "fashion-mnist"

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
# The URL schemes a mirror may have: what urllib fetches here (file:// for a local copy).
MIRROR_SCHEMES: tuple[str, ...] = ("http", "https", "file")
# What a mirror typed without its scheme starts with when it is meant as a host: localhost, a
# dotted name or IPv4 address, or a bracketed IPv6 address; then an optional port.
_HOST_PATTERN = re.compile(r"(?P<name>localhost|[a-z0-9-]+(\.[a-z0-9-]+)+|\[[0-9a-f:.]+\])(?P<port>:[0-9]+)?", re.IGNORECASE)
_IPV4_PATTERN = re.compile(r"[0-9]+(\.[0-9]+){3}")
# What the last part of a host name can be: a top-level domain is letters only (or an IDN's "xn--").
_TOP_LEVEL_DOMAIN_PATTERN = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]+", re.IGNORECASE)
# Suffixes of archives and compressed files that no top-level domain has: "mnist.tar.gz/" is a path.
_FILE_SUFFIXES: tuple[str, ...] = ("gz", "tgz", "tar", "xz", "zst")
DOWNLOAD_CHUNK_BYTES = 1 << 20
# A mirror that sends nothing for this long (looking up its name, connecting, or between two
# reads) is given up.
DOWNLOAD_TIMEOUT_SECONDS = 10.0
# A file that keeps the download waiting for its mirror longer than this in all is given up
# too (a mirror trickling bytes would never trip the read timeout); 300 s allows the 9.9 MB
# training images at 33 kB/s. The time spent writing to the local disk does not count.
DOWNLOAD_DEADLINE_SECONDS = 300.0


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

    Attributes: ``directory`` (where the files belong), ``missing`` (their names),
    ``reasons`` (one line per mirror tried for the file that failed: the URL and why) and
    ``certificate_failure`` (True when an ``https://`` mirror among them failed to verify the
    server's certificate and none had its certificate verified, the others having failed before
    theirs was checked: the message then says what that usually means; see
    ``_points_to_the_ca_certificates``).
    """

    def __init__(self, message: str, directory: Path, missing: Sequence[str], reasons: Sequence[str] = (),
                 certificate_failure: bool = False) -> None:
        super().__init__(message)
        self.directory = directory
        self.missing = list(missing)
        self.reasons = list(reasons)
        self.certificate_failure = certificate_failure


class _BadDownload(Exception):
    """A mirror's download that failed partway (a read that timed out or was cut off) or that
    arrived but must not be kept (short, too slow, or wrong checksum): the next mirror is tried."""


class _UnrequestableURL(ValueError):
    """A mirror's URL from which no request can be made (``_download_verified``): urllib refused
    it (an unknown URL type), or its host name or path cannot be encoded as the name lookup and
    http.client send them (in IDNA, in ASCII). A ValueError of the mirror's answer is not one."""


class _InvalidProxySetting(ValueError):
    """The proxy urllib was to send a mirror's request through is set to something it cannot use
    (``_proxy_problem``), and the request failed: it never reached the mirror, so the mirror is
    not to blame. The message names the setting (``$https_proxy`` …), its value and what is wrong."""


class _LocalWriteError(Exception):
    """Writing a download to the local disk failed (``error``, the OSError: a full disk, a quota,
    an I/O error, a file-size limit). Not the mirror's fault: every other mirror would fail the
    same way, after downloading the file again, so none is tried. ``partial``: bytes of the
    download had reached its temporary file, which was removed (False when the file could not be
    created, or the disk failed before any byte reached it)."""

    def __init__(self, error: OSError, partial: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.partial = partial


class _OutOfMemory(Exception):
    """Python's MemoryError (an allocation that failed) while a download was received, written
    or checked. Not the mirror's fault: every other mirror would need the same memory, so none is
    tried. ``partial``: as for ``_LocalWriteError``, bytes of the download had reached its
    temporary file, which was removed. (A MemoryError before any byte came, while looking up,
    connecting to or asking the mirror, comes out as it is: ``_download_each`` stops for it too.)"""

    def __init__(self, partial: bool) -> None:
        super().__init__("out of memory")
        self.partial = partial


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
        content = gzip.decompress(content)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise IDXFormatError(path, f"corrupt or truncated gzip data ({error})") from error
    if content[:2] == GZIP_MAGIC:
        raise IDXFormatError(
            path,
            "gzip-compressed twice: its decompressed data starts with the gzip magic 0x1f8b again "
            "(as when a server adds its own compression to a .gz file); decompress it once, keeping the .gz name",
        )
    return content


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


def default_root(dataset: str = MNIST_FOLDER) -> Path:
    """The directory a loader starts from when given no root.

    ``$TINYGRAD_CNN_DATA`` if set (and not empty); else ``$XDG_CACHE_HOME/tinygrad_cnn/<dataset>``
    if that variable holds an absolute path (as the XDG spec requires); else
    ``~/.cache/tinygrad_cnn/<dataset>``. ``dataset`` is the data set's folder name,
    ``"mnist"`` or ``"fashion-mnist"``.
    """
    data_directory = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    if data_directory:
        return Path(data_directory).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME")
    if cache_home and os.path.isabs(cache_home):
        return Path(cache_home) / "tinygrad_cnn" / dataset
    return Path.home() / ".cache" / "tinygrad_cnn" / dataset


def _find_idx_file(directory: Path, name: str) -> Optional[Path]:
    """``directory/name.gz`` if it is a file, else ``directory/name`` if it is, else None.

    When neither is a file but one of them exists as something else, the error names it:
    a directory (Kaggle's copy of MNIST keeps each file in a folder of the file's name), a
    broken symbolic link, a FIFO or device (whose read would block or never end). Calling
    that "missing" pointed at the wrong problem, and a download put a second copy elsewhere.
    """
    candidates = (directory / f"{name}.gz", directory / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    for candidate in candidates:
        if os.path.lexists(candidate):
            raise _not_a_file_error(candidate)
    return None


def _not_a_file_error(path: Path) -> OSError:
    """The error for an IDX file's name that exists but is not a file: IsADirectoryError for a
    directory (saying which file inside it looks like the one meant), FileNotFoundError for a
    broken symbolic link, OSError for anything else."""
    expected = f"expected the IDX file {path.name} there"
    if path.is_dir():
        inside = next((path / name for name in (path.name, path.name.removesuffix(".gz")) if (path / name).is_file()), None)
        hint = f"; it holds {inside.name}: move that file up into {path.parent} (in place of the folder)" if inside else ""
        return IsADirectoryError(errno.EISDIR, f"is a directory, {expected}{hint}", os.fspath(path))
    if path.is_symlink() and not path.exists():
        return FileNotFoundError(errno.ENOENT, f"is a broken symbolic link to {os.readlink(path)}, {expected}", os.fspath(path))
    return OSError(errno.EINVAL, f"is not a regular file (a FIFO, socket or device), {expected}", os.fspath(path))


def _holds_all_files(directory: Path) -> bool:
    return all(any((directory / f"{name}{suffix}").is_file() for suffix in (".gz", "")) for name in MNIST_FILES)


def _published_file(path: Path, bases: Sequence[str] = MNIST_FILES) -> Optional[tuple[str, str]]:
    """``(data set, file)`` when ``path`` is one of a known data set's published files named in
    ``bases``, by SHA-256, whatever it is named: ``("MNIST", "t10k-labels-idx1-ubyte")`` for
    MNIST's test labels, even when they sit under the training labels' name; else None. The
    two data sets share every file name, and a renamed file is the same data, so each known
    sum is compared. A ``.gz`` file is compared with the published sums (``SHA256``,
    ``FASHION_MNIST_SHA256``), then its content, or the raw file, with ``CONTENT_SHA256``: an
    uncompressed file is recognised by the sum of its content, for either data set."""
    content = path.read_bytes()
    if path.suffix.lower() == ".gz":
        digest = hashlib.sha256(content).hexdigest()
        known = {"MNIST": SHA256, "Fashion-MNIST": FASHION_MNIST_SHA256}  # read now, so tests can swap them
        for name, checksums in known.items():
            for base in bases:
                if checksums.get(f"{base}.gz") == digest:
                    return name, base
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error):  # not gzip: the loader says so
            return None
    digest = hashlib.sha256(content).hexdigest()
    for name, checksums in CONTENT_SHA256.items():
        for base in bases:
            if checksums.get(base) == digest:
                return name, base
    return None


def _split_name(labels_file: str) -> str:
    return "training" if labels_file.startswith(TRAIN_LABELS) else "test"


def _wrong_labels(directory: Path, name: str, folder: str) -> Optional[str]:
    """Why ``directory`` must not be loaded as the data set ``name``, judged by its labels files
    (both splits), else None: one is the other known data set's published labels (the same
    file names, other data), or ``name``'s own labels of the other split (the training and
    test files swapped or copied over each other: a model would be trained on the test set,
    or tested on the data it learned). The images are not hashed: they are large, and a
    split's labels tell which data set and split it is (images that do not go with their
    labels differ in count, or are another data set's, which the labels do not show)."""
    for base in LABEL_FILES:
        labels_path = _find_idx_file(directory, base)
        if labels_path is None:
            continue
        published = _published_file(labels_path, LABEL_FILES)
        if published is None:
            continue
        owner, owner_file = published
        if owner != name:
            return (
                f"{directory} holds the {owner} files, not {name} ({labels_path.name} there is {owner}'s "
                f"published {_split_name(owner_file)} labels file, not {name}'s); point to a directory with {name}'s files, "
                f"or to one that holds them in a folder named {folder}/"
            )
        if owner_file != base:
            return (
                f"{labels_path} is {name}'s published {_split_name(owner_file)} labels file, not its "
                f"{_split_name(base)} labels: the training and test files in {directory} are swapped or copied "
                f"over each other (a model would be tested on the images it was trained on, or trained on the test set); "
                f"give each file its published name (train-* for the training split, t10k-* for the test split)"
            )
    return None


def _directories_holding_the_files(start: Path, depth: int = 2, limit: int = 300) -> list[Path]:
    """``start`` and its subdirectories (``depth`` levels down, at most ``limit`` looked at)
    that hold all four files."""
    found: list[Path] = []
    level, looked_at = [start], 0
    for _ in range(depth + 1):
        next_level: list[Path] = []
        for directory in level:
            looked_at += 1
            if looked_at > limit:
                return found
            if _holds_all_files(directory):
                found.append(directory)
            try:
                next_level += sorted(child for child in directory.iterdir() if child.is_dir() and not child.name.startswith("."))
            except OSError:  # unreadable: skip it
                pass
        level = next_level
    return found


def _suggestion(near: Path, name: Optional[str] = None) -> str:
    """`` Did you mean X?`` naming directories near ``near`` that hold the four files (and are
    not the other known data set than ``name``), or ``""``."""
    start = near
    while not start.is_dir() and start != start.parent:  # the nearest existing directory
        start = start.parent
    if start == start.parent:  # the file-system root: too much to search
        return ""
    found = [
        directory for directory in _directories_holding_the_files(start)
        if name is None or _wrong_labels(directory, name, "") is None
    ]
    return f" Did you mean {' or '.join(map(str, found[:3]))}? (It holds the four files.)" if found else ""


def _data_directory(root: Optional[PathLike], folder: str, name: str) -> Path:
    """The directory whose files a loader reads (and where missing ones are downloaded).

    A root (given, or ``$TINYGRAD_CNN_DATA``) must be an existing directory; its
    ``folder`` subdirectory is used when it exists, else the root itself when it holds any of
    the files, else ``root/folder`` (created only to download into). With neither, the cache.
    """
    if root is None:
        root = os.environ.get(DATA_ENVIRONMENT_VARIABLE) or None
        if root is None:
            return default_root(folder)
        root = Path(root).expanduser()
        subject = f"${DATA_ENVIRONMENT_VARIABLE} is set to {root}, which"
    else:
        root = Path(root).expanduser()
        subject = f"the data directory {root}"
    if not root.exists():
        raise FileNotFoundError(f"{subject} does not exist; it is not created, so check the path.{_suggestion(root, name)}")
    if not root.is_dir():
        raise NotADirectoryError(f"{subject} is not a directory.{_suggestion(root.parent, name)}")
    if (root / folder).is_dir():
        return root / folder
    if any(_find_idx_file(root, base) is not None for base in MNIST_FILES):
        return root
    return root / folder


def _not_a_directory(directory: Path) -> Optional[str]:
    """Why ``directory`` cannot hold files: ``"<path> exists but is not a directory (a file)"``,
    where ``<path>`` is ``directory`` or the nearest of its parents that exists (then ``", so
    <directory> cannot be created"`` follows), or (a broken symbolic link to …); None if it can."""
    existing = directory
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir():
        return None
    if existing.is_symlink():
        target = os.readlink(existing)
        kind = f"a symbolic link to {target}, which is not a directory" if existing.exists() else f"a broken symbolic link to {target}"
    else:
        kind = "a file" if existing.is_file() else "a special file"
    problem = f"{existing} exists but is not a directory ({kind})"
    return problem if existing == directory else f"{problem}, so {directory} cannot be created"


def _where_to_put_files(
    directory: Path, missing: Sequence[str], folder: Optional[str] = None, name: Optional[str] = None,
    present: Sequence[Path] = (),
) -> str:
    """Which files are missing where (and, in a partial folder, which are ``present``), and how
    to point the loader at a directory that has them."""
    found = f" {_found_there(present)}." if present else ""
    holding = f"a directory that holds {_all_files(len(present) + len(missing)) if present else 'them'}"
    holding += f" (or holds them in a folder named {folder}/)" if folder else ""
    return (
        f"Missing from {directory}: {', '.join(missing)}.{found} "
        f"Put the {'missing ' if present else ''}files there (gzip-compressed .gz or uncompressed), "
        f"or {_how_to_point_elsewhere(directory, holding)}.{_suggestion(directory, name)}"
    )


def _all_files(count: int) -> str:
    """A whole set of ``count`` files, in a message: "both files", "all four files", "all 12 files"."""
    return {2: "both files", 3: "all three files", 4: "all four files"}.get(count, f"all {count} files")


def _found_there(present: Iterable[Path], unpublished: Sequence[Path] = ()) -> str:
    """``"Found there: train-images-idx3-ubyte.gz (not the published file), train-labels-idx1-ubyte"``:
    the files of a partial folder, as each message about one lists them; ``unpublished``
    are marked as not the data set's published files."""
    return "Found there: " + ", ".join(path.name + (" (not the published file)" if path in unpublished else "") for path in present)


def _how_to_point_elsewhere(directory: Path, other: str) -> str:
    """How to make the loader use ``other`` (``"a directory that holds them"``) instead of
    ``directory``: pass it as root (``--data-dir``), or set ``$TINYGRAD_CNN_DATA`` to it, worded
    for whether the variable is set, and whether ``directory`` came from it (the variable's
    directory itself, or its data-set folder such as ``mnist/``)."""
    environment = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    variable = f"${DATA_ENVIRONMENT_VARIABLE}"
    if not environment:
        return f"pass {other} as root (--data-dir in examples/mnist.py), or set {variable} to it"
    if Path(environment).expanduser() in (directory, directory.parent):
        return f"point {variable} (now set to {environment}) or root (--data-dir) to {other}"
    return f"pass {other} as root (--data-dir; it takes precedence over {variable}, which is set to {environment})"


# ----------------------------------------------------------------------------- download


#: what writing to a stderr that is broken (EPIPE: its reader is gone; EBADF: its descriptor is
#: closed) or closed (ValueError: "I/O operation on closed file") raises
OUTPUT_ERRORS = (OSError, ValueError)


def _tell(message: str) -> None:
    """Say ``message`` on stderr, where the user follows a download. A stderr that cannot be
    written (``OUTPUT_ERRORS``) only goes without it: the download goes on, as with the bar."""
    with contextlib.suppress(*OUTPUT_ERRORS):
        print(message, file=sys.stderr, flush=True)


class _TqdmBar(Protocol):
    """The part of a tqdm bar that ``_ProgressBar`` calls."""

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


def _progress_bar(total: Optional[int], description: str, enabled: bool) -> "_ProgressBar":
    """A tqdm byte counter on stderr (shown only on a terminal), or a silent one; either way a
    ``_ProgressBar``, which no error of stderr lets stop or misreport the download."""
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing progress bar must not stop a download
        enabled = False
    if not enabled:
        return _ProgressBar(None)
    try:
        bar = tqdm(
            total=total,
            desc=description,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=None,  # None: disabled when stderr is not a terminal
            leave=False,
        )
    except OUTPUT_ERRORS:  # tqdm asks stderr whether it is a terminal, and draws the empty bar on it
        return _ProgressBar(None)
    return _ProgressBar(bar)


class _ProgressBar:
    """A progress bar (tqdm's ``bar``, or None for none) whose errors never reach the download.

    tqdm writes to stderr, and a stderr that is broken or closed (``OUTPUT_ERRORS``: a pipe
    whose reader has gone, a closed descriptor) makes its ``update`` or ``close`` raise.
    (tqdm itself ignores only EIO and a closed file object.) Inside the download loop that
    OSError was taken for the disk's: the download stopped, its error blaming the disk. Here
    the first such error drops the bar, for the rest of the download, which goes on without it.
    """

    def __init__(self, bar: Optional[_TqdmBar]) -> None:
        self.bar = bar

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()

    def update(self, count: int) -> None:
        if self.bar is None:
            return
        try:
            self.bar.update(count)
        except OUTPUT_ERRORS:
            self.close()

    def close(self) -> None:
        """Close the bar (tqdm clears its line), once; an error of stderr meanwhile is ignored."""
        bar, self.bar = self.bar, None
        if bar is not None:
            with contextlib.suppress(*OUTPUT_ERRORS):  # (tqdm marks itself closed before it writes)
                bar.close()


def _download_verified(url: str, destination: Path, expected_sha256: str, timeout: float, deadline: float, progress: bool) -> None:
    """Fetch ``url`` into ``destination`` atomically, keeping it only if its SHA-256 matches.

    ``timeout`` bounds the host name's lookup (``_look_up_host``), the wait for the connection
    and for each read; ``deadline`` (seconds) the whole file's time waiting for the mirror: the
    lookup, the connection and the reads, not the writes to the local disk (a slow disk is no
    mirror's fault, and the next mirror would meet the same disk). Each ``read1`` returns what
    one socket read brings, so that time is checked at least once per ``timeout``. The bytes go
    through ``nn.atomic_file`` (a hidden ``.<name>.*.tmp``, renamed into place only once
    complete and verified, and removed on any error).

    Each error is sorted where it happens, reading or writing. The mirror's (looking up its
    name, connecting, a read that times out or is cut off, a short, slow or wrong file) come
    out as urllib's OSError or ``_BadDownload``, for ``_failure_reason`` and the next mirror;
    so do a URL from which no request can be made (``_UnrequestableURL``), an answer that
    urllib cannot read (a ValueError: a redirect to a Location that is no URL), and a request
    that failed because the proxy set for it is one urllib cannot use (``_InvalidProxySetting``).
    (Unless they say this machine ran out of open files, memory or network buffers:
    ``_local_resource_exhausted``, which stops the download.)
    The local disk's (creating, writing, syncing or renaming the temporary file: a full disk,
    a quota, an I/O error) come out as ``_LocalWriteError``, which no other mirror would cure;
    its ``partial`` says whether bytes of the download had reached the temporary file (its size
    on disk when a write fails; the whole download, flushed, when syncing or renaming fails), so
    that the error says a partial file was removed only when there was one. Python's
    MemoryError once the answer is being received comes out as ``_OutOfMemory``, with the same
    ``partial``; before that, as it is.
    """
    started = time.monotonic()
    try:
        _look_up_host(url, timeout)  # a host name that IDNA cannot encode raises a UnicodeError (a ValueError)
        request = urllib.request.Request(url, headers={"User-Agent": "tinygrad_cnn-datasets"})
    except ValueError as error:
        raise _UnrequestableURL(str(error)) from error
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (OSError, ValueError, http.client.HTTPException) as error:
        invalid_proxy = _invalid_proxy_setting(url)
        if invalid_proxy is not None:  # urllib's error was about the proxy (its URL, port or host name), not the mirror
            raise _InvalidProxySetting(invalid_proxy) from error
        if isinstance(error, UnicodeError):  # the path sent in ASCII, the host in IDNA; urlopen's other ValueErrors read the answer
            raise _UnrequestableURL(str(error)) from error
        raise
    with response:
        waited = time.monotonic() - started  # for the mirror: the lookup, the connection, the headers
        expected_length = _content_length(response.headers)
        digest = hashlib.sha256()
        received = 0
        flushed = False  # every byte received was handed to the temporary file
        try:
            with atomic_file(destination) as file, _progress_bar(expected_length, destination.name, progress) as bar:
                try:
                    while True:
                        read_started = time.monotonic()
                        chunk = _read_from_mirror(response, timeout)
                        waited += time.monotonic() - read_started
                        if not chunk:
                            break
                        file.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                        if waited > deadline:
                            of_total = f" of {expected_length}" if expected_length is not None else ""
                            raise _BadDownload(f"too slow: {received}{of_total} bytes after {deadline:g} s, the limit per file")
                    file.flush()  # the last buffered bytes, now: their error comes while the file's size can be read
                except OSError as error:  # the reads' errors are _BadDownload by now: an OSError here is the disk's
                    raise _LocalWriteError(error, partial=_holds_bytes(file)) from error
                except MemoryError as error:  # reading, writing or hashing a chunk: this process's memory
                    raise _OutOfMemory(partial=_holds_bytes(file)) from error
                flushed = True
                if expected_length is not None and received != expected_length:
                    raise _BadDownload(f"connection closed after {received} of {expected_length} bytes")
                actual_sha256 = digest.hexdigest()
                if actual_sha256 != expected_sha256.lower():
                    raise _BadDownload(f"SHA256 mismatch: got {actual_sha256}, expected {expected_sha256.lower()}")
        except OSError as error:  # the disk's: creating the temporary file (nothing in it yet), or syncing or renaming it
            raise _LocalWriteError(error, partial=flushed and received > 0) from error
        except MemoryError as error:  # creating, checking, syncing or renaming the file
            raise _OutOfMemory(partial=flushed and received > 0) from error


def _holds_bytes(file: BinaryIO) -> bool:
    """Whether the open ``file`` has any bytes on disk (True when its size cannot be read)."""
    try:
        return os.fstat(file.fileno()).st_size > 0
    except OSError:
        return True


def _content_length(headers: email.message.Message) -> Optional[int]:
    """The ``Content-Length`` of a mirror's response, or None when it sent none, or one that is
    not a number of bytes in ASCII digits: ``"²"`` (which ``str.isdigit`` accepts and ``int``
    refuses: the mirror was reported as "a URL that cannot be requested"), ``"١٢"`` (Arabic-Indic
    digits, which ``int`` reads), ``"-1"``, ``" 12"``. Such a length is ignored, as http.client
    ignores one it cannot read: it only serves to spot a connection closed early and to size the
    progress bar, and the file is still checked by its SHA-256."""
    value = headers.get("Content-Length")
    if value is None or not re.fullmatch(r"[0-9]+", value):
        return None
    return int(value)


def _read_from_mirror(response: Union[http.client.HTTPResponse, urllib.response.addinfourl], timeout: float) -> bytes:
    """The next chunk of the mirror's ``response`` (``b""`` at its end). A read that fails (no
    answer within ``timeout``, a connection reset, a chunk cut short) is the mirror's failure,
    raised as ``_BadDownload`` saying why, so that it is never taken for an error of the disk.
    The OSError is its ``__cause__``, where ``_local_resource_exhausted`` finds a read that failed
    for want of this machine's memory or network buffers (ENOMEM, ENOBUFS), no mirror's fault."""
    try:
        return response.read1(DOWNLOAD_CHUNK_BYTES)
    except (OSError, http.client.HTTPException) as error:
        raise _BadDownload(_failure_reason(error, timeout)) from error


class _HostLookupTimeout(TimeoutError):
    """A mirror's host name was not looked up within the timeout."""


def _look_up_host(url: str, timeout: float) -> None:
    """Look up the host name of ``url``, giving up after ``timeout`` seconds (``_HostLookupTimeout``).

    urllib's timeout covers connecting and reading but not the name lookup before them:
    ``socket.getaddrinfo`` takes no timeout, and a resolver that gets no answer (a network
    without DNS) can block far longer. So the name is looked up here first, in a daemon thread
    that is waited for ``timeout`` seconds; a lookup that hangs is left to end on its own.
    urllib then looks the name up once more to connect: that second lookup is not bounded,
    but the resolver has just answered the same question. A lookup error (an unknown host) is
    raised as it is. Nothing is looked up for ``file://`` URLs, nor when a proxy is set for the
    URL (the proxy looks the name up; the proxy's own name is not bounded).

    When the thread cannot be started (``Thread.start`` raises RuntimeError "can't start new
    thread": this process is at its limit of threads), the name is looked up in the calling
    thread instead, without the timeout. That is what urllib does anyway, and all a download
    needs: raising would stop a download that can work (or blame a mirror for this process's
    limit) only to keep a resolver that hangs bounded, which is rare; an answering resolver,
    the usual case, gives the same outcome either way."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return
    if _proxy_for(url) is not None:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[Optional[BaseException]] = []

    def look_up() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append(None)
        except Exception as error:  # handed to the waiting thread, which raises it
            outcome.append(error)

    worker = threading.Thread(target=look_up, name=f"look up {host}", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # no thread to spare: look it up here, unbounded, as urllib would
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return
    worker.join(timeout)
    if not outcome:
        raise _HostLookupTimeout(f"looking up the host name {host} gave no answer within {timeout:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def _proxy_for(url: str) -> Optional[str]:
    """The proxy that urllib sends the request for ``url`` through, as it is set (``$https_proxy``
    for an https URL, …, or the system's setting), unless ``$no_proxy`` exempts the URL's host;
    None when there is none. Read now, as ``_look_up_host`` reads it (urllib reads it when its
    default opener is made, the first time ``urlopen`` is called)."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or (parts.hostname and urllib.request.proxy_bypass(parts.hostname)):
        return None
    return proxy


def _proxy_problem(proxy: str) -> Optional[str]:
    """What makes ``proxy`` (a proxy setting's value) one urllib cannot send a request through,
    in words, or None when nothing does. urllib takes ``scheme://host:port`` or ``host:port`` (its
    path ignored): it refuses ``http:/host`` (one slash: no host; a ValueError); a port that is no
    number fails (http.client's InvalidURL), and so does a host name that IDNA cannot encode (a
    UnicodeError: an empty label, ``proxy..example``), a bracketed address never closed (its
    lookup fails) or a scheme other than http and https (``socks5://``: an unknown URL type)."""
    if "://" not in proxy and re.match(r"[^/:]+:/", proxy):
        return "it names no host: a proxy URL reads http://host:port, with two slashes"
    try:
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        parts.port  # a port that is not a number in 0..65535 raises ValueError
    except ValueError as error:  # "Invalid IPv6 URL", "Port could not be cast to integer value as 'port'"
        return str(error)
    if parts.scheme.lower() not in ("http", "https"):
        return f"urllib sends requests through http:// and https:// proxies only, not {parts.scheme}://"
    try:
        (parts.hostname or "").encode("idna")
    except UnicodeError as error:
        return f"its host name {parts.hostname} cannot be looked up: {error}"
    return None


def _invalid_proxy_setting(url: str) -> Optional[str]:
    """When the proxy for ``url`` (``_proxy_for``) is one urllib cannot use (``_proxy_problem``):
    the reason for the mirror's failure, naming the setting, its value and what is wrong with
    it, such as ``"the proxy setting $https_proxy=http:/proxy is invalid (it names no host: …):
    correct it or unset it"``; else None."""
    proxy = _proxy_for(url)
    problem = None if proxy is None else _proxy_problem(proxy)
    if proxy is None or problem is None:
        return None
    scheme = urllib.parse.urlsplit(url).scheme
    variables = [name for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY") if os.environ.get(name) == proxy]
    setting = f"the proxy setting ${variables[0]}={proxy}" if variables else f"this system's {scheme} proxy setting, {proxy},"
    return f"{setting} is invalid ({problem}), so no request reached the mirror: correct it or unset it"


def _failure_reason(error: Exception, timeout: float) -> str:
    """Why a mirror failed, in words: a timeout says how long was waited, a ValueError whether it
    was the proxy setting's (``_InvalidProxySetting``), the URL's (``_UnrequestableURL``) or the
    mirror's answer's."""
    if isinstance(error, (_HostLookupTimeout, _InvalidProxySetting)):
        return str(error)
    timeouts = (TimeoutError, socket.timeout)  # the same class from Python 3.10 on
    if isinstance(error, timeouts) or isinstance(getattr(error, "reason", None), timeouts):
        return f"no answer within {timeout:g} s"
    if isinstance(error, _UnrequestableURL):
        return f"a URL that cannot be requested ({error})"
    if isinstance(error, ValueError):  # urllib's, or http.client's, on the mirror's answer
        return f"an invalid response from the mirror ({error})"
    return str(error)


def _is_certificate_failure(error: BaseException) -> bool:
    """Whether ``error`` is a server certificate that failed verification: ssl's
    SSLCertVerificationError ("CERTIFICATE_VERIFY_FAILED"), which urllib raises as the
    ``reason`` of a URLError."""
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in (error, getattr(error, "reason", None)))


def _certificate_verdict(error: BaseException) -> Optional[bool]:
    """What ``error``, the failure of an https mirror, says of its certificate: True when it failed
    verification; False when it was verified (the mirror answered over TLS: an HTTP error status,
    or a file that arrived but was cut short, too slow or wrong); None when it says nothing (the
    mirror failed before its certificate was checked: its name not found, a connection refused or
    timed out; or for another reason)."""
    if _is_certificate_failure(error):
        return True
    if isinstance(error, (urllib.error.HTTPError, _BadDownload)):
        return False
    return None


def _points_to_the_ca_certificates(verdicts: Sequence[Optional[bool]]) -> bool:
    """Whether the https mirrors that failed point to this machine's CA certificates, by their
    ``_certificate_verdict``s (one per https mirror tried; plain http mirrors have no
    certificate and are not counted): when at least one certificate failed verification and
    none was verified. So, where only some https mirrors failed verification:

    - the others failed before any certificate was checked (down, refused, their name not
      found, no answer): the advice is given. Those failures say nothing about certificates,
      and the failed verifications are what a missing or outdated CA store gives. (It was given
      only when every https mirror failed verification, so one mirror down hid it.)
    - another one's certificate was verified (it answered with a 404, or a wrong file): no
      advice. The CA certificates verified that one, so they are there; the failing mirror's
      own certificate, or a proxy in front of it, is the likelier cause. A store too old for
      only that mirror's newer root is possible, but the advice would then be a guess: each
      mirror's reason line (CERTIFICATE_VERIFY_FAILED) still shows what happened."""
    return True in verdicts and False not in verdicts


#: added to the DownloadError when the https mirrors point to the CA certificates (``_points_to_the_ca_certificates``)
CERTIFICATE_ADVICE = (
    "No https mirror's certificate could be verified (each that got as far as its certificate failed verification), "
    "which usually means this machine's CA certificates are missing or outdated: install or update the "
    "ca-certificates package (or point SSL_CERT_FILE at a current CA bundle, such as certifi's: python -m certifi "
    "prints its path) and try again, or download the files another way and put them in place by hand, as follows."
)


def _strings(values: object, argument: str, item: str) -> list[str]:
    """``values`` as a list, or ``TypeError`` unless it is an iterable of strings. A single
    ``str`` (or ``bytes``) is refused too, since it would be taken one character at a time;
    for a ``str`` the message says to wrap it in a list."""
    if isinstance(values, (str, bytes)):
        hint = f" (for one {item}, pass [{values!r}])" if isinstance(values, str) else ""
        raise TypeError(f"{argument} must be an iterable of str, not a single {type(values).__name__}{hint}")
    if not isinstance(values, Iterable):
        raise TypeError(f"{argument} must be an iterable of str, not {type(values).__name__}: {values!r}")
    items = list(values)
    for value in items:
        if not isinstance(value, str):
            raise TypeError(f"each {item} must be a str, not {type(value).__name__}: {value!r}")
    return items


def _looks_like_a_host(mirror: str) -> bool:
    """Whether ``mirror``, typed without its scheme, starts with a host (``localhost:8000/mnist/``,
    ``example.com/mnist/``, ``yann.lecun.com/exdb/mnist``) rather than being a local path. A
    host is ``localhost``, an IPv4 or bracketed IPv6 address, anything with a port, or a dotted
    name whose last part could be a top-level domain (letters only, and not an archive's suffix
    such as ``gz`` or ``tar``) followed by a path, or by nothing. Not a host: a path that starts
    with ``/``, ``./``, ``../`` or ``~``, one that names something on disk, a dotted name that no
    host has (``data.v2``, ``mnist.tar.gz/``), or a dotted name followed by a slash alone
    (``mnist.data/``: a folder's name as it is typed, where a host comes with the folder of the
    files; so ``example.com/`` is taken for a folder too, and its message still says that a
    mirror starts with ``http://``)."""
    host, slash, path = mirror.partition("/")
    match = _HOST_PATTERN.fullmatch(host)
    if mirror.startswith(("/", "./", "../", "~")) or match is None:
        return False
    try:
        if Path(mirror).exists():
            return False
    except (OSError, ValueError):  # a name too long, or with a NUL byte: not a path here
        pass
    name = match.group("name")
    if match.group("port") or name.lower() == "localhost" or name.startswith("[") or _IPV4_PATTERN.fullmatch(name):
        return True
    if slash and not path:  # "mnist.data/": the slash that ends a folder's name
        return False
    top_level = name.rsplit(".", 1)[1]
    return bool(_TOP_LEVEL_DOMAIN_PATTERN.fullmatch(top_level)) and top_level.lower() not in _FILE_SUFFIXES


def _local_directory_hint(mirror: str) -> str:
    """``"; for a local directory use file:///…/"``: the URL of ``mirror`` taken as a path; and
    when that is no directory here, that it does not exist, or is not a directory."""
    path = Path(os.path.expanduser(mirror)).absolute()  # (Path.expanduser raises for an unknown ~user)
    hint = f"; for a local directory use {path.as_uri()}/"
    try:
        if path.is_dir():
            return hint
        if os.path.lexists(path):
            return f"{hint}, but {path} is not a directory"
    except (OSError, ValueError):  # a name too long, or with a NUL byte: say nothing of it
        return hint
    return f"{hint}, but {path} does not exist"


def _check_mirrors(mirrors: object) -> list[str]:
    """``mirrors`` as a list; ``TypeError`` unless it is an iterable of strings (not a single
    one), ``ValueError`` naming the first mirror that is not an ``http://``, ``https://`` or
    ``file://`` URL."""
    mirror_urls = _strings(mirrors, "mirrors", "mirror")
    schemes = ", ".join(f"{scheme}://" for scheme in MIRROR_SCHEMES)
    for mirror in mirror_urls:
        try:
            parts = urllib.parse.urlsplit(mirror)
            parts.port  # a port that is not a number in 0..65535 raises ValueError
        except ValueError as error:
            raise ValueError(f"mirror {mirror!r} is not a valid URL ({error})") from None
        scheme = parts.scheme.lower()
        # "localhost:8000/mnist/" parses with the URL scheme "localhost": a host is looked for first
        if scheme not in MIRROR_SCHEMES and _looks_like_a_host(mirror):
            raise ValueError(f"mirror {mirror!r} has no URL scheme: a mirror starts with {schemes}; did you mean {'http://' + mirror!r}?")
        if not scheme:
            local = _local_directory_hint(mirror) if mirror else ""
            raise ValueError(f"mirror {mirror!r} has no URL scheme: a mirror starts with {schemes}{local}")
        if scheme not in MIRROR_SCHEMES:
            raise ValueError(f"mirror {mirror!r} has the URL scheme {parts.scheme!r}: a mirror starts with {schemes}")
        if scheme != "file" and not parts.hostname:
            raise ValueError(f"mirror {mirror!r} names no host")
    return mirror_urls


def _checked_seconds(argument: str, value: object) -> float:
    """``value`` as a float, or ``TypeError``/``ValueError`` unless it is a positive, finite number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{argument} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def download_files(
    filenames: Iterable[str],
    directory: PathLike,
    mirrors: Iterable[str],
    checksums: Mapping[str, str],
    timeout: Optional[float] = None,
    progress: bool = True,
    deadline: Optional[float] = None,
) -> list[Path]:
    """Download each of ``filenames`` into ``directory``, trying the ``mirrors`` in turn.

    Args:
        filenames: names as served by the mirrors, e.g. ``"train-images-idx3-ubyte.gz"``: any
            iterable of str (a list, ``SHA256.keys()``, a generator, read once), not one str.
            Each is a file's name alone (no folder): it is saved as ``directory/name``.
        directory: where they go; created (with its parents) if needed.
        mirrors: base URLs (``http://``, ``https://``, or ``file://`` for a local copy), tried in
            order: any iterable of str, not one str. A file's URL is the base URL, a ``/``, and
            the file name.
        checksums: ``{filename: sha256 hex}``; every file must have one, and a download whose
            sum differs is discarded and the next mirror tried.
        timeout: seconds (positive) to wait for the mirror's host name to be looked up, for a
            connection, or for data between two reads, before trying the next mirror (the time
            spent writing to the local disk never counts). None:
            ``DOWNLOAD_TIMEOUT_SECONDS`` (10 s). (The lookup is bounded by waiting for it in a
            worker thread: urllib's own timeout does not cover it; when this process can start
            no more threads, it is looked up unbounded instead; see ``_look_up_host``.)
        progress: say on stderr which mirror is being tried and why one failed, and show a
            tqdm progress bar (only when stderr is a terminal). A stderr that cannot be written
            (closed, or a pipe whose reader has gone) only goes without them: the download goes on.
        deadline: seconds (positive) one file may keep the download waiting for the mirror in
            all (its name's lookup, connecting, every read) before the next mirror is tried. The
            time the local disk takes to write the file does not count: a slow disk is not the
            mirror's fault, and would be as slow with the next one. None:
            ``DOWNLOAD_DEADLINE_SECONDS`` (300 s).

    Returns:
        The paths of the downloaded files.

    The arguments are checked before anything is downloaded or created.

    Raises:
        TypeError: ``filenames`` or ``mirrors`` is a single str (pass ``[name]``) or not an
            iterable, a file name or mirror is not a str, or ``timeout``/``deadline`` is not a
            number.
        ValueError: a file name is not a name alone (it holds a ``/``, or is ``..``) or has no
            checksum, a mirror is not an ``http://``, ``https://`` or ``file://`` URL (a bare
            path, or a host typed without ``http://``: the message suggests the URL meant, and
            says when that path is no directory here; see ``_looks_like_a_host``), or
            ``timeout``/``deadline`` is not positive and finite.
        NotADirectoryError: ``directory``, or its nearest existing parent, is not a directory
            (a file, a broken symbolic link).
        IsADirectoryError: a file's name in ``directory`` is taken by a folder.
        PermissionError, OSError: ``directory`` cannot be created or written (permission denied,
            a read-only file system): found before any mirror is asked, by creating and removing
            an empty hidden file there. Or the disk failed while a file was written (a full disk
            or quota, an I/O error, a file-size limit): that stops the download at once, no other
            mirror is tried, the partial file is removed and the files verified before are kept.
            Or this process, or the whole system, has too many files open (EMFILE, ENFILE), or the
            machine ran out of memory (ENOMEM) or of network buffer space (ENOBUFS), met at any
            point, a mirror's lookup, connection or reads included: no mirror is to blame and
            every one would fail the same way, so that stops the download at once too.
            The OSError has the errno of the OS's error, and its message names the folder (and
            the file being written, or the URL being fetched), the OS's reason, for a full disk
            or quota the room the missing files need (in MB, for the published files), and how
            to download elsewhere (root / ``--data-dir``, ``$TINYGRAD_CNN_DATA``) or to raise
            the limit (``ulimit -f``, ``ulimit -n``).
        MemoryError: Python could not allocate memory while a file was fetched, written or
            checked: the download stops at once, as for ENOMEM (no other mirror is tried, the
            partial file is removed, the files verified before are kept), and the message names
            the folder, the file and its URL, what became of the download and what to do.
        DownloadError: (a ``RuntimeError``) a file failed on every mirror. The message gives
            each mirror's reason, which files are still missing and which were downloaded and
            verified before, the directory they belong in, and how to point to a directory that
            holds them; when an ``https://`` mirror failed to verify its certificate and none
            had its certificate verified (the others failed before theirs was checked), also
            what that usually means (the machine's CA certificates). A mirror whose request
            failed because the proxy set for it cannot be used (``$https_proxy=http:/proxy``: no
            host; a port that is no number) has that as its reason, naming the setting. Files
            downloaded before the failure are kept; the remaining ones are not attempted. The folders this call
            created (``directory`` and any missing parents) are removed again, deepest first,
            as long as they are empty: a folder that existed before, or that holds a verified
            download, is kept.
    """
    file_names = _strings(filenames, "filenames", "file name")  # lists: a generator is read only once
    mirror_urls = _check_mirrors(mirrors)
    timeout = _checked_seconds("timeout", DOWNLOAD_TIMEOUT_SECONDS if timeout is None else timeout)
    deadline = _checked_seconds("deadline", DOWNLOAD_DEADLINE_SECONDS if deadline is None else deadline)
    directory = Path(directory).expanduser()
    for name in file_names:  # "sub/x.gz" failed only once downloaded, and "../x.gz" was saved outside directory
        if name in ("", ".", "..") or any(character in name for character in ("/", "\\", "\0")):
            raise ValueError(f"file name {name!r} is not a file's name alone: each file is fetched as <mirror>/<name> "
                             f"and saved as {directory / '<name>'}")
    unknown = [name for name in file_names if name not in checksums]
    if unknown:
        raise ValueError(f"no SHA256 checksum known for {', '.join(unknown)}; refusing to download unverified files")
    problem = _not_a_directory(directory)
    if problem is not None:
        raise NotADirectoryError(problem)
    for name in file_names:  # a folder in a file's place: found when the download was written, after asking a mirror
        if (directory / name).is_dir():
            raise _not_a_file_error(directory / name)
    created_folders: list[Path] = []
    try:
        # before any mirror is asked: a folder that cannot be written must not read as a network failure
        try:
            created_folders = _make_directories(directory)
        except OSError as error:
            raise _cannot_write_error(directory, f"creating the folder {error.filename or directory}", error, file_names, checksums) from None
        try:
            _try_writing_in(directory)
        except OSError as error:
            raise _cannot_write_error(directory, "creating a file in it", error, file_names, checksums) from None
        return _download_each(file_names, directory, mirror_urls, checksums, timeout, deadline, progress)
    except BaseException:  # a failure or an interrupt: leave no empty folder behind, to be mistaken later for the data's
        _remove_empty_folders(created_folders)
        raise


def _try_writing_in(directory: Path) -> None:
    """Create and remove an empty hidden file in ``directory``; the OS's error if it cannot
    (PermissionError, OSError for a read-only file system or a full disk)."""
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".tinygrad_cnn-write-test.", suffix=".tmp"):
        pass


def _cannot_write_error(
    directory: Path, action: str, error: OSError, missing: Sequence[str], checksums: Mapping[str, str],
    done: str = "nothing was downloaded", kept: Sequence[str] = (),
) -> OSError:
    """The error for a download ``directory`` that cannot be created or written, found before
    any mirror is asked or while a file is written, or for a machine out of open files (EMFILE,
    ENFILE), memory (ENOMEM) or network buffer space (ENOBUFS) there or while a mirror is
    fetched: an OSError of the same errno as ``error``
    (so a PermissionError stays one) naming the folder, what failed (``action``), the OS's
    reason and what became of the download (``done``); for a full disk or quota, how much room
    the ``missing`` files need (and with the files ``kept``, which were downloaded before);
    then the ways out."""
    reason = error.strerror or str(error)
    space = ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):  # a full disk, or a full quota
        needed = _megabytes(missing, checksums)
        if needed is not None:
            every_file = [*kept, *missing]
            with_kept = f" (all {len(every_file)} files, in another directory: {_megabytes(every_file, checksums)})" if kept else ""
            space = f" {', '.join(missing)} {'needs' if len(missing) == 1 else 'need'} {needed}{with_kept}."
        other, fix = "a directory with room", f"free {needed or 'some space'} there"
    elif error.errno == errno.EFBIG:  # a file-size limit: the shell's ulimit, most often, which holds in every directory
        return OSError(error.errno, f"cannot download into {directory}: {action} failed ({reason}), so {done}. "
                                    f"The file-size limit of this process (the shell's ulimit -f) holds in every "
                                    f"directory: raise it (ulimit -f unlimited) and run again, or put "
                                    f"{', '.join(missing)} there yourself")
    elif error.errno in (errno.EMFILE, errno.ENFILE):  # too many open files: no other directory or mirror is spared
        return OSError(error.errno, f"cannot download into {directory}: {action} failed ({reason}), so {done}. "
                                    f"{_open_files_advice(error.errno)}, or put {', '.join(missing)} there yourself")
    elif error.errno in (errno.ENOMEM, errno.ENOBUFS):  # the machine's memory: no other directory or mirror is spared
        return OSError(error.errno, f"cannot download into {directory}: {action} failed ({reason}), so {done}. "
                                    f"{_memory_advice(error.errno)}, or put {', '.join(missing)} there yourself")
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):  # not allowed, or a read-only file system
        other, fix = "a directory you can write", f"make {directory} writable"
    else:  # an I/O error and the like: the disk itself, or the folder gone meanwhile
        other, fix = "a directory on another disk", f"check the disk that holds {directory}"
    message = (
        f"cannot download into {directory}: {action} failed ({reason}), so {done}.{space} "
        f"Download into {other} instead: {_how_to_point_elsewhere(directory, other)}; "
        f"or {fix}, or put {', '.join(missing)} there yourself"
    )
    return OSError(error.errno, message) if error.errno is not None else OSError(message)


def _open_files_advice(error_number: int) -> str:
    """What to do when this process (EMFILE) or the whole system (ENFILE) has too many files open."""
    if error_number == errno.ENFILE:
        return ("The system's table of open files is full (all programs together; another mirror or directory would fail "
                "the same way): close programs that hold many files open, or raise the system's limit (fs.file-max), and run again")
    try:
        import resource  # (Unix only)
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        now = f", now {limit}" if limit != resource.RLIM_INFINITY else ""
    except (ImportError, OSError, ValueError):
        now = ""
    return ("This process has as many files open as its limit allows (another mirror or directory would fail the same "
            f"way): close the files it keeps open, or raise the limit (the shell's ulimit -n{now}) and run again")


#: how to get more memory, for ENOMEM and for Python's MemoryError
FREE_MEMORY_ADVICE = ("close programs that use much memory, or raise this process's memory limit (the shell's ulimit -v, "
                      "a container's limit), and run again")


def _memory_advice(error_number: int) -> str:
    """What to do when this machine ran out of memory (ENOMEM) or of network buffer space (ENOBUFS)."""
    if error_number == errno.ENOBUFS:
        return ("This machine ran out of network buffer space (ENOBUFS), and another mirror would fail the same way: "
                "close programs that hold many network connections, or wait until the network is less busy, and run again")
    return f"This machine ran out of memory (ENOMEM), and another mirror or directory would fail the same way: {FREE_MEMORY_ADVICE}"


def _out_of_memory_error(directory: Path, action: str, missing: Sequence[str], done: str) -> MemoryError:
    """The error for Python's MemoryError met while a file was downloaded into ``directory``: a
    MemoryError still (a caller that handles one keeps doing so), now naming the folder, what
    failed (``action``: the file and its URL), what became of the download (``done``, as
    ``_cannot_write_error``'s) and the ways out. Python's own carries no message at all."""
    return MemoryError(
        f"cannot download into {directory}: {action} failed (out of memory), so {done}. This process ran out of "
        f"memory (Python's MemoryError), and another mirror or directory would fail the same way: {FREE_MEMORY_ADVICE}, "
        f"or put {', '.join(missing)} there yourself"
    )


def _megabytes(file_names: Sequence[str], checksums: Mapping[str, str]) -> Optional[str]:
    """The room ``file_names`` take, by their checksums' ``PUBLISHED_SIZES``: ``"11.6 MB"``
    (rounded up, to 0.1 MB); None when one of them is not a published file."""
    total = 0
    for name in file_names:
        size = PUBLISHED_SIZES.get(checksums[name].lower())
        if size is None:
            return None
        total += size
    return f"{math.ceil(total / 100_000) / 10:.1f} MB"


def _make_directories(directory: Path) -> list[Path]:
    """Create ``directory`` and those of its parents that are missing; return the folders this
    call created, deepest first. A folder that existed before (or that another process creates
    meanwhile) is not in the list, so it is never removed by ``_remove_empty_folders``. If a
    mkdir fails, the folders created before it are removed again and the OSError comes out."""
    missing: list[Path] = []
    folder = directory
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    try:
        for folder in reversed(missing):  # the outermost first
            try:
                folder.mkdir()
            except FileExistsError:  # made meanwhile by someone else: not ours
                continue
            created.insert(0, folder)
    except BaseException:
        _remove_empty_folders(created)
        raise
    return created


def _remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove each of ``folders`` (a chain of nested folders, deepest first) while it is empty.
    The first that is not empty (it holds verified downloads, or something put there meanwhile)
    is kept, and so are the folders above it."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _download_each(
    file_names: Sequence[str], directory: Path, mirror_urls: Sequence[str], checksums: Mapping[str, str],
    timeout: float, deadline: float, progress: bool,
) -> list[Path]:
    """``download_files``'s loop, once its arguments are checked and ``directory`` exists."""
    downloaded: list[Path] = []
    for position, filename in enumerate(file_names):
        destination = directory / filename
        failures: list[str] = []
        https_certificates: list[Optional[bool]] = []  # per https mirror: _certificate_verdict
        for number, mirror in enumerate(mirror_urls, start=1):
            url = mirror.rstrip("/") + "/" + filename
            if progress:
                _tell(f"downloading {filename} from mirror {number} of {len(mirror_urls)}: {url}")
            try:
                _download_verified(url, destination, checksums[filename], timeout, deadline, progress)
            except _LocalWriteError as error:  # the disk's fault, not this mirror's: stop, keeping the verified files
                kept = [path.name for path in downloaded]
                raise _cannot_write_error(directory, f"writing {filename}", error.error, file_names[position:], checksums,
                                          _what_was_done(filename, kept, error.partial), kept) from None
            except (MemoryError, _OutOfMemory) as error:  # this process's memory: every mirror would fail the same way
                kept = [path.name for path in downloaded]
                partial = isinstance(error, _OutOfMemory) and error.partial
                raise _out_of_memory_error(directory, f"downloading {filename} from {url}", file_names[position:],
                                           _what_was_done(filename, kept, partial)) from None
            # URLError, HTTPError and timeouts are OSErrors; a ValueError is a URL that cannot be requested
            # (a non-ASCII path over HTTP), an answer urllib cannot read, or a proxy setting urllib cannot use
            # (for this mirror's scheme: another mirror's may have a proxy that works, or none): the next is tried
            except (OSError, ValueError, http.client.HTTPException, _BadDownload) as error:
                exhausted = _local_resource_exhausted(error)
                if exhausted is not None:  # this machine's limit, not the mirror's fault: every mirror would fail too
                    kept = [path.name for path in downloaded]
                    raise _cannot_write_error(directory, f"fetching {url}", exhausted, file_names[position:], checksums,
                                              _what_was_done(filename, kept, partial=False), kept) from None
                failures.append(f"  {url}: {_failure_reason(error, timeout)}")
                if urllib.parse.urlsplit(url).scheme.lower() == "https":
                    https_certificates.append(_certificate_verdict(error))
                if progress:
                    _tell(f"  failed: {_failure_reason(error, timeout)}")
                continue
            downloaded.append(destination)
            break
        else:
            raise _download_error(directory, file_names[position:], failures, downloaded,
                                  _points_to_the_ca_certificates(https_certificates))
    return downloaded


def _what_was_done(filename: str, kept: Sequence[str], partial: bool) -> str:
    """What became of a download stopped while ``filename`` was fetched, for ``_cannot_write_error``:
    ``"nothing was downloaded"``, or that ``filename`` was not and the files ``kept`` (downloaded
    and verified before) are kept; ``partial``: bytes of it had reached a partial copy, which is
    removed (else no partial copy is named: none existed, or it held nothing)."""
    if not kept:
        return f"nothing was downloaded (the partial {filename} is removed)" if partial else "nothing was downloaded"
    removed = " (its partial copy is removed)" if partial else ""
    return (f"{filename} was not downloaded{removed}; {', '.join(kept)}, downloaded and verified before, "
            f"{'is' if len(kept) == 1 else 'are'} kept")


#: errnos that say this machine ran out of something, not that a mirror failed
LOCAL_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS)


def _local_resource_exhausted(error: BaseException) -> Optional[OSError]:
    """The OSError in ``error`` that says this machine ran out of a resource
    (``LOCAL_RESOURCE_ERRNOS``): too many files open, EMFILE (this process's limit) or ENFILE
    (the system's); memory, ENOMEM; or network buffer space, ENOBUFS. Else None. It is looked
    for in ``error`` itself, the ``reason`` of urllib's URLError, and down the chain of errors
    each was raised from or while handling (``__cause__``, or ``__context__`` unless
    suppressed), as traceback prints them: the read's OSError that ``_read_from_mirror``
    raises a ``_BadDownload`` from, or an ssl.SSLError raised while the CA certificates were
    loaded for an https mirror and a file could not be opened (which is not a certificate that
    failed verification). Met while looking up a mirror's name, connecting to it, loading the
    CA certificates, reading from it or opening a ``file://`` copy, it is no mirror's fault:
    every other mirror would fail the same way."""
    pending: list[BaseException] = [error]
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        pending.append(reason)
    seen: set[int] = set()  # a chain can loop back on itself
    while pending:
        cause = pending.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in LOCAL_RESOURCE_ERRNOS:
            return cause
        if cause.__cause__ is not None:
            pending.append(cause.__cause__)
        elif cause.__context__ is not None and not cause.__suppress_context__:
            pending.append(cause.__context__)
    return None


def _download_error(
    directory: Path, missing: Sequence[str], reasons: Sequence[str], present: Sequence[Path],
    certificate_failure: bool, folder: Optional[str] = None, name: Optional[str] = None,
) -> DownloadError:
    """The DownloadError for ``missing[0]``, which no mirror could supply, in the one wording of
    ``download_files`` and of ``mnist`` / ``fashion_mnist`` (which give the data set's ``name``
    and ``folder``): why each mirror failed (``reasons``), what that usually means when the https
    mirrors failed on their certificates (``certificate_failure``: ``CERTIFICATE_ADVICE``),
    which files are missing from ``directory`` and which are ``present`` there (for
    ``download_files``, those it downloaded and verified before the failure; for a data set,
    all of its files found there), and how to put the files there or load them from elsewhere."""
    whose = f"{name}'s " if name else ""
    lines = "\n".join(reasons) if reasons else "  (no mirrors given)"
    advice = CERTIFICATE_ADVICE + "\n" if certificate_failure else ""
    return DownloadError(
        f"could not download {whose}{missing[0]} from any mirror:\n{lines}\n{advice}"
        + _where_to_put_files(directory, missing, folder, name, present),
        directory, missing, reasons, certificate_failure,
    )


# ----------------------------------------------------------------------------- loading


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


Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _load_splits(paths: Mapping[str, Path]) -> Splits:
    x_train, y_train = _load_split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS])
    x_test, y_test = _load_split(paths[TEST_IMAGES], paths[TEST_LABELS])
    return x_train, y_train, x_test, y_test


def load_idx_directory(directory: PathLike) -> Splits:
    """Load any data set stored as MNIST is: the four IDX files in ``directory``, nothing downloaded.

    The files keep MNIST's names (``train-images-idx3-ubyte[.gz]``, …), hold 28x28 ``ubyte``
    images and labels 0..9 (KMNIST, your own), and are not checked against any checksum.
    Returns and raises as ``mnist`` does (``FileNotFoundError`` when the directory or a file
    is missing, ``NotADirectoryError`` when it is a file).
    """
    directory = Path(directory).expanduser()
    if not directory.exists():
        raise FileNotFoundError(f"the directory {directory} does not exist.{_suggestion(directory)}")
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory.{_suggestion(directory.parent)}")
    paths = {name: _find_idx_file(directory, name) for name in MNIST_FILES}
    missing = [f"{name}.gz" for name, path in paths.items() if path is None]
    if missing:
        raise FileNotFoundError(_where_to_put_files(directory, missing, present=[path for path in paths.values() if path is not None]))
    return _load_splits(paths)


def _load_data_set(
    name: str, folder: str, function: str, root: Optional[PathLike], download: bool,
    mirrors: Sequence[str], checksums: Mapping[str, str],
) -> Splits:
    """Find (``_data_directory``), download what is missing (``_check_before_completing``), check
    and load one data set."""
    directory = _data_directory(root, folder, name)
    problem = _not_a_directory(directory)
    if problem is not None:  # root/mnist a file or a broken link (an unmounted disk): neither readable nor creatable
        raise NotADirectoryError(
            f"{problem}; {name}'s files are read from (and downloaded into) {directory}: "
            f"fix or remove it, or pass a directory that holds the files as root"
        )
    paths = {base: _find_idx_file(directory, base) for base in MNIST_FILES}
    missing = [f"{base}.gz" for base, path in paths.items() if path is None]
    if missing:
        present = {base: path for base, path in paths.items() if path is not None}
        if not download:
            only_missing = f": it downloads only the missing files, once those found are checked to be {name}'s published files"
            raise FileNotFoundError(
                _where_to_put_files(directory, missing, folder, name, list(present.values()))
                + f" (Or call {function}(download=True){only_missing if present else ''}.)"
            )
        if present:
            _check_before_completing(directory, name, folder, present, missing)
        try:
            download_files(missing, directory, mirrors, checksums)
        except DownloadError as error:  # the same error, naming the data set and all its files found there
            there_now = [path for path in (_find_idx_file(directory, base) for base in MNIST_FILES) if path is not None]
            raise _download_error(directory, error.missing, error.reasons, there_now, error.certificate_failure,
                                  folder, name) from None
        paths = {base: _find_idx_file(directory, base) for base in MNIST_FILES}
    problem = _wrong_labels(directory, name, folder)
    if problem is not None:  # same file names, other data, or the splits mixed up: never train or test on it by mistake
        raise ValueError(problem)
    return _load_splits(paths)


def _check_before_completing(directory: Path, name: str, folder: str, present: Mapping[str, Path], missing: Sequence[str]) -> None:
    """Before downloading ``missing`` beside the ``present`` files (``{base name: path}``) of a
    partial ``directory``: check that each present file is ``name``'s published file under its
    own name (``_published_file``: the ``.gz`` sum, or the content's), and say on stderr which
    were found and which are being downloaded. A file that is not (your own data, a corrupt or
    edited copy, the other data set's) is a ValueError naming it: the downloaded files are
    never mixed with it into one data set, and it is never overwritten."""
    problem = _wrong_labels(directory, name, folder)
    if problem is not None:  # the other data set's labels, or the splits swapped: that message says more
        raise ValueError(problem)
    unpublished = [path for base, path in present.items() if _published_file(path, (base,)) != (name, base)]
    if unpublished:
        names = ", ".join(path.name for path in unpublished)
        one = len(unpublished) == 1
        raise ValueError(
            f"{directory} holds some of {name}'s files, and {names} {'is' if one else 'are'} not {name}'s published "
            f"{'file' if one else 'files'} (the SHA-256 of neither the .gz nor the uncompressed content matches), so the "
            f"missing {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not downloaded: {name}'s published files "
            f"would be mixed with {'it' if one else 'them'} into one data set. {_found_there(present.values(), unpublished)}. To use your files, "
            f"put the missing ones beside them yourself (any IDX files then load, unchecked); to download all of "
            f"{name}, move {names} out of {directory}; or {_how_to_point_elsewhere(directory, 'a directory that holds all four files')}"
        )
    _tell(
        f"{name}: downloading the missing {', '.join(missing)} into {directory}. "
        f"{_found_there(present.values())} (the published files: SHA-256 checked)"
    )


def mnist(root: Optional[PathLike] = None, download: bool = True) -> Splits:
    """Load MNIST: handwritten digits, 60000 training and 10000 test images (classes ``MNIST_CLASSES``).

    Args:
        root: the directory with the four IDX files (each ``.gz`` or raw; ``.gz`` is used
            when both exist), or a directory holding them in an ``mnist/`` folder. It must
            exist. None: ``$TINYGRAD_CNN_DATA`` (same rules), else the per-user cache
            ``~/.cache/tinygrad_cnn/mnist``.
        download: fetch missing files (as ``.gz``, checksum-verified) from ``MIRRORS``. When
            some of the four files are there already, only the missing ones are fetched, as
            torchvision's ``MNIST(download=True)`` does, and only once each present file is
            checked to be the published one (the SHA-256 of its ``.gz``, or of its uncompressed
            content); stderr says which files were found and which are being downloaded. A
            present file that is not the published one (your own data, a corrupt copy) is
            never overwritten (torchvision downloads over a file whose checksum differs, and
            over uncompressed files whose verified ``.gz`` is missing) nor completed with
            downloaded files into a mixed data set: that is a ValueError naming it. When all
            four files are there, nothing is downloaded or checksummed: any IDX files load.

    Returns:
        ``(x_train, y_train, x_test, y_test)``: images ``uint8`` of shape ``N,1,28,28``
        (0 = background, 255 = ink) and labels ``int64`` of shape ``N``, in 0..9.

    Raises:
        FileNotFoundError: the root does not exist (it is never created), or files are missing
            and ``download`` is False (the message says which, and in a partial folder which
            were found; where to put them, how to point to them: root / ``--data-dir`` or
            ``$TINYGRAD_CNN_DATA``; and that ``download=True`` fetches only the missing ones).
        NotADirectoryError: the root is a file, or the data set's folder under it (``root/mnist``,
            the cache folder) exists but is not a directory (a file, a broken symbolic link).
        DownloadError: (a ``RuntimeError``) files are missing and no mirror could supply them.
        IDXFormatError: a file is not well-formed IDX (see ``read_idx``).
        MNISTFormatError: images are not 28x28, a split's image and label counts differ,
            or a label is outside 0..9.
        ValueError: the directory holds Fashion-MNIST's published labels, of either split,
            gzipped or not (use ``fashion_mnist``), or MNIST's published labels under the other
            split's name (the training and test files swapped, or one split copied over the other);
            or, with files missing and ``download`` True, a present file is not MNIST's published
            one (see ``download``).
        PermissionError, OSError: files are missing and the directory they would be downloaded
            into cannot be created or written, or the disk fails while they are written (a full
            disk: the message says how many MB they need), or too many files are open (EMFILE,
            ENFILE), or the machine ran out of memory or network buffers (ENOMEM, ENOBUFS; see
            ``download_files``).
        MemoryError: files are missing and Python ran out of memory while they were downloaded
            (see ``download_files``).
        IsADirectoryError, FileNotFoundError, OSError: a file's name (``.gz`` or raw) exists
            but is a directory, a broken symbolic link, or a FIFO or device.
    """
    return _load_data_set("MNIST", MNIST_FOLDER, "mnist", root, download, MIRRORS, SHA256)


def fashion_mnist(root: Optional[PathLike] = None, download: bool = True) -> Splits:
    """Load Fashion-MNIST: Zalando's 28x28 clothing images in MNIST's format (classes ``FASHION_MNIST_CLASSES``).

    As ``mnist``, with the folder ``fashion-mnist/`` (root, ``$TINYGRAD_CNN_DATA`` or the
    cache ``~/.cache/tinygrad_cnn/fashion-mnist``), the ``FASHION_MNIST_MIRRORS`` and the
    ``FASHION_MNIST_SHA256`` table; a directory holding MNIST's published labels (of either
    split, under either name, gzipped or not) is refused.
    """
    return _load_data_set(
        "Fashion-MNIST", FASHION_MNIST_FOLDER, "fashion_mnist", root, download, FASHION_MNIST_MIRRORS, FASHION_MNIST_SHA256
    )


# ----------------------------------------------------------------------------- batching


def _as_generator(rng: Union[None, int, np.integer, np.random.Generator]) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(checked_seed("rng (an int seed, or a numpy.random.Generator)", rng))
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
        ValueError: ``batch_size`` is not positive, ``rng`` is a negative seed, the arrays
            are 0-dimensional, or their sample counts differ.
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
