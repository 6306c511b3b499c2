"""Log lines: masking, JSON, conversation ids on every line, the per-conversation lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.logs import configure_logging, mask, masking
from tac_actors.testing import open_harness


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("tac_actors.turns").setLevel(logging.NOTSET)
    masking(True)


@pytest.mark.parametrize(("text", "masked"), [
    ("from +15551230001 now", "from +*******0001 now"),
    ("whatsapp:+15551230001", "whatsapp:+*******0001"),
    ("bare 5551230001.", "bare ******0001."),
    ("mail ada.lovelace@example.com,", "mail a***@example.com,"),
    # ids, short numbers, times and latencies are left alone
    ("CA0123456789abcdef0123456789abcdef", "CA0123456789abcdef0123456789abcdef"),
    ("turn 12345678 in 1234567.5 ms at 2026-11-28 10:51:08,210",
     "turn 12345678 in 1234567.5 ms at 2026-11-28 10:51:08,210"),
])
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_masking_can_be_turned_off(restore_logging: None) -> None:
    masking(False)
    assert mask("+15551230001") == "+15551230001"


async def test_json_lines_carry_the_conversation(clock: object, restore_logging: None
                                                 ) -> None:
    out = io.StringIO()
    configure_logging("INFO", fmt="json", stream=out)
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> str:
        logging.getLogger("my_app").info("the app writes to ada@example.com")
        return "hi"

    async with open_harness(tac) as h:
        async with h.call(from_="+15551230001") as caller:
            await caller.say("hello")
            await caller.read_reply()
        await trio.testing.wait_all_tasks_blocked()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [line for line in lines if line["call_sid"] == caller.call_sid]
    messages = [line["msg"] for line in mine]
    assert messages[0].startswith("conversation started: voice")
    assert "from +*******0001" in messages[0]
    assert any(m.startswith("turn 1: ok voice in") for m in messages)
    assert "the app writes to a***@example.com" in messages
    assert messages[-1].startswith("conversation ended: voice")
    assert all(line["conversation_id"] == caller.call_sid for line in mine)
    assert not any("5551230001" in line for line in out.getvalue().splitlines())


async def test_turn_lines_can_be_silenced(clock: object, restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out, turns=False)
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda message, session, memory: "hi")
    async with open_harness(tac) as h:
        async with h.call() as caller:
            await caller.say("hello")
            await caller.read_reply()
        await trio.testing.wait_all_tasks_blocked()
    text = out.getvalue()
    assert f"[{caller.call_sid}]: conversation started" in text
    assert "conversation ended" in text and "turn 1" not in text


def test_text_lines_keep_tracebacks_and_mask_them(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    try:
        raise ValueError("no such number +15551230001")
    except ValueError:
        logging.getLogger("my_app").exception("lookup for %s failed", "ada@example.com")
    first, *rest = out.getvalue().splitlines()
    assert first.endswith(" ERROR my_app: lookup for a***@example.com failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: no such number +*******0001"
