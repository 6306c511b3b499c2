"""The bridge of one media-stream call: Twilio's socket on one side, the realtime model
on the other, both owned by one task group.

Two readers and a writer run side by side; whichever stops first ends the bridge (the
others are cancelled) and says why (:class:`Ending`):

* **from Twilio**: caller audio goes to the model as it comes (back-pressure: a slow
  model slows this reader, TCP pushes back on Twilio); ``mark`` echoes update the
  :class:`~tac_actors.realtime.playback.Playback`; key presses go to the conversation's
  mailbox (``on_dtmf``); ``stop`` or a closed socket is a hang-up.
* **from the model**: its audio is queued for Twilio, each piece followed by a mark; its
  transcripts and the caller's go into ``session.history``; function calls are collected
  per response and run through the :class:`~tac_actors.tools.ToolRegistry` when the
  response is done (results, then one ``response.create``).
* **to Twilio**: one writer sends the queue in order. The model's reader never waits on
  Twilio's socket unless ``MAX_QUEUED_BYTES`` are waiting (back-pressure on the model),
  so a slow caller network never delays a barge-in.

**Barge-in** is a cancellation: when the model hears the caller start speaking while
its audio is still playing, the bridge sends Twilio ``clear`` (the caller stops hearing
it at once), cancels the active response, truncates the model's item at what Twilio
reported played (so the model knows what was heard), records the heard part in the
history and hands an :class:`~tac_actors.actors.Interruption` to the conversation (its
``on_interrupt`` hook runs there). Audio of the cut item still queued, or still arriving,
is dropped.

**Handoff**: a tool (or hook) that calls ``session.request_handoff`` lets the model say
its last words; once Twilio has played them (or ``HANDOFF_FLUSH`` seconds), the
conversation is nudged and its actor hands off through the outbox, which ends the call.

Nothing here waits on an app hook: errors are posted to the actor as faults.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import attrs
import trio

from tac_actors._logsafe import excerpt
from tac_actors.actors import ActorCell, Digits, Fault, Interruption, Message, SessionUpdate
from tac_actors.channels.transport import Transport, TransportClosed
from tac_actors.protocol.errors import ProtocolError
from tac_actors.protocol.media import (
    MediaDtmf,
    MediaFrame,
    MediaMark,
    MediaStart,
    MediaStop,
    encode_clear,
    encode_mark,
    encode_media,
    parse_media_event,
)
from tac_actors.protocol.realtime import (
    AudioDelta,
    FunctionCall,
    InputTranscript,
    RealtimeError,
    RealtimeEvent,
    ResponseCreated,
    ResponseDone,
    SpeechStarted,
    TranscriptDelta,
    TranscriptDone,
)
from tac_actors.realtime.model import ModelClosed, RealtimeModel
from tac_actors.realtime.options import RealtimeOptions
from tac_actors.realtime.playback import Cut, Playback
from tac_actors.session import ConversationSession, HistoryEntry
from tac_actors.tools.results import ToolCall

__all__ = ["HANDOFF_MARK", "Ending", "MediaBridge"]

log = logging.getLogger("tac_actors.media")

#: the mark sent after the last words before a handoff
HANDOFF_MARK = "handoff"
#: how long the last words before a handoff may take to play
HANDOFF_FLUSH = 10.0
#: bad messages logged per call (each side) before the rest are only counted
LOG_FIRST = 3
#: function calls collected for one response at most (more are answered with an error)
MAX_CALLS_PER_RESPONSE = 16
#: encoded messages waiting for Twilio's socket, at most (then the model reader waits)
MAX_QUEUED_BYTES = 256 * 1024
#: model error codes that are expected in a race (a cancel after the response ended)
BENIGN_ERRORS = frozenset({"response_cancel_not_active"})


@attrs.frozen
class Ending:
    """Why a bridge stopped: ``reason`` ("hangup", "model_closed", "protocol", ...), the
    close code for Twilio's socket, and the error to report (``None``: nothing wrong)."""

    reason: str
    close_code: int = 1000
    error: BaseException | None = None


class ModelError(Exception):
    """The realtime model reported an error event."""


class MediaBridge:
    """See the module docstring. One per call; :meth:`run` once."""

    def __init__(self, transport: Transport, model: RealtimeModel, start: MediaStart,
                 session: ConversationSession, cell: ActorCell, options: RealtimeOptions
                 ) -> None:
        self.transport = transport
        self.model = model
        self.stream_sid = start.stream_sid
        self.session = session
        self.cell = cell
        self.options = options
        self.playback = Playback()
        self.active_response: str | None = None
        self.barge_ins = 0
        self._cancelled: deque[str] = deque(maxlen=32)
        self._calls: dict[str, list[FunctionCall]] = {}
        self._recorded: tuple[str, HistoryEntry] | None = None
        self._handoff_armed = False
        self._nudged = False
        self._ending: Ending | None = None
        self._nursery: trio.Nursery | None = None
        self._bad = _BadInputLog(session.call_sid or "")
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._queue_changed = trio.Event()

    async def run(self) -> Ending:
        """Bridge until one side stops; returns why. Cancelling it ends both readers and
        every running tool call."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._until_first, self._from_twilio)
            nursery.start_soon(self._until_first, self._from_model)
            nursery.start_soon(self._until_first, self._to_twilio)
        self._bad.summarise()
        return self._ending or Ending("hangup")

    async def _until_first(self, reader: Callable[[], Awaitable[Ending]]) -> None:
        ending = await reader()
        if self._ending is None:
            self._ending = ending
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()

    # -- Twilio -> model ------------------------------------------------------------------

    async def _from_twilio(self) -> Ending:
        while True:
            try:
                data = await self.transport.receive()
            except TransportClosed:
                return Ending("hangup")
            try:
                event = parse_media_event(data)
            except ProtocolError as exc:
                self._bad.note("Twilio", exc.message)
                self._post(Fault(exc, "protocol"))
                if exc.close_code is not None:
                    return Ending("protocol", exc.close_code)
                continue
            match event:
                case MediaFrame():
                    if event.track != "inbound":
                        await trio.lowlevel.checkpoint()
                        continue
                    try:
                        await self.model.send_audio(event.payload)
                    except ModelClosed as exc:
                        return Ending("model_closed", 1011, exc)
                case MediaMark():
                    self._on_mark(event.name)
                    await trio.lowlevel.checkpoint()
                case MediaDtmf():
                    try:
                        await self.cell.send(Digits(event.digit))
                    except trio.ClosedResourceError:
                        return Ending("ended")
                case MediaStop():
                    return Ending("hangup")
                case _:
                    await trio.lowlevel.checkpoint()

    def _on_mark(self, name: str) -> None:
        if name == HANDOFF_MARK:
            self._nudge()
        elif not self.playback.played(name):
            log.debug("call %s: mark %s not pending (cleared)", self.session.call_sid,
                      excerpt(name, 40))

    # -- model -> Twilio ------------------------------------------------------------------

    async def _from_model(self) -> Ending:
        try:
            while True:
                try:
                    event = await self.model.receive()
                except ProtocolError as exc:
                    self._bad.note("model", exc.message)
                    self._post(Fault(exc, "channel"))
                    if exc.close_code is not None:
                        return Ending("model_error", 1011, exc)
                    continue
                await self._on_event(event)
        except ModelClosed as exc:
            return Ending("model_closed", 1011, exc)
        except TransportClosed:
            return Ending("hangup")

    async def _on_event(self, event: RealtimeEvent) -> None:
        match event:
            case AudioDelta():
                await self._play(event)
            case TranscriptDelta():
                if not self.playback.is_cut(event.item_id):
                    self.playback.transcript(event.item_id, event.delta)
                await trio.lowlevel.checkpoint()
            case TranscriptDone():
                if event.transcript and not self.playback.is_cut(event.item_id):
                    self._recorded = (event.item_id, self._record("assistant", event.transcript))
                await trio.lowlevel.checkpoint()
            case InputTranscript():
                if event.transcript.strip():
                    self._record("user", event.transcript.strip())
                await trio.lowlevel.checkpoint()
            case SpeechStarted():
                await self._barge_in()
            case ResponseCreated():
                self.active_response = event.response_id
                await trio.lowlevel.checkpoint()
            case ResponseDone():
                await self._response_done(event)
            case FunctionCall():
                self._collect(event)
                await trio.lowlevel.checkpoint()
            case RealtimeError():
                if event.code in BENIGN_ERRORS:
                    log.debug("call %s: model: %s", self.session.call_sid, event.code)
                else:
                    self._bad.note("model", f"error {event.code}: {event.message}")
                    self._post(Fault(ModelError(f"{event.code}: {event.message}"), "channel"))
                await trio.lowlevel.checkpoint()
            case _:
                await trio.lowlevel.checkpoint()

    async def _play(self, delta: AudioDelta) -> None:
        if (self.playback.is_cut(delta.item_id) or delta.response_id in self._cancelled
                or not delta.audio):
            await trio.lowlevel.checkpoint()
            return
        while self._queued_bytes > MAX_QUEUED_BYTES:
            await self._wait_queue_changed()
        self._enqueue(encode_media(self.stream_sid, delta.audio))
        mark = self.playback.sent(delta.item_id, len(delta.audio))
        if mark is not None:
            self._enqueue(encode_mark(self.stream_sid, mark))
        await trio.lowlevel.checkpoint()

    async def _barge_in(self) -> None:
        response = self.active_response
        cut = self.playback.cut()
        if cut is not None:
            # the caller stops hearing the model first (what was queued is never sent);
            # the model is told after
            self._queue.clear()
            self._queued_bytes = 0
            self._enqueue(encode_clear(self.stream_sid))
        if response is not None:
            self._cancelled.append(response)
            self.active_response = None
            await self.model.cancel_response()
        if cut is None:
            await trio.lowlevel.checkpoint()
            return
        self.barge_ins += 1
        await self.model.truncate(cut.item_id, cut.heard_ms)
        self._record_cut(cut)
        try:
            await self.cell.send(Interruption(cut.heard_text, cut.heard_ms))
        except trio.ClosedResourceError:
            pass

    def _record_cut(self, cut: Cut) -> None:
        history = self.session.history
        if self._recorded is not None and self._recorded[0] == cut.item_id:
            entry = self._recorded[1]
            for index in range(len(history) - 1, -1, -1):
                if history[index] is entry:
                    history[index] = attrs.evolve(entry, text=cut.heard_text,
                                                  interrupted=True)
                    return
        self.session.record("assistant", cut.heard_text, _now(), interrupted=True)
        self._trim()

    def _record(self, role: str, text: str) -> HistoryEntry:
        self.session.record(role, text, _now())  # type: ignore[arg-type]
        entry = self.session.history[-1]
        self._trim()
        return entry

    def _trim(self) -> None:
        """Keep the history within the channel policy's bounds, as the actor does."""
        policy = self.cell.policy
        if len(self.session.history) > policy.history_limit:
            self.session.trim_history(entries=policy.history_limit * 3 // 4,
                                      chars=policy.history_chars)
        else:
            self.session.trim_history(entries=policy.history_limit,
                                      chars=policy.history_chars)

    # -- to Twilio ------------------------------------------------------------------------

    def _enqueue(self, text: str) -> None:
        self._queue.append(text)
        self._queued_bytes += len(text)
        self._notify()

    def _notify(self) -> None:
        self._queue_changed.set()
        self._queue_changed = trio.Event()

    async def _wait_queue_changed(self) -> None:
        await self._queue_changed.wait()

    async def _to_twilio(self) -> Ending:
        """Send the queue in order until Twilio's socket closes."""
        try:
            while True:
                if not self._queue:
                    await self._wait_queue_changed()
                    continue
                text = self._queue.popleft()
                self._queued_bytes -= len(text)
                self._notify()  # room for the model reader
                await self.transport.send(text)
        except TransportClosed:
            return Ending("hangup")

    # -- tools and handoff ----------------------------------------------------------------

    def _collect(self, call: FunctionCall) -> None:
        if call.status != "completed":
            log.info("call %s: tool call %s cut short (%s): not run", self.session.call_sid,
                     excerpt(call.name, 40), excerpt(call.status, 20))
            return
        calls = self._calls.setdefault(call.response_id, [])
        if len(self._calls) > MAX_CALLS_PER_RESPONSE:  # responses never done: drop oldest
            self._calls.pop(next(iter(self._calls)))
        calls.append(call)

    async def _response_done(self, done: ResponseDone) -> None:
        if self.active_response == done.response_id:
            self.active_response = None
        calls = self._calls.pop(done.response_id, [])
        if calls and done.status == "completed":
            assert self._nursery is not None
            self._nursery.start_soon(self._run_tools, calls[:MAX_CALLS_PER_RESPONSE])
        elif self._handoff_armed:
            if self.playback.unplayed:
                self._enqueue(encode_mark(self.stream_sid, HANDOFF_MARK))
                assert self._nursery is not None
                self._nursery.start_soon(self._nudge_later)
            else:
                self._nudge()
        await trio.lowlevel.checkpoint()

    async def _run_tools(self, calls: list[FunctionCall]) -> None:
        try:
            results = await self.options.tools.run_calls(
                [ToolCall(call.call_id, call.name, call.arguments) for call in calls],
                self.session, default_timeout=self.options.tool_timeout)
            for call, result in zip(calls, results, strict=True):
                await self.model.send_tool_output(call.call_id, result.content)
            if self.session.pending_handoff_data is not None:
                self._handoff_armed = True
            await self.model.create_response()
        except ModelClosed:
            pass  # the model reader ends the call
        except Exception as exc:  # a bug in a tool's plumbing: this round fails alone
            log.exception("call %s: tool calls failed", self.session.call_sid)
            self._post(Fault(exc, "turn"))

    async def _nudge_later(self) -> None:
        await trio.sleep(HANDOFF_FLUSH)
        self._nudge()

    def _nudge(self) -> None:
        """Let the actor see the pending handoff (it hands off after any message)."""
        if self._nudged or self.session.pending_handoff_data is None:
            return
        self._nudged = True
        self._post(SessionUpdate({}))

    def _post(self, message: Message) -> None:
        try:
            self.cell.send_nowait(message)
        except (trio.WouldBlock, trio.ClosedResourceError):
            pass


class _BadInputLog:
    """At most ``LOG_FIRST`` lines of bad input per call, each a bounded excerpt."""

    def __init__(self, call: str) -> None:
        self.call = call
        self.logged = 0
        self.suppressed = 0

    def note(self, side: str, what: str) -> None:
        if self.logged >= LOG_FIRST:
            self.suppressed += 1
            return
        self.logged += 1
        log.warning("call %s: %s: %s", excerpt(self.call), side, excerpt(what, 200))

    def summarise(self) -> None:
        if self.suppressed:
            log.warning("call %s: %d more bad messages not logged", excerpt(self.call),
                        self.suppressed)


def _now() -> datetime:
    return datetime.now(UTC)
