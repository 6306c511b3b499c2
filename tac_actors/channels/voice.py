"""The voice channel: one ConversationRelay socket bound to one conversation actor.

:meth:`VoiceChannel.handle` owns the socket for the life of the call. It reads frames
through the sans-IO :class:`~tac_actors.protocol.RelayConnection`, turns them into
mailbox messages, and runs the outbox writer; the actor lives in the supervisor's nursery.

How the socket ends:

* the caller hangs up (the peer closes, or the handler is cancelled): the actor is
  cancelled at once and its end hook runs;
* the conversation ends on our side (``end``, handoff, idle, crash limit): queued frames
  are flushed, then the socket is closed with 1000;
* shutdown: running turns finish, then the socket is closed with 1001;
* a fatal protocol violation: the close code of the module table in
  :mod:`tac_actors.protocol.connection`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import trio

from tac_actors._logsafe import excerpt
from tac_actors.actors import (
    ActorCell,
    Agent,
    AlreadyRunning,
    ChannelError,
    Digits,
    Fault,
    Interruption,
    Message,
    NotAccepting,
    PartialUtterance,
    Supervisor,
    Utterance,
)
from tac_actors.channels.transport import Transport, TransportClosed
from tac_actors.channels.voice_outbox import VoiceOutbox
from tac_actors.config import ChannelPolicy
from tac_actors.protocol import (
    Dtmf,
    ErrorFrame,
    InboundFrame,
    Info,
    Interrupt,
    Prompt,
    ProtocolError,
    RelayConnection,
    Setup,
    UnknownFrame,
)
from tac_actors.session import AuthorInfo, Channel, ConversationSession

__all__ = ["VoiceChannel"]

log = logging.getLogger("tac_actors.voice")

#: a socket that sends no ``setup`` within this many seconds is closed with 1008
SETUP_TIMEOUT = 10.0
#: bad frames logged per call before the rest are only counted
LOG_FIRST = 3
#: the reader pauses this long times the number of bad frames in a row (at most 50 ms)
BAD_FRAME_PAUSE = 0.005
#: how long queued frames may take to flush when the conversation ends on our side
FLUSH_TIMEOUT = 2.0
#: how long closing a socket may take
CLOSE_TIMEOUT = 1.0


def to_message(frame: InboundFrame) -> Message | None:
    """Translate an inbound frame into a mailbox message (``None``: nothing to deliver)."""
    match frame:
        case Prompt(last=True):
            return Utterance(frame.voice_prompt, frame.lang)
        case Prompt():
            return PartialUtterance(frame.voice_prompt, frame.lang)
        case Interrupt():
            return Interruption(frame.utterance_until_interrupt, frame.duration_until_interrupt_ms)
        case Dtmf():
            return Digits(frame.digit)
        case ErrorFrame():
            return ChannelError(frame.description)
    return None


def remote_party(setup: Setup) -> str | None:
    """The person on the call: the callee of an outbound call, else the caller."""
    if (setup.direction or "").lower().startswith("outbound"):
        return setup.to
    return setup.from_


def session_from_setup(setup: Setup) -> ConversationSession:
    """A new voice session for a ``setup`` frame. The conversation id is the CallSid
    until the Orchestrator conversation is linked. ``author_info`` is the person on the
    call (:func:`remote_party`), in both modes, with no participant id until the
    Orchestrator conversation is linked. ``caller`` is the person and ``called`` our
    number on outbound calls too (where Twilio's ``from`` is ours)."""
    person = remote_party(setup)
    outbound = (setup.direction or "").lower().startswith("outbound")
    return ConversationSession(
        conversation_id=setup.call_sid,
        channel=Channel.VOICE,
        started_at=datetime.now(UTC),
        call_sid=setup.call_sid,
        caller=setup.to if outbound else setup.from_,
        called=setup.from_ if outbound else setup.to,
        custom_parameters=setup.custom_parameters,
        author_info=AuthorInfo(person) if person else None,
        metadata={"setup": setup},
    )


class VoiceChannel:
    """Serves ConversationRelay sockets with conversation actors."""

    def __init__(self, supervisor: Supervisor, agent: Agent, *, policy: ChannelPolicy,
                 max_frame_bytes: int = 64 * 1024,
                 on_session: Callable[[ConversationSession, ActorCell], None] | None = None,
                 linker: Callable[[ConversationSession, ActorCell], Awaitable[None]] | None = None
                 ) -> None:
        self.supervisor = supervisor
        self.agent = agent
        self.policy = policy
        self.max_frame_bytes = max_frame_bytes
        self._on_session = on_session
        self._linker = linker

    async def handle(self, transport: Transport) -> None:
        """Serve one call on ``transport`` until it ends. Never raises for anything the
        peer does; cancelling it is a hang-up."""
        conn = RelayConnection(max_frame_bytes=self.max_frame_bytes)
        setup = await self._await_setup(transport, conn)
        if setup is None:
            return
        call = setup.call_sid
        session = session_from_setup(setup)
        outbox = VoiceOutbox(conn, call_sid=call)
        try:
            cell = self.supervisor.spawn(call, session=session, agent=self.agent, outbox=outbox,
                                         policy=self.policy)
        except AlreadyRunning:
            log.warning("call %s: a second socket for a live call: closing it (1008)",
                        excerpt(call))
            await transport.close(1008, "call already connected")
            return
        except NotAccepting:
            await transport.close(1001, "server shutting down")
            return
        if self._on_session is not None:
            self._on_session(session, cell)
        close_code = 1000
        code: int | None = None
        try:
            async with trio.open_nursery() as nursery:
                outbox.start(nursery, transport)
                if self._linker is not None:
                    # off the turn path: the first turn does not wait for the look-up
                    nursery.start_soon(self._linker, session, cell)
                with trio.CancelScope() as reading:
                    # the reader stops the moment the conversation starts closing, before
                    # its end hook runs: no frame is handed to a closed conversation
                    cell.call_when_closing(reading.cancel)
                    code = await self._read(transport, conn, cell, call)
                    if code is not None:
                        close_code = code
                if not cell.stopped.is_set():
                    cell.hang_up("protocol" if code else "hangup")
                await cell.wait_stopped()
                outbox.stop()
                with trio.move_on_after(FLUSH_TIMEOUT):
                    await outbox.wait_empty()
                nursery.cancel_scope.cancel()
        finally:
            if not cell.stopped.is_set():
                cell.hang_up("hangup")
            if cell.stop_reason == "shutdown" and close_code == 1000:
                close_code = 1001  # going away: Twilio may retry elsewhere
            conn.close()
            # shielded so a hang-up still closes properly; bounded because a transport
            # whose peer vanished may never complete a close handshake
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT):
                await transport.close(close_code)

    async def _await_setup(self, transport: Transport, conn: RelayConnection) -> Setup | None:
        with trio.move_on_after(SETUP_TIMEOUT):
            try:
                data = await transport.receive()
                if isinstance(data, bytes):
                    conn.receive_bytes(data)
                conn.receive_text(data)  # type: ignore[arg-type]
            except TransportClosed:
                return None
            except ProtocolError as exc:
                log.warning("voice socket closed (%s): %s", exc.close_code,
                            excerpt(exc.message, 200))
                await transport.close(exc.close_code or 1008, exc.message[:120])
                return None
            return conn.setup
        log.warning("voice socket sent no setup within %.0f s: closing it", SETUP_TIMEOUT)
        await transport.close(1008, "no setup frame")
        return None

    async def _read(self, transport: Transport, conn: RelayConnection, cell: ActorCell,
                    call: str) -> int | None:
        """Feed frames to the actor until the peer leaves or the conversation closes
        (None) or a fatal protocol error (its close code). Never waits on a hook: errors
        are posted to the actor."""
        bad = _BadInputLog(call)
        budget = _FrameBudget(self.policy.max_frames_per_second, self.policy.frame_burst)
        bad_in_a_row = 0
        try:
            while True:
                try:
                    data = await transport.receive()
                except TransportClosed:
                    return None
                wait = budget.spend(1 + len(data) // 1024)
                if wait:
                    await trio.sleep(wait)
                try:
                    if isinstance(data, bytes):
                        conn.receive_bytes(data)
                    frame = conn.receive_text(data)  # type: ignore[arg-type]
                except ProtocolError as exc:
                    bad.note(exc.message, exc.close_code)
                    _post(cell, Fault(exc, "protocol"))
                    if exc.close_code is not None:
                        return exc.close_code
                    # a peer sending garbage is slowed down before it is closed: its
                    # rejects cost the other calls less
                    bad_in_a_row += 1
                    await trio.sleep(min(BAD_FRAME_PAUSE * bad_in_a_row, 0.05))
                    continue
                bad_in_a_row = 0
                message = to_message(frame)
                if isinstance(message, PartialUtterance):
                    # advisory: never worth stopping the reader for (a slow
                    # on_partial_prompt must not keep an interrupt unread)
                    _post(cell, message)
                elif message is not None:
                    # an interruption takes effect inside send, before it can wait
                    await cell.send(message)
                elif isinstance(frame, Info):
                    log.debug("call %s: info %s=%s", call, excerpt(frame.name),
                              excerpt(repr(frame.value)))
                elif isinstance(frame, UnknownFrame):
                    bad.note(f"unknown frame type {excerpt(frame.type)} tolerated", None,
                             level=logging.INFO)
                # a call waiting for its next frame holds none of this one
                del data, frame, message
        except trio.ClosedResourceError:
            return None  # the conversation closed under us: the call is over
        finally:
            bad.summarise()


class _FrameBudget:
    """A token bucket for one socket's frames: ``rate`` per second on average, bursts
    of ``burst``. :meth:`spend` waits while the bucket is empty (the socket is not read
    meanwhile, so TCP pushes back on the peer)."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float | None, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = trio.current_time()

    def spend(self, weight: int) -> float:
        """Take ``weight`` tokens; returns how long to wait before reading on (0: none).
        Synchronous, so the common case costs no coroutine."""
        rate = self.rate
        if rate is None:
            return 0.0
        now = trio.current_time()
        tokens = self.tokens + (now - self.last) * rate
        if tokens > self.burst:
            tokens = self.burst
        self.tokens = tokens = tokens - weight
        self.last = now
        return -tokens / rate if tokens < 0 else 0.0


def _post(cell: ActorCell, message: Message) -> None:
    """Post a message the reader must not wait for; a full urgent lane drops it."""
    try:
        cell.send_nowait(message)
    except (trio.WouldBlock, trio.ClosedResourceError):
        pass


class _BadInputLog:
    """Logs a call's bad input once per kind of problem, at most ``LOG_FIRST`` lines per
    call, each a bounded excerpt; the rest is counted and summarised when the call ends."""

    def __init__(self, call: str) -> None:
        self.call = call
        self.logged = 0
        self.suppressed = 0

    def note(self, what: str, close_code: int | None, *, level: int = logging.WARNING
             ) -> None:
        if self.logged >= LOG_FIRST:
            self.suppressed += 1
            return
        self.logged += 1
        log.log(level, "call %s: %s%s", excerpt(self.call), excerpt(what, 200),
                f" (closing {close_code})" if close_code else "")

    def summarise(self) -> None:
        if self.suppressed:
            log.warning("call %s: %d more bad frames not logged", excerpt(self.call),
                        self.suppressed)
