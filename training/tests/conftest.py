"""Shared fixtures for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_oval_track(path: Path) -> Path:
    """A 150 m x 80 m oval (two straights, two hairpins, 10 m wide, about 550 m): a lap takes
    about a quarter of the built-in circuits' time, for tests that ride many laps."""
    half = np.linspace(0.0, np.pi, 40, endpoint=False)
    x = np.r_[np.linspace(0, 150, 60, endpoint=False), 150 + 40 * np.sin(half),
              np.linspace(150, 0, 60, endpoint=False), -40 * np.sin(half)]
    y = np.r_[np.zeros(60), 40 - 40 * np.cos(half), np.full(60, 80.0), 40 + 40 * np.cos(half)]
    w = np.full_like(x, 5.0)
    np.savetxt(path, np.c_[x, y, w, w], delimiter=",", fmt="%.3f", header="x_m,y_m,w_tr_right_m,w_tr_left_m",
               comments="# ")
    return path


@pytest.fixture(scope="session")
def oval_track(tmp_path_factory) -> str:
    return str(write_oval_track(tmp_path_factory.mktemp("tracks") / "oval.csv"))
