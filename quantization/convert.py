"""ONNX -> full-int8 ``.tflite`` with onnx2tf (pinned in requirements), calibrated.

Runs the onnx2tf command line in a subprocess: it needs about 1 GB while converting, starts
``onnxsim`` as its own subprocess (so the venv's ``bin/`` goes on PATH), and a crash there
must not take the caller down. Flags: int8 input and output, per-channel weights, and the
calibration rows passed with mean 0 / std 1 so the already-normalized values go through
unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from motocoach.errors import QuantizationError
from motocoach.quantization.export import INPUT_NAME

SUFFIX = "_full_integer_quant.tflite"


def onnx2tf_command(onnx_path: Path, out_dir: Path, calib_npy: Path) -> list[str]:
    """The exact onnx2tf invocation (also recorded in the quantize report)."""
    return [sys.executable, "-m", "onnx2tf", "-i", str(onnx_path), "-o", str(out_dir), "-oiqt",
            "-qt", "per-channel", "-cind", INPUT_NAME, str(calib_npy), "[0.0]", "[1.0]",
            "-iqd", "int8", "-oqd", "int8", "-n"]


def convert_full_int8(onnx_path: str | Path, calib: np.ndarray, work_dir: str | Path,
                      timeout_s: float = 600.0) -> Path:
    """Convert and return the ``*_full_integer_quant.tflite`` path. Raises QuantizationError."""
    onnx_path, work = Path(onnx_path).resolve(), Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    c = np.asarray(calib, np.float32)
    if c.ndim != 2 or not np.all(np.isfinite(c)) or len(c) == 0:
        raise QuantizationError("stage 'calibration': rows must be a finite non-empty (N, features) array")
    calib_npy = work / "calibration.npy"
    np.save(calib_npy, c)
    out_dir = work / "onnx2tf"
    cmd = onnx2tf_command(onnx_path, out_dir, calib_npy)
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log = work / "onnx2tf.log"
    try:
        with open(log, "w") as fh:
            r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=timeout_s,
                               cwd=str(work))
    except subprocess.TimeoutExpired as e:
        raise QuantizationError(f"stage 'onnx2tf convert' timed out after {timeout_s:.0f} s; see {log}") from e
    except OSError as e:
        raise QuantizationError(f"stage 'onnx2tf convert' could not start: {e}; run `make setup`") from e
    tail = log.read_text(errors="replace")[-2000:]
    if r.returncode != 0:
        raise QuantizationError(f"stage 'onnx2tf convert' failed (exit {r.returncode}); log {log}:\n{tail}")
    found = sorted(out_dir.glob("*" + SUFFIX))
    if len(found) != 1:
        raise QuantizationError(f"stage 'onnx2tf convert': expected one *{SUFFIX} in {out_dir}, "
                                f"found {len(found)}; log {log}:\n{tail}")
    return found[0]
