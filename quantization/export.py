"""Deterministic actor -> single-file ONNX (opset 17), checked against torch.

The exported graph is exactly :class:`~motocoach.training.policy_net.CoachActor`'s
forward pass (Linear/ReLU stack, Linear, Sigmoid): the deterministic action, never a
sampling policy. Input: normalized telemetry ``(1, n_features)``; output: actions in [0, 1].
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np

from motocoach.errors import QuantizationError

OPSET = 17
INPUT_NAME = "telemetry"
OUTPUT_NAME = "actions"
ONNX_TOLERANCE = 1e-5


def export_onnx(actor, path: str | Path) -> Path:
    """Write ``actor`` (a ``CoachActor`` in eval mode) as one self-contained ONNX file."""
    import onnx
    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    actor = actor.eval()
    dummy = torch.zeros(1, actor.n_in, dtype=torch.float32)
    try:
        # The exporter is chatty (progress lines, opset notes); keep the CLI output clean.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
            torch.onnx.export(actor, (dummy,), str(p), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except Exception as e:
        raise QuantizationError(f"stage 'export ONNX' failed: {type(e).__name__}: {e}") from e
    opset = {o.domain: o.version for o in model.opset_import}.get("", None)
    if opset != OPSET:
        raise QuantizationError(f"stage 'export ONNX': got opset {opset}, expected {OPSET}")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise QuantizationError("stage 'export ONNX': weights were written to an external file")
    return p


def onnx_max_abs_diff(onnx_path: str | Path, actor, normalized: np.ndarray) -> float:
    """Largest |onnxruntime - torch| over ``normalized`` inputs (one row per run)."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.asarray(normalized, np.float32)
    with torch.no_grad():
        ref = actor(torch.from_numpy(x)).numpy()
    got = np.concatenate([sess.run(None, {INPUT_NAME: row[None]})[0] for row in x])
    return float(np.max(np.abs(got - ref))) if len(x) else 0.0


def check_onnx(onnx_path: str | Path, actor, normalized: np.ndarray, tol: float = ONNX_TOLERANCE) -> float:
    """Raise QuantizationError unless onnxruntime matches torch within ``tol``; return the max diff."""
    try:
        diff = onnx_max_abs_diff(onnx_path, actor, normalized)
    except Exception as e:
        raise QuantizationError(f"stage 'check ONNX' failed: onnxruntime could not run the model: {e}") from e
    if not diff <= tol:
        raise QuantizationError(f"stage 'check ONNX': onnxruntime differs from torch by {diff:.3g} > {tol:g}")
    return diff
