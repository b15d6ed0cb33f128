"""Append-only audit log of field operations (JSON lines, one per operation).

Every ``device update`` / ``device rollback`` (and refusals) adds one line::

    {"time": "...Z", "operation": "update", "device": {...}, "before": {...}, "after": {...},
     "bundle_sha256": "...", "result": "ok" | "refused" | "failed" | "dry-run", "detail": "...",
     "warnings": [...]}

Lines are appended with O_APPEND and fsync'd before the command reports success, so a log a
technician hands in holds every operation up to the last one, even after a crash or power loss.

>>> import tempfile, pathlib
>>> log = AuditLog(pathlib.Path(tempfile.mkdtemp()) / "audit.jsonl")
>>> _ = log.append(operation="update", device={"board": "esp32dev"}, result="refused", detail="wrong board")
>>> [e["result"] for e in log.entries()]
['refused']
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from motocoach.errors import ConfigError

#: Default location: MOTOCOACH_AUDIT_LOG, else a per-user data file.
ENV_VAR = "MOTOCOACH_AUDIT_LOG"
RESULTS = ("ok", "refused", "failed", "dry-run")


def default_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "motocoach" / "audit.jsonl"


class AuditLog:
    """An append-only JSON-lines file.

    Args:
        path: the log file; created (with its folder) on the first append.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    def append(self, *, operation: str, device: dict[str, Any], result: str,
               before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
               bundle_sha256: str | None = None, detail: str = "",
               warnings: list[str] | None = None) -> dict[str, Any]:
        """Write one entry durably (write + fsync) and return it. ``warnings``: what the
        technician was warned about (e.g. the unit trusts the public development key)."""
        if result not in RESULTS:
            raise ValueError(f"result must be one of {RESULTS}")
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "operation": operation, "device": device, "before": before, "after": after,
                 "bundle_sha256": bundle_sha256, "result": result, "detail": detail,
                 "warnings": list(warnings or [])}
        line = (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a crash tore the last line: start a fresh one
                os.write(fd, line)  # one write of one line: O_APPEND keeps concurrent writers whole
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise ConfigError(f"cannot write the audit log {self.path}: {e.strerror}; "
                              f"set {ENV_VAR} or --audit-log to a writable file") from None
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """All entries, oldest first. A torn last line (crash mid-write) is skipped, not fatal."""
        if not self.path.exists():
            return []
        out = []
        for raw in self.path.read_text(errors="replace").splitlines():
            try:
                e = json.loads(raw)
            except ValueError:
                continue
            if isinstance(e, dict):
                out.append(e)
        return out
