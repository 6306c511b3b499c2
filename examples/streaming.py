"""Streams a long answer token by token, so a caller can barge in mid-sentence.

    tac-actors serve examples/streaming.py:tac --port 8080
"""

from collections.abc import AsyncIterator

import trio

from tac_actors import TAC, ConversationSession, Interruption, TACMemoryResponse

tac = TAC()

STORY = (
    "Once upon a time, a small actor lived in a big supervisor. Every time a caller spoke, "
    "it listened, thought for a moment, and answered one word at a time, so that anyone "
    "could stop it mid-sentence and be heard at once."
)


@tac.on_message_ready
async def on_message(message: str, session: ConversationSession,
                     memory: TACMemoryResponse) -> AsyncIterator[str]:
    async def tokens() -> AsyncIterator[str]:
        yield f"You said {message}. "
        for word in STORY.split(" "):
            await trio.sleep(0.05)  # a model producing about 20 tokens a second
            yield word + " "

    return tokens()


@tac.on_interrupt
async def on_interrupt(session: ConversationSession, interruption: Interruption) -> None:
    print(f"[{session.call_sid}] caller barged in after hearing: {interruption.heard!r}")
