"""Can a fixed-point input quantizer replace the float one exactly? Measured for the committed model.

The device quantizes a feature as ``roundf(((x - offset) / scale) / input_scale) + zero_point`` in
float32 (three roundings before ``roundf``). A fixed-point quantizer computes the exact real value
``(x - offset) / (scale * input_scale)`` and rounds once. Both are monotone non-decreasing step
functions of the float32 input x on the feature's range, so they agree on every float32 in the
range exactly when their code boundaries agree: for each code k, the smallest float32 x with
code >= k, found by bisection over the ordered float32 bit patterns. Comparing the 254 boundaries
per feature this way is a complete check over all float32 inputs, in seconds.

Writes ``input_quantizer.json`` (where = host).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from motocoach.schema import load_schema

MANIFEST = Path(__file__).resolve().parents[1] / "firmware" / "lib" / "coach_model" / "manifest.json"


def _ordered_key(x: np.float32) -> int:
    """float32 -> integer whose order is the float order (sign-magnitude to two's complement)."""
    u = int(np.array(x, np.float32).view(np.uint32))
    return u if u < 0x80000000 else -(u & 0x7FFFFFFF)


def _from_key(k: int) -> np.float32:
    u = k if k >= 0 else 0x80000000 | -k
    return np.array(u, np.uint32).view(np.float32)[()]


def _round_half_away(v) -> int:
    return int(np.floor(v + Fraction(1, 2))) if v >= 0 else -int(np.floor(-v + Fraction(1, 2)))


def _first_key_with_code(code_of, k: int, lo_key: int, hi_key: int) -> int:
    a, b = lo_key, hi_key
    while a < b:
        m = (a + b) // 2
        if code_of(_from_key(m)) >= k:
            b = m
        else:
            a = m + 1
    return a


def test_fixed_point_input_quantizer_boundaries(bench_result):
    man = json.loads(MANIFEST.read_text())
    s_in, zp = np.float32(man["input"]["scale"]), int(man["input"]["zero_point"])
    schema = load_schema()
    per_feature, total, differing = {}, 0, 0
    for i, name in enumerate(schema.feature_names):
        lo, hi = np.float32(schema.feature_low[i]), np.float32(schema.feature_high[i])
        off, sc = np.float32(schema.norm_offset[i]), np.float32(schema.norm_scale[i])

        def float_code(x, off=off, sc=sc):  # the device's float32 path
            return min(127, max(-128, _round_half_away(Fraction(float((x - off) / sc / s_in))) + zp))

        def exact_code(x, off=off, sc=sc):  # one rounding of the exact real value
            v = (Fraction(float(x)) - Fraction(float(off))) / (Fraction(float(sc)) * Fraction(float(s_in)))
            return min(127, max(-128, _round_half_away(v) + zp))

        assert float_code(lo) == exact_code(lo) and float_code(hi) == exact_code(hi)
        codes = range(float_code(lo) + 1, float_code(hi) + 1)
        lo_key, hi_key = _ordered_key(lo), _ordered_key(hi)
        diff = sum(_first_key_with_code(float_code, k, lo_key, hi_key)
                   != _first_key_with_code(exact_code, k, lo_key, hi_key) for k in codes)
        per_feature[name] = diff
        total += len(codes)
        differing += diff
    assert total > 8 * 200
    bench_result("input_quantizer", "host", {
        "code_boundaries": total,
        "boundaries_differing_single_rounding": differing,
        **{f"differing_{k}": v for k, v in per_feature.items()},
    }, notes=("Committed model. For every feature, the smallest float32 input reaching each int8 code under "
              "the device's float32 path (x - offset, / scale, / input_scale, roundf) and under one exact "
              "rounding of (x - offset) / (scale * input_scale) (what a fixed-point quantizer computes), found by "
              "bisection over ordered float32 bit patterns; both are monotone, so equal boundaries would mean "
              "equal codes for every float32 input. A differing boundary means some input gets another code."))
