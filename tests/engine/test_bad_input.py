"""Malformed input on a voice socket: a defined answer each, logged once with the call id,
and other calls untouched."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.protocol.connection import MAX_CONSECUTIVE_BAD
from tac_actors.testing import Recorder, open_harness

DROPPED = [
    ("not json", "{not json"),
    ("json not an object", "[1, 2, 3]"),
    ("missing type", '{"voicePrompt": "hi"}'),
    ("missing field", '{"type": "prompt", "last": true}'),
    ("wrong field type", '{"type": "prompt", "voicePrompt": 12, "last": true}'),
    ("wrong bool", '{"type": "prompt", "voicePrompt": "x", "last": "true"}'),
    ("second setup", '{"type": "setup", "callSid": "CAother"}'),
]


def echo_tac() -> tuple[TAC, Recorder]:
    tac = TAC(TACConfig(max_frame_bytes=1024))
    tac.on_message_ready(lambda m, s, mem: f"echo: {m}")
    return tac, Recorder().attach(tac)


@pytest.mark.parametrize(("case", "frame"), DROPPED, ids=[c for c, _ in DROPPED])
async def test_bad_frame_is_dropped_logged_once_and_call_goes_on(
        clock: object, caplog: pytest.LogCaptureFixture, case: str, frame: str) -> None:
    tac, rec = echo_tac()
    caplog.set_level(logging.WARNING, logger="tac_actors")
    async with open_harness(tac) as h, h.call() as caller, h.call() as other:
        await caller.send_raw(frame)
        await trio.testing.wait_all_tasks_blocked()
        warnings = [r for r in caplog.records if caller.call_sid in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        assert not any(other.call_sid in r.getMessage() for r in caplog.records)
        assert [c.phase for _, c in rec.errors] == ["protocol"]
        await caller.say("still there?")
        assert (await caller.read_reply()).text == "echo: still there?"
        await other.say("fine")
        assert (await other.read_reply()).text == "echo: fine"


async def test_unknown_frame_type_is_tolerated(clock: object,
                                               caplog: pytest.LogCaptureFixture) -> None:
    tac, rec = echo_tac()
    caplog.set_level(logging.INFO, logger="tac_actors")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.send_raw('{"type": "futureThing", "x": 1}')
        await caller.say("hello", lang="en-US")
        assert (await caller.read_reply()).text == "echo: hello"
    assert rec.errors == []
    assert any("futureThing" in r.getMessage() for r in caplog.records)


async def test_unknown_fields_are_tolerated(clock: object) -> None:
    tac, rec = echo_tac()
    async with open_harness(tac) as h, h.call() as caller:
        await caller.send_raw('{"type":"prompt","voicePrompt":"hi","last":true,"new":{"a":1}}')
        assert (await caller.read_reply()).text == "echo: hi"
    assert rec.errors == []


@pytest.mark.parametrize(("case", "frame", "code"), [
    ("binary frame", b"\x00\x01binary", 1003),
    ("oversized frame", '{"type":"prompt","voicePrompt":"' + "x" * 2000 + '","last":true}', 1009),
])
async def test_fatal_frames_close_the_call_only(clock: object, case: str, frame: Any,
                                                code: int) -> None:
    tac, rec = echo_tac()
    async with open_harness(tac) as h, h.call() as caller, h.call() as other:
        await caller.send_raw(frame)
        assert await caller.wait_closed() == code
        await rec.ended_seen.wait()
        await other.say("unaffected")
        assert (await other.read_reply()).text == "echo: unaffected"
    assert len(rec.ended) == 2


async def test_many_bad_frames_in_a_row_close_1007(clock: object) -> None:
    tac, _ = echo_tac()
    async with open_harness(tac) as h, h.call() as caller:
        for _ in range(MAX_CONSECUTIVE_BAD):
            await caller.send_raw("garbage")
        assert await caller.wait_closed() == 1007


@pytest.mark.parametrize("first", ['{"type":"prompt","voicePrompt":"hi","last":true}',
                                   "not json", '{"type":"interrupt"}'])
async def test_frames_before_setup_close_1008(clock: object, first: str) -> None:
    tac, rec = echo_tac()
    async with open_harness(tac) as h, h.call(setup=False) as caller:
        await caller.send_raw(first)
        assert await caller.wait_closed() == 1008
        assert len(h.supervisor) == 0
    assert rec.ended == []  # no conversation was ever started


async def test_no_setup_within_timeout_closes_1008(clock: object) -> None:
    tac, _ = echo_tac()
    async with open_harness(tac) as h, h.call(setup=False) as caller:
        start = trio.current_time()
        assert await caller.wait_closed() == 1008
        assert trio.current_time() - start == 10.0


async def test_second_socket_for_a_live_call_is_refused(clock: object) -> None:
    tac, _ = echo_tac()
    async with open_harness(tac) as h, h.call() as first, \
            h.call(call_sid=first.call_sid) as second:
        assert await second.wait_closed() == 1008
        await first.say("still mine")
        assert (await first.read_reply()).text == "echo: still mine"


async def test_a_flood_of_bad_frames_is_logged_as_bounded_excerpts(
        clock: object, caplog: pytest.LogCaptureFixture) -> None:
    """Reliability D11/D12: 404k hostile frames wrote 184 MB of log, and a newline in a
    frame forged a log line. Three escaped, bounded lines per call, then a count."""
    tac, _ = echo_tac()
    caplog.set_level(logging.INFO, logger="tac_actors")
    forged = '{"type": "' + "x" * 900 + '\\n2026-01-01 CRITICAL forged"}'
    async with open_harness(tac) as h, h.call() as caller:
        for _ in range(MAX_CONSECUTIVE_BAD - 1):
            await caller.send_raw(forged)
            await caller.say("keep going")  # resets the bad-frame run
            assert (await caller.read_reply()).text == "echo: keep going"
        call_sid = caller.call_sid
    lines = [r.getMessage() for r in caplog.records if call_sid in r.getMessage()
             and r.name != "tac_actors.conversation"]  # not the start/end lines
    assert len(lines) <= 4, lines
    assert all("\n" not in line and len(line) < 400 for line in lines), lines
    assert "more bad frames not logged" in lines[-1]


async def test_a_flooding_caller_is_held_to_its_frame_budget(clock: object) -> None:
    """A socket may send max_frames_per_second on average (bursts of frame_burst);
    past it the reader waits (TCP pushes back), while a bystander is answered at once."""
    tac, _ = echo_tac()
    policy = tac.config.voice_policy
    rate, burst = policy.max_frames_per_second, policy.frame_burst
    assert rate is not None
    flood = burst + 2000
    async with open_harness(tac) as h, h.call() as flooder, h.call() as bystander:
        start = trio.current_time()
        for n in range(flood):
            await flooder.send_raw(f'{{"type": "info", "name": "n", "value": {n}}}')
        await flooder.say("after the flood")
        said_at = trio.current_time()
        await bystander.say("hello")
        assert (await bystander.read_reply()).text == "echo: hello"
        assert trio.current_time() - said_at < 0.1, "the bystander waited"
        assert (await flooder.read_reply()).text == "echo: after the flood"
        assert trio.current_time() - start >= (flood - burst) / rate * 0.9


async def test_a_caller_sending_garbage_is_slowed_down(clock: object) -> None:
    tac, _ = echo_tac()
    async with open_harness(tac) as h, h.call() as caller:
        start = trio.current_time()
        for _ in range(5):
            await caller.send_raw("{not json")
        await caller.say("hi")
        assert (await caller.read_reply()).text == "echo: hi"
        assert trio.current_time() - start >= 0.005 * (1 + 2 + 3 + 4 + 5)
