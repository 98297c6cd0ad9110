"""Shared fixtures: the real data beside the checkout, and small real inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vdeid_testing import DEVICE

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_configure(config):
    if DEVICE not in ("cpu", "cuda"):
        raise pytest.UsageError(f"VDEID_TEST_DEVICE must be cpu or cuda, not {DEVICE!r}")
    if DEVICE == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError("VDEID_TEST_DEVICE=cuda but torch sees no CUDA GPU")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout; tests that need it skip without it."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real test data not found at {SHARED} (the project's ../shared folder)")
    return SHARED


@pytest.fixture(scope="session")
def videos_dir(shared_dir) -> Path:
    return shared_dir / "data" / "videos"


@pytest.fixture(scope="session")
def faces_dir(shared_dir) -> Path:
    return shared_dir / "data" / "faces"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut, (512, 512, 3) uint8 RGB: one real face, always available."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(autouse=True)
def _fail_on_logged_error(caplog):
    """A test that makes the library log an ERROR fails (PySceneDetect's habit)."""
    caplog.set_level(logging.WARNING, logger="vdeid")
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("vdeid")]
    if errors:
        pytest.fail("vdeid logged an error: " + "; ".join(r.getMessage() for r in errors))
