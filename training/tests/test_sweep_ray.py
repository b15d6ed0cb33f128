"""Sweeps on Ray give the in-process results bit for bit: a local Ray with 1 worker, and a real
3-node cluster on this machine (a head with no CPU, two 1-CPU workers) that loses a worker
node mid-sweep and gains another."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ray_cluster  # noqa: E402  (before Ray is imported: loopback only, no usage statistics)

from motocoach.training.sweep import ResultStore, evaluate_job, run_sweep  # noqa: E402
from motocoach.training.sweep_exec import InProcessExecutor, RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow
POLICY = Path(__file__).resolve().parents[1] / "default_policy" / "policy.pt"


def canonical(results) -> str:
    return json.dumps(results, sort_keys=True)


@pytest.fixture
def ray_temp_dir():
    with ray_cluster.ray_temp_dir() as path:
        yield path


@pytest.fixture(scope="module")
def sweep_jobs(oval_track):
    jobs = [evaluate_job("none", track=oval_track, rider="amateur", seeds=2, seed=s) for s in range(0, 8, 2)]
    jobs += [evaluate_job("telemetry-rule", track=oval_track, rider="novice", seeds=2, seed=1),
             evaluate_job("bc+ppo", track=oval_track, rider="amateur", seeds=2, seed=1, policy=POLICY)]
    return jobs


@pytest.fixture(scope="module")
def in_process(sweep_jobs):
    report = run_sweep(sweep_jobs, InProcessExecutor(), progress=False)
    assert not report.failures
    return canonical(report.ordered())


def test_local_ray_one_worker_gives_the_in_process_evaluation(oval_track, tmp_path, ray_temp_dir):
    import ray

    from motocoach.training.evaluate import evaluate
    from motocoach.training.sweep_eval import evaluate_sweep

    expected = evaluate(policy=None, tracks=[oval_track], riders=["amateur"], seeds=2, seed=5, progress=False)
    ex = RayExecutor(workers=1, init_options={"_temp_dir": ray_temp_dir})
    try:
        results, report = evaluate_sweep(policy=None, tracks=[oval_track], riders=["amateur"], seeds=2, seed=5,
                                         out_dir=tmp_path, executor=ex, progress=False)
    finally:
        ex.close()
    assert not ray.is_initialized()  # the executor shut down the Ray it started
    assert report.workers == "1 CPU on 1 node (Ray)"
    assert canonical([asdict(r) for r in results]) == canonical([asdict(r) for r in expected])
    assert len((tmp_path / "jobs.jsonl").read_text().splitlines()) == 3
    saved = json.loads((tmp_path / "evaluation.json").read_text())["results"]
    assert [r["coach"] for r in saved] == ["none", "rule", "telemetry-rule"]
    track = Path(oval_track).stem
    for name in ("lap_times.png", f"cue_map_{track}.png", f"speed_{track}.png"):   # the in-process plots too
        assert (tmp_path / name).stat().st_size > 500, name


@pytest.fixture
def cluster(ray_temp_dir):
    with ray_cluster.loopback_cluster(ray_temp_dir, workers=2) as c:
        yield c


def test_cluster_losing_a_worker_node_mid_sweep_gives_the_in_process_results(cluster, sweep_jobs, in_process,
                                                                             tmp_path):
    # Submitted in reverse, finished in whatever order two nodes manage: the results must not care.
    ex = ray_cluster.LoseANode(RayExecutor(address=cluster.address), cluster)
    store = ResultStore(tmp_path / "jobs.jsonl")
    report = run_sweep(list(reversed(sweep_jobs)), ex, store=store, progress=False)
    assert ex.lost is not None and not report.failures
    # the lost node drops out of the count once Ray has noticed (when depends on the machine's load)
    assert re.fullmatch(r"[23] CPU on [23] nodes \(Ray\)", report.workers), report.workers
    report.jobs = sweep_jobs
    assert canonical(report.ordered()) == in_process
    assert len(store.finished()) == len(sweep_jobs)
