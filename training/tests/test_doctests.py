"""Run the ``>>>`` examples of the training modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["motocoach.training.tracks", "motocoach.training.riders", "motocoach.training.envs",
           "motocoach.training.coach", "motocoach.training.rides", "motocoach.training.vehicles",
           "motocoach.training.reflap", "motocoach.training.trackgen", "motocoach.training.sweep",
           "motocoach.training.preset_file"] + [
    f"motocoach.training.teacher.{m}" for m in ("features", "model", "predict", "expert_data", "fit", "analyse",
                                                "analyse_cli", "labels")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
