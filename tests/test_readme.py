"""Every ```python block of README.md runs as written, so the README's snippets stay true.

Each block runs on its own, in a fresh interpreter started in the repository root (as a
reader pasting it would), with ``TINYGRAD_CNN_DATA`` pointing at the MNIST files. A block
may be left out only when it needs something this machine cannot have (a GPU, PyTorch, the
network): the line right above its fence must then read
``<!-- readme-test: skip (the reason) -->``, and the reason is shown in the test report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\s*\((.+?)\)\s*-->\s*$")


def python_blocks(text: str) -> list[tuple[str, str, str | None]]:
    """``(name, code, skip reason or None)`` for every ```python block: the name is the
    nearest heading above it and the block's line number."""
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].splitlines()
        line = len(before) + 1
        heading = next((row.lstrip("#").strip() for row in reversed(before) if row.startswith("#")), "top")
        mark = SKIP_MARK.search(before[-1]) if before else None
        blocks.append((f"{heading} (line {line})", match.group(1), mark.group(1) if mark else None))
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks_and_the_extractor_finds_them():
    sample = "# A\n\n```python\nprint(1)\n```\n\n## B\n<!-- readme-test: skip (needs a GPU) -->\n```python\nx = 2\n```\n"
    assert python_blocks(sample) == [("A (line 3)", "print(1)\n", None), ("B (line 9)", "x = 2\n", "needs a GPU")]
    assert BLOCKS, "README.md has no ```python block: this test would check nothing"


def test_the_readme_states_no_test_count_that_goes_stale():
    """It said "1,270+ tests", true once and wrong after the next commit that added tests;
    pytest's summary line gives the number."""
    text = README.read_text(encoding="utf-8")
    assert not re.findall(r"\b\d[\d,]*\+?\s+tests\b", text)


@pytest.fixture(scope="module")
def data_dir() -> str:
    directory = os.environ.get("TINYGRAD_CNN_DATA", "")
    present = directory and all((Path(directory) / name).exists() or (Path(directory) / f"{name}.gz").exists()
                                for name in MNIST_FILES)
    if not present:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide MNIST: TINYGRAD_CNN_DATA={directory!r} does not hold the four files")
        pytest.skip("MNIST not available: set TINYGRAD_CNN_DATA to a directory with the four IDX files")
    return directory


@pytest.mark.parametrize("name, code, skip_reason", BLOCKS, ids=[name for name, _, _ in BLOCKS])
def test_readme_python_block_runs(name, code, skip_reason, data_dir):
    if skip_reason is not None:
        pytest.skip(f"marked in README.md: {skip_reason}")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "TINYGRAD_CNN_DATA": data_dir, "MPLBACKEND": "Agg",
                                              "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 0, f"README block '{name}' failed:\n{code}\n--- stderr ---\n{result.stderr}"
