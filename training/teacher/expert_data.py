"""Expert laps for the teacher: the pro rider, uncoached, on many circuits and two vehicles.

:func:`build_expert_set` rides :class:`~motocoach.training.sim.RideSim` (zero actions: no
cues) for the ``pro`` profile on each vehicle of :class:`ExpertConfig` over generated circuits
(``gen-<seed>``, trackgen seeds the built-in tracks do not use) plus the real calibration
circuits Silverstone and Nuerburgring when the real-data folder has them. Each ride runs
several laps; laps are cut at the start/finish crossings, ranked by lap time per (track,
vehicle), and the fastest :attr:`ExpertConfig.keep_fraction` are kept as expert laps.
Imported ride logs (:func:`~motocoach.training.ridelogs.ingest.import_log`) can add their
valid laps.

Rides are kept whole (telemetry, lap position, progress, time); training windows are cut
lazily by :class:`WindowDataset` from (ride, step) indices, so no (N, 40, F) array is ever
built. The validation split is by track and deterministic (:func:`split_tracks`).

>>> split_tracks(["gen-1", "gen-2", "gen-3", "gen-4", "gen-5"], 0.2)["val"]
['gen-5']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from motocoach.errors import ConfigError, DatasetError
from motocoach.schema import load_schema
from motocoach.training.teacher.features import (HISTORY_STEPS, HORIZON_STEPS, SECTOR_SCALE_S, TARGET_SCALE,
                                                 context, sector_time, target_columns)

#: Circuits no teacher trains on: the built-in tracks (other evaluations use them) and the
#: real circuits held out everywhere.
RESERVED_TRACKS = ("kestrel", "heron", "osprey", "falcon", "merlin", "BrandsHatch", "Catalunya")
CALIBRATION_TRACKS = ("Silverstone", "Nuerburgring")
FIRST_SEED = 1000              # generated circuits gen-1000, gen-1001, ... (built-ins use 11..53)
EXTRA_STEPS = 240              # ridden past the last lap so its horizons and sectors stay inside the ride

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExpertConfig:
    """What to ride. ``tracks`` are names: ``gen-<seed>`` (a generated circuit) or a track CSV path.

    ``keep_fraction`` of the laps of each (track, vehicle) are kept, fastest first; the
    simulated pro is already within a few per cent of the machine's limit, and keeping the
    reference design's 1 % of a few dozen laps per circuit would keep less than one lap.
    """

    tracks: tuple[str, ...] = tuple(f"gen-{FIRST_SEED + i}" for i in range(12))
    vehicles: tuple[str, ...] = ("superbike", "roadsport")
    rider: str = "pro"
    # a ride draws its grip and corner errors once, so its laps are alike: more rides, few laps
    rides: int = 8                  # parallel rides per track and vehicle
    laps: int = 2                   # laps per ride
    keep_fraction: float = 0.25
    val_fraction: float = 0.2
    seed: int = 0
    stride: int = 2                 # one training window every `stride` steps (neighbours are near-copies)
    calibration: bool = True        # also ride Silverstone and Nuerburgring when the real-data folder has them

    def fingerprint(self, extra: Sequence[str] = ()) -> str:
        text = json.dumps({**asdict(self), "extra": list(extra)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Ride:
    """One continuous ride: physical telemetry (T, F), lap position ``s`` (T,) m, monotonic
    ``progress`` (T,) m, time ``t`` (T,) s, context (T, C), and the steps inside kept laps."""

    track: str
    vehicle: str
    features: np.ndarray
    s: np.ndarray
    progress: np.ndarray
    t: np.ndarray
    context: np.ndarray
    keep: np.ndarray                # (T,) bool: the step lies in an expert lap
    source: str = "sim"             # sim | log


@dataclass
class ExpertSet:
    """Expert rides, the split by track, and what was ridden and kept."""

    rides: list[Ride]
    split: dict[str, list[str]]
    stats: dict = field(default_factory=dict)
    fingerprint: str = ""

    def rides_of(self, part: str) -> list[Ride]:
        names = set(self.split[part])
        return [r for r in self.rides if r.track in names]

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for i, r in enumerate(self.rides):
            for k in ("features", "s", "progress", "t", "context", "keep"):
                arrays[f"{i}_{k}"] = getattr(r, k)
        meta = {"rides": [{"track": r.track, "vehicle": r.vehicle, "source": r.source} for r in self.rides],
                "split": self.split, "stats": self.stats, "fingerprint": self.fingerprint}
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "ExpertSet":
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                rides = [Ride(m["track"], m["vehicle"], *(z[f"{i}_{k}"] for k in
                              ("features", "s", "progress", "t", "context", "keep")), source=m["source"])
                         for i, m in enumerate(meta["rides"])]
        except (OSError, KeyError, ValueError) as e:
            raise DatasetError(f"{path} is not an expert set ({type(e).__name__}: {e}); delete it to rebuild") from e
        return cls(rides, meta["split"], meta["stats"], meta["fingerprint"])


def split_tracks(names: Sequence[str], val_fraction: float) -> dict[str, list[str]]:
    """Deterministic split by track: the names whose SHA-256 sorts first go to validation
    (at least one when there are two or more tracks). Independent of order and seed."""
    names = sorted(set(names))
    n_val = max(1, round(val_fraction * len(names))) if len(names) >= 2 else 0
    ranked = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    val = sorted(ranked[:n_val])
    return {"train": [n for n in names if n not in val], "val": val}


def resolve_track(name: str):
    """A :class:`~motocoach.training.tracks.Track` for ``gen-<seed>`` or a CSV path."""
    from motocoach.training.trackgen import BUILTIN_SEEDS, generate_track
    from motocoach.training.tracks import build_track, get_track

    stem = Path(name).stem
    if stem in RESERVED_TRACKS:
        raise ConfigError(f"track {stem} is held out for evaluation; the teacher does not train on "
                          f"{', '.join(RESERVED_TRACKS)}")
    if name.startswith("gen-"):
        try:
            seed = int(name[4:])
        except ValueError:
            raise ConfigError(f"{name!r}: a generated circuit is gen-<seed>, e.g. gen-1000") from None
        if seed in BUILTIN_SEEDS.values():
            raise ConfigError(f"{name}: seed {seed} makes a built-in track; use seeds from {FIRST_SEED}")
        return build_track(generate_track(seed), name)
    return get_track(name)


def calibration_tracks(real_data: Path | None) -> list[str]:
    """CSV paths of Silverstone and Nuerburgring under ``real_data``/tracks that exist."""
    from motocoach.training.train import DEFAULT_REAL_DATA

    folder = Path(real_data or DEFAULT_REAL_DATA) / "tracks"
    return [str(folder / f"{t}.csv") for t in CALIBRATION_TRACKS if (folder / f"{t}.csv").is_file()]


def ride_laps(track, vehicle: str, cfg: ExpertConfig, seed: int) -> tuple[list[Ride], list[tuple[int, int, int, float]]]:
    """Ride ``cfg.rides`` pro rides of ``cfg.laps`` laps; returns the rides (keep all False)
    and their laps as (ride index, first step, end step, lap time s)."""
    from motocoach.training.riders import get_rider
    from motocoach.training.sim import RideSim
    from motocoach.training.vehicles import get_vehicle

    veh = get_vehicle(vehicle)
    sim = RideSim(track, get_rider(cfg.rider), n=cfg.rides, seed=seed, vehicle=veh, random_start=True)
    zeros = np.zeros((cfg.rides, 3))
    obs, pos, times = [], [], []
    end = np.full(cfg.rides, -1)                      # first off-track step (the ride ends there)
    crossings: list[list[tuple[int, float]]] = [[] for _ in range(cfg.rides)]
    extra = 0
    max_steps = int(cfg.laps * track.length_m / 10.0 / sim_dt()) + EXTRA_STEPS   # >= 10 m/s
    for step in range(max_steps):
        r = sim.step(zeros)
        obs.append(sim.observe())
        pos.append(sim.s.copy())
        times.append(sim.t.copy())
        for i in np.flatnonzero(r.lap_done & (end < 0)):
            crossings[i].append((step, float(r.lap_time[i])))
        end[(end < 0) & r.offtrack] = step
        if np.all((sim.laps >= cfg.laps) | (end >= 0)):
            extra += 1
            if extra > EXTRA_STEPS:
                break
    obs_a, pos_a, t_a = np.stack(obs), np.stack(pos), np.stack(times)
    rides, laps = [], []
    for i in range(cfg.rides):
        stop = len(obs_a) if end[i] < 0 else int(end[i])
        s_abs = pos_a[:stop, i]
        rides.append(Ride(track.name, vehicle, obs_a[:stop, i], np.mod(s_abs, track.length_m), s_abs - s_abs[0],
                          t_a[:stop, i], context(track, s_abs, veh), np.zeros(stop, bool)))
        first = 0
        for cross_step, lap_time in crossings[i]:
            laps.append((i, first, cross_step + 1, lap_time))
            first = cross_step + 1
    return rides, laps


def sim_dt() -> float:
    return 1.0 / load_schema().rate_hz


def log_rides(logs: Sequence[Path], *, track: str | None = None,
              vehicle: str = "roadsport") -> tuple[list[Ride], int]:
    """One ride per imported log, whose valid laps (rows not in a logging gap) are expert
    steps; and the number of valid laps added."""
    from motocoach.training.ridelogs.ingest import import_log
    from motocoach.training.vehicles import get_vehicle

    out, n_laps = [], 0
    for path in logs:
        tel = import_log(path, track=track, vehicle=vehicle).telemetry
        valid = np.array([lp.kind == "valid" for lp in tel.laps])
        keep = valid[tel.lap] & ~tel.gap
        if not keep.any():
            raise DatasetError(f"{path}: no valid lap to add to the expert set (laps: "
                               f"{', '.join(lp.kind for lp in tel.laps) or 'none'})")
        out.append(Ride(tel.track.name, vehicle, tel.features.astype(np.float32), tel.s, tel.progress, tel.t,
                        context(tel.track, tel.s, get_vehicle(vehicle)), keep, source="log"))
        n_laps += int(valid.sum())
    return out, n_laps


def build_expert_set(cfg: ExpertConfig = ExpertConfig(), *, real_data: Path | None = None,
                     logs: Sequence[Path] = (), log_track: str | None = None, log_vehicle: str = "roadsport",
                     progress: Progress | None = None) -> ExpertSet:
    """Ride, cut and rank the expert laps; add the logs' valid laps; split by track."""
    if not 0.0 < cfg.keep_fraction <= 1.0:
        raise ConfigError(f"keep_fraction must be in (0, 1], got {cfg.keep_fraction}")
    log_list = [Path(p) for p in logs]
    # logs first: a log that cannot be read fails before minutes of riding
    from_logs, log_laps = log_rides(log_list, track=log_track, vehicle=log_vehicle)
    names = track_names(cfg, real_data)
    rides: list[Ride] = []
    ridden = kept = 0
    per_track: dict[str, dict] = {}
    total = len(names) * len(cfg.vehicles)
    for ti, name in enumerate(names):
        track = resolve_track(name)
        for vi, vehicle in enumerate(cfg.vehicles):
            if progress:
                progress(f"riding {track.name} ({vehicle})", ti * len(cfg.vehicles) + vi, total)
            rs, laps = ride_laps(track, vehicle, cfg, seed=ride_seed(cfg.seed, track.name, vehicle))
            best = keep_fastest(rs, laps, cfg.keep_fraction)
            n_keep = len(best)
            rides += [r for r in rs if r.keep.any()]
            ridden, kept = ridden + len(laps), kept + n_keep
            per_track[f"{track.name}/{vehicle}"] = {
                "laps": len(laps), "kept": n_keep,
                "best_s": round(best[0][3], 3) if best else None,
                "kept_slowest_s": round(best[-1][3], 3) if best else None,
                "median_s": round(float(np.median([lap[3] for lap in laps])), 3) if laps else None}
    if progress:
        progress("riding done", total, total)
    rides += from_logs
    split = split_tracks([r.track for r in rides if r.source == "sim" and r.track.startswith("gen-")],
                         cfg.val_fraction)
    split["train"] = sorted(set(split["train"]) | {r.track for r in rides} - set(split["val"]))
    stats = {"laps_ridden": ridden, "laps_kept": kept, "keep_fraction": cfg.keep_fraction,
             "log_laps_added": log_laps,
             "logs": [str(p) for p in log_list], "per_track": per_track, "config": asdict(cfg)}
    return ExpertSet(rides, split, stats, expert_fingerprint(cfg, real_data, log_list, log_track, log_vehicle))


def keep_fastest(rides: list[Ride], laps: list[tuple[int, int, int, float]], fraction: float) -> list[tuple]:
    """Mark the steps of the fastest ``fraction`` of ``laps`` (at least one) as kept in their
    rides; returns those laps, fastest first."""
    n_keep = max(1, int(np.ceil(fraction * len(laps)))) if laps else 0
    best = sorted(laps, key=lambda lap: lap[3])[:n_keep]
    for i, a, b, _ in best:
        rides[i].keep[a:b] = True
    return best


def track_names(cfg: ExpertConfig, real_data: Path | None) -> list[str]:
    return [*cfg.tracks, *(calibration_tracks(real_data) if cfg.calibration else [])]


def expert_fingerprint(cfg: ExpertConfig, real_data: Path | None = None, logs: Sequence[Path] = (),
                       log_track: str | None = None, log_vehicle: str = "roadsport") -> str:
    """What :func:`build_expert_set` would build from these arguments, as a short hash."""
    extra = [*(n if n.startswith("gen-") else _file_key(n) for n in track_names(cfg, real_data)),
             *(_file_key(p) for p in logs), log_track or "", log_vehicle]
    return cfg.fingerprint(extra)


def _file_key(path) -> str:
    """A file by name and size, so the same data reached by another path is the same set."""
    p = Path(path)
    return f"{p.name}:{p.stat().st_size}" if p.is_file() else str(path)


def ride_seed(seed: int, track: str, vehicle: str) -> int:
    """The simulator seed of one (track, vehicle): the same whichever other tracks are ridden."""
    return int(hashlib.sha256(f"{seed}/{track}/{vehicle}".encode()).hexdigest()[:8], 16)


class WindowDataset:
    """A torch-style Dataset of (ride, step) windows, cut on demand from the rides' arrays.

    Item ``k`` is ``(history (H, F) normalized, context (C,), controls (K, 4) scaled,
    control mask (K,), sector (scaled), sector mask)``; :meth:`batch` returns the same for
    many indices at once (the training loop uses it; ``__getitem__`` serves a DataLoader).
    """

    def __init__(self, rides: Sequence[Ride], stride: int = 1) -> None:
        if not rides:
            raise DatasetError("no expert rides for this part of the split; ride more tracks")
        schema = load_schema()
        cols = target_columns()
        feats, ys, ctxs, secs, smask, steps, ends = [], [], [], [], [], [], []
        offset = 0
        for r in rides:
            x = schema.normalize(np.asarray(r.features, np.float32))
            pad = HISTORY_STEPS - 1
            feats.append(np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], HORIZON_STEPS, 0)]))
            y = np.asarray(r.features, np.float32)[:, cols] / TARGET_SCALE
            ys.append(np.concatenate([np.zeros((pad, y.shape[1]), np.float32), y,
                                      np.repeat(y[-1:], HORIZON_STEPS, 0)]))
            ctxs.append(np.concatenate([np.zeros((pad, r.context.shape[1]), np.float32), r.context,
                                        np.zeros((HORIZON_STEPS, r.context.shape[1]), np.float32)]))
            sec, ok = sector_time(r.progress, r.t)
            secs.append(np.concatenate([np.zeros(pad, np.float32), sec / SECTOR_SCALE_S, np.zeros(HORIZON_STEPS, np.float32)]))
            smask.append(np.concatenate([np.zeros(pad, bool), ok, np.zeros(HORIZON_STEPS, bool)]))
            local = np.flatnonzero(r.keep)
            local = local[local % stride == 0]
            steps.append(offset + pad + local)
            ends.append(np.full(len(local), offset + pad + len(x)))
            offset += len(feats[-1])
        self.x, self.y, self.ctx = np.concatenate(feats), np.concatenate(ys), np.concatenate(ctxs)
        self.sector, self.sector_ok = np.concatenate(secs), np.concatenate(smask)
        self.index, self.ride_end = np.concatenate(steps), np.concatenate(ends)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int):
        return tuple(a[0] for a in self.batch(np.array([k])))

    def batch(self, ks: np.ndarray) -> tuple[np.ndarray, ...]:
        g = self.index[ks]
        hist = self.x[g[:, None] + np.arange(-HISTORY_STEPS + 1, 1)[None, :]]
        fut = g[:, None] + np.arange(1, HORIZON_STEPS + 1)[None, :]
        mask = fut < self.ride_end[ks][:, None]          # the horizon may run past the ride's end
        return hist, self.ctx[g], self.y[fut], mask, self.sector[g], self.sector_ok[g]
