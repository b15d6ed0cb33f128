"""Running a trained teacher: on a whole ride (analysis, labels) or on a batch of live windows
(a coach inside the simulator). Outputs are in physical units.

>>> import numpy as np
>>> from motocoach.training.teacher.model import TEACHER_PRESETS, TeacherNet
>>> from motocoach.training.tracks import get_track
>>> from motocoach.training.vehicles import get_vehicle
>>> t = Teacher(TeacherNet(TEACHER_PRESETS["small"]).eval())
>>> p = t.predict_ride(np.zeros((5, 8), np.float32), np.arange(5.0), get_track("kestrel"), get_vehicle("roadsport"))
>>> p.controls.shape, p.sector_s.shape
((5, 20, 4), (5,))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motocoach.training.teacher.features import (SECTOR_SCALE_S, TARGET_SCALE, TARGETS, context,
                                                 history)
from motocoach.training.teacher.model import load_teacher

BATCH = 2048


@dataclass
class Prediction:
    """``controls[t, k, j]``: the expert's ``TARGETS[j]`` at step t+1+k; ``sector_s[t]``: the
    expert's time over the next SECTOR_M metres from step t."""

    controls: np.ndarray
    sector_s: np.ndarray

    def channel(self, name: str) -> np.ndarray:
        return self.controls[:, :, TARGETS.index(name)]


class Teacher:
    """A trained :class:`~.model.TeacherNet` with its checkpoint metadata (``extra``)."""

    def __init__(self, net, extra: dict | None = None) -> None:
        self.net, self.extra = net.eval(), extra or {}

    @property
    def tracks(self) -> set[str]:
        """Every track the checkpoint says the teacher trained or validated on: its ``split``
        (``train``/``val`` lists, as ``train_teacher`` writes) and any top-level ``*track*`` list."""
        lists = [v for k, v in self.extra.items() if "track" in str(k).lower() and isinstance(v, (list, tuple))]
        split = self.extra.get("split")
        if isinstance(split, dict):
            lists += [v for v in split.values() if isinstance(v, (list, tuple))]
        return {Path(str(x)).stem for names in lists for x in names}

    @classmethod
    def load(cls, path: str | Path) -> "Teacher":
        net, extra = load_teacher(Path(path))
        return cls(net, extra)

    def predict_windows(self, hist: np.ndarray, ctx: np.ndarray) -> Prediction:
        """Normalized history windows (B, H, F) and contexts (B, C) -> physical predictions."""
        import torch

        ctl, sec = [], []
        with torch.no_grad():
            for i in range(0, len(hist), BATCH):
                c, s = self.net(torch.as_tensor(hist[i:i + BATCH]), torch.as_tensor(ctx[i:i + BATCH]))
                ctl.append(c.numpy())
                sec.append(s.numpy())
        controls = np.concatenate(ctl) * TARGET_SCALE if ctl else np.zeros((0, 0, len(TARGETS)))
        return Prediction(controls.astype(np.float32),
                          (np.concatenate(sec) * SECTOR_SCALE_S).astype(np.float32) if sec else np.zeros(0))

    def predict_ride(self, features: np.ndarray, s: np.ndarray, track, vehicle) -> Prediction:
        """Physical telemetry (T, F) of one ride, its lap positions (T,) m on ``track``."""
        return self.predict_windows(history(features), context(track, s, vehicle))
