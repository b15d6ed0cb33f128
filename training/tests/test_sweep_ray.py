"""Sweeps on Ray give the in-process results bit for bit: a local Ray with 1 worker, and a real
3-node cluster on this machine (a head with no CPU, two 1-CPU workers) that loses a worker
node mid-sweep and gains another."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest

# Read when Ray is imported: every node and the driver then use 127.0.0.1, so all traffic stays on loopback.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

from motocoach.training.sweep import ResultStore, evaluate_job, run_sweep  # noqa: E402
from motocoach.training.sweep_exec import InProcessExecutor, RayExecutor, hide_unusable_pyarrow  # noqa: E402

pytestmark = pytest.mark.slow
POLICY = Path(__file__).resolve().parents[1] / "default_policy" / "policy.pt"
OBJECT_STORE = 80 * 1024 * 1024


def canonical(results) -> str:
    return json.dumps(results, sort_keys=True)


@pytest.fixture
def ray_temp_dir():
    # Ray's own temp dir, short (socket paths are limited to ~107 bytes) and never shared with another run.
    path = tempfile.mkdtemp(prefix="ray")
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


class LoseANode:
    """Wraps an executor: after the first finished job, kill one worker node and add a fresh one."""

    def __init__(self, inner, cluster):
        self.inner, self.cluster, self.lost = inner, cluster, None

    def run(self, jobs):
        for event in self.inner.run(jobs):
            if event is not None and self.lost is None:
                self.lost = next(iter(self.cluster.worker_nodes))
                self.cluster.remove_node(self.lost, allow_graceful=False)
                self.cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
            yield event

    def workers(self):
        return self.inner.workers()

    def cancel(self):
        self.inner.cancel()

    def close(self):
        self.inner.close()


@pytest.fixture
def cluster(ray_temp_dir):
    hide_unusable_pyarrow()
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": OBJECT_STORE, "temp_dir": ray_temp_dir})
    try:
        for _ in range(2):
            c.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        c.wait_for_nodes()
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def test_cluster_losing_a_worker_node_mid_sweep_gives_the_in_process_results(cluster, sweep_jobs, in_process,
                                                                             tmp_path):
    # Submitted in reverse, finished in whatever order two nodes manage: the results must not care.
    ex = LoseANode(RayExecutor(address=cluster.address), cluster)
    store = ResultStore(tmp_path / "jobs.jsonl")
    report = run_sweep(list(reversed(sweep_jobs)), ex, store=store, progress=False)
    assert ex.lost is not None and not report.failures
    # the lost node drops out of the count once Ray has noticed (when depends on the machine's load)
    assert re.fullmatch(r"[23] CPU on [23] nodes \(Ray\)", report.workers), report.workers
    report.jobs = sweep_jobs
    assert canonical(report.ordered()) == in_process
    assert len(store.finished()) == len(sweep_jobs)
