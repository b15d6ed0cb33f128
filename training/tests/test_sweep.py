"""The sweep layer in-process: stable job hashes, results written at once, resume, failures
reported with their parameters, Ctrl-C keeps what finished, and no Ray on this path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from motocoach.cli import main
from motocoach.training.sweep import (Job, ResultStore, SweepError, SweepInterrupted, evaluate_job, raise_on_failures,
                                      run_job, run_sweep, train_job)
from motocoach.training.sweep_exec import InProcessExecutor, make_executor

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def oval_jobs(oval_track):
    def make(n=3):
        return [evaluate_job("none", track=oval_track, rider="amateur", seeds=2, seed=10 * i) for i in range(n)]

    return make


class CountingExecutor(InProcessExecutor):
    """In-process, but counts the jobs it really ran and can stop (Ctrl-C) after some."""

    def __init__(self, interrupt_after=None):
        self.ran, self.interrupt_after = [], interrupt_after

    def run(self, jobs):
        for event in super().run(jobs):
            if self.interrupt_after is not None and len(self.ran) == self.interrupt_after:
                raise KeyboardInterrupt
            self.ran.append(event[0])
            yield event


def test_job_hash_is_stable_and_follows_every_parameter(tmp_path):
    a = evaluate_job("none", track="kestrel", rider="amateur", seeds=2, seed=0)
    assert a.hash == Job("evaluate", dict(reversed(list(a.params.items())))).hash  # key order does not matter
    others = [evaluate_job("none", track="kestrel", rider="amateur", seeds=2, seed=1),
              evaluate_job("rule", track="kestrel", rider="amateur", seeds=2, seed=0),
              evaluate_job("none", track="heron", rider="amateur", seeds=2, seed=0),
              evaluate_job("none", track="kestrel", rider="amateur", seeds=3, seed=0)]
    assert len({a.hash, *(o.hash for o in others)}) == 5
    # a policy given as a file is part of the job: a changed file is a new job
    pol = tmp_path / "p.pt"
    pol.write_bytes(b"one")
    h1 = evaluate_job("bc+ppo", track="kestrel", rider="amateur", seeds=2, seed=0, policy=pol).hash
    pol.write_bytes(b"two")
    assert evaluate_job("bc+ppo", track="kestrel", rider="amateur", seeds=2, seed=0, policy=pol).hash != h1
    assert train_job("test", seed=0, dataset_root="d", run_dir="r").hash != train_job("test", seed=1, dataset_root="d",
                                                                                        run_dir="r").hash


def test_each_result_is_written_at_once_and_resume_skips_finished_jobs(tmp_path, oval_jobs):
    store = ResultStore(tmp_path / "jobs.jsonl")
    first = run_sweep(oval_jobs(2), CountingExecutor(), store=store, progress=False)
    lines = (tmp_path / "jobs.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["ok"] for x in lines)
    assert [r["lap_times_s"] for r in first.ordered()] == [run_job(j)["lap_times_s"] for j in oval_jobs(2)]

    ex = CountingExecutor()
    again = run_sweep(oval_jobs(3), ex, store=ResultStore(tmp_path / "jobs.jsonl", resume=True), progress=False)
    assert again.skipped == 2 and [j.hash for j in ex.ran] == [oval_jobs(3)[2].hash]
    assert json.dumps(again.ordered()[:2], sort_keys=True) == json.dumps(first.ordered(), sort_keys=True)


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path, oval_jobs):
    store = ResultStore(tmp_path / "jobs.jsonl")
    store.write(oval_jobs(1)[0], {"x": 1})
    with (tmp_path / "jobs.jsonl").open("a") as f:
        f.write('{"hash": "abc", "ok": tr')
    assert list(ResultStore(tmp_path / "jobs.jsonl", resume=True).finished()) == [oval_jobs(1)[0].hash]


def test_a_failing_job_is_reported_with_its_parameters_and_the_others_finish(tmp_path, oval_jobs):
    bad = evaluate_job("none", track="no-such-track", rider="amateur", seeds=2, seed=0)
    store = ResultStore(tmp_path / "jobs.jsonl")
    report = run_sweep([bad, *oval_jobs(2)], store=store, progress=False)
    assert len(report.results) == 2 and [j for j, _ in report.failures] == [bad]
    assert "TrackError" in report.failures[0][1] and "no-such-track" in report.failures[0][1]
    rec = store.records()[bad.hash]
    assert rec["ok"] is False and rec["params"]["track"] == "no-such-track"
    with pytest.raises(SweepError, match="1 of 3 jobs failed"):
        raise_on_failures(report, store)


def test_evaluate_verb_exits_non_zero_with_a_summary_of_failed_jobs(tmp_path, capsys):
    rc = main(["evaluate", "--track", "no-such-track", "--rider", "amateur", "--seeds", "2", "--resume",
               "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert rc == 2
    assert "3 of 3 jobs failed" in out.err and "rerun with --resume" in out.err
    assert "coach=telemetry-rule" in out.out and "no-such-track" in out.out   # each failed job, with parameters
    assert len((tmp_path / "jobs.jsonl").read_text().splitlines()) == 3


def test_ctrl_c_keeps_the_finished_jobs_and_resume_goes_on(tmp_path, oval_jobs):
    with pytest.raises(SweepInterrupted, match="1 of 3 jobs finished") as e:
        run_sweep(oval_jobs(3), CountingExecutor(interrupt_after=1), store=ResultStore(tmp_path / "j.jsonl"),
                  progress=False)
    assert e.value.exit_code == 130
    ex = CountingExecutor()
    report = run_sweep(oval_jobs(3), ex, store=ResultStore(tmp_path / "j.jsonl", resume=True), progress=False)
    assert report.skipped == 1 and len(ex.ran) == 2 and len(report.results) == 3


def test_bad_executor_options_are_clear_errors():
    from motocoach.errors import ConfigError

    assert isinstance(make_executor(None, None), InProcessExecutor)
    with pytest.raises(ConfigError, match="not both"):
        make_executor(2, "127.0.0.1:6379")


def test_in_process_path_and_the_demo_never_import_ray(tmp_path, oval_track):
    code = (
        "import sys\n"
        "import typer\n"
        "from motocoach.cli import build_app\n"
        "import motocoach.pipeline\n"
        # the in-process evaluate verb up to its first ride (an unknown track stops it there: exit 2)
        "try:\n"
        f"    build_app()(args=['evaluate', '--track', 'no-such-track', '--rider', 'amateur', '--seeds', '2',\n"
        f"                      '--out', {str(tmp_path)!r}], standalone_mode=False)\n"
        "except typer.Exit as e:\n"
        "    assert e.exit_code == 2, e.exit_code\n"
        "from motocoach.training.sweep import evaluate_job, run_sweep\n"
        f"run_sweep([evaluate_job('none', track={oval_track!r}, rider='amateur', seeds=2, seed=0)], progress=False)\n"
        "print('RAY_IMPORTED' if 'ray' in sys.modules else 'NO_RAY')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("NO_RAY")


def test_sweep_train_refuses_a_bad_preset_or_missing_data_in_one_line(tmp_path, capsys):
    assert main(["sweep", "train", "no-such-preset", "--data", str(tmp_path)]) == 2
    assert "unknown training preset" in capsys.readouterr().err
    assert main(["sweep", "train", "test", "--data", str(tmp_path / "missing")]) == 2
    assert "data generate" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_train_trains_each_seed_and_resume_skips_it(tmp_path, monkeypatch, capsys):
    from motocoach.training import datasets

    datasets.generate(tmp_path / "data", preset="test", seed=1, progress=False)
    monkeypatch.chdir(tmp_path)
    args = ["sweep", "train", "test", "--seeds", "1", "--first-seed", "3", "--data", str(tmp_path / "data"),
            "--run", "st"]
    assert main(args) == 0
    rec = [json.loads(x) for x in (tmp_path / "runs" / "st" / "jobs.jsonl").read_text().splitlines()]
    assert len(rec) == 1 and rec[0]["ok"] and rec[0]["params"]["seed"] == 3
    policy = tmp_path / "runs" / "st" / "seed-3" / "policy.pt"
    assert rec[0]["result"]["policy"] == str(policy.resolve()) and policy.is_file()
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "(1 kept from an earlier run)" in capsys.readouterr().out.replace("\n", " ")


def test_a_ray_address_nothing_listens_on_is_one_clear_error():
    import socket

    from motocoach.errors import ConfigError
    from motocoach.training.sweep_exec import check_reachable

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}", timeout_s=2.0)


def test_results_are_strict_json_and_nan_comes_back_as_nan(tmp_path):
    import math

    from motocoach.training.sweep import strict_json
    from motocoach.training.sweep_eval import as_coach_result

    raw = {"coach": "none", "track": "t", "rider": "r", "rides": 2, "completed": 0, "offtracks": 2,
           "lap_time_mean_s": math.nan, "lap_time_std_s": math.nan, "violation_s_per_lap": math.nan,
           "cue_duty": math.nan, "vehicle": "roadsport", "lap_times_s": (math.nan, math.nan)}
    plain = strict_json(raw)
    assert plain["lap_time_mean_s"] is None and plain["lap_times_s"] == [None, None]
    store = ResultStore(tmp_path / "jobs.jsonl")
    store.write(Job("evaluate", {"x": 1}), plain)
    assert "NaN" not in (tmp_path / "jobs.jsonl").read_text()
    back = as_coach_result(store.finished()[Job("evaluate", {"x": 1}).hash])
    assert math.isnan(back.lap_time_mean_s) and all(math.isnan(x) for x in back.lap_times_s)
    assert back.completed == 0 and back.vehicle == "roadsport"
