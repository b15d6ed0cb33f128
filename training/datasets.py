"""Minari datasets of simulated rides: pro laps and expert-coached amateur laps.

:func:`generate` rides the simulator (batched) and writes real Minari datasets with
``minari.create_dataset_from_buffers`` under ``root`` (``MINARI_DATASETS_PATH``):

* ``motocoach/pro-v0``: pro laps, no cues (actions all zero);
* ``motocoach/amateur-coached-v0``: amateur laps with the expert coach's cues applied; the
  actions are the expert labels behaviour cloning learns from.

Every step's ``infos`` records the rider's own controls (throttle, brake, lateral
correction, confidence, attention), the track position and the track index into the
dataset's ``tracks`` list (written in the description). Seeds are deterministic.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from motocoach.errors import DatasetError
from motocoach.schema import load_schema
from motocoach.training.coach import ExpertCoach
from motocoach.training.riders import get_rider
from motocoach.training.sim import RideSim
from motocoach.training.tracks import get_track

TRAIN_TRACKS = ("kestrel", "heron", "osprey")
HELDOUT_TRACKS = ("falcon", "merlin")
TRAIN_RIDERS = ("pro", "amateur")
HELDOUT_RIDERS = ("novice", "weekend")
DATASET_IDS = ("motocoach/pro-v0", "motocoach/amateur-coached-v0")
#: track -> coach of a dataset's coached rides (``coach(sim) -> actions (n, 3)``)
CoachFactory = Callable[..., Callable[[RideSim], np.ndarray]]


@dataclass(frozen=True)
class DataPreset:
    """How much data to generate: rides per track and the step cap per ride."""

    tracks: tuple[str, ...]
    rides_per_track: int
    max_steps: int


PRESETS: dict[str, DataPreset] = {
    "test": DataPreset(("kestrel",), 2, 300),
    "demo": DataPreset(TRAIN_TRACKS, 6, 3200),
    "default": DataPreset(TRAIN_TRACKS, 24, 3200),
}


@contextlib.contextmanager
def minari_root(root: Path) -> Iterator[None]:
    """Point Minari at ``root`` for the duration of the block."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def ride_episodes(track: str, rider: str, rides: int, max_steps: int, seed: int,
                  coached: bool, track_index: int, coach_factory: CoachFactory | None = None) -> list:
    """Ride ``rides`` laps in parallel; one Minari EpisodeBuffer per ride. ``coach_factory(track)``
    makes the coach of coached rides (default the privileged :class:`ExpertCoach`)."""
    from minari.data_collector import EpisodeBuffer

    sim = RideSim(get_track(track), get_rider(rider), n=rides, seed=seed)
    coach = (coach_factory or ExpertCoach)(sim.track) if coached else None
    obs = [sim.observe()]
    acts, rews, terms, truncs = [], [], [], []
    infos: dict[str, list] = {}

    def record_info() -> None:
        ctrl = sim.rider_controls()
        ctrl["track_position_m"] = np.mod(sim.s, sim.length)
        ctrl["track_index"] = np.full(rides, track_index, dtype=np.int64)
        for k, v in ctrl.items():
            infos.setdefault(k, []).append(v.copy())

    record_info()
    alive = np.ones(rides, dtype=bool)
    ends = np.full(rides, max_steps, dtype=np.int64)
    for t in range(max_steps):
        a = coach(sim) if coach else np.zeros((rides, 3), dtype=np.float32)
        r = sim.step(a)
        acts.append(a.astype(np.float32))
        rews.append(r.reward)
        done = alive & (r.offtrack | (sim.laps >= 1))
        terms.append(done.copy())
        truncs.append(np.zeros(rides, dtype=bool))
        obs.append(sim.observe())
        record_info()
        ends[done] = t + 1
        alive &= ~done
        if not alive.any():
            break
    episodes = []
    for i in range(rides):
        n = int(ends[i])
        trunc = np.array([x[i] for x in truncs[:n]])
        term = np.array([x[i] for x in terms[:n]])
        if not term[-1]:
            trunc[-1] = True
        episodes.append(EpisodeBuffer(
            seed=seed, observations=np.stack([o[i] for o in obs[:n + 1]]),
            actions=np.stack([x[i] for x in acts[:n]]), rewards=[float(x[i]) for x in rews[:n]],
            terminations=list(term), truncations=list(trunc),
            infos={k: np.stack([x[i] for x in v[:n + 1]]) for k, v in infos.items()}))
    return episodes


def ride_seed(seed: int, job: int, track_index: int) -> int:
    """The simulator seed of dataset ``job`` (0 = pro, 1 = coached amateur) on one track."""
    return seed * 1000 + job * 100 + track_index


def write_dataset(ds_id: str, episodes: list, *, rider: str, algorithm: str, preset: str, seed: int,
                  tracks: tuple[str, ...]) -> None:
    """Replace ``ds_id`` under the current Minari root with ``episodes``."""
    import minari
    from minari.storage import get_dataset_path

    from motocoach.training.envs import action_space, observation_space

    path = get_dataset_path(ds_id)
    if path.exists():
        import shutil
        shutil.rmtree(path)
    with warnings.catch_warnings():   # no author e-mail / eval env: by design
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id=ds_id, buffer=episodes, env="MotoCoach-v0",
            observation_space=observation_space(), action_space=action_space(),
            algorithm_name=algorithm,
            author="moto-edge-coach", code_permalink="training/datasets.py",
            description=(f"{rider} rides, preset {preset}, seed {seed}, tracks "
                         f"{list(tracks)} (infos.track_index), schema {load_schema().hash}"))


def generate(root: Path, *, preset: str = "demo", seed: int = 0, progress: bool = True) -> list[str]:
    """Write the Minari datasets of ``preset`` under ``root``; return their ids.

    Existing datasets with the same ids under ``root`` are replaced.
    """
    if preset not in PRESETS:
        raise DatasetError(f"unknown data preset {preset!r}; use one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    jobs = [(ds_id, rider, coached) for ds_id, rider, coached in
            (("motocoach/pro-v0", "pro", False), ("motocoach/amateur-coached-v0", "amateur", True))]
    from rich.progress import Progress

    with minari_root(root), Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("riding", total=len(jobs) * len(p.tracks))
        for j, (ds_id, rider, coached) in enumerate(jobs):
            episodes = []
            for t_i, track in enumerate(p.tracks):
                bar.update(task, description=f"{ds_id}: {track}")
                episodes += ride_episodes(track, rider, p.rides_per_track, p.max_steps,
                                           seed=ride_seed(seed, j, t_i), coached=coached,
                                           track_index=t_i)
                bar.advance(task)
            write_dataset(ds_id, episodes, rider=rider, algorithm="expert-coach" if coached else "no-coach",
                          preset=preset, seed=seed, tracks=p.tracks)
    return [j[0] for j in jobs]


def load_dataset(root: Path, dataset_id: str):
    """``minari.load_dataset`` under ``root`` with a clear error when it is missing."""
    import minari

    with minari_root(root):
        try:
            return minari.load_dataset(dataset_id)
        except Exception as e:  # minari raises FileNotFoundError / ValueError variants
            raise DatasetError(f"cannot load dataset {dataset_id} under {root}: {e}; "
                               "create it with `motocoach data generate`") from e


def local_dataset_ids(root: Path) -> list[str]:
    import minari

    with minari_root(root):
        return sorted(minari.list_local_datasets().keys())


def load_transitions(root: Path, dataset_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(observations (N, n_features), actions (N, n_actions)) of every step of the datasets."""
    obs, acts = [], []
    for ds_id in dataset_ids:
        ds = load_dataset(root, ds_id)
        for ep in ds.iterate_episodes():
            obs.append(np.asarray(ep.observations[:-1], dtype=np.float32))
            acts.append(np.asarray(ep.actions, dtype=np.float32))
    if not obs:
        raise DatasetError(f"datasets {dataset_ids} under {root} hold no episodes")
    return np.concatenate(obs), np.concatenate(acts)


def load_telemetry(root: Path, dataset_ids: list[str] | None = None) -> np.ndarray:
    """(N, n_features) float32 physical telemetry from ALL observations of the datasets."""
    ids = dataset_ids if dataset_ids is not None else local_dataset_ids(root)
    if not ids:
        raise DatasetError(f"no Minari datasets under {root}; run `motocoach data generate`")
    n = load_schema().n_features
    out = []
    for ds_id in ids:
        ds = load_dataset(root, ds_id)
        for ep in ds.iterate_episodes():
            o = np.asarray(ep.observations, dtype=np.float32)
            if o.ndim != 2 or o.shape[1] != n:
                raise DatasetError(f"{ds_id}: observations of shape {o.shape} do not fit the schema ({n} features)")
            out.append(o)
    return np.concatenate(out)
