"""Shared fixtures: the real capture in ../shared/data and small synthetic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips when absent, fails when ``HANDX_REQUIRE_SHARED_DATA=1``."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"real capture data not found at {SHARED_DATA}"
    if os.environ.get("HANDX_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(message + " (HANDX_REQUIRE_SHARED_DATA=1)")
    pytest.skip(message)
