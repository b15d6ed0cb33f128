"""Does the int8 model the unit runs make the float policy's coaching decisions? (host)

* Rows: telemetry of simulated rides the policy never trained on: float-coached laps on the
  real calibration circuits (``MOTOCOACH_REAL_DATA``) by the amateur and the held-out weekend
  rider, plus uncoached rides of the held-out novice on the held-out generated tracks.
* Decisions: the cue language of the feature schema (``motocoach.schema.CueLanguage``).
* PTQ vs QAT: the bench quantizes the committed float policy both ways itself (datasets of the
  default preset, seed 0, as ``make models`` does) and measures both on the same rows; it
  records whether the model ``make models`` kept is byte-identical to the committed one.
* Lap time: the int8 coach (TFLM, the engine's reference) against the float coach, paired
  seeds, on the calibration circuits.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MOTOCOACH_REAL_DATA") or ROOT.parent / "shared" / "data")
MODEL = ROOT / "firmware" / "lib" / "coach_model"
POLICY = ROOT / "training" / "default_policy" / "policy.pt"
SEEDS = 12
LAP_RIDERS = ("amateur", "weekend")


def _int8_coach(tflite: bytes):
    from motocoach.quantization.host_engine import HostEngine

    eng = HostEngine.from_tflite_bytes(tflite)
    return lambda sim: eng.dequantize(eng.invoke(eng.quantize_input(sim.observe())))


def _recording(coach, rows: list):
    def wrapped(sim):
        rows.append(sim.observe().copy())
        return coach(sim)
    return wrapped


def _float_outputs(actor, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return actor(torch.from_numpy(np.asarray(x, np.float32))).numpy()


def _agreement(tflite: bytes, y_float: np.ndarray, tel: np.ndarray) -> dict[str, float]:
    from motocoach.quantization.checks import decision_agreement
    from motocoach.quantization.host_engine import HostEngine

    eng = HostEngine.from_tflite_bytes(tflite)
    y_int8 = eng.dequantize(eng.invoke(eng.quantize_input(tel)))
    err_lsb = np.abs(y_int8 - y_float) / eng.output_scale
    cues = eng.schema.cues
    return {"decision_agreement": decision_agreement(y_float, y_int8)["all"],
            "decision_agreement_band_always": float(np.mean(np.all(
                cues.decisions(y_float, felt=False) == cues.decisions(y_int8, felt=False), axis=1))),
            "max_err_lsb": float(err_lsb.max()), "mae_lsb": float(err_lsb.mean())}


def _input_grid_agreement(eng, actor, tel: np.ndarray, y_float: np.ndarray, finer: int = 1) -> float:
    """Decision agreement of the float policy with itself on the int8 model's input grid (its
    step divided by ``finer``, same range): what quantizing the input alone costs, before any
    weight or activation is quantized. ``finer=1`` is the device's own grid (checked)."""
    from motocoach.quantization.checks import decision_agreement
    from motocoach.quantization.host_engine import round_half_away

    zp = eng.input_zero_point
    step = np.float32(eng.input_scale / np.float32(finer))
    codes = np.clip(round_half_away((eng.schema.normalize(tel) / step).astype(np.float32)),
                    (-128 - zp) * finer, (127 - zp) * finer)  # C roundf, as the device quantizes
    if finer == 1:
        assert np.array_equal(codes + zp, eng.quantize_input(tel))
    return decision_agreement(y_float, _float_outputs(actor, codes * step))["all"]


def _change_rate(decisions: np.ndarray, cell_steps: list[int], rides: int) -> float:
    """Share of control steps at which the float coach's felt decision changes, along each ride.
    ``decisions`` starts with the lap cells' rows, ``cell_steps[i]`` steps of ``rides`` rows each."""
    changes, steps, start = 0, 0, 0
    for t in cell_steps:
        d = decisions[start:start + t * rides].reshape(t, rides, -1)
        changes += int(np.any(d[1:] != d[:-1], axis=2).sum())
        steps += (t - 1) * rides
        start += t * rides
    return changes / steps


@pytest.mark.skipif(not (DATA / "tracks").is_dir(), reason=f"no real-circuit data at {DATA}")
def test_int8_fidelity(tmp_path, bench_result):
    from motocoach.quantization.host_engine import HostEngine
    from motocoach.quantization.pipeline import quantize
    from motocoach.training import datasets
    from motocoach.training.evaluate import paired_laps_gain, policy_coach, ride_laps
    from motocoach.training.policy_net import load_actor
    from motocoach.training.rides import simulate_telemetry

    man = json.loads((MODEL / "manifest.json").read_text())
    assert man["created"]["policy_sha256"] == hashlib.sha256(POLICY.read_bytes()).hexdigest(), \
        "the committed model does not come from training/default_policy/policy.pt: run make models"
    committed = (MODEL / "default_model.tflite").read_bytes()
    actor = load_actor(POLICY)

    # the two candidates make models compares, rebuilt here from the committed float policy
    ids = datasets.generate(tmp_path / "datasets", preset="default", seed=0, progress=False)
    q = quantize(POLICY, tmp_path / "run", dataset_root=tmp_path / "datasets", dataset_ids=ids, seed=0)
    run = q.report_path.parent
    models = {k: (run / k / "checks_model.tflite").read_bytes() for k in ("ptq", "qat")}

    circuits = sorted(str(p) for p in (DATA / "tracks").glob("*.csv") if not p.stem.endswith("_raceline"))
    rows: list[np.ndarray] = []
    cell_steps: list[int] = []  # control steps of each lap cell (SEEDS rows each), for the change rate
    float_laps, int8_laps = [], []
    for track in circuits:
        for rider in LAP_RIDERS:
            cell: list[np.ndarray] = []
            f, _ = ride_laps(track, rider, _recording(policy_coach(POLICY), cell), SEEDS, seed=77)
            i, _ = ride_laps(track, rider, _int8_coach(committed), SEEDS, seed=77)
            float_laps.append(f["lap"])
            int8_laps.append(i["lap"])
            cell_steps.append(len(cell))
            rows += cell
    rows += [simulate_telemetry(t, "novice", 120.0, seed=9) for t in datasets.HELDOUT_TRACKS]
    tel = np.concatenate(rows)
    assert len(tel) >= 30_000

    eng = HostEngine.from_tflite_bytes(committed)
    y_float = _float_outputs(actor, eng.schema.normalize(tel))
    main = _agreement(committed, y_float, tel)
    ptq, qat = _agreement(models["ptq"], y_float, tel), _agreement(models["qat"], y_float, tel)
    g = paired_laps_gain(np.concatenate(float_laps), np.concatenate(int8_laps))  # paired by seed and cell
    assert g["pairs"] > 0
    bench_result("int8_fidelity", "host", {
        "decision_agreement": main["decision_agreement"],
        "decision_agreement_ptq": ptq["decision_agreement"],
        "decision_agreement_qat": qat["decision_agreement"],
        "decision_agreement_band_always": main["decision_agreement_band_always"],
        "decision_agreement_input_grid_only": _input_grid_agreement(eng, actor, tel, y_float),
        "decision_agreement_input_grid_half_step": _input_grid_agreement(eng, actor, tel, y_float, finer=2),
        "float_decision_change_rate": _change_rate(eng.schema.cues.decisions(y_float), cell_steps, SEEDS),
        "max_err_lsb": main["max_err_lsb"],
        "mae_lsb": main["mae_lsb"],
        "max_err_lsb_ptq": ptq["max_err_lsb"],
        "mae_lsb_ptq": ptq["mae_lsb"],
        "laptime_int8_vs_float_pct": -g["gain_pct"],
        "laptime_int8_vs_float_ci95_low_pct": -g["ci95_high_pct"],
        "laptime_int8_vs_float_ci95_high_pct": -g["ci95_low_pct"],
        "laptime_pairs": g["pairs"],
        "rows": int(len(tel)),
        "committed_is_qat": int(q.report["quantizer"] == "qat" and models["qat"] == committed),
        "committed_equals_rebuilt_choice": int(q.tflite.read_bytes() == committed),
    }, notes=(
        "Float policy (torch) vs int8 (TFLM, bit-exact with the C engine) on rows of simulated rides the "
        f"policy never trained on: float-coached laps on the real circuits ({', '.join(Path(c).stem for c in circuits)}) "
        f"by {' and '.join(LAP_RIDERS)} ({SEEDS} seeds each; weekend is a held-out rider) and uncoached rides of "
        "the held-out novice on the held-out generated tracks. Decisions by the schema's cue language, as the rider "
        "feels them (motor on at intensity >= cues.motor_on; frequency band only while a motor is on); "
        "_band_always compares the band on silent rows too (the rule of reports before 2026-12-07). "
        "input_grid_only: the float policy on the int8 model's input grid vs the float policy (what quantizing "
        "the input alone costs); _half_step: the same on a grid twice as fine. float_decision_change_rate: share "
        "of control steps at which the float coach's own felt decision changes, along its laps. _ptq/_qat: the "
        "two int8 models `make models` compares, rebuilt here from the committed policy; the committed model is "
        "the one with more agreeing decisions on the quantize step's own held-out rows (not these). "
        "laptime_int8_vs_float_pct: int8 coach lap time over "
        "the float coach's, paired seeds, > 0 = slower; pairs = finished laps with both."))
