"""The generated C engine (host build, ctypes) vs the tflite_micro runtime: zero mismatches.

Covers >= 100,000 int8 vectors (uniform, saturating rails, zero points, per-feature sweeps,
real telemetry) and the float boundary (range limits, just outside them, huge values,
rounding ties, NaN/inf). The factory const arrays and the CMB1 blob must agree too.
"""

from __future__ import annotations

import numpy as np
import pytest

from motocoach.errors import SchemaError
from motocoach.quantization.host_engine import HostEngine, round_half_away
from motocoach.quantization.tflm import TflmRunner
from motocoach.quantization.vectors import boundary_telemetry, engine_vectors, int8_vectors, tie_telemetry
from motocoach.schema import load_schema

COACH_OK, COACH_ERR_NONFINITE = 0, 4


def test_round_half_away_differs_from_numpy_round():
    v = np.array([0.5, 1.5, 2.5, -0.5, -2.5], np.float32)
    assert round_half_away(v).tolist() == [1, 2, 3, -1, -3]
    assert np.round(v).tolist() != round_half_away(v).tolist()


def test_c_engine_matches_tflm_on_100k_vectors(engine, tflite_bytes, telemetry, generated, tmp_path):
    """The default host build (x86-64: SSE2 loops), as const arrays and as a CMB1 blob, and the
    COACH_ENGINE_NO_SIMD build (the scalar loops the MCUs compile), on the same vectors."""
    from motocoach.quantization.cbuild import EngineLib, build_host_lib

    eng = HostEngine.from_tflite_bytes(tflite_bytes)
    vecs = engine_vectors(eng, telemetry)
    assert len(vecs) >= 100_000
    ref = TflmRunner(tflite_bytes).run(vecs)
    got_const = engine.invoke(vecs, eng.n_outputs, which=0)
    mism = np.any(got_const != ref, axis=1)
    assert int(mism.sum()) == 0, f"{int(mism.sum())} mismatches, first input {vecs[mism][:3].tolist()}"
    # the same model as a CMB1 blob must give the very same outputs
    assert engine.load((generated / "default_model.cmb").read_bytes()) == COACH_OK
    got_blob = engine.invoke(vecs, eng.n_outputs, which=1)
    assert np.array_equal(got_blob, got_const)
    got_scalar = EngineLib(build_host_lib(tmp_path / "build", generated, simd=False)).invoke(vecs, eng.n_outputs)
    mism = np.any(got_scalar != ref, axis=1)
    assert int(mism.sum()) == 0, f"scalar build: {int(mism.sum())} mismatches, first input {vecs[mism][:3].tolist()}"
    # outputs really vary (a constant engine would pass nothing above, but say so plainly)
    assert len(np.unique(ref[:, 0])) > 20


def test_float_boundary_quantization_is_bit_exact(engine, tflite_bytes):
    eng = HostEngine.from_tflite_bytes(tflite_bytes)
    tel = np.concatenate([boundary_telemetry(), tie_telemetry(float(eng.input_scale))])
    c_q, clamped, status = engine.quantize(tel)
    assert np.all(status == COACH_OK)
    py_q = eng.quantize_input(tel)
    bad = np.any(c_q != py_q, axis=1)
    assert int(bad.sum()) == 0, f"C vs Python quantize differ on {tel[bad][:3].tolist()}"
    s = load_schema()
    outside = np.any((tel < s.feature_low) | (tel > s.feature_high), axis=1)
    assert np.array_equal(clamped.astype(bool), outside)
    assert c_q.min() == -128 and c_q.max() >= 126     # the limits land on (or next to) the int8 rails
    ref = TflmRunner(tflite_bytes).run(c_q)
    assert np.array_equal(engine.invoke(c_q, eng.n_outputs), ref)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_is_rejected_and_output_untouched(engine, tflite_bytes, bad):
    eng = HostEngine.from_tflite_bytes(tflite_bytes)
    s = load_schema()
    tel = np.tile((s.feature_low + s.feature_high) / 2, (s.n_features, 1)).astype(np.float32)
    for i in range(s.n_features):
        tel[i, i] = bad
    q, _, status = engine.quantize(tel, fill=99)
    assert np.all(status == COACH_ERR_NONFINITE)
    assert np.all(q == 99)
    with pytest.raises(SchemaError):
        eng.quantize_input(tel[:1])


def test_dequantize_matches_host(engine, tflite_bytes):
    eng = HostEngine.from_tflite_bytes(tflite_bytes)
    codes = np.repeat(np.arange(-128, 128, dtype=np.int8)[:, None], eng.n_outputs, axis=1)
    got = engine.dequantize(codes)
    assert np.array_equal(got, eng.dequantize(codes))
    assert got.min() == 0.0 and got.max() <= 1.0


def test_selftest_and_identity(engine, generated):
    import hashlib
    import json

    man = json.loads((generated / "manifest.json").read_text())
    assert engine.selftest(0) == COACH_OK
    sha, mid = engine.info(0)
    assert sha == man["model_sha256"] == hashlib.sha256((generated / "default_model.cmb").read_bytes()).hexdigest()
    assert mid == man["model_id"] and len(mid) <= 15
    assert engine.load((generated / "default_model.cmb").read_bytes()) == COACH_OK
    assert engine.info(1) == (sha, mid)      # the loader computes the same sha256 on the device
    assert engine.selftest(1) == COACH_OK


def test_numpy_int64_reference_matches_tflm(tflite_bytes):
    """The tie classifier used by the TFLM-vs-TFLite check is itself exact."""
    from motocoach.quantization.checks import fc_stack_int64
    from motocoach.quantization.tflite_model import parse_tflite
    from motocoach.quantization.tflm import head_lut

    model = parse_tflite(tflite_bytes)
    vecs = int8_vectors(model.n_inputs, model.input.zero_point, seed=11)[:20_000]
    pre, _ = fc_stack_int64(model, vecs)
    lut = head_lut(tflite_bytes, model.head)
    out = lut[pre.astype(np.int32) + 128] if lut is not None else pre
    assert np.array_equal(out, TflmRunner(tflite_bytes).run(vecs))


@pytest.mark.slow
def test_odd_width_model_is_bit_exact(telemetry, tmp_path):
    """Hidden widths 37 and 14: an odd input width for the two-column loop, passes of eight
    rows, a lone block of four (37 = 4*8 + 4 + 1, 14 = 8 + 4 + 2) and row-major tails of one,
    two and three rows, converted by onnx2tf like the real model (about 10 s)."""
    import torch

    from motocoach.quantization import codegen
    from motocoach.quantization.cbuild import EngineLib, build_host_lib
    from motocoach.quantization.convert import convert_full_int8
    from motocoach.quantization.export import export_onnx
    from motocoach.quantization.tflite_model import parse_tflite
    from motocoach.schema import load_schema
    from motocoach.training.policy_net import CoachActor

    torch.manual_seed(1)
    actor = CoachActor(hidden=(37, 14)).eval()
    calib = load_schema().normalize(telemetry[:1000])
    tfl = convert_full_int8(export_onnx(actor, tmp_path / "odd.onnx"), calib, tmp_path)
    data = tfl.read_bytes()
    assert [(l.n_in, l.n_out) for l in parse_tflite(data).layers] == [(8, 37), (37, 14), (14, 3)]
    codegen.generate(tfl, tmp_path / "gen")
    eng = HostEngine.from_tflite_bytes(data)
    vecs = engine_vectors(eng, telemetry)
    assert len(vecs) >= 100_000
    ref = TflmRunner(data).run(vecs)
    assert len(np.unique(ref[:, 0])) > 5
    for simd in (True, False):  # x86-64 SSE2 loops and the scalar loops the MCUs run
        lib = EngineLib(build_host_lib(tmp_path / "build", tmp_path / "gen", simd=simd))
        assert np.array_equal(lib.invoke(vecs, eng.n_outputs), ref), f"simd={simd}"
        assert lib.selftest() == 0
