"""TensorFlow/absl start-up lines stay out of normal output; other stderr lines still show."""

from __future__ import annotations

import subprocess
import sys

NOISY_CHILD = r"""
import os, sys
from motocoach.quiet import native_stderr_filtered
with native_stderr_filtered():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"E0000 00:00:1796585256.139344   14205 cuda_dnn.cc:8579] Unable to register cuDNN factory\n")
    os.write(2, b"real problem: disk full\n")
"""


def test_native_log_lines_are_dropped_and_other_lines_kept():
    r = subprocess.run([sys.executable, "-c", NOISY_CHILD], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stderr == "real problem: disk full\n"


def test_importing_tensorflow_prints_nothing():
    code = "from motocoach.quiet import preload_tensorflow; preload_tensorflow(); print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout == "ok\n"
    assert "E0000" not in r.stderr and "absl" not in r.stderr and "W0000" not in r.stderr, r.stderr
