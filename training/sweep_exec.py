"""Executors: where a sweep's jobs run. All three run the same :func:`~motocoach.training.sweep.run_job`.

* :class:`InProcessExecutor`: one job after the other in this process (the default; never
  imports Ray, so ``make demo`` and small sweeps do not need it);
* :class:`RayExecutor` with ``workers=N``: starts Ray on this machine with N CPUs;
* :class:`RayExecutor` with ``address="HOST:PORT"`` (or ``RAY_ADDRESS``): joins a running cluster.

``run(jobs)`` yields ``(job, result, error)`` as jobs finish, in any order, and ``None`` now
and then while it waits, so a progress bar can refresh. Ray does the scheduling and the
retries: a task on a node that dies is run again elsewhere (``max_retries``); a job that
raises is not retried and comes back as an error with its message.
"""

from __future__ import annotations

import os
import time
from typing import Iterable, Iterator, Optional

from motocoach.errors import ConfigError
from motocoach.training.sweep import Job, run_job

Event = Optional[tuple[Job, Optional[dict], Optional[str]]]

#: Object store per local Ray node: results are small dicts, so a small store leaves memory to the jobs.
LOCAL_OBJECT_STORE_MB = 100
#: How often a task is retried when its worker or node dies (not when the job itself raises).
NODE_LOSS_RETRIES = 3


def describe_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class InProcessExecutor:
    """Runs the jobs here, in order."""

    def workers(self) -> str:
        return "1 (in-process)"

    def run(self, jobs: Iterable[Job]) -> Iterator[Event]:
        for job in jobs:
            try:
                yield job, run_job(job), None
            except Exception as e:  # noqa: BLE001 - a job's failure is data, reported with its parameters
                yield job, None, describe_error(e)

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


class RayExecutor:
    """Runs the jobs as Ray tasks (one CPU each) on a local Ray or an existing cluster.

    ``workers`` starts a local Ray with that many CPUs (on loopback); ``address`` connects to
    a cluster; with neither, Ray's own rules apply (``RAY_ADDRESS``, or a running local Ray).
    A Ray this executor started is shut down by :meth:`close`; one that was already running
    is left alone. ``init_options`` go to ``ray.init`` as they are (e.g. ``_temp_dir``).
    """

    def __init__(self, *, workers: int | None = None, address: str | None = None,
                 max_retries: int = NODE_LOSS_RETRIES, wait_s: float = 0.5,
                 init_options: dict | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers {workers}: give 1 or more")
        if workers is not None and address:
            raise ConfigError("give either --workers (a local Ray) or --ray-address (a cluster), not both")
        self.max_retries = max_retries
        self.wait_s = wait_s
        self._pending: dict = {}
        self._owned = False
        self._workers_label, self._workers_at = "?", -1e9
        if workers is not None:
            # Read by Ray when it is imported: a local Ray then binds every node to 127.0.0.1.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        self._ray = ray
        if ray.is_initialized():
            return
        options = {"log_to_driver": False, **(init_options or {})}
        try:
            if workers is not None:
                ray.init(num_cpus=workers, include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE_MB * 1024 * 1024, **options)
            else:
                address = address or os.environ.get("RAY_ADDRESS") or "auto"
                check_reachable(address)
                ray.init(address=address, **options)
        except ConnectionError as e:
            raise ConfigError(f"cannot reach a Ray cluster at {address}: {e}; give the head's HOST:PORT "
                              "(6379 unless `ray start --head --port` said otherwise)") from None
        self._owned = True

    def workers(self, max_age_s: float = 2.0) -> str:
        """CPUs and nodes Ray reports alive (asked at most every ``max_age_s``: it is a GCS call)."""
        if time.monotonic() - self._workers_at < max_age_s:
            return self._workers_label
        try:
            nodes = [n for n in self._ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) > 0]
        except Exception:  # noqa: BLE001 - a progress label must never end the sweep
            return "?"
        cpus = sum(int(n["Resources"]["CPU"]) for n in nodes)
        self._workers_label = f"{cpus} CPU on {len(nodes)} node{'s' if len(nodes) != 1 else ''} (Ray)"
        self._workers_at = time.monotonic()
        return self._workers_label

    def run(self, jobs: Iterable[Job]) -> Iterator[Event]:
        ray = self._ray
        task = ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)(run_job)
        self._pending = {task.remote(job): job for job in jobs}
        while self._pending:
            ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=self.wait_s)
            if not ready:
                yield None
                continue
            for ref in ready:
                job = self._pending.pop(ref)
                try:
                    yield job, ray.get(ref), None
                except ray.exceptions.RayTaskError as e:
                    yield job, None, describe_error(e.cause if e.cause is not None else e)
                except ray.exceptions.RayError as e:  # worker or node lost more often than max_retries
                    yield job, None, f"{type(e).__name__}: lost after {self.max_retries} retries ({e})"

    def cancel(self) -> None:
        for ref in list(self._pending):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
        self._pending.clear()

    def close(self) -> None:
        if self._owned:
            self._ray.shutdown()
            self._owned = False


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A clear error at once for a HOST:PORT nothing listens on (Ray itself would retry for ever)."""
    import socket

    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", ray:// client addresses: Ray's own checks apply
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError(f"cannot reach a Ray cluster at {address} ({e.strerror or e}); give the head's "
                          "HOST:PORT (6379 unless `ray start --head --port` said otherwise)") from None


def make_executor(workers: int | None = None, ray_address: str | None = None):
    """In-process unless ``workers`` or ``ray_address`` asks for Ray (Ray is imported only then)."""
    if workers is None and not ray_address:
        return InProcessExecutor()
    return RayExecutor(workers=workers, address=ray_address or None)
