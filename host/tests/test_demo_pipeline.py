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
