"""A short libFuzzer run of the stream decoder with ASan/UBSan (the long run is in `make bench`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Locally a missing tool skips (saying what installs it); in CI it must fail, since `make setup`
# installs every tool there.
IN_CI = bool(os.environ.get("CI"))

FIRMWARE = Path(__file__).resolve().parents[1]


def make(*targets: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(FIRMWARE), *targets], capture_output=True, text=True,
                          timeout=timeout)


REPO = FIRMWARE.parent
FUZZER = FIRMWARE / "build" / "fuzz" / "fuzz_decoder"


def seed_corpus(directory: Path) -> int:
    """Seed with the shared golden frames (valid and invalid), so the fuzzer starts from real frames."""
    golden = json.loads((REPO / "host" / "protocol" / "golden_frames.json").read_text())
    n = 0
    for group in golden.values():
        for case in group if isinstance(group, list) else []:
            enc = case.get("encoded") if isinstance(case, dict) else None
            if isinstance(enc, str):
                (directory / f"seed{n}").write_bytes(bytes.fromhex(enc) + b"\x00")
                n += 1
    return n


def run_fuzzer(seconds: int, workdir: Path) -> dict[str, int]:
    """Run the decoder fuzzer for `seconds`; returns execs and crashes (crash files written)."""
    r = make("fuzz")
    assert r.returncode == 0, r.stderr[-2000:]
    corpus = workdir / "corpus"
    corpus.mkdir(exist_ok=True)
    seed_corpus(corpus)
    p = subprocess.run([str(FUZZER), f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=5",
                        f"-artifact_prefix={workdir}/", str(corpus)], capture_output=True, text=True,
                       timeout=seconds + 120)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
    crashes = len(list(workdir.glob("crash-*")) + list(workdir.glob("leak-*")) + list(workdir.glob("timeout-*")))
    if p.returncode != 0:
        crashes = max(crashes, 1)
    return {"execs": int(m.group(1)) if m else 0, "crashes": crashes, "returncode": p.returncode,
            "log_tail": p.stderr[-1500:]}


@pytest.mark.skipif(shutil.which("clang") is None and not IN_CI, reason="needs clang + libclang-rt (make setup)")
def test_decoder_fuzz_smoke(tmp_path):
    res = run_fuzzer(20, tmp_path)
    assert res["crashes"] == 0, res["log_tail"]
    assert res["execs"] > 50_000, res["log_tail"]  # it really ran (about 60k execs/s here)


def run_manifest_fuzzer(seconds: int, workdir: Path) -> dict[str, int]:
    """Run the signed-manifest fuzzer, seeded with the golden signed MODEL_BEGIN payload and a few
    mutants of it, so that it reaches the signature check and the checks after it."""
    r = make("fuzz")
    assert r.returncode == 0, r.stderr[-2000:]
    golden = json.loads((REPO / "host" / "protocol" / "golden_frames.json").read_text())
    (payload,) = [bytes.fromhex(c["payload"]) for c in golden["valid"] if c["name"] == "model_begin"]
    corpus = workdir / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "golden").write_bytes(payload)
    (corpus / "unsigned").write_bytes(payload[:-64] + bytes(64))
    (corpus / "short").write_bytes(payload[:-1])
    p = subprocess.run([str(FIRMWARE / "build" / "fuzz" / "fuzz_manifest"), f"-max_total_time={seconds}",
                        "-print_final_stats=1", "-timeout=5", f"-artifact_prefix={workdir}/", str(corpus)],
                       capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
    crashes = len(list(workdir.glob("crash-*")) + list(workdir.glob("leak-*")) + list(workdir.glob("timeout-*")))
    if p.returncode != 0:
        crashes = max(crashes, 1)
    return {"execs": int(m.group(1)) if m else 0, "crashes": crashes, "log_tail": p.stderr[-1500:]}


@pytest.mark.skipif(shutil.which("clang") is None and not IN_CI, reason="needs clang + libclang-rt (make setup)")
def test_manifest_fuzz_smoke(tmp_path):
    res = run_manifest_fuzzer(10, tmp_path)
    assert res["crashes"] == 0, res["log_tail"]
    assert res["execs"] > 10_000, res["log_tail"]
