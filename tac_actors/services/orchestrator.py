"""Conversation Orchestrator client (``conversations.twilio.com``).

Covers what the engine needs: the configuration (to learn the Memory store), listing,
creating and updating conversations, participants, communications, and the Actions API
(``SEND_MESSAGE``) through which every text reply is sent. List calls return one
:class:`Page`; :meth:`OrchestratorClient.list_all_communications` follows ``nextToken``.

Creating a conversation, a participant or an action is not idempotent and is never
retried after it may have reached the server, unless the caller passes an
``idempotency_key``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs
import cattrs

from tac_actors.services.errors import Conflict
from tac_actors.services.http import Product, ServiceHTTP, path_segment
from tac_actors.services.wire import camel, decode, decode_list, to_wire

__all__ = [
    "ActionRef",
    "ActionResult",
    "Communication",
    "CommunicationAuthor",
    "CommunicationContent",
    "Conversation",
    "ConversationConfiguration",
    "OrchestratorClient",
    "Page",
    "PageMeta",
    "Participant",
    "ParticipantAddress",
    "StatusCallback",
]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class StatusCallback:
    url: str
    method: str = "POST"


@attrs.frozen(kw_only=True)
class ConversationConfiguration:
    """``GET /v2/ControlPlane/Configurations/{id}``. ``memory_store_id`` is ``None`` when
    the configuration has no Memory store."""

    id: str
    display_name: str | None = None
    description: str | None = None
    conversation_grouping_type: str | None = None
    memory_store_id: str | None = None
    status_callbacks: tuple[StatusCallback, ...] = ()
    intelligence_configuration_ids: tuple[str, ...] = ()
    created_at: str | None = None
    updated_at: str | None = None
    version: int | None = None


@attrs.frozen(kw_only=True)
class Conversation:
    """``configuration`` is the conversation's own override (raw JSON), e.g.
    ``{"statusCallbacks": []}`` once :meth:`OrchestratorClient.clear_status_callbacks`
    ran; ``None`` when the Orchestrator sent none."""

    id: str
    account_id: str | None = None
    status: str | None = None
    name: str | None = None
    configuration_id: str | None = None
    configuration: Mapping[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def callbacks_cleared(self) -> bool:
        """True when the conversation's status callbacks were cleared (our handoff)."""
        configuration = self.configuration
        return (isinstance(configuration, Mapping)
                and configuration.get("statusCallbacks", None) == [])


@attrs.frozen(kw_only=True)
class ParticipantAddress:
    """One address of a participant; ``channel`` is upper-case (``SMS``, ``VOICE``...)."""

    channel: str
    address: str
    channel_id: str | None = None


@attrs.frozen(kw_only=True)
class Participant:
    """``type`` is one of CUSTOMER, AI_AGENT, AGENT, HUMAN_AGENT, UNKNOWN (or None)."""

    id: str
    conversation_id: str | None = None
    account_id: str | None = None
    name: str | None = None
    type: str | None = None
    profile_id: str | None = None
    addresses: tuple[ParticipantAddress, ...] = ()
    created_at: str | None = None
    updated_at: str | None = None


@attrs.frozen(kw_only=True)
class CommunicationAuthor:
    address: str
    channel: str
    participant_id: str | None = None
    delivery_status: str | None = None


@attrs.frozen(kw_only=True)
class CommunicationContent:
    """``type`` is TEXT or TRANSCRIPTION; ``transcription`` is kept as raw JSON."""

    text: str = ""
    type: str | None = None
    transcription: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class Communication:
    id: str
    author: CommunicationAuthor
    content: CommunicationContent
    conversation_id: str | None = None
    account_id: str | None = None
    recipients: tuple[CommunicationAuthor, ...] = ()
    channel_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@attrs.frozen(kw_only=True)
class PageMeta:
    key: str | None = None
    page_size: int | None = None
    next_token: str | None = None
    previous_token: str | None = None


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a list call; ``next_token`` is ``None`` on the last page."""

    items: tuple[T, ...]
    meta: PageMeta

    @property
    def next_token(self) -> str | None:
        return self.meta.next_token


@attrs.frozen(kw_only=True)
class ActionRef:
    """A participant in an action: by ``participant_id`` or ``address``, on ``channel``."""

    channel: str
    participant_id: str | None = None
    address: str | None = None

    def __attrs_post_init__(self) -> None:
        if not (self.participant_id or self.address):
            raise ValueError("an action participant needs a participant_id or an address")


@attrs.frozen(kw_only=True)
class ActionResult:
    """The 202 answer of ``POST /Actions``."""

    id: str
    type: str
    status: str
    conversation_id: str | None = None
    created_at: str | None = None


@attrs.frozen(kw_only=True)
class _SendPayload:
    from_: ActionRef
    to: tuple[ActionRef, ...]
    content: Mapping[str, str]
    channel_settings: Mapping[str, Any] | None = None


class OrchestratorClient:
    """Calls to Conversation Orchestrator through the shared :class:`ServiceHTTP`.

    ``configuration_id`` is the default for :meth:`get_configuration` and
    :meth:`create_conversation`.
    """

    def __init__(self, http: ServiceHTTP, configuration_id: str | None = None) -> None:
        self._http = http
        self.configuration_id = configuration_id

    def __repr__(self) -> str:
        return f"OrchestratorClient(configuration_id={self.configuration_id!r})"

    # -- configuration ------------------------------------------------------------------

    async def get_configuration(
        self, configuration_id: str | None = None
    ) -> ConversationConfiguration:
        """The conversation configuration (default: the client's own)."""
        config_id = configuration_id or self._require_configuration()
        reply = await self._http.request(
            Product.CONVERSATIONS, "GET",
            f"/v2/ControlPlane/Configurations/{path_segment(config_id)}"
        )
        return decode(reply, ConversationConfiguration)

    # -- conversations ------------------------------------------------------------------

    async def list_conversations(
        self,
        *,
        status: Sequence[str] | None = None,
        channel_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Conversation]:
        """One page of conversations, filtered by status (any of) and channel id."""
        params = {
            "status": list(status) if status else None,
            "channelId": channel_id,
            "pageSize": page_size,
            "pageToken": page_token,
        }
        reply = await self._http.request(
            Product.CONVERSATIONS, "GET", "/v2/Conversations", params=params
        )
        return Page(
            items=decode_list(reply, "conversations", Conversation),
            meta=_meta(reply.object()),
        )

    async def get_conversation(self, conversation_id: str) -> Conversation:
        reply = await self._http.request(
            Product.CONVERSATIONS, "GET", f"/v2/Conversations/{path_segment(conversation_id)}"
        )
        return decode(reply, Conversation)

    async def create_conversation(
        self,
        *,
        participants: Sequence[Mapping[str, Any]] | None = None,
        name: str | None = None,
        configuration_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Conversation:
        """Create a conversation, optionally with inline participants (wire dicts:
        ``{"type", "profileId"?, "addresses": [{"channel", "address"}]}``).

        Raises :class:`~tac_actors.services.errors.Conflict` (409) when an active
        conversation with these participants exists; see
        :meth:`create_or_reuse_conversation`.
        """
        body = {
            "configurationId": configuration_id or self._require_configuration(),
            "name": name,
            "participants": list(participants) if participants is not None else None,
        }
        reply = await self._http.request(
            Product.CONVERSATIONS, "POST", "/v2/Conversations",
            json_body={k: v for k, v in body.items() if v is not None},
            idempotency_key=idempotency_key,
        )
        return decode(reply, Conversation)

    async def create_or_reuse_conversation(
        self, *, participants: Sequence[Mapping[str, Any]], name: str | None = None
    ) -> tuple[str, bool]:
        """``(conversation_id, reused)``: a 409 answer yields the existing conversation
        named by ``X-Conflicting-Resource-Id``. A 409 without that header re-raises."""
        try:
            conversation = await self.create_conversation(participants=participants, name=name)
        except Conflict as exc:
            if not exc.conflicting_resource_id:
                raise
            return exc.conflicting_resource_id, True
        return conversation.id, False

    async def update_conversation(
        self, conversation_id: str, *, status: str, name: str | None = None
    ) -> Conversation:
        """``PUT`` the conversation's status (ACTIVE, INACTIVE or CLOSED)."""
        body = {"status": status, **({"name": name} if name is not None else {})}
        reply = await self._http.request(
            Product.CONVERSATIONS, "PUT", f"/v2/Conversations/{path_segment(conversation_id)}",
            json_body=body,
        )
        return decode(reply, Conversation)

    async def clear_status_callbacks(self, conversation_id: str) -> None:
        """Stop the conversation's webhooks (used at handoff). Not retried (PATCH)."""
        await self._http.request(
            Product.CONVERSATIONS, "PATCH", f"/v2/Conversations/{path_segment(conversation_id)}",
            json_body={"configuration": {"statusCallbacks": []}},
        )

    async def restore_status_callbacks(self, conversation_id: str) -> None:
        """Drop the conversation's own configuration override, so its configuration's
        status callbacks apply again (undoes :meth:`clear_status_callbacks`)."""
        await self._http.request(
            Product.CONVERSATIONS, "PATCH", f"/v2/Conversations/{path_segment(conversation_id)}",
            json_body={"configuration": {}},
        )

    # -- participants -------------------------------------------------------------------

    async def list_participants(
        self, conversation_id: str, *, page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Participant]:
        reply = await self._http.request(
            Product.CONVERSATIONS, "GET",
            f"/v2/Conversations/{path_segment(conversation_id)}/Participants",
            params={"pageSize": page_size, "pageToken": page_token},
        )
        return Page(
            items=decode_list(reply, "participants", Participant),
            meta=_meta(reply.object()),
        )

    async def create_participant(
        self,
        conversation_id: str,
        *,
        type: str | None,
        addresses: Sequence[ParticipantAddress],
        name: str | None = None,
        profile_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Participant:
        reply = await self._http.request(
            Product.CONVERSATIONS, "POST",
            f"/v2/Conversations/{path_segment(conversation_id)}/Participants",
            json_body=_participant_body(type, addresses, name, profile_id),
            idempotency_key=idempotency_key,
        )
        return decode(reply, Participant)

    async def update_participant(
        self,
        conversation_id: str,
        participant_id: str,
        *,
        type: str,
        addresses: Sequence[ParticipantAddress],
        name: str | None = None,
        profile_id: str | None = None,
    ) -> Participant:
        """Replace a participant (``PUT`` is a full replacement: pass every address)."""
        reply = await self._http.request(
            Product.CONVERSATIONS, "PUT",
            f"/v2/Conversations/{path_segment(conversation_id)}/Participants/{path_segment(participant_id)}",
            json_body=_participant_body(type, addresses, name, profile_id),
        )
        return decode(reply, Participant)

    # -- communications -----------------------------------------------------------------

    async def list_communications(
        self,
        conversation_id: str,
        *,
        channel_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Communication]:
        reply = await self._http.request(
            Product.CONVERSATIONS, "GET",
            f"/v2/Conversations/{path_segment(conversation_id)}/Communications",
            params={"channelId": channel_id, "pageSize": page_size, "pageToken": page_token},
        )
        return Page(
            items=decode_list(reply, "communications", Communication),
            meta=_meta(reply.object()),
        )

    async def list_all_communications(
        self, conversation_id: str, *, page_size: int = 100, max_pages: int = 10
    ) -> tuple[Communication, ...]:
        """Every communication, following ``nextToken`` for at most ``max_pages`` pages."""
        items: list[Communication] = []
        token: str | None = None
        for _ in range(max_pages):
            page = await self.list_communications(
                conversation_id, page_size=page_size, page_token=token
            )
            items.extend(page.items)
            token = page.next_token
            if not token:
                break
        return tuple(items)

    # -- actions ------------------------------------------------------------------------

    async def send_message(
        self,
        conversation_id: str,
        *,
        from_: ActionRef,
        to: Sequence[ActionRef],
        text: str,
        channel_settings: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """``POST /Actions`` with ``type: SEND_MESSAGE`` (answered 202).

        ``channel_settings`` is passed through as is (e.g. ``{"channelId": ...}`` for
        Chat). Without an ``idempotency_key`` a failed send is not retried, so a
        message is never delivered twice.
        """
        if not to:
            raise ValueError("send_message needs at least one recipient")
        payload = _SendPayload(
            from_=from_, to=tuple(to), content={"text": text},
            channel_settings=dict(channel_settings) if channel_settings else None,
        )
        reply = await self._http.request(
            Product.CONVERSATIONS, "POST",
            f"/v2/Conversations/{path_segment(conversation_id)}/Actions",
            json_body={"type": "SEND_MESSAGE", "payload": to_wire(payload, camel)},
            idempotency_key=idempotency_key,
        )
        return decode(reply, ActionResult)

    def _require_configuration(self) -> str:
        if not self.configuration_id:
            raise ValueError(
                "no conversation configuration id: set TWILIO_CONVERSATION_CONFIGURATION_ID"
            )
        return self.configuration_id


def _meta(body: Mapping[str, Any]) -> PageMeta:
    raw = body.get("meta")
    if not isinstance(raw, Mapping):
        return PageMeta()
    try:
        return camel.structure(raw, PageMeta)
    except (cattrs.BaseValidationError, TypeError):  # a bad meta loses paging, not the page
        return PageMeta()


def _participant_body(
    type: str | None,
    addresses: Sequence[ParticipantAddress],
    name: str | None,
    profile_id: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type,
        "name": name,
        "profileId": profile_id,
        "addresses": [to_wire(a, camel) for a in addresses],
    }
    return {k: v for k, v in body.items() if v is not None}
