"""Files generated from a source of truth: find the stale ones, rewrite only what changed.

Every generator (schema/protocol headers, board files) returns ``{relative path: text}``;
these two functions are the one way the CLI verbs and the staleness tests compare and write them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping


def stale(files: Mapping[Path, str], root: Path) -> list[Path]:
    """Relative paths under ``root`` that are missing or differ from their generated text."""
    return [rel for rel, text in files.items()
            if not (root / rel).exists() or (root / rel).read_text() != text]


def write_changed(files: Mapping[Path, str], root: Path) -> list[Path]:
    """Write the stale files under ``root`` (creating folders); return their relative paths."""
    changed = stale(files, root)
    for rel in changed:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[rel])
    return changed
