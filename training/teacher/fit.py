"""Training the teacher: AdamW, warm-up + cosine learning rate, early stopping, resumable.

:func:`train_teacher` writes into ``out_dir``:

* ``expert.npz``: the expert rides (:class:`~.expert_data.ExpertSet`), reused by a resume
  and by :func:`evaluate_teacher`;
* ``checkpoint.pt``: after every epoch (model, optimizer, scheduler, epoch, best validation
  loss and weights, RNG states), written atomically, so a killed run resumes at the next epoch;
* ``teacher.pt``: the best weights on the validation tracks (:func:`~.model.save_teacher`),
  ``extra`` holding the metrics, the split and the history;
* ``tb/``: TensorBoard scalars (tensorboardX, which needs no TensorFlow).

Loss: Huber on the 20 x 4 scaled controls (masked where the horizon leaves the ride) plus
:attr:`FitConfig.sector_weight` x Huber on the scaled sector time (masked where the ride
does not reach the sector's end).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from motocoach.errors import ConfigError
from motocoach.schema import load_schema
from motocoach.training.teacher.expert_data import (ExpertConfig, ExpertSet, WindowDataset, build_expert_set,
                                                    expert_fingerprint)
from motocoach.training.teacher.model import get_teacher_preset, n_params

DEFAULT_EPOCHS = 8
EXPERT_FILE = "expert.npz"
CHECKPOINT = "checkpoint.pt"
TEACHER_FILE = "teacher.pt"


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings; ``samples_per_epoch`` caps an epoch (a random draw of the windows)."""

    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.05          # of all planned optimizer steps
    patience: int = 3                  # epochs without a better validation loss before stopping
    sector_weight: float = 0.5
    huber_delta: float = 0.1           # scaled units: errors above 10 % of full scale count linearly
    samples_per_epoch: int | None = 12_000
    val_samples: int = 4096            # a fixed, evenly spaced subset of the validation windows


#: The expert set and fit of :func:`tiny_teacher`: two short generated circuits (one for validation), one vehicle.
TINY_EXPERT = ExpertConfig(tracks=("gen-1044", "gen-1001"), vehicles=("superbike",), rides=2, laps=1,
                           keep_fraction=0.5, stride=4, calibration=False)
TINY_FIT = FitConfig(samples_per_epoch=768, val_samples=512, patience=10)


def masked_losses(net, batch, cfg: FitConfig):
    """(total, control, sector) losses of one batch from :meth:`WindowDataset.batch`."""
    import torch
    from torch.nn.functional import huber_loss

    hist, ctx, y, mask, sec, sec_ok = (torch.as_tensor(a) for a in batch)
    ctl_pred, sec_pred = net(hist, ctx)
    m = mask[..., None].expand_as(y).float()
    per = huber_loss(ctl_pred, y, reduction="none", delta=cfg.huber_delta) * m
    control = per.sum() / m.sum().clamp(min=1.0)
    s_ok = sec_ok.float()
    sector = (huber_loss(sec_pred, sec, reduction="none", delta=cfg.huber_delta) * s_ok).sum() / s_ok.sum().clamp(min=1.0)
    return control + cfg.sector_weight * sector, control, sector


def validation_loss(net, val: WindowDataset, idx: np.ndarray, cfg: FitConfig) -> tuple[float, float, float]:
    import torch

    net.eval()
    tot = np.zeros(3)
    with torch.no_grad():
        for i in range(0, len(idx), 1024):
            ks = idx[i:i + 1024]
            tot += np.array([float(v) for v in masked_losses(net, val.batch(ks), cfg)]) * len(ks)
    net.train()
    return tuple(tot / max(len(idx), 1))


def load_or_build_data(out_dir: Path, data: ExpertSet | None, expert: ExpertConfig, *, real_data: Path | None,
                       logs: Sequence[Path], log_track: str | None, log_vehicle: str, progress: bool) -> ExpertSet:
    """``data`` if given; else ``out_dir/expert.npz`` when it was built from the same inputs; else ride it."""
    path = out_dir / EXPERT_FILE
    if data is None:
        want = expert_fingerprint(expert, real_data, logs, log_track, log_vehicle)
        if path.is_file():
            cached = ExpertSet.load(path)
            if cached.fingerprint == want:
                return cached
        data = _ride_with_bar(expert, real_data, logs, log_track, log_vehicle, progress)
    data.save(path)
    return data


def _ride_with_bar(expert, real_data, logs, log_track, log_vehicle, progress) -> ExpertSet:
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("expert laps", total=None)

        def tick(msg: str, done: int, total: int) -> None:
            bar.update(task, description=msg, completed=done, total=total)

        return build_expert_set(expert, real_data=real_data, logs=logs, log_track=log_track,
                                log_vehicle=log_vehicle, progress=tick)


def _read_checkpoint(path: Path) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # torch raises many types for a damaged file
        raise ConfigError(f"{path} is not a readable training checkpoint ({type(e).__name__}); delete it "
                          "or train with --no-resume") from e


def _check_compatible(ck: dict, path: Path, preset: dict, fingerprint: str, fit: dict) -> None:
    if not isinstance(ck, dict) or "epoch" not in ck or "model" not in ck:
        raise ConfigError(f"{path} is not a teacher training checkpoint; delete it or train with --no-resume")
    for what, mine, theirs in (("preset", preset, ck.get("preset")), ("expert data", fingerprint, ck.get("data")),
                               ("fit settings", fit, ck.get("fit"))):
        if mine != theirs:
            raise ConfigError(f"{path} was written with a different {what}; resume with the same settings, "
                              "or use --no-resume (or another --out) to start again")


def _save_checkpoint(path: Path, state: dict) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)          # a kill mid-write leaves the previous checkpoint intact


def train_teacher(out_dir: Path, *, preset: str = "small", data: ExpertSet | None = None,
                  epochs: int = DEFAULT_EPOCHS, seed: int = 0, resume: bool = True, progress: bool = True,
                  max_minutes: float | None = None, tracks: Sequence[str] | None = None,
                  real_data: Path | None = None, logs: Sequence[Path] = (), log_track: str | None = None,
                  log_vehicle: str = "roadsport", expert: ExpertConfig | None = None,
                  fit: FitConfig | None = None) -> Path:
    """Train (or resume) a teacher in ``out_dir``; returns the ``teacher.pt`` path.

    ``tracks`` replaces the expert configuration's circuits; ``logs`` adds imported logs'
    valid laps. ``max_minutes`` stops before an epoch that would end past the budget
    (training time only, summed over resumes).
    """
    import torch

    from motocoach.training.teacher.model import TeacherNet, save_teacher

    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {epochs}")
    p = get_teacher_preset(preset)
    fit = fit or FitConfig()
    expert = expert or ExpertConfig()
    if tracks:
        expert = replace(expert, tracks=tuple(tracks))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)          # the cores are shared
    t_data = time.monotonic()
    data = load_or_build_data(out_dir, data, expert, real_data=real_data, logs=[Path(x) for x in logs],
                              log_track=log_track, log_vehicle=log_vehicle, progress=progress)
    data_s = time.monotonic() - t_data
    stride = int(data.stats.get("config", {}).get("stride", expert.stride))
    train_ds, val_ds = WindowDataset(data.rides_of("train"), stride), WindowDataset(data.rides_of("val"), stride)
    val_idx = np.unique(np.linspace(0, len(val_ds) - 1, min(fit.val_samples, len(val_ds))).astype(np.int64))
    per_epoch = min(len(train_ds), fit.samples_per_epoch or len(train_ds))
    batches = math.ceil(per_epoch / fit.batch)

    torch.manual_seed(seed)
    net = TeacherNet(p)
    opt = torch.optim.AdamW(net.parameters(), lr=fit.lr, weight_decay=fit.weight_decay)
    total_steps = epochs * batches
    warm = max(1, int(fit.warmup_frac * total_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(k / total_steps, 1.0))))
    rng = np.random.default_rng(seed)
    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": [],
             "train_s": 0.0, "resumed_at": []}
    ck_path = out_dir / CHECKPOINT
    ident = {"preset": asdict(p), "data": data.fingerprint, "fit": {**asdict(fit), "epochs": epochs, "seed": seed}}
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    if resume and ck_path.is_file():
        ck = _read_checkpoint(ck_path)
        _check_compatible(ck, ck_path, ident["preset"], ident["data"], ident["fit"])
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        best_state = ck["best_model"]
        torch.set_rng_state(ck["torch_rng"])
        rng.bit_generator.state = json.loads(ck["numpy_rng"])
        state = json.loads(ck["state"])
        state["resumed_at"].append(state["epoch"])

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from tensorboardX import SummaryWriter

    tb = SummaryWriter(str(out_dir / "tb"))
    stopped = "epochs"
    net.train()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not progress, transient=True) as bar:
        task = bar.add_task("teacher", total=epochs * batches, completed=state["epoch"] * batches)
        while state["epoch"] < epochs:
            if state["bad_epochs"] >= fit.patience:
                stopped = "early stopping"
                break
            last = state["history"][-1]["seconds"] if state["history"] else 0.0
            if max_minutes is not None and state["train_s"] + last > max_minutes * 60.0:
                stopped = "max minutes"
                break
            epoch = state["epoch"] + 1
            t0 = time.monotonic()
            order = rng.permutation(len(train_ds))[:per_epoch]
            run = 0.0
            for b in range(batches):
                ks = order[b * fit.batch:(b + 1) * fit.batch]
                loss, _, _ = masked_losses(net, train_ds.batch(ks), fit)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                sched.step()
                run += loss.item()
                step = (epoch - 1) * batches + b
                if step % 20 == 0:
                    tb.add_scalar("train/loss", loss.item(), step)
                    tb.add_scalar("train/lr", sched.get_last_lr()[0], step)
                bar.update(task, advance=1, description=f"teacher epoch {epoch}/{epochs}")
            val, val_ctl, val_sec = validation_loss(net, val_ds, val_idx, fit)
            secs = time.monotonic() - t0
            state["train_s"] += secs
            state["history"].append({"epoch": epoch, "train_loss": run / batches, "val_loss": val,
                                     "val_control": val_ctl, "val_sector": val_sec, "seconds": secs})
            for k in ("val_loss", "val_control", "val_sector"):
                tb.add_scalar(f"val/{k[4:]}", state["history"][-1][k], epoch)
            if val < state["best_val"]:
                state.update(best_val=val, best_epoch=epoch, bad_epochs=0)
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            _save_checkpoint(ck_path, {**ident, "epoch": epoch, "model": net.state_dict(), "optimizer": opt.state_dict(),
                                       "scheduler": sched.state_dict(), "best_model": best_state,
                                       "torch_rng": torch.get_rng_state(),
                                       "numpy_rng": json.dumps(rng.bit_generator.state), "state": json.dumps(state)})
    tb.close()
    net.load_state_dict(best_state)
    net.eval()
    metrics = evaluate_windows(net, val_ds)
    extra = {"metrics": metrics, "split": data.split, "data_stats": data.stats, "data_fingerprint": data.fingerprint,
             "preset": preset, "params": n_params(net), "epochs": epochs, "epochs_run": state["epoch"],
             "best_epoch": state["best_epoch"], "best_val_loss": state["best_val"], "stopped": stopped,
             "history": state["history"], "resumed_at": state["resumed_at"], "seed": seed,
             "train_minutes": state["train_s"] / 60.0, "data_minutes": data_s / 60.0,
             "train_windows": len(train_ds), "val_windows": len(val_ds), "fit": asdict(fit)}
    # plain JSON types only: load_teacher reads with weights_only=True
    extra = json.loads(json.dumps(extra, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    return save_teacher(net, out_dir / TEACHER_FILE, extra)


def tiny_teacher(out_dir: Path, *, epochs: int = 3, seed: int = 0) -> Path:
    """A real but poorly trained small teacher in well under 30 s, for other tests' fixtures:
    two short generated circuits (one trains, one validates), the superbike, two one-lap rides each."""
    return train_teacher(Path(out_dir), preset="small", epochs=epochs, seed=seed, progress=False,
                         expert=TINY_EXPERT, fit=TINY_FIT)


BRAKE_ONSET = 0.1       # brake command above which the rider is braking


def onset_s(start: np.ndarray, seq: np.ndarray, threshold: float = BRAKE_ONSET) -> np.ndarray:
    """(B,) seconds from now to where ``seq`` (B, K) first reaches ``threshold``, linear between
    steps (``start`` (B,) is the value now; step k is (k+1) x dt ahead); NaN if it never does.

    >>> onset_s(np.array([0.0]), np.array([[0.0, 0.05, 0.15, 0.3]]))
    array([0.125])
    """
    dt = 1.0 / load_schema().rate_hz
    full = np.concatenate([start[:, None], seq], axis=1)
    above = full >= threshold
    k = np.where(above.any(axis=1), above.argmax(axis=1), -1)
    out = np.full(len(full), np.nan)
    ok = k > 0
    rows = np.flatnonzero(ok)
    lo, hi = full[rows, k[ok] - 1], full[rows, k[ok]]
    frac = (threshold - lo) / np.maximum(hi - lo, 1e-9)
    out[ok] = (k[ok] - 1 + frac) * dt
    out[k == 0] = 0.0
    return out


def evaluate_windows(net, ds: WindowDataset, max_windows: int | None = None) -> dict[str, float]:
    """Errors of ``net`` on every window of ``ds`` (physical units; see docs/teacher.md).

    ``brake_onset_err_median_s``: windows where the expert's brake is below :data:`BRAKE_ONSET`
    now and rises above it within the horizon; a prediction that never crosses counts as an
    error of the whole horizon (1 s); ``brake_onset_missed_frac`` says how often that happened.
    """
    from motocoach.training.teacher.features import (HORIZON_STEPS, SECTOR_SCALE_S, TARGET_SCALE, TARGETS)
    from motocoach.training.teacher.predict import Teacher

    idx = np.arange(len(ds))
    if max_windows and len(idx) > max_windows:
        idx = np.unique(np.linspace(0, len(idx) - 1, max_windows).astype(np.int64))
    teacher = Teacher(net)
    err = {name: [] for name in TARGETS}
    sector_err, onset_err, missed = [], [], 0
    horizon_s = HORIZON_STEPS / load_schema().rate_hz
    b = TARGETS.index("brake")
    for i in range(0, len(idx), 2048):
        hist, ctx, y, mask, sec, sec_ok = ds.batch(idx[i:i + 2048])
        pred = teacher.predict_windows(hist, ctx)
        true = y * TARGET_SCALE
        for j, name in enumerate(TARGETS):
            err[name].append(np.abs(pred.controls[..., j] - true[..., j])[mask])
        sector_err.append(np.abs(pred.sector_s - sec * SECTOR_SCALE_S)[sec_ok])
        now = ds.y[ds.index[idx[i:i + 2048]], b] * TARGET_SCALE[b]
        full = mask.all(axis=1)
        t_true = onset_s(now, true[..., b])
        cand = full & (now < BRAKE_ONSET) & np.isfinite(t_true)
        t_pred = onset_s(now[cand], pred.controls[cand, :, b])
        missed += int(np.isnan(t_pred).sum())
        onset_err.append(np.where(np.isnan(t_pred), horizon_s, np.abs(t_pred - t_true[cand])))
    cat = {k: np.concatenate(v) for k, v in err.items()}
    onsets = np.concatenate(onset_err)
    sectors = np.concatenate(sector_err)
    return {"val_throttle_mae": float(cat["throttle"].mean()), "val_brake_mae": float(cat["brake"].mean()),
            "val_roll_mae_deg": float(cat["roll_angle"].mean()), "val_speed_mae_mps": float(cat["speed"].mean()),
            "brake_onset_err_median_s": float(np.median(onsets)) if len(onsets) else float("nan"),
            "brake_onsets": int(len(onsets)),
            "brake_onset_missed_frac": missed / len(onsets) if len(onsets) else float("nan"),
            # the same median over the onsets the teacher did predict within the horizon
            "brake_onset_err_median_hit_s": float(np.median(onsets[onsets < horizon_s])) if missed < len(onsets)
            else float("nan"),
            "val_sector_mae_s": float(sectors.mean()) if len(sectors) else float("nan"),
            "val_windows": int(len(idx))}


def evaluate_teacher(teacher_path: Path, *, data: ExpertSet | None = None, real_data: Path | None = None,
                     progress: bool = True, max_windows: int | None = None) -> dict[str, float]:
    """The teacher's errors on its VALIDATION tracks (the split recorded at training).

    The expert rides come from ``data``, else ``expert.npz`` beside the teacher when it is the
    set the teacher was trained from, else the validation circuits are ridden again (same seeds).
    """
    from motocoach.training.teacher.predict import Teacher

    teacher = Teacher.load(teacher_path)
    extra = teacher.extra
    if "split" not in extra:
        raise ConfigError(f"{teacher_path} records no validation split; was it written by `motocoach teacher train`?")
    if data is None:
        cached = Path(teacher_path).with_name(EXPERT_FILE)
        if cached.is_file() and ExpertSet.load(cached).fingerprint == extra.get("data_fingerprint"):
            data = ExpertSet.load(cached)
        else:
            cfg = ExpertConfig(**{**extra["data_stats"]["config"], "tracks": tuple(extra["split"]["val"]),
                                  "vehicles": tuple(extra["data_stats"]["config"]["vehicles"]), "calibration": False})
            data = _ride_with_bar(cfg, real_data, (), None, "roadsport", progress)
            data.split = {"train": [], "val": list(extra["split"]["val"])}
    rides = [r for r in data.rides if r.track in set(extra["split"]["val"])]
    if not rides:
        raise ConfigError("none of the teacher's validation tracks is in the given expert data")
    stride = int(extra["data_stats"]["config"].get("stride", 1))
    return evaluate_windows(teacher.net, WindowDataset(rides, stride), max_windows)
