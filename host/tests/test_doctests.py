"""Run the ``>>>`` examples in the public modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["motocoach.schema", "motocoach.runs", "motocoach.training.policy_net", "motocoach.esp_image",
           "motocoach.device.hil_summary", "motocoach.quiet",
           "motocoach.lap_report"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
