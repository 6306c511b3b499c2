"""The outbox of one text conversation: replies go out as Orchestrator ``SEND_MESSAGE``
actions, one message per reply.

Promises:

* a reply's tokens are joined and sent as **one** message when the reply closes
  (``last=True``); an empty or blank reply sends nothing;
* **at most once per inbound text**: while a turn answers inbound texts (see
  :meth:`MessagingOutbox.begin`), its n-th message carries the idempotency key
  ``tac:{conversation}:{first inbound id}:{n}``, so the same turn replayed (after a crash,
  a retry, a gap fill by reconcile) sends nothing the Orchestrator already has. Other
  messages (a goodbye) get a fresh key;
* **in order, retried within a budget**: messages leave one at a time in the order they
  were made. A failed send is retried with backoff (0.25 s doubling to 8 s, besides the
  service client's own quick retries) for ``send_budget`` seconds; then it is reported to
  ``on_error`` with phase ``"delivery"`` and kept: the next message, or reconcile
  (``kept`` asks for it at once; :meth:`MessagingOutbox.flush`), tries it again first. At most
  ``max_undelivered`` are kept; the oldest beyond that is dropped and its texts are
  owed again (reconcile answers them anew). The outbox never raises a service error into
  the actor;
* a turn that fails or times out mid-stream sends only the fallback or timeout words,
  never the partial reply glued to them (:meth:`MessagingOutbox.discard_open`);
* before the last message of a conversation being handed off, ``before_last`` closes
  the door (see the channel);
* a turn's reply that was retracted before its last token (preempted, cancelled) is
  never sent; cancelling a send in flight (conversation closed) drops it, and its texts
  stay owed.

Voice-only frames (play, digits, language) raise :class:`NotImplementedError`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from tac_actors.protocol.relay import End, OutboundFrame, Text
from tac_actors.services.errors import ServiceError
from tac_actors.services.orchestrator import ActionRef

if TYPE_CHECKING:
    from tac_actors.actors import ActorCell
    from tac_actors.config import TACConfig
    from tac_actors.services import TwilioServices

__all__ = ["MessagingOutbox", "Route", "studio_handoff"]

log = logging.getLogger("tac_actors.messaging")

#: starts a digital handoff with the handoff data (a Studio execution)
Handoff = Callable[[str], Awaitable[None]]
#: the texts a sent (or deliberately empty) reply answered
Answered = Callable[[Sequence[str]], None]

FIRST_BACKOFF = 0.25
LAST_BACKOFF = 8.0


@attrs.frozen(kw_only=True)
class Route:
    """Where a conversation's replies go: the upper-case Orchestrator ``channel``, our
    side (``from_*``) and the person (``to_*``), each by participant id when known, else
    by address; ``channel_id`` is passed as ``channelSettings.channelId`` (Chat)."""

    conversation_id: str
    channel: str
    from_address: str
    to_address: str
    from_participant_id: str | None = None
    to_participant_id: str | None = None
    channel_id: str | None = None

    def sender(self) -> ActionRef:
        return ActionRef(channel=self.channel, participant_id=self.from_participant_id,
                         address=None if self.from_participant_id else self.from_address)

    def recipient(self) -> ActionRef:
        return ActionRef(channel=self.channel, participant_id=self.to_participant_id,
                         address=None if self.to_participant_id else self.to_address)


@attrs.frozen
class _Message:
    text: str
    key: str
    answers: tuple[str, ...]
    turn: int | None


class MessagingOutbox:
    """:class:`~tac_actors.actors.Outbox` of a text conversation (``streaming = False``)."""

    streaming = False

    def __init__(self, services: TwilioServices, route: Route, *,
                 hand_off: Handoff | None = None, answered: Answered | None = None,
                 released: Answered | None = None,
                 before_last: Callable[[], Awaitable[None]] | None = None,
                 kept: Callable[[], None] | None = None,
                 send_limit: trio.Semaphore | None = None,
                 send_budget: float = 30.0, max_undelivered: int = 16) -> None:
        self._services = services
        self.route = route
        self._hand_off = hand_off
        self._answered = answered
        self._released = released
        self._before_last = before_last
        self._kept = kept
        self._send_limit = send_limit
        self.send_budget = send_budget
        self.max_undelivered = max_undelivered
        self._parts: dict[int, list[str]] = {}
        #: messages made and not sent yet, oldest first
        self._undelivered: deque[_Message] = deque()
        self._sending = trio.Lock()
        #: the inbound texts the current turn answers, and how many messages it sent
        self._answering: tuple[str, ...] = ()
        self._count = 0
        #: the cell to report delivery errors to (set by the channel after spawning)
        self.cell: ActorCell | None = None
        self.sent = 0
        self.failed = 0

    # -- what the turn wrapper uses ---------------------------------------------------------

    def begin(self, answers: Sequence[str]) -> None:
        """The next messages answer these inbound text ids (a new turn starts)."""
        self._answering = tuple(answers)
        self._count = 0

    def answered_silently(self) -> None:
        """The turn answering the current texts chose to send nothing."""
        if self._answering and self._count == 0 and self._answered is not None:
            self._answered(self._answering)
        self._answering = ()

    def discard_open(self) -> int:
        """Drop every reply still being gathered (a turn failed or timed out mid-stream:
        its fallback words go out alone). Returns how many were dropped."""
        dropped = len(self._parts)
        self._parts.clear()
        return dropped

    @property
    def undelivered(self) -> int:
        return len(self._undelivered)

    # -- Outbox ------------------------------------------------------------------------------

    async def deliver(self, turn: int, token: str, *, last: bool) -> None:
        parts = self._parts.setdefault(turn, [])
        if token:
            parts.append(token)
        if not last:
            await trio.lowlevel.checkpoint()
            return
        text = "".join(self._parts.pop(turn, ()))
        if not text.strip():
            self.answered_silently()
            await trio.lowlevel.checkpoint()
            return
        if self._before_last is not None:
            await self._before_last()
        await self._enqueue(text, turn)

    async def send_text(self, text: str, *, turn: int | None = None) -> bool:
        """Send one message now (after any kept ones). Returns False (after reporting
        it) when it could not be sent within the budget."""
        return await self._enqueue(text, turn)

    async def _enqueue(self, text: str, turn: int | None) -> bool:
        route = self.route
        if self._answering:
            self._count += 1
            key = f"tac:{route.conversation_id}:{self._answering[0]}:{self._count}"
            answers = self._answering if self._count == 1 else ()
        else:
            key, answers = "tac-" + uuid.uuid4().hex, ()
        message = _Message(text, key, answers, turn)
        self._undelivered.append(message)
        while len(self._undelivered) > self.max_undelivered:
            dropped = self._undelivered.popleft()
            log.warning("conversation %s: %d replies kept undelivered; the oldest is "
                        "dropped and its texts are left to reconcile",
                        route.conversation_id, self.max_undelivered)
            if dropped.answers and self._released is not None:
                self._released(dropped.answers)
        await self.flush()
        return message not in self._undelivered

    async def flush(self) -> bool:
        """Send the kept messages in order, each within the budget. True when none is
        left. Cancellable: an interrupted send stays kept (its key makes the retry
        safe)."""
        async with self._sending:
            while self._undelivered:
                message = self._undelivered[0]
                if not await self._send(message):
                    return False
                self._undelivered.popleft()
                if message.answers and self._answered is not None:
                    self._answered(message.answers)
        return True

    async def _send(self, message: _Message) -> bool:
        if self._send_limit is None:
            return await self._send_within_budget(message)
        async with self._send_limit:  # overload queues here, not in the HTTP pool
            return await self._send_within_budget(message)

    async def _send_within_budget(self, message: _Message) -> bool:
        route = self.route
        deadline = trio.current_time() + self.send_budget
        delay = FIRST_BACKOFF
        while True:
            try:
                await self._services.orchestrator.send_message(
                    route.conversation_id, from_=route.sender(), to=[route.recipient()],
                    text=message.text,
                    channel_settings=({"channelId": route.channel_id}
                                      if route.channel_id else None),
                    idempotency_key=message.key,
                )
            except ServiceError as exc:
                permanent = exc.status is not None and 400 <= exc.status < 500 and (
                    exc.status not in (408, 409, 425, 429))
                if permanent or trio.current_time() + delay > deadline:
                    self.failed += 1
                    log.warning("conversation %s: reply not delivered within %.0f s (%s); "
                                "kept for the next attempt", route.conversation_id,
                                self.send_budget, exc)
                    if self.cell is not None:
                        await self.cell.report(exc, "delivery", message.turn)
                    if self._kept is not None:
                        self._kept()  # another attempt soon, even if no text comes
                    return False
                await trio.sleep(delay)
                delay = min(delay * 2, LAST_BACKOFF)
                continue
            self.sent += 1
            return True

    async def send_frame(self, turn: int | None, frame: OutboundFrame) -> None:
        if isinstance(frame, Text):
            await self.deliver(turn or 0, frame.token, last=frame.last)
        elif isinstance(frame, End):
            if frame.handoff_data is not None:
                await self.hand_off(frame.handoff_data)
            else:
                await trio.lowlevel.checkpoint()
        else:
            raise NotImplementedError(
                f"{type(frame).__name__} is a voice action; text channels cannot send it")

    def retract_through(self, barrier: int) -> int:
        stopped = [turn for turn in self._parts if 0 < turn <= barrier]
        for turn in stopped:
            del self._parts[turn]
        return len(stopped)

    async def hand_off(self, handoff_data: str) -> None:
        """Digital handoff (a Studio execution, see the channel). Failures are reported."""
        if self._hand_off is None:
            log.warning("conversation %s: handoff requested but no Studio flow is configured "
                        "(TWILIO_STUDIO_HANDOFF_FLOW_SID)", self.route.conversation_id)
            await trio.lowlevel.checkpoint()
            return
        try:
            await self._hand_off(handoff_data)
        except ServiceError as exc:
            log.warning("conversation %s: handoff failed (%s)", self.route.conversation_id, exc)
            if self.cell is not None:
                await self.cell.report(exc, "delivery")

    async def finish(self, *, goodbye: str | None = None) -> None:
        """The conversation ends on our side: send the goodbye, if any. The Orchestrator
        conversation stays open (the person may write again)."""
        self._answering = ()
        if goodbye and goodbye.strip():
            await self.send_text(goodbye)
        else:
            await trio.lowlevel.checkpoint()


def studio_handoff(services: TwilioServices, config: TACConfig, route: Route
                   ) -> Handoff | None:
    """The digital handoff of a conversation: a Studio execution of
    ``studio_handoff_flow_sid`` for the person, ``Parameters={"HandoffData": data}`` (the
    data parsed as JSON when it is JSON). ``None`` when no flow is configured."""
    flow = config.studio_handoff_flow_sid
    if not flow:
        return None
    # several numbers: the Studio flow answers from the number the person texted
    sender = (route.from_address if route.from_address in config.phone_numbers
              else config.phone_number or route.from_address)

    async def hand_off(data: str) -> None:
        parameters: Any
        try:
            parameters = json.loads(data)
        except ValueError:
            parameters = data
        await services.studio.create_execution(flow, to=route.to_address, from_=sender,
                                               parameters={"HandoffData": parameters})

    return hand_off
