"""ctypes harness for the C model slots: a RAM fake flash that can lose power mid-write.

Used by test_slots.py and test_slots_powercut.py. A RAM-backed fake HAL stands in for flash. It
can cut the power: after a byte budget is used up, erases and writes stop half way and fail,
exactly like a brown-out in the middle of programming. After each cut a fresh ``slots_init`` on
the same memory plays the reboot.
"""

from __future__ import annotations

import ctypes
import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import pytest

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


def build_lib(d: Path) -> ctypes.CDLL:
    """Compile model_slots.c + sha256.c + the fake HAL into ``d/libslots.so`` and load it."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler on PATH (install gcc): the C slot tests cannot run")
    (d / "fake_hal.c").write_text(FAKE_HAL_C)
    so = d / "libslots.so"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion",
                    "-O1", "-fPIC", "-shared", f"-I{CORE}", str(CORE / "model_slots.c"),
                    str(CORE / "slot_records.c"), str(CORE / "sha256.c"), str(d / "fake_hal.c"), "-o", str(so),
                    "-lsodium"],
                   check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(so))
    lib.fake_hal.restype = ctypes.c_void_p
    lib.fake_hal.argtypes = [ctypes.c_uint32, ctypes.c_int]
    lib.fake_mem.restype = ctypes.POINTER(ctypes.c_uint8 * 65536)
    lib.fake_set_budget.argtypes = [ctypes.c_long]
    lib.fake_budget.restype = ctypes.c_long
    lib.fake_state_size.restype = ctypes.c_size_t
    lib.slots_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.slots_begin.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_uint32, ctypes.c_uint32]
    lib.slots_confirm.argtypes = [ctypes.c_void_p]
    lib.slots_floor.argtypes = [ctypes.c_void_p]
    lib.slots_floor.restype = ctypes.c_uint32
    lib.slots_on_trial.argtypes = [ctypes.c_void_p]
    lib.slots_on_trial.restype = ctypes.c_uint8
    lib.slots_active_version.argtypes = [ctypes.c_void_p]
    lib.slots_active_version.restype = ctypes.c_uint32
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

    def begin(self, blob: bytes, total: int | None = None, sha: bytes | None = None, version: int = 1,
              new_floor: int | None = None) -> int:
        """slots_begin as the core calls it once the signed manifest passed (version, floor)."""
        floor = max(version, self.floor()) if new_floor is None else new_floor
        return self.lib.slots_begin(self.state, len(blob) if total is None else total,
                                    sha or hashlib.sha256(blob).digest(), b"model-x".ljust(16, b"\0"),
                                    version, floor)

    def confirm(self) -> int:
        return self.lib.slots_confirm(self.state)

    def floor(self) -> int:
        return self.lib.slots_floor(self.state)

    def on_trial(self) -> bool:
        return bool(self.lib.slots_on_trial(self.state))

    def version(self) -> int:
        return self.lib.slots_active_version(self.state)

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

    def update(self, blob: bytes, version: int = 1, confirm: bool = True) -> int:
        """begin + chunks + commit (the model runs on trial) + confirm (unless told not to)."""
        rc = self.begin(blob, version=version) or self.send(blob)
        rc = rc or self.commit()[0]
        return rc or (self.confirm() if confirm else 0)

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


def blob_of(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


# --- fixtures shared by the slot test modules (imported by name there) ---------------------------

@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> ctypes.CDLL:
    """The slots + sha256 C code and the fake flash, built once per test module."""
    return build_lib(tmp_path_factory.mktemp("slots"))


@pytest.fixture
def unit(lib) -> "Unit":
    """A freshly formatted fake flash, booted: factory model running, both slots empty."""
    lib.fake_format()
    u = Unit(lib)
    assert u.boot() == 0
    return u
