"""The quantization pipeline: policy.pt -> ONNX -> calibrated full-int8 .tflite -> checks.

Each stage raises :class:`~motocoach.errors.QuantizationError` naming itself, so a failure
says whether export, the ONNX check, calibration, onnx2tf or the checks went wrong.
Everything lands in one run folder::

    <run>/quantize/policy.onnx, calibration.npy, onnx2tf/, onnx2tf.log
    <run>/quantize/ptq/                       post-training quantization of the float policy: checks + plots
    <run>/quantize/qat/                       quantization-aware fine-tuned copy (qat_policy.pt, its ONNX,
                                              onnx2tf run, checks + plots), unless qat=False
    <run>/quantize/model_int8.tflite          the better of the two (more decisions agree with the float policy)
    <run>/quantize/report.json                coverage, ONNX diff, both checks, the choice (see checks.py)
    <run>/quantize/*.png                      plots of the chosen model
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
             n_calib: int = 2000, n_heldout: int = 2000, seed: int = 0, qat: bool = True,
             qat_config=None, on_stage: Stage | None = None) -> QuantizeResult:
    """Quantize ``policy`` (a ``policy.pt``) with calibration from real rider telemetry.

    Telemetry comes from the Minari datasets under ``dataset_root`` (all of them, or
    ``dataset_ids``), or directly as ``telemetry`` (physical, (N, n_features)).
    With ``qat`` (default) a quantization-aware fine-tuned copy (:mod:`.qat`, ``qat_config``)
    is converted too, both are checked against the float policy on the held-out rows, and the
    one whose coaching decisions agree more often becomes ``model_int8.tflite``.
    """
    from motocoach.quantization.calibration import build_calibration
    from motocoach.quantization.checks import coverage_plot
    from motocoach.quantization.convert import onnx2tf_command
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
    stage("onnx2tf convert (post-training quantization)")
    candidates = {"ptq": _convert_and_check(actor, onnx_path, cal, out, out / "ptq", seed)}
    qat_record = None
    if qat:
        from motocoach.quantization import qat as qat_mod
        from motocoach.training.policy_net import save_actor

        cfg = qat_config or qat_mod.QatConfig()
        stage(f"quantization-aware fine-tuning ({cfg.restarts} student{'s' if cfg.restarts > 1 else ''}, "
              "about 2 min each on 2 cores)")
        student, qat_record = qat_mod.finetune(actor, cal.train, cal.calib, cfg)
        save_actor(student, out / "qat" / "qat_policy.pt", extra={"qat_from_policy_sha256": _sha(policy)})
        stage("onnx2tf convert (quantization-aware)")
        qat_onnx = export_onnx(student, out / "qat" / "policy_qat.onnx")
        check_onnx(qat_onnx, student, load_schema().normalize(cal.heldout[:500]))
        candidates["qat"] = _convert_and_check(actor, qat_onnx, cal, out / "qat", out / "qat", seed)
        qat_record["converted_logistic_input"] = candidates["qat"]["checks"]["head"]["input"]
    chosen = max(candidates, key=lambda k: (candidates[k]["checks"]["decision_agreement"]["all"],
                                            -_mae_lsb(candidates[k]["checks"]), k == "ptq"))
    tflite = out / "model_int8.tflite"
    shutil.copyfile(candidates[chosen]["tflite"], tflite)
    for png in (out / chosen).glob("*.png"):
        shutil.copyfile(png, out / png.name)
    data = tflite.read_bytes()
    checks = candidates[chosen]["checks"]

    report = {
        "policy": str(policy), "policy_sha256": _sha(policy),
        "datasets": dataset_ids if dataset_ids is not None else ("all under root" if dataset_root else "given"),
        "calibration": cal.report, "onnx_max_abs_diff": onnx_diff,
        "onnx2tf_command": [str(a) for a in onnx2tf_command(onnx_path, out / "onnx2tf",
                                                                 out / "calibration.npy")[1:]],
        "tflite_sha256": hashlib.sha256(data).hexdigest(), "versions": _versions(), "checks": checks,
        "quantizer": chosen,
        "comparison": {k: _summary_of(c["checks"]) for k, c in candidates.items()},
        "qat": qat_record,
        "warnings": cal.report["warnings"] + checks["warnings"],
    }
    report_path = out / "report.json"
    report_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=float) + "\n")
    return QuantizeResult(tflite, report_path, report)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _mae_lsb(checks: dict[str, Any]) -> float:
    return float(np.mean([e["mae_lsb"] for e in checks["float_vs_int8"].values()]))


def _summary_of(checks: dict[str, Any]) -> dict[str, Any]:
    """The figures that compare two int8 models of one float policy (held-out rows)."""
    return {"decision_agreement": checks["decision_agreement"]["all"], "mae_lsb": _mae_lsb(checks),
            "max_err_lsb": max(e["max_lsb"] for e in checks["float_vs_int8"].values()),
            "logistic_input_scale": (checks["head"]["input"] or {}).get("scale")}


def _convert_and_check(actor, onnx_path: Path, cal, work: Path, check_dir: Path, seed: int) -> dict[str, Any]:
    """onnx2tf full-int8 of ``onnx_path`` calibrated on ``cal.calib``; checks against the float ``actor``."""
    from motocoach.quantization.checks import run_checks
    from motocoach.quantization.convert import convert_full_int8

    converted = convert_full_int8(onnx_path, cal.calib, work)
    data = converted.read_bytes()
    (check_dir / "checks_model.tflite").parent.mkdir(parents=True, exist_ok=True)
    (check_dir / "checks_model.tflite").write_bytes(data)  # the model these checks are about
    try:
        checks = run_checks(actor, data, cal.heldout, check_dir, seed=seed)
    except QuantizationError:
        raise
    except Exception as e:  # CodegenError from the parser, runtime errors
        raise QuantizationError(f"stage 'checks' failed: {e}") from e
    return {"tflite": converted, "checks": checks}


def provenance(report: dict[str, Any]) -> dict[str, Any]:
    """The deterministic ``created`` block of a manifest, from a quantize report (no timestamps,
    so regenerating from the same .tflite and report gives byte-identical files)."""
    cal = report.get("calibration", {})
    return {"policy_sha256": report.get("policy_sha256"), "datasets": report.get("datasets"),
            "calibration_rows": cal.get("rows_calibration"), "calibration_seed": cal.get("seed"),
            "tool_versions": report.get("versions", {}),
            "quantizer": "onnx2tf full-int8, per-channel" + (
                ", quantization-aware fine-tuned" if report.get("quantizer") == "qat" else ""),
            # both candidates' decision agreement on the quantize step's held-out rows
            "decision_agreement_heldout": {k: round(v["decision_agreement"], 6)
                                           for k, v in report.get("comparison", {}).items()}}
