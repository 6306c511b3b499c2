"""The runtime's metrics: what the actor core reports, and what ``/metrics`` shows.

Fake clock (the harness): latencies are exact, so each observation lands in a known
bucket."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tac_actors import TAC, TACConfig
from tac_actors.metrics import Histogram
from tac_actors.server.metrics import metrics_registry, status
from tac_actors.testing import open_harness


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def scrape(runtime: Any, tac: TAC) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    state: Any = SimpleNamespace(runtime=runtime, tac=tac, door=None)
    text = generate_latest(metrics_registry(state)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_histogram_uses_le_buckets() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert list(histogram.cumulative()) == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert histogram.count == 4 and histogram.sum == pytest.approx(3.65)


async def test_turn_latency_first_token_errors_and_barge_in(clock: object) -> None:
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "fail":
            raise ValueError("my bug")

        async def tokens() -> Any:
            await trio.sleep(0.1)
            yield "one "
            await trio.sleep(0.2 if message == "short" else 100)
            yield "two"

        return tokens()

    async with open_harness(tac) as h:
        async with h.call() as caller:
            await caller.say("short")
            assert (await caller.read_reply()).text == "one two"
            await caller.say("fail")
            await caller.read_reply()
            await caller.say("long")
            await caller.next_frame()  # "one ": the turn now waits 100 s
            await caller.interrupt("one")
            assert (await caller.read_reply()).tokens == ()
            await trio.testing.wait_all_tasks_blocked()
            live = scrape(h.runtime, tac)
        await trio.testing.wait_all_tasks_blocked()
        after = scrape(h.runtime, tac)

    voice = (("channel", "voice"),)
    assert live[("tac_conversations_live", voice)] == 1
    assert live[("tac_barge_ins_total", voice)] == 1
    assert after[("tac_conversations_live", voice)] == 0
    assert after[("tac_barge_ins_total", voice)] == 1  # kept once the call is gone
    assert after[("tac_conversations_ended_total", voice)] == 1
    assert after[("tac_turns_total", (("channel", "voice"), ("outcome", "ok")))] == 1
    assert after[("tac_turns_total", (("channel", "voice"), ("outcome", "error")))] == 1
    assert after[("tac_turns_total", (("channel", "voice"), ("outcome", "interrupt")))] == 1
    assert after[("tac_errors_total", (("phase", "turn"),))] == 1
    # fake clock, so exact: the failed turn took 0 s, the interrupted one 0.1 s, the
    # short one 0.3 s; both streamed turns had their first token at 0.1 s
    assert after[("tac_turn_seconds_bucket", (("channel", "voice"), ("le", "0.005")))] == 1
    assert after[("tac_turn_seconds_bucket", (("channel", "voice"), ("le", "0.25")))] == 2
    assert after[("tac_turn_seconds_bucket", (("channel", "voice"), ("le", "0.5")))] == 3
    assert after[("tac_first_token_seconds_bucket",
                  (("channel", "voice"), ("le", "0.1")))] == 2
    # the interrupted turn stopped at once
    assert after[("tac_interrupt_stop_seconds_bucket",
                  (("channel", "voice"), ("le", "0.005")))] == 1
    assert after[("tac_mailbox_depth", ())] == 0
    # no per-call label anywhere
    assert not any(dict(labels).keys() - {"channel", "outcome", "phase", "le", "product",
                                           "status", "source", "generation"}
                   for _, labels in after)


async def test_status_lists_live_conversations(clock: object) -> None:
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda message, session, memory: "hi")
    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hello")
        await caller.read_reply()
        state: Any = SimpleNamespace(runtime=h.runtime, tac=tac, door=None)
        document = status(state)
    assert document["live"] == 1
    [entry] = document["conversations"]
    assert entry["call_sid"] == caller.call_sid and entry["channel"] == "voice"
    assert entry["turns"] == 1
    assert "dev" not in document
