"""asyncio mode: asyncio app code runs unchanged in every hook, streamed reply and tool,
and a barge-in cancels the asyncio task wherever it is parked."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.asyncio_bridge import AsyncioCallbackError
from tac_actors.protocol import Text
from tac_actors.testing import Recorder, SimulatedCaller, open_harness
from tac_actors.tools import function_tool
from tests.usercode.conftest import Signal


async def frames_after_ack(caller: SimulatedCaller) -> list[Text]:
    """Every text frame after the acknowledgement (empty final token) of a barge-in."""
    while True:
        frame = await caller.next_frame()
        if isinstance(frame, Text) and frame.token == "" and frame.last:
            break
    index = len(caller.received)
    await trio.testing.wait_all_tasks_blocked()
    with trio.move_on_after(0):
        while True:
            await caller.next_frame()
    return [f for f in caller.received[index:] if isinstance(f, Text)]


async def test_asyncio_primitives_in_the_turn(clock: object) -> None:
    tac = TAC(TACConfig(), asyncio=True)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        async def part(word: str) -> str:
            await asyncio.sleep(0.001)
            return word

        task = asyncio.create_task(part("three"))
        first, second = await asyncio.gather(part("one"), part("two"))
        return f"{first} {second} {await task} on {type(asyncio.get_running_loop()).__name__}"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("count")
        assert (await caller.read_reply()).text.startswith("one two three on ")


async def test_asyncio_async_generator_streams(clock: object) -> None:
    tac = TAC(TACConfig(), asyncio=True)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> Any:
        for token in ("a ", "b ", "c"):
            await asyncio.sleep(0)
            yield token

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        heard = await caller.read_reply()
        assert heard.tokens[:3] == ("a ", "b ", "c")


async def test_coroutine_returning_an_asyncio_iterator_streams(clock: object) -> None:
    tac = TAC(TACConfig(), asyncio=True)

    async def tokens() -> Any:
        await asyncio.sleep(0)
        yield "x "
        yield "y"

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> Any:
        await asyncio.sleep(0)
        return tokens()

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        assert (await caller.read_reply()).text == "x y"


async def test_every_hook_runs_on_the_loop(clock: object, signal: Callable[[], Signal]) -> None:
    tac = TAC(TACConfig(), asyncio=True)
    seen: list[str] = []
    ended, errored = signal(), signal()

    async def mark(name: str) -> None:
        await asyncio.sleep(0)
        asyncio.get_running_loop()
        seen.append(name)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        await mark("message")
        if message == "fail":
            raise ValueError("boom")
        return "ok"

    @tac.on_dtmf
    async def dtmf(digit: str, session: Any) -> str:
        await mark("dtmf")
        return f"pressed {digit}"

    @tac.on_interrupt
    async def interrupted(session: Any, interruption: Any) -> None:
        await mark("interrupt")

    @tac.on_error
    async def error(exc: BaseException, context: Any) -> None:
        await mark("error")
        errored.fire()

    @tac.on_conversation_ended
    async def end(session: Any) -> None:
        await mark("ended")
        ended.fire()

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("hi")
        assert (await caller.read_reply()).text == "ok"
        await caller.press("5")
        assert (await caller.read_reply()).text == "pressed 5"
        await caller.interrupt(heard="pre")
        await caller.read_reply()
        await caller.say("fail")
        await caller.read_reply()
        with trio.fail_after(30):
            await errored.wait()
        await caller.hang_up()
        with trio.fail_after(30):
            await ended.wait()
    assert seen == ["message", "dtmf", "interrupt", "message", "error", "ended"]


@pytest.mark.parametrize("where", ["callback", "before-first-token", "between-tokens"])
async def test_barge_in_cancels_the_asyncio_task_at_each_await_point(
        clock: object, signal: Callable[[], Signal], where: str) -> None:
    tac = TAC(TACConfig(), asyncio=True)
    reached, cancelled = signal(), signal()
    rec = Recorder().attach(tac)

    async def park() -> None:
        reached.fire()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.fire()
            raise

    async def stream() -> Any:
        if where == "between-tokens":
            yield "one "
            await asyncio.sleep(0)
            yield "two "
        await park()
        yield "never"

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> Any:
        if message != "first":
            return "second answer"
        if where == "callback":
            await park()
        return stream()

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("first")
        with trio.fail_after(30):
            await reached.wait()
        if where == "between-tokens":
            sent = [await caller.next_frame(), await caller.next_frame()]
            assert sent == [Text(token="one ", last=False), Text(token="two ", last=False)]
        await caller.interrupt(heard="one" if where == "between-tokens" else "")
        with trio.fail_after(30):
            await cancelled.wait()
        late = await frames_after_ack(caller)
        assert late == [], f"tokens after the acknowledgement: {late}"
        await caller.say("next")
        assert (await caller.read_reply()).text == "second answer"
    assert cancelled.count == 1
    assert len(rec.interrupts) == 1
    assert rec.errors == []


async def test_tools_run_on_the_loop_and_sync_tools_in_threads(clock: object) -> None:
    tac = TAC(TACConfig(), asyncio=True)
    tac.on_message_ready(lambda m, s, mem: "unused")

    @function_tool
    async def lookup(city: str) -> str:
        """Weather for a city."""
        await asyncio.sleep(0)
        return f"sunny in {city}"

    @function_tool
    def blocking(city: str) -> str:
        """Weather, the slow way."""
        return f"{city} from {threading.current_thread().name}"

    async with open_harness(tac):
        result = await lookup.invoke('{"city": "Oslo"}')
        assert (result.ok, result.content) == (True, "sunny in Oslo")
        result = await blocking.invoke({"city": "Rome"})
        assert result.ok and result.content.startswith("Rome from ")
        assert threading.main_thread().name not in result.content


async def test_asyncio_code_in_trio_mode_is_an_error_naming_the_switch(
        clock: object) -> None:
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> Any:
        if message == "sleep":
            await asyncio.sleep(1)
        elif message == "yield":
            await asyncio.sleep(0)
        return "never"

    async with open_harness(tac) as h, h.call() as caller:
        for message in ("sleep", "yield"):
            await caller.say(message)
            heard = await caller.read_reply()
            assert heard.text == tac.config.voice_policy.fallback_text
    assert len(rec.errors) == 2
    for exc, _ in rec.errors:
        assert isinstance(exc, AsyncioCallbackError)
        assert "TAC_ASYNCIO=1" in str(exc) and "asyncio=True" in str(exc)


async def test_asyncio_stream_in_trio_mode_is_an_error_naming_the_switch(
        clock: object) -> None:
    tac = TAC(TACConfig())
    rec = Recorder().attach(tac)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> Any:
        yield "first "
        await asyncio.sleep(0.5)
        yield "never"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        await caller.read_reply()
    assert [type(exc) for exc, _ in rec.errors] == [AsyncioCallbackError]


async def test_trio_code_in_asyncio_mode_is_an_error_naming_the_switch(
        clock: object) -> None:
    tac = TAC(TACConfig(), asyncio=True)
    rec = Recorder().attach(tac)

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> str:
        await trio.sleep(0.1)
        return "never"

    async with open_harness(tac) as h, h.call() as caller:
        await caller.say("go")
        assert (await caller.read_reply()).text == tac.config.voice_policy.fallback_text
    [(exc, _)] = rec.errors
    assert isinstance(exc, AsyncioCallbackError) and "asyncio mode is on" in str(exc)


def test_switch_from_the_environment() -> None:
    assert TACConfig.from_env({"TAC_ASYNCIO": "1"}).asyncio is True
    assert TACConfig.from_env({"TAC_ASYNCIO": "off"}).asyncio is False
    assert TACConfig.from_env({}).asyncio is False
    assert TACConfig.from_env({"TAC_WORKER_THREADS": "3"}).worker_threads == 3
    with pytest.raises(ValueError, match="TAC_ASYNCIO"):
        TACConfig.from_env({"TAC_ASYNCIO": "maybe"})
    assert TAC(TACConfig(), asyncio=True).config.asyncio is True
