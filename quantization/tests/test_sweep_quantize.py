"""The sweep's quantize job is the quantization pipeline: the same int8 model, byte for byte."""

from __future__ import annotations

import pytest

from motocoach.training.sweep import quantize_job, run_job


@pytest.mark.slow
def test_quantize_job_gives_the_pipeline_model(quantized, policy_path, dataset_root, tmp_path):
    result = run_job(quantize_job(policy_path, run_dir=tmp_path, dataset_root=dataset_root, seed=0, n_calib=1000))
    assert result["tflite_sha256"] == quantized.report["tflite_sha256"]
    assert result["decision_agreement"] == quantized.report["checks"]["decision_agreement"]["all"]
    assert (tmp_path / "quantize" / "model_int8.tflite").read_bytes() == quantized.tflite.read_bytes()
