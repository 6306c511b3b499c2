"""An LLM agent behind the engine: a simulated call streams the fake model's tokens, and
a barge-in closes the model's stream mid-answer."""

from __future__ import annotations

import trio

from tac_actors import TAC, TACConfig
from tac_actors.protocol import Text
from tac_actors.testing import SimulatedCaller, open_harness
from tac_actors.testing.fake_llm import Park, open_fake_openai, text

from .conftest import OPENAI


async def heard_until(caller: SimulatedCaller, wanted: str) -> str:
    heard = ""
    while heard != wanted:
        frame = await caller.next_frame()
        if isinstance(frame, Text):
            heard += frame.token
    return heard


async def test_a_call_hears_the_stream_and_can_barge_in() -> None:
    park = Park(after=2)
    script = [text("Hello", " there", ", let me explain at length.", park=park),
              text("Sure.")]
    tac = TAC(TACConfig())
    with trio.fail_after(5):
        async with open_fake_openai(script) as fake, OPENAI.agent(fake) as agent:
            tac.on_message_ready(agent)
            async with open_harness(tac) as harness, harness.call() as caller:
                await caller.say("hi")
                assert await heard_until(caller, "Hello there") == "Hello there"
                await park.reached.wait()
                await caller.interrupt("Hello there")
                await park.abandoned.wait()
                assert (await caller.read_reply()).text == ""  # the barge-in's ack
                await caller.say("go on")
                assert (await caller.read_reply()).text == "Sure."
    assert fake.requests[1]["messages"][1:] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "go on"},
    ]
