"""Audit log: append-only JSON lines that survive a torn last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motocoach.audit import AuditLog
from motocoach.cli import main
from motocoach.errors import ConfigError


def test_entries_are_appended_never_rewritten(tmp_path: Path):
    log = AuditLog(tmp_path / "a" / "audit.jsonl")
    log.append(operation="update", device={"board": "sil"}, result="ok", before={"m": 1}, after={"m": 2},
               bundle_sha256="ab" * 32)
    first = log.path.read_bytes()
    log.append(operation="rollback", device={"board": "sil"}, result="failed", detail="no other slot")
    assert log.path.read_bytes().startswith(first)
    lines = [json.loads(x) for x in log.path.read_text().splitlines()]
    assert [e["operation"] for e in lines] == ["update", "rollback"]
    for key in ("time", "device", "before", "after", "bundle_sha256", "result"):
        assert key in lines[0]


def test_torn_last_line_is_skipped(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(operation="update", device={}, result="ok")
    with open(log.path, "a") as f:
        f.write('{"time": "2026-')  # power lost mid-write
    log.append(operation="update", device={}, result="refused")
    assert [e["result"] for e in log.entries()] == ["ok", "refused"]


def test_unknown_result_is_a_bug_and_unwritable_path_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError):
        AuditLog(tmp_path / "a.jsonl").append(operation="x", device={}, result="maybe")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="audit log"):
        AuditLog(tmp_path / "file" / "a.jsonl").append(operation="x", device={}, result="ok")


def test_cli_logs_shows_entries(tmp_path: Path, capsys):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(operation="update", device={"unit_id": "bike-7", "board": "sil"}, result="refused",
               detail="wrong board")
    assert main(["device", "logs", "--audit-log", str(log.path)]) == 0
    out = capsys.readouterr().out
    assert "bike-7" in out and "refused" in out and "1 entries" in out


def test_cli_logs_json(tmp_path: Path, capsys):
    import json

    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(operation="update", device={"unit_id": "bike-7"}, result="refused", detail="wrong board")
    assert main(["device", "logs", "--audit-log", str(log.path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["entries"][0]["device"]["unit_id"] == "bike-7" and "unit_log" not in doc
