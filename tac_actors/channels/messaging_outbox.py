"""The outbox of one text conversation: replies go out as Orchestrator ``SEND_MESSAGE``
actions, one message per reply.

Promises:

* a reply's tokens are joined and sent as **one** message when the reply closes
  (``last=True``); an empty or blank reply sends nothing;
* each message carries its own idempotency key, so the service client retries it on
  5xx, 429 and connection errors without ever sending it twice;
* a send that still fails is reported to ``on_error`` with phase ``"delivery"`` and the
  conversation goes on: the outbox never raises a service error into the actor;
* a turn's reply that was retracted before its last token (preempted, cancelled) is
  never sent; cancelling a send in flight (conversation closed) drops it.

Voice-only frames (play, digits, language) raise :class:`NotImplementedError`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
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


class MessagingOutbox:
    """:class:`~tac_actors.actors.Outbox` of a text conversation (``streaming = False``)."""

    streaming = False

    def __init__(self, services: TwilioServices, route: Route, *,
                 hand_off: Handoff | None = None) -> None:
        self._services = services
        self.route = route
        self._hand_off = hand_off
        self._parts: dict[int, list[str]] = {}
        #: the cell to report delivery errors to (set by the channel after spawning)
        self.cell: ActorCell | None = None
        self.sent = 0
        self.failed = 0

    async def deliver(self, turn: int, token: str, *, last: bool) -> None:
        parts = self._parts.setdefault(turn, [])
        if token:
            parts.append(token)
        if not last:
            await trio.lowlevel.checkpoint()
            return
        text = "".join(self._parts.pop(turn, ()))
        if not text.strip():
            await trio.lowlevel.checkpoint()
            return
        await self.send_text(text, turn=turn)

    async def send_text(self, text: str, *, turn: int | None = None) -> bool:
        """Send one message now. Returns False (after reporting it) when it failed."""
        route = self.route
        try:
            await self._services.orchestrator.send_message(
                route.conversation_id, from_=route.sender(), to=[route.recipient()],
                text=text,
                channel_settings={"channelId": route.channel_id} if route.channel_id else None,
                idempotency_key="tac-" + uuid.uuid4().hex,
            )
        except ServiceError as exc:
            self.failed += 1
            log.warning("conversation %s: reply not delivered (%s)", route.conversation_id, exc)
            if self.cell is not None:
                await self.cell.report(exc, "delivery", turn)
            return False
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
    sender = config.phone_number or route.from_address

    async def hand_off(data: str) -> None:
        parameters: Any
        try:
            parameters = json.loads(data)
        except ValueError:
            parameters = data
        await services.studio.create_execution(flow, to=route.to_address, from_=sender,
                                               parameters={"HandoffData": parameters})

    return hand_off
