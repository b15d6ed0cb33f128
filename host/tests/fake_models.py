"""A stand-in model blob + manifest for bundle and update tests that never run the model."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from motocoach.protocol import spec
from motocoach.schema import load_schema


def make_model(d: Path, size: int = 3000, schema_hash: str | None = None, model_id: str = "test-model") -> Path:
    """Write ``m.cmb`` (random bytes) and the ``manifest.json`` a bundle needs beside it; return the blob path."""
    blob = os.urandom(size)
    (d / "m.cmb").write_bytes(blob)
    (d / "manifest.json").write_text(json.dumps({
        "model_id": model_id, "model_sha256": hashlib.sha256(blob).hexdigest(),
        "schema_hash": schema_hash or load_schema().hash, "schema_hash32": 0, "engine_version": 1,
        "protocol": {"min": spec.PROTOCOL_MIN, "max": spec.PROTOCOL_MAX}}))
    return d / "m.cmb"
