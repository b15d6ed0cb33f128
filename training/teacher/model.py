"""The teacher network: an encoder-decoder transformer built from ``torch.nn.Transformer``.

Encoder tokens: one context token (track ahead + vehicle, :func:`~.features.context`) followed
by the :data:`~.features.HISTORY_STEPS` telemetry steps, each a linear projection plus a
learned position embedding. Decoder: :data:`~.features.HORIZON_STEPS` learned query tokens,
one per future step, decoded in parallel (the whole second at once, no causal mask), then a
linear head to the :data:`~.features.TARGETS`. The performance head reads the encoder's
context token.

>>> import torch
>>> net = TeacherNet(TEACHER_PRESETS["small"])
>>> ctl, sector = net(torch.zeros(2, HISTORY_STEPS, n_telemetry()), torch.zeros(2, N_CONTEXT))
>>> tuple(ctl.shape), tuple(sector.shape)
((2, 20, 4), (2,))
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from motocoach.errors import ConfigError
from motocoach.training.teacher.features import (HISTORY_STEPS, HORIZON_STEPS, N_CONTEXT, TARGETS,
                                                 n_telemetry)


@dataclass(frozen=True)
class TeacherPreset:
    """Sizes of one teacher."""

    d_model: int
    nhead: int
    encoder_layers: int
    decoder_layers: int
    dim_feedforward: int
    dropout: float = 0.1


TEACHER_PRESETS: dict[str, TeacherPreset] = {
    # tests and the demo: trains in minutes on two CPU cores
    "small": TeacherPreset(d_model=64, nhead=4, encoder_layers=2, decoder_layers=2, dim_feedforward=128),
    # the reference design's sizes (d_model 256, 6+6 layers); docs/teacher.md gives its parameter count
    "reference": TeacherPreset(d_model=256, nhead=8, encoder_layers=6, decoder_layers=6, dim_feedforward=512),
}


def get_teacher_preset(name: str) -> TeacherPreset:
    if name not in TEACHER_PRESETS:
        raise ConfigError(f"unknown teacher preset {name!r}; use one of {', '.join(TEACHER_PRESETS)}")
    return TEACHER_PRESETS[name]


class TeacherNet(nn.Module):
    """``net(history (B, H, F), context (B, C))`` -> (controls (B, K, len(TARGETS)), sector (B,)),
    all in the scaled units of :mod:`~.features`."""

    def __init__(self, preset: TeacherPreset, n_features: int | None = None) -> None:
        super().__init__()
        d = preset.d_model
        self.preset = preset
        self.tel_in = nn.Linear(n_features or n_telemetry(), d)
        self.ctx_in = nn.Linear(N_CONTEXT, d)
        self.src_pos = nn.Parameter(torch.randn(1, HISTORY_STEPS + 1, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, HORIZON_STEPS, d) * 0.02)
        with warnings.catch_warnings():   # pre-norm layers cannot use nested tensors: torch says so
            warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
            self.transformer = nn.Transformer(
                d_model=d, nhead=preset.nhead, num_encoder_layers=preset.encoder_layers,
                num_decoder_layers=preset.decoder_layers, dim_feedforward=preset.dim_feedforward,
                dropout=preset.dropout, batch_first=True, norm_first=True)
        self.control_head = nn.Linear(d, len(TARGETS))
        self.sector_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))

    def forward(self, history: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        src = torch.cat([self.ctx_in(context)[:, None], self.tel_in(history)], dim=1) + self.src_pos
        memory = self.transformer.encoder(src)
        out = self.transformer.decoder(self.queries.expand(len(history), -1, -1), memory)
        return self.control_head(out), self.sector_head(memory[:, 0]).squeeze(-1)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def save_teacher(net: TeacherNet, path: Path, extra: dict | None = None) -> Path:
    """Weights plus the preset, so :func:`load_teacher` needs nothing else."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"preset": asdict(net.preset), "state_dict": net.state_dict(), "extra": extra or {}}, path)
    return path


def load_teacher(path: Path) -> tuple[TeacherNet, dict]:
    """(net in eval mode, extra) from :func:`save_teacher`; a clear error for anything else."""
    from motocoach.errors import DatasetError

    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        net = TeacherNet(TeacherPreset(**blob["preset"]))
        net.load_state_dict(blob["state_dict"])
    except FileNotFoundError as e:
        raise DatasetError(f"no teacher at {path}; train one with `motocoach teacher train`") from e
    except Exception as e:   # torch raises many types for a file that is not a teacher
        raise DatasetError(f"{path} is not a teacher checkpoint ({type(e).__name__}: {e})") from e
    return net.eval(), blob.get("extra", {})
