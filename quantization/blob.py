"""The CMB1 model blob: the engine-ready model as one little-endian byte string.

Layout (docs/model-format.md is the normative description; offsets in bytes):

* header, 64 B: ``"CMB1"``, u32 total length, u32 engine version, u32 schema hash32,
  u16 n_inputs, u16 n_outputs, u16 n_layers, u16 n_golden, u32 head, f32 input scale,
  i32 input zp, f32 output scale, i32 output zp, char[16] model id (NUL-padded),
  u32 CRC-32 (IEEE) of every byte after the header;
* n_layers x 16 B layer descriptors: u16 n_in, u16 n_out, i32 out zp, i32 act min, i32 act max;
* f32 feature_min[n_in], feature_max[n_in], norm_offset[n_in], norm_scale[n_in];
* per layer: i32 bias[n_out] (input zero point folded), i32 multiplier[n_out],
  i32 shift[n_out], i8 weights[n_out * n_in] in engine order (:func:`to_engine_order`)
  padded to 4 bytes;
* i8 lut[256] when head != NONE;
* i8 golden_in[n_golden * n_inputs] padded to 4, i8 golden_out[n_golden * n_outputs] padded to 4.

Every section starts 4-byte aligned so the device reads int32/float arrays in place.

>>> p = example_params()
>>> read_blob(write_blob(p))["layers"][0]["n_out"]
2
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import numpy as np

from motocoach.errors import CodegenError

MAGIC = b"CMB1"
HEADER = struct.Struct("<4sIIIHHHHIfifi16sI")
LAYER = struct.Struct("<HHiii")
HEADS = ("NONE", "LOGISTIC", "TANH")


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def to_engine_order(w: np.ndarray) -> np.ndarray:
    """[n_out][n_in] weights -> the engine's flat order: each block of 4 output rows is stored
    column by column (w[4k][i], w[4k+1][i], w[4k+2][i], w[4k+3][i], then i+1), and the last
    n_out % 4 rows follow row-major. One input load then feeds four accumulators.

    >>> to_engine_order(np.arange(10, dtype=np.int8).reshape(5, 2)).tolist()
    [0, 2, 4, 6, 1, 3, 5, 7, 8, 9]
    """
    w = np.asarray(w, np.int8)
    n_blk = (w.shape[0] // 4) * 4
    blocks = w[:n_blk].reshape(-1, 4, w.shape[1]).transpose(0, 2, 1).reshape(-1)
    return np.concatenate([blocks, w[n_blk:].reshape(-1)]).astype(np.int8)


def from_engine_order(flat: np.ndarray, n_out: int, n_in: int) -> np.ndarray:
    """Inverse of :func:`to_engine_order`.

    >>> w = np.arange(35, dtype=np.int8).reshape(7, 5)
    >>> bool(np.array_equal(from_engine_order(to_engine_order(w), 7, 5), w))
    True
    """
    flat = np.asarray(flat, np.int8).reshape(-1)
    n_blk = (n_out // 4) * 4
    blocks = flat[:n_blk * n_in].reshape(-1, n_in, 4).transpose(0, 2, 1).reshape(n_blk, n_in)
    return np.concatenate([blocks, flat[n_blk * n_in:].reshape(n_out - n_blk, n_in)]).astype(np.int8)


def check_int32_safe(layer: dict[str, Any]) -> None:
    """Raise CodegenError unless the layer's integer arithmetic stays inside int32 for every
    int8 input, the rule the C loader enforces: multiplier 0 or in [2^30, 2^31), shift in
    [-31, 30], and |bias| + n_in * 128 * 128 <= INT32_MAX >> shift for a shift > 0, else
    <= INT32_MAX - 2^(-shift - 1) (the rounding term the engine adds before a right shift)."""
    mul = np.asarray(layer["multiplier"], np.int64)
    shift = np.asarray(layer["shift"], np.int64)
    bias = np.abs(np.asarray(layer["bias"], np.int64))
    if np.any((mul != 0) & ((mul < 1 << 30) | (mul >= 1 << 31))) or np.any((shift < -31) | (shift > 30)):
        raise CodegenError("a layer has a multiplier outside [2^30, 2^31) or a shift outside [-31, 30]")
    limit = np.where(shift > 0, (2**31 - 1) >> np.maximum(shift, 0),
                     (2**31 - 1) - np.where(shift < 0, 1 << np.maximum(-shift - 1, 0), 0))
    if np.any(bias + int(layer["n_in"]) * 128 * 128 > limit):
        raise CodegenError("a layer's bias is so large that its int32 accumulator could overflow")


def write_blob(p: dict[str, Any]) -> bytes:
    """Serialize engine parameters (as produced by ``codegen.engine_params``) to CMB1 bytes."""
    n_in, n_out = int(p["n_inputs"]), int(p["n_outputs"])
    for layer in p["layers"]:
        check_int32_safe(layer)
    gin = np.asarray(p["golden_in"], np.int8).reshape(-1, n_in)
    gout = np.asarray(p["golden_out"], np.int8).reshape(-1, n_out)
    model_id = str(p["model_id"]).encode()
    if len(model_id) > 15:
        raise CodegenError(f"model id {p['model_id']!r} is longer than 15 bytes")
    body = b"".join(LAYER.pack(int(l["n_in"]), int(l["n_out"]), int(l["out_zp"]), int(l["act_min"]),
                               int(l["act_max"])) for l in p["layers"])
    for key in ("feature_min", "feature_max", "norm_offset", "norm_scale"):
        body += np.asarray(p[key], "<f4").tobytes()
    for l in p["layers"]:
        body += np.asarray(l["bias"], "<i4").tobytes() + np.asarray(l["multiplier"], "<i4").tobytes()
        body += np.asarray(l["shift"], "<i4").tobytes() + _pad4(to_engine_order(l["weights"]).tobytes())
    if p["head"] != "NONE":
        body += np.asarray(p["lut"], np.int8).tobytes()
    body += _pad4(gin.tobytes()) + _pad4(gout.tobytes())
    total = HEADER.size + len(body)
    head = HEADER.pack(MAGIC, total, int(p["engine_version"]), int(p["schema_hash32"]), n_in, n_out,
                       len(p["layers"]), gin.shape[0], HEADS.index(p["head"]), float(p["input_scale"]),
                       int(p["input_zp"]), float(p["output_scale"]), int(p["output_zp"]),
                       model_id.ljust(16, b"\0"), zlib.crc32(body))
    return head + body


class _Reader:
    def __init__(self, data: bytes, off: int) -> None:
        self.data, self.off = data, off

    def take(self, dtype: str, count: int, pad: bool = False) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        end = self.off + (size + (-size % 4) if pad else size)
        if end > len(self.data):
            raise CodegenError("CMB1 blob is truncated")
        arr = np.frombuffer(self.data, dtype, count, self.off).copy()
        self.off = end
        return arr


def read_blob(data: bytes) -> dict[str, Any]:
    """Parse and validate CMB1 bytes into the same dict :func:`write_blob` takes (plus sha256)."""
    data = bytes(data)
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise CodegenError("not a CMB1 model blob (bad magic or shorter than its header)")
    (_, total, ver, h32, n_in, n_out, n_layers, n_golden, head, in_s, in_zp, out_s, out_zp, mid,
     crc) = HEADER.unpack_from(data)
    if total != len(data):
        raise CodegenError(f"CMB1 blob says {total} bytes but has {len(data)} (truncated or padded)")
    if zlib.crc32(data[HEADER.size:]) != crc:
        raise CodegenError("CMB1 blob CRC mismatch: the blob is corrupt")
    if head >= len(HEADS) or not 1 <= n_layers <= 4 or b"\0" not in mid:
        raise CodegenError("CMB1 blob header has an invalid head, layer count or model id")
    r = _Reader(data, HEADER.size)
    descs = [LAYER.unpack_from(data, HEADER.size + i * LAYER.size) for i in range(n_layers)]
    r.off += n_layers * LAYER.size
    p: dict[str, Any] = {"engine_version": ver, "schema_hash32": h32, "n_inputs": n_in, "n_outputs": n_out,
                         "head": HEADS[head], "input_scale": in_s, "input_zp": in_zp, "output_scale": out_s,
                         "output_zp": out_zp, "model_id": mid.split(b"\0")[0].decode(errors="replace")}
    for key in ("feature_min", "feature_max", "norm_offset", "norm_scale"):
        p[key] = r.take("<f4", n_in)
    p["layers"] = []
    width = n_in
    for (li, lo, zp, amin, amax) in descs:
        if li != width or not (1 <= lo <= 64):
            raise CodegenError("CMB1 blob layer widths do not chain")
        layer = {"n_in": li, "n_out": lo, "out_zp": zp, "act_min": amin, "act_max": amax,
                 "bias": r.take("<i4", lo), "multiplier": r.take("<i4", lo), "shift": r.take("<i4", lo)}
        layer["weights"] = from_engine_order(r.take("i1", lo * li, pad=True), lo, li)
        p["layers"].append(layer)
        width = lo
    if width != n_out:
        raise CodegenError("CMB1 blob: last layer width differs from n_outputs")
    p["lut"] = r.take("i1", 256) if p["head"] != "NONE" else None
    p["golden_in"] = r.take("i1", n_golden * n_in, pad=True).reshape(n_golden, n_in)
    p["golden_out"] = r.take("i1", n_golden * n_out, pad=True).reshape(n_golden, n_out)
    if r.off != len(data):
        raise CodegenError("CMB1 blob has trailing bytes after the golden vectors")
    p["sha256"] = hashlib.sha256(data).hexdigest()
    return p


def example_params() -> dict[str, Any]:
    """A tiny 2-input, 2-output parameter set (for docs and tests)."""
    layer = {"n_in": 2, "n_out": 2, "out_zp": 0, "act_min": -128, "act_max": 127,
             "weights": [[1, 2], [3, 4]], "bias": [0, 0], "multiplier": [1 << 30, 1 << 30], "shift": [0, 0]}
    return {"engine_version": 1, "schema_hash32": 0, "n_inputs": 2, "n_outputs": 2, "head": "NONE",
            "input_scale": 1.0, "input_zp": 0, "output_scale": 1.0, "output_zp": 0, "model_id": "example",
            "feature_min": [-1, -1], "feature_max": [1, 1], "norm_offset": [0, 0], "norm_scale": [1, 1],
            "layers": [layer], "lut": None, "golden_in": [[1, 1]], "golden_out": [[2, 4]]}
