"""Coaching efficacy: lap time, violations and cue duty for several coaches, over many seeds.

Coaches compared: ``none`` (uncoached), ``rule`` (the privileged expert coach, the teacher),
``telemetry-rule`` (rules on the device telemetry only, a baseline), ``bc`` and ``bc+ppo``
(trained policies; they see only the device telemetry). Every ride is one
flying lap from the start line; a ride that leaves the track counts as an off-track and
has no lap time. Any track CSV and any rider profile JSON can be evaluated.

>>> r = evaluate_coach("none", track="kestrel", rider="amateur", seeds=2)
>>> r.coach, r.rides, r.completed
('none', 2, 2)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from motocoach.errors import ConfigError
from motocoach.schema import load_schema
from motocoach.training.coach import ExpertCoach, TelemetryRuleCoach
from motocoach.training.riders import get_rider
from motocoach.training.sim import DT, SUBSTEPS, RideSim, decode_cues
from motocoach.training.sweep import strict_json
from motocoach.training.tracks import Track, get_track

CoachFn = Callable[[RideSim], np.ndarray]
MIN_LAP_SPEED_MPS = 8.0       # a ride slower than this on average has not lapped (the cap follows the length)


@dataclass(frozen=True)
class CoachResult:
    """Outcome of ``rides`` flying laps of one rider on one track with one coach."""

    coach: str
    track: str
    rider: str
    rides: int
    completed: int
    offtracks: int
    # Lap time, violations and duty are all taken over the same rides: those that finished
    # a lap (NaN when none did; the CLI then says "no lap finished").
    lap_time_mean_s: float
    lap_time_std_s: float
    violation_s_per_lap: float  # seconds with friction usage > 0.95 or lean over cap
    cue_duty: float             # fraction of steps with a motor on
    vehicle: str = ""
    lap_times_s: tuple = ()     # per ride, in seed order; NaN where the ride did not finish
    violation_s: tuple = ()     # per ride, in seed order (finished or not)


def policy_coach(policy_path: str | Path) -> CoachFn:
    """A coach from a ``policy.pt``: actions = CoachActor(normalize(telemetry))."""
    import torch

    from motocoach.training.policy_net import load_actor

    actor = load_actor(policy_path)
    schema = load_schema()

    def coach(sim: RideSim) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(schema.normalize(sim.observe()))).numpy()

    return coach


def make_coach(kind: str, track_name: str, policy: Path | None = None) -> CoachFn:
    if kind == "none":
        return lambda sim: np.zeros((sim.n, 3))
    if kind == "rule":
        return ExpertCoach(get_track(track_name))
    if kind == "telemetry-rule":
        return TelemetryRuleCoach()
    if policy is None:
        raise ConfigError(f"coach {kind!r} needs a policy file")
    return policy_coach(policy)


def max_lap_s(length_m: float) -> float:
    """Time after which a ride counts as not having lapped: the circuit at 8 m/s (29 km/h)."""
    return length_m / MIN_LAP_SPEED_MPS


def ride_laps(track: str | Track, rider: str, coach: CoachFn, seeds: int, seed: int = 0,
              record: bool = False, vehicle: str | None = None,
              substeps: int = SUBSTEPS) -> tuple[dict, dict]:
    """``seeds`` parallel flying laps; returns (per-ride arrays, optional trace of ride 0).

    ``track`` is a built track, a name or a CSV path; ``vehicle`` a vehicle profile name or
    TOML path (default: the rider's own)."""
    from motocoach.training.vehicles import get_vehicle

    sim = RideSim(track if isinstance(track, Track) else get_track(track), get_rider(rider), n=seeds,
                  seed=seed, vehicle=get_vehicle(vehicle) if vehicle else None, substeps=substeps)
    n = seeds
    lap = np.full(n, np.nan)
    off = np.zeros(n, dtype=bool)
    viol = np.zeros(n)
    on = np.zeros(n)
    steps = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    trace: dict[str, list] = {"s": [], "side": [], "brake": [], "throttle": [], "v": [], "progress": [],
                              "t": []}
    for _ in range(int(max_lap_s(sim.length) / DT)):
        a = coach(sim)
        if record:
            c = decode_cues(a[:1])
            trace["s"].append(float(np.mod(sim.s[0], sim.length)))
            trace["v"].append(float(sim.v[0]))
            trace["progress"].append(float(sim.s[0] - sim.s0[0]))
            trace["t"].append(float(sim.t[0]))
            for k in ("side", "brake", "throttle"):
                trace[k].append(float(c[k][0]))
        r = sim.step(a)
        viol += r.violation * alive
        on += r.cue_on * alive
        steps += alive
        off |= r.offtrack & alive
        done = r.lap_done & alive
        lap[done] = r.lap_time[done]
        alive &= ~(r.offtrack | r.lap_done)
        if not alive.any():
            break
    return {"lap": lap, "off": off, "viol_s": viol * DT, "duty": on / np.maximum(steps, 1)}, trace


def evaluate_coach(kind: str, *, track: str, rider: str, seeds: int = 32, seed: int = 0,
                   policy: Path | None = None, vehicle: str | None = None) -> CoachResult:
    """Evaluate one coach on one track and rider over ``seeds`` rides (same seeds for every coach)."""
    res, _ = ride_laps(track, rider, make_coach(kind, track, policy), seeds, seed, vehicle=vehicle)
    lap = res["lap"]
    done = ~np.isnan(lap)

    def over_finished(x: np.ndarray, f=np.mean) -> float:
        return float(f(x[done])) if done.any() else float("nan")

    return CoachResult(
        vehicle=vehicle or get_rider(rider).vehicle, lap_times_s=tuple(float(x) for x in lap),
        violation_s=tuple(float(x) for x in res["viol_s"]),
        coach=kind, track=get_track(track).name, rider=get_rider(rider).name, rides=seeds,
        completed=int(done.sum()), offtracks=int(res["off"].sum()),
        lap_time_mean_s=over_finished(lap), lap_time_std_s=over_finished(lap, np.std),
        violation_s_per_lap=over_finished(res["viol_s"]), cue_duty=over_finished(res["duty"]))


def evaluate(*, policy: Path | None, tracks: list[str], riders: list[str], seeds: int = 32,
             seed: int = 0, out_dir: Path | None = None, bc_policy: Path | None = None,
             progress: bool = True, vehicle: str | None = None) -> list[CoachResult]:
    """Every coach x track x rider; writes ``evaluation.json`` and plots into ``out_dir``."""
    from rich.progress import Progress

    kinds = coach_kinds(policy, bc_policy)
    results: list[CoachResult] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(kinds) * len(tracks) * len(riders))
        for track in tracks:
            for rider in riders:
                for kind, path in kinds:
                    results.append(evaluate_coach(kind, track=track, rider=rider, seeds=seeds,
                                                  seed=seed, policy=path, vehicle=vehicle))
                    bar.advance(task)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(strict_json(
            {"seeds": seeds, "seed": seed, "policy": str(policy) if policy else None,
             "results": [asdict(r) for r in results]}), indent=2, allow_nan=False) + "\n")
        write_plots(results, out, kinds=kinds, track=tracks[0], rider=riders[0], seed=seed, vehicle=vehicle)
    return results


def coach_kinds(policy: Path | None, bc_policy: Path | None = None) -> list[tuple[str, Path | None]]:
    """The coaches compared, in order: none, rule, telemetry-rule, then BC (``bc_policy`` or
    the ``bc_policy.pt`` beside ``policy``) and BC+PPO when there is a policy."""
    if policy is not None and bc_policy is None:
        cand = Path(policy).with_name("bc_policy.pt")
        bc_policy = cand if cand.exists() else None
    kinds: list[tuple[str, Path | None]] = [("none", None), ("rule", None), ("telemetry-rule", None)]
    if bc_policy is not None:
        kinds.append(("bc", Path(bc_policy)))
    if policy is not None:
        kinds.append(("bc+ppo", Path(policy)))
    return kinds


def write_plots(results: list[CoachResult], out: Path, *, kinds: list[tuple[str, Path | None]], track: str,
                rider: str, seed: int, vehicle: str | None = None) -> None:
    """``lap_times.png`` for every cell; a cue map and a speed/delta-time plot of one ride of the
    last coach in ``kinds`` against no coach, on ``track`` with ``rider``."""
    from motocoach.training.plots import plot_cue_map, plot_lap_times, plot_speed_and_delta
    from motocoach.training.reflap import reference_lap
    from motocoach.training.vehicles import get_vehicle

    plot_lap_times(results, out / "lap_times.png")
    best = kinds[-1]
    track0, rider0 = get_track(track), get_rider(rider)
    traces = {}
    for kind, path in (kinds[0], best):
        _, traces[kind] = ride_laps(track, rider, make_coach(kind, track, path), 1, seed, record=True,
                                    vehicle=vehicle)
    veh = get_vehicle(vehicle or rider0.vehicle)
    plot_cue_map(track0, traces[best[0]], out / f"cue_map_{track0.name}.png",
                 title=f"{best[0]} coaching {rider0.name} on {veh.name} (simulated, host)")
    plot_speed_and_delta(track0, traces, reference_lap(track0, veh).v, out / f"speed_{track0.name}.png",
                         title=f"{rider0.name} on {veh.name}, {track0.name}, seed {seed} (simulated, host)")


def gain_pct(results: list[CoachResult], coach: str, baseline: str = "none") -> float:
    """Mean lap-time gain of ``coach`` over ``baseline`` across matching (track, rider), %."""
    base = {(r.track, r.rider): r for r in results if r.coach == baseline}
    gains = [100.0 * (1.0 - r.lap_time_mean_s / base[(r.track, r.rider)].lap_time_mean_s)
             for r in results if r.coach == coach and (r.track, r.rider) in base]
    return float(np.mean(gains)) if gains else float("nan")


def _pair_gains(baseline_laps, coached_laps) -> np.ndarray:
    """Per seed, 1 - coached / baseline in %, over the seeds both finished (NaN/None = not)."""
    a = np.array([np.nan if x is None else x for x in coached_laps], dtype=float)
    b = np.array([np.nan if x is None else x for x in baseline_laps], dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    return 100.0 * (1.0 - a[both] / b[both])


def _summarise(g: np.ndarray) -> dict:
    if len(g) == 0:
        return {"pairs": 0}
    half = 1.96 * float(g.std(ddof=1)) / np.sqrt(len(g)) if len(g) > 1 else float("inf")
    return {"pairs": int(len(g)), "gain_pct": float(g.mean()), "ci95_low_pct": float(g.mean()) - half,
            "ci95_high_pct": float(g.mean()) + half}


def paired_laps_gain(baseline_laps, coached_laps) -> dict:
    """Paired gain of ``coached_laps`` over ``baseline_laps`` (same seeds, same order), in %.

    Per seed, gain = 1 - coached / baseline, over the seeds both finished (NaN or None = not
    finished); the interval is mean +- 1.96 standard errors. ``pairs`` is 0 when no seed
    finished with both, and then there are no numbers.
    """
    return _summarise(_pair_gains(baseline_laps, coached_laps))


def paired_gain(results: list[CoachResult], coach: str, baseline: str = "none") -> dict:
    """Lap-time gain of ``coach`` over ``baseline`` on the same seeds, with a 95 % interval,
    pooled over every (track, rider) cell (see :func:`paired_laps_gain`)."""
    base = {(r.track, r.rider): r for r in results if r.coach == baseline}
    gains = [_pair_gains(base[(r.track, r.rider)].lap_times_s, r.lap_times_s)
             for r in results if r.coach == coach and (r.track, r.rider) in base]
    return _summarise(np.concatenate(gains) if gains else np.zeros(0))


def paired_violations_ratio(results: list[CoachResult], coach: str, baseline: str = "none") -> float | None:
    """Violation seconds of ``coach`` over ``baseline``, summed over the rides both finished
    (same seeds, every (track, rider) cell pooled). None when the baseline has none there."""
    base = {(r.track, r.rider): r for r in results if r.coach == baseline}
    num = den = 0.0
    for r in results:
        b = base.get((r.track, r.rider))
        if r.coach != coach or b is None:
            continue
        both = np.isfinite(np.array(r.lap_times_s, dtype=float)) & np.isfinite(np.array(b.lap_times_s, dtype=float))
        num += float(np.array(r.violation_s)[both].sum())
        den += float(np.array(b.violation_s)[both].sum())
    return num / den if den > 0 else None
