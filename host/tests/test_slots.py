"""The C model slots and sha256 through ctypes (slots_harness.py): updates, rollbacks, refusals."""

from __future__ import annotations

import ctypes
import hashlib
import random
import sys
from pathlib import Path

import pytest

from motocoach.protocol.spec import SlotState, Status

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slots_harness import DATA_OFFSET, MAX_RECORDS, SLOT_SIZE, Unit, blob_of, lib, unit  # noqa: E402,F401


# --- sha256 ---------------------------------------------------------------------------------------

def test_sha256_matches_hashlib_on_every_length_around_block_edges_and_random_inputs(lib):
    rng = random.Random(1)
    lengths = list(range(0, 200)) + [447, 448, 511, 512, 513, 1000, 4095, 4096, 65537]
    lengths += [rng.randrange(0, 20000) for _ in range(60)]
    out = ctypes.create_string_buffer(32)
    for n in lengths:
        data = rng.randbytes(n)
        lib.coach_sha256(data, n, out)
        assert out.raw == hashlib.sha256(data).digest(), n


# --- normal operation -------------------------------------------------------------------------------

def test_fresh_unit_runs_the_factory_model_with_empty_slots(unit):
    assert unit.report() == (0, SlotState.EMPTY, SlotState.EMPTY)
    assert unit.active_blob() is None


def test_update_goes_to_the_inactive_slot_and_survives_reboot(unit):
    a, b = blob_of(5000, 1), blob_of(7001, 2)
    assert unit.update(a) == Status.OK
    assert unit.report() == (1, SlotState.ACTIVE, SlotState.EMPTY)
    assert unit.validated == [a]
    before = bytes(unit.mem(0)[:SLOT_SIZE])
    assert unit.update(b) == Status.OK
    assert bytes(unit.mem(0)[:SLOT_SIZE]) == before, "the active slot was touched by an update"
    assert unit.report() == (2, SlotState.VALID, SlotState.ACTIVE)
    assert unit.boot() == Status.OK
    assert unit.report() == (2, SlotState.VALID, SlotState.ACTIVE)
    assert unit.active_blob() == b


def test_rollback_switches_to_the_other_valid_slot_and_persists(unit):
    a, b = blob_of(3000, 3), blob_of(3100, 4)
    assert unit.update(a) == 0 and unit.update(b) == 0
    assert unit.rollback() == (Status.OK, 1)
    assert unit.active_blob() == a
    assert unit.boot() == 0 and unit.active_blob() == a
    assert unit.rollback() == (Status.OK, 2)
    assert unit.boot() == 0 and unit.active_blob() == b


def test_rollback_on_a_fresh_unit_is_refused(unit):
    assert unit.rollback()[0] == Status.NO_VALID_SLOT
    assert unit.report() == (0, SlotState.EMPTY, SlotState.EMPTY)
    assert unit.lib.fake_write_calls() == 0


def test_rollback_after_the_first_update_returns_to_the_factory_model_and_persists(unit):
    a = blob_of(1200, 5)
    assert unit.update(a) == 0
    assert unit.rollback() == (Status.OK, 0)
    assert unit.active_blob() is None
    assert unit.report() == (0, SlotState.VALID, SlotState.EMPTY)  # kept, but never booted
    assert unit.boot() == 0
    assert unit.active_blob() is None and unit.report() == (0, SlotState.VALID, SlotState.EMPTY)
    # from the factory model, rollback undoes that rollback (the blob is verified and validated again)
    unit.validated.clear()
    assert unit.rollback() == (Status.OK, 1)
    assert unit.validated == [a] and unit.active_blob() == a
    assert unit.boot() == 0 and unit.active_blob() == a
    assert unit.rollback() == (Status.OK, 0)
    assert unit.boot() == 0 and unit.active_blob() is None


def test_update_after_a_rollback_to_factory_overwrites_the_retired_slot(unit):
    """So a rollback right after it returns to the factory model, not to the model rolled back from."""
    a, b = blob_of(900, 30), blob_of(950, 31)
    assert unit.update(a) == 0 and unit.rollback() == (Status.OK, 0)
    assert unit.update(b) == 0
    assert unit.report() == (1, SlotState.ACTIVE, SlotState.EMPTY) and unit.active_blob() == b
    assert unit.rollback() == (Status.OK, 0)
    assert unit.boot() == 0 and unit.active_blob() is None
    # the same with slot B retired (and A holding a refused update): the update goes into B
    assert unit.rollback() == (Status.OK, 1) and unit.update(a) == 0
    assert unit.report() == (2, SlotState.VALID, SlotState.ACTIVE)
    unit.reject = 1
    assert unit.update(blob_of(500, 35)) == Status.SELFTEST_FAILED  # written into A, refused
    unit.reject = 0
    assert unit.report() == (2, SlotState.INVALID, SlotState.ACTIVE)
    assert unit.rollback() == (Status.OK, 0)  # A holds no valid model: B is retired
    assert unit.update(b) == 0
    assert unit.report() == (2, SlotState.INVALID, SlotState.ACTIVE) and unit.active_blob() == b
    assert unit.rollback() == (Status.OK, 0) and unit.active_blob() is None


def test_rollback_between_two_valid_slots_never_goes_to_the_factory_model(unit):
    a, b = blob_of(400, 36), blob_of(410, 37)
    assert unit.update(a) == 0 and unit.update(b) == 0
    for expect_slot, expect in ((1, a), (2, b), (1, a)):
        assert unit.rollback() == (Status.OK, expect_slot) and unit.active_blob() == expect


def test_retired_slot_with_bit_rot_cannot_be_reactivated(unit):
    a = blob_of(700, 32)
    assert unit.update(a) == 0 and unit.rollback() == (Status.OK, 0)
    unit.mem(0)[DATA_OFFSET + 3] ^= 0x10
    assert unit.rollback()[0] == Status.NO_VALID_SLOT
    assert unit.boot() == 0 and unit.report() == (0, SlotState.INVALID, SlotState.EMPTY)


def test_reactivating_a_retired_slot_is_refused_by_a_failed_selftest(unit):
    assert unit.update(blob_of(600, 33)) == 0 and unit.rollback() == (Status.OK, 0)
    unit.reject = 1
    assert unit.rollback()[0] == Status.SELFTEST_FAILED
    assert unit.active_blob() is None and unit.boot() == 0 and unit.active_blob() is None


def test_rollback_refused_by_selftest_keeps_the_active_model(unit):
    a, b = blob_of(900, 6), blob_of(901, 7)
    assert unit.update(a) == 0 and unit.update(b) == 0
    unit.reject = 1
    assert unit.rollback()[0] == Status.SELFTEST_FAILED
    assert unit.active_blob() == b
    assert unit.boot() == 0 and unit.active_blob() == b


def test_rollback_stops_cleanly_when_the_record_area_is_full(unit):
    assert unit.update(blob_of(64, 8)) == 0 and unit.update(blob_of(65, 9)) == 0
    results = [unit.rollback()[0] for _ in range(2 * MAX_RECORDS + 2)]
    assert Status.STORAGE_ERROR in results
    # each update used two positions of its slot (TRIAL, then ACTIVATE at the confirm)
    assert results[:2 * MAX_RECORDS - 4] == [Status.OK] * (2 * MAX_RECORDS - 4)
    active = unit.active_blob()
    assert unit.boot() == 0 and unit.active_blob() == active


# --- refusals: each leaves the running model as it was -------------------------------------------

def _assert_unchanged(unit: Unit, blob: bytes) -> None:
    assert unit.active_blob() == blob
    assert unit.boot() == 0
    assert unit.active_blob() == blob


def test_out_of_order_and_duplicate_chunks_are_bad_offset(unit):
    old, new = blob_of(1000, 10), blob_of(1000, 11)
    assert unit.update(old) == 0
    assert unit.begin(new) == 0
    assert unit.chunk(0, new[:224]) == (Status.OK, 224)
    assert unit.chunk(0, new[:224]) == (Status.BAD_OFFSET, 224)     # duplicate
    assert unit.chunk(448, new[448:672]) == (Status.BAD_OFFSET, 224)  # skipped ahead
    assert unit.chunk(100, new[100:324]) == (Status.BAD_OFFSET, 224)  # overlapping
    assert unit.commit()[0] == Status.BAD_LENGTH                       # not complete
    _assert_unchanged(unit, old)


def test_resume_after_a_duplicate_chunk_completes_the_update(unit):
    new = blob_of(700, 12)
    assert unit.begin(new) == 0
    assert unit.chunk(0, new[:300])[0] == 0
    assert unit.chunk(0, new[:300]) == (Status.BAD_OFFSET, 300)
    assert unit.chunk(300, new[300:])[0] == 0
    assert unit.commit() == (Status.OK, 1)


def test_wrong_total_size_is_refused(unit):
    old, new = blob_of(800, 13), blob_of(800, 14)
    assert unit.update(old) == 0
    assert unit.begin(new, total=500) == 0      # declared smaller than sent
    assert unit.chunk(0, new[:500])[0] == 0
    assert unit.chunk(500, new[500:])[0] == Status.BAD_LENGTH
    assert unit.commit()[0] == Status.HASH_MISMATCH   # 500 bytes do not hash to the 800-byte sha
    _assert_unchanged(unit, old)
    assert unit.begin(new, total=900) == 0      # declared larger than sent
    assert unit.send(new) == 0
    assert unit.commit()[0] == Status.BAD_LENGTH
    assert unit.begin(new, total=0) == Status.BAD_LENGTH
    _assert_unchanged(unit, old)


def test_model_larger_than_a_slot_is_too_large(unit):
    old = blob_of(100, 15)
    assert unit.update(old) == 0
    big = blob_of(SLOT_SIZE - DATA_OFFSET + 1, 16)
    assert unit.begin(big) == Status.TOO_LARGE
    assert unit.chunk(0, big[:224])[0] == Status.BAD_STATE
    _assert_unchanged(unit, old)
    exact = blob_of(SLOT_SIZE - DATA_OFFSET, 17)
    assert unit.update(exact) == 0 and unit.active_blob() == exact


def test_hash_mismatch_and_failed_selftest_never_activate(unit):
    old, new = blob_of(2000, 18), blob_of(2000, 19)
    assert unit.update(old) == 0
    assert unit.begin(new, sha=hashlib.sha256(b"other").digest()) == 0
    assert unit.send(new) == 0
    assert unit.commit()[0] == Status.HASH_MISMATCH
    assert unit.validated == [old], "validate must not run on a blob whose hash is wrong"
    _assert_unchanged(unit, old)
    unit.reject = 1
    assert unit.update(new) == Status.SELFTEST_FAILED
    unit.reject = Status.INCOMPATIBLE
    assert unit.update(new) == Status.INCOMPATIBLE
    _assert_unchanged(unit, old)
    assert unit.report()[2] == SlotState.INVALID


def test_abort_and_chunks_without_begin(unit):
    old = blob_of(500, 20)
    assert unit.chunk(0, b"x")[0] == Status.BAD_STATE
    assert unit.commit()[0] == Status.BAD_STATE
    assert unit.update(old) == 0
    assert unit.begin(blob_of(500, 21)) == 0 and unit.chunk(0, b"abc")[0] == 0
    assert unit.lib.slots_abort(unit.state) == 0
    assert unit.commit()[0] == Status.BAD_STATE
    _assert_unchanged(unit, old)


def test_a_hal_without_slot_storage_is_a_distinct_refusal(lib):
    lib.fake_format()
    u = Unit(lib, storage=False)
    assert u.boot() == Status.STORAGE_ERROR
    assert u.report() == (0, SlotState.EMPTY, SlotState.EMPTY)
    assert u.begin(b"abc") == Status.STORAGE_ERROR
    assert u.active_blob() is None
