"""The CLI: help lists the verbs, domain errors become exit 2 with a message."""

from __future__ import annotations

from pathlib import Path

from motocoach.cli import main


def test_help_lists_working_verbs(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "schema" in out


def test_schema_show_prints_every_feature(capsys):
    assert main(["schema", "show"]) == 0
    out = capsys.readouterr().out
    for name in ("speed", "friction_usage", "frequency"):
        assert name in out


def test_bad_schema_file_is_a_clear_error_with_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "s.json"
    bad.write_text("{not json")
    assert main(["schema", "show", "--path", str(bad)]) == 2
    assert "cannot read schema" in capsys.readouterr().err


def test_header_check_detects_stale_headers(tmp_path: Path, capsys):
    assert main(["schema", "c-headers", "--check", "--root", str(tmp_path)]) == 1
    assert main(["schema", "c-headers", "--root", str(tmp_path)]) == 0
    assert main(["schema", "c-headers", "--check", "--root", str(tmp_path)]) == 0
