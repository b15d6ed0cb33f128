"""Firmware benchmark: QEMU image section sizes and a >= 1,000,000-input fuzz run of the decoder.

Sizes are of the rv32imc QEMU image (`make -C firmware qemu`, -Os, picolibc), not of an ESP32
build (that needs PlatformIO's registry). The fuzz run is on the host (clang libFuzzer with
ASan/UBSan), not on a target.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
FUZZ_EXECS = 1_200_000


def _make(target: str) -> None:
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), target], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def qemu_sizes() -> dict[str, int]:
    if not (FIRMWARE / "lib" / "coach_model" / "coach_model_data.c").exists():
        pytest.fail("factory model C files missing: run `make models` before `make bench`")
    _make("qemu")
    out = subprocess.run(["riscv64-unknown-elf-size", "-B", str(FIRMWARE / "build/qemu/coach_qemu.elf")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    text, data, bss = (int(x) for x in out[1].split()[:3])
    return {"qemu_text_bytes": text, "qemu_data_bytes": data, "qemu_bss_bytes": bss}


def fuzz(workdir: Path, runs: int) -> dict[str, int]:
    _make("fuzz")
    corpus = workdir / "corpus"
    corpus.mkdir()
    p = subprocess.run([str(FIRMWARE / "build/fuzz/fuzz_decoder"), f"-runs={runs}", "-print_final_stats=1",
                        "-timeout=5", f"-artifact_prefix={workdir}/", str(corpus)],
                       capture_output=True, text=True, timeout=1800)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
    crashes = len([f for f in workdir.iterdir() if f.name.startswith(("crash-", "leak-", "timeout-", "oom-"))])
    if p.returncode != 0:
        crashes = max(crashes, 1)
    return {"fuzz_execs": int(m.group(1)) if m else 0, "fuzz_crashes": crashes}


def fuzz_manifest(workdir: Path, seconds: int = 60) -> dict[str, int]:
    """The signed-manifest parser + checks under libFuzzer, seeded with the golden signed manifest."""
    sys.path.insert(0, str(FIRMWARE / "tests"))
    from test_fuzz_smoke import run_manifest_fuzzer

    res = run_manifest_fuzzer(seconds, workdir)
    return {"manifest_fuzz_execs": res["execs"], "manifest_fuzz_crashes": res["crashes"]}


def test_firmware_sizes_and_fuzz(tmp_path, bench_result):
    (tmp_path / "manifest").mkdir()
    metrics = {**qemu_sizes(), **fuzz(tmp_path, FUZZ_EXECS), **fuzz_manifest(tmp_path / "manifest")}
    bench_result("firmware", "qemu", metrics,
                 notes="qemu_* = section sizes of firmware/build/qemu/coach_qemu.elf (rv32imc -Os, picolibc; "
                       "model slots live outside the image); fuzz_* measured on the HOST: libFuzzer + "
                       "ASan/UBSan on the stream decoder, crashes/leaks/timeouts counted; manifest_fuzz_* on the "
                       "HOST: the signed-manifest parser and checks (libsodium verify), 60 s seeded with the "
                       "golden signed manifest.")
    assert metrics["fuzz_execs"] >= 1_000_000
    assert metrics["fuzz_crashes"] == 0
    assert metrics["manifest_fuzz_crashes"] == 0 and metrics["manifest_fuzz_execs"] > 100_000
