"""The demo's HTML report: one self-contained page (plots embedded) in the run folder.

Every number is labelled with where it was measured: host (this machine's Python / TFLM),
sil (the firmware core compiled for this machine, on a pty), qemu, or hardware.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from motocoach.schema import load_schema


def _img(path: Path) -> str:
    if not path.exists():
        return f"<p><em>{html.escape(path.name)} was not produced.</em></p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def ppo_curve(run_dir: Path) -> list[tuple[int, float]]:
    """(step, mean episode reward) from the PPO tensorboard logs, if any."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return []
    points: list[tuple[int, float]] = []
    for d in sorted((run_dir / "tb").glob("ppo*")):
        acc = EventAccumulator(str(d))
        acc.Reload()
        if "rollout/ep_rew_mean" in acc.Tags().get("scalars", []):
            points += [(e.step, e.value) for e in acc.Scalars("rollout/ep_rew_mean")]
    return sorted(points)


def plot_training(run_dir: Path, summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    losses = summary.get("training", {}).get("bc", {}).get("losses", [])
    a.plot(np.arange(1, len(losses) + 1), losses, marker=".")
    a.set(title="behaviour cloning", xlabel="epoch", ylabel="loss")
    pts = ppo_curve(run_dir)
    if pts:
        from motocoach.lap_report import smooth

        steps, rew = [p[0] for p in pts], [p[1] for p in pts]
        b.plot(steps, rew, color="#3465a4", alpha=0.3, lw=1, label="per rollout")
        b.plot(steps, smooth(rew), color="#3465a4", lw=2, label="moving average")
        b.legend(fontsize=8)
    else:
        b.text(0.5, 0.5, "no PPO episode rewards logged", ha="center", transform=b.transAxes)
    b.set(title="PPO", xlabel="env steps", ylabel="mean episode reward")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_laps(summary: dict[str, Any], path: Path) -> Path:
    """Lap times on an axis around the data (a 1 s gain on a 0-based axis is invisible)."""
    from motocoach.lap_report import plot_lap_times

    return plot_lap_times(summary["lap"], path)


def _sector_rows(lap: dict[str, Any]) -> str:
    rows = lap.get("sectors") or []
    return "".join(f"<tr><td>{r['sector']}</td><td>{r['from_m']:.0f}-{r['to_m']:.0f} m</td>"
                   f"<td>{r['uncoached_s']:.2f}</td><td>{r['coached_s']:.2f}</td><td>{r['gain_s']:+.2f}</td></tr>"
                   for r in rows)


def _rows(rows: list[tuple[str, str, str]]) -> str:
    return "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td></tr>"
                   for a, b, c in rows)


def write_html(run_dir: Path, s: dict[str, Any]) -> Path:
    """Write ``report.html`` (and its PNGs) into ``run_dir``."""
    plot_training(run_dir, s, run_dir / "training.png")
    plot_laps(s, run_dir / "laps.png")
    lap, la, tr = s["lap"], s["lap"]["latency"], s.get("training", {})
    fmt = lambda v, u="": "n/a" if v is None else (f"{v:.3f}{u}" if isinstance(v, float) else f"{v}{u}")  # noqa: E731
    rows = [(f"stage: {k}", f"{v:.1f} s", "host") for k, v in s["stages_s"].items()]
    rows += [
        ("total wall time", f"{s.get('demo_wall_s', 0):.1f} s", "host"),
        ("BC loss first -> last", f"{fmt(tr.get('bc', {}).get('loss_first'))} -> "
                                  f"{fmt(tr.get('bc', {}).get('loss_last'))}", "host (torch)"),
        ("PPO steps, steps/s", f"{tr.get('ppo', {}).get('steps')} , {tr.get('ppo', {}).get('steps_per_s')}",
         "host (SB3)"),
        ("uncoached lap time", fmt(lap["uncoached"]["lap_time_s"], " s"), "host simulator"),
        ("coached lap time", fmt(lap["coached"]["lap_time_s"], " s"), "host simulator, cues from the sil unit"),
        ("lap gain from coaching", "n/a" if lap.get("gain_pct") is None else f"{lap['gain_pct']:+.2f} %",
         "host simulator (positive = coached faster)"),
        *[(f"{k} lap over seeds {lap['host_seeds']['seeds']} (mean ± sd, finished)",
           f"{fmt(lap['host_seeds'][k]['mean_s'])} ± {fmt(lap['host_seeds'][k]['std_s'])} s, "
           f"{lap['host_seeds'][k]['finished']}", "host simulator + host int8 engine (bit-exact with the unit)")
          for k in ("uncoached", "coached") if "host_seeds" in lap],
        ("coached lap violations / cue steps",
         f"{lap['coached']['violations']} / {lap['coached']['cue_steps']}", "host simulator"),
        ("int8 vs float, max |error| of an action (0..1)", fmt(s["int8"]["max_abs_err01"]), "host (TFLM vs torch)"),
        (f"decision agreement float vs int8 (cue language: on at >= {load_schema().cues.motor_on:g}; "
         f"{str(s['int8'].get('quantizer', 'ptq')).upper()} model)",
         fmt(s["int8"]["decision_agreement"].get("all")), "host"),
        ("unit int8 outputs != host engine (lap)", str(lap["coached"]["mismatches"]), "sil vs host (TFLM)"),
        ("latency p50 / p95 / p99 / max",
         " / ".join(fmt(la[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")) + " ms",
         "host send -> sil reply (pty, this machine; not a hardware number)"),
        ("frames, replies missing the 50 ms slot", f"{la['frames']}, {la['timeouts']}",
         "sil (each counts as inf: the lap had no cue that step)"),
        ("model sha256", s.get("model_sha256", ""), "generated; checked against the unit's IDENTITY"),
    ]
    per_out = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['unit']}</td><td>{v['mae']:.4f}</td>"
                      f"<td>{v['max']:.4f}</td><td>{v['max_lsb']:.2f}</td></tr>"
                      for k, v in s["int8"]["float_vs_int8"].items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>moto-edge-coach demo</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td,th{{border-bottom:1px solid #ddd;
padding:3px 8px;text-align:left}}table{{border-collapse:collapse}}img{{max-width:100%}}</style></head><body>
<h1>moto-edge-coach demo: {html.escape(Path(s['run']).name)}</h1>
<p>Preset <b>{html.escape(s['preset'])}</b>, seed {s['seed']}. Where: <b>host</b> = Python on this machine,
<b>sil</b> = the firmware core built for this machine and driven over a pseudo-terminal. No number here was
measured on an ESP32.</p>
<h2>Summary</h2><table><tr><th>what</th><th>value</th><th>measured on</th></tr>{_rows(rows)}</table>
<h2>Training</h2>{_img(run_dir / 'training.png')}
<h2>Coached vs uncoached lap</h2>{_img(run_dir / 'laps.png')}
<p>Diamonds: this lap (cues from the SIL unit). Dots with mean ± sd: the same lap over several seeds on the
host (the rider model is random; the host int8 engine is bit-exact with the unit). The axis does not start at 0.</p>
<h3>Speed, throttle and brake along the lap; delta time</h3>{_img(run_dir / 'lap' / 'traces.png')}
<p>Delta time = coached minus uncoached time at the same distance: below 0 the coached rider is ahead.
Both laps as CSV (one row per 20 Hz step): <code>lap/telemetry.csv</code> (coached, with each step's cue and
reply latency) and <code>lap/telemetry_uncoached.csv</code>, next to <code>lap/motor_log.csv</code>.</p>
<h3>Sectors (equal length)</h3><table><tr><th>sector</th><th>distance</th><th>uncoached s</th><th>coached s</th>
<th>gain s</th></tr>{_sector_rows(lap)}</table>
<h3>Cue map</h3>{_img(run_dir / 'lap' / 'cue_map.png')}
<p>Where the unit cued during the coached lap, in the cue language: left or right motor = line correction to
that side, both at high frequency = slow down, both at low frequency = more throttle.</p>
<p>The coached lap is closed loop: each simulator observation was sent to the SIL unit as TELEMETRY and its
HAPTIC reply's int8 outputs, dequantized, were the cues applied in the next simulator step
({'20 Hz real time' if lap['realtime_20hz'] else 'as fast as the unit answered'}).</p>
<h2>int8 error (host, held-out telemetry)</h2>
<table><tr><th>action</th><th>unit</th><th>MAE</th><th>max</th><th>max (output LSB)</th></tr>{per_out}</table>
{_img(run_dir / 'quantize' / 'float_vs_int8.png')}
<h2>Latency (host send -> SIL reply)</h2>{_img(run_dir / 'lap' / 'latency_hist.png')}
<p>Each 20 Hz step waits at most one frame (50 ms) for the unit's reply. A reply that misses that slot counts
as an infinite latency in every statistic (so p99 reads inf once more than 1 % missed) and the lap applies no
cue for that step. <b>Late</b>: the reply came after 50 ms; <b>lost</b>: it never came. On SIL both mean this
machine was busy, not that the firmware was slow.</p>
<h2>Raw data</h2><pre>{html.escape(json.dumps({k: v for k, v in s.items() if k != 'training'}, indent=1,
                                                default=str))}</pre>
</body></html>"""
    out = run_dir / "report.html"
    out.write_text(page)
    return out
