"""A real multi-node Ray cluster on this machine, for the sweep tests and the sweep bench.

Import this module before anything imports Ray: it keeps every node on 127.0.0.1 and turns
usage statistics off (both are read when Ray is imported). The head has no CPU, so every job
runs on a worker node; each node gets a small fixed object store and the dashboard is off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

OBJECT_STORE = 80 * 1024 * 1024


@contextlib.contextmanager
def ray_temp_dir() -> Iterator[str]:
    """Ray's own temp dir: short (socket paths are limited to ~107 bytes), never shared with
    another run (a stale cluster file there would make Ray join a dead cluster)."""
    path = tempfile.mkdtemp(prefix="ray")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def loopback_cluster(temp_dir: str, workers: int = 2):
    """A head with 0 CPUs and ``workers`` worker nodes with 1 CPU each; shut down on exit."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": OBJECT_STORE, "temp_dir": temp_dir})
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


class LoseANode:
    """Wraps an executor: after the first finished job, kill one worker node (no graceful
    shutdown: its running job dies with it) and add a fresh one."""

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
