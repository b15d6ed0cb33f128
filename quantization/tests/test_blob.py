"""CMB1 blob: Python round trip, and the C loader's refusals (garbage, truncated, wrong
version / schema, misaligned, tampered golden vectors)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from motocoach.errors import CodegenError
from motocoach.quantization.blob import HEADER, read_blob, write_blob

OK, BAD_BLOB, UNSUPPORTED, SCHEMA, NONFINITE, SELFTEST = range(6)


@pytest.fixture(scope="module")
def cmb(generated) -> bytes:
    return (generated / "default_model.cmb").read_bytes()


def reseal(b: bytes) -> bytes:
    """Recompute the header CRC so only the field under test is wrong."""
    body = b[HEADER.size:]
    return b[:60] + struct.pack("<I", zlib.crc32(body)) + body


def patch(b: bytes, off: int, fmt: str, value) -> bytes:
    out = bytearray(b)
    struct.pack_into(fmt, out, off, value)
    return reseal(bytes(out))


def test_header_and_descriptor_sizes():
    assert HEADER.size == 64


def test_python_round_trip(cmb):
    p = read_blob(cmb)
    assert write_blob(p) == cmb
    assert p["head"] == "LOGISTIC" and len(p["lut"]) == 256
    assert [l["n_out"] for l in p["layers"]] == [64, 64, 3]


def test_blob_and_const_arrays_are_the_same_model(engine, cmb):
    assert engine.load(cmb) == OK
    vecs = np.random.default_rng(2).integers(-128, 128, (5000, 8)).astype(np.int8)
    assert np.array_equal(engine.invoke(vecs, 3, which=0), engine.invoke(vecs, 3, which=1))
    tel = np.random.default_rng(3).normal(0, 100, (5000, 8)).astype(np.float32)
    assert np.array_equal(engine.quantize(tel, which=0)[0], engine.quantize(tel, which=1)[0])


@pytest.mark.parametrize("mutate, status", [
    (lambda b: b"", BAD_BLOB),
    (lambda b: b[:63], BAD_BLOB),
    (lambda b: b[:-4], BAD_BLOB),
    (lambda b: b + b"\0\0\0\0", BAD_BLOB),
    (lambda b: b"CMB2" + b[4:], BAD_BLOB),
    (lambda b: bytes(np.random.default_rng(0).integers(0, 256, len(b), dtype=np.uint8)), BAD_BLOB),
    (lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:], BAD_BLOB),              # CRC catches a bit flip
    (lambda b: patch(b, 8, "<I", 2), UNSUPPORTED),                               # engine version
    (lambda b: patch(b, 12, "<I", 0x12345678), SCHEMA),                          # schema hash
    (lambda b: patch(b, 16, "<H", 9), SCHEMA),                                   # n_inputs
    (lambda b: patch(b, 20, "<H", 5), UNSUPPORTED),                              # n_layers
    (lambda b: patch(b, 24, "<I", 7), UNSUPPORTED),                              # head
    (lambda b: patch(b, 28, "<f", float("nan")), BAD_BLOB),                      # input scale
    (lambda b: patch(b, 32, "<i", 300), BAD_BLOB),                               # input zero point
    (lambda b: patch(b, 44, "16s", b"X" * 16), BAD_BLOB),                        # id without NUL
    (lambda b: patch(b, 64 + 2, "<H", 63), BAD_BLOB),                            # layer width breaks the chain
    (lambda b: patch(b, 64 + 2, "<H", 65), UNSUPPORTED),                         # wider than the engine
    (lambda b: patch(b, 64 + 12, "<i", -200), BAD_BLOB),                         # act max < act min
])
def test_c_loader_refuses(engine, cmb, mutate, status):
    assert engine.load(mutate(cmb)) == status


def _layer_patch(cmb: bytes, key: str, value: int) -> bytes:
    """Rewrite one int32 of layer 0 (bias, multiplier or shift of channel 0) and reseal."""
    off = HEADER.size + 3 * 16 + 4 * 8 * 4  # header, 3 layer descriptors, 4 feature arrays
    off += {"bias": 0, "multiplier": 64 * 4, "shift": 2 * 64 * 4}[key]
    return patch(cmb, off, "<i", value)


@pytest.mark.parametrize("key, value", [
    ("bias", 2**31 - 1), ("bias", -(2**31) + 1), ("bias", 2**31 - 1 - 8 * 128 * 128 + 1),
    ("multiplier", 1 << 29), ("multiplier", -5), ("shift", 31), ("shift", -32),
])
def test_c_loader_refuses_params_that_could_overflow(engine, cmb, key, value):
    assert read_blob(cmb)["layers"][0]["n_in"] == 8  # the offsets above assume the 8-64-64-3 model
    assert engine.load(_layer_patch(cmb, key, value)) == BAD_BLOB
    p = read_blob(_layer_patch(cmb, key, value))
    with pytest.raises(CodegenError):
        write_blob(p)


def test_c_loader_accepts_the_largest_safe_bias(engine, cmb):
    p = read_blob(cmb)
    shift0 = int(p["layers"][0]["shift"][0])
    # a right shift r leaves room for the 2^(r-1) rounding term the engine adds (coach_engine.c)
    edge = ((2**31 - 1) >> max(shift0, 0)) - 8 * 128 * 128 - (1 << (-shift0 - 1) if shift0 < 0 else 0)
    assert engine.load(_layer_patch(cmb, "bias", edge)) == OK
    assert engine.load(_layer_patch(cmb, "bias", edge + 1)) == BAD_BLOB


def test_python_reader_refuses_what_c_refuses(cmb):
    for bad in (b"", cmb[:-4], b"CMB2" + cmb[4:], cmb[:200] + bytes([cmb[200] ^ 1]) + cmb[201:]):
        with pytest.raises(CodegenError):
            read_blob(bad)


def test_misaligned_blob_is_refused(engine, cmb):
    assert engine.load(cmb, offset=0) == OK
    assert engine.load(cmb, offset=2) == BAD_BLOB


def test_tampered_golden_vector_fails_selftest(engine, cmb):
    p = read_blob(cmb)
    p["golden_out"] = p["golden_out"].copy()
    p["golden_out"][0, 0] ^= 1
    assert engine.load(write_blob(p)) == OK          # structurally valid ...
    assert engine.selftest(1) == SELFTEST            # ... but the model is not what it claims


def test_tampered_weight_fails_selftest(engine, cmb):
    p = read_blob(cmb)
    w = p["layers"][2]["weights"].copy()
    w[:] = 0
    p["layers"][2]["weights"] = w
    assert engine.load(write_blob(p)) == OK
    assert engine.selftest(1) == SELFTEST
