"""The smallest agent: it answers every caller with what they said.

    tac-actors serve examples/echo.py:tac --port 8080
    tac-actors call ws://127.0.0.1:8080/ws --say "hello"
"""

from tac_actors import TAC, ConversationSession, TACMemoryResponse

tac = TAC()


@tac.on_message_ready
async def on_message(message: str, session: ConversationSession,
                     memory: TACMemoryResponse) -> str:
    return f"echo: {message}"
