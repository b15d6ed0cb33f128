"""``make demo``: data -> BC -> PPO -> int8 + checks -> C -> SIL firmware -> coached lap -> report.

Every stage is timed and printed as it runs. Everything lands in the run folder
``runs/<name>/`` (the committed factory model is never touched)::

    data/                 Minari datasets            (training)
    policy.pt, policy.json                           (BC + PPO)
    quantize/             int8 .tflite + checks      (quantization)
    coach_model/          generated C model + manifest, next to a copy of the engine sources
    build/sil/coach_sil   SIL firmware built with that model
    lap/                  closed-loop lap on SIL: motor_log.csv, telemetry.csv (coached) and
                          telemetry_uncoached.csv (20 Hz rows), latency, traces, cue map plots
    logs/console.txt      the demo's console output
    demo.json, report.html, stages.json

An existing run folder is never overwritten silently: ``--run demo`` writes ``runs/demo-2`` (3, ...)
when ``runs/demo`` holds a finished demo, unless ``--force`` is given.

The lap is closed loop: env observation -> TELEMETRY to the SIL unit -> HAPTIC reply ->
the unit's int8 outputs, dequantized -> env.step. Latencies are host send -> reply
against the SIL process on this machine (where = sil), never a hardware number.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from motocoach.errors import ConfigError, DeviceError, ToolError
from motocoach.runs import RunDir

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
ENGINE_DIR = FIRMWARE / "lib/coach_model"
#: hand-written engine files copied next to the generated model (the rest is generated)
ENGINE_FILES = ("coach_engine.c", "coach_model_load.c", "coach_engine.h", "coach_engine_private.h",
                "coach_engine_sse2.h", "library.json")
LAP_TRACK, LAP_RIDER = "falcon", "amateur"  # a track held out of training
SPREAD_SEEDS = 5  #: host-only laps per condition, to show the ride-to-ride spread


@dataclass
class Stages:
    """Times each stage and prints it as it starts and ends."""

    console: Console
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        n = len(self.seconds) + 1
        self.console.print(f"[bold cyan]{n}. {name}[/] ...")
        t0 = time.perf_counter()
        try:
            yield
        except BaseException:
            self.console.print(f"[bold red]   {name} failed after {time.perf_counter() - t0:.1f} s[/]")
            raise
        # numbered keys keep the stage order in JSON files written with sorted keys
        self.seconds[f"{n} {name}"] = round(time.perf_counter() - t0, 2)
        self.console.print(f"   [green]done[/] in {self.seconds[f'{n} {name}']:.1f} s")


@dataclass
class LapResult:
    """One lap in the env; ``latency_s`` only for laps coached through the unit."""

    lap_time_s: float | None
    steps: int
    offtrack: bool
    violations: int
    cue_steps: int
    latency_s: list[float] = field(default_factory=list)
    mismatches: int = 0  #: unit's int8 outputs != host engine's on the same observation
    lost: int = 0
    trace: dict[str, list[float]] | None = None  #: per step, see :mod:`motocoach.lap_report`


def prepare_model_dir(tflite: Path, out: Path, model_id: str, created: dict[str, Any]) -> Path:
    """Generated model C + manifest in ``out``, with the engine sources copied alongside."""
    from motocoach.quantization.codegen import generate

    out.mkdir(parents=True, exist_ok=True)
    for name in ENGINE_FILES:
        shutil.copyfile(ENGINE_DIR / name, out / name)
    generate(tflite, out, created=created, model_id=model_id)
    return out


def build_sil_with_model(model_dir: Path, build_dir: Path) -> Path:
    """``make -C firmware sil MODEL_DIR=... BUILD=...``: a SIL binary for this model only."""
    cmd = ["make", "-C", str(FIRMWARE), "sil", f"MODEL_DIR={model_dir.resolve()}", f"BUILD={build_dir.resolve()}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolError(f"SIL build failed ({' '.join(cmd)}):\n{r.stderr[-2000:]}\nRun `make setup` for gcc.")
    binary = build_dir / "sil" / "coach_sil"
    if not binary.exists():
        raise ToolError(f"the SIL build did not produce {binary}")
    return binary


def ride_lap(track: str, rider: str, seed: int, policy: Callable[[np.ndarray], np.ndarray | None],
             max_steps: int = 4000, trace: bool = False) -> LapResult:
    """One lap; ``policy(obs) -> action01`` (None = no reply: no cue this step).

    ``trace``: record every step (state after the step, cue applied during it) in ``LapResult.trace``."""
    import gymnasium as gym

    import motocoach.training  # noqa: F401  (registers the env)
    from motocoach.lap_report import TraceRecorder
    from motocoach.schema import load_schema
    from motocoach.training.tracks import get_track

    env = gym.make("MotoCoach-v0", track=track, rider=rider, max_episode_steps=max_steps)
    obs, info = env.reset(seed=seed)
    res = LapResult(None, 0, False, 0, 0)
    rec = TraceRecorder(load_schema().feature_names, get_track(track).length_m) if trace else None
    idle = np.zeros(env.action_space.shape, np.float32)
    while True:
        action = policy(obs)
        obs, _, term, trunc, info = env.step(idle if action is None else action)
        if rec is not None:
            rec.add(info, obs, action)
        res.steps += 1
        res.violations += int(info["violation"])
        res.cue_steps += int(info["cue_on"])
        if info["lap_time"] > 0:
            res.lap_time_s = float(info["lap_time"])
        if term or trunc:
            res.offtrack = bool(info["offtrack"])
            break
    env.close()
    res.trace = rec.trace if rec is not None else None
    return res


def coached_lap_on_unit(link: Any, engine: Any, track: str, rider: str, seed: int, realtime: bool) -> LapResult:
    """Closed loop through the unit; every step's reply is also checked against the host engine."""
    period = 1.0 / 20.0
    lat: list[float] = []
    state = {"mismatch": 0, "lost": 0, "next": time.perf_counter()}

    def policy(obs: np.ndarray) -> np.ndarray | None:
        if realtime:
            delay = state["next"] - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            state["next"] = max(state["next"] + period, time.perf_counter() - period)
        try:
            h = link.telemetry([float(v) for v in obs], timeout=period)
        except DeviceError:
            lat.append(math.inf)
            state["lost"] += 1
            return None
        lat.append(h["latency_s"])
        out = np.array([h["out0"], h["out1"], h["out2"]], np.int8)
        want, _ = engine.predict(np.asarray(obs, np.float32)[None, :])
        state["mismatch"] += int((want[0] != out).any())
        return engine.dequantize(out)

    res = ride_lap(track, rider, seed, policy, trace=True)
    res.latency_s, res.mismatches, res.lost = lat, state["mismatch"], state["lost"]
    if res.trace is not None:  # one TELEMETRY per step
        res.trace["latency_ms"] = [v * 1000 if math.isfinite(v) else float("inf") for v in lat]
    return res


def seed_spread(engine: Any, track: str, rider: str, seeds: list[int]) -> dict[str, Any]:
    """Lap times over several seeds, uncoached vs coached by the host int8 engine.

    One lap is noisy (the rider model is random); the host engine is bit-exact with the unit, so
    these host-only laps show the spread the single SIL lap sits in.
    """
    def coach(obs: np.ndarray) -> np.ndarray:
        return engine.predict(np.asarray(obs, np.float32)[None, :])[1][0]

    out: dict[str, Any] = {"seeds": seeds, "measured": "host simulator + host int8 engine (TFLM)"}
    for name, pol in (("uncoached", lambda obs: None), ("coached", coach)):
        laps = [ride_lap(track, rider, s, pol) for s in seeds]
        times = [r.lap_time_s for r in laps if r.lap_time_s is not None]
        out[name] = {"lap_times_s": [r.lap_time_s for r in laps], "finished": len(times),
                     "mean_s": float(np.mean(times)) if times else None,
                     "std_s": float(np.std(times)) if times else None,
                     "violations_mean": float(np.mean([r.violations for r in laps]))}
    return out


def free_run_name(name: str, root: Path | None = None, force: bool = False) -> str:
    """``name`` if its folder holds no finished demo (or ``force``), else the first free ``name-N``."""
    from motocoach.runs import DEFAULT_ROOT

    base = Path(root if root is not None else DEFAULT_ROOT)
    if force or not (base / name / "demo.json").exists():
        return name
    n = 2
    while (base / f"{name}-{n}").exists():
        n += 1
    return f"{name}-{n}"


def run_demo(name: str = "demo", *, root: Path | None = None, preset: str = "demo", seed: int = 0,
             realtime: bool = True, console: Console | None = None, force: bool = False) -> dict[str, Any]:
    """Run the whole demo; return the summary (also written to ``demo.json``).

    A finished run named ``name`` is kept: the demo writes ``name-2`` (3, ...) unless ``force``.
    The console output is copied into ``logs/console.txt``."""
    con = console or Console(record=True)
    chosen = free_run_name(name, root, force)
    if chosen != name:
        con.print(f"[yellow]runs/{name} holds an earlier demo; writing runs/{chosen} "
                  f"(--force overwrites runs/{name})[/]")
    run = RunDir.create(chosen, root=root, config={"preset": preset, "seed": seed, "lap": [LAP_TRACK, LAP_RIDER]})
    try:
        return _run_demo(run, con, preset=preset, seed=seed, realtime=realtime)
    finally:
        if con.record:
            con.save_text(str(run.path / "logs" / "console.txt"))


def _run_demo(run: RunDir, con: Console, *, preset: str, seed: int, realtime: bool) -> dict[str, Any]:
    from motocoach.device import dut as dutlib
    from motocoach.device.link import SerialLink

    name = run.path.name
    st = Stages(con)
    t_all = time.perf_counter()
    summary: dict[str, Any] = {"run": str(run.path), "preset": preset, "seed": seed}

    with st.stage("data (Minari)"):
        from motocoach.training import datasets

        ids = datasets.generate(run.path / "data", preset=preset, seed=seed, progress=True)
        summary["datasets"] = ids
    with st.stage("train BC -> PPO"):
        from motocoach.training import train

        p = train.get_preset(preset)
        if p.real_tracks and not train.real_track_paths(p, None, required=False):
            con.print(f"  [yellow]note:[/] the real circuits this preset also trains on are not in "
                      f"{train.DEFAULT_REAL_DATA / 'tracks'} (set MOTOCOACH_REAL_DATA); PPO rides the "
                      "generated tracks only")
        policy = train.train(run.path, preset=preset, dataset_root=run.path / "data", seed=seed, progress=True,
                             real_required=False)
        summary["training"] = json.loads((run.path / "policy.json").read_text())
    with st.stage("int8 + checks"):
        from motocoach.quantization.pipeline import provenance, quantize
        from motocoach.quantization.qat import QatConfig

        # one QAT student, not the three `models rebuild` compares: the demo stays a few minutes
        q = quantize(policy, run.path, dataset_root=run.path / "data", seed=seed,
                     qat_config=QatConfig(restarts=1))
        summary["int8"] = {"max_abs_err01": q.report["checks"]["int8_max_abs_err01"],
                           "float_vs_int8": q.report["checks"]["float_vs_int8"],
                           "decision_agreement": q.report["checks"]["decision_agreement"],
                           "quantizer": q.report["quantizer"], "comparison": q.report["comparison"]}
    with st.stage("codegen"):
        model_dir = prepare_model_dir(q.tflite, run.path / "coach_model", f"demo-{name}"[:15],
                                      provenance(q.report))
        manifest = json.loads((model_dir / "manifest.json").read_text())
        summary["model_sha256"] = manifest["model_sha256"]
    with st.stage("build SIL"):
        binary = build_sil_with_model(model_dir, run.path / "build")
    with st.stage("coached lap on SIL"):
        from motocoach.quantization.host_engine import HostEngine

        engine = HostEngine.from_manifest(model_dir / "manifest.json")
        lap_dir = run.path / "lap"
        lap_dir.mkdir(exist_ok=True)
        target = dutlib.start_firmware("sil", binary, motor_log=lap_dir / "motor_log.csv")
        try:
            with SerialLink(target.port) as link:
                ident = link.hello()
                if ident["model_sha256"] != manifest["model_sha256"]:
                    raise DeviceError("the SIL unit does not run the model just built")
                coached = coached_lap_on_unit(link, engine, LAP_TRACK, LAP_RIDER, seed, realtime)
        finally:
            target.stop()
        uncoached = ride_lap(LAP_TRACK, LAP_RIDER, seed, lambda obs: None, trace=True)
        spread = seed_spread(engine, LAP_TRACK, LAP_RIDER, [seed + k for k in range(SPREAD_SEEDS)])
        dutlib.plot_latency_histogram(coached.latency_s, lap_dir / "latency_hist.png", "coached lap (sil)")
        summary["lap"] = {"track": LAP_TRACK, "rider": LAP_RIDER, "realtime_20hz": realtime,
                          "coached": _lap_dict(coached), "uncoached": _lap_dict(uncoached),
                          "latency": dutlib.latency_summary(coached.latency_s), "host_seeds": spread,
                          **lap_extras(lap_dir, coached, uncoached)}
    with st.stage("report"):
        from motocoach.demo_report import write_html

        summary["stages_s"] = dict(st.seconds)
        summary["demo_wall_s"] = round(time.perf_counter() - t_all, 2)
        run.write_json("demo.json", summary)
        write_html(run.path, summary)
    summary["stages_s"] = dict(st.seconds)
    summary["demo_wall_s"] = round(time.perf_counter() - t_all, 2)
    run.write_json("demo.json", summary)
    print_summary(con, summary)
    return summary


def lap_extras(lap_dir: Path, coached: LapResult, uncoached: LapResult) -> dict[str, Any]:
    """Telemetry CSVs, trace and cue-map plots in ``lap_dir``; returns the gain and the sector table."""
    from motocoach import lap_report as lr
    from motocoach.training.tracks import get_track

    track = get_track(LAP_TRACK)
    out: dict[str, Any] = {"gain_pct": gain_pct(uncoached.lap_time_s, coached.lap_time_s)}
    if coached.trace is None or uncoached.trace is None:
        return out
    lr.write_csv(coached.trace, lap_dir / "telemetry.csv")
    lr.write_csv(uncoached.trace, lap_dir / "telemetry_uncoached.csv")
    lr.plot_traces(uncoached.trace, coached.trace, track.length_m, lap_dir / "traces.png")
    lr.plot_cue_map(track.xy, track.length_m, coached.trace, lap_dir / "cue_map.png")
    kinds = lr.cue_kinds(coached.trace)
    out["sectors"] = lr.sector_table(uncoached.trace, coached.trace, track.length_m)
    out["cue_steps_by_kind"] = {k: kinds.count(k) for k in lr.CUE_KINDS}
    return out


def gain_pct(uncoached_s: float | None, coached_s: float | None) -> float | None:
    """Lap-time gain of coaching in % of the uncoached lap (positive = coached faster)."""
    if not uncoached_s or coached_s is None:
        return None
    return 100.0 * (uncoached_s - coached_s) / uncoached_s


def _lap_dict(r: LapResult) -> dict[str, Any]:
    return {"lap_time_s": r.lap_time_s, "steps": r.steps, "offtrack": r.offtrack, "violations": r.violations,
            "cue_steps": r.cue_steps, "mismatches": r.mismatches, "lost_replies": r.lost}


def print_summary(con: Console, s: dict[str, Any]) -> None:
    """The one-screen summary; every number says where it was measured."""
    t = Table(title=f"moto-edge-coach demo: {s['run']}", show_lines=False)
    for col in ("what", "value", "measured on"):
        t.add_column(col)
    for stage, sec in s["stages_s"].items():
        t.add_row(f"stage: {stage}", f"{sec:.1f} s", "host")
    t.add_row("total wall time", f"{s['demo_wall_s']:.1f} s", "host")
    lap = s["lap"]
    for kind in ("uncoached", "coached"):
        lt = lap[kind]["lap_time_s"]
        t.add_row(f"{kind} lap ({lap['track']}, {lap['rider']}, seed {s['seed']})",
                  "did not finish" if lt is None else f"{lt:.2f} s (sim)", "host sim" +
                  (" + sil unit" if kind == "coached" else ""))
    g = gain_pct(lap["uncoached"]["lap_time_s"], lap["coached"]["lap_time_s"])
    t.add_row("lap gain from coaching", "n/a (a lap did not finish)" if g is None else
              f"{g:+.2f} % ({lap['uncoached']['lap_time_s'] - lap['coached']['lap_time_s']:+.2f} s)", "host sim")
    hs = lap.get("host_seeds")
    if hs:
        for kind in ("uncoached", "coached"):
            m, sd = hs[kind]["mean_s"], hs[kind]["std_s"]
            t.add_row(f"{kind} lap, {len(hs['seeds'])} seeds (mean ± sd)",
                      "n/a" if m is None else f"{m:.2f} ± {sd:.2f} s, {hs[kind]['finished']} finished",
                      "host sim + host int8")
        from motocoach.training.evaluate import paired_laps_gain

        # the same paired figure as `motocoach evaluate`: per seed, over the laps both finished
        pg = paired_laps_gain(hs["uncoached"].get("lap_times_s", []), hs["coached"].get("lap_times_s", []))
        if pg["pairs"]:
            t.add_row(f"paired lap gain over {len(hs['seeds'])} seeds",
                      f"{pg['gain_pct']:+.2f} % [95 % CI {pg['ci95_low_pct']:+.2f} .. {pg['ci95_high_pct']:+.2f}], "
                      f"{pg['pairs']} pairs", "host sim + host int8")
        else:
            gs = gain_pct(hs["uncoached"]["mean_s"], hs["coached"]["mean_s"])
            t.add_row(f"mean lap gain over {len(hs['seeds'])} seeds",
                      "n/a (no seed finished both laps)" if gs is None else f"{gs:+.2f} %", "host sim + host int8")
    t.add_row("int8 vs float max |err| (action, 0..1)", f"{s['int8']['max_abs_err01']:.4f}", "host (TFLM)")
    t.add_row(f"decisions agree float vs int8 ({str(s['int8'].get('quantizer', 'ptq')).upper()})",
              f"{s['int8']['decision_agreement']['all']:.2%}", "host (TFLM), cue language of the schema")
    t.add_row("unit outputs != host engine", str(lap["coached"]["mismatches"]), "sil vs host")
    la = lap["latency"]
    t.add_row("lap latency p50 / p99 / max", f"{la['p50_ms']:.2f} / {la['p99_ms']:.2f} / {la['max_ms']:.2f} ms",
              "host -> sil -> host")
    t.add_row("replies missing the 50 ms slot", f"{la['timeouts']} of {la['frames']}", "sil")
    con.print(t)
    if la["timeouts"]:
        con.print(f"{la['timeouts']} of {la['frames']} replies did not come back within one 20 Hz frame (50 ms): "
                  "the lap applied no cue for those steps, and each counts as an infinite latency, so p99/max "
                  "read 'inf' once more than 1 % (p99) or any one (max) missed. On SIL this is this machine "
                  "being busy, not the firmware; see lap/latency_hist.png.")
    con.print(f"report: {s['run']}/report.html   lap telemetry: {s['run']}/lap/telemetry.csv")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(run: str = typer.Option("demo", "--run", help="Run folder name under runs/."),
             preset: str = typer.Option("default", help="Data + training size: test (seconds), demo (~1.5 min "
                                                          "in all) or default (~2.5 min; the committed "
                                                          "model's size, the one that coaches measurably)."),
             seed: int = typer.Option(0, help="Seed for data, training and the lap."),
             fast: bool = typer.Option(False, "--fast", help="Stream the lap as fast as the unit answers, "
                                                             "not at 20 Hz real time."),
             force: bool = typer.Option(False, "--force", help="Overwrite runs/<run> if it holds an earlier demo "
                                                               "(default: write runs/<run>-2, -3, ...).")) -> None:
        """The whole chain: data, BC, PPO, int8, C, SIL firmware, a coached lap, and a report.

        Example: motocoach demo --run demo
        """
        if preset not in ("test", "demo", "default"):
            raise ConfigError(f"preset {preset!r}: use test, demo or default")
        run_demo(run, preset=preset, seed=seed, realtime=not fast, force=force)
