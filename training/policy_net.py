"""The coaching actor: the one network architecture that BC, PPO, export and the MCU share.

``normalized telemetry (n_features) -> 64 -> ReLU -> 64 -> ReLU -> n_actions -> sigmoid``

* Input: :meth:`FeatureSchema.normalize` of physical telemetry (each feature in [-1, 1]).
* Output: normalized actions in [0, 1]; :meth:`FeatureSchema.actions_to_physical` maps them
  to intensity and Hz. The sigmoid is part of the network, so BC, the PPO mean action
  and the int8 model (FULLY_CONNECTED x3 + LOGISTIC) are the same function.

Artifact on disk (``policy.pt``): ``{"state_dict", "arch", "schema_hash"}`` written by
:func:`save_actor`, read by :func:`load_actor`, which refuses a policy trained for
another feature schema.

>>> import torch
>>> net = CoachActor()
>>> tuple(net(torch.zeros(2, 8)).shape)
(2, 3)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from motocoach.errors import ConfigError
from motocoach.schema import load_schema

HIDDEN: tuple[int, ...] = (64, 64)


class CoachActor(nn.Module):
    """Deterministic actor. Parameters: n_in/n_out default to the schema, hidden to (64, 64).

    ``self.body`` holds the Linear/ReLU stack and ``self.head`` the last Linear; the
    sigmoid is applied in :meth:`forward`. PPO reuses ``body`` as its policy latent net
    and ``head`` (+ sigmoid) as its action net, so weights move between them unchanged.
    """

    def __init__(self, n_in: int | None = None, n_out: int | None = None,
                 hidden: Sequence[int] = HIDDEN) -> None:
        super().__init__()
        s = load_schema()
        self.n_in = n_in or s.n_features
        self.n_out = n_out or s.n_actions
        self.hidden = tuple(hidden)
        layers: list[nn.Module] = []
        width = self.n_in
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, self.n_out)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid outputs: the int8 model's LOGISTIC input, so their range sets its scale."""
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    def arch(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "hidden": list(self.hidden),
                "activation": "relu", "head": "sigmoid"}


def save_actor(actor: CoachActor, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``policy.pt`` with the weights, architecture and schema hash."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": actor.state_dict(), "arch": actor.arch(),
                "schema_hash": load_schema().hash, "extra": extra or {}}, p)
    return p


def load_actor(path: str | Path) -> CoachActor:
    """Load a ``policy.pt``; refuse one trained for another feature schema."""
    p = Path(path)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ConfigError(f"policy {p} not found; train one with `motocoach train`") from e
    except Exception as e:
        raise ConfigError(f"{p} is not a motocoach policy file: {e}") from e
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise ConfigError(f"{p} is not a motocoach policy file (no state_dict)")
    if blob.get("schema_hash") != load_schema().hash:
        raise ConfigError(f"{p} was trained for another feature schema "
                          f"({str(blob.get('schema_hash'))[:12]}...); retrain it")
    a = blob["arch"]
    actor = CoachActor(a["n_in"], a["n_out"], a["hidden"])
    actor.load_state_dict(blob["state_dict"])
    return actor.eval()
