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


def _options(*path: str) -> set[str]:
    """Every option string of a verb, e.g. _options("data", "generate")."""
    import typer

    from motocoach.cli import build_app

    cmd = typer.main.get_command(build_app())
    for name in path:
        cmd = cmd.commands[name]
    return {o for p in cmd.params for o in p.opts}


def test_one_name_for_the_dataset_folder_across_data_train_quantize():
    for verb in (("data", "generate"), ("train",), ("quantize",)):
        opts = _options(*verb)
        assert "--data" in opts, verb
        assert not {"--root", "--datasets"} & opts, verb


def test_version_prints_without_a_command(capsys):
    from motocoach import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"motocoach {__version__}"
