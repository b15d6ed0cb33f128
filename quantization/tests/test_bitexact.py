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
from motocoach.schema import load_schema

COACH_OK, COACH_ERR_NONFINITE = 0, 4


def int8_vectors(n_features: int, zp: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = [
        rng.integers(-128, 128, (85_000, n_features)),                        # uniform
        rng.choice([-128, -127, 126, 127], (12_000, n_features)),             # saturating rails
        np.repeat(np.arange(-128, 128)[:, None], n_features, axis=1),         # constant vectors
        np.full((1, n_features), zp),                                         # the zero point
        np.clip(zp + rng.integers(-2, 3, (4_000, n_features)), -128, 127),    # around the zero point
    ]
    sweep = np.full((n_features * 256, n_features), zp)                        # one feature at a time
    for i in range(n_features):
        sweep[i * 256:(i + 1) * 256, i] = np.arange(-128, 128)
    parts.append(sweep)
    return np.concatenate(parts).astype(np.int8)


def boundary_telemetry(n: int = 20_000, seed: int = 3) -> np.ndarray:
    """Physical float telemetry at and around every range limit, plus wide random values."""
    s = load_schema()
    lo, hi = s.feature_low, s.feature_high
    rng = np.random.default_rng(seed)
    span = hi - lo
    wide = (lo - 0.5 * span + rng.random((n, s.n_features)) * 2 * span).astype(np.float32)
    edges = np.stack([lo, hi, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf), np.nextafter(lo, np.inf),
                      np.nextafter(hi, -np.inf), (lo + hi) / 2, lo - 1e30, hi + 1e30,
                      np.full_like(lo, np.finfo(np.float32).max), np.full_like(lo, -np.finfo(np.float32).max),
                      np.full_like(lo, 1e-45), np.full_like(lo, -0.0)]).astype(np.float32)
    combos = edges[rng.integers(0, len(edges), (4_000, s.n_features)), np.arange(s.n_features)]
    return np.concatenate([wide, edges, combos]).astype(np.float32)


def tie_telemetry(eng: HostEngine) -> np.ndarray:
    """Values whose normalized / input_scale lands on or next to a .5 tie (roundf vs half-even)."""
    s = load_schema()
    k = np.arange(-130, 130) + 0.5
    n = (k * eng.input_scale).astype(np.float32)
    x = (n * s.norm_scale[:, None] + s.norm_offset[:, None]).T.astype(np.float32)   # (260, n_features)
    return np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)]).astype(np.float32)


def test_round_half_away_differs_from_numpy_round():
    v = np.array([0.5, 1.5, 2.5, -0.5, -2.5], np.float32)
    assert round_half_away(v).tolist() == [1, 2, 3, -1, -3]
    assert np.round(v).tolist() != round_half_away(v).tolist()


def test_c_engine_matches_tflm_on_100k_vectors(engine, tflite_bytes, telemetry, generated):
    eng = HostEngine.from_tflite_bytes(tflite_bytes)
    vecs = np.concatenate([int8_vectors(eng.n_inputs, eng.input_zero_point), eng.quantize_input(telemetry)])
    assert len(vecs) >= 100_000
    ref = TflmRunner(tflite_bytes).run(vecs)
    got_const = engine.invoke(vecs, eng.n_outputs, which=0)
    mism = np.any(got_const != ref, axis=1)
    assert int(mism.sum()) == 0, f"{int(mism.sum())} mismatches, first input {vecs[mism][:3].tolist()}"
    # the same model as a CMB1 blob must give the very same outputs
    assert engine.load((generated / "default_model.cmb").read_bytes()) == COACH_OK
    got_blob = engine.invoke(vecs, eng.n_outputs, which=1)
    assert np.array_equal(got_blob, got_const)
    # outputs really vary (a constant engine would pass nothing above, but say so plainly)
    assert len(np.unique(ref[:, 0])) > 20


def test_float_boundary_quantization_is_bit_exact(engine, tflite_bytes):
    eng = HostEngine.from_tflite_bytes(tflite_bytes)
    tel = np.concatenate([boundary_telemetry(), tie_telemetry(eng)])
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
