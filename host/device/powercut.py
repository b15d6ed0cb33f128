"""Power-cut campaign against the SIL firmware: kill it at random moments of model updates.

Each round: start the SIL on the same slot backing file, check it booted a valid model (IDENTITY
model hash is the one active before the round or the one being sent, self-test passed, and a
TELEMETRY reply equals the reference prediction for that model; the two models answer
differently), then start a model-only update of the *other* model and SIGKILL the process at a
seeded random moment (uniformly over the update, or just after MODEL_COMMIT was sent, where the
slot record is written). The last boot is checked as well. A boot that fails any check counts as
bricked.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from motocoach.device import ops
from motocoach.protocol.spec import MsgType, Status
from motocoach.errors import DeviceError, MotoCoachError

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
    unsigned_active: int = 0  #: boots that came up on a model no trusted key signed (must be 0)
    attacks_sent: int = 0  #: unsigned updates sent raw during the campaign
    attacks_accepted: int = 0  #: ... that the unit did not refuse at MODEL_BEGIN (must be 0)
    problems: list[str] = field(default_factory=list)
    update_s: list[float] = field(default_factory=list)


class _UntilPowerCut:
    """A link whose requests fail at once when the target process is gone, instead of waiting for
    the link's reconnect attempts; replies are passed through untouched."""

    def __init__(self, link: Any, target: Any) -> None:
        self.link, self.target = link, target

    def request(self, msg_type: Any, payload: bytes = b"", timeout: float | None = None) -> Any:
        # the link breaks first when the cut lands: poll() can't see the kill while the killing
        # thread is still reaping the process
        if not getattr(self.target, "alive", True) or not getattr(self.link, "is_open", True):
            raise DeviceError("the unit lost power")
        return self.link.request(msg_type, payload, timeout=timeout)

    def close(self) -> None:
        self.link.close()


def _boot_check(link: Any, allowed: dict[str, str], telemetry: Sequence[float],
                reply_ok: ReplyCheck | None, signed_shas: set[str]) -> tuple[str | None, str]:
    """Returns (model sha256 hex or None, problem text)."""
    try:
        info = ops.identify(link, timeout=2.0)
    except MotoCoachError as e:
        return None, f"no IDENTITY after restart: {e}"
    sha = info.model_sha256
    if sha not in signed_shas:
        return None, f"UNSIGNED model {sha[:12]} is running"
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


def _run_campaign(slots_file: Path, models: Sequence[tuple[bytes, str]], *, cuts: int, seed: int,
                 start: Callable[..., Any], open_link: Callable[[str], Any], telemetry: Sequence[float],
                 reply_ok: ReplyCheck | None = None, factory_sha256: str | None = None,
                 commit_window_share: float = 0.3, est_update_s: float = 0.5,
                 signed: Sequence[bytes] = (), attack: tuple[bytes, bytes] | None = None,
                 attack_share: float = 0.25) -> CampaignResult:
    """The campaign itself (see :func:`run_campaign`).

    ``start(slots=path)`` returns a target with ``.port`` and ``.kill()`` (SIGKILL = power cut).
    ``est_update_s``: first guess of one update's duration (then tracked); uniform cuts fall in
    [0, 1.1 x estimate], so a good guess puts most of them inside the transfer.
    ``signed``: the signed update manifest of each model (MODEL_BEGIN). ``attack``: an unsigned
    (manifest, blob) sent raw before the signed update in ``attack_share`` of the rounds; the
    unit must refuse it at MODEL_BEGIN and never boot it.
    """
    if len(models) != 2 or len(signed) != 2:
        raise ValueError("give exactly two models, each with its signed manifest, to alternate between")
    rng = random.Random(seed)
    res = CampaignResult()
    shas = [hashlib.sha256(b).hexdigest() for b, _ in models]
    names = {shas[0]: models[0][1], shas[1]: models[1][1]}
    if factory_sha256:
        names.setdefault(factory_sha256, "factory")
    signed_shas = set(names)
    current: str | None = None  # sha of the model running before the round (None: not known yet)
    sending: str | None = None  # sha of the model the previous round was sending
    for i in range(cuts + 1):
        target = start(slots=slots_file)
        link = None
        try:
            link = open_link(target.port)
            allowed = dict(names) if current is None else {s: names[s] for s in (current, sending) if s}
            sha, problem = _boot_check(link, allowed, telemetry, reply_ok, signed_shas)
            if problem.startswith("UNSIGNED"):
                res.unsigned_active += 1
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
                if attack is not None and rng.random() < attack_share:
                    res.attacks_sent += 1
                    ack = _UntilPowerCut(link, target).request(MsgType.MODEL_BEGIN, attack[0], timeout=1.0)
                    if ack.type != MsgType.ACK or ack.payload[1] == Status.OK:
                        res.attacks_accepted += 1
                        res.problems.append(f"round {i}: the unsigned MODEL_BEGIN was not refused")
                ops.send_model(_UntilPowerCut(link, target), blob, signed[nxt], progress=progress, timeout=1.0)
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


def run_campaign(slots_file: Path, models: Sequence[tuple[bytes, str]], **kw: Any) -> CampaignResult:
    """Run ``cuts`` kill-and-restart rounds alternating between two ``(blob, model_id)`` models.

    Keyword arguments as :func:`_run_campaign`. The serial link's "read failed" warnings are
    silenced meanwhile: every cut breaks the link on purpose.
    """
    link_log = logging.getLogger("motocoach.link")
    level = link_log.level
    link_log.setLevel(logging.ERROR)
    try:
        return _run_campaign(slots_file, models, **kw)
    finally:
        link_log.setLevel(level)


def variant_model(model_dir: Path, out_dir: Path, model_id: str = "coach-alt",
                  bias_shift: Sequence[int] | None = None) -> tuple[Path, Path]:
    """A second, genuinely different model for update tests: the factory ``.tflite`` with the last
    layer's int32 bias shifted, put through the same codegen, so its golden vectors are recomputed
    by the TFLM runtime and it passes its own self-test. Its replies differ from the factory
    model's for most telemetry. Returns (blob path, manifest path) under ``out_dir/model_id``;
    the manifest's ``.tflite`` sits next to it (``HostEngine.from_manifest`` works on it)."""
    import json

    import numpy as np

    from motocoach.errors import CodegenError
    from motocoach.quantization.codegen import render_all
    from motocoach.quantization.tflite_model import parse_tflite

    tflite = (model_dir / "default_model.tflite").read_bytes()
    last = parse_tflite(tflite).layers[-1]
    old = last.bias.astype("<i4").tobytes()
    if tflite.count(old) != 1:
        raise CodegenError("cannot locate the last layer's bias in the .tflite to make a variant model")
    delta = np.array(list(bias_shift) if bias_shift is not None else
                     [40000 * (-1) ** k for k in range(last.n_out)], np.int64)  # about 0.5 in output units
    new = (last.bias.astype(np.int64) + delta).astype("<i4").tobytes()
    base = json.loads((model_dir / "manifest.json").read_text())
    files = render_all(tflite.replace(old, new), model_id=model_id,
                       created={"variant_of": base["model_sha256"], "change": f"last layer bias + {delta.tolist()}"})
    d = out_dir / model_id
    d.mkdir(parents=True, exist_ok=True)
    for name in ("default_model.cmb", "default_model.tflite", "manifest.json"):
        (d / name).write_bytes(files[name])
    return d / "default_model.cmb", d / "manifest.json"


def expected_outputs(manifest: Path, telemetry: Sequence[float]) -> list[int]:
    """The int8 outputs the TFLM reference gives for one telemetry sample (what HAPTIC reports)."""
    import numpy as np

    from motocoach.quantization.host_engine import HostEngine

    out, _ = HostEngine.from_manifest(manifest).predict(np.asarray([telemetry], np.float32))
    return [int(v) for v in np.asarray(out).reshape(-1)]


def probe_telemetry() -> list[float]:
    """One fixed telemetry sample (mid-range of every feature) for telling models apart."""
    from motocoach.schema import load_schema

    return [0.5 * (f.min + f.max) for f in load_schema().features]


def sil_campaign(workdir: Path, model_dir: Path, *, cuts: int, seed: int) -> CampaignResult:
    """Power-cut campaign on the SIL between the default model and :func:`variant_model`.

    Each boot's HAPTIC reply to one telemetry sample must equal the TFLM reference prediction
    (``HostEngine``) of the model that IDENTITY names; the two models give different replies.
    """
    from motocoach.device.link import SerialLink
    from motocoach.targets import start_sil

    from motocoach.device.attacks import dev_key
    from motocoach.protocol import manifest as um

    telemetry = probe_telemetry()
    alt_blob, alt_manifest = variant_model(model_dir, workdir)
    default = ((model_dir / "default_model.cmb").read_bytes(), "default")
    alt = (alt_blob.read_bytes(), "coach-alt")
    with start_sil(slots=workdir / "calibrate.bin") as scratch, SerialLink(scratch.port, timeout=1.0) as link:
        board = ops.identify(link).board
        signed = [um.for_model(b, name, board, dev_key(), version=1) for b, name in (default, alt)]
        t0 = time.perf_counter()
        ops.send_model(link, alt[0], signed[1])  # how long one update takes here
        est = time.perf_counter() - t0
    # the attack: a weight flipped in the update model, under a manifest nobody signed
    evil = bytearray(alt[0])
    evil[len(evil) // 2] ^= 0x01
    unsigned = um.UpdateManifest.parse(um.for_model(bytes(evil), "evil", board, dev_key(), version=99))
    attack = (unsigned.with_changes(signature=bytes(64)).pack(), bytes(evil))
    expect = {hashlib.sha256(default[0]).hexdigest(): expected_outputs(model_dir / "manifest.json", telemetry),
              hashlib.sha256(alt[0]).hexdigest(): expected_outputs(alt_manifest, telemetry)}
    if len({tuple(v) for v in expect.values()}) != 2:
        raise ValueError("the two campaign models answer the probe telemetry alike; pick another probe")

    def reply_ok(sha: str, values: Sequence[float], haptic: dict[str, Any]) -> bool:
        return [haptic["out0"], haptic["out1"], haptic["out2"]] == expect[sha]

    return run_campaign(workdir / "slots.bin", [default, alt], cuts=cuts, seed=seed, start=start_sil,
                        open_link=lambda port: SerialLink(port, timeout=1.0), telemetry=telemetry,
                        reply_ok=reply_ok, factory_sha256=hashlib.sha256(default[0]).hexdigest(),
                        est_update_s=est, signed=signed, attack=attack)
