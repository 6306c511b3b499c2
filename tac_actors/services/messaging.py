"""Sending text messages.

In Orchestrator mode every reply goes out through the Orchestrator's Actions API
(``SEND_MESSAGE``), so the conversation's history stays whole: :meth:`MessagingClient.send`
is a thin shortcut to :meth:`OrchestratorClient.send_message`. :meth:`send_sms` is the
plain Programmable Messaging call (``POST /2010-04-01/Accounts/{sid}/Messages.json``) for
messages that belong to no conversation. Neither is retried without an idempotency key.
"""

from __future__ import annotations

import attrs

from tac_actors.services.http import Product, ServiceHTTP, path_segment
from tac_actors.services.orchestrator import ActionRef, ActionResult, OrchestratorClient
from tac_actors.services.wire import decode, snake

__all__ = ["MessagingClient", "SentMessage"]


@attrs.frozen(kw_only=True)
class SentMessage:
    """The answer of ``Messages.json`` (``sid`` starts with ``SM``)."""

    sid: str
    status: str | None = None
    to: str | None = None
    from_: str | None = None
    body: str | None = None
    date_created: str | None = None


class MessagingClient:
    """Outbound text. ``account_sid`` is needed only by :meth:`send_sms`."""

    def __init__(
        self, http: ServiceHTTP, orchestrator: OrchestratorClient, account_sid: str | None
    ) -> None:
        self._http = http
        self._orchestrator = orchestrator
        self._account_sid = account_sid

    def __repr__(self) -> str:
        return f"MessagingClient(account_sid={self._account_sid!r})"

    async def send(
        self,
        conversation_id: str,
        *,
        channel: str,
        text: str,
        from_participant_id: str | None = None,
        from_address: str | None = None,
        to_participant_id: str | None = None,
        to_address: str | None = None,
        channel_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """Send ``text`` in a conversation; participants by id or by address, on the
        upper-case ``channel`` (``SMS``, ``WHATSAPP``, ``RCS``, ``CHAT``)."""
        return await self._orchestrator.send_message(
            conversation_id,
            from_=ActionRef(channel=channel, participant_id=from_participant_id,
                            address=from_address),
            to=[ActionRef(channel=channel, participant_id=to_participant_id,
                          address=to_address)],
            text=text,
            channel_settings={"channelId": channel_id} if channel_id else None,
            idempotency_key=idempotency_key,
        )

    async def send_sms(
        self, *, to: str, from_: str, body: str, idempotency_key: str | None = None
    ) -> SentMessage:
        """Send one SMS (or ``whatsapp:`` message) outside any conversation."""
        if not self._account_sid:
            raise ValueError("send_sms needs TWILIO_ACCOUNT_SID")
        reply = await self._http.request(
            Product.API, "POST",
            f"/2010-04-01/Accounts/{path_segment(self._account_sid)}/Messages.json",
            form={"To": to, "From": from_, "Body": body}, idempotency_key=idempotency_key,
        )
        return decode(reply, SentMessage, snake)
