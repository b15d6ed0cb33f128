"""The C model slots and sha256, built as a shared library and driven through ctypes.

A RAM-backed fake HAL (below) stands in for flash. It can cut the power: after a byte budget is
used up, erases and writes stop half way and fail, exactly like a brown-out in the middle of
programming. After each cut a fresh ``slots_init`` on the same memory plays the reboot.
"""

from __future__ import annotations

import ctypes
import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from motocoach.protocol.spec import SlotState, Status

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "firmware" / "lib" / "coach_core" / "src"
SLOT_SIZE = 16384
DATA_OFFSET = 2048
RECORD_SIZE = 80
MAX_RECORDS = 24

FAKE_HAL_C = r"""
#include <string.h>
#include "model_slots.h"

#define MAX_SLOT 65536
static uint8_t store[2][MAX_SLOT];
static long budget = -1; /* bytes that may still be erased/programmed; -1 = no power cut */
static int write_calls;
static coach_hal_t hal;

static int spend(void) {
  if (budget < 0) return 1;
  if (budget == 0) return 0;
  budget--;
  return 1;
}
static const uint8_t *fake_map(uint8_t slot) { return slot < 2 ? store[slot] : NULL; }
static int fake_erase(uint8_t slot) {
  uint32_t i;
  if (slot > 1) return -1;
  for (i = 0; i < hal.slot_size; i++) {
    if (!spend()) return -5;
    store[slot][i] = 0xff;
  }
  return 0;
}
static int fake_write(uint8_t slot, uint32_t off, const uint8_t *d, size_t n) {
  size_t i;
  write_calls++;
  if (slot > 1 || (size_t)off + n > hal.slot_size) return -1;
  for (i = 0; i < n; i++) {
    if (!spend()) return -5;
    store[slot][off + i] &= d[i]; /* NOR flash: programming only clears bits */
  }
  return 0;
}
const coach_hal_t *fake_hal(uint32_t slot_size, int with_storage) {
  memset(&hal, 0, sizeof hal);
  if (with_storage) {
    hal.slot_map = fake_map;
    hal.slot_erase = fake_erase;
    hal.slot_write = fake_write;
    hal.slot_size = slot_size;
  }
  return &hal;
}
void fake_format(void) { memset(store, 0xff, sizeof store); budget = -1; write_calls = 0; }
uint8_t *fake_mem(int slot) { return store[slot]; }
void fake_set_budget(long b) { budget = b; }
long fake_budget(void) { return budget; }
int fake_write_calls(void) { return write_calls; }
size_t fake_state_size(void) { return sizeof(model_slots_t); }
"""

VALIDATE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t, ctypes.c_void_p)


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> ctypes.CDLL:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler on PATH (install gcc): the C slot tests cannot run")
    d = tmp_path_factory.mktemp("slots")
    (d / "fake_hal.c").write_text(FAKE_HAL_C)
    so = d / "libslots.so"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion",
                    "-O1", "-fPIC", "-shared", f"-I{CORE}", str(CORE / "model_slots.c"),
                    str(CORE / "sha256.c"), str(d / "fake_hal.c"), "-o", str(so)],
                   check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(so))
    lib.fake_hal.restype = ctypes.c_void_p
    lib.fake_hal.argtypes = [ctypes.c_uint32, ctypes.c_int]
    lib.fake_mem.restype = ctypes.POINTER(ctypes.c_uint8 * 65536)
    lib.fake_set_budget.argtypes = [ctypes.c_long]
    lib.fake_budget.restype = ctypes.c_long
    lib.fake_state_size.restype = ctypes.c_size_t
    lib.slots_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.slots_begin.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_char_p]
    lib.slots_chunk.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t,
                                ctypes.POINTER(ctypes.c_uint32)]
    lib.slots_commit.argtypes = [ctypes.c_void_p, VALIDATE, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8)]
    lib.slots_rollback.argtypes = [ctypes.c_void_p, VALIDATE, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8)]
    lib.slots_abort.argtypes = [ctypes.c_void_p]
    lib.slots_active_blob.restype = ctypes.POINTER(ctypes.c_uint8)
    lib.slots_active_blob.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
    lib.slots_report.argtypes = [ctypes.c_void_p] + [ctypes.POINTER(ctypes.c_uint8)] * 3
    lib.coach_sha256.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    return lib


class Unit:
    """One device: slot state + the fake flash (shared by every reboot in a test)."""

    def __init__(self, lib: ctypes.CDLL, slot_size: int = SLOT_SIZE, storage: bool = True):
        self.lib = lib
        self.hal = lib.fake_hal(slot_size, int(storage))
        self.state = ctypes.create_string_buffer(lib.fake_state_size())
        self.validated: list[bytes] = []
        self.reject = 0  #: what the validate callback returns

        def validate(blob, n, ctx):
            self.validated.append(ctypes.string_at(blob, n))
            return self.reject

        self._validate = VALIDATE(validate)  # keep a reference: C holds the pointer

    def boot(self) -> int:
        return self.lib.slots_init(self.state, self.hal)

    def begin(self, blob: bytes, total: int | None = None, sha: bytes | None = None) -> int:
        return self.lib.slots_begin(self.state, len(blob) if total is None else total,
                                    sha or hashlib.sha256(blob).digest(), b"model-x".ljust(16, b"\0"))

    def chunk(self, offset: int, data: bytes) -> tuple[int, int]:
        got = ctypes.c_uint32(0)
        rc = self.lib.slots_chunk(self.state, offset, data, len(data), ctypes.byref(got))
        return rc, got.value

    def send(self, blob: bytes, size: int = 224) -> int:
        for off in range(0, len(blob), size):
            rc, _ = self.chunk(off, blob[off:off + size])
            if rc:
                return rc
        return 0

    def commit(self) -> tuple[int, int]:
        slot = ctypes.c_uint8(99)
        rc = self.lib.slots_commit(self.state, self._validate, None, ctypes.byref(slot))
        return rc, slot.value

    def rollback(self) -> tuple[int, int]:
        slot = ctypes.c_uint8(99)
        rc = self.lib.slots_rollback(self.state, self._validate, None, ctypes.byref(slot))
        return rc, slot.value

    def update(self, blob: bytes) -> int:
        rc = self.begin(blob) or self.send(blob)
        return rc or self.commit()[0]

    def report(self) -> tuple[int, int, int]:
        v = [ctypes.c_uint8(99) for _ in range(3)]
        self.lib.slots_report(self.state, *(ctypes.byref(x) for x in v))
        return tuple(x.value for x in v)

    def active_blob(self) -> bytes | None:
        n = ctypes.c_size_t(77)
        p = self.lib.slots_active_blob(self.state, ctypes.byref(n))
        if not p:
            assert n.value == 0
            return None
        return ctypes.string_at(p, n.value)

    def mem(self, slot: int) -> ctypes.Array:
        return self.lib.fake_mem(slot).contents


@pytest.fixture
def unit(lib) -> Unit:
    lib.fake_format()
    u = Unit(lib)
    assert u.boot() == Status.OK
    return u


def blob_of(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


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
    assert results[:2 * MAX_RECORDS - 2] == [Status.OK] * (2 * MAX_RECORDS - 2)
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


# --- power cuts ------------------------------------------------------------------------------------

def test_torn_record_at_every_byte_offset_never_boots(lib):
    """Cut power while the slot record of B is being programmed, at every byte of it."""
    a, b = blob_of(1500, 22), blob_of(1600, 23)
    erase_and_data = SLOT_SIZE + len(b)
    for cut in range(RECORD_SIZE + 1):
        lib.fake_format()
        unit = Unit(lib)
        assert unit.boot() == 0 and unit.update(a) == 0
        lib.fake_set_budget(erase_and_data + cut)
        rc = unit.update(b)
        lib.fake_set_budget(-1)
        assert unit.boot() == 0
        if cut < RECORD_SIZE:
            assert rc == Status.STORAGE_ERROR
            assert unit.active_blob() == a, f"cut after {cut} record bytes booted the torn slot"
            assert unit.report() == (1, SlotState.ACTIVE, SlotState.INVALID)
        else:
            assert rc == Status.OK and unit.active_blob() == b


def test_torn_rollback_record_at_every_byte_offset_keeps_the_current_model(lib):
    a, b = blob_of(1000, 24), blob_of(1000, 25)
    for cut in range(RECORD_SIZE + 1):
        lib.fake_format()
        unit = Unit(lib)
        assert unit.boot() == 0 and unit.update(a) == 0 and unit.update(b) == 0
        lib.fake_set_budget(cut)
        rc = unit.rollback()[0]
        lib.fake_set_budget(-1)
        assert unit.boot() == 0
        assert unit.active_blob() == (a if cut == RECORD_SIZE else b), cut
        assert rc == (Status.OK if cut == RECORD_SIZE else Status.STORAGE_ERROR)
        # a torn record does not block later rollbacks: the next one appends after it
        if 0 < cut < RECORD_SIZE:
            assert unit.rollback() == (Status.OK, 1)
            assert unit.boot() == 0 and unit.active_blob() == a


@pytest.mark.parametrize("step", ["retire", "reactivate"])
def test_torn_rollback_to_and_from_the_factory_model_at_every_byte_offset(lib, step):
    """Cut power while the RETIRE record (rollback to factory) or the ACTIVATE record that undoes
    it is being programmed, at every byte: before = the model before, after = the model after."""
    a = blob_of(1100, 34)
    for cut in range(RECORD_SIZE + 1):
        lib.fake_format()
        unit = Unit(lib)
        assert unit.boot() == 0 and unit.update(a) == 0
        if step == "reactivate":
            assert unit.rollback() == (Status.OK, 0)
        before, after = (a, None) if step == "retire" else (None, a)
        lib.fake_set_budget(cut)
        rc = unit.rollback()[0]
        lib.fake_set_budget(-1)
        assert rc == (Status.OK if cut == RECORD_SIZE else Status.STORAGE_ERROR), cut
        assert unit.active_blob() == (after if cut == RECORD_SIZE else before), cut
        assert unit.boot() == 0
        assert unit.active_blob() == (after if cut == RECORD_SIZE else before), cut
        if 0 < cut < RECORD_SIZE:  # the torn record is skipped: the same rollback works next time
            assert unit.rollback()[0] == Status.OK
            assert unit.boot() == 0 and unit.active_blob() == after


def test_bit_rot_in_the_active_blob_falls_back_to_the_other_valid_slot(unit):
    a, b = blob_of(1000, 26), blob_of(1000, 27)
    assert unit.update(a) == 0 and unit.update(b) == 0
    unit.mem(1)[DATA_OFFSET + 500] ^= 0x01
    assert unit.boot() == 0
    assert unit.report() == (1, SlotState.ACTIVE, SlotState.INVALID)
    unit.mem(0)[DATA_OFFSET + 10] ^= 0x80
    assert unit.boot() == 0
    assert unit.report() == (0, SlotState.INVALID, SlotState.INVALID)
    assert unit.active_blob() is None


@pytest.mark.parametrize("seed", range(3))
def test_random_power_cuts_always_boot_old_or_new_never_a_mix(unit, seed):
    rng = random.Random(seed)
    current = blob_of(rng.randrange(100, 8000), 1000 + seed)
    assert unit.update(current) == 0
    for i in range(60):
        new = blob_of(rng.randrange(1, SLOT_SIZE - DATA_OFFSET), rng.randrange(1 << 30))
        cost = SLOT_SIZE + len(new) + RECORD_SIZE
        unit.lib.fake_set_budget(rng.randrange(0, cost + 1))
        rc = unit.update(new)
        unit.lib.fake_set_budget(-1)
        assert unit.boot() == 0
        got = unit.active_blob()
        assert got in (current, new), f"seed {seed} cut {i}: booted a model that is neither"
        # an update that reported failure never activated; one that reported success persisted
        assert got == (new if rc == 0 else current), f"seed {seed} cut {i}: rc {rc}"
        current = got


def _expected_rollback(report: tuple[int, int, int], content: dict[int, bytes], order: dict[int, int]):
    """What a rollback must do, from the documented rules: (new active slot, its blob) or None."""
    active, *states = report
    valid = [slot for slot in (1, 2) if states[slot - 1] == SlotState.VALID]
    if active:
        other = 3 - active
        return (other, content[other]) if other in valid else (0, None)
    if not valid:
        return None
    pick = max(valid, key=lambda slot: order[slot])
    return pick, content[pick]


@pytest.mark.parametrize("seed", range(3))
def test_random_power_cuts_in_a_mix_of_updates_and_rollbacks_are_atomic(unit, seed):
    """Updates and rollbacks (between slots, to and from the factory model) with a cut at a random
    byte: each either happened completely, as the rules say, or not at all; reboots agree."""
    rng = random.Random(100 + seed)
    content: dict[int, bytes] = {}  # the blob last committed to each slot
    order = {1: -1, 2: -1}  # when each slot last got a record
    done = {"update": 0, "to factory": 0, "to a slot": 0, "cut": 0}

    def cut(cost: int) -> int:  # half of the operations lose power at a random byte
        return rng.randrange(0, cost) if rng.random() < 0.5 else -1

    for i in range(150):
        before, report = unit.active_blob(), unit.report()
        if rng.random() < 0.45:
            blob = blob_of(rng.randrange(1, 3000), rng.randrange(1 << 30))
            unit.lib.fake_set_budget(cut(SLOT_SIZE + len(blob) + RECORD_SIZE))
            rc = unit.update(blob)
            expect = (unit.report()[0], blob) if rc == 0 else None
            done["update"] += rc == 0
        else:
            expect = _expected_rollback(report, content, order)
            unit.lib.fake_set_budget(cut(RECORD_SIZE))
            rc, slot = unit.rollback()
            if expect is None:
                assert rc == Status.NO_VALID_SLOT, f"seed {seed} op {i}"
            elif rc == 0:
                assert (slot, unit.active_blob()) == expect, f"seed {seed} op {i}: rollback went elsewhere"
                done["to factory" if slot == 0 else "to a slot"] += 1
        unit.lib.fake_set_budget(-1)
        if rc == 0:
            new_slot, blob = expect
            touched = new_slot or report[0]  # a retire record goes to the slot rolled back from
            content.setdefault(touched, blob)
            if new_slot:
                content[new_slot] = blob
            order[touched] = i
        else:
            done["cut"] += 1
        after_op = unit.active_blob()
        assert after_op == (expect[1] if rc == 0 else before), f"seed {seed} op {i}: rc {rc}"
        assert unit.boot() == 0
        assert unit.active_blob() == after_op, f"seed {seed} op {i}: reboot changed the model"
    assert min(done.values()) > 0, done
