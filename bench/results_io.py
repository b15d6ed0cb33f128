"""Write and read ``bench/results/<bench>.json`` in the agreed form."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
WHERE = ("host", "sil", "qemu", "hardware")


def write_result(bench: str, where: str, metrics: dict[str, float], command: str = "make bench",
                 notes: str = "") -> Path:
    """Validate and write one result file; return its path."""
    if where not in WHERE:
        raise ValueError(f"where must be one of {WHERE}, got {where!r}")
    clean: dict[str, float] = {}
    for k, v in metrics.items():
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"metric {k} is not finite: {v}")
        clean[k] = int(v) if v.is_integer() and abs(v) < 2**53 else round(v, 6)
    doc = {"bench": bench, "where": where, "metrics": clean, "command": command,
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if notes:
        doc["notes"] = notes
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def read_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
