"""Cue labels from the teacher, without privileged information.

:class:`TeacherCoach` is a coach usable wherever the privileged
:class:`~motocoach.training.coach.ExpertCoach` is (``coach(sim) -> actions (n, 3)``), but it
reads only what the unit and a logger have: the rides' telemetry (``sim.observe()``, kept as
a rolling 2 s history), the lap position on the track model (``sim.s``), the ride clock
(``sim.t``, to notice a restarted ride) and the vehicle profile the rider names. Never the
rider's plan, confidence, grip, perception delay or the pro reference.

Each step it batch-predicts the expert's next second for every ride and turns the
expert-minus-rider gap into the cue language (:class:`~motocoach.training.coach.CueEncoder`),
first match wins (thresholds in :class:`TeacherRules`):

1. the expert's predicted speed within :attr:`TeacherRules.look_steps` falls well below the
   rider's speed now while the expert brakes harder than the rider, or friction usage is
   already high -> both motors, high frequency (brake / slow);
2. off the racing line near an apex (telemetry ``line_deviation``, ``dist_to_apex``) -> the
   motor on the side to correct towards, as the telemetry rule coach does;
3. the expert's predicted speed is above the rider's and the expert is on more throttle, with
   grip to spare, near the line, the rider braking gently or held on part throttle
   (:func:`~motocoach.training.coach.held_back`) -> both motors, low frequency (carry speed);
4. otherwise silence.

:func:`label_ride` applies the same rule offline to a logged ride (a simulated ride, or an
imported log through :func:`label_log`): on the same telemetry it gives the same actions as
the live coach.

>>> import numpy as np
>>> from motocoach.training.teacher.model import TEACHER_PRESETS, TeacherNet
>>> from motocoach.training.teacher.predict import Teacher
>>> from motocoach.training.tracks import get_track
>>> from motocoach.training.vehicles import get_vehicle
>>> t = Teacher(TeacherNet(TEACHER_PRESETS["small"]))
>>> feats = np.tile(np.float32([30, 0, 0, 80, 0.5, 0, 0, 0.3]), (6, 1))
>>> label_ride(t, feats, np.arange(6.0) * 1.5, get_track("kestrel"), get_vehicle("roadsport")).shape
(6, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from motocoach.errors import SchemaError
from motocoach.schema import load_schema
from motocoach.training.coach import CoachRules, CueEncoder, held_back
from motocoach.training.teacher.features import HISTORY_STEPS, TARGETS, context
from motocoach.training.teacher.predict import Teacher
from motocoach.training.tracks import Track
from motocoach.training.vehicles import VehicleProfile


@dataclass(frozen=True)
class TeacherRules:
    """Thresholds of the teacher's labels (see the module docstring). Chosen on the training
    tracks with seeds the comparison never rides (docs/teacher.md, "Labels")."""

    look_steps: int = 10              # compare over the expert's next 0.5 s (of the 1 s predicted)
    slow_speed_ratio: float = 0.93    # expert's lowest speed ahead below 0.93 x the rider's now ...
    slow_brake_margin: float = 0.10   # ... while braking harder than the rider by this -> slow cue
    slow_usage: float = 0.92          # friction usage above this -> slow cue
    push_speed_ratio: float = 1.02    # expert's mean speed ahead above 1.02 x the rider's ...
    push_throttle_margin: float = 0.15  # ... on this much more throttle than the rider -> carry-speed cue
    #: line window, line error, push usage/line limits, held_back and the cue shapes
    cues: CoachRules = field(default_factory=CoachRules)


def _columns() -> dict[str, int]:
    return {n: i for i, n in enumerate(load_schema().feature_names)}


def gap_cues(controls: np.ndarray, telemetry: np.ndarray, rules: TeacherRules,
             encode: CueEncoder | None = None) -> np.ndarray:
    """Actions (T, 3) from the expert's predicted controls (T, K, len(TARGETS)) in physical units
    and the rider's telemetry (T, F) at the same steps (the rule of the module docstring)."""
    col, r = _columns(), rules.cues
    look = controls[:, :rules.look_steps]
    ev = look[:, :, TARGETS.index("speed")]
    eb = look[:, :, TARGETS.index("brake")]
    et = look[:, :, TARGETS.index("throttle")]
    v, brk, thr = (telemetry[:, col[n]] for n in ("speed", "brake", "throttle"))
    usage, dev = telemetry[:, col["friction_usage"]], telemetry[:, col["line_deviation"]]
    near_apex = telemetry[:, col["dist_to_apex"]] < r.line_window_m
    slow = (((ev.min(axis=1) < rules.slow_speed_ratio * v) & (eb.max(axis=1) > brk + rules.slow_brake_margin))
            | (usage > rules.slow_usage))
    side = ~slow & near_apex & (np.abs(dev) > r.line_error_m)
    push = (~slow & ~side & (ev.mean(axis=1) > rules.push_speed_ratio * v)
            & (et.mean(axis=1) > thr + rules.push_throttle_margin)
            & (usage < r.push_max_usage) & (np.abs(dev) < r.push_max_line_m) & held_back(r, brk, thr))
    return (encode or CueEncoder(r))(slow, side, dev, push)


def label_ride(teacher: Teacher, features: np.ndarray, s: np.ndarray, track: Track, vehicle: VehicleProfile,
               rules: TeacherRules = TeacherRules()) -> np.ndarray:
    """(T, 3) cue labels for one logged ride: physical telemetry (T, F) at 20 Hz and its lap
    positions ``s`` (T,) m on ``track``; the same rule as :class:`TeacherCoach` live."""
    features = np.asarray(features, dtype=np.float32)
    n_feat = load_schema().n_features
    if features.ndim != 2 or features.shape[1] != n_feat:
        raise SchemaError(f"telemetry of shape {features.shape} does not fit the schema ({n_feat} features per row)")
    if len(s) != len(features):
        raise SchemaError(f"{len(features)} telemetry rows but {len(s)} lap positions; give one position per row")
    if len(features) == 0:
        return np.zeros((0, 3), dtype=np.float32)
    pred = teacher.predict_ride(features, np.asarray(s, dtype=np.float64), track, vehicle)
    return gap_cues(pred.controls, features, rules)


def label_log(teacher: Teacher, telemetry, vehicle: VehicleProfile,
              rules: TeacherRules = TeacherRules()) -> np.ndarray:
    """(T, 3) cue labels for an imported log (a
    :class:`~motocoach.training.ridelogs.telemetry.LogTelemetry`: 20 Hz features, lap positions
    and the track it was map-matched to) ridden on ``vehicle``."""
    return label_ride(teacher, telemetry.features, telemetry.s, telemetry.track, vehicle, rules)


class TeacherCoach:
    """The teacher as a live coach in a :class:`~motocoach.training.sim.RideSim`.

    Args:
        teacher: a trained teacher (:meth:`Teacher.load`).
        track: the track model the rides are map-matched to.
        rules: label thresholds.

    ``coach(sim)`` reads ``sim.observe()``, ``sim.s``, ``sim.t``, ``sim.n`` and ``sim.vehicle``
    only, and keeps each ride's last :data:`HISTORY_STEPS` telemetry rows; a ride whose clock
    went back (a restart) starts a new history, padded with its first row as
    :func:`~motocoach.training.teacher.features.history` does offline.
    """

    def __init__(self, teacher: Teacher, track: Track, rules: TeacherRules = TeacherRules()) -> None:
        self.teacher, self.track, self.rules = teacher, track, rules
        self.encode = CueEncoder(rules.cues)
        self.schema = load_schema()
        self._hist: np.ndarray | None = None     # (n, HISTORY_STEPS, F) normalized
        self._t: np.ndarray | None = None

    def __call__(self, sim) -> np.ndarray:
        obs = sim.observe()
        x = self.schema.normalize(obs)
        t = np.asarray(sim.t, dtype=np.float64).copy()
        if self._hist is None or len(self._hist) != sim.n:
            self._hist = np.repeat(x[:, None], HISTORY_STEPS, axis=1)
        else:
            restart = t < self._t
            self._hist = np.concatenate([self._hist[:, 1:], x[:, None]], axis=1)
            self._hist[restart] = x[restart, None]
        self._t = t
        ctx = context(self.track, sim.s, sim.vehicle)
        # One thread: a batch of a few dozen windows gains nothing from more, and on busy
        # shared cores extra threads spin against other processes (as in training/train.py).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            pred = self.teacher.predict_windows(self._hist, ctx)
        finally:
            torch.set_num_threads(threads)
        return gap_cues(pred.controls, obs, self.rules, self.encode)
