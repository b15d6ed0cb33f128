"""Determinism of the generator, staleness of the committed factory model, manifest contents."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from motocoach.quantization import codegen
from motocoach.quantization.cbuild import CFLAGS, CORE_INC, ENGINE_DIR, REPO
from motocoach.schema import load_schema

COMMITTED = REPO / codegen.MODEL_DIR


def test_same_tflite_gives_byte_identical_files(tflite_bytes, generated, tmp_path):
    created = json.loads((generated / "manifest.json").read_text())["created"]
    again = codegen.render_all(tflite_bytes, created)
    for name, data in again.items():
        assert (generated / name).read_bytes() == data, f"{name} differs between two runs"
    assert sorted(again) == sorted(codegen.GENERATED)


def test_manifest_contents(generated, tflite_bytes):
    import hashlib

    man = json.loads((generated / "manifest.json").read_text())
    s = load_schema()
    for key in ("model_id", "model_sha256", "tflite_sha256", "schema_hash", "schema_hash32", "engine_version",
                "input", "output", "ops", "layers", "protocol", "firmware", "created", "golden"):
        assert key in man, key
    assert man["schema_hash"] == s.hash and man["schema_hash32"] == s.hash32
    assert man["tflite_sha256"] == hashlib.sha256(tflite_bytes).hexdigest()
    assert man["model_sha256"] == hashlib.sha256((generated / "default_model.cmb").read_bytes()).hexdigest()
    assert man["input"]["norm_scale"] == [float(v) for v in s.norm_scale]
    assert len(man["golden"]) == codegen.N_GOLDEN
    assert man["ops"] == ["FULLY_CONNECTED"] * 3 + ["LOGISTIC"]
    assert man["sizes"]["tflm_arena_bytes"] > 0
    header = (generated / "coach_manifest.h").read_text()
    assert f'COACH_MODEL_SHA256_HEX "{man["model_sha256"]}"' in header


def test_generated_c_compiles_strictly(generated, tmp_path):
    for src in ("coach_model_data.c", "model_tflite_data.c"):
        subprocess.run(["gcc", *CFLAGS, "-pedantic", "-c", f"-I{generated}", f"-I{ENGINE_DIR}", f"-I{CORE_INC}",
                        str(generated / src), "-o", str(tmp_path / (src + ".o"))], check=True)


def test_committed_factory_model_is_not_stale():
    """Regenerate from the committed .tflite (no onnx2tf) and compare every committed file."""
    tfl = COMMITTED / "default_model.tflite"
    if not tfl.exists():
        pytest.fail("no committed factory model in firmware/lib/coach_model; run `make models`")
    created = json.loads((COMMITTED / "manifest.json").read_text())["created"]
    fresh = codegen.render_all(tfl.read_bytes(), created)
    stale = [n for n, data in fresh.items() if (COMMITTED / n).read_bytes() != data]
    assert not stale, f"stale generated files: {stale}; run `motocoach codegen`"


def test_committed_model_comes_from_a_trained_policy():
    man = json.loads((COMMITTED / "manifest.json").read_text())
    assert man["created"].get("policy_sha256"), "the factory model must record the policy it came from"


def test_codegen_check_verb(generated, tmp_path):
    from motocoach.cli import main

    assert main(["codegen", "--tflite", str(generated / "default_model.tflite"), "--out", str(generated),
                 "--check"]) == 0
    (generated / "coach_model_data.c").write_text("/* edited */\n" + (generated / "coach_model_data.c").read_text())
    try:
        assert main(["codegen", "--tflite", str(generated / "default_model.tflite"), "--out", str(generated),
                     "--check"]) == 1
    finally:
        codegen.generate(generated / "default_model.tflite", generated,
                         created=json.loads((generated / "manifest.json").read_text())["created"])


def test_codegen_refuses_unsupported_model(tmp_path):
    from motocoach.cli import main

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all" * 10)
    assert main(["codegen", "--tflite", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_host_engine_from_committed_manifest_reproduces_golden():
    import numpy as np

    from motocoach.quantization.host_engine import HostEngine

    man = json.loads((COMMITTED / "manifest.json").read_text())
    eng = HostEngine.from_manifest(COMMITTED / "manifest.json")
    gin = np.array([g["in"] for g in man["golden"]], np.int8)
    gout = np.array([g["out"] for g in man["golden"]], np.int8)
    assert np.array_equal(eng.invoke(gin), gout)
    s = load_schema()
    q, actions = eng.predict(np.stack([s.feature_low, s.feature_high]))
    assert q.shape == (2, s.n_actions) and np.all((actions >= 0) & (actions <= 1))
