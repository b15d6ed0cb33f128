"""The quantization pipeline: policy.pt -> ONNX -> calibrated full-int8 .tflite -> checks.

Each stage raises :class:`~motocoach.errors.QuantizationError` naming itself, so a failure
says whether export, the ONNX check, calibration, onnx2tf or the checks went wrong.
Everything lands in one run folder::

    <run>/quantize/policy.onnx, calibration.npy, onnx2tf/, onnx2tf.log
    <run>/quantize/model_int8.tflite          the converted model
    <run>/quantize/report.json                coverage, ONNX diff, checks (see checks.py)
    <run>/quantize/*.png                      plots
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from motocoach.errors import QuantizationError

Stage = Callable[[str], None]


@dataclass
class QuantizeResult:
    """Paths and the report of one quantization run."""

    tflite: Path
    report_path: Path
    report: dict[str, Any]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "tflite-micro"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def quantize(policy: str | Path, run_dir: str | Path, *, dataset_root: str | Path | None = None,
             telemetry: np.ndarray | None = None, dataset_ids: list[str] | None = None,
             n_calib: int = 2000, n_heldout: int = 2000, seed: int = 0,
             on_stage: Stage | None = None) -> QuantizeResult:
    """Quantize ``policy`` (a ``policy.pt``) with calibration from real rider telemetry.

    Telemetry comes from the Minari datasets under ``dataset_root`` (all of them, or
    ``dataset_ids``), or directly as ``telemetry`` (physical, (N, n_features)).
    """
    from motocoach.quantization.calibration import build_calibration
    from motocoach.quantization.checks import coverage_plot, run_checks
    from motocoach.quantization.convert import convert_full_int8, onnx2tf_command
    from motocoach.quantization.export import check_onnx, export_onnx
    from motocoach.training.policy_net import load_actor

    stage = on_stage or (lambda s: None)
    out = Path(run_dir) / "quantize"
    out.mkdir(parents=True, exist_ok=True)
    policy = Path(policy)

    stage("load policy")
    actor = load_actor(policy)
    stage("load telemetry")
    if telemetry is None:
        if dataset_root is None:
            raise QuantizationError("stage 'load telemetry': give dataset_root (Minari datasets) or telemetry")
        from motocoach.training.datasets import load_telemetry

        telemetry = load_telemetry(Path(dataset_root), dataset_ids)
    stage("calibration")
    cal = build_calibration(telemetry, n_calib=n_calib, n_heldout=n_heldout, seed=seed)
    coverage_plot(out, cal.report["features"])
    stage("export ONNX")
    onnx_path = export_onnx(actor, out / "policy.onnx")
    stage("check ONNX")
    from motocoach.schema import load_schema

    onnx_diff = check_onnx(onnx_path, actor, load_schema().normalize(cal.heldout[:500]))
    stage("onnx2tf convert")
    converted = convert_full_int8(onnx_path, cal.calib, out)
    tflite = out / "model_int8.tflite"
    shutil.copyfile(converted, tflite)
    data = tflite.read_bytes()
    stage("checks")
    try:
        checks = run_checks(actor, data, cal.heldout, out, seed=seed)
    except QuantizationError:
        raise
    except Exception as e:  # CodegenError from the parser, runtime errors
        raise QuantizationError(f"stage 'checks' failed: {e}") from e

    report = {
        "policy": str(policy), "policy_sha256": hashlib.sha256(policy.read_bytes()).hexdigest(),
        "datasets": dataset_ids if dataset_ids is not None else ("all under root" if dataset_root else "given"),
        "calibration": cal.report, "onnx_max_abs_diff": onnx_diff,
        "onnx2tf_command": [str(a) for a in onnx2tf_command(onnx_path, out / "onnx2tf",
                                                                 out / "calibration.npy")[1:]],
        "tflite_sha256": hashlib.sha256(data).hexdigest(), "versions": _versions(), "checks": checks,
        "warnings": cal.report["warnings"] + checks["warnings"],
    }
    report_path = out / "report.json"
    report_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=float) + "\n")
    return QuantizeResult(tflite, report_path, report)


def provenance(report: dict[str, Any]) -> dict[str, Any]:
    """The deterministic ``created`` block of a manifest, from a quantize report (no timestamps,
    so regenerating from the same .tflite and report gives byte-identical files)."""
    cal = report.get("calibration", {})
    return {"policy_sha256": report.get("policy_sha256"), "datasets": report.get("datasets"),
            "calibration_rows": cal.get("rows_calibration"), "calibration_seed": cal.get("seed"),
            "tool_versions": report.get("versions", {}), "quantizer": "onnx2tf full-int8, per-channel"}
