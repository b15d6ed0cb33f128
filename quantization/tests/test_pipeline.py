"""The quantize report: ONNX check, calibration coverage, int8 checks, and stage-named errors."""

from __future__ import annotations

import doctest
import importlib
import json

import numpy as np
import pytest

from motocoach.errors import DatasetError, QuantizationError


def test_report_contents(quantized):
    r = json.loads(quantized.report_path.read_text())
    assert r["onnx_max_abs_diff"] <= 1e-5
    c = r["checks"]
    assert set(c["float_vs_int8"]) == {"left_intensity", "right_intensity", "frequency"}
    for e in c["float_vs_int8"].values():
        assert 0 <= e["mae"] <= e["max"] and e["max_lsb"] >= e["mae_lsb"]
    assert c["decision_agreement"]["all"] > 0.8
    cross = c["tflm_vs_tflite_interpreter"]
    for part in ("heldout_telemetry", "random_int8"):
        assert cross[part]["unexplained"] == 0
        assert cross[part]["mismatches"] == cross[part]["rounding_ties"]
    assert c["tflm_arena_bytes"] > 0 and c["tflite_bytes"] == len(quantized.tflite.read_bytes())
    assert len(r["calibration"]["features"]) == 8
    for png in ("coverage.png", "float_vs_int8.png", "error_lsb.png", "input_codes.png"):
        assert (quantized.report_path.parent / png).stat().st_size > 1000


def test_ptq_and_qat_are_both_converted_checked_and_the_better_one_kept(quantized, policy_path):
    from motocoach.quantization.tflite_model import parse_tflite
    from motocoach.training.policy_net import load_actor

    r = json.loads(quantized.report_path.read_text())
    cmp = r["comparison"]
    assert set(cmp) == {"ptq", "qat"} and r["quantizer"] in cmp
    best = max(v["decision_agreement"] for v in cmp.values())
    assert cmp[r["quantizer"]]["decision_agreement"] == best == r["checks"]["decision_agreement"]["all"]
    run = quantized.report_path.parent
    kept = run / r["quantizer"] / "checks_model.tflite"
    assert kept.read_bytes() == quantized.tflite.read_bytes()
    # the fine-tuned copy is a normal policy file with the teacher's architecture
    student, teacher = load_actor(run / "qat" / "qat_policy.pt"), load_actor(policy_path)
    assert student.arch() == teacher.arch()
    assert any(not np.array_equal(a.detach().numpy(), b.detach().numpy())
               for a, b in zip(student.parameters(), teacher.parameters()))
    # onnx2tf calibrated the LOGISTIC input to the range the fine-tuning trained with
    q = r["qat"]
    # restarts: the kept student is the one whose int8 decisions agreed most on training rows
    tried = {t["seed"]: t["selection_agreement"] for t in q["restarts"]}
    assert sorted(tried) == [0, 1, 2] and tried[q["seed"]] == max(tried.values())
    conv = parse_tflite((run / "qat" / "checks_model.tflite").read_bytes()).head_input.scale
    assert conv == pytest.approx(q["logistic_input_scale_trained"], rel=0.02)
    assert abs(q["ranges"][-1][0]) <= abs(q["teacher_ranges"][-1][0]) + 1e-6 or q["logit_bound"] >= abs(q["ranges"][-1][0])


def test_fake_quantization_is_the_converted_int8_model(quantized, policy_path, telemetry):
    """QAT is only as good as its simulation of the int8 model. The simulation repeats the
    converter's weight and bias rounding and TFLM's two-step requantization, so on both
    conversions (PTQ of the float actor, QAT of its student) it gives the int8 model's outputs
    exactly, code for code, on logged rows and on random rows over the whole schema range
    (about one value in eleven at a limit)."""
    import torch

    from motocoach.quantization import qat
    from motocoach.quantization.host_engine import HostEngine
    from motocoach.schema import load_schema
    from motocoach.training.policy_net import load_actor

    run = quantized.report_path.parent
    calib = np.load(run / "calibration.npy")
    s = load_schema()
    rng = np.random.default_rng(0)
    tel = np.concatenate([telemetry[:3000], s.feature_low + (s.feature_high - s.feature_low)
                          * rng.uniform(-0.05, 1.05, (2000, s.n_features))]).astype(np.float32)
    tel = np.clip(tel, s.feature_low, s.feature_high)  # the unit clamps before it quantizes
    for kind, pt in (("ptq", policy_path), ("qat", run / "qat" / "qat_policy.pt")):
        actor = load_actor(pt)
        eng = HostEngine.from_tflite_bytes((run / kind / "checks_model.tflite").read_bytes())
        with torch.no_grad():
            sim = qat.fake_quant_forward(actor, torch.from_numpy(s.normalize(tel)), qat.ranges(actor, calib))
        sim_codes = np.round(sim.numpy() / qat.OUT_SCALE) + qat.OUT_ZP
        int8_codes = eng.invoke(eng.quantize_input(tel)).astype(np.float64)
        assert np.array_equal(sim_codes, int8_codes), \
            f"{kind}: {int((sim_codes != int8_codes).any(axis=1).sum())} of {len(tel)} rows differ"


def test_onnx_is_single_file_opset17(quantized):
    import onnx

    m = onnx.load(str(quantized.report_path.parent / "policy.onnx"))
    assert {o.domain: o.version for o in m.opset_import}[""] == 17
    assert [n.op_type for n in m.graph.node] == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Sigmoid"]
    assert list((quantized.report_path.parent).glob("*.onnx.data")) == []


def test_poor_coverage_warns():
    from motocoach.quantization.calibration import build_calibration
    from motocoach.schema import load_schema

    s = load_schema()
    rng = np.random.default_rng(0)
    tel = (s.feature_low + (s.feature_high - s.feature_low) * rng.uniform(0.4, 0.6, (400, 8))).astype(np.float32)
    cal = build_calibration(tel, n_calib=200, n_heldout=100)
    assert len(cal.report["warnings"]) == 8
    assert cal.calib.min() == -1.0 and cal.calib.max() == 1.0     # range-limit rows added
    with pytest.raises(DatasetError):
        build_calibration(tel[:5])


def test_convert_failure_names_the_stage(tmp_path):
    from motocoach.quantization.convert import convert_full_int8

    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not onnx")
    with pytest.raises(QuantizationError, match="stage 'onnx2tf convert'"):
        convert_full_int8(bogus, np.zeros((10, 8), np.float32), tmp_path / "w", timeout_s=120)
    with pytest.raises(QuantizationError, match="stage 'calibration'"):
        convert_full_int8(bogus, np.full((10, 8), np.nan, np.float32), tmp_path / "w")


def test_onnx_check_catches_a_different_model(quantized, policy_path):
    import torch

    from motocoach.quantization.export import check_onnx
    from motocoach.training.policy_net import load_actor

    actor = load_actor(policy_path)
    with torch.no_grad():
        actor.head.bias += 0.5
    with pytest.raises(QuantizationError, match="stage 'check ONNX'"):
        check_onnx(quantized.report_path.parent / "policy.onnx", actor, np.zeros((4, 8), np.float32))


@pytest.mark.parametrize("name", ["motocoach.quantization.tflite_model", "motocoach.quantization.blob",
                                  "motocoach.quantization.calibration", "motocoach.quantization.checks",
                                  "motocoach.quantization.host_engine",
                                  "motocoach.quantization.vectors"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
