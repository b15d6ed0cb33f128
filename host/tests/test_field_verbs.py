"""`device list` and `device monitor` against a SIL unit (its pty is given with --port)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motocoach.cli import main
from motocoach.device import field
from motocoach.errors import ConfigError
from motocoach.schema import load_schema


@pytest.fixture(scope="module")
def sil(tmp_path_factory):
    from motocoach.targets import build_sil, start_sil

    build_sil()
    with start_sil(slots=tmp_path_factory.mktemp("sil") / "slots.bin") as target:
        yield target


def test_list_names_the_unit_that_answers_and_not_the_port_that_does_not(sil, tmp_path, capsys):
    assert main(["device", "list", "--port", sil.port, "--port", str(tmp_path / "ttyUSB7"), "--json"]) == 0
    rows = {r["port"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[sil.port]["unit"]["board"] == "esp32dev" and rows[sil.port]["unit"]["selftest_ok"]
    assert rows[str(tmp_path / "ttyUSB7")]["unit"] is None
    assert "cannot open" in rows[str(tmp_path / "ttyUSB7")]["answer"]


def test_monitor_streams_cues_and_reads_counters(sil, capsys):
    rows = field.ride_rows(2.0, seed=3)
    from motocoach.device.link import SerialLink

    seen = []
    with SerialLink(sil.port, timeout=0.5) as link:
        before = link.status()["frames_ok"]
        st = field.monitor(link, rows, seconds=1.0, on_update=lambda s: seen.append(s.frames))
    assert 15 <= st.frames <= 25 and seen[-1] == st.frames
    assert st.counters["frames_ok"] - before >= st.frames - st.timeouts  # STATUS requests count too
    assert set(st.last) >= {"left", "right", "freq_hz"} and st.features
    assert main(["device", "monitor", "--port", sil.port, "--seconds", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "sent" in out and "frames" in out


def test_monitor_csv_must_match_the_schema(tmp_path):
    n = load_schema().n_features
    good = tmp_path / "t.csv"
    np.savetxt(good, np.zeros((3, n)), delimiter=",", header=",".join(load_schema().feature_names), comments="")
    assert field.ride_rows(1, csv=good).shape == (3, n)
    bad = tmp_path / "b.csv"
    np.savetxt(bad, np.zeros((3, n + 1)), delimiter=",")
    with pytest.raises(ConfigError, match="columns"):
        field.ride_rows(1, csv=bad)
