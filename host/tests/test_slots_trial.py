"""Trial boot and the version floor in the C model slots (fake flash, see slots_harness.py).

* A committed model runs on trial; a reboot before the confirm returns to the previous model
  (another slot or the factory model), and the abandoned trial slot is never booted or
  re-activated by a rollback.
* The version floor is the highest confirmed version; it survives reboots, rollbacks, the erase
  of the slot that held it (a FLOOR record on the other slot) and a power cut at any byte.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from motocoach.protocol.spec import SlotState, Status

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slots_harness import RECORD_SIZE, SLOT_SIZE, Unit, blob_of, lib, unit  # noqa: E402,F401  (fixtures)


def test_commit_runs_on_trial_and_a_reboot_before_the_confirm_returns_to_the_previous_model(unit):
    a, b = blob_of(900, 1), blob_of(950, 2)
    assert unit.update(a, version=1) == 0
    assert unit.update(b, version=2, confirm=False) == 0
    assert unit.on_trial() and unit.active_blob() == b
    assert unit.report() == (2, SlotState.VALID, SlotState.TRIAL)
    assert unit.floor() == 1, "the floor rises only at the confirm"
    assert unit.boot() == 0
    assert unit.active_blob() == a and not unit.on_trial()
    assert unit.report() == (1, SlotState.ACTIVE, SlotState.INVALID)
    # the abandoned trial model is not a rollback target
    assert unit.rollback() == (0, 0) and unit.active_blob() is None
    assert unit.rollback()[0] == 0 and unit.active_blob() == a


def test_trial_on_a_fresh_unit_falls_back_to_the_factory_model(unit):
    assert unit.update(blob_of(700, 3), version=4, confirm=False) == 0
    assert unit.boot() == 0 and unit.active_blob() is None and unit.floor() == 0


def test_confirm_makes_the_model_permanent_and_raises_the_floor(unit):
    b = blob_of(800, 4)
    assert unit.update(b, version=9, confirm=False) == 0
    assert unit.confirm() == 0 and not unit.on_trial() and unit.floor() == 9
    assert unit.confirm() == Status.BAD_STATE
    assert unit.boot() == 0 and unit.active_blob() == b and unit.floor() == 9 and unit.version() == 9


def test_no_new_update_while_a_model_is_on_trial(unit):
    assert unit.update(blob_of(600, 5), confirm=False) == 0
    assert unit.begin(blob_of(600, 6)) == Status.BAD_STATE


def test_rollback_from_a_trial_returns_to_the_previous_slot(unit):
    a, b = blob_of(600, 7), blob_of(610, 8)
    assert unit.update(a, version=3) == 0 and unit.update(b, version=4, confirm=False) == 0
    assert unit.rollback() == (0, 1) and unit.active_blob() == a
    assert unit.report() == (1, SlotState.ACTIVE, SlotState.INVALID)
    assert unit.floor() == 3


def test_rollback_from_a_trial_on_a_fresh_unit_returns_to_the_factory_model_for_good(unit):
    b = blob_of(620, 18)
    assert unit.update(b, version=5, confirm=False) == 0
    writes = unit.lib.fake_write_calls()
    assert unit.rollback() == (0, 0) and unit.active_blob() is None
    assert unit.lib.fake_write_calls() == writes, "leaving a trial needs no write: the TRIAL record suffices"
    assert unit.report() == (0, SlotState.INVALID, SlotState.EMPTY)
    assert unit.rollback()[0] == Status.NO_VALID_SLOT  # the unconfirmed model cannot come back
    assert unit.boot() == 0 and unit.active_blob() is None and unit.floor() == 0


def test_the_floor_survives_rollback_to_factory_and_the_erase_of_the_slot_that_held_it(unit):
    a = blob_of(1000, 9)
    assert unit.update(a, version=5) == 0 and unit.floor() == 5
    assert unit.rollback() == (0, 0)  # factory runs; A (retired) alone holds the floor
    assert unit.begin(blob_of(500, 10), version=5) == 0  # erases A: a FLOOR record keeps 5 on B first
    assert unit.boot() == 0 and unit.floor() == 5


def test_the_floor_survives_rollback_to_an_older_slot_and_the_next_update(unit):
    assert unit.update(blob_of(500, 11), version=2) == 0 and unit.update(blob_of(500, 12), version=6) == 0
    assert unit.rollback()[0] == 0 and unit.version() == 2 and unit.floor() == 6
    assert unit.update(blob_of(500, 13), version=6) == 0
    assert unit.boot() == 0 and unit.floor() == 6


def test_a_signed_downgrade_lowers_the_floor_only_when_confirmed(unit):
    assert unit.update(blob_of(500, 14), version=8) == 0
    assert unit.begin(blob_of(500, 15), version=3, new_floor=3) == 0
    assert unit.send(blob_of(500, 15)) == 0 and unit.commit()[0] == 0
    assert unit.floor() == 8 and unit.confirm() == 0 and unit.floor() == 3
    assert unit.boot() == 0 and unit.floor() == 3


@pytest.mark.parametrize("seed", range(4))
def test_the_floor_never_drops_under_power_cuts_at_any_byte(lib, seed):  # noqa: F811
    """Retire to factory, then update (FLOOR record + erase + data + TRIAL + ACTIVATE), cut at a
    random byte: the floor after the reboot is never below the confirmed floor, and the unit runs
    the factory model or a confirmed model, never a trial one."""
    rng = random.Random(seed)
    for _ in range(40):
        lib.fake_format()
        u = Unit(lib)
        assert u.boot() == 0 and u.update(blob_of(400, 16), version=7) == 0 and u.rollback()[0] == 0
        new = blob_of(450, 17)
        lib.fake_set_budget(rng.randrange(0, 2 * SLOT_SIZE + len(new) + 3 * RECORD_SIZE))
        rc = u.update(new, version=7)
        lib.fake_set_budget(-1)
        assert u.boot() == 0 and u.floor() >= 7
        assert u.active_blob() in (None, new) and not u.on_trial()
        if rc == 0:
            assert u.active_blob() == new
