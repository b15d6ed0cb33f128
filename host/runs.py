"""Run folders: ``runs/<name>/`` holds a config snapshot, logs and artifacts of one job.

``runs/`` is git-ignored. Every long job (data generation, training, quantization, demo)
writes into one, so a result can always be traced to the config that made it.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     run = RunDir.create("demo", root=d, config={"seed": 1})
...     sorted(p.name for p in run.path.iterdir())
['config.json', 'logs']
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from motocoach.errors import ConfigError

DEFAULT_ROOT = Path(os.environ.get("MOTOCOACH_RUNS", "runs"))


@dataclass(frozen=True)
class RunDir:
    """One run folder. Use :meth:`create` (new or existing) or :meth:`open` (must exist)."""

    path: Path

    @classmethod
    def create(cls, name: str, root: str | Path | None = None,
               config: dict[str, Any] | None = None) -> "RunDir":
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"run name {name!r} must be a plain folder name, e.g. 'demo'")
        path = Path(root if root is not None else DEFAULT_ROOT) / name
        (path / "logs").mkdir(parents=True, exist_ok=True)
        run = cls(path)
        if config is not None:
            run.write_json("config.json", {
                "config": config,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
            })
        return run

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        p = Path(path)
        if not p.is_dir():
            raise ConfigError(f"run folder {p} does not exist; create it with the command that makes it")
        return cls(p)

    def file(self, rel: str) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, rel: str, data: Any) -> Path:
        p = self.file(rel)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(p)  # atomic: a crash never leaves half a JSON file
        return p

    def read_json(self, rel: str) -> Any:
        p = self.path / rel
        try:
            return json.loads(p.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"{p} is missing; run the step that writes it first") from e
