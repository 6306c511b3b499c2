"""The cell's lazily made ``stopped`` event behaves as trio.Event's subset it offers."""

from __future__ import annotations

import trio
import trio.testing

from tac_actors.actors.cell import LazyEvent


async def test_a_waiter_is_woken_by_set_and_a_late_waiter_passes() -> None:
    event = LazyEvent()
    woken: list[bool] = []

    async def waiter() -> None:
        await event.wait()
        woken.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert not event.is_set() and not woken
        event.set()
    assert woken == [True, True] and event.is_set()
    with trio.testing.assert_checkpoints():
        await event.wait()  # already set: returns through a checkpoint


async def test_no_event_is_made_until_someone_waits() -> None:
    event = LazyEvent()
    event.set()
    assert event._event is None
