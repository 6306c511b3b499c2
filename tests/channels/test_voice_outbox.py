"""The voice outbox: retraction by barrier, bounds, batches, fairness of the direct path."""

from __future__ import annotations

import json

import trio
import trio.testing

from tac_actors.actors.gate import NO_TURN
from tac_actors.channels.voice_outbox import BATCH_FRAMES, YIELD_EVERY, VoiceOutbox
from tac_actors.protocol.connection import RelayConnection
from tac_actors.testing.fairness import schedule_passes


class StalledTransport:
    """Takes nothing until released; records what it was given."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.batches: list[int] = []
        self.open = trio.Event()

    async def send(self, text: str) -> None:
        await self.open.wait()
        self.sent.append(text)

    async def send_many(self, texts: list[str]) -> None:
        self.batches.append(len(texts))
        await self.open.wait()
        self.sent.extend(texts)

    async def receive(self) -> str:
        await trio.sleep_forever()
        raise AssertionError

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await trio.lowlevel.checkpoint()


class DirectTransport(StalledTransport):
    """Writes without waiting, like the fast engine when the kernel takes the bytes."""

    def send_nowait(self, text: str) -> bool:
        self.sent.append(text)
        return True


def tokens(sent: list[str]) -> list[str]:
    return [json.loads(text)["token"] for text in sent]


async def test_retract_through_keeps_frames_of_no_turn(autojump_clock: object) -> None:
    outbox = VoiceOutbox(RelayConnection())
    transport = StalledTransport()
    async with trio.open_nursery() as nursery:
        outbox.start(nursery, transport)
        await outbox.deliver(1, "a", last=False)
        await trio.testing.wait_all_tasks_blocked()  # "a" is with the (stalled) writer
        for turn, token in [(NO_TURN, "keep"), (2, "b"), (3, "c")]:
            await outbox.deliver(turn, token, last=False)
        assert outbox.retract_through(2) == 1
        transport.open.set()
        await outbox.wait_empty()
        nursery.cancel_scope.cancel()
    assert tokens(transport.sent) == ["a", "keep", "c"]


async def test_unread_acknowledgements_do_not_pile_up(autojump_clock: object) -> None:
    """Review D6: 600k interrupts without reading grew the server without bound."""
    outbox = VoiceOutbox(RelayConnection())
    transport = StalledTransport()
    async with trio.open_nursery() as nursery:
        outbox.start(nursery, transport)
        await outbox.deliver(1, "x", last=False)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(10_000):
            outbox.retract_through(1)
            outbox.deliver_nowait(NO_TURN, "", last=True)
        assert outbox.queued() == 1
        nursery.cancel_scope.cancel()


async def test_producers_wait_on_queued_bytes(autojump_clock: object) -> None:
    """Review D7: the high-water mark counted frames of up to 64 KB each."""
    outbox = VoiceOutbox(RelayConnection(), high_water=1000, high_water_bytes=64 * 1024)
    transport = StalledTransport()
    delivered = 0

    async def produce() -> None:
        nonlocal delivered
        for _ in range(100):
            await outbox.deliver(1, "y" * 8192, last=False)
            delivered += 1

    async with trio.open_nursery() as nursery:
        outbox.start(nursery, transport)
        nursery.start_soon(produce)
        await trio.testing.wait_all_tasks_blocked()
        assert delivered < 10, "the producer should wait at about 64 KB queued"
        transport.open.set()
        await trio.testing.wait_all_tasks_blocked()
        assert delivered == 100
        nursery.cancel_scope.cancel()


async def test_writer_batches_are_small_enough_to_retract(autojump_clock: object) -> None:
    """Review C10: the writer took the whole queue, out of a barge-in's reach."""
    outbox = VoiceOutbox(RelayConnection())
    transport = StalledTransport()
    async with trio.open_nursery() as nursery:
        outbox.start(nursery, transport)
        outbox.deliver_nowait(1, "first", last=False)
        for i in range(100):
            await outbox.deliver(1, f"t{i}", last=False)
        await trio.testing.wait_all_tasks_blocked()
        assert max(transport.batches, default=1) <= BATCH_FRAMES
        nursery.cancel_scope.cancel()


async def test_direct_writes_still_yield(autojump_clock: object) -> None:
    """Review C5: a reply whose iterator never awaits froze the loop for 1.6 s."""
    outbox = VoiceOutbox(RelayConnection())
    transport = DirectTransport()
    async with trio.open_nursery() as nursery:
        outbox.start(nursery, transport)
        async with schedule_passes() as passes:
            for _ in range(1600):
                await outbox.deliver(1, "z", last=False)
        nursery.cancel_scope.cancel()
    assert len(transport.sent) == 1600
    assert passes.count >= 1600 // YIELD_EVERY - 2


async def test_nothing_is_queued_after_the_socket_is_gone(autojump_clock: object) -> None:
    """Review C14."""
    outbox = VoiceOutbox(RelayConnection())
    outbox.stop()
    for _ in range(1000):
        await outbox.deliver(1, "late", last=False)
    assert outbox.queued() == 0 and outbox.dropped_after_end == 1000
