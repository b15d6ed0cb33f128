"""HIL latency at 20 Hz on SIL and QEMU (run concurrently): bench/results/hil_sil.json, hil_qemu.json.

Per target: ``frames`` TELEMETRY frames of simulated rides, sent on a 20 Hz schedule; latency is
host send -> reply, measured on the host. A reply not back within one period (50 ms) is lost:
it counts in ``timeouts`` and enters the percentiles as infinite. Because the result files
only hold finite numbers, an infinite percentile is written as the 50 ms timeout (a lower
bound) and the notes say so. ``mismatches`` = frames whose int8 outputs differ from the host
engine (TFLM). MOTOCOACH_HIL_BENCH_FRAMES overrides the frame count (default 10,000).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "firmware/lib/coach_model/manifest.json"
FRAMES = int(os.environ.get("MOTOCOACH_HIL_BENCH_FRAMES", "10000"))
RATE_HZ = 20.0


def ride_telemetry(frames: int, seed: int) -> np.ndarray:
    from motocoach.training.rides import simulate_telemetry
    from motocoach.training.riders import builtin_riders
    from motocoach.training.tracks import builtin_tracks

    parts, k = [], 0
    while sum(len(p) for p in parts) < frames:
        parts.append(simulate_telemetry(builtin_tracks()[k % 5], builtin_riders()[k % 4], 120.0, seed + k))
        k += 1
    return np.concatenate(parts)[:frames]


def run_target(kind: str, telemetry: np.ndarray, want: np.ndarray, out: "mp.Queue", workdir: Path) -> None:
    """Stream to one target (in its own process, so the two streams never share a GIL)."""
    from motocoach.device import dut as dutlib

    try:
        with dutlib.start_dut(kind, workdir=workdir) as unit:
            res = dutlib.stream(unit.link, telemetry, rate_hz=RATE_HZ)
        mism = sum(1 for o, w in zip(res.outputs, want.tolist()) if o is not None and list(o) != w)
        infer = [h["infer_us"] for h in res.haptic if h is not None]
        out.put((kind, {"latency_s": res.latency_s, "mismatches": mism, "nacks": res.nacks,
                        "late": len(res.late_replies),
                        "late_max_ms": max(res.late_replies.values(), default=0.0) * 1000,
                        "late_starts": res.late_starts,
                        "infer_us_median": float(np.median(infer)) if infer else math.nan}))
    except BaseException as e:  # reported by the test, per target
        out.put((kind, {"error": repr(e)}))


@pytest.mark.timeout(int(FRAMES / RATE_HZ * 1.5) + 300)
def test_hil_latency_sil_and_qemu(bench_result, tmp_path):
    from motocoach.quantization.host_engine import HostEngine

    telemetry = ride_telemetry(FRAMES, seed=100)
    want, _ = HostEngine.from_manifest(MANIFEST).predict(telemetry)
    ctx = mp.get_context("fork")  # the child inherits run_target; it only uses serial + subprocess
    q = ctx.Queue()
    procs = [ctx.Process(target=run_target, args=(k, telemetry, want, q, tmp_path / k)) for k in ("sil", "qemu")]
    for p in procs:
        p.start()
    results = dict(q.get(timeout=FRAMES / RATE_HZ * 1.5 + 240) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    from motocoach.device import dut as dutlib

    for kind, r in results.items():
        if "error" not in r:
            r["stats"] = dutlib.latency_summary(r["latency_s"])
            dutlib.plot_latency_histogram(r["latency_s"], REPO / "bench/results" / f"hil_{kind}.png",
                                          f"HIL latency at 20 Hz ({kind})")
    errors = {k: v["error"] for k, v in results.items() if "error" in v}
    for kind, r in results.items():
        if "error" in r:
            continue
        s = r["stats"]
        notes = (f"{FRAMES} frames at 20 Hz, SIL and QEMU streamed concurrently (one process each) on the "
                 "same shared 2-core host, host_loadavg_1m = its load at the end; latency = host send -> reply "
                 "over a pty; lost = no reply within 50 ms (counted in timeouts and in the percentiles; "
                 "lost_answered_late = lost frames whose reply came later)")
        metrics = {}
        for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            metrics[k] = s[k] if math.isfinite(s[k]) else 50.0
            if math.isfinite(s[k]):
                continue
            if k == "max_ms" and r["late"] == s["timeouts"]:
                # every lost reply did arrive, only late: the slowest one is the true maximum
                metrics[k] = max(r["late_max_ms"], 50.0)
                notes += "; max_ms includes the replies that arrived after the 50 ms timeout"
            else:
                notes += f"; {k} is infinite (lost replies), written as the 50 ms timeout (a lower bound)"
        metrics.update(frames=s["frames"], timeouts=s["timeouts"], mismatches=r["mismatches"],
                       nacks=r["nacks"], host_loadavg_1m=round(os.getloadavg()[0], 2),
                       lost_answered_late=r["late"], late_reply_max_ms=r["late_max_ms"])
        if math.isfinite(r["infer_us_median"]):
            metrics["device_infer_us_median"] = r["infer_us_median"]
        bench_result(f"hil_{kind}", kind, metrics, notes=notes)
        print(f"\n{kind}: {metrics}")
    assert not errors, errors
    for kind, r in results.items():
        assert r["stats"]["frames"] == FRAMES
