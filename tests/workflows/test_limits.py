"""Concurrency slots on both backends: all or nothing, given back, and lost with a lease.

(Across real processes: tests/engine_proof/test_concurrency_limits.py.)
"""

from __future__ import annotations

from tests.support.clock import ManualClock
from workflows.limits import Limit, Slots
from workflows.store import Store

WIDE, NARROW = Limit("workflow:wide", 2), Limit("connection:narrow", 1)


async def test_slots_are_all_or_nothing_and_come_back(store: Store) -> None:
    clock = ManualClock()
    me, other = Slots(store, "me", 30), Slots(store, "other", 30)
    assert await other.take([NARROW], job_id=1, now=clock.now())
    # My first take ever: WIDE's slots are created, one taken, then NARROW is full.
    assert not await me.take([WIDE, NARROW], job_id=2, now=clock.now())
    await other.give_back([NARROW], job_id=1)
    assert await me.take([WIDE, NARROW], job_id=2, now=clock.now()), "nothing leaked"
    assert await other.take([WIDE], job_id=3, now=clock.now()), "WIDE has a second slot"
    assert not await other.take([WIDE], job_id=4, now=clock.now())


async def test_a_lost_lease_frees_the_slot_and_renewal_keeps_it(store: Store) -> None:
    clock = ManualClock()
    dead, alive, newcomer = (
        Slots(store, "dead", 30),
        Slots(store, "alive", 30),
        Slots(store, "new", 30),
    )
    assert await dead.take([NARROW], job_id=1, now=clock.now())
    assert await alive.take([Limit("connection:other", 1)], job_id=2, now=clock.now())
    clock.advance(20)
    async with store.transaction() as session:
        await alive.renew(session, clock.now())
    clock.advance(20)  # 40 s: dead's lease (30 s) ran out, alive's (renewed at 20 s) did not
    assert await newcomer.take([NARROW], job_id=3, now=clock.now())
    assert not await newcomer.take([Limit("connection:other", 1)], job_id=4, now=clock.now())
