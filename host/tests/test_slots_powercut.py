"""Power cuts at every byte of every slot transition, and at random points of random updates and
rollbacks, on the C model slots with a fake flash that loses power mid-write (slots_harness.py)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from motocoach.protocol.spec import SlotState, Status

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slots_harness import DATA_OFFSET, RECORD_SIZE, SLOT_SIZE, Unit, blob_of, lib, unit  # noqa: E402,F401


def test_torn_record_at_every_byte_offset_never_boots(lib):
    """Cut power while B's TRIAL record, then its ACTIVATE record (the confirm), is being
    programmed, at every byte of both: until the confirm is complete, a reboot runs A."""
    a, b = blob_of(1500, 22), blob_of(1600, 23)
    erase_and_data = SLOT_SIZE + len(b)
    for cut in range(2 * RECORD_SIZE + 1):
        lib.fake_format()
        unit = Unit(lib)
        assert unit.boot() == 0 and unit.update(a) == 0
        lib.fake_set_budget(erase_and_data + cut)
        rc = unit.update(b)
        lib.fake_set_budget(-1)
        assert unit.boot() == 0
        if cut < 2 * RECORD_SIZE:
            assert rc == Status.STORAGE_ERROR
            assert unit.active_blob() == a, f"cut after {cut} record bytes booted the torn or trial slot"
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
