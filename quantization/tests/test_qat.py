"""The decision hinge of quantization-aware fine-tuning follows the schema's cue language."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from motocoach.quantization.qat import OUT_SCALE, margin_loss  # noqa: E402
from motocoach.schema import load_schema  # noqa: E402

CUES = load_schema().cues
LOW_EDGE, HIGH_EDGE = CUES.normalized_band_edges()
M = 4 / 256


def _loss(student, teacher):
    return float(margin_loss(torch.tensor([student]), torch.tensor([teacher]), M))


def test_band_edges_are_the_schema_frequencies():
    f = next(a for a in load_schema().actions if a.name == "frequency")
    assert f.min + LOW_EDGE * (f.max - f.min) == pytest.approx(CUES.low_max_hz)
    assert f.min + HIGH_EDGE * (f.max - f.min) == pytest.approx(CUES.high_min_hz)


def test_no_loss_past_every_threshold_on_the_teachers_side():
    on, off = CUES.motor_on + 2 * M, CUES.motor_on - 2 * M
    assert _loss([on, off, HIGH_EDGE + 2 * M], [0.9, 0.0, 0.95]) == 0.0
    assert _loss([off, off, 0.0], [0.1, 0.1, 0.0]) == 0.0


def test_a_motor_on_the_wrong_side_costs_its_distance_squared_in_lsb():
    teacher = [0.9, 0.0, 0.0]
    student = [CUES.motor_on - M, 0.0, 0.0]  # 2 margins short of the required on-side
    assert _loss(student, teacher) == pytest.approx((2 * M / OUT_SCALE) ** 2, rel=1e-4)


def test_the_band_counts_only_when_the_teacher_has_a_motor_on():
    wrong_band = [0.0, 0.0, HIGH_EDGE + 0.2]  # teacher in the low band, student in the high one
    assert _loss(wrong_band, [0.0, 0.0, 0.0]) == 0.0  # both motors off: no frequency is felt
    assert _loss([0.9, 0.0, HIGH_EDGE + 0.2], [0.9, 0.0, 0.0]) > 0.0
