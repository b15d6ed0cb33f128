"""What a HIL run shows: the terminal summary, the budget line, JUnit XML, one clear setup failure."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from motocoach.device import hil_summary

REPO = Path(__file__).resolve().parents[2]


def _doc(**lat) -> dict:
    latency = {"frames": 400, "p50_ms": 0.4, "p95_ms": 0.6, "p99_ms": math.inf, "max_ms": math.inf,
               "timeouts": 7, "lost_but_answered_late": 3, "mismatches": 0, "late_starts": 1, **lat}
    return {"target": "qemu", "port": "/dev/pts/9", "baud": 921600,
            "host": {"cpus": 2, "load_1m_start": 5.1, "load_1m_end": 4.0}, "sections": {"latency": latency}}


def test_summary_names_budget_late_lost_load_and_paths():
    text = "\n".join(hil_summary.summary_lines(_doc(), "runs/hil-qemu/report.json", "runs/hil-qemu/junit.xml"))
    assert "target qemu  port /dev/pts/9  baud 921600  frames 400" in text
    assert "p99 inf" in text and "budget p99 <= 50 ms: OVER" in text
    assert "late 3 (reply after 50 ms)  lost 4 (no reply)" in text and "mismatches 0" in text
    assert "LOADED" in text  # load 5.1 on 2 CPUs
    assert "report   runs/hil-qemu/report.json   junit runs/hil-qemu/junit.xml" in text


def test_a_quiet_host_is_not_called_loaded():
    doc = _doc(p99_ms=1.0, max_ms=2.0, timeouts=0, lost_but_answered_late=0)
    doc["host"] = {"cpus": 2, "load_1m_start": 0.4, "load_1m_end": 0.6}
    text = "\n".join(hil_summary.summary_lines(doc, "r.json"))
    assert "LOADED" not in text and "within" in text


def test_histogram_is_written_with_late_and_lost(tmp_path):
    p = hil_summary.plot_latency_histogram([0.001, 0.002, 0.0015, math.inf, math.inf], tmp_path / "h.png", "t", late=1)
    assert p.stat().st_size > 1000


def test_a_missing_port_fails_once_at_setup_with_the_hint(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "hil_tests", "-q", "-p", "no:randomly",
                        "--port", str(tmp_path / "ttyUSB9"), "--hil-report", str(tmp_path / "rep")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert out.count("HIL setup: cannot start the serial unit") == 1
    assert "Traceback" not in out and len(out.splitlines()) < 15, out
    assert "motocoach device list" in out
    assert (tmp_path / "rep" / "junit.xml").exists()  # JUnit XML by default next to the report
