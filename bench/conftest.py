"""Shared fixtures for benchmarks: ``bench_result`` writes bench/results/<bench>.json."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402


@pytest.fixture
def bench_result():
    """Call ``bench_result(bench, where, metrics, notes="")`` once per result file."""
    return write_result
