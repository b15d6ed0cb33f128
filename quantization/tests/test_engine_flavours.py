"""The engine's arithmetic on each build flavour: the requantization against TFLM's reference
formulas over its whole accepted parameter space (host and rv32imc), and the rv32imc build
(the firmware's QEMU build at -Os, and -O2) against tflite_micro on >= 100,000 vectors.

The host build's bit-exactness on >= 100,000 vectors is in test_bitexact.py.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from motocoach.quantization import cbuild
from motocoach.quantization.host_engine import HostEngine
from motocoach.quantization.tflm import TflmRunner
from motocoach.quantization.vectors import engine_vectors


def _requant_report(stdout: str) -> dict[str, int]:
    out = {}
    for line in stdout.splitlines():
        key, _, val = line.partition(" ")
        if key.startswith("REQUANT_"):
            out[key] = int(val)
    return out


def test_requantization_matches_tflm_formulas_on_host(tmp_path):
    """About 36 million (accumulator, multiplier, shift) cases, every shift in [-31, 30]."""
    r = subprocess.run([str(cbuild.build_host_requant_check(tmp_path))], capture_output=True, text=True)
    rep = _requant_report(r.stdout)
    assert rep.get("REQUANT_CASES", 0) > 30_000_000
    assert r.returncode == 0 and rep["REQUANT_MISMATCHES"] == 0, r.stdout[-2000:]


def test_requantization_matches_tflm_formulas_on_rv32(tmp_path):
    """The same check, fewer cases, built for rv32imc (where the multiply is mul + mulhsu)."""
    elf = cbuild.build_rv32_program(tmp_path, cbuild.CSRC / "requant_check.c", opt="-Os",
                                    defines=("-DDENSE=256", "-DRANDOM_ACC=100", "-DRANDOM_MULTIPLIERS=8"))
    rep = cbuild.run_rv32(elf)
    assert rep["requant_cases"] > 400_000
    assert rep["requant_mismatches"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("opt", ["-Os", "-O2"])
def test_rv32_engine_matches_tflm_on_100k_vectors(tmp_path, generated, tflite_bytes, telemetry, opt):
    """The rv32imc build runs the vectors under QEMU, reading and writing host files through
    semihosting (about 2 s each)."""
    eng = HostEngine.from_tflite_bytes(tflite_bytes)
    vecs = engine_vectors(eng, telemetry)
    assert len(vecs) >= 100_000
    (tmp_path / "vectors.bin").write_bytes(np.ascontiguousarray(vecs, np.int8).tobytes())
    elf = cbuild.build_rv32_program(tmp_path / "build", cbuild.CSRC / "rv32_bitexact.c", generated, opt)
    rep = cbuild.run_rv32(elf, cwd=tmp_path)
    assert rep["bitexact_vectors"] == len(vecs)
    got = np.frombuffer((tmp_path / "outputs.bin").read_bytes(), np.int8).reshape(-1, eng.n_outputs)
    ref = TflmRunner(tflite_bytes).run(vecs)
    mism = np.any(got != ref, axis=1)
    assert int(mism.sum()) == 0, f"{int(mism.sum())} mismatches, first input {vecs[mism][:3].tolist()}"
    assert len(np.unique(ref[:, 0])) > 20
