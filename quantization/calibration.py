"""Representative dataset for full-int8 calibration, drawn from real rider telemetry.

The network input is *normalized* telemetry, so calibration rows are normalized with the
feature schema before conversion (the converter sees exactly what the device feeds the
model). The report says, per feature, how much of the schema range the telemetry covers
and warns when the device will see values calibration never did.

Range limits: int8 input quantization is per tensor. If no calibration row reaches a
feature's normalized -1 or +1, the int8 input cannot represent the schema's edges and the
device would saturate there. :func:`build_calibration` therefore adds, for each feature,
two real rows with only that feature moved to its limit (``2 * n_features`` rows).

>>> import numpy as np
>>> from motocoach.schema import load_schema
>>> s = load_schema()
>>> tel = np.tile((s.feature_low + s.feature_high) / 2, (50, 1))
>>> cal = build_calibration(tel, n_calib=40, n_heldout=10, seed=0)
>>> cal.calib.shape, cal.heldout.shape
((56, 8), (10, 8))
>>> cal.report["features"][0]["coverage"]
0.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from motocoach.errors import DatasetError
from motocoach.schema import FeatureSchema, load_schema

#: Warn when real telemetry spans less than this fraction of a feature's schema range.
COVERAGE_WARN = 0.5
#: Warn when a feature uses fewer distinct int8 input codes than this on real telemetry.
CODES_WARN = 32


@dataclass
class Calibration:
    """Calibration rows (normalized), held-out rows (physical), every non-held-out row
    (normalized: what quantization-aware fine-tuning may learn from) and the coverage report."""

    calib: np.ndarray
    heldout: np.ndarray
    report: dict[str, Any]
    train: np.ndarray


def coverage(telemetry: np.ndarray, schema: FeatureSchema | None = None) -> list[dict[str, Any]]:
    """Per-feature coverage of the schema range by physical ``telemetry``."""
    s = schema or load_schema()
    x = s.validate(telemetry)
    rows = []
    for i, f in enumerate(s.features):
        col = x[:, i]
        lo, hi = float(col.min()), float(col.max())
        inside_lo, inside_hi = max(lo, f.min), min(hi, f.max)
        cov = max(0.0, inside_hi - inside_lo) / (f.max - f.min)
        rows.append({"feature": f.name, "unit": f.unit, "schema_min": f.min, "schema_max": f.max,
                     "data_min": lo, "data_max": hi, "p01": float(np.percentile(col, 1)),
                     "p99": float(np.percentile(col, 99)), "coverage": round(cov, 4),
                     "outside_range_fraction": float(np.mean((col < f.min) | (col > f.max)))})
    return rows


def int8_codes_per_feature(q: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """How many distinct int8 input codes each feature uses (q: (N, n_features) int8)."""
    return {n: int(len(np.unique(q[:, i]))) for i, n in enumerate(names)}


def warnings_for(report_rows: list[dict[str, Any]], codes: dict[str, int] | None = None) -> list[str]:
    """Human-readable warnings: poor range coverage, too few int8 codes."""
    out = []
    for r in report_rows:
        if r["coverage"] < COVERAGE_WARN:
            out.append(f"{r['feature']}: telemetry covers only {r['coverage']:.0%} of the schema range "
                       f"{r['schema_min']:g}..{r['schema_max']:g} {r['unit']} (data {r['data_min']:.3g}.."
                       f"{r['data_max']:.3g}); int8 accuracy outside it is unproven - add rides that reach it")
    for name, n in (codes or {}).items():
        if n < CODES_WARN:
            out.append(f"{name}: uses only {n} distinct int8 input codes on real telemetry")
    return out


def build_calibration(telemetry: np.ndarray, *, n_calib: int = 2000, n_heldout: int = 2000, seed: int = 0,
                      add_range_limits: bool = True, schema: FeatureSchema | None = None) -> Calibration:
    """Split real physical telemetry into calibration rows (normalized) and held-out rows.

    Rows are shuffled with ``seed`` before the split, so calibration and held-out rows come
    from the same rides but never overlap.
    """
    s = schema or load_schema()
    x = s.validate(telemetry)
    if x.ndim != 2 or len(x) < 20:
        raise DatasetError(f"need at least 20 telemetry rows for calibration, got {len(x)}; "
                           "generate datasets with `motocoach data generate`")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    n_held = min(n_heldout, len(x) // 4)
    held, pool = x[idx[:n_held]], x[idx[n_held:]]
    calib = s.normalize(pool[:n_calib])
    if add_range_limits:
        extra = []
        for i in range(s.n_features):
            for edge in (-1.0, 1.0):
                row = calib[rng.integers(len(calib))].copy()
                row[i] = edge
                extra.append(row)
        calib = np.concatenate([calib, np.array(extra, np.float32)])
    rows = coverage(x, s)
    report = {"rows_total": int(len(x)), "rows_calibration": int(len(calib)), "rows_heldout": int(n_held),
              "range_limit_rows": 2 * s.n_features if add_range_limits else 0, "seed": seed,
              "features": rows, "warnings": warnings_for(rows)}
    return Calibration(calib.astype(np.float32), held, report, s.normalize(pool))
