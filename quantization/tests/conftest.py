"""Session fixtures: a tiny Minari dataset, a BC-fitted actor, ONE onnx2tf conversion,
the generated files and the host build of the C engine (all cached for the session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motocoach.schema import load_schema


def fit_rule_actor(telemetry: np.ndarray, steps: int = 300, seed: int = 0):
    """A CoachActor trained by a few hundred BC steps on a simple, readable rule: left motor
    the further right of the line, right motor the further left, frequency rising with braking.
    Soft targets keep the logits moderate, like a real policy's."""
    import torch

    from motocoach.training.policy_net import CoachActor

    s = load_schema()
    torch.manual_seed(seed)
    actor = CoachActor()
    x = torch.from_numpy(s.normalize(telemetry))
    dev = x[:, s.feature_names.index("line_deviation")]
    brake = x[:, s.feature_names.index("brake")]
    y = torch.stack([(dev * 4).clamp(0, 1), (-dev * 4).clamp(0, 1), (brake + 1) / 2], 1)
    opt = torch.optim.Adam(actor.parameters(), 1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (256,), generator=gen)
        loss = torch.nn.functional.mse_loss(actor(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return actor.eval()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quant")


@pytest.fixture(scope="session")
def dataset_root(workdir) -> Path:
    from motocoach.training import datasets

    root = workdir / "datasets"
    datasets.generate(root, preset="test", seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def telemetry(dataset_root) -> np.ndarray:
    from motocoach.training.datasets import load_telemetry

    return load_telemetry(dataset_root)


@pytest.fixture(scope="session")
def policy_path(workdir, telemetry) -> Path:
    from motocoach.training.policy_net import save_actor

    return save_actor(fit_rule_actor(telemetry), workdir / "policy" / "policy.pt")


@pytest.fixture(scope="session")
def quantized(workdir, policy_path, dataset_root):
    """The quantize run all these tests share: post-training and (short) quantization-aware, two
    onnx2tf conversions (about 25 s)."""
    from motocoach.quantization.pipeline import quantize
    from motocoach.quantization.qat import QatConfig

    return quantize(policy_path, workdir / "run", dataset_root=dataset_root, n_calib=1000, seed=0,
                    qat_config=QatConfig(shrink_steps=150, steps=150))


@pytest.fixture(scope="session")
def tflite_bytes(quantized) -> bytes:
    return quantized.tflite.read_bytes()


@pytest.fixture(scope="session")
def generated(workdir, quantized) -> Path:
    from motocoach.quantization import codegen
    from motocoach.quantization.pipeline import provenance

    out = workdir / "coach_model"
    codegen.generate(quantized.tflite, out, created=provenance(quantized.report))
    return out


@pytest.fixture(scope="session")
def engine(workdir, generated):
    from motocoach.quantization.cbuild import EngineLib, build_host_lib

    return EngineLib(build_host_lib(workdir / "build", generated))
