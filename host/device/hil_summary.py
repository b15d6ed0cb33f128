"""What a HIL run prints and plots: the terminal summary, host load, and the latency histogram.

Words used everywhere (report, summary, histogram):

- **late**: the reply arrived, but after the 50 ms budget (one 20 Hz frame period). The unit was slow
  or the host did not read in time. It counts as a missed frame (``inf``) in every statistic.
- **lost**: no reply arrived at all (dropped on the wire, or the unit never answered).
- **timeouts** = late + lost: every frame without a reply within the budget.

>>> lines = summary_lines({"target": "sil", "port": "/dev/pts/3", "baud": 921600,
...     "host": {"cpus": 2, "load_1m_start": 0.5, "load_1m_end": 0.7},
...     "sections": {"latency": {"frames": 400, "p50_ms": 0.4, "p95_ms": 0.6, "p99_ms": 0.9, "max_ms": 1.5,
...     "timeouts": 0, "lost_but_answered_late": 0, "mismatches": 0, "late_starts": 0}}}, "r.json")
>>> lines[1]
'latency  p50 0.40  p95 0.60  p99 0.90  max 1.50 ms   budget p99 <= 50 ms: within'
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

BUDGET_MS = 50.0


def host_load() -> dict[str, Any]:
    """The host's 1-minute load average and CPU count (emulated targets share this machine)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    return {"cpus": os.cpu_count() or 1, "load_1m": None if load is None else round(load, 2)}


def loaded(host: dict[str, Any]) -> bool:
    """More runnable work than CPUs at the start or end of the run."""
    cpus = host.get("cpus") or 1
    return any((host.get(k) or 0) > cpus for k in ("load_1m_start", "load_1m_end"))


def _ms(v: Any) -> str:
    return "inf" if v is None or (isinstance(v, float) and math.isinf(v)) or v == "inf" else f"{float(v):.2f}"


def summary_lines(doc: dict[str, Any], report_path: str, junit_path: str | None = None) -> list[str]:
    """The lines of the pytest terminal summary for one HIL session (``doc`` as in report.json)."""
    lat = doc.get("sections", {}).get("latency")
    head = f"target {doc['target']}  port {doc.get('port') or '-'}  baud {doc.get('baud')}"
    out = [head + (f"  frames {lat['frames']}" if lat else "")]
    if lat:
        p99 = lat["p99_ms"]
        ok = isinstance(p99, (int, float)) and p99 <= BUDGET_MS
        out.append(f"latency  p50 {_ms(lat['p50_ms'])}  p95 {_ms(lat['p95_ms'])}  p99 {_ms(p99)}  "
                   f"max {_ms(lat['max_ms'])} ms   budget p99 <= {BUDGET_MS:g} ms: {'within' if ok else 'OVER'}")
        late = int(lat.get("lost_but_answered_late", 0))
        lost = int(lat["timeouts"]) - late
        out.append(f"frames   late {late} (reply after {BUDGET_MS:g} ms)  lost {lost} (no reply)  "
                   f"mismatches {lat.get('mismatches', 0)} (int8 outputs vs the host reference)  "
                   f"late starts {lat.get('late_starts', 0)} (host sent behind schedule)")
    else:
        out.append("latency  not measured in this session")
    host = doc.get("host", {})
    if host:
        note = ("  LOADED: timing on sil/qemu is unreliable, rerun on a quiet machine"
                if loaded(host) and doc["target"] != "serial" else "")
        out.append(f"host     load {host.get('load_1m_start')} -> {host.get('load_1m_end')} (1-min avg) "
                   f"on {host.get('cpus')} CPUs{note}")
    out.append(f"report   {report_path}" + (f"   junit {junit_path}" if junit_path else ""))
    return out


def plot_latency_histogram(latency_s: Sequence[float], path: Path, title: str, *, late: int = 0,
                           budget_ms: float = BUDGET_MS) -> Path:
    """PNG histogram of the answered frames on a log time axis, with the budget line; late and lost
    frames (no reply within the budget) are counted in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = np.asarray(latency_s, np.float64) * 1000.0
    finite = a[np.isfinite(a)]
    timeouts = int(a.size - finite.size)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    if finite.size:
        lo = max(min(finite.min(), budget_ms) * 0.8, 1e-3)
        hi = max(finite.max(), budget_ms) * 1.25
        ax.hist(finite, bins=np.geomspace(lo, hi, 80), color="#3465a4", label=f"answered in time ({finite.size})")
        for q, style in ((50, ":"), (99, "--")):
            v = float(np.percentile(a, q, method="inverted_cdf"))
            if math.isfinite(v):
                ax.axvline(v, color="k", linestyle=style, label=f"p{q} {v:.2f} ms")
        ax.set_xscale("log")
    ax.axvline(budget_ms, color="#cc0000", linewidth=2, label=f"budget {budget_ms:g} ms (one 20 Hz frame)")
    ax.plot([], [], " ", label=f"late (reply after budget): {late}")
    ax.plot([], [], " ", label=f"lost (no reply): {timeouts - late}")
    ax.set_yscale("log")
    ax.set_xlabel("host send -> reply latency (ms, log scale)")
    ax.set_ylabel("frames")
    ax.set_title(f"{title}: {a.size} frames")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
