"""Identity: the unit runs the model the manifest describes, for this feature schema."""

from __future__ import annotations

from motocoach.protocol import spec
from motocoach.schema import load_schema


def test_model_hash_and_schema_match_the_manifest(link, manifest, hil_report):
    ident = link.hello()
    hil_report.add("identity", ident)
    assert ident["model_sha256"] == manifest["model_sha256"], "the unit runs another model than the manifest's"
    assert ident["model_id"] == manifest["model_id"]
    assert ident["schema_hash"] == load_schema().hash32 == manifest["schema_hash32"]
    assert ident["engine_version"] == manifest["engine_version"]
    assert ident["selftest_ok"] == 1, "the boot self-test (golden vectors) failed on the unit"
    assert ident["proto_min"] <= spec.PROTOCOL_VERSION <= ident["proto_max"]
    assert ident["board"], "IDENTITY carries no board id"
    assert int(ident["unit_id"], 16) != 0, "IDENTITY carries no unit id (ESP32: eFuse MAC; SIL/QEMU: kept with the slots)"
    assert ident["trial"] in (0, 1) and ident["model_version"] >= 0


def test_status_answers_and_reports_no_boot_fault(link):
    st = link.status()
    assert st["fault"] in (0, 1)  # NONE, or STALE_TELEMETRY left by an earlier test's stall
    assert st["uptime_ms"] > 0
    assert st["tx_dropped"] == 0, "the unit dropped replies: its TX ring overflowed"
