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

    eng = HostEngine.from_tflite_bytes(tflite)  # once: it loads the model into a TFLM interpreter
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


def _int8_outputs(tflite: bytes, tel: np.ndarray) -> np.ndarray:
    from motocoach.quantization.host_engine import HostEngine

    eng = HostEngine.from_tflite_bytes(tflite)
    return eng.dequantize(eng.invoke(eng.quantize_input(tel)))


def _agreement(y_ref: np.ndarray, y_other: np.ndarray) -> dict[str, float]:
    from motocoach.quantization.checks import decision_agreement
    from motocoach.quantization.qat import OUT_SCALE
    from motocoach.schema import load_schema

    err_lsb = np.abs(y_other - y_ref) / OUT_SCALE
    cues = load_schema().cues
    return {"decision_agreement": decision_agreement(y_ref, y_other)["all"],
            "decision_agreement_band_always": float(np.mean(np.all(
                cues.decisions(y_ref, felt=False) == cues.decisions(y_other, felt=False), axis=1))),
            "max_err_lsb": float(err_lsb.max()), "mae_lsb": float(err_lsb.mean())}


def _input_grid_outputs(eng, actor, tel: np.ndarray, finer: int = 1) -> np.ndarray:
    """The float policy's outputs on the int8 model's input grid (its step divided by
    ``finer``, same range): with them, what quantizing the input alone costs, before any weight
    or activation is quantized. ``finer=1`` is the device's own grid (checked)."""
    from motocoach.quantization.host_engine import round_half_away

    zp = eng.input_zero_point
    step = np.float32(eng.input_scale / np.float32(finer))
    codes = np.clip(round_half_away((eng.schema.normalize(tel) / step).astype(np.float32)),
                    (-128 - zp) * finer, (127 - zp) * finer)  # C roundf, as the device quantizes
    if finer == 1:
        assert np.array_equal(codes + zp, eng.quantize_input(tel))
    return _float_outputs(actor, codes * step)


def _lap_cells(decisions: np.ndarray, cell_steps: list[int], rides: int):
    """The lap cells' rows as (steps, rides, 3) arrays, in time order. ``decisions`` starts with
    the lap cells' rows, ``cell_steps[i]`` steps of ``rides`` rows each."""
    start = 0
    for t in cell_steps:
        yield decisions[start:start + t * rides].reshape(t, rides, -1)
        start += t * rides


def _change_rate(decisions: np.ndarray, cell_steps: list[int], rides: int) -> float:
    """Share of control steps at which the felt decision changes, along each ride."""
    changes = steps = 0
    for d in _lap_cells(decisions, cell_steps, rides):
        changes += int(np.any(d[1:] != d[:-1], axis=2).sum())
        steps += (d.shape[0] - 1) * d.shape[1]
    return changes / steps


def _debounced(d: np.ndarray, hold: int) -> np.ndarray:
    """A cue renderer with a minimum duration: a new decision reaches the motors only once the
    network has made it on ``hold`` steps in a row. ``d``: (steps, rides, 3) decisions."""
    out = np.empty_like(d)
    shown, pending, run = d[0].copy(), d[0].copy(), np.zeros(d.shape[1], np.int64)
    for t in range(d.shape[0]):
        same = np.all(d[t] == pending, axis=1)
        run = np.where(same, run + 1, 1)
        pending = np.where(same[:, None], pending, d[t])
        shown = np.where((run >= hold)[:, None], pending, shown)
        out[t] = shown
    return out


def _debounced_agreement(d_float: np.ndarray, d_int8: np.ndarray, cell_steps: list[int], rides: int,
                         hold: int) -> float:
    """Felt decisions after :func:`_debounced`, float coach vs int8, along the float coach's laps."""
    same = total = 0
    for f, i in zip(_lap_cells(d_float, cell_steps, rides), _lap_cells(d_int8, cell_steps, rides)):
        same += int(np.all(_debounced(f, hold) == _debounced(i, hold), axis=2).sum())
        total += f.shape[0] * f.shape[1]
    return same / total


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
    cues = eng.schema.cues
    y_float = _float_outputs(actor, eng.schema.normalize(tel))
    tflites = {"committed": committed, **models}
    by_model = {m: _int8_outputs(m, tel) for m in set(tflites.values())}  # the committed one is one of the two
    y_int8 = {k: by_model[m] for k, m in tflites.items()}
    main, ptq, qat = (_agreement(y_float, y_int8[k]) for k in ("committed", "ptq", "qat"))
    y_grid = _input_grid_outputs(eng, actor, tel)
    grid = _agreement(y_float, y_grid)
    d_float, d_int8 = cues.decisions(y_float), cues.decisions(y_int8["committed"])
    g = paired_laps_gain(np.concatenate(float_laps), np.concatenate(int8_laps))  # paired by seed and cell
    assert g["pairs"] > 0
    bench_result("int8_fidelity", "host", {
        "decision_agreement": main["decision_agreement"],
        "decision_agreement_ptq": ptq["decision_agreement"],
        "decision_agreement_qat": qat["decision_agreement"],
        "decision_agreement_band_always": main["decision_agreement_band_always"],
        "decision_agreement_input_grid_only": grid["decision_agreement"],
        **{f"{k}_input_grid_{name}": v for finer, name in ((2, "half_step"), (8, "eighth_step"))
           for k, v in _agreement(y_float, _input_grid_outputs(eng, actor, tel, finer)).items()
           if k in ("decision_agreement", "max_err_lsb")},
        "decision_agreement_vs_input_grid_float": _agreement(y_grid, y_int8["committed"])["decision_agreement"],
        **{f"decision_agreement_debounced_{n}": _debounced_agreement(d_float, d_int8, cell_steps, SEEDS, n)
           for n in (1, 2, 4)},
        "float_decision_change_rate": _change_rate(d_float, cell_steps, SEEDS),
        "max_err_lsb_input_grid_only": grid["max_err_lsb"],
        "mae_lsb_input_grid_only": grid["mae_lsb"],
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
        "the input alone costs; its max/mae figures likewise); _half_step, _eighth_step: the same on a grid 2 and 8 times as fine. "
        "vs_input_grid_float: the int8 model against the float policy on the input grid (what the weights and "
        "activations cost on top). debounced_N: float vs int8 after a cue renderer that passes a new decision "
        "only once it has held N steps in a row (a minimum cue duration), along the float coach's laps only "
        "(_1: no renderer, the same rows). "
        "float_decision_change_rate: share "
        "of control steps at which the float coach's own felt decision changes, along its laps. _ptq/_qat: the "
        "two int8 models `make models` compares, rebuilt here from the committed policy; the committed model is "
        "the one with more agreeing decisions on the quantize step's own held-out rows (not these). "
        "laptime_int8_vs_float_pct: int8 coach lap time over "
        "the float coach's, paired seeds, > 0 = slower; pairs = finished laps with both."))
