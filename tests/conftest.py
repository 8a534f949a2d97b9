"""Shared fixtures: real MNIST through ``FASTBP_DATA``.

Tests that need MNIST are skipped when ``FASTBP_DATA`` is unset on a developer's machine, and
fail when it is unset under CI (``CI`` set), so CI can never pass without running them.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from fastbp.datasets import load_mnist


@pytest.fixture(scope="session")
def mnist_env() -> Path:
    value = os.environ.get("FASTBP_DATA")
    if not value:
        if os.environ.get("CI"):
            pytest.fail("FASTBP_DATA must point to the MNIST files when CI is set")
        pytest.skip("FASTBP_DATA is not set; set it to a directory with the four MNIST files")
    return Path(value).expanduser()


@pytest.fixture(scope="session")
def mnist_book(mnist_env: Path):
    """The book's split: 50,000 training, 10,000 validation, 10,000 test (float32)."""
    return load_mnist(split="book")


@pytest.fixture
def ctrl_c():
    """Python's own Ctrl-C handler (``KeyboardInterrupt``) for the test, whatever the process
    inherited: a shell runs a background job with SIGINT ignored, and then no test of Ctrl-C
    could see one."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
