"""Checks that prove the int8 model instead of assuming it; written as JSON + plots.

* float (torch) vs int8 (TFLM) error per output, in physical units and in output LSB;
* agreement of the coaching decision (which motor is on, which frequency band);
* op list and per-op quant params; model size; TFLM arena size;
* TFLM vs the host TFLite interpreter with default delegates off: must agree exactly
  (raises QuantizationError otherwise);
* distinct int8 input codes per feature on real telemetry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from motocoach.errors import QuantizationError
from motocoach.quantization.calibration import int8_codes_per_feature, warnings_for
from motocoach.quantization.host_engine import HostEngine
from motocoach.quantization.tflite_model import parse_tflite
from motocoach.quantization.tflm import litert_run, tflm_arena_bytes
from motocoach.schema import load_schema

def decisions(actions01: np.ndarray) -> np.ndarray:
    """(N, 3) normalized actions -> (N, 3) ints: left on, right on, frequency band 0/1/2
    (-1 = both motors off, no frequency felt), by the schema's cue language
    (:meth:`motocoach.schema.CueLanguage.decisions`).

    >>> decisions(np.array([[0.9, 0.1, 1.0], [0.0, 0.0, 0.0]], np.float32)).tolist()
    [[1, 0, 2], [0, 0, -1]]
    """
    return load_schema().cues.decisions(actions01)


def decision_agreement(y_a: np.ndarray, y_b: np.ndarray) -> dict[str, float]:
    """Share of rows where two action arrays make the same coaching decision, per channel and in all."""
    d_a, d_b = decisions(y_a), decisions(y_b)
    return {"left_on": float(np.mean(d_a[:, 0] == d_b[:, 0])), "right_on": float(np.mean(d_a[:, 1] == d_b[:, 1])),
            "frequency_band": float(np.mean(d_a[:, 2] == d_b[:, 2])),
            "all": float(np.mean(np.all(d_a == d_b, axis=1))), "motor_on_threshold": load_schema().cues.motor_on}


def run_checks(actor, tflite: bytes, heldout: np.ndarray, out_dir: Path, *, n_random: int = 5000,
               seed: int = 0) -> dict[str, Any]:
    """Run every check on physical ``heldout`` telemetry; write ``checks.json`` + PNGs into ``out_dir``."""
    import torch

    s = load_schema()
    model = parse_tflite(tflite)
    eng = HostEngine(tflite, model.input.scale, model.input.zero_point, model.output.scale,
                     model.output.zero_point, s)
    with torch.no_grad():
        y_float = actor(torch.from_numpy(s.normalize(heldout))).numpy().astype(np.float32)
    q_in = eng.quantize_input(heldout)
    q_out = eng.invoke(q_in)
    y_int8 = eng.dequantize(q_out)

    lo = np.array([a.min for a in s.actions], np.float32)
    hi = np.array([a.max for a in s.actions], np.float32)
    err01 = np.abs(y_int8 - y_float)
    per_output = {}
    for j, a in enumerate(s.actions):
        e = err01[:, j]
        per_output[a.name] = {"unit": a.unit, "mae": float(e.mean() * (hi[j] - lo[j])),
                              "max": float(e.max() * (hi[j] - lo[j])),
                              "mae_lsb": float(e.mean() / model.output.scale),
                              "max_lsb": float(e.max() / model.output.scale)}
    agree = decision_agreement(y_float, y_int8)

    rng = np.random.default_rng(seed)
    rand = rng.integers(-128, 128, (n_random, s.n_features)).astype(np.int8)
    cross_real = _cross_check(model, q_in, q_out)
    cross_rand = _cross_check(model, rand, eng.invoke(rand))
    codes = int8_codes_per_feature(q_in, s.feature_names)
    report = {
        "rows_heldout": int(len(heldout)),
        "float_vs_int8": per_output,
        "int8_max_abs_err01": float(err01.max()),
        "decision_agreement": agree,
        "ops": model.ops,
        "layers": [{"op": "FULLY_CONNECTED", "n_in": l.n_in, "n_out": l.n_out, "activation": l.activation,
                    "input": vars(l.input), "output": vars(l.output),
                    "weight_scale_min": float(l.weight_scales.min()), "weight_scale_max": float(l.weight_scales.max()),
                    "per_channel": bool(len(np.unique(l.weight_scales)) > 1)} for l in model.layers],
        "head": {"op": model.head, "input": vars(model.head_input) if model.head_input else None,
                 "output": vars(model.output)},
        "input": vars(model.input), "output": vars(model.output),
        "tflite_bytes": len(tflite), "tflm_arena_bytes": tflm_arena_bytes(tflite),
        "tflm_vs_tflite_interpreter": {
            "interpreter": "ai_edge_litert, BUILTIN_WITHOUT_DEFAULT_DELEGATES",
            "heldout_telemetry": cross_real, "random_int8": cross_rand,
            "note": ("every mismatch must be a rounding tie: the host interpreter's optimized "
                     "FULLY_CONNECTED rounds an exact .5 of its final right shift up, TFLM's reference "
                     "(gemmlowp RoundingDivideByPOT) rounds it away from zero; TFLM is the reference "
                     "(docs/quantization.md)")},
        "int8_input_codes": codes,
        "warnings": warnings_for([], codes),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _plots(out_dir, y_float, y_int8, err01 / model.output.scale, codes)
    for name, c in (("held-out telemetry", cross_real), ("random int8", cross_rand)):
        if c["unexplained"]:
            raise QuantizationError(
                f"stage 'checks': TFLM and the TFLite interpreter (default delegates off) disagree on "
                f"{c['unexplained']} {name} vectors that are not rounding ties; the kernels differ")
    return report


def _cross_check(model, q_in: np.ndarray, tflm_out: np.ndarray) -> dict[str, Any]:
    other = litert_run(model.tflite, q_in)
    diff = np.abs(other.astype(np.int32) - tflm_out.astype(np.int32))
    bad = np.any(diff != 0, axis=1)
    ties = negative_ties(model, q_in[bad])
    return {"vectors": int(len(q_in)), "mismatches": int(bad.sum()), "rounding_ties": int(ties.sum()),
            "unexplained": int((~ties).sum()), "max_abs_diff": int(diff.max()) if diff.size else 0}


def negative_ties(model, q_in: np.ndarray) -> np.ndarray:
    """Per vector: does any FULLY_CONNECTED channel hit an exact negative .5 tie in its final
    rounding right shift (where round-half-up and round-half-away-from-zero differ)?"""
    return fc_stack_int64(model, q_in)[1]


def fc_stack_int64(model, q_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLM's FULLY_CONNECTED arithmetic in int64 numpy (an independent third implementation):
    int8 inputs -> (int8 outputs of the last FC layer, per-vector negative-tie flags)."""
    x = np.asarray(q_in, np.int64)
    hit = np.zeros(len(x), bool)
    for l in model.layers:
        acc = (x - l.input.zero_point) @ l.weights.astype(np.int64).T + l.bias.astype(np.int64)
        left = np.maximum(l.shift, 0).astype(np.int64)
        right = np.maximum(-l.shift, 0).astype(np.int64)
        ab = (acc << left) * l.multiplier.astype(np.int64)
        v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
        hi = np.where(v >= 0, v >> 31, -((-v) >> 31))          # C division truncates toward zero
        half = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), -1)
        mask = (np.left_shift(1, right) - 1)
        hit |= np.any((hi < 0) & ((hi & mask) == half), axis=1)
        rem, thr = hi & mask, (mask >> 1) + (hi < 0)
        out = (hi >> right) + (rem > thr) + l.output.zero_point
        x = np.clip(out, l.act_min, l.act_max)
    return x.astype(np.int8), hit


def _plots(out_dir: Path, y_float: np.ndarray, y_int8: np.ndarray, err_lsb: np.ndarray,
           codes: dict[str, int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = load_schema().action_names
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4))
    for j, ax in enumerate(np.atleast_1d(axes)):
        ax.scatter(y_float[:, j], y_int8[:, j], s=3, alpha=0.4)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(title=names[j], xlabel="float (torch)", ylabel="int8 (TFLM, dequantized)")
    fig.tight_layout()
    fig.savefig(out_dir / "float_vs_int8.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for j, n in enumerate(names):
        ax.hist(err_lsb[:, j], bins=40, histtype="step", label=n)
    ax.set(xlabel="|int8 - float| in output LSB", ylabel="held-out rows", title="int8 error")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "error_lsb.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(list(codes), list(codes.values()))
    ax.set(ylabel="distinct int8 codes", title="int8 input codes used per feature (held-out telemetry)")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(out_dir / "input_codes.png", dpi=90)
    plt.close(fig)


def coverage_plot(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Bar chart of calibration coverage per feature (fraction of the schema range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([r["feature"] for r in rows], [r["coverage"] for r in rows])
    ax.axhline(0.5, color="r", ls="--", lw=0.8)
    ax.set(ylim=(0, 1.05), ylabel="fraction of schema range", title="calibration telemetry coverage")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(out_dir / "coverage.png", dpi=90)
    plt.close(fig)
