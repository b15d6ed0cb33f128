"""The sweep's quantize job is the quantization pipeline: the same int8 model, byte for byte."""

from __future__ import annotations

import pytest

from motocoach.training.sweep import quantize_job, run_job


@pytest.mark.slow
def test_quantize_job_gives_the_pipeline_model(policy_path, dataset_root, tmp_path):
    from motocoach.quantization.pipeline import quantize

    # post-training only, to keep this to one onnx2tf conversion on each side
    direct = quantize(policy_path, tmp_path / "direct", dataset_root=dataset_root, n_calib=1000, seed=0, qat=False)
    result = run_job(quantize_job(policy_path, run_dir=tmp_path / "job", dataset_root=dataset_root, seed=0,
                                  n_calib=1000, qat=False))
    assert result["tflite_sha256"] == direct.report["tflite_sha256"]
    assert result["decision_agreement"] == direct.report["checks"]["decision_agreement"]["all"]
    assert (tmp_path / "job" / "quantize" / "model_int8.tflite").read_bytes() == direct.tflite.read_bytes()
