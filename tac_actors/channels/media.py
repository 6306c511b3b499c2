"""The media-stream channel: a Twilio Media Streams socket bridged to a realtime
(speech-to-speech) model, one supervised conversation per call.

:meth:`MediaStreamChannel.handle` owns Twilio's socket for the life of the call. After
``start`` it spawns the call's conversation through the
:class:`~tac_actors.actors.Supervisor` (so ``on_conversation_ended`` runs once, errors
reach ``on_error``, shutdown drains it), opens the model's connection (the connector
bounds the attempt) and runs the :class:`~tac_actors.channels.media_bridge.MediaBridge`
until one side stops. The conversation's actor handles what the relay path's does:
interruptions (``on_interrupt``, after the bridge cut the audio), key presses
(``on_dtmf``; its reply is spoken by the model), faults, handoff and the end.

How the call ends:

* the caller hangs up (``stop``, the socket closes, the handler is cancelled): the
  conversation is cancelled at once and its end hook runs;
* the conversation ends on our side (``session.end``, handoff, shutdown): the model's
  connection is closed and the stream with it (1000; 1001 on shutdown), and Twilio goes
  on with ``<Connect action>``, whose route finds the handoff data recorded here;
* the model cannot be reached or goes away: ``on_error`` hears it, the conversation ends
  and the stream is closed with 1011.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import attrs
import trio

from tac_actors._logsafe import excerpt
from tac_actors.actors import (
    ActorCell,
    Agent,
    AlreadyRunning,
    NotAccepting,
    Supervisor,
)
from tac_actors.channels.media_bridge import Ending, MediaBridge
from tac_actors.channels.media_outbox import MediaOutbox
from tac_actors.channels.transport import Transport, TransportClosed
from tac_actors.config import ChannelPolicy
from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.media import MediaConnected, MediaStart, parse_media_event
from tac_actors.realtime.model import ModelClosed
from tac_actors.realtime.options import RealtimeOptions
from tac_actors.session import AuthorInfo, Channel, ConversationSession

__all__ = [
    "MEDIA_ACTION_PATH",
    "MEDIA_TWIML_PATH",
    "MEDIA_WEBSOCKET_PATH",
    "MediaOutcome",
    "MediaStatistics",
    "MediaStreamChannel",
    "session_from_start",
]

log = logging.getLogger("tac_actors.media")

MEDIA_TWIML_PATH = "/media-twiml"
MEDIA_WEBSOCKET_PATH = "/media-stream"
MEDIA_ACTION_PATH = "/media-stream-callback"

#: a socket that sends no ``start`` within this many seconds is closed with 1008
START_TIMEOUT = 10.0
#: messages before ``start`` that are tolerated (``connected`` is one)
MAX_BEFORE_START = 8
#: how long the memory look-up before the model starts may take
MEMORY_TIMEOUT = 3.0
#: how long closing Twilio's socket may take
CLOSE_TIMEOUT = 1.0
#: calls remembered between the TwiML answer and the stream, and between the stream's
#: end and the action callback (oldest forgotten first)
MAX_REMEMBERED = 10_000


@attrs.frozen
class MediaStatistics:
    """Counters since the channel was made: streams ``started`` (a conversation was
    spawned), ``refused`` (no start, a bad format, no model configured, a duplicate
    call), ``model_failures`` (the model could not be reached or went away),
    ``barge_ins`` (audio cut because the caller spoke) and ``handoffs``."""

    started: int
    refused: int
    model_failures: int
    barge_ins: int
    handoffs: int


@attrs.frozen
class MediaOutcome:
    """How a stream ended, for the ``<Connect action>`` callback that follows."""

    reason: str
    handoff_data: str | None = None


def session_from_start(start: MediaStart) -> ConversationSession:
    """A new voice session for a stream's ``start``. ``From``/``To`` come from the
    ``<Parameter>`` values our TwiML adds; on an outbound call (``Direction``
    ``outbound-api``) ``From`` is ours, so ``caller`` is ``To``."""
    params = start.custom_parameters
    outbound = params.get("Direction", "").startswith("outbound")
    caller, called = params.get("From") or None, params.get("To") or None
    if outbound:
        caller, called = called, caller
    return ConversationSession(
        conversation_id=start.call_sid, channel=Channel.VOICE,
        started_at=datetime.now(UTC), call_sid=start.call_sid,
        caller=caller, called=called,
        author_info=AuthorInfo(caller) if caller else None,
        custom_parameters=params, metadata={"media_stream": start})


class _Bounded(OrderedDict[str, object]):
    def put(self, key: str, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > MAX_REMEMBERED:
            self.popitem(last=False)


class MediaStreamChannel:
    """Serves Media Streams sockets with conversation actors bridged to realtime models.

    ``options()`` gives the app's :class:`RealtimeOptions` (``None``: not configured;
    streams are then refused with 1011); :meth:`expect` overrides them for one call."""

    def __init__(self, supervisor: Supervisor, agent: Agent, *, policy: ChannelPolicy,
                 options: Callable[[], RealtimeOptions | None],
                 on_session: Callable[[ConversationSession, ActorCell], None] | None = None,
                 linker: Callable[[ConversationSession, ActorCell], Awaitable[None]] | None
                 = None,
                 memory: Callable[[ConversationSession], Awaitable[str]] | None = None
                 ) -> None:
        self.supervisor = supervisor
        self.agent = agent
        # no idle timeout: the conversation's mailbox is quiet while the caller and the
        # model talk (their audio never passes through it); a silent call is the model's
        # (voice activity) or the app's business, not the actor's
        self.policy = attrs.evolve(policy, idle_timeout=None)
        self._options = options
        self._on_session = on_session
        self._linker = linker
        self._memory = memory
        self._expected = _Bounded()
        self._outcomes = _Bounded()
        self._started = self._refused = self._model_failures = 0
        self._barge_ins = self._handoffs = 0

    def statistics(self) -> MediaStatistics:
        return MediaStatistics(self._started, self._refused, self._model_failures,
                               self._barge_ins, self._handoffs)

    def expect(self, call_sid: str, options: RealtimeOptions) -> None:
        """Use ``options`` for the stream of call ``call_sid`` (set when answering it)."""
        self._expected.put(call_sid, options)

    def take_outcome(self, call_sid: str) -> MediaOutcome | None:
        """How the stream of ``call_sid`` ended (once; ``None`` if unknown)."""
        outcome = self._outcomes.pop(call_sid, None)
        return outcome if isinstance(outcome, MediaOutcome) else None

    async def handle(self, transport: Transport) -> None:
        """Serve one call on ``transport`` until it ends. Never raises for anything the
        peer or the model does; cancelling it is a hang-up."""
        start = await self._await_start(transport)
        if start is None:
            self._refused += 1
            return
        call = start.call_sid
        if start.encoding != "audio/x-mulaw" or start.sample_rate != 8000:
            log.warning("call %s: media stream in %s at %d Hz; only 8 kHz μ-law is "
                        "bridged: closing it (1003)", excerpt(call), excerpt(start.encoding),
                        start.sample_rate)
            self._refused += 1
            await transport.close(1003, "unsupported media format")
            return
        expected = self._expected.pop(call, None)
        options = expected if isinstance(expected, RealtimeOptions) else self._options()
        if options is None:
            log.warning("call %s: a media stream, but no realtime model is configured "
                        "(TAC(realtime=...)): closing it (1011)", excerpt(call))
            self._refused += 1
            await transport.close(1011, "no realtime model configured")
            return
        session = session_from_start(start)
        outbox = MediaOutbox()
        try:
            cell = self.supervisor.spawn(call, session=session, agent=self.agent,
                                         outbox=outbox, policy=self.policy)
        except AlreadyRunning:
            self._refused += 1
            log.warning("call %s: a second stream for a live call: closing it (1008)",
                        excerpt(call))
            await transport.close(1008, "call already connected")
            return
        except NotAccepting:
            self._refused += 1
            await transport.close(1001, "server shutting down")
            return
        self._started += 1
        if self._on_session is not None:
            self._on_session(session, cell)
        ending = Ending("hangup")
        try:
            with trio.CancelScope() as live:
                # the bridge stops the moment the conversation starts closing (handoff,
                # session.end, shutdown), before its end hook runs
                cell.call_when_closing(live.cancel)
                async with trio.open_nursery() as nursery:
                    if self._linker is not None:
                        # the Orchestrator look-up runs beside the call, as on the relay path
                        nursery.start_soon(self._linker, session, cell)
                    ending = await self._serve(transport, start, session, cell, outbox,
                                               options)
                    nursery.cancel_scope.cancel()
            if live.cancelled_caught:
                ending = Ending(cell.stop_reason or "ended")
            elif not cell.stopped.is_set():
                await self._end(cell, ending)
            await cell.wait_stopped()
        finally:
            if not cell.stopped.is_set():
                cell.hang_up("hangup")
            code = ending.close_code
            if cell.stop_reason == "shutdown" and code == 1000:
                code = 1001
            self._outcomes.put(call, MediaOutcome(ending.reason, outbox.handoff_data))
            if ending.reason in ("model_unavailable", "model_closed", "model_error"):
                self._model_failures += 1
            if outbox.handoff_data is not None:
                self._handoffs += 1
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT):
                await transport.close(code)

    async def _end(self, cell: ActorCell, ending: Ending) -> None:
        """The bridge stopped on its own: a hang-up ends the conversation at once; a
        failure is reported to ``on_error`` first (the conversation is over, so no turn
        races the hook; the cell bounds it)."""
        if ending.error is not None:
            log.warning("call %s: %s (%s): ending the call", excerpt(cell.key),
                        ending.reason,
                        excerpt(str(ending.error) or type(ending.error).__name__, 200))
            cell.stats.errors += 1
            await cell.report(ending.error, "channel")
        cell.hang_up(ending.reason)

    async def _serve(self, transport: Transport, start: MediaStart,
                     session: ConversationSession, cell: ActorCell, outbox: MediaOutbox,
                     options: RealtimeOptions) -> Ending:
        try:
            async with AsyncExitStack() as stack:
                try:
                    # the connector bounds its own connection attempt: a deadline around
                    # entering it would not nest with the nursery a WebSocket client
                    # keeps open inside (trio-websocket's does)
                    model = await stack.enter_async_context(options.connector()(session))
                except Exception as exc:
                    return Ending("model_unavailable", 1011, exc)
                outbox.model = model
                try:
                    await model.configure(
                        instructions=await self._instructions(session, options),
                        voice=options.voice,
                        tools=options.tools.definitions("realtime"),
                        transcribe=options.transcribe, extra=options.session_extra)
                    if options.greeting:
                        await model.create_response(options.greeting)
                    bridge = MediaBridge(transport, model, start, session, cell, options)
                    try:
                        return await bridge.run()
                    finally:
                        self._barge_ins += bridge.barge_ins
                finally:
                    outbox.model = None
        except Exception as exc:
            if isinstance(exc, ModelClosed):
                return Ending("model_closed", 1011, exc)
            log.exception("call %s: media bridge failed", excerpt(cell.key))
            return Ending("error", 1011, exc)

    async def _instructions(self, session: ConversationSession, options: RealtimeOptions
                            ) -> str | None:
        """The model's instructions, with what memory knows of the caller appended
        (Orchestrator mode; bounded by ``MEMORY_TIMEOUT``, skipped on failure)."""
        if self._memory is None:
            return options.instructions
        prompt = ""
        with trio.move_on_after(MEMORY_TIMEOUT):
            try:
                prompt = await self._memory(session)
            except Exception:
                log.exception("call %s: memory for the realtime model failed; going on "
                              "without it", excerpt(session.call_sid))
        parts = [part for part in (options.instructions, prompt) if part]
        return "\n\n".join(parts) or None

    async def _await_start(self, transport: Transport) -> MediaStart | None:
        with trio.move_on_after(START_TIMEOUT):
            for _ in range(MAX_BEFORE_START):
                try:
                    event = parse_media_event(await transport.receive())
                except TransportClosed:
                    return None
                except ProtocolError as exc:
                    log.warning("media stream closed before start: %s",
                                excerpt(exc.message, 200))
                    await transport.close(exc.close_code or 1008, exc.message[:120])
                    return None
                if isinstance(event, MediaStart):
                    return event
                if not isinstance(event, MediaConnected):
                    log.info("media stream: %s before start ignored", type(event).__name__)
            log.warning("media stream sent no start within %d messages: closing it",
                        MAX_BEFORE_START)
            await transport.close(1008, "no start message")
            return None
        log.warning("media stream sent no start within %.0f s: closing it", START_TIMEOUT)
        await transport.close(1008, "no start message")
        return None
