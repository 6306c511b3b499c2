"""The mailbox: bounded lanes, selective receive, close, statistics, checkpoints."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tac_actors.actors import Mailbox
from tac_actors.testing.fairness import schedule_passes


async def test_fifo_and_selective_receive() -> None:
    box: Mailbox[str] = Mailbox(4)
    for item in ("a", "b", "c"):
        box.send_nowait(item)
    assert box.receive_nowait(lambda m: m == "b") == "b"
    assert [box.receive_nowait(), box.receive_nowait()] == ["a", "c"]
    with pytest.raises(trio.WouldBlock):
        box.receive_nowait()


async def test_lanes_are_bounded_separately() -> None:
    box: Mailbox[str] = Mailbox(1, urgent_capacity=1)
    box.send_nowait("normal")
    with pytest.raises(trio.WouldBlock):
        box.send_nowait("again")
    box.send_nowait("urgent", urgent=True)  # its own room
    with pytest.raises(trio.WouldBlock):
        box.send_nowait("urgent 2", urgent=True)
    stats = box.statistics()
    assert (stats.queued, stats.urgent_queued, stats.rejected) == (1, 1, 2)


async def test_send_waits_for_room_and_is_a_checkpoint(autojump_clock: object) -> None:
    box: Mailbox[int] = Mailbox(1)
    await box.send(1)
    sent = trio.Event()

    async def second() -> None:
        await box.send(2)
        sent.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set() and box.statistics().waiting_senders == 1
        assert box.receive_nowait() == 1
        await sent.wait()
    assert box.receive_nowait() == 2


async def test_a_sender_that_never_waits_still_yields() -> None:
    from tac_actors.actors.mailbox import YIELD_EVERY

    box: Mailbox[int] = Mailbox(1000)
    async with schedule_passes() as passes:
        for i in range(10 * YIELD_EVERY):
            await box.send(i)
    assert passes.count >= 9


async def test_one_receiver_at_a_time() -> None:
    box: Mailbox[int] = Mailbox(4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.wait_readable)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="one receiver"):
            await box.wait_readable()
        box.send_nowait(1)  # wakes the waiting receiver, which returns
    assert box.receive_nowait() == 1


async def test_a_cancelled_receiver_leaves_the_mailbox_waitable() -> None:
    box: Mailbox[int] = Mailbox(4)
    with trio.CancelScope() as scope:
        scope.cancel()
        await box.wait_readable()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.wait_readable)
        await trio.testing.wait_all_tasks_blocked()
        box.nudge()
