"""The host reference of the device engine: float boundary in numpy, int8 core in TFLM.

:meth:`HostEngine.quantize_input` reproduces ``coach_model_quantize_input`` bit for bit
(float32 clamp, float32 ``(x - offset) / scale``, float32 ``/ input_scale``, round half
away from zero like ``roundf``, ``+ zero_point``, clamp to int8). :meth:`HostEngine.invoke`
runs the TFLite-Micro runtime, which the generated C engine matches exactly.

>>> from pathlib import Path
>>> eng = HostEngine.from_manifest(DEFAULT_MANIFEST)   # doctest: +SKIP
>>> q, actions = eng.predict(np.zeros((1, eng.n_inputs), np.float32))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from motocoach.errors import CodegenError, SchemaError
from motocoach.quantization.tflite_model import parse_tflite
from motocoach.quantization.tflm import TflmRunner
from motocoach.schema import FeatureSchema, load_schema

#: The committed factory model's manifest (repository-relative).
DEFAULT_MANIFEST = Path("firmware/lib/coach_model/manifest.json")


def round_half_away(x: np.ndarray) -> np.ndarray:
    """C ``roundf`` on float32 values (numpy's ``round`` is half-to-even, TFLM is not).

    >>> round_half_away(np.array([0.5, -0.5, 1.5, 2.5, 0.49999997], np.float32)).tolist()
    [1.0, -1.0, 2.0, 3.0, 0.0]
    """
    d = np.asarray(x, np.float32).astype(np.float64)  # float32 + 0.5 is exact in float64
    return np.where(d >= 0, np.floor(d + 0.5), np.ceil(d - 0.5))


class HostEngine:
    """Reference engine for one model.

    Args:
        tflite: the full-int8 ``.tflite`` bytes.
        input_scale, input_zero_point: int8 input quantization.
        output_scale, output_zero_point: int8 output quantization.
        schema: feature schema giving clamp ranges and normalization (default: packaged).
    """

    def __init__(self, tflite: bytes, input_scale: float, input_zero_point: int,
                 output_scale: float, output_zero_point: int, schema: FeatureSchema | None = None) -> None:
        self.schema = schema or load_schema()
        self.tflite = tflite
        self.input_scale = np.float32(input_scale)
        self.input_zero_point = int(input_zero_point)
        self.output_scale = np.float32(output_scale)
        self.output_zero_point = int(output_zero_point)
        self.runner = TflmRunner(tflite)
        self.n_inputs = self.schema.n_features
        self.n_outputs = self.schema.n_actions
        if self.runner.n_in != self.n_inputs or self.runner.n_out != self.n_outputs:
            raise CodegenError(f"model is {self.runner.n_in}->{self.runner.n_out}, the schema needs "
                               f"{self.n_inputs}->{self.n_outputs}")

    @classmethod
    def from_tflite(cls, path: str | Path) -> "HostEngine":
        """Engine for a ``.tflite`` file (quant params read from the file)."""
        return cls.from_tflite_bytes(Path(path).read_bytes())

    @classmethod
    def from_tflite_bytes(cls, data: bytes) -> "HostEngine":
        """Engine for ``.tflite`` bytes (quant params read from the flatbuffer)."""
        m = parse_tflite(data)
        return cls(data, m.input.scale, m.input.zero_point, m.output.scale, m.output.zero_point)

    @classmethod
    def from_manifest(cls, path: str | Path) -> "HostEngine":
        """Engine for a generated ``manifest.json`` (its ``.tflite`` sits next to it)."""
        p = Path(path)
        try:
            man = json.loads(p.read_text())
            tfl = (p.parent / man["tflite_file"]).read_bytes()
            inp, out = man["input"], man["output"]
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise CodegenError(f"cannot read model manifest {p}: {e}; run `motocoach codegen`") from e
        schema = load_schema()
        if man.get("schema_hash") != schema.hash:
            raise SchemaError(f"{p} was built for another feature schema; regenerate with `make models`")
        return cls(tfl, inp["scale"], inp["zero_point"], out["scale"], out["zero_point"], schema)

    def quantize_input(self, telemetry: np.ndarray) -> np.ndarray:
        """Physical float telemetry (..., n_features) -> int8, bit-exact with the C engine.

        Raises SchemaError on NaN/inf (the device answers COACH_ERR_NONFINITE).
        """
        x = self.schema.validate(telemetry)
        lo, hi = self.schema.feature_low, self.schema.feature_high
        x = np.minimum(np.maximum(x, lo), hi)  # C: if (x < min) x = min; else if (x > max) x = max
        n = ((x - self.schema.norm_offset) / self.schema.norm_scale).astype(np.float32)
        r = round_half_away((n / self.input_scale).astype(np.float32))
        r = np.clip(r, -512.0, 512.0)
        return np.clip(r.astype(np.int64) + self.input_zero_point, -128, 127).astype(np.int8)

    def invoke(self, q: np.ndarray) -> np.ndarray:
        """int8 (N, n_features) or (n_features,) -> int8 outputs, via the TFLM runtime."""
        return self.runner.run(np.asarray(q))

    def dequantize(self, out: np.ndarray) -> np.ndarray:
        """int8 outputs -> actions in [0, 1] (float32, like ``coach_model_dequantize_output``)."""
        y = (np.asarray(out, np.int32) - self.output_zero_point).astype(np.float32) * self.output_scale
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def predict(self, telemetry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Physical telemetry -> (int8 outputs, actions01)."""
        q = self.quantize_input(telemetry)
        out = self.invoke(q)
        return out, self.dequantize(out)
