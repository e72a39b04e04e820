"""Tests for tinygrad_cnn.datasets: IDX reading and validation, MNIST loading, download
(against a local HTTP server on 127.0.0.1, never the internet), and batching."""

from __future__ import annotations

import contextlib
import email.message
import errno
import functools
import gzip
import hashlib
import http.client
import http.server
import io
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_cnn import datasets
from tinygrad_cnn.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_SHA256,
    MNIST_CLASSES,
    MNIST_FILES,
    SHA256,
    DownloadError,
    IDXFormatError,
    MNISTFormatError,
    batches,
    default_root,
    download_files,
    fashion_mnist,
    load_idx_directory,
    mnist,
    read_idx,
)

TRAIN_LABELS = MNIST_FILES[1]

# ----------------------------------------------------------------------------- IDX writing helpers

IDX_TYPE_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype("i2"): 0x0B,
    np.dtype("i4"): 0x0C,
    np.dtype("f4"): 0x0D,
    np.dtype("f8"): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: magic, big-endian sizes, big-endian row-major values."""
    array = np.asarray(array)
    type_code = IDX_TYPE_CODES[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).tobytes()


def write_file(path: Path, content: bytes) -> Path:
    """Write ``content`` to ``path``, gzip-compressed (reproducibly: no time stamp) when the name ends in ``.gz``."""
    path.write_bytes(gzip.compress(content, mtime=0) if path.suffix == ".gz" else content)
    return path


def write_idx(path: Path, array: np.ndarray) -> Path:
    return write_file(path, idx_bytes(array))


def make_split(count: int, seed: int, image_size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, image_size, image_size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


def write_mnist(directory: Path, compress: bool = True, train: int = 12, test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny MNIST-layout dataset; returns {file base name: array}."""
    directory.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = make_split(train, seed)
    test_images, test_labels = make_split(test, seed + 1)
    arrays = dict(zip(MNIST_FILES, (train_images, train_labels, test_images, test_labels)))
    suffix = ".gz" if compress else ""
    for name, array in arrays.items():
        write_idx(directory / f"{name}{suffix}", array)
    return arrays


def assert_loaded(result: tuple[np.ndarray, ...], arrays: dict[str, np.ndarray]) -> None:
    x_train, y_train, x_test, y_test = result
    for images, labels, images_name, labels_name in (
        (x_train, y_train, MNIST_FILES[0], MNIST_FILES[1]),
        (x_test, y_test, MNIST_FILES[2], MNIST_FILES[3]),
    ):
        assert images.dtype == np.uint8 and images.shape == (len(arrays[images_name]), 1, 28, 28)
        assert labels.dtype == np.int64 and labels.shape == (len(arrays[labels_name]),)
        np.testing.assert_array_equal(images[:, 0], arrays[images_name])
        np.testing.assert_array_equal(labels, arrays[labels_name])


# ----------------------------------------------------------------------------- read_idx: round trips

idx_dtypes = st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
idx_arrays = idx_dtypes.flatmap(
    lambda dtype: hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
        elements={"allow_nan": False} if np.dtype(dtype).kind == "f" else None,
    )
)


@settings(max_examples=60, deadline=None)
@given(array=idx_arrays, compress=st.booleans())
def test_read_idx_round_trips_shapes_dtypes_and_values(array: np.ndarray, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = write_idx(Path(directory) / ("data.idx.gz" if compress else "data.idx"), array)
        result = read_idx(path)
    assert result.shape == array.shape
    assert result.dtype == array.dtype and result.dtype.isnative
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable


def test_read_idx_raw_and_gz_give_the_same_array(tmp_path: Path) -> None:
    images, _ = make_split(3, seed=1)
    raw = read_idx(write_idx(tmp_path / "images", images))
    compressed = read_idx(write_idx(tmp_path / "images.gz", images))
    np.testing.assert_array_equal(raw, images)
    np.testing.assert_array_equal(compressed, images)


def test_read_idx_accepts_str_paths(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(str(write_idx(tmp_path / "labels", labels))), labels)


# ----------------------------------------------------------------------------- read_idx: validation


def valid_images_bytes() -> bytes:
    return idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))


@pytest.mark.parametrize("name", ["images", "images.gz"])
def test_bad_magic_is_rejected_naming_the_file(tmp_path: Path, name: str) -> None:
    path = write_file(tmp_path / name, b"\x12\x34" + valid_images_bytes()[2:])
    with pytest.raises(IDXFormatError, match=rf"{re.escape(name)}: bad magic number 0x12340803"):
        read_idx(path)


def test_unknown_type_byte_is_rejected(tmp_path: Path) -> None:
    path = write_file(tmp_path / "images", b"\x00\x00\x07\x03" + valid_images_bytes()[4:])
    with pytest.raises(IDXFormatError, match=r"images: bad magic number 0x00000703: unknown data type byte 0x07"):
        read_idx(path)


def test_zero_dimensions_are_rejected(tmp_path: Path) -> None:
    path = write_file(tmp_path / "scalar", b"\x00\x00\x08\x00\x05")
    with pytest.raises(IDXFormatError, match=r"scalar: .*declares 0 dimensions"):
        read_idx(path)


def test_unexpected_magic_is_rejected(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels-not-images", np.zeros(4, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"labels-not-images: bad magic number 0x00000801 \(ubyte, 1 dimension\), expected 0x00000803 \(ubyte, 3 dimensions\)"):
        read_idx(path, expected_magic=0x00000803)


@pytest.mark.parametrize("length", [0, 3, 4, 11])
def test_incomplete_header_is_rejected(tmp_path: Path, length: int) -> None:
    path = write_file(tmp_path / "short.gz", valid_images_bytes()[:length])
    with pytest.raises(IDXFormatError, match=r"short\.gz: incomplete header"):
        read_idx(path)


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"])
def test_truncated_payload_is_rejected(tmp_path: Path, name: str) -> None:
    header = bytes([0, 0, 8, 3]) + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path = write_file(tmp_path / name, header + bytes(1000))
    expected = f"{name}: payload has 1000 bytes but header declares 60000x28x28 = 47040000 (truncated)"
    with pytest.raises(IDXFormatError, match=re.escape(expected)):
        read_idx(path)


def test_trailing_bytes_are_rejected(tmp_path: Path) -> None:
    path = write_file(tmp_path / "labels.gz", idx_bytes(np.arange(5, dtype=np.uint8)) + b"\x00\x01")
    with pytest.raises(IDXFormatError, match=r"labels\.gz: payload has 7 bytes but header declares 5 = 5 \(trailing bytes"):
        read_idx(path)


def test_payload_size_accounts_for_wide_types(tmp_path: Path) -> None:
    content = idx_bytes(np.arange(6, dtype=np.int32).reshape(2, 3))
    path = write_file(tmp_path / "ints", content[:-1])
    with pytest.raises(IDXFormatError, match=r"ints: payload has 23 bytes but header declares 2x3 values x 4 bytes = 24"):
        read_idx(path)


def test_gz_name_on_a_file_that_is_not_gzip_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)))  # raw IDX under a .gz name
    with pytest.raises(IDXFormatError, match=r"train-labels-idx1-ubyte\.gz: named \.gz but is not gzip-compressed"):
        read_idx(path)


def test_corrupt_gzip_stream_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))[:-12])  # cut off mid-stream
    with pytest.raises(IDXFormatError, match=r"labels\.gz: corrupt or truncated gzip data"):
        read_idx(path)


def test_raw_name_on_a_gzip_file_hints_at_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(5, dtype=np.uint8))))
    with pytest.raises(IDXFormatError, match=r"labels: bad magic number 0x1f8b.*looks gzip-compressed"):
        read_idx(path)


def test_gz_file_compressed_twice_says_so(tmp_path: Path) -> None:
    """As when a server adds its own compression to an already-gzipped file: the file is named .gz
    already, so the hint must not be "name it .gz"."""
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(gzip.compress(idx_bytes(np.arange(5, dtype=np.uint8)))))
    with pytest.raises(IDXFormatError, match=r"labels\.gz: gzip-compressed twice.*decompress it once") as caught:
        read_idx(path)
    assert "name it .gz" not in str(caught.value)


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere-idx1-ubyte\.gz"):
        read_idx(tmp_path / "nowhere-idx1-ubyte.gz")


def test_idx_format_error_is_a_value_error_with_the_path(tmp_path: Path) -> None:
    path = write_file(tmp_path / "bad", b"\x01\x02\x03\x04")
    with pytest.raises(ValueError) as caught:
        read_idx(path)
    assert isinstance(caught.value, IDXFormatError) and caught.value.path == path


# ----------------------------------------------------------------------------- mnist(): loading


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_loads_gz_or_raw_files(tmp_path: Path, compress: bool) -> None:
    arrays = write_mnist(tmp_path, compress=compress)
    assert_loaded(mnist(tmp_path, download=False), arrays)


def test_mnist_prefers_gz_when_both_exist(tmp_path: Path) -> None:
    write_mnist(tmp_path, compress=False, seed=100)
    arrays = write_mnist(tmp_path, compress=True, seed=0)
    assert_loaded(mnist(tmp_path, download=False), arrays)


def test_mnist_accepts_a_mix_of_gz_and_raw(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, compress=True)
    for name in MNIST_FILES[::2]:
        compressed = tmp_path / f"{name}.gz"
        (tmp_path / name).write_bytes(gzip.decompress(compressed.read_bytes()))
        compressed.unlink()
    assert_loaded(mnist(str(tmp_path), download=False), arrays)


def test_mnist_root_defaults_to_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = write_mnist(tmp_path)
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path))
    assert_loaded(mnist(download=False), arrays)


def test_default_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_root() == tmp_path / "data"
    monkeypatch.setenv("TINYGRAD_CNN_DATA", "")
    assert default_root() == tmp_path / "cache" / "tinygrad_cnn" / "mnist"
    monkeypatch.delenv("TINYGRAD_CNN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec says to ignore relative paths
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".cache" / "tinygrad_cnn" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_root() == tmp_path / "home" / ".cache" / "tinygrad_cnn" / "mnist"
    assert default_root("fashion-mnist") == tmp_path / "home" / ".cache" / "tinygrad_cnn" / "fashion-mnist"


def test_mnist_without_download_names_missing_files_and_where_to_put_them(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as caught:
        mnist(tmp_path / "empty", download=False)
    message = str(caught.value)
    assert message.startswith(f"Missing from {tmp_path / 'empty' / 'mnist'}: {', '.join(GZ_FILES)}. Put the files there ")
    assert "Found there" not in message and "$TINYGRAD_CNN_DATA" in message
    assert message.endswith(" (Or call mnist(download=True).)")


def test_mnist_without_download_in_a_partial_folder_says_what_is_there_and_how_to_get_the_rest(tmp_path: Path) -> None:
    """Only the missing files were listed, as if the folder were empty: the files found there
    were not, nor that a download would fetch only the missing ones beside them."""
    directory = tmp_path / "partial"
    write_mnist(directory)
    (directory / GZ_FILES[3]).unlink()
    with pytest.raises(FileNotFoundError) as caught:
        mnist(directory, download=False)
    message = str(caught.value)
    assert message.startswith(f"Missing from {directory}: {GZ_FILES[3]}. Found there: {', '.join(GZ_FILES[:3])}. "
                              f"Put the missing files there (gzip-compressed .gz or uncompressed), or pass a directory "
                              f"that holds all four files (or holds them in a folder named mnist/) as root")
    assert message.endswith(" (Or call mnist(download=True): it downloads only the missing files, once those found "
                            "are checked to be MNIST's published files.)")
    with pytest.raises(FileNotFoundError, match=rf"Missing from {re.escape(str(directory))}: {GZ_FILES[3]}\. "
                                                rf"Found there: {', '.join(GZ_FILES[:3])}\. Put the missing files there"):
        load_idx_directory(directory)


# ----------------------------------------------------------------------------- mnist(): validation


def test_mnist_rejects_wrong_image_size(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    images, _ = make_split(12, seed=0, image_size=20)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    with pytest.raises(MNISTFormatError, match=r"train-images-idx3-ubyte\.gz: wrong image size: found 20x20 \(array shape 12x20x20\), expected 28x28"):
        mnist(tmp_path, download=False)


def test_mnist_rejects_image_and_label_count_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(MNISTFormatError, match=r"t10k-images-idx3-ubyte\.gz has 5 images but .*t10k-labels-idx1-ubyte\.gz has 4 labels"):
        mnist(tmp_path, download=False)


def test_mnist_rejects_labels_out_of_range(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path)
    labels = arrays["train-labels-idx1-ubyte"].copy()
    labels[7] = 10
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(MNISTFormatError, match=r"train-labels-idx1-ubyte\.gz: label 10 at index 7 is outside 0\.\.9"):
        mnist(tmp_path, download=False)


def test_mnist_rejects_swapped_files(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", arrays["train-labels-idx1-ubyte"])
    with pytest.raises(IDXFormatError, match=r"train-images-idx3-ubyte\.gz: bad magic number 0x00000801"):
        mnist(tmp_path, download=False)


def test_mnist_reports_the_broken_file(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(IDXFormatError, match=r"t10k-images-idx3-ubyte\.gz: payload has .* \(truncated\)"):
        mnist(tmp_path, download=False)


# ----------------------------------------------------------------------------- download, against a local server


class LocalServer:
    """An HTTP server on 127.0.0.1 serving ``directory``; ``/truncated/<name>`` promises more bytes than it
    sends, ``/slow/<name>`` sends them one by one, too slowly to finish, ``/superscript-length/<path>``
    serves ``<path>`` with the Content-Length "²" (a digit to str.isdigit, not to int), and
    ``/bad-redirect/<name>`` redirects to a Location that is no URL (an IPv6 address never closed)."""

    def __init__(self, directory: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path.startswith("/slow/"):  # one byte every 50 ms: never silent for long, never done
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    try:
                        for _ in range(200):
                            self.wfile.write(b"\x1f")
                            self.wfile.flush()
                            time.sleep(0.05)
                    except OSError:  # the client gave up
                        pass
                    return
                if self.path.startswith("/superscript-length/"):
                    body = (Path(self.directory) / self.path.removeprefix("/superscript-length/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", "\u00b2")
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True  # the end of the body is the end of the connection
                    return
                if self.path.startswith("/bad-redirect/"):
                    self.send_response(302)
                    self.send_header("Location", "http://[::1/mnist/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.startswith("/truncated/"):
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"\x1f\x8b" + bytes(98))
                    return
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, folder: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{folder}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A local server with ``good/`` (tiny MNIST .gz files) and ``bad/`` (same names, other bytes),
    the original arrays, and checksums of the good files."""
    root = tmp_path_factory.mktemp("served")
    arrays = write_mnist(root / "good", compress=True)
    write_mnist(root / "bad", compress=True, seed=50)
    checksums = {f"{name}.gz": hashlib.sha256((root / "good" / f"{name}.gz").read_bytes()).hexdigest() for name in MNIST_FILES}
    server = LocalServer(root)
    yield server, arrays, checksums
    server.close()


@pytest.fixture
def server(served):
    local_server, _, _ = served
    local_server.requests.clear()
    return local_server


@pytest.fixture
def arrays(served) -> dict[str, np.ndarray]:
    return served[1]


@pytest.fixture
def checksums(served) -> dict[str, str]:
    return served[2]


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a configured HTTP proxy from intercepting requests to the local server."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def dead_port_url() -> str:
    """A URL on a port nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def silent_url():
    """A URL whose server accepts connections (the kernel does, into the listen backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/mnist/"


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


GZ_FILES = [f"{name}.gz" for name in MNIST_FILES]


def test_download_lands_verified_files_that_load(tmp_path: Path, server: LocalServer, arrays, checksums) -> None:
    root = tmp_path / "new" / "cache"  # created on demand
    paths = download_files(GZ_FILES, root, [server.url("good")], checksums, timeout=5, progress=False)
    assert paths == [root / name for name in GZ_FILES]
    assert files_in(root) == sorted(GZ_FILES)  # no temporary files left behind
    assert_loaded(mnist(root, download=False), arrays)


def test_download_falls_back_to_the_next_mirror(tmp_path: Path, server: LocalServer, arrays, checksums) -> None:
    mirrors = [dead_port_url(), server.url("missing"), server.url("good")]  # refused, then 404, then fine
    download_files(GZ_FILES, tmp_path, mirrors, checksums, timeout=5, progress=False)
    assert files_in(tmp_path) == sorted(GZ_FILES)
    assert [request for request in server.requests if request.startswith("/missing/")] == [f"/missing/{name}" for name in GZ_FILES]
    assert_loaded(mnist(tmp_path, download=False), arrays)


def test_checksum_mismatch_tries_the_next_mirror(tmp_path: Path, server: LocalServer, checksums) -> None:
    download_files(GZ_FILES[:1], tmp_path, [server.url("bad"), server.url("good")], checksums, timeout=5, progress=False)
    assert server.requests == [f"/bad/{GZ_FILES[0]}", f"/good/{GZ_FILES[0]}"]
    assert hashlib.sha256((tmp_path / GZ_FILES[0]).read_bytes()).hexdigest() == checksums[GZ_FILES[0]]


def test_checksum_mismatch_leaves_no_file(tmp_path: Path, server: LocalServer, checksums) -> None:
    with pytest.raises(DownloadError, match=r"SHA256 mismatch") as caught:
        download_files(GZ_FILES, tmp_path, [server.url("bad")], checksums, timeout=5, progress=False)
    assert files_in(tmp_path) == []  # neither the final name nor a temporary file
    assert caught.value.missing == GZ_FILES and caught.value.directory == tmp_path


def test_interrupted_download_leaves_no_file(tmp_path: Path, server: LocalServer, checksums) -> None:
    with pytest.raises(DownloadError, match=r"(connection closed after 100 of 100000 bytes|IncompleteRead)"):
        download_files(GZ_FILES[:1], tmp_path, [server.url("truncated")], checksums, timeout=5, progress=False)
    assert files_in(tmp_path) == []


def test_download_syncs_the_directory_and_gets_the_umask_permissions(tmp_path: Path, server: LocalServer, checksums, monkeypatch) -> None:
    """Written through nn.atomic_file: the rename is durable (the directory is synced after it)
    and the file is readable as any new file is, not left private as mkstemp makes it."""
    synced: list[bool] = []
    original_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        original_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    previous_umask = os.umask(0o022)
    try:
        download_files(GZ_FILES[:1], tmp_path, [server.url("good")], checksums, timeout=5, progress=False)
    finally:
        os.umask(previous_umask)
    assert synced == [False, True]  # the file's data, then its directory
    assert stat.S_IMODE((tmp_path / GZ_FILES[0]).stat().st_mode) == 0o644
    assert files_in(tmp_path) == [GZ_FILES[0]]


def test_all_mirrors_failing_raises_runtime_error_with_guidance(tmp_path: Path, server: LocalServer, checksums) -> None:
    mirrors = [dead_port_url(), server.url("missing")]
    with pytest.raises(RuntimeError) as caught:
        download_files(GZ_FILES, tmp_path, mirrors, checksums, timeout=5, progress=False)
    message = str(caught.value)
    assert isinstance(caught.value, DownloadError)
    assert str(tmp_path) in message and "$TINYGRAD_CNN_DATA" in message
    assert all(name in message for name in GZ_FILES)  # every still-missing file is named
    assert "404" in message and mirrors[0] in message  # and why each mirror failed
    assert files_in(tmp_path) == []


def test_download_refuses_files_without_a_checksum(tmp_path: Path, server: LocalServer) -> None:
    with pytest.raises(ValueError, match=r"no SHA256 checksum known for extra\.gz"):
        download_files(["extra.gz"], tmp_path, [server.url("good")], {}, progress=False)
    assert server.requests == []


@pytest.mark.parametrize("mirror, message", [
    ("/srv/data/mnist/", r"mirror '/srv/data/mnist/' has no URL scheme.*http://, https://, file://.*file:///srv/data/mnist/"),
    ("ftp://example.com/mnist/", r"mirror 'ftp://example\.com/mnist/' has the URL scheme 'ftp'.*http://, https://, file://"),
    ("http:///mnist/", r"mirror 'http:///mnist/' names no host"),
    ("http://[::1/mnist/", r"mirror 'http://\[::1/mnist/' is not a valid URL \(Invalid IPv6 URL\)"),
    ("http://127.0.0.1:99999/mnist/", r"mirror 'http://127\.0\.0\.1:99999/mnist/' is not a valid URL \(Port out of range"),
], ids=["a bare path", "ftp", "no host", "bad IPv6 address", "bad port"])
def test_download_refuses_a_mirror_that_is_not_a_url_before_any_work(tmp_path: Path, server: LocalServer, checksums, mirror: str, message: str) -> None:
    target = tmp_path / "target"
    with pytest.raises(ValueError, match=message):
        download_files(GZ_FILES[:1], target, [server.url("good"), mirror], checksums, progress=False)
    assert not target.exists() and server.requests == []  # checked before the first download, and no folder made


@pytest.mark.parametrize("arguments, error, message", [
    ({"mirrors": "http://127.0.0.1/mnist/"}, TypeError,
     r"mirrors must be an iterable of str, not a single str \(for one mirror, pass \['http://127\.0\.0\.1/mnist/'\]\)"),
    ({"mirrors": b"http://127.0.0.1/mnist/"}, TypeError, r"mirrors must be an iterable of str, not a single bytes$"),
    ({"mirrors": [b"http://127.0.0.1/mnist/"]}, TypeError, r"each mirror must be a str, not bytes: b'http://127\.0\.0\.1/mnist/'"),
    ({"mirrors": None}, TypeError, r"mirrors must be an iterable of str, not NoneType: None"),
    ({"filenames": GZ_FILES[0]}, TypeError,
     r"filenames must be an iterable of str, not a single str \(for one file name, pass \['train-images-idx3-ubyte\.gz'\]\)"),
    ({"filenames": 3}, TypeError, r"filenames must be an iterable of str, not int: 3"),
    ({"filenames": (name for name in [GZ_FILES[0], Path("x.gz")])}, TypeError, r"each file name must be a str, not PosixPath: PosixPath\('x\.gz'\)"),
    ({"timeout": -1}, ValueError, r"timeout must be a positive, finite number of seconds, got -1"),
    ({"timeout": 0}, ValueError, r"timeout must be a positive, finite number of seconds, got 0"),
    ({"timeout": float("nan")}, ValueError, r"timeout must be a positive, finite number of seconds, got nan"),
    ({"timeout": "5"}, TypeError, r"timeout must be a number of seconds, not str"),
    ({"timeout": True}, TypeError, r"timeout must be a number of seconds, not bool"),
    ({"deadline": float("inf")}, ValueError, r"deadline must be a positive, finite number of seconds, got inf"),
], ids=["one mirror as a str", "mirrors as bytes", "mirror as bytes", "mirrors as None", "one file name as a str",
        "file names as an int", "a file name as a path", "negative timeout", "zero timeout", "nan timeout",
        "timeout as a str", "timeout as a bool", "infinite deadline"])
def test_download_checks_its_arguments_before_any_work(tmp_path: Path, server: LocalServer, checksums, arguments: dict, error: type, message: str) -> None:
    target = tmp_path / "target"
    call = {"filenames": GZ_FILES[:1], "directory": target, "mirrors": [server.url("good")], "checksums": checksums, "progress": False}
    with pytest.raises(error, match=message):
        download_files(**{**call, **arguments})
    assert not target.exists() and server.requests == []


def test_download_takes_any_iterable_of_file_names_and_mirrors(tmp_path: Path, server: LocalServer, checksums) -> None:
    """A dict's keys, a generator: each is read once, into a list, before any work."""
    wanted = {name: checksums[name] for name in GZ_FILES[:2]}
    paths = download_files(wanted.keys(), tmp_path / "keys", (url for url in [server.url("good")]), checksums, timeout=5, progress=False)
    assert paths == [tmp_path / "keys" / name for name in GZ_FILES[:2]]
    with pytest.raises(DownloadError, match=r"missing/train-images-idx3-ubyte\.gz: .*404") as caught:
        download_files(iter(GZ_FILES), tmp_path / "none", iter([server.url("missing")]), checksums, timeout=5, progress=False)
    assert caught.value.missing == GZ_FILES and len(caught.value.reasons) == 1


@pytest.mark.parametrize("mirror", [
    "localhost:8000/mnist/", "LOCALHOST/mnist/", "127.0.0.1:8000/mnist/", "10.0.0.1/mnist/", "example.com/mnist/",
    "example.com:8080/mnist/", "[::1]:8000/mnist/", "data.v2:8000/mnist/", "example.xn--p1ai/mnist/",
    "yann.lecun.com/exdb/mnist", "example.com", "localhost/", "10.0.0.1/", "example.com:8080/",
])
def test_download_suggests_http_for_a_host_typed_without_its_scheme(tmp_path: Path, mirror: str) -> None:
    with pytest.raises(ValueError) as caught:
        download_files(GZ_FILES[:1], tmp_path / "target", [mirror], SHA256, progress=False)
    message = str(caught.value)
    assert message.startswith(f"mirror {mirror!r} has no URL scheme: a mirror starts with http://, https://, file://")
    assert message.endswith(f"; did you mean {'http://' + mirror!r}?")
    assert "local directory" not in message
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize("mirror, directory, there", [
    ("./mnist/", "mnist", "does not exist"), ("../mnist/", "../mnist", "does not exist"),
    ("~/mnist/", "home/mnist", "does not exist"), ("mnist/", "mnist", "does not exist"),
    ("copy.v2/mnist", "copy.v2/mnist", None),  # looks like a host, but is a directory here
    ("data.v2", "data.v2", "does not exist"), ("mnist.tar.gz/", "mnist.tar.gz", "does not exist"),  # no host ends so
    ("mnist.data/", "mnist.data", "does not exist"),  # a folder's name, as only a slash follows it
    ("archive.tar.gz", "archive.tar.gz", "is not a directory"),
    ("~no-such-user-here/mnist/", "~no-such-user-here/mnist", "does not exist"),  # (Path.expanduser raised)
], ids=["dot slash", "dot dot slash", "tilde", "a plain name", "an existing dotted directory", "a dotted name with a digit",
        "a dotted name ending in an archive's suffix", "a dotted name and a slash", "a file", "an unknown user's home"])
def test_download_suggests_a_file_url_for_a_local_path(tmp_path: Path, monkeypatch, mirror: str, directory: str,
                                                       there: Optional[str]) -> None:
    """A dotted name such as data.v2, mnist.tar.gz/ or mnist.data/ that is not on disk was told
    "did you mean 'http://data.v2'?"; a path that is no directory here is now said to be none."""
    work = tmp_path / "work"
    (work / "copy.v2" / "mnist").mkdir(parents=True)
    (work / "archive.tar.gz").write_bytes(b"")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work / "home"))
    with pytest.raises(ValueError) as caught:
        download_files(GZ_FILES[:1], tmp_path / "target", [mirror], SHA256, progress=False)
    path = (work / directory).absolute()
    but = f", but {path} {there}" if there else ""
    assert str(caught.value) == (
        f"mirror {mirror!r} has no URL scheme: a mirror starts with http://, https://, file://; "
        f"for a local directory use {path.as_uri()}/{but}"
    )


def test_download_from_a_file_url_and_past_a_url_that_cannot_be_sent(tmp_path: Path, server: LocalServer, checksums) -> None:
    """file:// mirrors work (a local copy); a URL that passes the checks but cannot be sent over HTTP
    (a non-ASCII path) fails that mirror only, and the next ones are still tried."""
    local = tmp_path / "local copy"
    write_mnist(local)
    mirrors = [server.url("données"), (tmp_path / "nowhere").as_uri() + "/", local.as_uri() + "/"]
    paths = download_files(GZ_FILES, tmp_path / "target", mirrors, checksums, timeout=5, progress=False)
    assert files_in(tmp_path / "target") == sorted(GZ_FILES)
    assert all(path.read_bytes() == (local / path.name).read_bytes() for path in paths)
    with pytest.raises(DownloadError, match=r"données/train-images-idx3-ubyte\.gz: .*ascii") as caught:
        download_files(GZ_FILES[:1], tmp_path / "other", mirrors[:2], checksums, timeout=5, progress=False)
    assert len(caught.value.reasons) == 2 and "nowhere" in caught.value.reasons[1]
    assert not (tmp_path / "other").exists()


def test_only_a_url_that_cannot_be_requested_is_called_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer,
                                                            checksums) -> None:
    """Every ValueError met while a mirror was fetched was "a URL that cannot be requested", even one
    raised on the mirror's answer (urllib parsing a redirect's Location): that says what is wrong."""
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):  # the name is looked up here, not by a proxy
        monkeypatch.delenv(variable, raising=False)
    mirrors = [server.url("bad-redirect/good"), server.url("données"), "http://mirror..invalid/mnist/"]
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES[:1], tmp_path, mirrors, checksums, timeout=5, progress=False)
    redirect, non_ascii_path, empty_label = caught.value.reasons
    assert redirect == f"  {mirrors[0]}{GZ_FILES[0]}: an invalid response from the mirror (Invalid IPv6 URL)"
    assert non_ascii_path.startswith(f"  {mirrors[1]}{GZ_FILES[0]}: a URL that cannot be requested ('ascii' codec can't encode")
    assert empty_label.startswith(f"  {mirrors[2]}{GZ_FILES[0]}: a URL that cannot be requested (encoding with 'idna' codec failed")
    assert server.requests == [f"/bad-redirect/good/{GZ_FILES[0]}"]  # the non-ASCII path was never sent


def use_proxy(monkeypatch: pytest.MonkeyPatch, variable: str, proxy: str) -> None:
    """Set ``variable`` (``http_proxy``, ``HTTP_PROXY``, ...) to ``proxy`` as the only proxy setting,
    for every host (the local server's included), and have urllib read it anew. Host names are
    never looked up: as the resolver does, a name IDNA cannot encode raises UnicodeError, and
    any other name than 127.0.0.1 is not found."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(variable, proxy)
    monkeypatch.setattr(urllib.request, "_opener", None)  # urllib's opener reads the proxies when it is made
    original_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *arguments, **keywords):
        if host == "127.0.0.1":
            return original_getaddrinfo(host, *arguments, **keywords)
        host.encode("idna")
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "https_proxy"])
@pytest.mark.parametrize("proxy, problem, reported_before", [
    ("http:/proxy", "it names no host: a proxy URL reads http://host:port, with two slashes",
     "an invalid response from the mirror (proxy URL with no authority"),
    ("http://proxy..example:3128", "its host name proxy..example cannot be looked up: encoding with 'idna' codec failed",
     "a URL that cannot be requested (encoding with 'idna' codec failed"),
    ("http://proxy:port", "Port could not be cast to integer value as 'port'", "nonnumeric port: 'port'"),
    ("http://[bad", "Invalid IPv6 URL", "Name or service not known"),
    ("socks5://127.0.0.1:1080", "urllib sends requests through http:// and https:// proxies only, not socks5://",
     "<urlopen error"),  # "unknown url type: socks5"; for https, the SOCKS port taken for an HTTP proxy, refused here
], ids=["no host", "host not encodable", "port not a number", "bracket not closed", "socks"])
def test_a_proxy_setting_urllib_cannot_use_is_named_not_blamed_on_the_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, variable: str, proxy: str,
    problem: str, reported_before: str,
) -> None:
    """A proxy setting urllib cannot use made every request fail before it reached the mirror, and
    each mirror was reported as the cause: "an invalid response from the mirror", "a URL that
    cannot be requested", or urllib's bare words, never naming the setting."""
    use_proxy(monkeypatch, variable, proxy)
    mirrors = [server.url("good"), server.url("bad")] if variable.lower() == "http_proxy" else ["https://mirror.example/mnist/"]
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES[:1], tmp_path, mirrors, checksums, timeout=5, progress=False)
    reason = f"the proxy setting ${variable}={proxy} is invalid ("
    ending = "), so no request reached the mirror: correct it or unset it"
    for mirror, line in zip(mirrors, caught.value.reasons, strict=True):
        assert line.startswith(f"  {mirror}{GZ_FILES[0]}: {reason}{problem}") and line.endswith(ending)
        assert reported_before not in line
    assert server.requests == [] and files_in(tmp_path) == []
    assert not caught.value.certificate_failure


def test_a_proxy_setting_urllib_can_use_is_not_called_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checksums) -> None:
    """Only a proxy setting urllib cannot use is named: through one that refuses the connection,
    the reason is urllib's, as before."""
    use_proxy(monkeypatch, "http_proxy", dead_port_url().removesuffix("mnist/"))
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES[:1], tmp_path, ["http://mirror.example/mnist/"], checksums, timeout=5, progress=False)
    assert caught.value.reasons == [f"  http://mirror.example/mnist/{GZ_FILES[0]}: <urlopen error [Errno {errno.ECONNREFUSED}] "
                                    f"{os.strerror(errno.ECONNREFUSED)}>"]


@pytest.mark.parametrize("name", ["../x.gz", "sub/x.gz", "..", ""])
def test_a_file_name_that_is_a_path_is_refused_before_any_work(tmp_path: Path, name: str) -> None:
    """"../x.gz" was saved outside the directory (into its parent), and "sub/x.gz" failed only
    once downloaded, when its folder was found missing: each mirror "failed" (then, a disk error)."""
    source = tmp_path / "source"
    (source / "inner" / "sub").mkdir(parents=True)
    for path in (source / "x.gz", source / "inner" / "sub" / "x.gz"):
        path.write_bytes(b"data")
    target = tmp_path / "target" / "inner"
    target.mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"^file name {re.escape(repr(name))} is not a file's name alone: each file is "
                                         rf"fetched as <mirror>/<name> and saved as {re.escape(str(target / '<name>'))}$"):
        download_files([name], target, [(source / "inner").as_uri() + "/"], {name: hashlib.sha256(b"data").hexdigest()}, progress=False)
    assert files_in(tmp_path / "target") == ["inner"] and files_in(target) == []


def test_a_folder_in_a_files_place_is_named_before_any_mirror_is_asked(tmp_path: Path, server: LocalServer, checksums) -> None:
    """It was found only when the download was written: each mirror was asked, and "failed"."""
    (tmp_path / GZ_FILES[1] / GZ_FILES[1]).mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match=re.escape(f"is a directory, expected the IDX file {GZ_FILES[1]} there")):
        download_files(GZ_FILES, tmp_path, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert server.requests == [] and files_in(tmp_path) == [GZ_FILES[1]]


@pytest.mark.parametrize("kind", ["file", "broken symbolic link", "symbolic link to a file"])
def test_download_into_a_path_that_is_not_a_directory(tmp_path: Path, server: LocalServer, checksums, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("not a folder")
        description = "a file"
    elif kind == "broken symbolic link":
        target.symlink_to(tmp_path / "unmounted" / "disk")
        description = f"a broken symbolic link to {tmp_path / 'unmounted' / 'disk'}"
    else:
        (tmp_path / "notes.txt").write_text("not a folder")
        target.symlink_to(tmp_path / "notes.txt")
        description = f"a symbolic link to {tmp_path / 'notes.txt'}, which is not a directory"
    problem = f"{target} exists but is not a directory ({description})"
    with pytest.raises(NotADirectoryError, match=rf"^{re.escape(problem)}"):
        download_files(GZ_FILES[:1], target, [server.url("good")], checksums, progress=False)
    with pytest.raises(NotADirectoryError, match=rf"^{re.escape(problem)}, so {re.escape(str(target / 'sub'))} cannot be created"):
        download_files(GZ_FILES[:1], target / "sub", [server.url("good")], checksums, progress=False)
    assert server.requests == []


def published_content(monkeypatch: pytest.MonkeyPatch, arrays: dict[str, np.ndarray]) -> None:
    """Make the served good/ files' content "MNIST's published content" (CONTENT_SHA256)."""
    sums = {name: hashlib.sha256(idx_bytes(array)).hexdigest() for name, array in arrays.items()}
    monkeypatch.setattr(datasets, "CONTENT_SHA256", {**datasets.CONTENT_SHA256, "MNIST": sums})


def test_mnist_downloads_only_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, arrays, checksums, capsys) -> None:
    """As torchvision's MNIST(download=True): what is there is checked, what is missing is fetched."""
    monkeypatch.setattr(datasets, "MIRRORS", (dead_port_url(), server.url("good")))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    published_content(monkeypatch, arrays)
    write_idx(tmp_path / MNIST_FILES[0], arrays[MNIST_FILES[0]])  # present: the published file gunzipped
    (tmp_path / GZ_FILES[1]).write_bytes(gzip.compress(idx_bytes(arrays[MNIST_FILES[1]]), mtime=12345))  # gzipped again
    assert_loaded(mnist(tmp_path), arrays)
    assert sorted(server.requests) == sorted(f"/good/{name}" for name in GZ_FILES[2:])
    assert files_in(tmp_path) == sorted(GZ_FILES[1:] + [MNIST_FILES[0]])
    assert (f"MNIST: downloading the missing {GZ_FILES[2]}, {GZ_FILES[3]} into {tmp_path}. "
            f"Found there: {MNIST_FILES[0]}, {GZ_FILES[1]} (the published files: SHA-256 checked)") in capsys.readouterr().err


def test_a_partial_folder_that_could_not_be_completed_says_what_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrays, checksums
) -> None:
    monkeypatch.setattr(datasets, "MIRRORS", (dead_port_url(),))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    published_content(monkeypatch, arrays)
    write_idx(tmp_path / GZ_FILES[0], arrays[MNIST_FILES[0]])
    with pytest.raises(DownloadError) as caught:
        mnist(tmp_path)
    assert f"Missing from {tmp_path}: {', '.join(GZ_FILES[1:])}. Found there: {GZ_FILES[0]}. Put the missing files there" in str(caught.value)


@pytest.mark.parametrize("kind", ["corrupt", "your own"])
def test_a_partial_folder_with_a_file_that_is_not_the_published_one_is_not_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, arrays, checksums, kind: str
) -> None:
    """The missing files were downloaded beside any present file, unchecked: the user's own
    training pair (or a corrupt copy) was silently completed with MNIST's test files."""
    monkeypatch.setattr(datasets, "MIRRORS", (server.url("good"),))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    published_content(monkeypatch, arrays)
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    write_idx(tmp_path / GZ_FILES[1], arrays[MNIST_FILES[1]])  # the published labels
    images = arrays[MNIST_FILES[0]].copy()
    if kind == "corrupt":
        images[0, 0, 0] ^= 0xFF  # one pixel flipped
    else:
        images = make_split(len(images), seed=77)[0]
    mine = write_idx(tmp_path / GZ_FILES[0], images)
    before = mine.read_bytes()
    with pytest.raises(ValueError) as caught:
        mnist(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path} holds some of MNIST's files, and {GZ_FILES[0]} is not MNIST's published file")
    assert f"the missing {GZ_FILES[2]}, {GZ_FILES[3]} are not downloaded" in message
    assert f"Found there: {GZ_FILES[0]} (not the published file), {GZ_FILES[1]}." in message
    assert f"move {GZ_FILES[0]} out of {tmp_path}" in message and "as root (--data-dir in examples/mnist.py)" in message
    assert server.requests == [] and files_in(tmp_path) == sorted(GZ_FILES[:2])
    assert mine.read_bytes() == before  # never overwritten


def test_a_partial_folder_with_the_other_data_sets_labels_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, arrays, checksums
) -> None:
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", (server.url("good"),))
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", checksums)
    monkeypatch.setattr(datasets, "SHA256", {GZ_FILES[1]: checksums[GZ_FILES[1]]})  # the good/ labels are "MNIST's"
    write_idx(tmp_path / GZ_FILES[1], arrays[MNIST_FILES[1]])
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path))} holds the MNIST files, not Fashion-MNIST"):
        fashion_mnist(tmp_path)
    assert server.requests == [] and files_in(tmp_path) == [GZ_FILES[1]]


def test_mnist_offline_raises_runtime_error_naming_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "MIRRORS", (dead_port_url(),))
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    with pytest.raises(RuntimeError, match=re.escape(f"Missing from {tmp_path / 'mnist'}: {', '.join(GZ_FILES)}")) as caught:
        mnist(tmp_path)  # an empty root: the files would go into its mnist/ folder
    message = str(caught.value)
    assert "--data-dir" in message and "set $TINYGRAD_CNN_DATA to it" in message
    assert files_in(tmp_path) == []  # the mnist/ folder made to download into is not left behind empty


def refuse_writing_in(monkeypatch: pytest.MonkeyPatch, folder: Path, error_number: int) -> None:
    """Make creating a file in ``folder`` fail as the OS does for a folder we may not write (the
    tests run as root too, which chmod does not stop)."""
    original_open = os.open

    def open_refusing(path, flags, *arguments, **keywords):
        if Path(os.fsdecode(path)).parent == folder and flags & os.O_CREAT:
            raise OSError(error_number, os.strerror(error_number), os.fsdecode(path))
        return original_open(path, flags, *arguments, **keywords)

    monkeypatch.setattr(os, "open", open_refusing)


@pytest.mark.parametrize("error_number, error_type", [(errno.EACCES, PermissionError), (errno.EROFS, OSError)],
                         ids=["permission denied", "read-only file system"])
def test_a_folder_that_cannot_be_written_is_named_before_any_mirror_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, error_number: int, error_type: type
) -> None:
    """Every mirror was asked, and the error listed their "failures" (Permission denied once per
    mirror), as if the network were at fault."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    target = tmp_path / "shared"
    target.mkdir()
    refuse_writing_in(monkeypatch, target, error_number)
    with pytest.raises(error_type) as caught:
        download_files(GZ_FILES[:2], target, [server.url("good")], checksums, timeout=5, progress=False)
    assert not isinstance(caught.value, DownloadError) and caught.value.errno == error_number
    message = str(caught.value)
    assert message.startswith(f"[Errno {error_number}] cannot download into {target}: creating a file in it failed "
                              f"({os.strerror(error_number)}), so nothing was downloaded")
    assert "as root (--data-dir in examples/mnist.py), or set $TINYGRAD_CNN_DATA to it" in message
    assert f"make {target} writable, or put {GZ_FILES[0]}, {GZ_FILES[1]} there yourself" in message
    assert server.requests == [] and files_in(target) == []


def test_a_folder_that_cannot_be_created_is_named_and_its_new_parents_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    target = tmp_path / "new" / "mnist"
    original_mkdir = os.mkdir

    def mkdir_refusing(path, *arguments, **keywords):
        if Path(os.fsdecode(path)) == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
        original_mkdir(path, *arguments, **keywords)

    monkeypatch.setattr(os, "mkdir", mkdir_refusing)
    with pytest.raises(PermissionError, match=re.escape(f"cannot download into {target}: creating the folder {target} failed (Permission denied)")):
        download_files(GZ_FILES[:1], target, [server.url("good")], checksums, timeout=5, progress=False)
    assert server.requests == [] and files_in(tmp_path) == []  # new/ was made, then removed again


def test_mnist_into_a_folder_that_cannot_be_written_says_how_to_point_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    monkeypatch.setattr(datasets, "MIRRORS", (server.url("good"),))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    refuse_writing_in(monkeypatch, tmp_path / "mnist", errno.EROFS)
    with pytest.raises(OSError) as caught:
        mnist()
    message = str(caught.value)
    assert f"cannot download into {tmp_path / 'mnist'}: creating a file in it failed (Read-only file system)" in message
    assert f"point $TINYGRAD_CNN_DATA (now set to {tmp_path}) or root (--data-dir) to a directory you can write" in message
    assert server.requests == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_folder_is_refused_before_any_mirror_is_asked(tmp_path: Path, server: LocalServer, checksums) -> None:
    """The same as the simulated tests above, through the real permission check."""
    target = tmp_path / "read-only"
    target.mkdir()
    target.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=re.escape(f"cannot download into {target}: creating a file in it failed (Permission denied)")):
            download_files(GZ_FILES[:1], target, [server.url("good")], checksums, timeout=5, progress=False)
    finally:
        target.chmod(0o700)
    assert server.requests == []


# ----------------------------------------------------------------------------- download: the local disk fails while writing


MNIST_GZ_SIZES = (9_912_422, 28_881, 1_648_877, 4_542)  # the published files' sizes, in GZ_FILES' order


def published_sizes(monkeypatch: pytest.MonkeyPatch, checksums: dict[str, str]) -> None:
    """Give the served good/ files the published MNIST files' sizes (PUBLISHED_SIZES is by checksum)."""
    sizes = {checksums[name]: size for name, size in zip(GZ_FILES, MNIST_GZ_SIZES)}
    monkeypatch.setattr(datasets, "PUBLISHED_SIZES", sizes)


def fail_writing(monkeypatch: pytest.MonkeyPatch, file_name: str, error: Union[int, BaseException], part_fits: bool = True) -> list[str]:
    """Make writing the download of ``file_name`` fail as a disk filling up does: the file that
    nn.atomic_file hands the download writes half of the first chunk (nothing when ``part_fits``
    is False), then raises OSError(error) for an errno, else ``error`` itself. Returns the names
    in the folder at that moment (the temporary among them)."""
    real_atomic_file = datasets.atomic_file
    seen: list[str] = []

    class FillingUpFile:
        def __init__(self, file: BinaryIO, folder: Path) -> None:
            self.file, self.folder = file, folder

        def write(self, chunk: bytes) -> int:
            if part_fits:
                self.file.write(chunk[: len(chunk) // 2])  # what fitted
                self.file.flush()
            seen.extend(files_in(self.folder))
            raise OSError(error, os.strerror(error)) if isinstance(error, int) else error

        def __getattr__(self, name: str) -> object:  # the rest (fileno, flush) is the real file's
            return getattr(self.file, name)

    @contextlib.contextmanager
    def atomic_file(path):
        with real_atomic_file(path) as file:
            yield FillingUpFile(file, Path(path).parent) if Path(path).name == file_name else file

    monkeypatch.setattr(datasets, "atomic_file", atomic_file)
    return seen


@pytest.mark.parametrize("error_number, other, fix", [
    (errno.ENOSPC, "a directory with room", "free some space there"),
    (errno.EDQUOT, "a directory with room", "free some space there"),
    (errno.EIO, "a directory on another disk", "check the disk that holds {target}"),
    (errno.EROFS, "a directory you can write", "make {target} writable"),
    (errno.EFBIG, None, "raise it (ulimit -f unlimited) and run again"),
], ids=["full disk", "quota", "I/O error", "read-only file system", "file-size limit"])
def test_a_write_error_stops_the_download_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, error_number: int,
    other: Optional[str], fix: str
) -> None:
    """A full disk (or quota, I/O error, ...) while a download was written was reported as that
    mirror's failure, and each next mirror was asked, to fail the same way after downloading the
    file again; the error then blamed the mirrors."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    seen = fail_writing(monkeypatch, GZ_FILES[0], error_number)
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES, tmp_path, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert not isinstance(caught.value, DownloadError) and caught.value.errno == error_number
    assert server.requests == [f"/good/{GZ_FILES[0]}"]  # one mirror, asked once
    assert any(name.startswith(f".{GZ_FILES[0]}.") and name.endswith(".tmp") for name in seen)
    assert files_in(tmp_path) == []  # the partial temporary is removed
    message = str(caught.value)
    assert message.startswith(f"[Errno {error_number}] cannot download into {tmp_path}: writing {GZ_FILES[0]} failed "
                              f"({os.strerror(error_number)}), so nothing was downloaded (the partial {GZ_FILES[0]} is removed).")
    if other is None:  # a file-size limit holds in every directory: no other one is offered
        assert "Download into" not in message and "ulimit -f" in message
        assert message.endswith(f": {fix}, or put {', '.join(GZ_FILES)} there yourself")
        return
    assert f"Download into {other} instead: pass {other} as root (--data-dir in examples/mnist.py), or set $TINYGRAD_CNN_DATA to it" in message
    assert message.endswith(f"; or {fix.format(target=tmp_path)}, or put {', '.join(GZ_FILES)} there yourself")


def test_a_full_disk_keeps_the_verified_files_and_says_how_much_room_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    published_sizes(monkeypatch, checksums)
    fail_writing(monkeypatch, GZ_FILES[1], errno.ENOSPC)
    target = tmp_path / "new" / "mnist"
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES, target, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert caught.value.errno == errno.ENOSPC
    assert server.requests == [f"/good/{GZ_FILES[0]}", f"/good/{GZ_FILES[1]}"]
    assert files_in(target) == [GZ_FILES[0]]  # verified and kept, with its folders; no temporary
    message = str(caught.value)
    assert (f"writing {GZ_FILES[1]} failed (No space left on device), so {GZ_FILES[1]} was not downloaded (its partial "
            f"copy is removed); {GZ_FILES[0]}, downloaded and verified before, is kept. ") in message
    assert f" {', '.join(GZ_FILES[1:])} need 1.7 MB (all 4 files, in another directory: 11.6 MB). " in message  # rounded up
    assert "Download into a directory with room instead: pass a directory with room as root" in message
    assert f"or free 1.7 MB there, or put {', '.join(GZ_FILES[1:])} there yourself" in message


def test_mnist_on_a_full_disk_says_how_much_room_the_four_files_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    monkeypatch.setattr(datasets, "MIRRORS", (server.url("good"), server.url("bad")))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    published_sizes(monkeypatch, checksums)
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path))
    fail_writing(monkeypatch, GZ_FILES[0], errno.ENOSPC)
    with pytest.raises(OSError) as caught:
        mnist()
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC and server.requests == [f"/good/{GZ_FILES[0]}"]
    assert f"cannot download into {tmp_path / 'mnist'}: writing {GZ_FILES[0]} failed (No space left on device)" in message
    assert f"{', '.join(GZ_FILES)} need 11.6 MB." in message
    assert f"point $TINYGRAD_CNN_DATA (now set to {tmp_path}) or root (--data-dir) to a directory with room" in message
    assert files_in(tmp_path) == []  # the mnist/ folder made for the download is removed again


def test_a_full_disk_found_before_any_mirror_is_asked_says_how_much_room_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    """Creating the empty test file fails too on a disk without a free inode or quota left: the
    advice was to make the folder writable."""
    published_sizes(monkeypatch, checksums)
    refuse_writing_in(monkeypatch, tmp_path, errno.ENOSPC)
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES, tmp_path, [server.url("good")], checksums, timeout=5, progress=False)
    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC and server.requests == []
    assert f"creating a file in it failed (No space left on device), so nothing was downloaded. {', '.join(GZ_FILES)} need 11.6 MB." in message
    assert "or free 11.6 MB there" in message and "writable" not in message


def test_a_write_error_when_the_file_is_synced_stops_the_download_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    """The disk can fail after the last write: when the file is flushed to it (fsync)."""
    original_fsync = os.fsync

    def failing_fsync(descriptor: int) -> None:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        original_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES[:1], tmp_path, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert caught.value.errno == errno.EIO and not isinstance(caught.value, DownloadError)
    assert f"writing {GZ_FILES[0]} failed (Input/output error)" in str(caught.value)
    assert server.requests == [f"/good/{GZ_FILES[0]}"] and files_in(tmp_path) == []


@pytest.mark.parametrize("failing_file", [0, 1], ids=["the first file", "a file after a verified one"])
@pytest.mark.parametrize("where", ["creating the temporary file", "the first write"])
def test_a_write_error_before_any_byte_reached_the_disk_names_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, where: str, failing_file: int
) -> None:
    """The error said that the partial file "is removed" whenever the disk failed, even when the
    download's temporary file could not be created, or the disk failed before any byte of it
    was written: there was no partial file."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    filename = GZ_FILES[failing_file]
    if where == "creating the temporary file":
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*arguments, **keywords):  # nn.atomic_file's temporary (the folder's write test makes its own)
            if keywords.get("prefix") == f".{filename}.":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_mkstemp(*arguments, **keywords)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    else:
        seen = fail_writing(monkeypatch, filename, errno.ENOSPC, part_fits=False)
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES, tmp_path, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert caught.value.errno == errno.ENOSPC and not isinstance(caught.value, DownloadError)
    if where == "the first write":
        assert any(name.startswith(f".{filename}.") and name.endswith(".tmp") for name in seen)  # empty, then removed
    assert files_in(tmp_path) == GZ_FILES[:failing_file]
    done = (f"{filename} was not downloaded; {GZ_FILES[0]}, downloaded and verified before, is kept" if failing_file
            else "nothing was downloaded")
    message = str(caught.value)
    assert f"cannot download into {tmp_path}: writing {filename} failed (No space left on device), so {done}. " in message
    assert "partial" not in message


def test_a_read_that_fails_partway_is_the_mirrors_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    """An OSError while the file is being received (a reset, a timeout) is the network's, not the
    disk's: the next mirror is tried, as before read and write errors were told apart."""
    original_read1 = http.client.HTTPResponse.read1
    resets: list[str] = []

    def read1_reset_once(self, *arguments):
        if not resets:
            resets.append(self.url)
            raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
        return original_read1(self, *arguments)

    monkeypatch.setattr(http.client.HTTPResponse, "read1", read1_reset_once)
    download_files(GZ_FILES[:1], tmp_path, [server.url("bad"), server.url("good")], checksums, timeout=5, progress=False)
    assert resets == [f"{server.url('bad')}{GZ_FILES[0]}"]
    assert server.requests == [f"/bad/{GZ_FILES[0]}", f"/good/{GZ_FILES[0]}"] and files_in(tmp_path) == [GZ_FILES[0]]
    resets.clear()
    with pytest.raises(DownloadError, match=re.escape(f"{server.url('good')}{GZ_FILES[0]}: [Errno {errno.ECONNRESET}]")):
        download_files(GZ_FILES[:1], tmp_path / "other", [server.url("good")], checksums, timeout=5, progress=False)
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("error_number", [errno.EPIPE, errno.EBADF], ids=["EPIPE", "EBADF"])
@pytest.mark.parametrize("failing", ["creating", "updating", "closing"])
def test_a_progress_bar_that_cannot_write_to_stderr_never_stops_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, capsys, error_number: int, failing: str
) -> None:
    """tqdm on a broken stderr (a pipe whose reader has gone, a closed descriptor) raises OSError
    from its constructor, update or close: inside the download loop that was taken for the disk's
    error, and the download stopped, blaming the disk. The bar is dropped instead, and the
    download goes on."""
    bars: list[dict[str, int]] = []

    class BrokenStderrBar:  # as tqdm: each call that draws the bar writes to stderr
        def __init__(self, **keywords: object) -> None:
            self.calls = {"update": 0, "close": 0}
            bars.append(self.calls)
            if failing == "creating":
                raise OSError(error_number, os.strerror(error_number))

        def __enter__(self) -> "BrokenStderrBar":
            return self

        def __exit__(self, *exception_info: object) -> None:
            self.close()

        def update(self, count: int) -> None:
            self.calls["update"] += 1
            if failing == "updating":
                raise OSError(error_number, os.strerror(error_number))

        def close(self) -> None:
            self.calls["close"] += 1
            if failing in ("updating", "closing"):  # its last write: clearing the bar's line
                raise OSError(error_number, os.strerror(error_number))

    monkeypatch.setattr("tqdm.tqdm", BrokenStderrBar)
    monkeypatch.setattr(datasets, "DOWNLOAD_CHUNK_BYTES", 16)  # many chunks, so many updates for each file
    target = tmp_path / "target"
    paths = download_files(GZ_FILES[:2], target, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=True)
    assert paths == [target / name for name in GZ_FILES[:2]] and files_in(target) == sorted(GZ_FILES[:2])
    assert all(hashlib.sha256(path.read_bytes()).hexdigest() == checksums[path.name] for path in paths)
    assert server.requests == [f"/good/{name}" for name in GZ_FILES[:2]]  # no mirror failed
    assert "failed" not in capsys.readouterr().err
    expected = {
        "creating": {"update": 0, "close": 0},  # no bar: nothing more is asked of it
        "updating": {"update": 1, "close": 1},  # dropped after the first failed update, and closed once
    }
    for calls in bars:
        if failing == "closing":
            assert calls["update"] > 1 and calls["close"] == 1
        else:
            assert calls == expected[failing]
    assert len(bars) == 2  # a bar for each file: a failed one is not held against the next file's


class BrokenPipeStderr(io.TextIOBase):
    """A stderr piped into a program that has exited: a terminal to ``isatty``, each write EPIPE."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def flush(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def closed_stderr() -> io.StringIO:
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize("stderr", [BrokenPipeStderr, closed_stderr], ids=["broken pipe", "closed"])
def test_mnist_downloads_with_a_stderr_that_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, arrays, checksums, stderr
) -> None:
    """Each line mnist() says on stderr while it completes a folder (what it found, which mirror it
    tries, why one failed) was printed unguarded: on a broken or closed stderr the first one
    stopped the download with a bare BrokenPipeError or ValueError. With the real tqdm too."""
    monkeypatch.setattr(datasets, "MIRRORS", (dead_port_url(), server.url("good")))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    published_content(monkeypatch, arrays)
    write_idx(tmp_path / MNIST_FILES[0], arrays[MNIST_FILES[0]])  # a partial folder: mnist() says what it found
    monkeypatch.setattr(sys, "stderr", stderr())
    assert_loaded(mnist(tmp_path), arrays)
    assert sorted(server.requests) == sorted(f"/good/{name}" for name in GZ_FILES[1:])


@pytest.mark.parametrize("error_number, limit", [(errno.EMFILE, "ulimit -n"), (errno.ENFILE, "fs.file-max")],
                         ids=["the process's limit", "the system's limit"])
def test_too_many_open_files_while_connecting_stops_the_download_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, error_number: int, limit: str
) -> None:
    """EMFILE while connecting to a mirror was that mirror's failure: each next mirror was asked, to
    fail the same way, and the DownloadError blamed them all."""
    original_create_connection = socket.create_connection
    connections: list[object] = []

    def create_connection(address, *arguments, **keywords):
        connections.append(address)
        if len(connections) > 1:  # the first file gets through
            raise OSError(error_number, os.strerror(error_number))
        return original_create_connection(address, *arguments, **keywords)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    target = tmp_path / "target"
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES, target, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert not isinstance(caught.value, DownloadError) and caught.value.errno == error_number
    assert len(connections) == 2 and server.requests == [f"/good/{GZ_FILES[0]}"]  # no other mirror asked
    assert files_in(target) == [GZ_FILES[0]]
    message = str(caught.value)
    assert message.startswith(
        f"[Errno {error_number}] cannot download into {target}: fetching {server.url('good')}{GZ_FILES[1]} failed "
        f"({os.strerror(error_number)}), so {GZ_FILES[1]} was not downloaded; {GZ_FILES[0]}, downloaded and verified before, is kept. "
    )
    assert limit in message and "run again" in message and "Download into" not in message
    assert message.endswith(f", or put {', '.join(GZ_FILES[1:])} there yourself")


@pytest.mark.parametrize("error_number, what_ran_out", [
    (errno.ENOMEM, "This machine ran out of memory (ENOMEM)"),
    (errno.ENOBUFS, "This machine ran out of network buffer space (ENOBUFS)"),
], ids=["out of memory", "out of network buffers"])
@pytest.mark.parametrize("where", ["connecting", "reading"])
def test_a_machine_out_of_memory_or_network_buffers_stops_the_download_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums,
    error_number: int, what_ran_out: str, where: str,
) -> None:
    """ENOMEM or ENOBUFS while connecting to a mirror or reading its answer was that mirror's
    failure: the next mirror was asked, to fail the same way, and the DownloadError blamed them all."""
    failures: list[str] = []

    def fail(*arguments: object, **keywords: object) -> None:
        failures.append(where)
        raise OSError(error_number, os.strerror(error_number))

    if where == "connecting":
        monkeypatch.setattr(socket, "create_connection", fail)
    else:
        monkeypatch.setattr(http.client.HTTPResponse, "read1", fail)
    target = tmp_path / "target"
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES[:1], target, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert not isinstance(caught.value, DownloadError) and caught.value.errno == error_number
    assert failures == [where]  # no other mirror asked
    assert server.requests == ([] if where == "connecting" else [f"/good/{GZ_FILES[0]}"])
    assert files_in(tmp_path) == []
    message = str(caught.value)
    assert message.startswith(
        f"[Errno {error_number}] cannot download into {target}: fetching {server.url('good')}{GZ_FILES[0]} failed "
        f"({os.strerror(error_number)}), so nothing was downloaded. {what_ran_out}, and another mirror"
    )
    assert "run again" in message and "Download into" not in message and "any mirror" not in message
    assert message.endswith(f", or put {GZ_FILES[0]} there yourself")


@pytest.mark.parametrize("where", ["connecting", "reading", "writing"])
def test_python_running_out_of_memory_stops_the_download_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, where: str
) -> None:
    """Python's MemoryError (an allocation that failed, not an OSError) escaped download_files as
    it was: a bare traceback from inside the download loop, without a word of what was being
    downloaded, where to, or what became of the files."""
    second = GZ_FILES[1]
    failures: list[str] = []
    if where == "connecting":
        original_create_connection = socket.create_connection

        def create_connection(address, *arguments, **keywords):
            if server.requests:  # the first file gets through
                failures.append(where)
                raise MemoryError()
            return original_create_connection(address, *arguments, **keywords)

        monkeypatch.setattr(socket, "create_connection", create_connection)
    elif where == "reading":
        original_read1 = http.client.HTTPResponse.read1

        def read1(self, *arguments):
            if self.url.endswith(second):
                failures.append(where)
                raise MemoryError()
            return original_read1(self, *arguments)

        monkeypatch.setattr(http.client.HTTPResponse, "read1", read1)
    else:
        seen = fail_writing(monkeypatch, second, MemoryError())
    target = tmp_path / "target"
    with pytest.raises(MemoryError) as caught:
        download_files(GZ_FILES, target, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    asked = [f"/good/{GZ_FILES[0]}"] + ([] if where == "connecting" else [f"/good/{second}"])
    assert server.requests == asked  # no other mirror asked
    if where == "writing":
        assert any(name.startswith(f".{second}.") and name.endswith(".tmp") for name in seen)
    else:
        assert failures == [where]
    assert files_in(target) == [GZ_FILES[0]]  # verified before, and kept; the partial file removed
    removed = " (its partial copy is removed)" if where == "writing" else ""
    assert str(caught.value) == (
        f"cannot download into {target}: downloading {second} from {server.url('good')}{second} failed (out of memory), "
        f"so {second} was not downloaded{removed}; {GZ_FILES[0]}, downloaded and verified before, is kept. "
        f"This process ran out of memory (Python's MemoryError), and another mirror or directory would fail the same way: "
        f"close programs that use much memory, or raise this process's memory limit (the shell's ulimit -v, a container's "
        f"limit), and run again, or put {', '.join(GZ_FILES[1:])} there yourself"
    )


@pytest.mark.parametrize("error_number", [errno.EMFILE, errno.ENFILE], ids=["EMFILE", "ENFILE"])
@pytest.mark.parametrize("raised", ["the OSError itself", "an SSLError raised while handling it",
                                    "a certificate error raised from it"])
def test_too_many_open_files_while_loading_the_ca_certificates_stops_the_download_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, error_number: int, raised: str
) -> None:
    """An ssl.SSLError raised while the CA certificates could not be opened (too many files open)
    was the https mirror's failure, a certificate one at worst: the next mirror was asked and, had
    it failed too, the advice was to install the CA certificates, not to close files."""
    loads: list[str] = []

    def load_default_certs(self, *arguments: object, **keywords: object) -> None:
        loads.append(raised)
        try:
            raise OSError(error_number, os.strerror(error_number))
        except OSError as error:
            if raised == "an SSLError raised while handling it":
                raise ssl.SSLError(ssl.SSL_ERROR_SYSCALL, "[SYS] unknown error")
            if raised == "a certificate error raised from it":
                raise ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] unable to get local issuer certificate") from error
            raise

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", load_default_certs)
    monkeypatch.setattr(urllib.request, "_opener", None)  # a new opener, whose https context loads them anew
    https_mirror = "https://127.0.0.1:9/mnist/"
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES[:1], tmp_path / "target", [https_mirror, server.url("good")], checksums, timeout=5, progress=False)
    assert not isinstance(caught.value, DownloadError) and caught.value.errno == error_number
    assert loads == [raised] and server.requests == []  # no other mirror asked
    message = str(caught.value)
    assert message.startswith(f"[Errno {error_number}] cannot download into {tmp_path / 'target'}: "
                              f"fetching {https_mirror}{GZ_FILES[0]} failed ({os.strerror(error_number)}), so nothing was downloaded. ")
    assert ("ulimit -n" if error_number == errno.EMFILE else "fs.file-max") in message
    assert "certificate" not in message and "run again" in message
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("where", ["creating the test file", "creating the download's file"])
def test_too_many_open_files_on_the_disk_side_says_to_raise_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, where: str
) -> None:
    """There the advice was to download onto another disk, which runs out of open files as well."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    if where == "creating the test file":
        refuse_writing_in(monkeypatch, tmp_path, errno.EMFILE)
    else:
        def mkstemp(*arguments, **keywords):  # nn.atomic_file's temporary
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(OSError) as caught:
        download_files(GZ_FILES[:1], tmp_path, [server.url("good"), server.url("bad")], checksums, timeout=5, progress=False)
    assert not isinstance(caught.value, DownloadError) and caught.value.errno == errno.EMFILE
    message = str(caught.value)
    assert f"cannot download into {tmp_path}: " in message and "(Too many open files), so nothing was downloaded" in message
    assert "This process has as many files open as its limit allows" in message and "ulimit -n" in message
    assert "Download into" not in message and "check the disk" not in message
    assert server.requests == ([] if where == "creating the test file" else [f"/good/{GZ_FILES[0]}"])
    assert files_in(tmp_path) == []


def test_a_content_length_that_is_not_ascii_digits_is_ignored(tmp_path: Path, server: LocalServer, arrays, checksums) -> None:
    """The length "²" passed str.isdigit and broke int(): each such mirror was reported as "a URL
    that cannot be requested", and the next one asked. The length is only a check; the SHA-256 still is one."""
    paths = download_files(GZ_FILES, tmp_path, [server.url("superscript-length/good"), server.url("bad")], checksums,
                           timeout=5, progress=False)
    assert paths == [tmp_path / name for name in GZ_FILES]
    assert server.requests == [f"/superscript-length/good/{name}" for name in GZ_FILES]
    assert_loaded(datasets.load_idx_directory(tmp_path), arrays)


@pytest.mark.parametrize("value, length", [
    ("9912422", 9912422), ("0", 0), (None, None), ("", None), ("\u00b2", None), ("\u0661\u0662", None), ("-1", None),
    (" 12", None), ("12 ", None), ("1e3", None), ("0x10", None),
], ids=["digits", "zero", "none", "empty", "superscript two", "arabic-indic digits", "negative", "leading space",
        "trailing space", "exponent", "hexadecimal"])
def test_content_length_takes_only_ascii_digits(value: Optional[str], length: Optional[int]) -> None:
    headers = email.message.Message()
    if value is not None:
        headers["Content-Length"] = value
    assert datasets._content_length(headers) == length


def test_the_published_sizes_cover_both_data_sets() -> None:
    assert sorted(datasets.PUBLISHED_SIZES) == sorted([*SHA256.values(), *FASHION_MNIST_SHA256.values()])
    for table in (SHA256, FASHION_MNIST_SHA256):
        assert datasets._megabytes(list(table), table) is not None


def test_the_published_sizes_are_those_of_the_real_files() -> None:
    root = real_data_directory()
    for name in GZ_FILES:
        assert (root / name).stat().st_size == datasets.PUBLISHED_SIZES[SHA256[name]], name
    assert datasets._megabytes(GZ_FILES, SHA256) == "11.6 MB"


def test_a_failed_download_removes_the_folders_it_created(tmp_path: Path, server: LocalServer, checksums) -> None:
    """Only the deepest folder was removed: a download into new/parents/mnist that failed left
    new/ and new/parents/ behind, empty."""
    target = tmp_path / "new" / "parents" / "mnist"
    with pytest.raises(DownloadError):
        download_files(GZ_FILES[:1], target, [server.url("missing")], checksums, timeout=5, progress=False)
    assert files_in(tmp_path) == []

    (tmp_path / "existing").mkdir()  # a folder that was there before is kept, empty or not
    with pytest.raises(DownloadError):
        download_files(GZ_FILES[:1], tmp_path / "existing" / "a" / "b", [server.url("missing")], checksums, timeout=5, progress=False)
    assert files_in(tmp_path) == ["existing"] and files_in(tmp_path / "existing") == []


def test_a_failed_download_keeps_the_folders_holding_verified_files(tmp_path: Path, server: LocalServer, checksums) -> None:
    target = tmp_path / "new" / "mnist"
    wrong_second = {**checksums, GZ_FILES[1]: "0" * 64}  # the first file verifies, the second never does
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES[:2], target, [server.url("good")], wrong_second, timeout=5, progress=False)
    assert caught.value.missing == [GZ_FILES[1]]
    assert files_in(target) == [GZ_FILES[0]]  # kept, with the folders above it


def test_a_failed_download_names_the_files_it_verified_before_in_the_words_mnist_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    """download_files said only what was missing; mnist() also said which files were there.
    Both now build the message in one place (the data set's name and folder aside)."""
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    wrong_last = {**checksums, GZ_FILES[3]: "0" * 64}  # three files verify, the last never does
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES, tmp_path / "plain", [server.url("good")], wrong_last, timeout=5, progress=False)
    assert caught.value.missing == GZ_FILES[3:] and len(caught.value.reasons) == 1
    generic = str(caught.value)
    assert generic.startswith(f"could not download {GZ_FILES[3]} from any mirror:\n  {server.url('good')}{GZ_FILES[3]}: SHA256 mismatch")
    expected = (f"Missing from {tmp_path / 'plain'}: {GZ_FILES[3]}. Found there: {', '.join(GZ_FILES[:3])}. "
                f"Put the missing files there (gzip-compressed .gz or uncompressed), or pass a directory that holds "
                f"all four files")
    assert expected + " as root (--data-dir in examples/mnist.py)" in generic

    (tmp_path / "root").mkdir()
    monkeypatch.setattr(datasets, "MIRRORS", (server.url("good"),))
    monkeypatch.setattr(datasets, "SHA256", wrong_last)
    with pytest.raises(DownloadError) as caught:
        mnist(tmp_path / "root")
    from_mnist = str(caught.value)
    assert from_mnist.startswith(f"could not download MNIST's {GZ_FILES[3]} from any mirror:\n")
    assert expected.replace(str(tmp_path / "plain"), str(tmp_path / "root" / "mnist")) + " (or holds them in a folder named mnist/)" in from_mnist

    with pytest.raises(DownloadError, match=rf"Found there: {GZ_FILES[0]}\. .* that holds both files as root"):
        download_files(GZ_FILES[:2], tmp_path / "two", [server.url("good")], wrong_last | {GZ_FILES[1]: "0" * 64},
                       timeout=5, progress=False)


def test_an_interrupted_download_removes_the_folders_it_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums) -> None:
    def interrupted(*arguments: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "_download_verified", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download_files(GZ_FILES[:1], tmp_path / "new" / "mnist", [server.url("good")], checksums, progress=False)
    assert files_in(tmp_path) == []


def test_mnist_offline_leaves_no_cache_folders_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # cache/tinygrad_cnn/mnist: three new folders
    monkeypatch.setattr(datasets, "MIRRORS", (dead_port_url(),))
    with pytest.raises(DownloadError):
        mnist()
    assert files_in(tmp_path) == []


# ----------------------------------------------------------------------------- timeouts: silent and slow mirrors


def test_silent_mirror_is_given_up_after_the_timeout(tmp_path: Path, server: LocalServer, checksums, silent_url, capsys) -> None:
    start = time.monotonic()
    download_files(GZ_FILES[1:2], tmp_path, [silent_url, server.url("good")], checksums, timeout=0.5, progress=True)
    assert time.monotonic() - start < 5
    assert files_in(tmp_path) == [GZ_FILES[1]]
    stderr = capsys.readouterr().err
    assert f"mirror 1 of 2: {silent_url}{GZ_FILES[1]}" in stderr  # says which mirror it is trying
    assert "failed: no answer within 0.5 s" in stderr
    assert f"mirror 2 of 2: {server.url('good')}{GZ_FILES[1]}" in stderr


def test_only_silent_mirrors_fail_quickly_naming_the_timeout(tmp_path: Path, checksums, silent_url) -> None:
    start = time.monotonic()
    with pytest.raises(DownloadError, match=rf"{re.escape(silent_url)}\S*: no answer within 0\.5 s"):
        download_files(GZ_FILES[:1], tmp_path, [silent_url], checksums, timeout=0.5, progress=False)
    assert time.monotonic() - start < 5
    assert files_in(tmp_path) == []


def test_mirror_trickling_bytes_is_given_up_at_the_deadline(tmp_path: Path, server: LocalServer, checksums) -> None:
    start = time.monotonic()
    download_files(GZ_FILES[1:2], tmp_path, [server.url("slow"), server.url("good")], checksums, timeout=5, deadline=0.5, progress=False)
    assert time.monotonic() - start < 5  # the slow mirror would need 100000 x 50 ms
    assert files_in(tmp_path) == [GZ_FILES[1]]
    with pytest.raises(DownloadError, match=r"too slow: \d+ of 100000 bytes after 0\.5 s"):
        download_files(GZ_FILES[:1], tmp_path / "other", [server.url("slow")], checksums, timeout=5, deadline=0.5, progress=False)


def test_the_time_the_local_disk_takes_does_not_count_against_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    """A slow disk made the mirror "too slow": the file was given up, and the next mirror asked to
    send it again, onto the same disk. Here each write takes 1000 s by the module's clock."""
    class Clock:  # time.monotonic, plus the seconds the disk has taken
        def __init__(self) -> None:
            self.disk_seconds = 0.0

        def monotonic(self) -> float:
            return time.monotonic() + self.disk_seconds

    class SlowFile:
        def __init__(self, file: BinaryIO) -> None:
            self.file = file

        def write(self, chunk: bytes) -> int:
            clock.disk_seconds += 1000
            return self.file.write(chunk)

        def __getattr__(self, name: str) -> object:  # the rest (fileno, flush) is the real file's
            return getattr(self.file, name)

    real_atomic_file = datasets.atomic_file

    @contextlib.contextmanager
    def atomic_file(path):
        with real_atomic_file(path) as file:
            yield SlowFile(file)

    clock = Clock()
    monkeypatch.setattr(datasets, "time", clock)
    monkeypatch.setattr(datasets, "atomic_file", atomic_file)
    paths = download_files(GZ_FILES[:2], tmp_path, [server.url("good"), server.url("bad")], checksums,
                           timeout=5, deadline=300, progress=False)
    assert paths == [tmp_path / name for name in GZ_FILES[:2]] and clock.disk_seconds >= 2000
    assert server.requests == [f"/good/{name}" for name in GZ_FILES[:2]]  # never given up for the next mirror


@pytest.fixture
def hanging_name_lookup(monkeypatch: pytest.MonkeyPatch):
    """socket.getaddrinfo hangs (up to 5 s) for the host mirror.invalid, as a resolver without
    an answer does, then fails; other names (127.0.0.1) are looked up as usual. No proxy is
    used, so nothing goes out: the test never touches the network. Yields the names asked for."""
    for variable in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    release = threading.Event()
    original_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, *arguments, **keywords):
        if host == "mirror.invalid":
            asked.append(host)
            release.wait(5)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return original_getaddrinfo(host, *arguments, **keywords)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield asked
    release.set()  # let the abandoned lookup end


def test_a_name_lookup_that_hangs_is_given_up_after_the_timeout(tmp_path: Path, server: LocalServer, checksums, hanging_name_lookup) -> None:
    """urllib's timeout does not cover getaddrinfo: a mirror whose name got no answer held the
    download for as long as the resolver took, whatever the timeout."""
    silent_name = "http://mirror.invalid/mnist/"
    start = time.monotonic()
    download_files(GZ_FILES[1:2], tmp_path, [silent_name, server.url("good")], checksums, timeout=0.3, progress=False)
    assert time.monotonic() - start < 3
    assert files_in(tmp_path) == [GZ_FILES[1]] and hanging_name_lookup == ["mirror.invalid"]
    with pytest.raises(DownloadError, match=re.escape(
        f"{silent_name}{GZ_FILES[0]}: looking up the host name mirror.invalid gave no answer within 0.3 s"
    )):
        download_files(GZ_FILES[:1], tmp_path / "other", [silent_name], checksums, timeout=0.3, progress=False)
    assert time.monotonic() - start < 5


def test_a_name_lookup_without_a_thread_to_spare_is_done_in_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums
) -> None:
    """A process at its limit of threads could not start the lookup's worker thread: the
    RuntimeError "can't start new thread" came out as a raw traceback, though the download
    needs no thread. The name is now looked up in the calling thread, without the timeout."""

    class UnstartableThread(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    # datasets' own threading only: the local server starts a thread per request
    monkeypatch.setattr(datasets, "threading", types.SimpleNamespace(Thread=UnstartableThread))
    original_getaddrinfo = socket.getaddrinfo
    lookups: list[tuple[str, object, threading.Thread]] = []

    def getaddrinfo(host, *arguments, **keywords):
        lookups.append((host, keywords.get("type"), threading.current_thread()))
        return original_getaddrinfo(host, *arguments, **keywords)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    paths = download_files(GZ_FILES[:1], tmp_path, [server.url("good")], checksums, timeout=5, progress=False)
    assert paths == [tmp_path / GZ_FILES[0]] and files_in(tmp_path) == [GZ_FILES[0]]
    assert ("127.0.0.1", socket.SOCK_STREAM, threading.current_thread()) in lookups  # _look_up_host's own, here
    assert {thread for _, _, thread in lookups} == {threading.current_thread()}
    assert server.requests == [f"/good/{GZ_FILES[0]}"]


def test_mnist_uses_the_module_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, arrays, checksums, silent_url) -> None:
    monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(datasets, "MIRRORS", (silent_url, server.url("good")))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    start = time.monotonic()
    assert_loaded(mnist(tmp_path), arrays)
    assert time.monotonic() - start < 4 * 0.5 + 5  # four files, each waits once for the silent mirror


# ----------------------------------------------------------------------------- https mirrors whose certificates fail verification


def certificate_error() -> urllib.error.URLError:
    """What urllib raises when it cannot verify a server's certificate (as a real TLS server
    with a self-signed certificate shows: test_a_real_untrusted_certificate_is_recognised)."""
    return urllib.error.URLError(ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)"))


@pytest.fixture
def failing_https(monkeypatch: pytest.MonkeyPatch) -> dict[str, Exception]:
    """A table {https base URL: the error urlopen raises for it}, filled by the test; other URLs
    (the local http server) are opened as usual. The https hosts are 127.0.0.1, so looking
    them up never touches the network, and nothing is ever connected to."""
    errors: dict[str, Exception] = {}
    original_urlopen = urllib.request.urlopen

    def urlopen(request, *arguments, **keywords):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        for base, error in errors.items():
            if url.startswith(base):
                raise error
        return original_urlopen(request, *arguments, **keywords)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return errors


CERTIFICATE_ADVICE = "which usually means this machine's CA certificates are missing or outdated"


def test_every_https_mirror_failing_on_its_certificate_says_what_that_usually_means(
    tmp_path: Path, checksums, failing_https: dict[str, Exception]
) -> None:
    """Without a word on it, a machine without current CA certificates saw only a list of
    mirrors that "failed"."""
    mirrors = ["https://127.0.0.1:9/first/", "https://127.0.0.1:9/second/"]
    failing_https.update({mirror: certificate_error() for mirror in mirrors})
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES[:1], tmp_path, mirrors, checksums, timeout=5, progress=False)
    message = str(caught.value)
    assert caught.value.certificate_failure and CERTIFICATE_ADVICE in message
    assert "ca-certificates" in message and "SSL_CERT_FILE" in message and "certifi" in message
    assert message.count("CERTIFICATE_VERIFY_FAILED") == 2  # each mirror's reason, as before
    assert re.search(r"by hand, as follows\.\nMissing from .*\. Put the files there", message)


def test_https_mirrors_failing_on_certificates_beside_a_plain_http_one_that_failed_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums, failing_https: dict[str, Exception]
) -> None:
    """MNIST's own mirrors are two https ones and one plain http one, which has no certificate
    to verify: its failure (here a 404) says nothing about the CA certificates. Through mnist(),
    whose message is worded by the same function."""
    failing_https["https://127.0.0.1:9/"] = certificate_error()
    monkeypatch.setattr(datasets, "MIRRORS", ("https://127.0.0.1:9/mnist/", server.url("missing")))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    with pytest.raises(DownloadError) as caught:
        mnist(tmp_path)
    message = str(caught.value)
    assert caught.value.certificate_failure and CERTIFICATE_ADVICE in message and "404" in message
    assert message.startswith(f"could not download MNIST's {GZ_FILES[0]} from any mirror:")


@pytest.mark.parametrize("other_error", [
    urllib.error.URLError(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")),
    urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
    urllib.error.URLError(TimeoutError("timed out")),
], ids=["refused", "name not found", "no answer"])
def test_certificate_advice_when_the_other_https_mirrors_failed_before_their_certificates_were_checked(
    tmp_path: Path, checksums, failing_https: dict[str, Exception], other_error: Exception
) -> None:
    """A mirror that is down says nothing about certificates, yet it kept the advice out: with one
    of MNIST's two https mirrors down, a machine without CA certificates saw only the failures."""
    failing_https.update({"https://127.0.0.1:9/first/": other_error, "https://127.0.0.1:9/second/": certificate_error()})
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES[:1], tmp_path, ["https://127.0.0.1:9/first/", "https://127.0.0.1:9/second/"],
                       checksums, timeout=5, progress=False)
    message = str(caught.value)
    assert caught.value.certificate_failure and CERTIFICATE_ADVICE in message
    assert message.count("CERTIFICATE_VERIFY_FAILED") == 1 and len(caught.value.reasons) == 2


def test_no_certificate_advice_when_another_https_mirror_got_past_its_certificate(
    tmp_path: Path, server: LocalServer, checksums, failing_https: dict[str, Exception]
) -> None:
    """A mirror that answers over TLS (here a 404) had its certificate verified: the CA certificates
    are there, so the one that failed is not blamed on them (see _points_to_the_ca_certificates)."""
    failing_https.update({
        "https://127.0.0.1:9/first/": certificate_error(),
        "https://127.0.0.1:9/second/": urllib.error.HTTPError("https://127.0.0.1:9/second/x", 404, "Not Found", {}, None),
    })
    with pytest.raises(DownloadError) as caught:
        download_files(GZ_FILES[:1], tmp_path, ["https://127.0.0.1:9/first/", "https://127.0.0.1:9/second/"],
                       checksums, timeout=5, progress=False)
    assert not caught.value.certificate_failure and CERTIFICATE_ADVICE not in str(caught.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)  # the mirror's own reason still says it
    with pytest.raises(DownloadError) as caught:  # no https mirror at all: nothing to say about certificates
        download_files(GZ_FILES[:1], tmp_path, [server.url("missing")], checksums, timeout=5, progress=False)
    assert not caught.value.certificate_failure and CERTIFICATE_ADVICE not in str(caught.value)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl program to make a certificate")
def test_a_real_untrusted_certificate_is_recognised(tmp_path: Path, checksums) -> None:
    """A local TLS server with a self-signed certificate, which no CA bundle trusts: urllib's
    own error is the one recognised (the other tests fake it)."""
    certificate, key = tmp_path / "certificate.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True, timeout=60)
    tls_server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    tls_server.socket = context.wrap_socket(tls_server.socket, server_side=True)
    thread = threading.Thread(target=tls_server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(DownloadError) as caught:
            download_files(GZ_FILES[:1], tmp_path / "target", [f"https://127.0.0.1:{tls_server.server_address[1]}/mnist/"],
                           checksums, timeout=5, progress=False)
    finally:
        tls_server.shutdown()
        tls_server.server_close()
        thread.join(timeout=5)
    assert caught.value.certificate_failure and CERTIFICATE_ADVICE in str(caught.value)


# ----------------------------------------------------------------------------- where the data is: roots, folders, messages


def test_a_root_that_does_not_exist_is_an_error_and_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums) -> None:
    monkeypatch.setattr(datasets, "MIRRORS", (server.url("good"),))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    missing = tmp_path / "typo" / "data"
    with pytest.raises(FileNotFoundError, match=rf"the data directory {re.escape(str(missing))} does not exist; it is not created"):
        mnist(missing)
    assert not (tmp_path / "typo").exists() and server.requests == []


def test_a_root_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    with pytest.raises(NotADirectoryError, match=rf"{re.escape(str(tmp_path / MNIST_FILES[0]))}\.gz is not a directory\. Did you mean {re.escape(str(tmp_path))}\?"):
        mnist(tmp_path / f"{MNIST_FILES[0]}.gz")


@pytest.mark.parametrize("loader, folder", [(mnist, "mnist"), (fashion_mnist, "fashion-mnist")])
@pytest.mark.parametrize("download", [True, False])
def test_a_data_set_folder_that_is_not_a_directory_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader, folder: str, download: bool) -> None:
    """root/mnist a broken link (to an unmounted disk) or a file: say so, not a bare FileExistsError
    from mkdir (downloading) or "Missing from root/mnist" (not downloading)."""
    monkeypatch.setattr(datasets, "MIRRORS", (dead_port_url(),))
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", (dead_port_url(),))
    (tmp_path / folder).symlink_to(tmp_path / "unmounted" / folder)
    with pytest.raises(NotADirectoryError, match=re.escape(f"{tmp_path / folder} exists but is not a directory (a broken symbolic link to {tmp_path / 'unmounted' / folder})")):
        loader(tmp_path, download=download)
    (tmp_path / folder).unlink()
    (tmp_path / folder).write_text("notes")
    with pytest.raises(NotADirectoryError, match=re.escape(f"{tmp_path / folder} exists but is not a directory (a file)")):
        loader(tmp_path, download=download)
    write_mnist(tmp_path)  # a root holding the files itself is used as before
    loader(tmp_path, download=download)


def test_a_cache_folder_that_is_not_a_directory_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=re.escape(
        f"{tmp_path / 'cache'} exists but is not a directory (a file), so {tmp_path / 'cache' / 'tinygrad_cnn' / 'mnist'} cannot be created"
    )):
        mnist(download=False)


def test_a_misspelt_root_suggests_the_directory_with_the_files(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data" / "mnist")
    with pytest.raises(FileNotFoundError, match=rf"Did you mean {re.escape(str(tmp_path / 'data' / 'mnist'))}\?"):
        mnist(tmp_path / "data" / "mnsit")


def test_the_environment_variable_must_exist_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=rf"\$TINYGRAD_CNN_DATA is set to {re.escape(str(tmp_path / 'nowhere'))}, which does not exist; it is not created"):
        fashion_mnist()
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("loader, folder", [(mnist, "mnist"), (fashion_mnist, "fashion-mnist")])
@pytest.mark.parametrize("through_environment", [False, True])
def test_a_root_holding_the_data_set_folder_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader, folder: str, through_environment: bool) -> None:
    arrays = write_mnist(tmp_path / folder)
    write_mnist(tmp_path / ("fashion-mnist" if folder == "mnist" else "mnist"), seed=40)  # the other data set beside it
    if through_environment:
        monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path))
        assert_loaded(loader(download=False), arrays)
    else:
        assert_loaded(loader(tmp_path, download=False), arrays)


def test_files_in_a_subfolder_are_suggested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    write_mnist(tmp_path / "MNIST" / "raw")  # torchvision's layout
    with pytest.raises(FileNotFoundError, match=rf"Did you mean {re.escape(str(tmp_path / 'MNIST' / 'raw'))}\?"):
        mnist(tmp_path, download=False)


def test_offline_message_when_the_environment_variable_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "MIRRORS", (dead_port_url(),))
    with pytest.raises(DownloadError) as caught:
        mnist()
    message = str(caught.value)
    assert f"Missing from {tmp_path / 'mnist'}" in message
    assert f"point $TINYGRAD_CNN_DATA (now set to {tmp_path}) or root (--data-dir) to a directory that holds them" in message
    assert "--data-dir" in message and "set $TINYGRAD_CNN_DATA to it" not in message  # it IS set


def test_offline_message_when_a_root_overrides_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError) as caught:
        mnist(tmp_path, download=False)
    message = str(caught.value)
    assert f"--data-dir; it takes precedence over $TINYGRAD_CNN_DATA, which is set to {tmp_path / 'elsewhere'}" in message
    assert "mnist(download=True)" in message


# ----------------------------------------------------------------------------- Fashion-MNIST


def test_class_names() -> None:
    assert MNIST_CLASSES == tuple(str(digit) for digit in range(10))
    assert len(FASHION_MNIST_CLASSES) == 10 and len(set(FASHION_MNIST_CLASSES)) == 10
    assert (FASHION_MNIST_CLASSES[0], FASHION_MNIST_CLASSES[9]) == ("T-shirt/top", "Ankle boot")
    assert sorted(FASHION_MNIST_SHA256) == sorted(GZ_FILES) == sorted(SHA256)


def test_fashion_mnist_downloads_into_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, arrays, checksums) -> None:
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", (dead_port_url(), server.url("good")))
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", checksums)
    write_mnist(tmp_path / "mnist", seed=60)  # MNIST beside it is left alone
    assert_loaded(fashion_mnist(tmp_path), arrays)
    assert files_in(tmp_path / "fashion-mnist") == sorted(GZ_FILES)
    assert sorted(server.requests) == sorted(f"/good/{name}" for name in GZ_FILES)


def test_fashion_mnist_defaults_to_its_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, arrays, checksums) -> None:
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", (server.url("good"),))
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", checksums)
    assert_loaded(fashion_mnist(), arrays)
    assert files_in(tmp_path / "cache" / "tinygrad_cnn" / "fashion-mnist") == sorted(GZ_FILES)


def test_fashion_mnist_checksum_mismatch_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums) -> None:
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", (server.url("bad"),))
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", checksums)
    with pytest.raises(DownloadError, match=r"could not download Fashion-MNIST's train-images-idx3-ubyte\.gz from any mirror:\n.*SHA256 mismatch") as caught:
        fashion_mnist(tmp_path)
    assert "holds them in a folder named fashion-mnist/" in str(caught.value)
    assert caught.value.missing == GZ_FILES
    assert files_in(tmp_path) == []


def test_fashion_mnist_refuses_the_mnist_files_and_vice_versa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrays, checksums) -> None:
    directory = tmp_path / "data"
    write_mnist(directory)  # the same bytes as the served good/ files, whose sums are `checksums`
    monkeypatch.setattr(datasets, "SHA256", checksums)  # now they are "the MNIST files"
    with pytest.raises(ValueError, match=rf"{re.escape(str(directory))} holds the MNIST files, not Fashion-MNIST"):
        fashion_mnist(directory, download=False)
    assert_loaded(mnist(directory, download=False), arrays)
    assert_loaded(load_idx_directory(directory), arrays)  # the generic loader takes any IDX directory

    monkeypatch.setattr(datasets, "SHA256", {})
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", checksums)
    with pytest.raises(ValueError, match=r"holds the Fashion-MNIST files, not MNIST"):
        mnist(directory, download=False)
    assert_loaded(fashion_mnist(directory, download=False), arrays)


def test_fashion_mnist_refuses_gunzipped_mnist_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard compares the labels' content too, so gunzipping MNIST does not slip past it."""
    directory = tmp_path / "raw"
    write_mnist(directory, compress=False)
    content = (directory / TRAIN_LABELS).read_bytes()
    monkeypatch.setattr(datasets, "CONTENT_SHA256", {"MNIST": {TRAIN_LABELS: hashlib.sha256(content).hexdigest()}})
    with pytest.raises(ValueError, match=rf"{re.escape(str(directory))} holds the MNIST files, not Fashion-MNIST "
                                         rf"\({TRAIN_LABELS} there is MNIST's published training labels file, not Fashion-MNIST's\)"):
        fashion_mnist(directory, download=False)
    mnist(directory, download=False)
    regzipped = tmp_path / "regzipped"  # gzipped again: other header bytes, same content
    write_mnist(regzipped)
    (regzipped / f"{TRAIN_LABELS}.gz").write_bytes(gzip.compress(content, mtime=12345))
    with pytest.raises(ValueError, match=r"holds the MNIST files, not Fashion-MNIST"):
        fashion_mnist(regzipped, download=False)


@pytest.mark.parametrize("loader, folder", [(mnist, "mnist"), (fashion_mnist, "fashion-mnist")])
@pytest.mark.parametrize("in_folder", [False, True], ids=["in the root", "in the data set's folder"])
def test_uncompressed_files_load_for_both_data_sets(tmp_path: Path, loader, folder: str, in_folder: bool) -> None:
    """The four IDX files without .gz, as gunzip, 7-Zip or torchvision's raw/ folder leave them,
    load for Fashion-MNIST as for MNIST, through the same file lookup (and a mix of both forms)."""
    directory = tmp_path / folder if in_folder else tmp_path
    arrays = write_mnist(directory, compress=False)
    assert_loaded(loader(tmp_path, download=False), arrays)
    write_idx(directory / f"{MNIST_FILES[0]}.gz", arrays[MNIST_FILES[0]])
    (directory / MNIST_FILES[0]).unlink()
    assert_loaded(loader(tmp_path, download=False), arrays)


def test_the_content_sums_cover_every_file_of_both_data_sets() -> None:
    """Fashion-MNIST had no content sums: gunzipped, its files were recognised by nothing
    (mnist() loaded them as digits, and their training and test files swapped passed)."""
    assert sorted(datasets.CONTENT_SHA256) == ["Fashion-MNIST", "MNIST"]
    sums = [digest for table in datasets.CONTENT_SHA256.values() for digest in table.values()]
    for table in datasets.CONTENT_SHA256.values():
        assert sorted(table) == sorted(MNIST_FILES)
    assert len(set(sums)) == len(sums) == 8 and all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in sums)


def test_mnist_refuses_gunzipped_fashion_mnist_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same check as for MNIST's files, the other way round: Fashion-MNIST's labels are
    recognised by their content, gunzipped or gzipped again, and so are its splits swapped."""
    directory = tmp_path / "raw"
    arrays = write_mnist(directory, compress=False)
    sums = {name: hashlib.sha256(idx_bytes(arrays[name])).hexdigest() for name in MNIST_FILES}
    monkeypatch.setattr(datasets, "CONTENT_SHA256", {**datasets.CONTENT_SHA256, "Fashion-MNIST": sums})
    with pytest.raises(ValueError, match=rf"{re.escape(str(directory))} holds the Fashion-MNIST files, not MNIST "
                                         rf"\({TRAIN_LABELS} there is Fashion-MNIST's published training labels file, not MNIST's\)"):
        mnist(directory, download=False)
    assert_loaded(fashion_mnist(directory, download=False), arrays)
    regzipped = tmp_path / "regzipped"
    write_mnist(regzipped, seed=30)
    write_file(regzipped / f"{MNIST_FILES[3]}.gz", idx_bytes(arrays[MNIST_FILES[3]]))
    with pytest.raises(ValueError, match=r"holds the Fashion-MNIST files, not MNIST \(t10k-labels-idx1-ubyte\.gz there is Fashion-MNIST's published test labels"):
        mnist(regzipped, download=False)
    swap_splits(directory)
    with pytest.raises(ValueError, match=re.escape(f"{directory / TRAIN_LABELS} is Fashion-MNIST's published test labels file, not its training labels")):
        fashion_mnist(directory, download=False)


def real_data_directory() -> Path:
    """$TINYGRAD_CNN_DATA, the directory with the real MNIST files; skips the test without it,
    except in CI, which always provides the data (a test there must never pass vacuously)."""
    root = os.environ.get("TINYGRAD_CNN_DATA")
    if not root:
        if os.environ.get("CI"):
            pytest.fail("CI must set TINYGRAD_CNN_DATA to the directory with the MNIST files")
        pytest.skip("TINYGRAD_CNN_DATA not set")
    return Path(root)


def test_the_mnist_content_sums_are_those_of_the_real_files() -> None:
    root = real_data_directory()
    for name in MNIST_FILES:
        content = gzip.decompress((root / f"{name}.gz").read_bytes())
        assert hashlib.sha256(content).hexdigest() == datasets.CONTENT_SHA256["MNIST"][name], name


def test_fashion_mnist_refuses_the_real_mnist_labels_gunzipped(tmp_path: Path) -> None:
    root = real_data_directory()
    write_mnist(tmp_path, compress=False)
    (tmp_path / TRAIN_LABELS).write_bytes(gzip.decompress((root / f"{TRAIN_LABELS}.gz").read_bytes()))
    with pytest.raises(ValueError, match=r"holds the MNIST files, not Fashion-MNIST"):
        fashion_mnist(tmp_path, download=False)


def test_fashion_mnist_refuses_the_mnist_test_files_beside_other_training_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training on Fashion-MNIST and testing on MNIST's digits must not pass silently: the test
    split's labels are recognised too, published (.gz) or by their content, and vice versa."""
    directory = tmp_path / "mixed"
    write_mnist(directory)  # stand-ins for the training files, the test files to be "MNIST's"
    test_labels = directory / f"{MNIST_FILES[3]}.gz"
    monkeypatch.setattr(datasets, "SHA256", {f"{MNIST_FILES[3]}.gz": hashlib.sha256(test_labels.read_bytes()).hexdigest()})
    with pytest.raises(ValueError, match=re.escape(
        f"{directory} holds the MNIST files, not Fashion-MNIST ({test_labels.name} there is MNIST's published test labels file, not Fashion-MNIST's)"
    )):
        fashion_mnist(directory, download=False)
    mnist(directory, download=False)

    content = gzip.decompress(test_labels.read_bytes())
    test_labels.unlink()
    write_file(directory / MNIST_FILES[3], content)  # gunzipped
    monkeypatch.setattr(datasets, "CONTENT_SHA256", {"MNIST": {MNIST_FILES[3]: hashlib.sha256(content).hexdigest()}})
    with pytest.raises(ValueError, match=rf"\({MNIST_FILES[3]} there is MNIST's published test labels file"):
        fashion_mnist(directory, download=False)

    monkeypatch.setattr(datasets, "SHA256", {})
    monkeypatch.setattr(datasets, "CONTENT_SHA256", {})
    write_file(test_labels, content)  # .gz again, preferred to the raw file
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", {test_labels.name: hashlib.sha256(test_labels.read_bytes()).hexdigest()})
    with pytest.raises(ValueError, match=r"holds the Fashion-MNIST files, not MNIST \(t10k-labels-idx1-ubyte\.gz there is Fashion-MNIST's published test labels"):
        mnist(directory, download=False)
    fashion_mnist(directory, download=False)


def test_fashion_mnist_refuses_the_real_mnist_test_labels(tmp_path: Path) -> None:
    root = real_data_directory()
    test_labels = f"{MNIST_FILES[3]}.gz"
    write_mnist(tmp_path / "published")
    (tmp_path / "published" / test_labels).write_bytes((root / test_labels).read_bytes())
    write_mnist(tmp_path / "gunzipped")
    (tmp_path / "gunzipped" / test_labels).unlink()
    (tmp_path / "gunzipped" / MNIST_FILES[3]).write_bytes(gzip.decompress((root / test_labels).read_bytes()))
    for directory in ("published", "gunzipped"):
        with pytest.raises(ValueError, match=r"holds the MNIST files, not Fashion-MNIST \(t10k-labels-idx1-ubyte(\.gz)? there is MNIST's published test labels"):
            fashion_mnist(tmp_path / directory, download=False)


def swap_splits(directory: Path) -> None:
    """Give the training files the test files' names and the other way round (a consistent swap:
    the counts still match, so only the labels' checksums show it)."""
    for train, test in ((MNIST_FILES[0], MNIST_FILES[2]), (MNIST_FILES[1], MNIST_FILES[3])):
        for suffix in (".gz", ""):
            if (directory / f"{train}{suffix}").exists():
                (directory / f"{train}{suffix}").rename(directory / "swapping")
                (directory / f"{test}{suffix}").rename(directory / f"{train}{suffix}")
                (directory / "swapping").rename(directory / f"{test}{suffix}")


@pytest.mark.parametrize("compress", [True, False])
def test_swapped_training_and_test_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    """A data set's own labels under the other split's name (swapped, or the test files copied
    over the training files) loaded silently: training on the test set, a meaningless test accuracy."""
    directory = tmp_path / "swapped"
    write_mnist(directory, compress=compress)
    suffix = ".gz" if compress else ""
    sums = {name: hashlib.sha256((directory / f"{name}{suffix}").read_bytes()).hexdigest() for name in (MNIST_FILES[1], MNIST_FILES[3])}
    if compress:
        monkeypatch.setattr(datasets, "SHA256", {f"{name}.gz": digest for name, digest in sums.items()})
    else:
        monkeypatch.setattr(datasets, "CONTENT_SHA256", {"MNIST": sums})
    mnist(directory, download=False)  # in place: loads
    swap_splits(directory)
    with pytest.raises(ValueError, match=re.escape(
        f"{directory / (MNIST_FILES[1] + suffix)} is MNIST's published test labels file, not its training labels: "
        f"the training and test files in {directory} are swapped"
    )):
        mnist(directory, download=False)
    load_idx_directory(directory)  # the generic loader knows no checksums

    copied = tmp_path / "copied"  # the test files copied over the training files: both splits the same
    write_mnist(copied, compress=compress)
    for source, target in ((MNIST_FILES[2], MNIST_FILES[0]), (MNIST_FILES[3], MNIST_FILES[1])):
        (copied / f"{target}{suffix}").write_bytes((copied / f"{source}{suffix}").read_bytes())
    with pytest.raises(ValueError, match=r"is MNIST's published test labels file, not its training labels"):
        mnist(copied, download=False)


def test_fashion_mnist_refuses_the_mnist_files_under_each_others_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MNIST's labels were recognised only under their own file name: with the splits swapped,
    fashion_mnist() loaded MNIST's digits without a word (and mnist() Fashion-MNIST's clothes)."""
    directory = tmp_path / "data"
    write_mnist(directory)
    gz_sums = {f"{name}.gz": hashlib.sha256((directory / f"{name}.gz").read_bytes()).hexdigest() for name in MNIST_FILES}
    swap_splits(directory)
    monkeypatch.setattr(datasets, "SHA256", gz_sums)
    with pytest.raises(ValueError, match=re.escape(
        f"{directory} holds the MNIST files, not Fashion-MNIST ({MNIST_FILES[1]}.gz there is MNIST's published test labels file"
    )):
        fashion_mnist(directory, download=False)
    monkeypatch.setattr(datasets, "SHA256", {})
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", gz_sums)
    with pytest.raises(ValueError, match=r"holds the Fashion-MNIST files, not MNIST \(train-labels-idx1-ubyte\.gz there is Fashion-MNIST's published test labels"):
        mnist(directory, download=False)


def test_the_real_mnist_files_swapped_are_refused(tmp_path: Path) -> None:
    root = real_data_directory()
    for name in MNIST_FILES:
        (tmp_path / f"{name}.gz").write_bytes((root / f"{name}.gz").read_bytes())
    swap_splits(tmp_path)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz is MNIST's published test labels file, not its training labels"):
        mnist(tmp_path, download=False)
    with pytest.raises(ValueError, match=r"holds the MNIST files, not Fashion-MNIST"):
        fashion_mnist(tmp_path, download=False)


def test_a_folder_in_place_of_a_file_is_named_not_reported_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer, checksums) -> None:
    """Kaggle's copy of MNIST keeps each file in a folder of the file's name. Those folders were
    skipped as if the files were missing: "Missing from root/mnist", and with download=True a
    new root/mnist/ was created and downloaded into, beside the user's files."""
    arrays = write_mnist(tmp_path / "flat", compress=False)
    root = tmp_path / "kaggle"
    for name in MNIST_FILES:
        (root / name).mkdir(parents=True)
        (tmp_path / "flat" / name).rename(root / name / name)
    monkeypatch.setattr(datasets, "MIRRORS", (server.url("good"),))
    monkeypatch.setattr(datasets, "SHA256", checksums)
    message = re.escape(f"is a directory, expected the IDX file {MNIST_FILES[0]} there; it holds {MNIST_FILES[0]}: move that file up into {root}")
    for load in (lambda: mnist(root, download=False), lambda: mnist(root), lambda: load_idx_directory(root)):
        with pytest.raises(IsADirectoryError, match=message) as caught:
            load()
        assert caught.value.filename == str(root / MNIST_FILES[0])
    assert server.requests == [] and files_in(root) == sorted(MNIST_FILES)  # nothing downloaded or created
    for name in MNIST_FILES:  # moved up: loads
        (root / name / name).rename(root / f"{name}.tmp")
        (root / name).rmdir()
        (root / f"{name}.tmp").rename(root / name)
    assert_loaded(mnist(root, download=False), arrays)


def test_a_broken_link_or_a_fifo_in_place_of_a_file_is_named(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    labels = tmp_path / f"{MNIST_FILES[3]}.gz"
    labels.unlink()
    labels.symlink_to(tmp_path / "unmounted" / labels.name)
    with pytest.raises(FileNotFoundError, match=re.escape(f"is a broken symbolic link to {tmp_path / 'unmounted' / labels.name}, "
                                                          f"expected the IDX file {labels.name} there")):
        mnist(tmp_path, download=False)
    labels.unlink()
    os.mkfifo(labels)  # reading it would block until a writer comes
    with pytest.raises(OSError, match=rf"is not a regular file \(a FIFO, socket or device\), expected the IDX file {re.escape(labels.name)}") as caught:
        load_idx_directory(tmp_path)
    assert caught.value.filename == str(labels)


def test_load_idx_directory_says_when_the_directory_is_missing_or_a_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=rf"the directory {re.escape(str(tmp_path / 'nope'))} does not exist"):
        load_idx_directory(tmp_path / "nope")
    write_mnist(tmp_path)
    with pytest.raises(NotADirectoryError, match=rf"{re.escape(str(tmp_path / TRAIN_LABELS))}\.gz is not a directory"):
        load_idx_directory(tmp_path / f"{TRAIN_LABELS}.gz")


def test_suggestions_leave_out_the_other_data_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checksums) -> None:
    write_mnist(tmp_path / "data" / "mnist")
    monkeypatch.setattr(datasets, "SHA256", checksums)  # data/mnist holds "the MNIST files"
    with pytest.raises(FileNotFoundError) as caught:
        fashion_mnist(tmp_path / "data" / "fashoin")
    assert "Did you mean" not in str(caught.value)
    with pytest.raises(FileNotFoundError, match=r"Did you mean .*data/mnist\?"):
        mnist(tmp_path / "data" / "mnsit")


def test_load_idx_directory_names_missing_files(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=rf"Missing from {re.escape(str(tmp_path))}: train-labels-idx1-ubyte\.gz\."):
        load_idx_directory(tmp_path)


# ----------------------------------------------------------------------------- batches


def collect(iterator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pairs = list(iterator)
    return [images for images, _ in pairs], [labels for _, labels in pairs]


def numbered_samples(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose every pixel is their sample number, and labels equal to it: pairing is checkable."""
    labels = np.arange(count)
    images = np.broadcast_to(labels[:, None, None, None], (count, 1, 2, 2)).copy()
    return images, labels


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(0, 50),
    batch_size=st.integers(1, 20),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_batches_cover_every_sample_once(count: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int) -> None:
    images, labels = numbered_samples(count)
    image_batches, label_batches = collect(batches(images, labels, batch_size, shuffle=shuffle, rng=seed, drop_last=drop_last))

    sizes = [len(batch) for batch in label_batches]
    full_batches, remainder = divmod(count, batch_size)
    expected_sizes = [batch_size] * full_batches + ([remainder] if remainder and not drop_last else [])
    assert sizes == expected_sizes
    for image_batch, label_batch in zip(image_batches, label_batches):
        assert image_batch.shape == (len(label_batch), 1, 2, 2)
        np.testing.assert_array_equal(image_batch[:, 0, 0, 0], label_batch)  # pairs stay together

    seen = np.concatenate(label_batches) if label_batches else np.array([], dtype=int)
    assert len(np.unique(seen)) == len(seen)  # no sample twice
    if drop_last:
        assert len(seen) == full_batches * batch_size
    else:
        np.testing.assert_array_equal(np.sort(seen), labels)  # every sample
    if not shuffle:
        np.testing.assert_array_equal(seen, labels[: len(seen)])


def test_same_seed_same_order_different_seed_different_order() -> None:
    images, labels = numbered_samples(100)
    first = np.concatenate(collect(batches(images, labels, 16, rng=7))[1])
    again = np.concatenate(collect(batches(images, labels, 16, rng=7))[1])
    other = np.concatenate(collect(batches(images, labels, 16, rng=8))[1])
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, labels)


def test_generator_state_can_be_saved_and_restored() -> None:
    images, labels = numbered_samples(40)
    rng = np.random.default_rng(3)
    collect(batches(images, labels, 8, rng=rng))  # epoch 0
    saved = rng.bit_generator.state
    epoch_1 = np.concatenate(collect(batches(images, labels, 8, rng=rng))[1])
    epoch_2 = np.concatenate(collect(batches(images, labels, 8, rng=rng))[1])
    assert not np.array_equal(epoch_1, epoch_2)  # the generator advances between epochs

    resumed = np.random.default_rng(999)
    resumed.bit_generator.state = saved
    np.testing.assert_array_equal(np.concatenate(collect(batches(images, labels, 8, rng=resumed))[1]), epoch_1)
    np.testing.assert_array_equal(np.concatenate(collect(batches(images, labels, 8, rng=resumed))[1]), epoch_2)


def test_unseeded_batches_still_cover_everything() -> None:
    images, labels = numbered_samples(10)
    np.testing.assert_array_equal(np.sort(np.concatenate(collect(batches(images, labels, 3))[1])), labels)


@pytest.mark.parametrize("batch_size", [0, -4])
def test_batches_rejects_non_positive_batch_size(batch_size: int) -> None:
    images, labels = numbered_samples(4)
    with pytest.raises(ValueError, match=rf"batch_size must be positive, got {batch_size}"):
        batches(images, labels, batch_size)  # raised at the call, before iterating


@pytest.mark.parametrize("batch_size", [2.0, "2", True, None])
def test_batches_rejects_non_integer_batch_size(batch_size: object) -> None:
    images, labels = numbered_samples(4)
    with pytest.raises(TypeError, match=r"batch_size must be an integer"):
        batches(images, labels, batch_size)


def test_batches_rejects_mismatched_lengths() -> None:
    images, labels = numbered_samples(5)
    with pytest.raises(ValueError, match=r"same number of samples: 5 images, 4 labels"):
        batches(images, labels[:4], 2)


def test_batches_rejects_scalars_and_bad_rng() -> None:
    with pytest.raises(ValueError, match=r"leading sample dimension"):
        batches(np.float32(1), np.int64(1), 1)
    images, labels = numbered_samples(4)
    with pytest.raises(TypeError, match=r"rng must be None, an int seed or a numpy\.random\.Generator"):
        batches(images, labels, 2, rng=1.5)
    with pytest.raises(ValueError, match=r"rng \(an int seed, or a numpy\.random\.Generator\) must be a non-negative integer, got -1"):
        batches(images, labels, 2, rng=-1)


# ----------------------------------------------------------------------------- the real data


def test_real_mnist() -> None:
    root = real_data_directory()
    x_train, y_train, x_test, y_test = mnist(root, download=False)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for labels in (y_train, y_test):
        assert labels.min() == 0 and labels.max() == 9
        assert set(np.unique(labels)) == set(range(10))
    assert x_train.max() == 255 and x_train.min() == 0
    for filename, expected in SHA256.items():
        assert hashlib.sha256((root / filename).read_bytes()).hexdigest() == expected, filename
    with pytest.raises(ValueError, match=r"holds the MNIST files, not Fashion-MNIST"):  # the real tables tell them apart
        fashion_mnist(root, download=False)
