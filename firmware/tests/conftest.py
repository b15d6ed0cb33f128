"""Shared fixtures for the firmware tests."""

from __future__ import annotations

from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[1]
FACTORY_MODEL = FIRMWARE / "lib" / "coach_model" / "coach_model_data.c"


@pytest.fixture(scope="session")
def factory_model() -> Path:
    """The generated factory model the SIL/QEMU images link (committed; `make models` remakes it)."""
    assert FACTORY_MODEL.exists(), "firmware/lib/coach_model/coach_model_data.c is missing: run `make models`"
    return FACTORY_MODEL
