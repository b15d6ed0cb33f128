"""Print every bench/results/*.json as one table (used by `make bench`)."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import read_results  # noqa: E402


def main() -> int:
    results = read_results()
    if not results:
        print("no results in bench/results/; run `make bench`")
        return 1
    t = Table(title="bench/results (where = where it was measured; nothing here is hardware unless it says so)")
    for col in ("bench", "where", "metric", "value", "date"):
        t.add_column(col)
    for r in results:
        for i, (k, v) in enumerate(r["metrics"].items()):
            t.add_row(r["bench"] if i == 0 else "", r["where"] if i == 0 else "", k,
                      f"{v:,.4g}" if isinstance(v, float) else f"{v:,}", r["date"][:10] if i == 0 else "")
    Console(width=120).print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
