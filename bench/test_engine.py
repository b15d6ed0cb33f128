"""Engine benchmark for the committed factory model.

Writes two result files because the numbers are measured in two places:

* ``engine.json`` (where = qemu): rv32imc instructions per inference (worst case) counted with
  ``qemu-system-riscv32 -icount shift=0`` (guest instret), the rv32 sizes (all-in flash), and
  the x86-64 instructions of the engine (SSE2 and scalar builds) and of TFLM's Invoke, each
  pair from one callgrind run (labelled host in ``where_by_metric``).
* ``engine_host.json`` (where = host): bit-exactness of the host build vs tflite_micro,
  TFLM arena, .tflite size and the int8-vs-float error on simulated held-out rides.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from motocoach.quantization import cbuild
from motocoach.quantization.host_engine import HostEngine
from motocoach.quantization.tflm import TflmRunner
from motocoach.quantization.vectors import boundary_telemetry, int8_vectors

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "firmware" / "lib" / "coach_model"
POLICY = REPO / "training" / "default_policy" / "policy.pt"


def test_engine_qemu(tmp_path, bench_result):
    from motocoach.quantization.callgrind import x86_instructions

    counts_os = cbuild.count_rv32(cbuild.build_rv32_counter(tmp_path, MODEL, "-Os"))
    counts_o2 = cbuild.count_rv32(cbuild.build_rv32_counter(tmp_path, MODEL, "-O2"))
    sizes = cbuild.rv32_section_sizes(tmp_path / "sizes", MODEL)
    all_in = cbuild.rv32_flash_all_in(tmp_path / "flash", MODEL)
    x86 = x86_instructions(MODEL, tmp_path / "callgrind")
    x86_scalar = x86_instructions(MODEL, tmp_path / "callgrind_scalar", simd=False)
    ram = sizes["static_ram"] + max(sizes["stack_invoke"], sizes["stack_quantize_input"])
    worst = counts_os["invoke_worst_instructions"]
    assert 0 < counts_os["invoke_best_instructions"] <= worst < 100_000
    assert all_in["flash_all_in"] > sizes["engine_text"] + sizes["model_rodata"]
    bench_result("engine", "qemu", {
        "rv32_instructions_worst": worst,
        "rv32_instructions_best": counts_os["invoke_best_instructions"],
        "rv32_instructions_worst_O2": counts_o2["invoke_worst_instructions"],
        "rv32_instructions_quantize_input_worst": counts_os["quantize_worst_instructions"],
        "x86_instructions_per_inference": x86["x86_instructions_per_inference"],
        "tflm_x86_instructions_per_invoke": x86["tflm_x86_instructions_per_invoke"],
        "tflm_ratio": x86["tflm_ratio"],
        "x86_instructions_per_inference_scalar": x86_scalar["x86_instructions_per_inference"],
        "tflm_ratio_scalar": x86_scalar["tflm_ratio"],
        "engine_flash_bytes_all_in": all_in["flash_all_in"],
        "engine_code_bytes": sizes["engine_text"],
        "model_data_bytes": sizes["model_rodata"],
        "sha256_bytes": all_in["sha256_bytes"],
        "softfloat_bytes": all_in["softfloat_bytes"],
        "libc_libm_bytes": all_in["libc_libm_bytes"],
        "engine_ram_bytes": ram,
        "engine_load_stack_bytes": sizes["stack_load"],
    }, where_by_metric={k: "host" for k in ("x86_instructions_per_inference", "tflm_x86_instructions_per_invoke",
                                            "tflm_ratio", "x86_instructions_per_inference_scalar",
                                            "tflm_ratio_scalar")},
        notes=("rv32imc (-march=rv32imc -mabi=ilp32, picolibc), QEMU 'virt' -icount shift=0, instret read "
               "around coach_model_invoke: worst and best over the 16 golden vectors plus 2,000 pseudo-random "
               "int8 inputs (the count depends on the input: requantization rounding and the activation "
               "clamps branch). quantize_input: worst over 2,000 random telemetry rows spanning 1.5x the "
               "schema ranges. Primary counts at -Os (the firmware's QEMU build); -O2 also given. "
               "engine_flash_bytes_all_in = the rv32 -Os --gc-sections image of a program calling every engine "
               "entry point (load, selftest, quantize_input, invoke, dequantize, sha256, id) minus the same "
               "program calling none: engine code, model data, SHA-256 (libsodium), soft-float and roundf; "
               "the sha256/softfloat/libc_libm parts are its symbol sizes. RAM = .data/.bss (0) + the deeper "
               "per-tick stack frame (invoke or quantize_input, -fstack-usage); coach_model_load needs "
               "engine_load_stack_bytes once per model load, and a loaded coach_model_t lives in the caller's "
               "RAM. x86_* and tflm_* (where: host): one valgrind callgrind run, 500 random int8 inputs "
               "through the engine (host gcc -O2, with its x86-64 SSE2 dot products) and tflite_micro's "
               "MicroInterpreter::Invoke (reference kernels), inclusive instructions per call; *_scalar: a "
               "second run with COACH_ENGINE_NO_SIMD, the loops the MCU builds compile. Emulated counts, not "
               "ESP32 cycles."))


def test_engine_host(tmp_path, bench_result):
    import torch

    from motocoach.training.policy_net import load_actor
    from motocoach.training.rides import simulate_telemetry

    man = json.loads((MODEL / "manifest.json").read_text())
    tflite = (MODEL / "default_model.tflite").read_bytes()
    eng = HostEngine.from_manifest(MODEL / "manifest.json")
    lib = cbuild.EngineLib(cbuild.build_host_lib(tmp_path, MODEL))

    rides = np.concatenate([simulate_telemetry(track, rider, 60.0, seed=11)
                            for track in ("falcon", "merlin") for rider in ("novice", "pro")])
    q_rides = eng.quantize_input(rides)
    q_edges, _, status = lib.quantize(boundary_telemetry())
    assert np.all(status == 0)
    assert np.array_equal(q_edges, eng.quantize_input(boundary_telemetry()))
    vecs = np.concatenate([int8_vectors(eng.n_inputs, eng.input_zero_point), q_rides, q_edges])
    ref = TflmRunner(tflite).run(vecs)
    got = lib.invoke(vecs, eng.n_outputs)
    mism = int(np.sum(np.any(got != ref, axis=1)))
    assert mism == 0

    max_err = float("nan")
    if hashlib.sha256(POLICY.read_bytes()).hexdigest() == man["created"].get("policy_sha256"):
        actor = load_actor(POLICY)
        with torch.no_grad():
            y = actor(torch.from_numpy(eng.schema.normalize(rides))).numpy()
        max_err = float(np.max(np.abs(eng.dequantize(eng.invoke(q_rides)) - y)))
    assert np.isfinite(max_err), "the committed model does not come from training/default_policy/policy.pt"
    bench_result("engine_host", "host", {
        "bitexact_vectors": len(vecs),
        "bitexact_mismatches": mism,
        "tflm_arena_bytes": man["sizes"]["tflm_arena_bytes"],
        "tflite_bytes": len(tflite),
        "int8_max_abs_err": max_err,
    }, notes=("Host gcc build of the generated engine (ctypes) vs the tflite_micro runtime on int8 vectors "
              "(uniform, rails, zero points, per-feature sweeps), quantized simulated held-out rides "
              "(tracks falcon/merlin, riders novice/pro, 4 x 60 s) and float-boundary telemetry. "
              "int8_max_abs_err: max |dequantized int8 - float torch| over those rides, in normalized "
              "action units [0, 1] (x 250 Hz for frequency). tflm_arena_bytes: TFLM's recorded arena."))
