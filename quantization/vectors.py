"""Test vectors for bit-exactness: int8 extremes and float-boundary telemetry.

>>> v = int8_vectors(8, 0)
>>> v.dtype.name, v.shape[1], len(v) >= 100_000
('int8', 8, True)
"""

from __future__ import annotations

import numpy as np

from motocoach.schema import load_schema


def int8_vectors(n_features: int, zp: int, seed: int = 7) -> np.ndarray:
    """Uniform codes, saturating rails, constant vectors, the zero point and its neighbours,
    and every code of each feature with the others at the zero point (>= 100k rows)."""
    rng = np.random.default_rng(seed)
    parts = [
        rng.integers(-128, 128, (85_000, n_features)),
        rng.choice([-128, -127, 126, 127], (12_000, n_features)),
        np.repeat(np.arange(-128, 128)[:, None], n_features, axis=1),
        np.full((1, n_features), zp),
        np.clip(zp + rng.integers(-2, 3, (4_000, n_features)), -128, 127),
    ]
    sweep = np.full((n_features * 256, n_features), zp)
    for i in range(n_features):
        sweep[i * 256:(i + 1) * 256, i] = np.arange(-128, 128)
    parts.append(sweep)
    return np.concatenate(parts).astype(np.int8)


def engine_vectors(engine, telemetry: np.ndarray) -> np.ndarray:
    """The inputs every bit-exactness check of a model runs: :func:`int8_vectors` for
    ``engine`` (a ``HostEngine``) plus physical ``telemetry`` quantized by it."""
    return np.concatenate([int8_vectors(engine.n_inputs, engine.input_zero_point),
                           engine.quantize_input(telemetry)])


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


def tie_telemetry(input_scale: float) -> np.ndarray:
    """Telemetry whose normalized value / input_scale lands on or next to a .5 tie
    (where C ``roundf`` and numpy's half-to-even ``round`` disagree)."""
    s = load_schema()
    k = np.arange(-130, 130) + 0.5
    n = (k * np.float32(input_scale)).astype(np.float32)
    x = (n * s.norm_scale[:, None] + s.norm_offset[:, None]).T.astype(np.float32)
    return np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)]).astype(np.float32)
