"""Sweeps: lists of independent jobs, each with parameters, a stable hash and a result.

A job is one call of a job function (:func:`run_job`): evaluate a batch of episodes, train a
preset with a seed, or quantize and check a trained policy. Every seed a job uses is one of
its parameters, so a job gives the same result wherever it runs. :func:`run_sweep` hands the
jobs to an executor (:mod:`motocoach.training.sweep_exec`: in-process, local Ray or a Ray
cluster), writes each finished job's result at once to a JSONL store keyed by the job hash,
and on ``resume`` skips the jobs the store already holds.

>>> job = evaluate_job("none", track="kestrel", rider="amateur", seeds=2, seed=0)
>>> job.hash == evaluate_job("none", track="kestrel", rider="amateur", seeds=2, seed=0).hash
True
>>> run_job(job)["completed"]
2
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from motocoach.errors import ConfigError, MotoCoachError

JOB_KINDS = ("evaluate", "train", "quantize")
POLICY_COACHES = ("bc", "bc+ppo")


class SweepError(MotoCoachError):
    """Some jobs of a sweep failed; the others finished and were kept."""


class SweepInterrupted(MotoCoachError):
    """Ctrl-C: the finished jobs are kept in the store; ``--resume`` goes on from there."""

    exit_code = 130


@dataclass(frozen=True)
class Job:
    """One job: a kind and JSON-able parameters. Its hash names its result in the store."""

    kind: str
    params: dict[str, Any] = field(hash=False)

    @property
    def hash(self) -> str:
        text = json.dumps({"kind": self.kind, "params": self.params}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        shown = {k: v for k, v in self.params.items() if not k.endswith("_sha256") and v is not None}
        return f"{self.kind} " + " ".join(f"{k}={v}" for k, v in shown.items())


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _digest_if_file(value: str | None) -> str | None:
    # A track or policy given as a file is part of the job: a changed file is a new job.
    return file_sha256(value) if value and Path(value).is_file() else None


def evaluate_job(coach: str, *, track: str, rider: str, seeds: int, seed: int,
                 policy: str | Path | None = None, vehicle: str | None = None) -> Job:
    """Ride ``seeds`` flying laps (seeds ``seed``..) of ``rider`` on ``track`` with ``coach``."""
    if coach in POLICY_COACHES and policy is None:
        raise ConfigError(f"coach {coach!r} needs a policy file")
    # Files by absolute path: a Ray worker does not run in this folder.
    policy = str(Path(policy).resolve()) if policy is not None else None
    track = str(Path(track).resolve()) if Path(str(track)).is_file() else str(track)
    params = {"coach": coach, "track": track, "rider": rider, "seeds": int(seeds), "seed": int(seed),
              "policy": policy, "vehicle": vehicle,
              "policy_sha256": _digest_if_file(policy), "track_sha256": _digest_if_file(str(track))}
    return Job("evaluate", params)


def train_job(preset: str, *, seed: int, dataset_root: str | Path, run_dir: str | Path) -> Job:
    """BC then PPO with ``preset`` and ``seed``; writes ``policy.pt`` into ``run_dir``."""
    return Job("train", {"preset": preset, "seed": int(seed), "dataset_root": str(Path(dataset_root).resolve()),
                         "run_dir": str(Path(run_dir).resolve())})


def quantize_job(policy: str | Path, *, run_dir: str | Path, dataset_root: str | Path, seed: int = 0,
                 n_calib: int = 2000, qat: bool = True) -> Job:
    """Quantize ``policy`` to full int8 (PTQ, and QAT unless ``qat`` is False, the better kept)
    and run the checks; the report lands in ``run_dir``."""
    return Job("quantize", {"policy": str(Path(policy).resolve()), "run_dir": str(Path(run_dir).resolve()),
                            "dataset_root": str(Path(dataset_root).resolve()), "seed": int(seed),
                            "n_calib": int(n_calib), "qat": bool(qat),
                            "policy_sha256": _digest_if_file(str(policy))})


def _check_digest(path: str | None, expected: str | None, what: str) -> None:
    if expected is not None and file_sha256(path) != expected:
        raise ConfigError(f"{what} {path} changed since the sweep was planned; plan it again")


def strict_json(x: Any) -> Any:
    """Plain JSON data: tuples become lists, NaN and infinity become null (JSON has no NaN;
    a cell where no ride finished has no mean lap time)."""
    if isinstance(x, dict):
        return {str(k): strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def run_job(job: Job) -> dict[str, Any]:
    """Run one job where this process is, and return its result as plain, strict JSON data."""
    # Through JSON (floats round-trip exactly): a fresh result and a stored one are the same data.
    return json.loads(json.dumps(strict_json(_run(job)), allow_nan=False))


def _run(job: Job) -> dict[str, Any]:
    p = job.params
    if job.kind == "evaluate":
        from motocoach.training.evaluate import evaluate_coach

        _check_digest(p["policy"], p.get("policy_sha256"), "policy")
        _check_digest(p["track"], p.get("track_sha256"), "track")
        if p["coach"] in POLICY_COACHES:
            import torch

            # One thread, so a policy's float sums do not depend on the worker's thread count.
            torch.set_num_threads(1)
        r = evaluate_coach(p["coach"], track=p["track"], rider=p["rider"], seeds=p["seeds"], seed=p["seed"],
                           policy=Path(p["policy"]) if p["policy"] else None, vehicle=p["vehicle"])
        return asdict(r)
    if job.kind == "train":
        from motocoach.training.train import train

        path = train(Path(p["run_dir"]), preset=p["preset"], dataset_root=Path(p["dataset_root"]),
                     seed=p["seed"], progress=False)
        meta = json.loads(path.with_name("policy.json").read_text())
        return {"policy": str(path), "policy_sha256": file_sha256(path),
                "bc_loss_last": meta["bc"]["loss_last"], "ppo_steps": meta["ppo"]["steps"]}
    if job.kind == "quantize":
        from motocoach.quantization.pipeline import quantize

        _check_digest(p["policy"], p.get("policy_sha256"), "policy")
        q = quantize(p["policy"], p["run_dir"], dataset_root=p["dataset_root"], seed=p["seed"], n_calib=p["n_calib"],
                     qat=p.get("qat", True))
        checks = q.report["checks"]
        return {"tflite": str(q.tflite), "tflite_sha256": q.report["tflite_sha256"],
                "decision_agreement": checks["decision_agreement"]["all"], "warnings": q.report["warnings"]}
    raise ConfigError(f"unknown job kind {job.kind!r}; use one of {', '.join(JOB_KINDS)}")


class ResultStore:
    """Finished jobs, one JSON line each, written (and flushed to disk) the moment they finish."""

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            self.path.write_text("")

    def records(self) -> dict[str, dict]:
        """Every readable record by job hash (a line cut short by a crash is ignored)."""
        out: dict[str, dict] = {}
        if not self.path.exists():
            return out
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            out[rec["hash"]] = rec
        return out

    def finished(self) -> dict[str, dict]:
        """Results of the jobs that succeeded, by hash."""
        return {h: r["result"] for h, r in self.records().items() if r.get("ok")}

    def write(self, job: Job, result: dict | None, error: str | None = None) -> None:
        rec = {"hash": job.hash, "kind": job.kind, "params": job.params, "ok": error is None}
        rec.update({"result": result} if error is None else {"error": error})
        with self.path.open("a") as f:
            f.write(json.dumps(strict_json(rec), sort_keys=True, allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class SweepReport:
    """What a sweep did: results by job hash, failures with their jobs, and what was skipped."""

    jobs: list[Job]
    results: dict[str, dict] = field(default_factory=dict)
    failures: list[tuple[Job, str]] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0
    workers: str = ""

    def ordered(self) -> list[dict]:
        """Results in job order (whatever order the jobs finished in)."""
        return [self.results[j.hash] for j in self.jobs if j.hash in self.results]


def unique(jobs: Iterable[Job]) -> list[Job]:
    return list({j.hash: j for j in jobs}.values())


def run_sweep(jobs: Iterable[Job], executor=None, *, store: ResultStore | None = None,
              progress: bool = True, title: str = "sweep") -> SweepReport:
    """Run ``jobs`` on ``executor`` (default: in-process); see the module docstring.

    A job that raises is recorded with its parameters and the others go on; Ctrl-C keeps
    what has finished and raises :class:`SweepInterrupted`. Failures are in the report;
    the caller decides how to present them (the CLI exits non-zero). The executor stays
    open (one Ray can serve several sweeps); its creator closes it.
    """
    from motocoach.training.sweep_exec import InProcessExecutor
    from motocoach.training.sweep_progress import SweepProgress

    executor = executor or InProcessExecutor()
    report = SweepReport(unique(jobs))
    if store is not None:
        done = store.finished()
        report.results = {j.hash: done[j.hash] for j in report.jobs if j.hash in done}
        report.skipped = len(report.results)
    todo = [j for j in report.jobs if j.hash not in report.results]
    t0 = time.monotonic()
    with SweepProgress(title, total=len(report.jobs), done=report.skipped, enabled=progress) as bar:
        try:
            for event in executor.run(todo):
                if event is not None:
                    job, result, error = event
                    if store is not None:
                        store.write(job, result, error)
                    if error is None:
                        report.results[job.hash] = result
                    else:
                        report.failures.append((job, error))
                bar.update(done=len(report.results) + len(report.failures), failed=len(report.failures),
                           workers=executor.workers())
        except KeyboardInterrupt:
            executor.cancel()
            where = f" in {store.path}" if store is not None else ""
            raise SweepInterrupted(f"interrupted: {len(report.results)} of {len(report.jobs)} jobs finished "
                                   f"and are kept{where}; rerun with --resume to go on") from None
        finally:
            report.workers = executor.workers()
    report.seconds = time.monotonic() - t0
    return report


def raise_on_failures(report: SweepReport, store: ResultStore | None = None) -> None:
    """One clear error for a sweep with failed jobs (the caller lists them first)."""
    if report.failures:
        kept = f"; the others are in {store.path}" if store is not None else ""
        raise SweepError(f"{len(report.failures)} of {len(report.jobs)} jobs failed{kept}; fix the cause and "
                         "rerun with --resume to run only what is missing")
