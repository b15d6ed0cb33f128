"""Write and read ``bench/results/<bench>.json`` in the agreed form."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
WHERE = ("host", "sil", "qemu", "hardware")


def write_result(bench: str, where: str, metrics: dict[str, float], command: str = "make bench",
                 notes: str = "", where_by_metric: dict[str, str] | None = None) -> Path:
    """Validate and write one result file; return its path. ``where_by_metric`` labels the
    metrics measured somewhere other than ``where`` (e.g. host figures in a qemu file)."""
    for w in (where, *(where_by_metric or {}).values()):
        if w not in WHERE:
            raise ValueError(f"where must be one of {WHERE}, got {w!r}")
    if set(where_by_metric or {}) - set(metrics):
        raise ValueError("where_by_metric names a metric that is not in metrics")
    clean: dict[str, float] = {}
    for k, v in metrics.items():
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"metric {k} is not finite: {v}")
        clean[k] = int(v) if v.is_integer() and abs(v) < 2**53 else round(v, 6)
    doc = {"bench": bench, "where": where, "metrics": clean, "command": command,
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if where_by_metric:
        doc["where_by_metric"] = dict(where_by_metric)
    if notes:
        doc["notes"] = notes
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def read_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
