"""Quantization-aware fine-tuning of a float ``CoachActor`` (QAT), for any given ``policy.pt``.

A copy of the float actor (the student) is fine-tuned, with fake quantization that follows the
TFLite int8 scheme onnx2tf produces, to reproduce the float actor's (the teacher's) outputs on
rider telemetry:

* weights: per-channel symmetric, ``scale_c = max|w_c| / 127``, codes in [-127, 127];
  biases: int32 at ``input scale * scale_c``;
* activations (network input, each hidden ReLU output, the logits = LOGISTIC input):
  per-tensor asymmetric int8 over ``[min(0, lo), max(0, hi)]``, each layer's output rounded
  twice as TFLM requantizes it;
* output: LOGISTIC's fixed int8 scale 1/256, zero point -128.

The forward pass gives the converted model's int8 outputs exactly (tested on both conversions).

**How the converted model gets the learned ranges.** onnx2tf calibrates every activation range as
the min/max over the calibration rows of the *float* graph it is given. The fake quantizers here
take their ranges the same way: min/max of the float student over the same calibration rows,
recomputed every ``range_every`` steps while the weights move, and once more at the end. The
exported student therefore calibrates to the very ranges it was trained with; nothing has to be
carried through onnx2tf. A logit bound keeps the LOGISTIC input range small (the sigmoid is
saturated to within half an output LSB beyond +-5.6), and :func:`ranges` lets the pipeline
compare the converted model's scales with the trained ones.

The teacher's outputs are the target (distillation), so the result needs no rewards, simulator or
PPO: it works after PPO and after BC alike. Two terms aim the fit at the coaching decisions rather
than the output values alone: half of each batch is jittered (``input_noise``), so the student
also learns the teacher between the logged rows, and a hinge (:func:`margin_loss`) pushes the
student's outputs past the cue language's thresholds, by ``margin``, on the teacher's side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: The LOGISTIC output quantization TFLite fixes for int8.
OUT_SCALE, OUT_ZP = 1.0 / 256.0, -128
#: Training rows on which restarts are compared.
SELECTION_ROWS = 30_000


@dataclass
class QatConfig:
    """Fine-tuning settings.

    Args:
        shrink_steps: float steps that first fit the student's logits to the teacher's logits
            clipped to +-``logit_bound`` (the sigmoid is saturated there, so the outputs stay).
        steps: quantization-aware steps after that.
        batch: rows per step.
        shrink_lr: Adam learning rate of the shrink steps.
        lr: Adam learning rate of the quantization-aware steps.
        logit_bound: logits beyond +-this are penalized (the LOGISTIC input range).
        bound_weight: weight of that penalty (per squared logit beyond the bound).
        range_every: recompute the activation ranges every this many steps.
        seed: seed of the batch sampler.
        input_noise: standard deviation (normalized units) of the Gaussian jitter added to half
            of each batch; 0 trains on the logged rows only.
        margin: how far past each cue threshold (normalized output) the hinge wants the student.
        margin_weight: weight of the hinge (in output LSB², like the fit).
        anneal: cosine-anneal each phase's learning rate to zero, so the student ends at a
            settled point rather than wherever the last noisy step left it.
        restarts: students fine-tuned, with seeds ``seed``, ``seed + 1``, ...; the one whose int8
            decisions agree with the teacher's on the most of ``SELECTION_ROWS`` training rows
            is kept (never held-out rows: the pipeline compares PTQ and QAT on those).
    """

    shrink_steps: int = 30000
    steps: int = 1000
    batch: int = 512
    shrink_lr: float = 1e-3
    lr: float = 2e-4
    logit_bound: float = 8.0
    bound_weight: float = 1.0
    range_every: int = 50
    seed: int = 0
    input_noise: float = 0.03
    margin: float = 4.0 / 256.0
    margin_weight: float = 1.0
    anneal: bool = True
    restarts: int = 3


def _round_half_away(v):
    """C ``round``/``roundf``: TFLite's converter rounds zero points this way, and the unit its
    input codes (``torch.round`` and ``np.round`` round half to even)."""
    import torch

    return torch.sign(v) * torch.floor(torch.abs(v) + 0.5)


def _asym_params(lo: float, hi: float) -> tuple[float, float]:
    """Scale and zero point of a per-tensor asymmetric int8 range, as the converter stores them
    (a float32 scale; the zero point rounded half away from zero)."""
    import torch

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32(max(hi - lo, 1e-8) / 255.0))
    zp = float(np.clip(_round_half_away(torch.tensor(-128.0 - lo / scale, dtype=torch.float64)), -128, 127))
    return scale, zp


def _fq_asym(x, lo: float, hi: float):
    """Fake-quantize ``x`` to per-tensor asymmetric int8 over [lo, hi] (straight-through gradient).

    Ties round away from zero, as the unit's input quantizer and the converter do. It matters
    for the network input: its range is exactly [-1, 1], so the zero point is round(-0.5) = -1.
    """
    import torch

    scale, zp = _asym_params(lo, hi)
    q = torch.clamp(_round_half_away(x / torch.tensor(scale, dtype=x.dtype)) + zp, -128, 127)
    return x + ((q - zp) * scale - x).detach()


def _fq_fully_connected(x, lin, in_scale: float, lo: float, hi: float):
    """A Linear layer as the converted FULLY_CONNECTED computes it, output over [lo, hi]
    (straight-through gradients).

    * Weights: per-output-channel symmetric int8, ``float32 w * (1 / scale)`` rounded half away
      from zero, as the converter does (``w / scale`` rounds about one weight in 10,000 the other
      way). Bias: int32 at ``in_scale * weight scale``.
    * Output: TFLM multiplies the int32 accumulator by a Q31 multiplier with rounding, then
      divides by 2**r with rounding again (``MultiplyByQuantizedMultiplier``; r is the
      multiplier's right shift). Rounding twice moves a value within 2**-r of a .5 to the other
      code, about one hidden code in 800 here, and one hidden code can move a logit by several
      codes. Both roundings are repeated, in float64.
    """
    import torch

    w, b = lin.weight, lin.bias
    in_scale = float(np.float32(in_scale))
    w_scale = torch.clamp(w.detach().abs().amax(dim=1) / 127.0, min=1e-12)
    w_q = torch.clamp(_round_half_away(w * (1.0 / w_scale[:, None])), -127, 127)
    b_scale = in_scale * w_scale
    b_q = _round_half_away(b / b_scale)
    pre = torch.nn.functional.linear(x, w + (w_q * w_scale[:, None] - w).detach(), b + (b_q * b_scale - b).detach())

    scale, zp = _asym_params(lo, hi)
    _, exp = torch.frexp(in_scale * w_scale.double() / scale)  # the real multiplier
    step = torch.pow(2.0, torch.clamp(-exp, min=0).double())  # 2**r
    q = _round_half_away(_round_half_away(pre.double() / scale * step) / step)  # high mul, then shift
    q = torch.clamp(q + zp, -128, 127)
    return pre + ((q - zp).float() * scale - pre).detach()


def _fq_output(y):
    """LOGISTIC int8 output: scale 1/256, zero point -128."""
    import torch

    q = torch.clamp(torch.round(y / OUT_SCALE) + OUT_ZP, -128, 127)
    return y + ((q - OUT_ZP) * OUT_SCALE - y).detach()


def margin_loss(y, y_teacher, margin: float):
    """Squared hinge (output LSB²) on the teacher's coaching decisions, by the schema's cue language.

    Each motor output must sit at least ``margin`` past ``motor_on`` on the teacher's side; the
    frequency output likewise past both band edges, on rows where the teacher has a motor on
    (the only rows where the rider feels the frequency).
    """
    import torch

    from motocoach.schema import load_schema

    cues = load_schema().cues
    loss = 0.0
    for k in (0, 1):
        side = torch.sign(y_teacher[:, k] - cues.motor_on)
        loss = loss + torch.relu(margin - side * (y[:, k] - cues.motor_on)) ** 2
    felt = ((y_teacher[:, 0] >= cues.motor_on) | (y_teacher[:, 1] >= cues.motor_on)).float()
    for edge in cues.normalized_band_edges():
        side = torch.sign(y_teacher[:, 2] - edge)
        loss = loss + felt * torch.relu(margin - side * (y[:, 2] - edge)) ** 2
    return torch.mean(loss) / OUT_SCALE ** 2


def _linears(actor):
    from torch import nn

    return [m for m in actor.body if isinstance(m, nn.Linear)] + [actor.head]


def ranges(actor, calib: np.ndarray) -> list[tuple[float, float]]:
    """Float min/max of the input, each hidden ReLU output and the logits over ``calib``
    (normalized rows): what onnx2tf's calibration will see."""
    import torch

    with torch.no_grad():
        h = torch.from_numpy(np.asarray(calib, np.float32))
        out = [(float(h.min()), float(h.max()))]
        for lin in _linears(actor)[:-1]:
            h = torch.relu(lin(h))
            out.append((float(h.min()), float(h.max())))
        z = actor.head(h)
        out.append((float(z.min()), float(z.max())))
    return out


def fake_quant_forward(actor, x, rng: list[tuple[float, float]]):
    """The student's forward pass as the int8 model computes it (up to integer rounding)."""
    import torch

    h = _fq_asym(x, *rng[0])
    lins = _linears(actor)
    for k, lin in enumerate(lins[:-1]):  # a ReLU range starts at 0: codes clamp at its zero point
        h = torch.relu(_fq_fully_connected(h, lin, _asym_params(*rng[k])[0], *rng[k + 1]))
    z = _fq_fully_connected(h, lins[-1], _asym_params(*rng[-2])[0], *rng[-1])
    return _fq_output(torch.sigmoid(z))


def finetune(teacher, train_rows: np.ndarray, calib: np.ndarray, cfg: QatConfig | None = None,
             on_step: Callable[[int, float], None] | None = None):
    """Return a fine-tuned copy of ``teacher`` (a CoachActor) and its training record.

    ``train_rows`` and ``calib`` are normalized telemetry; ``calib`` must be the rows the
    converter will calibrate on, so the trained ranges are the converted model's ranges.
    """
    import torch

    cfg = cfg or QatConfig()
    teacher = teacher.eval()
    pick = np.random.default_rng(cfg.seed).permutation(len(train_rows))[:SELECTION_ROWS]
    selection = torch.from_numpy(np.asarray(train_rows, np.float32)[np.sort(pick)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-wide MLP: more threads only spin against each other
    try:
        runs = []
        for i in range(max(1, cfg.restarts)):
            c = dataclasses.replace(cfg, seed=cfg.seed + i)
            torch.manual_seed(c.seed)
            student, record = _finetune(teacher, train_rows, calib, c, on_step)
            runs.append((_agreement(teacher, student, selection, calib), c.seed, student, record))
    finally:
        torch.set_num_threads(threads)
    _, _, student, record = max(runs, key=lambda r: (r[0], -r[1]))  # ties: the lower seed
    record["restarts"] = [{"seed": seed, "selection_agreement": a} for a, seed, _, _ in runs]
    record["selection_rows"] = int(len(selection))
    return student, record


def _agreement(teacher, student, x, calib) -> float:
    """Share of rows ``x`` on which the student's int8 model (the simulation is exact) makes the
    teacher's coaching decisions."""
    import torch

    from motocoach.quantization.checks import decision_agreement

    with torch.no_grad():
        return decision_agreement(teacher(x).numpy(),
                                  fake_quant_forward(student, x, ranges(student, calib)).numpy())["all"]


def _finetune(teacher, train_rows, calib, cfg, on_step):
    import copy

    import torch

    student = copy.deepcopy(teacher).train()  # finetune() put the teacher in eval mode
    x_all = torch.from_numpy(np.concatenate([train_rows, calib]).astype(np.float32))
    x_cal = torch.from_numpy(np.asarray(calib, np.float32))
    gen = torch.Generator().manual_seed(cfg.seed)

    def bound_penalty():
        # on every calibration row: its extremes (range-limit rows too) set the LOGISTIC input range
        return torch.sum(torch.relu(student.logits(x_cal).abs() - cfg.logit_bound) ** 2) / cfg.batch

    opt = torch.optim.Adam(student.parameters(), lr=cfg.shrink_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.shrink_steps) if cfg.anneal else None

    def batch():
        x = x_all[torch.randint(0, len(x_all), (cfg.batch,), generator=gen)]
        if cfg.input_noise > 0:  # half the batch between the logged rows, inside the valid range
            half = cfg.batch // 2
            x = x.clone()
            x[:half] = torch.clamp(x[:half] + cfg.input_noise * torch.randn(half, x.shape[1], generator=gen),
                                   -1.0, 1.0)
        with torch.no_grad():
            return x, teacher(x)  # the teacher is the label

    for _ in range(cfg.shrink_steps):
        x, y_t = batch()
        z = student.logits(x)
        fit = torch.mean(((torch.sigmoid(z) - y_t) / OUT_SCALE) ** 2)
        loss = fit + cfg.bound_weight * (torch.mean(torch.relu(z.abs() - cfg.logit_bound) ** 2) + bound_penalty())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps) if cfg.anneal else None
    losses = []
    rng = ranges(student, calib)
    for step in range(cfg.steps):
        if step % cfg.range_every == 0:
            rng = ranges(student, calib)
        x, y_t = batch()
        y = fake_quant_forward(student, x, rng)
        fit = torch.mean(((y - y_t) / OUT_SCALE) ** 2)  # in output LSB^2
        loss = fit + cfg.margin_weight * margin_loss(y, y_t, cfg.margin) + cfg.bound_weight * bound_penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            losses.append(float(fit.detach()))
            if on_step:
                on_step(step, losses[-1])
    student.eval()
    final = ranges(student, calib)
    record = {"seed": cfg.seed, "shrink_steps": cfg.shrink_steps, "steps": cfg.steps, "batch": cfg.batch, "lr": cfg.lr,
              "logit_bound": cfg.logit_bound, "input_noise": cfg.input_noise, "margin": cfg.margin,
              "margin_weight": cfg.margin_weight, "anneal": cfg.anneal,
              "train_rows": int(len(train_rows)), "calibration_rows": int(len(calib)),
              "fit_mse_lsb2_first": losses[0], "fit_mse_lsb2_last": losses[-1],
              "ranges": [list(r) for r in final], "teacher_ranges": [list(r) for r in ranges(teacher, calib)],
              "logistic_input_scale_trained": (max(final[-1][1], 0.0) - min(final[-1][0], 0.0)) / 255.0}
    return student, record
