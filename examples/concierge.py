"""A concierge that needs no LLM: rules pick a built-in tool, the tool does the work.

It greets callers it knows by name (profile traits), answers questions from the
knowledge base (Enterprise Knowledge search), recalls what memory knows ("what do you
remember about me?", with the last conversation's summary), and hands over to a human on
request (Studio handoff: on a call the last words are spoken, then ``end`` carries the
context).

Conversation Intelligence (``CONVERSATION_INTELLIGENCE_*``, set by ``tac-actors dev``):
summaries land in Memory by themselves, so the next conversation recalls them; this app
logs each conversation's summary and sentiment, and when a real-time sentiment operator
finds a live conversation negative, it offers a person in its next answer.

Texted "call me back", it calls the person with answering-machine detection: a voicemail
is hung up on (``on_amd`` + ``tac.end_call``), and a voicemail or a missed call
(``on_call_status``: busy, no answer...) is reported in the text conversation
(``tac.send_response``, from outside any turn).

    tac-actors dev examples/concierge.py:tac          # with the local Twilio emulator
    tac-actors call ws://127.0.0.1:8000/ws --from +15551230001 --say "what are your hours?"
    tac-actors text --say "hello" --say "thanks, great help" --close   # then see the log
    tac-actors text http://127.0.0.1:8000 --from +15551230001 --say "call me back"
"""

from __future__ import annotations

import logging
import re

from tac_actors import (
    TAC,
    AmdEvent,
    CallOptions,
    CallStatusEvent,
    Channel,
    ConversationSession,
    OperatorResultEvent,
    TACMemoryResponse,
)
from tac_actors.protocol.intelligence import summary_texts
from tac_actors.tools import ToolCall, ToolRegistry
from tac_actors.tools.builtins import (
    create_knowledge_tool,
    create_memory_tool,
    create_studio_handoff_tool,
)

tac = TAC()
tools = ToolRegistry([
    create_knowledge_tool(tac, top_k=1),
    create_memory_tool(tac),
    create_studio_handoff_tool(tac),
])

GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b", re.I)
HUMAN = re.compile(r"\b(human|person|agent|representative|someone real)\b", re.I)
RECALL = re.compile(r"\b(remember|last time|about me|my orders?)\b", re.I)
CALLBACK = re.compile(r"\b(call me|give me a call|phone me)\b", re.I)

log = logging.getLogger("concierge")
#: call-backs under way: CallSid -> the text conversation that asked (at most 1,000)
callbacks: dict[str, str] = {}
OFFER = " If you'd rather talk to a person, just say so."


@tac.on_intelligence_result
async def on_intelligence(event: OperatorResultEvent,
                          session: ConversationSession | None) -> None:
    """Summaries are already in Memory; keep an eye on how the customer feels."""
    for result in event.results:
        if result.output_format == "CLASSIFICATION":
            if session is not None and result.content == "negative":
                session.metadata["offer_person"] = True  # seen by the next turn
            log.info("conversation %s: sentiment %s", event.conversation_id, result.content)
        elif result.content:  # the summary operator's JSON: {"summary": ...}
            for summary in summary_texts(result.content):
                log.info("conversation %s: %s", event.conversation_id, summary)


async def run_tool(name: str, session: ConversationSession, **arguments: str) -> str:
    [result] = await tools.run_calls([ToolCall(id=name, name=name, arguments=arguments)],
                                     session)
    return result.content


@tac.on_message_ready
async def on_message(message: str, session: ConversationSession,
                     memory: TACMemoryResponse) -> str:
    answer = await answer_for(message, session, memory)
    if session.metadata.pop("offer_person", False) and not HUMAN.search(message):
        answer += OFFER
    return answer


async def answer_for(message: str, session: ConversationSession,
                     memory: TACMemoryResponse) -> str:
    name = session.profile.trait("Contact", "firstName") if session.profile else None
    hello = f"{name}, " if name and len(session.history) <= 1 else ""
    if GREETING.search(message):
        who = f" {name}" if name else ""
        return (f"Hello{who}! I can answer questions about our store, tell you what I "
                "remember about you, or connect you to a person. What would you like?")
    if HUMAN.search(message):
        await run_tool("handoff", session, reason=f"The customer asked: {message}")
        return f"{hello}I'm connecting you with a colleague now. One moment, please."
    if CALLBACK.search(message) and session.channel in (Channel.SMS, Channel.WHATSAPP):
        return hello + await call_back(session)
    if RECALL.search(message):
        if not memory.observations and not memory.summaries:
            return f"{hello}I don't have anything on file about you yet."
        facts = " ".join(o.content for o in memory.observations[:2])
        if memory.summaries:  # written by Conversation Intelligence after a conversation
            facts += f" Last time: {memory.summaries[0].content}"
        return f"{hello}here is what I remember: {facts.strip()}" if hello else \
            f"Here is what I remember: {facts.strip()}"
    result = await run_tool("search_knowledge", session, query=message)
    found = re.search(r'"content":\s*"((?:[^"\\]|\\.)*)"', result)
    if not found:
        return f"{hello}I'm not sure about that one. Would you like to talk to a person?"
    answer = found.group(1).encode().decode("unicode_escape")
    return hello + (answer[:1].lower() + answer[1:] if hello else answer)


async def call_back(session: ConversationSession) -> str:
    """Call the texter from the number they texted, hanging up on voicemail."""
    number = (session.caller or "").removeprefix("whatsapp:")
    if len(callbacks) >= 1000:
        return "I can't place a call right now. Please try again in a minute."
    ours = (session.called or "").removeprefix("whatsapp:") or None
    result = await tac.start_conversation(
        "voice", number, from_=ours, metadata={"callback_for": session.conversation_id},
        call_options=CallOptions(machine_detection="Enable", timeout=30))
    if result.call_sid:
        callbacks[result.call_sid] = session.conversation_id
    return "I'm calling you now."


async def tell(call_sid: str, text: str) -> None:
    """Say ``text`` in the text conversation that asked for the call."""
    conversation = callbacks.pop(call_sid, None)
    if conversation is None:
        return
    try:
        await tac.send_response(conversation, text)
    except LookupError:  # that conversation has ended meanwhile
        log.info("call %s: %s (conversation %s has ended)", call_sid, text, conversation)


@tac.on_amd
async def on_amd(event: AmdEvent) -> None:
    if event.is_machine:
        await tac.end_call(event.call_sid)
        await tell(event.call_sid, "I reached your voicemail, so I hung up. Text me when "
                                   "you are free and I'll call again.")


@tac.on_call_status
async def on_call_status(event: CallStatusEvent) -> None:
    if event.is_unreached:
        await tell(event.call_sid, f"I couldn't reach you ({event.call_status}). Text me "
                                   "when you are free and I'll call again.")
    elif event.is_final:
        callbacks.pop(event.call_sid, None)
