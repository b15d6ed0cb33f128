"""Minari datasets from ride logs, so behaviour cloning can learn from real riders.

One episode per lap (valid laps only unless asked otherwise). Observations are the 20 Hz
schema telemetry; actions are all zero (nobody cued the rider), as in the simulator's
``motocoach/pro-v0``; rewards are the simulator's progress term (metres per step over
``V_REF x DT``). Every step's ``infos`` records the rider's own controls (throttle, brake),
the track position, the offset from the line and the log time; the description says which
controls were measured and which estimated.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from motocoach.errors import DatasetError
from motocoach.schema import load_schema
from motocoach.training.ridelogs.telemetry import LogTelemetry


def dataset_id_for(stem: str) -> str:
    """``motocoach/log-<stem>-v0`` with the stem made safe for a Minari id."""
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "ride"
    return f"motocoach/log-{slug}-v0"


def lap_episodes(tel: LogTelemetry, kinds: tuple[str, ...] = ("valid",)) -> list:
    """One Minari EpisodeBuffer per lap of ``tel`` whose kind is in ``kinds``."""
    from minari.data_collector import EpisodeBuffer

    from motocoach.training.sim import DT, V_REF

    schema = load_schema()
    eps = []
    for lp in tel.laps:
        if lp.kind not in kinds:
            continue
        rows = np.flatnonzero(tel.lap == lp.index)
        if len(rows) < 3:
            continue
        obs = tel.features[rows].astype(np.float32)
        n = len(rows) - 1
        prog = np.diff(tel.progress[rows])
        term = [False] * n
        term[-1] = True
        eps.append(EpisodeBuffer(
            observations=obs, actions=np.zeros((n, schema.n_actions), np.float32),
            rewards=(prog / (V_REF * DT)).tolist(), terminations=term, truncations=[False] * n,
            infos={"throttle": tel.column("throttle")[rows].astype(np.float64),
                   "brake": tel.column("brake")[rows].astype(np.float64),
                   "track_position_m": tel.s[rows], "line_deviation_m": tel.column("line_deviation")[rows].astype(np.float64),
                   "time_s": tel.t[rows], "lap_index": np.full(len(rows), lp.index, np.int64)}))
    return eps


def write_log_dataset(tel: LogTelemetry, root: Path, dataset_id: str, *, source: str = "",
                      all_laps: bool = False) -> str:
    """Write the laps of ``tel`` as the Minari dataset ``dataset_id`` under ``root`` (replacing it)."""
    import shutil

    import minari
    from minari.storage import get_dataset_path

    from motocoach.training.datasets import minari_root
    from motocoach.training.envs import action_space, observation_space

    kinds = ("outlap", "valid", "cut", "inlap") if all_laps else ("valid",)
    eps = lap_episodes(tel, kinds)
    if not eps:
        raise DatasetError(f"{source or 'the log'}: no {'laps' if all_laps else 'valid laps'} to write; "
                           "see the quality report (laps found and why they do not count)")
    measured = [c for c in ("throttle", "brake") if c not in tel.estimated]
    with minari_root(root):
        path = get_dataset_path(dataset_id)
        if path.exists():
            shutil.rmtree(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            minari.create_dataset_from_buffers(
                dataset_id=dataset_id, buffer=eps, env="MotoCoach-v0", observation_space=observation_space(),
                action_space=action_space(), algorithm_name="logged-rider", author="moto-edge-coach",
                code_permalink="training/ridelogs/dataset.py",
                description=(f"laps of the ride log {source}; actions all zero (no cues); rider controls in infos: "
                             f"measured {measured or 'none'}, estimated {[c for c in ('throttle', 'brake') if c in tel.estimated]}; "
                             f"track {getattr(tel.track, 'name', '')}; schema {load_schema().hash}"))
    return dataset_id
