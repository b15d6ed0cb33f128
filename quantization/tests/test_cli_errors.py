"""``quantize`` / ``codegen`` refuse bad inputs with exit 2 and a message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from motocoach.cli import main
from motocoach.quantization import cli as qcli

REPO = Path(__file__).resolve().parents[2]
TFLITE = REPO / "firmware" / "lib" / "coach_model" / "default_model.tflite"


def _run(capsys, *args: str) -> tuple[int, str]:
    rc = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, " ".join(err.split())


def test_codegen_with_a_missing_tflite_exits_2(tmp_path, capsys):
    rc, err = _run(capsys, "codegen", "--tflite", str(tmp_path / "nope.tflite"), "--out", str(tmp_path / "out"))
    assert rc == 2 and "--tflite" in err and "no such file" in err


@pytest.mark.parametrize("text", ["{not json", "\x00\xff\xfe binary", "[1, 2]", '{"calibration": [1]}'])
def test_codegen_with_a_corrupt_report_exits_2(tmp_path, capsys, text):
    report = tmp_path / "report.json"
    report.write_bytes(text.encode("latin-1"))
    rc, err = _run(capsys, "codegen", "--tflite", str(TFLITE), "--report", str(report), "--out", str(tmp_path / "o"))
    assert rc == 2 and "--report" in err
    assert not (tmp_path / "o").exists()  # nothing generated


def test_quantize_missing_policy_or_data_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, err = _run(capsys, "quantize", "--policy", str(tmp_path / "p.pt"), "--data", str(tmp_path))
    assert rc == 2 and "--policy" in err
    rc, err = _run(capsys, "quantize", "--data", str(tmp_path / "no-data"))
    assert rc == 2 and "--data" in err and "data generate --data" in err
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_default_policy_does_not_depend_on_the_current_folder():
    assert qcli.DEFAULT_POLICY.is_absolute() and qcli.DEFAULT_POLICY.is_file()
