"""The ``motocoach`` command line: thin Typer verbs over typed library functions.

Each area registers its own verbs from its own module (``register(app)``); this file only
assembles them and turns :class:`~motocoach.errors.MotoCoachError` into a clear message
and exit status 2. Heavy imports (torch, tensorflow) stay inside the verbs so that
``motocoach --help`` is instant.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from motocoach import __version__
from motocoach.errors import MotoCoachError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="motocoach",
    help=(
        "Edge-AI toolchain for haptic rider coaching.\n\n"
        "Pipeline: data generate -> train -> quantize -> codegen -> firmware -> hil.\n"
        "Field work: device info / update / rollback / logs, bundle create / verify."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

schema_app = typer.Typer(help="Inspect the feature schema and write the C headers generated from it.",
                         no_args_is_help=True)
app.add_typer(schema_app, name="schema")

#: Modules that add verbs with ``register(app)``. Only modules whose verbs work are listed.
VERB_MODULES: list[str] = ["motocoach.device.cli", "motocoach.device.field", "motocoach.training.cli",
                             "motocoach.quantization.cli", "motocoach.pipeline",
                             "motocoach.boards", "motocoach.training.sim_cli",
                             "motocoach.training.ridelogs.cli", "motocoach.replay",
                             "motocoach.training.sweep_cli", "motocoach.training.teacher.cli"]


def _print_version(value: bool) -> None:
    if value:
        console.print(f"motocoach {__version__}")
        raise typer.Exit()


#: Verbs that import TensorFlow (SB3's TensorBoard logger, onnx2tf, the int8 checks).
TF_VERBS = {"train", "demo", "quantize", "models", "evaluate"}


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Example: motocoach --version"""


@schema_app.command("show")
def schema_show(path: Optional[Path] = typer.Option(None, help="Schema JSON to show instead of the packaged one.")) -> None:
    """Print the telemetry features and actions with units, ranges and the schema hash.

    Example: motocoach schema show
    """
    from motocoach.schema import load_schema

    s = load_schema(str(path) if path else None)
    t = Table(title=f"{s.name} v{s.version} @ {s.rate_hz} Hz   schema hash {s.short_hash}")
    for col in ("#", "kind", "name", "unit", "min", "max", "description"):
        t.add_column(col)
    for kind, items in (("feature", s.features), ("action", s.actions)):
        for i, q in enumerate(items):
            t.add_row(str(i), kind, q.name, q.unit, f"{q.min:g}", f"{q.max:g}", q.description)
    console.print(t)
    console.print(f"schema sha256 {s.hash} (tools and units show its first 8 hex digits)")


@schema_app.command("c-headers")
def schema_c_headers(
    root: Path = typer.Option(Path("."), help="Repository root to write under."),
    check: bool = typer.Option(False, "--check", help="Only report stale headers; exit 1 if any."),
) -> None:
    """Write feature_schema.h and protocol_defs.h for the firmware core.

    Example: motocoach schema c-headers --check
    """
    from motocoach import cheaders

    if check:
        stale = [str(rel) for rel in cheaders.stale_headers(root)]
        if stale:
            err_console.print(f"[red]stale:[/] {', '.join(stale)} (run `make models`)")
            raise typer.Exit(1)
        console.print("headers up to date")
        return
    changed = cheaders.write_headers(root)
    console.print(f"wrote {len(changed)} changed header(s)" + "".join(f"\n  {p}" for p in changed))


def build_app() -> typer.Typer:
    for name in VERB_MODULES:
        importlib.import_module(name).register(app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point. Returns the exit status instead of raising, so other programs can call it."""
    # TensorFlow (pulled in by onnx2tf and SB3's TensorBoard logger) floods the terminal with CUDA
    # and oneDNN notices on a CPU-only machine; keep them out unless the user asks for them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = sys.argv[1:] if argv is None else argv
    if next((a for a in args if not a.startswith("-")), None) in TF_VERBS:
        from motocoach.quiet import preload_tensorflow

        preload_tensorflow()  # its C++ start-up lines bypass TF_CPP_MIN_LOG_LEVEL
    cli = build_app()
    try:
        # standalone_mode=False: click returns typer.Exit codes instead of calling sys.exit
        rc = cli(args=argv, standalone_mode=False)
    except MotoCoachError as e:
        err_console.print(f"[bold red]error:[/] {e}")
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
