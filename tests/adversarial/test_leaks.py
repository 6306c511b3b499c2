"""An ended conversation frees everything it held: every registry is back to its
baseline after many calls, whatever ended them (reliability D3, review C7)."""

from __future__ import annotations

import gc
from typing import Any

import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.session import ConversationSession
from tac_actors.testing import open_harness


async def test_ended_calls_leave_nothing_behind(autojump_clock: Any) -> None:
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "bye":
            await session.end()
            return None
        return f"echo: {message}"

    async with open_harness(tac) as h:
        for n in range(30):
            async with h.call() as caller:
                await caller.say("hello")
                await caller.read_reply()
                if n % 3 == 0:
                    await caller.say("bye")
                    await caller.wait_closed()
                elif n % 3 == 1:
                    await caller.interrupt()
            await trio.testing.wait_all_tasks_blocked()
        runtime = h.runtime
        assert len(runtime.supervisor) == 0
        assert runtime._calls == {} and runtime._linked == {}
        gc.collect()
        live = [o for o in gc.get_objects() if isinstance(o, ConversationSession)]
        assert live == [], f"{len(live)} sessions still referenced"


async def test_history_is_bounded(autojump_clock: Any) -> None:
    """Reliability D7: a long call's history grew without bound."""
    import attrs

    config = TACConfig()
    policy = attrs.evolve(config.voice_policy, history_limit=20, history_chars=10_000)
    tac = TAC(attrs.evolve(config, voice_policy=policy))
    tac.on_message_ready(lambda message, session, memory: message)
    async with open_harness(tac) as h, h.call() as caller:
        for i in range(100):
            await caller.say(f"{i}: " + "x" * 1000)
            await caller.read_reply()
        await trio.testing.wait_all_tasks_blocked()
        history = h.cell(caller).session.history
        assert len(history) <= 20
        assert sum(len(e.text) for e in history) <= 10_000
        assert history[-1].text.startswith("99: ")
