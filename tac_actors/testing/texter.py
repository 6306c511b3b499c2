"""A simulated texter: a person writing by SMS, WhatsApp, RCS or Chat, as the
Conversation Orchestrator would report it.

Each :meth:`SimulatedTexter.send` stores the message in the emulator's conversation (so
memory fallbacks and participant look-ups see it) and delivers the matching
``COMMUNICATION_CREATED`` webhook: over HTTP to a running server, signed as Twilio signs
it (``bodySHA256`` + ``X-Twilio-Signature``), or in-process straight to a
:class:`~tac_actors.channels.messaging.MessagingChannel` (no sockets, so it runs under
``MockClock``). Replies are read back from the emulator's sent messages, without
polling: :meth:`read_reply` wakes when the emulator records a message.

    async with open_texter(server_url, emu, auth_token=token) as texter:
        await texter.send("hi")
        assert (await texter.read_reply()).text == "Hello!"
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import httpx
import trio

from tac_actors.channels.messaging import MessagingChannel
from tac_actors.emulator import Emulator
from tac_actors.emulator.orchestrator import add_communication, create_conversation
from tac_actors.protocol.signature import body_sha256, compute_signature

__all__ = [
    "DEFAULT_ADDRESSES",
    "SimulatedTexter",
    "TextReply",
    "WebhookFaults",
    "WebhookResult",
    "open_texter",
]

#: (person, agent) addresses per channel; the agent side matches ``emu.tac_config()``
#: (phone number ``+15550000000``) with ``rcs_sender_id="rcs:tac_agent"``
DEFAULT_ADDRESSES: Mapping[str, tuple[str, str]] = {
    "sms": ("+15551230001", "+15550000000"),
    "whatsapp": ("whatsapp:+15551230001", "whatsapp:+15550000000"),
    "rcs": ("rcs:+15551230001", "rcs:tac_agent"),
    "chat": ("chat-user-ada", "ai-assistant"),
}


@attrs.frozen
class WebhookResult:
    """The server's answer to one webhook."""

    status: int
    retry_after: str | None = None
    body: str = ""


@attrs.frozen(kw_only=True)
class TextReply:
    """One message the agent sent to the conversation. ``from_`` and ``to`` are the
    action's participant references as sent; ``from_address``/``to_address`` resolve
    them to addresses."""

    text: str
    conversation_id: str
    channel: str | None
    from_: Mapping[str, Any] | None
    to: tuple[Mapping[str, Any], ...]
    from_address: str | None = None
    to_address: str | None = None
    channel_settings: Mapping[str, Any] | None = None


@attrs.define
class WebhookFaults:
    """What can go wrong between the Orchestrator and our webhook: a fraction ``drop`` of
    texts is stored but its webhook never sent (answered ``status=0``), ``duplicate``
    delivered twice (same body and token), and each delivery waits ``delay`` seconds."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    rng: random.Random = attrs.field(factory=lambda: random.Random(0), repr=False)


DROPPED = "dropped"


class Delivery(Protocol):
    async def post(self, body: bytes, headers: Mapping[str, str]) -> WebhookResult: ...


class ChannelDelivery:
    """Hands webhooks to a channel in-process (signatures are the server's business)."""

    def __init__(self, channel: MessagingChannel) -> None:
        self.channel = channel

    async def post(self, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        answer = await self.channel.receive_webhook(
            body, idempotency_token=headers.get("I-Twilio-Idempotency-Token"))
        retry = str(answer.retry_after) if answer.retry_after is not None else None
        return WebhookResult(answer.status, retry, json.dumps(answer.body))


class HttpDelivery:
    """POSTs webhooks to ``{base_url}{path}``, signed with ``auth_token`` when given."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, path: str = "/webhook",
                 auth_token: str | None = None) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.path = path
        self.auth_token = auth_token

    async def post(self, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        url = f"{self.base_url}{self.path}?bodySHA256={body_sha256(body)}"
        sent = {"Content-Type": "application/json", **headers}
        if self.auth_token and "X-Twilio-Signature" not in sent:
            sent["X-Twilio-Signature"] = compute_signature(self.auth_token, url)
        response = await self.client.post(url, content=body, headers=sent)
        return WebhookResult(response.status_code, response.headers.get("Retry-After"),
                             response.text)


class SimulatedTexter:
    """One person in one conversation on ``channel`` (see the module docstring).

    ``conversation_id`` joins an existing emulator conversation (e.g. an outbound one);
    otherwise one is created on the first :meth:`send`, with a ``customer_type``
    participant (CUSTOMER) at ``address`` and an ``agent_type`` one (AI_AGENT) at
    ``agent_address``; ``agent_type=None`` leaves our side out, and ``UNKNOWN`` types
    model what Twilio's v1 bridge creates (participant reconciliation fixes both).
    """

    def __init__(self, emulator: Emulator, delivery: Delivery | MessagingChannel, *,
                 channel: str = "sms", address: str | None = None,
                 agent_address: str | None = None, conversation_id: str | None = None,
                 channel_id: str | None = None, faults: WebhookFaults | None = None,
                 customer_type: str = "CUSTOMER", agent_type: str | None = "AI_AGENT"
                 ) -> None:
        self.emulator = emulator
        self.delivery: Delivery = (ChannelDelivery(delivery)
                                   if isinstance(delivery, MessagingChannel) else delivery)
        self.channel = channel.lower()
        person, agent = DEFAULT_ADDRESSES[self.channel]
        self.address = address or person
        self.agent_address = agent_address or agent
        self.conversation_id = conversation_id
        self.channel_id = channel_id or (
            "CH" + uuid.uuid4().hex if self.channel == "chat" else None)
        self.last_webhook: tuple[bytes, dict[str, str]] | None = None
        self.faults = faults
        self.customer_type = customer_type
        self.agent_type = agent_type
        #: ids of the texts sent, oldest first
        self.sent_ids: list[str] = []
        self._read = 0

    @property
    def wire_channel(self) -> str:
        return self.channel.upper()

    def _conversation(self) -> dict[str, Any]:
        db = self.emulator.db
        if self.conversation_id is None:
            configuration = db.all("configuration")[0]["id"]
            extra = {"channelId": self.channel_id} if self.channel_id else {}
            participants = [{"type": self.customer_type, "addresses": [
                {"channel": self.wire_channel, "address": self.address, **extra}]}]
            if self.agent_type is not None:
                participants.append({"type": self.agent_type, "addresses": [
                    {"channel": self.wire_channel, "address": self.agent_address, **extra}]})
            conversation = create_conversation(db, self.emulator.account_sid, configuration,
                                               participants=participants)
            self.conversation_id = conversation["id"]
            return conversation
        found = db.get("conversation", self.conversation_id)
        if found is None:
            raise LookupError(f"no conversation {self.conversation_id} in the emulator")
        return found

    def _participant_id(self) -> str | None:
        assert self.conversation_id is not None
        for p in self.emulator.db.all("participant", parent=self.conversation_id):
            if any(a["address"] == self.address for a in p["addresses"]):
                return str(p["id"])
        return None

    async def send(self, text: str, *, idempotency_token: str | None = None
                   ) -> WebhookResult:
        """Write ``text``: store it in the conversation and deliver its webhook (subject
        to :attr:`faults`: a dropped webhook answers ``WebhookResult(0, body="dropped")``)."""
        conversation = self._conversation()
        author = {"address": self.address, "channel": self.wire_channel,
                  "participantId": self._participant_id()}
        communication = add_communication(
            self.emulator.db, conversation, author=author, text=text,
            recipients=[{"address": self.agent_address, "channel": self.wire_channel}],
            channel_id=self.channel_id)
        self.sent_ids.append(communication["id"])
        faults = self.faults
        if faults is not None:
            if faults.drop and faults.rng.random() < faults.drop:
                return WebhookResult(0, body=DROPPED)
            if faults.delay:
                await trio.sleep(faults.delay)
        result = await self.post_event("COMMUNICATION_CREATED", communication,
                                       idempotency_token=idempotency_token)
        if faults is not None and faults.duplicate and faults.rng.random() < faults.duplicate:
            await self.redeliver()
        return result

    async def set_status(self, status: str) -> WebhookResult:
        """Change the conversation's status (ACTIVE, INACTIVE, CLOSED) and deliver the
        ``CONVERSATION_UPDATED`` webhook."""
        conversation = self._conversation()
        changed = conversation["status"] != status
        conversation["status"] = status
        self.emulator.db.put("conversation", conversation)
        if changed and status == "CLOSED":  # as the emulator's PUT route does
            self.emulator.intelligence.conversation_closed(conversation["id"])
        return await self.post_event("CONVERSATION_UPDATED", conversation)

    async def close(self) -> WebhookResult:
        return await self.set_status("CLOSED")

    async def post_event(self, event_type: str, data: Mapping[str, Any], *,
                         idempotency_token: str | None = None) -> WebhookResult:
        body = json.dumps({"eventType": event_type, "data": data}).encode()
        headers = {"I-Twilio-Idempotency-Token": idempotency_token or uuid.uuid4().hex}
        return await self.post_raw(body, headers)

    async def post_raw(self, body: bytes, headers: Mapping[str, str] | None = None
                       ) -> WebhookResult:
        """Deliver any body (signed over HTTP unless ``X-Twilio-Signature`` is given)."""
        self.last_webhook = (body, dict(headers or {}))
        return await self.delivery.post(body, dict(headers or {}))

    async def redeliver(self) -> WebhookResult:
        """Deliver the last webhook again, byte for byte (what Twilio's retry does)."""
        if self.last_webhook is None:
            raise RuntimeError("nothing was delivered yet")
        body, headers = self.last_webhook
        return await self.delivery.post(body, headers)

    def replies(self) -> list[TextReply]:
        """Every message the agent sent to this conversation so far, oldest first."""
        if self.conversation_id is None:
            return []
        held = {p["id"]: p for p in
                self.emulator.db.all("participant", parent=self.conversation_id)}

        def address(ref: Mapping[str, Any] | None) -> str | None:
            if not ref:
                return None
            if ref.get("address"):
                return str(ref["address"])
            found = held.get(ref.get("participantId") or "")
            channel = ref.get("channel")
            return next((a["address"] for a in (found or {}).get("addresses", ())
                         if a["channel"] == channel), None)

        return [TextReply(text=m["text"] or "", conversation_id=m["conversationId"],
                          channel=(m["from"] or {}).get("channel"), from_=m["from"],
                          to=tuple(m["to"] or ()), from_address=address(m["from"]),
                          to_address=address((m["to"] or [None])[0]),
                          channel_settings=m["channelSettings"])
                for m in self.emulator.sent_messages()
                if m["conversationId"] == self.conversation_id]

    async def read_reply(self) -> TextReply:
        """The next reply not read yet, waiting for it (bound it with ``fail_after``)."""
        await self.emulator.wait_until(lambda: len(self.replies()) > self._read)
        reply = self.replies()[self._read]
        self._read += 1
        return reply

    def unread(self) -> list[TextReply]:
        """Replies sent but not read yet (does not mark them read)."""
        return self.replies()[self._read:]


@asynccontextmanager
async def open_texter(base_url: str, emulator: Emulator, *, auth_token: str | None = None,
                      path: str = "/webhook", **options: Any
                      ) -> AsyncIterator[SimulatedTexter]:
    """A texter posting to the server at ``base_url`` (e.g. from
    :func:`tac_actors.server.serve`), signing with ``auth_token`` when given."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield SimulatedTexter(emulator, HttpDelivery(client, base_url, path=path,
                                                     auth_token=auth_token), **options)
