"""Power-cut campaign against the SIL firmware: kill it at random moments of model updates.

Each round: start the SIL on the same slot backing file, check it booted a valid model (IDENTITY
model hash is the one active before the round or the one being sent, self-test passed, and a
TELEMETRY reply equals the reference prediction for that model), then start a model-only update
of the *other* model and SIGKILL the process at a seeded random moment (uniformly over the
update, or just after MODEL_COMMIT was sent, where the slot record is written). The last boot is
checked as well. A boot that fails any check counts as bricked.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from motocoach.device import ops
from motocoach.errors import MotoCoachError

#: ``reply_ok(model_sha256_hex, telemetry_values, haptic_fields) -> bool``
ReplyCheck = Callable[[str, Sequence[float], dict[str, Any]], bool]


@dataclass
class CampaignResult:
    powercuts: int = 0
    valid_boots: int = 0
    bricked: int = 0
    completed_updates: int = 0  #: rounds where the update finished before the cut
    boots_new: int = 0  #: boots that came up on the model being sent
    boots_old: int = 0
    problems: list[str] = field(default_factory=list)
    update_s: list[float] = field(default_factory=list)


def _boot_check(link: Any, allowed: dict[str, str], telemetry: Sequence[float],
                reply_ok: ReplyCheck | None) -> tuple[str | None, str]:
    """Returns (model sha256 hex or None, problem text)."""
    try:
        info = ops.identify(link, timeout=2.0)
    except MotoCoachError as e:
        return None, f"no IDENTITY after restart: {e}"
    sha = info.model_sha256
    if sha not in allowed:
        return None, f"booted model {sha[:12]} is neither {' nor '.join(s[:12] for s in allowed)}"
    if not info.identity["selftest_ok"]:
        return None, f"model {allowed[sha]} booted but its self-test failed"
    if reply_ok is not None:
        try:
            haptic = link.telemetry(list(telemetry), timeout=2.0)
        except MotoCoachError as e:
            return None, f"no HAPTIC reply from model {allowed[sha]}: {e}"
        if not reply_ok(sha, telemetry, haptic):
            return None, f"HAPTIC reply does not match model {allowed[sha]}"
    return sha, ""


def run_campaign(slots_file: Path, models: Sequence[tuple[bytes, str]], *, cuts: int, seed: int,
                 start: Callable[..., Any], open_link: Callable[[str], Any], telemetry: Sequence[float],
                 reply_ok: ReplyCheck | None = None, factory_sha256: str | None = None,
                 commit_window_share: float = 0.3) -> CampaignResult:
    """Run ``cuts`` kill-and-restart rounds alternating between two ``(blob, model_id)`` models.

    ``start(slots=path)`` returns a target with ``.port`` and ``.kill()`` (SIGKILL = power cut).
    """
    if len(models) != 2:
        raise ValueError("give exactly two models to alternate between")
    rng = random.Random(seed)
    res = CampaignResult()
    shas = [hashlib.sha256(b).hexdigest() for b, _ in models]
    names = {shas[0]: models[0][1], shas[1]: models[1][1]}
    if factory_sha256:
        names.setdefault(factory_sha256, "factory")
    current: str | None = None  # sha of the model running before the round (None: not known yet)
    sending: str | None = None  # sha of the model the previous round was sending
    est_update_s = 0.5
    for i in range(cuts + 1):
        target = start(slots=slots_file)
        link = None
        try:
            link = open_link(target.port)
            allowed = dict(names) if current is None else {s: names[s] for s in (current, sending) if s}
            sha, problem = _boot_check(link, allowed, telemetry, reply_ok)
            if sha is None:
                res.bricked += 1
                res.problems.append(f"round {i}: {problem}")
                sha = current  # keep going: the next update still has a defined "old"
            else:
                res.valid_boots += 1
                if sending is not None:
                    res.boots_new += sha == sending
                    res.boots_old += sha != sending
            if i == cuts:
                break
            current = sha
            nxt = 1 if current == shas[0] else 0
            sending = shas[nxt]
            blob, model_id = models[nxt]
            killer: threading.Timer | None = None
            if rng.random() < commit_window_share:
                delay = rng.uniform(0.0, 0.004)  # just after MODEL_COMMIT leaves the host

                def on_progress(stage: str, done: int, total: int, _d: float = delay) -> None:
                    nonlocal killer
                    if done == total and killer is None:
                        killer = threading.Timer(_d, target.kill)
                        killer.start()
                progress = on_progress
            else:
                killer = threading.Timer(rng.uniform(0.0, est_update_s * 1.1), target.kill)
                killer.start()
                progress = None
            t0 = time.perf_counter()
            try:
                ops.send_model(link, blob, model_id, progress=progress, timeout=1.0)
                res.completed_updates += 1
                est_update_s = 0.7 * est_update_s + 0.3 * (time.perf_counter() - t0)
                res.update_s.append(time.perf_counter() - t0)
            except MotoCoachError:
                pass  # the cut landed during the update: expected
            if killer is not None:
                killer.join()
            target.kill()  # if the timer fired after the update finished, this is a no-op cut
            res.powercuts += 1
        finally:
            if link is not None:
                try:
                    link.close()
                except Exception:  # the process is gone; closing may fail, that is fine
                    pass
            target.kill()
    return res


def variant_model(model_dir: Path, out_dir: Path, model_id: str = "coach-alt") -> tuple[Path, Path]:
    """The default model under another id: a second valid blob (same weights, other sha256),
    with its manifest. Returns (blob path, manifest path) under ``out_dir/model_id``."""
    import json

    from motocoach.quantization.blob import read_blob, write_blob

    p = read_blob((model_dir / "default_model.cmb").read_bytes())
    p["model_id"] = model_id
    blob = write_blob(p)
    man = json.loads((model_dir / "manifest.json").read_text())
    man.update(model_id=model_id, model_sha256=hashlib.sha256(blob).hexdigest())
    d = out_dir / model_id
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.cmb").write_bytes(blob)
    (d / "manifest.json").write_text(json.dumps(man))
    return d / "model.cmb", d / "manifest.json"


def sil_campaign(workdir: Path, model_dir: Path, *, cuts: int, seed: int) -> CampaignResult:
    """Power-cut campaign on the SIL between the default model and :func:`variant_model`.

    Each boot's HAPTIC reply to one telemetry sample must equal the TFLM reference prediction
    (``HostEngine``) of the default model; both models share its weights.
    """
    import numpy as np

    from motocoach.device.link import SerialLink
    from motocoach.quantization.host_engine import HostEngine
    from motocoach.schema import load_schema
    from motocoach.targets import start_sil

    engine = HostEngine.from_manifest(model_dir / "manifest.json")
    telemetry = [0.5 * (f.min + f.max) for f in load_schema().features]
    expect, _ = engine.predict(np.asarray([telemetry], np.float32))
    expect_out = [int(v) for v in np.asarray(expect).reshape(-1)]

    def reply_ok(sha: str, values: Sequence[float], haptic: dict[str, Any]) -> bool:
        return [haptic["out0"], haptic["out1"], haptic["out2"]] == expect_out

    default = ((model_dir / "default_model.cmb").read_bytes(), "default")
    alt = (variant_model(model_dir, workdir)[0].read_bytes(), "coach-alt")
    return run_campaign(workdir / "slots.bin", [default, alt], cuts=cuts, seed=seed, start=start_sil,
                        open_link=lambda port: SerialLink(port, timeout=1.0), telemetry=telemetry,
                        reply_ok=reply_ok, factory_sha256=hashlib.sha256(default[0]).hexdigest())
