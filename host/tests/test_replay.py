"""``motocoach replay``: a simulated ride exported as a RaceChrono log, streamed through the SIL unit.

The unit's answers must equal the host engine's bit for bit, every frame must be answered, and
the rider's page must hold the map, the traces and the telemetry at each cue.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from motocoach.replay import compare


def test_compare_counts_a_changed_output_and_a_lost_frame():
    host = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.int8)
    assert compare([(1, 2, 3), (4, 5, 6), (7, 8, 9)], host) == (0, 0)
    assert compare([(1, 2, 3), (4, 5, 7), None], host) == (1, 1)


def test_replay_of_a_missing_log_is_a_clear_error(tmp_path, capsys):
    from motocoach.cli import main

    assert main(["replay", str(tmp_path / "nope.csv"), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert "cannot read ride log" in err and "Traceback" not in err


@pytest.mark.slow
def test_replay_through_sil_matches_the_host_engine(tmp_path):
    from motocoach.replay import replay
    from motocoach.training.ridelogs.simulate import logged, simulate_ride
    from motocoach.training.ridelogs.writers import write_log

    ride = simulate_ride("kestrel", "amateur", laps=1.3, seed=5)
    log = write_log(logged(ride, 10, seed=5), "racechrono", tmp_path / "ride.csv")
    res = replay(log, track="kestrel", target="sil", realtime=False, out_dir=tmp_path / "run")
    assert res.where == "sil" and res.frames > 1000
    assert res.lost == 0 and res.mismatches == 0
    assert len({tuple(o) for o in res.host_outputs.tolist()}) > 5, "too few distinct outputs to mean anything"
    # the cues recorded from the unit's answers are the host engine's cues
    from motocoach.lap_report import cue_kinds
    from motocoach.quantization.host_engine import HostEngine
    from motocoach.replay import FACTORY_MANIFEST

    a = HostEngine.from_manifest(FACTORY_MANIFEST).dequantize(res.host_outputs).astype(np.float64)
    kinds = cue_kinds({"cue_left": a[:, 0], "cue_right": a[:, 1], "cue_freq01": a[:, 2]})
    onsets = [i for i, k in enumerate(kinds) if k is not None and (i == 0 or kinds[i - 1] != k)]
    assert [c.row for c in res.cues] == onsets
    doc = json.loads((tmp_path / "run" / "replay.json").read_text())
    assert doc["mismatches"] == 0 and len(doc["cues"]) == len(res.cues) > 0
    assert set(doc["cues"][0]["telemetry"]) >= {"speed", "roll_angle", "throttle", "brake"}
    page = (tmp_path / "run" / "replay.html").read_text()
    for part in ("Track map", "Speed, lean, throttle and brake", "The telemetry at each cue", "data:image/png"):
        assert part in page
