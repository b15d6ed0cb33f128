"""CLI verbs: ``quantize``, ``codegen`` and ``models rebuild`` (thin wrappers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from motocoach.errors import ConfigError

console = Console()

#: The committed default policy, found next to this package (not relative to the current folder):
#: quantization/ and training/ are siblings both in a checkout and in an installed motocoach.
DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "training" / "default_policy" / "policy.pt"
DEFAULT_DATA = Path("runs") / "data"  # the same default as `data generate --data` and `train --data`
MODEL_DIR = Path("firmware/lib/coach_model")


def _existing(path: Path, option: str, hint: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{option} {path}: no such file; {hint}")
    return path


def _read_report(path: Path) -> dict:
    """A quantize report.json, or a ConfigError that says what is wrong with it."""
    _existing(path, "--report", "give the report.json that `motocoach quantize` wrote")
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"--report {path} is not valid JSON ({e}); give the report.json that "
                          "`motocoach quantize` wrote, or leave --report out") from None
    if not isinstance(report, dict):
        raise ConfigError(f"--report {path} is not a quantize report (expected a JSON object)")
    return report


def _summary(report: dict, tflite: Path) -> None:
    c = report["checks"]
    t = Table(title=f"int8 model {tflite}  ({c['tflite_bytes']} B, TFLM arena {c['tflm_arena_bytes']} B)")
    for col in ("output", "MAE", "max", "MAE LSB", "max LSB"):
        t.add_column(col)
    for name, e in c["float_vs_int8"].items():
        t.add_row(f"{name} [{e['unit']}]", f"{e['mae']:.4g}", f"{e['max']:.4g}", f"{e['mae_lsb']:.2f}",
                  f"{e['max_lsb']:.2f}")
    console.print(t)
    agree = c["decision_agreement"]
    cross = c["tflm_vs_tflite_interpreter"]
    console.print(f"ops: {' '.join(c['ops'])}   ONNX vs torch max |diff| {report['onnx_max_abs_diff']:.2e}")
    console.print(f"coaching decision agreement (cue language, on at >= {agree['motor_on_threshold']:g}): {agree['all']:.2%} (left {agree['left_on']:.2%}, right "
                  f"{agree['right_on']:.2%}, band while a motor is on {agree['frequency_band']:.2%})")
    real, rand = cross["heldout_telemetry"], cross["random_int8"]
    console.print(f"TFLM vs TFLite interpreter (delegates off): {real['mismatches']}/{real['vectors']} telemetry "
                  f"and {rand['mismatches']}/{rand['vectors']} random int8 vectors differ; "
                  f"{real['unexplained'] + rand['unexplained']} are not .5 rounding ties")
    console.print("input codes per feature: " + ", ".join(f"{k} {v}" for k, v in c["int8_input_codes"].items()))
    cmp = report.get("comparison", {})
    if cmp:
        console.print("quantizer: " + report["quantizer"].upper() + " kept; decisions agree " + ", ".join(
            f"{k.upper()} {v['decision_agreement']:.2%} (MAE {v['mae_lsb']:.2f} LSB, max {v['max_err_lsb']:.0f} LSB)"
            for k, v in cmp.items()) + " on the held-out rows")
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")


def _stage_printer():
    return lambda s: console.print(f"[cyan]>[/] {s}")


def quantize_cmd(
    policy: Path = typer.Option(DEFAULT_POLICY, help="policy.pt to quantize.",
                                show_default="the committed training/default_policy/policy.pt"),
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Folder with the Minari datasets (rider telemetry for calibration)."),
    run: str = typer.Option("quantize", help="Run folder name under runs/."),
    n_calib: int = typer.Option(2000, help="Calibration rows drawn from the telemetry."),
    seed: int = typer.Option(0, help="Seed for the calibration / held-out split."),
    qat: bool = typer.Option(True, "--qat/--no-qat",
                             help="Also fine-tune a quantization-aware copy and keep the better int8 model."),
) -> None:
    """Export the policy to ONNX, convert it to full int8 with calibration from rider telemetry,
    and check it (report + plots in runs/<run>/quantize/). With --qat (default) a
    quantization-aware fine-tuned copy is converted as well; both are compared with the float
    policy and the one whose coaching decisions agree more often is kept.

    Example: motocoach quantize --policy runs/demo/policy.pt --data runs/demo/data --no-qat
    """
    from motocoach.quantization.pipeline import quantize
    from motocoach.runs import RunDir

    _existing(policy, "--policy", "give a policy.pt from `motocoach train` (default: the committed one)")
    if not data.is_dir():
        raise ConfigError(f"--data {data}: no such folder; write datasets with `motocoach data generate --data {data}`")
    rd = RunDir.create(run, config={"verb": "quantize", "policy": str(policy), "data": str(data),
                                    "n_calib": n_calib, "seed": seed, "qat": qat})
    res = quantize(policy, rd.path, dataset_root=data, n_calib=n_calib, seed=seed, qat=qat,
                   on_stage=_stage_printer())
    _summary(res.report, res.tflite)
    console.print(f"report: {res.report_path}\nnext: motocoach codegen --tflite {res.tflite}")


def codegen_cmd(
    tflite: Path = typer.Option(MODEL_DIR / "default_model.tflite", help="Full-int8 .tflite to compile."),
    out: Path = typer.Option(MODEL_DIR, help="Folder for the generated files."),
    report: Optional[Path] = typer.Option(None, help="quantize report.json (provenance for the manifest)."),
    check: bool = typer.Option(False, "--check", help="Only report whether the files in --out are stale; exit 1 if so."),
) -> None:
    """Generate the C engine data, CMB1 blob and manifest from a full-int8 .tflite.

    Example: motocoach codegen --tflite runs/quantize/quantize/model_int8.tflite --report runs/quantize/quantize/report.json
    """
    from motocoach.quantization import codegen
    from motocoach.quantization.pipeline import provenance

    _existing(tflite, "--tflite", "give the model_int8.tflite that `motocoach quantize` wrote")
    try:
        created = provenance(_read_report(report)) if report else _committed_created(out)
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"--report {report} is not a quantize report ({e}); give the report.json that `motocoach quantize` wrote") from None
    if check:
        stale = [n for n, data in codegen.render_all(tflite.read_bytes(), created).items()
                 if not (out / n).exists() or (out / n).read_bytes() != data]
        if stale:
            console.print(f"[red]stale:[/] {', '.join(stale)} (run `motocoach codegen` or `make models`)")
            raise typer.Exit(1)
        console.print("generated model files up to date")
        return
    changed = codegen.generate(tflite, out, created=created)
    man = json.loads((out / "manifest.json").read_text())
    console.print(f"model {man['model_id']}  sha256 {man['model_sha256'][:16]}...  ops {' '.join(man['ops'])}")
    console.print(f"wrote {len(changed)} changed file(s) in {out}" + "".join(f"\n  {p.name}" for p in changed))


def _committed_created(out: Path) -> dict:
    """Keep the provenance already recorded in ``out/manifest.json`` when no report is given."""
    p = out / "manifest.json"
    return json.loads(p.read_text()).get("created", {}) if p.exists() else {}


def models_rebuild_cmd(
    run: str = typer.Option("models", help="Run folder name under runs/."),
    preset: str = typer.Option("default", help="Data and training preset: test | demo | default."),
    policy: Optional[Path] = typer.Option(None, help="Skip training and quantize this policy.pt instead."),
    seed: int = typer.Option(0, help="Seed for data, training and calibration."),
    out: Path = typer.Option(MODEL_DIR, help="Folder for the generated model files."),
    real_data: Optional[Path] = typer.Option(None, help="Folder holding tracks/ with the real circuits the "
                                             "default preset also trains on (default: $MOTOCOACH_REAL_DATA "
                                             "or ../shared/data)."),
    qat: bool = typer.Option(True, "--qat/--no-qat",
                             help="Compare post-training and quantization-aware int8; keep the better."),
) -> None:
    """Regenerate the default model end to end: datasets -> train -> quantize (PTQ and QAT,
    the better kept) -> codegen.

    Example: motocoach models rebuild --preset demo
    """
    import shutil

    from motocoach.quantization import codegen
    from motocoach.quantization.pipeline import provenance, quantize
    from motocoach.runs import RunDir
    from motocoach.training import datasets
    from motocoach.training.train import train

    rd = RunDir.create(run, config={"verb": "models rebuild", "preset": preset, "seed": seed,
                                    "policy": str(policy) if policy else None, "qat": qat})
    root = rd.path / "datasets"
    console.print(f"[cyan]>[/] datasets ({preset})")
    ids = datasets.generate(root, preset=preset, seed=seed, progress=True)
    if policy is None:
        console.print(f"[cyan]>[/] train ({preset})")
        policy = train(rd.path / "train", preset=preset, dataset_root=root, seed=seed, progress=True,
                       real_data=real_data)
        if out.resolve() == MODEL_DIR.resolve():
            DEFAULT_POLICY.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(policy, DEFAULT_POLICY)
            # the policy, its record, and the BC actor it started from stay a set
            for name in ("policy.json", "bc_policy.pt"):
                src = Path(policy).with_name(name)
                if src.exists():
                    shutil.copyfile(src, DEFAULT_POLICY.with_name(name))
    res = quantize(policy, rd.path, dataset_root=root, dataset_ids=ids, seed=seed, qat=qat,
                   on_stage=_stage_printer())
    _summary(res.report, res.tflite)
    console.print("[cyan]>[/] codegen")
    changed = codegen.generate(res.tflite, out, created=provenance(res.report))
    console.print(f"wrote {len(changed)} changed file(s) in {out}; rebuild the firmware to pick them up")


def register(app: typer.Typer) -> None:
    """Add ``quantize``, ``codegen`` and ``models rebuild`` to the CLI."""
    app.command("quantize")(quantize_cmd)
    app.command("codegen")(codegen_cmd)
    models = typer.Typer(help="Build the default model shipped with the firmware.", no_args_is_help=True)
    models.command("rebuild")(models_rebuild_cmd)
    app.add_typer(models, name="models")
