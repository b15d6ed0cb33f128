"""Demo pipeline pieces that run in seconds: stage timing, laps in the env, the report page."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from rich.console import Console

from motocoach import pipeline
from motocoach.demo_report import write_html


def test_stages_are_timed_and_printed_and_failures_named():
    out = io.StringIO()
    st = pipeline.Stages(Console(file=out, width=100))
    with st.stage("first"):
        pass
    with pytest.raises(RuntimeError):
        with st.stage("second"):
            raise RuntimeError("boom")
    assert list(st.seconds) == ["1 first"] and st.seconds["1 first"] >= 0
    text = out.getvalue()
    assert "1. first" in text and "second failed" in text


def test_an_uncoached_lap_finishes_and_cues_change_the_ride():
    lap = pipeline.ride_lap("falcon", "amateur", 0, lambda obs: None)
    assert lap.lap_time_s is not None and 20 < lap.lap_time_s < 200 and lap.cue_steps == 0
    brake = pipeline.ride_lap("falcon", "amateur", 0, lambda obs: np.array([1.0, 1.0, 1.0], np.float32))
    assert brake.cue_steps > 0 and brake.lap_time_s != lap.lap_time_s


def _summary(run: str) -> dict:
    lat = {"frames": 3, "timeouts": 1, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": math.inf, "max_ms": math.inf}
    lap = {"lap_time_s": 42.0, "steps": 840, "offtrack": False, "violations": 1, "cue_steps": 100,
           "mismatches": 0, "lost_replies": 1}
    return {"run": run, "preset": "test", "seed": 0, "stages_s": {"generate data": 1.0, "train": 2.0},
            "demo_wall_s": 3.0, "model_sha256": "ab" * 32,
            "training": {"bc": {"losses": [0.3, 0.2, 0.1], "loss_first": 0.3, "loss_last": 0.1},
                         "ppo": {"steps": 4096, "steps_per_s": 1000.0}},
            "int8": {"max_abs_err01": 0.004, "decision_agreement": {"all": 0.99},
                     "float_vs_int8": {"frequency": {"unit": "Hz", "mae": 0.1, "max": 0.9, "max_lsb": 1.0}}},
            "lap": {"track": "falcon", "rider": "amateur", "realtime_20hz": True, "coached": lap,
                    "uncoached": {**lap, "lap_time_s": None}, "latency": lat,
                    "host_seeds": {"seeds": [0, 1], "uncoached": {"mean_s": 43.0, "std_s": 0.5, "finished": 2},
                                   "coached": {"mean_s": 41.0, "std_s": 0.25, "finished": 2}}}}


def test_report_page_names_where_every_number_was_measured(tmp_path):
    s = _summary(str(tmp_path))
    page = write_html(tmp_path, s).read_text()
    for must in ("host send -&gt; sil reply", "No number here was", "n/a",
                 "int8 vs float", "data:image/png;base64,", "host simulator", "41.000 ± 0.250 s"):
        assert must in page, must
    assert (tmp_path / "training.png").exists() and (tmp_path / "laps.png").exists()
    out = io.StringIO()
    pipeline.print_summary(Console(file=out, width=120), s)
    text = out.getvalue()
    assert "did not finish" in text and "host -> sil -> host" in text and "inf" in text


def test_lap_traces_csvs_sectors_and_cue_map(tmp_path):
    from motocoach.lap_report import CUE_KINDS

    unc = pipeline.ride_lap("falcon", "amateur", 0, lambda obs: None, trace=True)
    cue = pipeline.ride_lap("falcon", "amateur", 0, lambda obs: np.array([0.0, 0.9, 0.2], np.float32), trace=True)
    assert len(unc.trace["t_s"]) == unc.steps and np.all(np.diff(unc.trace["s_m"]) >= 0)
    extras = pipeline.lap_extras(tmp_path, cue, unc)
    for name in ("telemetry.csv", "telemetry_uncoached.csv", "traces.png", "cue_map.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    header = (tmp_path / "telemetry.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["t_s", "s_m", "speed"] and "cue_left" in header
    assert len((tmp_path / "telemetry.csv").read_text().splitlines()) == cue.steps + 1
    total = sum(r["gain_s"] for r in extras["sectors"])
    assert len(extras["sectors"]) == 3 and abs(total - (unc.lap_time_s - cue.lap_time_s)) < 0.2
    assert extras["gain_pct"] == pytest.approx(100 * (unc.lap_time_s - cue.lap_time_s) / unc.lap_time_s)
    assert set(extras["cue_steps_by_kind"]) == set(CUE_KINDS) and extras["cue_steps_by_kind"]["right"] > 0


def test_runs_are_numbered_unless_forced(tmp_path):
    assert pipeline.free_run_name("demo", tmp_path) == "demo"
    (tmp_path / "demo").mkdir()
    assert pipeline.free_run_name("demo", tmp_path) == "demo"  # no finished demo in it yet
    (tmp_path / "demo" / "demo.json").write_text("{}")
    assert pipeline.free_run_name("demo", tmp_path) == "demo-2"
    (tmp_path / "demo-2").mkdir()
    assert pipeline.free_run_name("demo", tmp_path) == "demo-3"
    assert pipeline.free_run_name("demo", tmp_path, force=True) == "demo"


def test_summary_explains_missed_replies_and_gives_the_gain_in_percent():
    s = _summary("runs/x")
    s["lap"]["uncoached"]["lap_time_s"] = 43.0
    out = io.StringIO()
    pipeline.print_summary(Console(file=out, width=200), s)
    text = " ".join(out.getvalue().split())
    assert "+2.33 %" in text and "+4.65 %" in text  # 42 vs 43 s; seeds 41 vs 43 s
    assert "did not come back within one 20 Hz frame (50 ms)" in text and "counts as an infinite latency" in text


def test_summary_gives_the_paired_gain_like_evaluate():
    s = _summary("runs/x")
    hs = s["lap"]["host_seeds"]
    hs["uncoached"]["lap_times_s"] = [100.0, 100.0, None]
    hs["coached"]["lap_times_s"] = [90.0, 95.0, 80.0]
    out = io.StringIO()
    pipeline.print_summary(Console(file=out, width=200), s)
    text = " ".join(out.getvalue().split())
    assert "paired lap gain" in text and "+7.50 %" in text and "2 pairs" in text
