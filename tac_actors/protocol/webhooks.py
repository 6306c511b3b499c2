"""Conversation Orchestrator webhooks (``statusCallbacks``), sans-IO.

The Orchestrator POSTs JSON ``{"eventType": ..., "data": {...}}`` to the app. This module
turns the raw body into one small frozen event, and nothing else: no signature checks
(see :mod:`tac_actors.protocol.signature`), no idempotency, no I/O.

=========================  ==========================================================
``eventType``              event
=========================  ==========================================================
``COMMUNICATION_CREATED``  :class:`CommunicationCreated` (a message, or a voice
                           transcript: the channel layer looks at ``author.channel``)
``CONVERSATION_UPDATED``   :class:`ConversationUpdated` (status ACTIVE, INACTIVE or
                           CLOSED)
``CONVERSATION_CREATED``,  :class:`IgnoredEvent`: well-formed, nothing to do
``PARTICIPANT_*``, ...
anything else              :class:`ProtocolError`
=========================  ==========================================================

Promises: :func:`parse_webhook` returns one of the three event types or raises
:class:`~tac_actors.protocol.errors.ProtocolError` (answered 400), for any input at all.
Field types are strict (a number is never taken for a string); unknown fields are
tolerated, as Twilio adds fields without notice; ``null`` counts as absent. Ids (the
communication, conversation and participant ids, which become actor keys and URL path
segments) must match :data:`ID_PATTERN`: 1 to 256 characters of ``A-Z a-z 0-9 . _ : @ +
= ~ -``, not ``.`` or ``..``; anything else (a slash, a control character, a lone
surrogate) is a :class:`ProtocolError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from tac_actors.protocol.errors import ProtocolError

__all__ = [
    "CONVERSATION_STATUSES",
    "ID_PATTERN",
    "IGNORED_EVENT_TYPES",
    "CommunicationAuthor",
    "CommunicationCreated",
    "ConversationUpdated",
    "IgnoredEvent",
    "WebhookEvent",
    "parse_webhook",
]

CONVERSATION_STATUSES: Final = frozenset({"ACTIVE", "INACTIVE", "CLOSED"})
#: event types that are well-formed but need no action
IGNORED_EVENT_TYPES: Final = frozenset({
    "CONVERSATION_CREATED",
    "CONVERSATION_DELETED",
    "COMMUNICATION_UPDATED",
    "COMMUNICATION_DELETED",
    "PARTICIPANT_ADDED",
    "PARTICIPANT_CREATED",
    "PARTICIPANT_UPDATED",
    "PARTICIPANT_REMOVED",
    "PARTICIPANT_DELETED",
})
#: the largest body accepted, in bytes (a text message is at most a few kB)
MAX_BODY_BYTES: Final = 1 << 20
#: what an id must look like (Twilio's are like ``conv_conversation_01hx...``)
ID_PATTERN: Final = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9._:@+=~-]{1,256}\Z")


@attrs.frozen(kw_only=True)
class CommunicationAuthor:
    """The author (or a recipient) of a communication; ``channel`` is upper-case."""

    address: str
    channel: str
    participant_id: str | None = None


@attrs.frozen(kw_only=True)
class _Content:
    text: str = ""
    type: str = "TEXT"


@attrs.frozen(kw_only=True)
class CommunicationCreated:
    """A new message in a conversation (``COMMUNICATION_CREATED``)."""

    id: str
    conversation_id: str
    author: CommunicationAuthor
    text: str
    content_type: str = "TEXT"
    recipients: tuple[CommunicationAuthor, ...] = ()
    channel_id: str | None = None
    account_id: str | None = None
    created_at: str | None = None


@attrs.frozen(kw_only=True)
class ConversationUpdated:
    """A conversation changed status (``CONVERSATION_UPDATED``)."""

    conversation_id: str
    status: str
    configuration_id: str | None = None
    name: str | None = None
    updated_at: str | None = None


@attrs.frozen
class IgnoredEvent:
    """A well-formed event that needs no action."""

    event_type: str


WebhookEvent: TypeAlias = CommunicationCreated | ConversationUpdated | IgnoredEvent


# -- the wire converter (camelCase keys, strict scalars) ----------------------------------


@attrs.frozen(kw_only=True)
class _Communication:
    id: str
    conversation_id: str
    author: CommunicationAuthor
    content: _Content
    recipients: tuple[CommunicationAuthor, ...] = ()
    channel_id: str | None = None
    account_id: str | None = None
    created_at: str | None = None


@attrs.frozen(kw_only=True)
class _Conversation:
    id: str
    status: str
    configuration_id: str | None = None
    name: str | None = None
    updated_at: str | None = None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(str, _strict_str)

    def tuple_of_authors(value: Any, _: Any) -> tuple[CommunicationAuthor, ...]:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return tuple(conv.structure(item, CommunicationAuthor) for item in value)

    conv.register_structure_hook_func(
        lambda tp: tp == tuple[CommunicationAuthor, ...], tuple_of_authors)
    for cls in (CommunicationAuthor, _Content, _Communication, _Conversation):
        renames = {f.name: override(rename=_camel(f.name)) for f in attrs.fields(cls)}
        hook = make_dict_structure_fn(cls, conv, **renames)  # type: ignore[arg-type]
        conv.register_structure_hook(cls, _objects_only(_drop_nulls(hook)))
    return conv


def _drop_nulls(hook: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, cls: Any) -> Any:
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
        return hook(value, cls)

    return structure


def _objects_only(hook: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, cls: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return hook(value, cls)

    return structure


_converter: Final = _make_converter()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        notes = cattrs.transform_error(exc)
        return "; ".join(notes[:3]) or str(exc)
    return str(exc)


# -- parsing --------------------------------------------------------------------------------


def parse_webhook(body: bytes | str) -> WebhookEvent:
    """Parse one Orchestrator webhook body. Raises :class:`ProtocolError` for anything
    that is not a well-formed event of a known type (see the module table)."""
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(f"webhook body larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"webhook body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("webhook body must be a JSON object")
    event_type = data.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise ProtocolError("webhook has no eventType")
    payload = data.get("data")
    if event_type in IGNORED_EVENT_TYPES:
        return IgnoredEvent(event_type)
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"{event_type} webhook has no data object")
    if event_type == "COMMUNICATION_CREATED":
        return _communication(payload)
    if event_type == "CONVERSATION_UPDATED":
        return _conversation(payload)
    raise ProtocolError(f"unknown webhook eventType {event_type[:60]!r}")


def _structure(payload: Mapping[str, Any], cls: type[Any], what: str) -> Any:
    try:
        return _converter.structure(payload, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(f"bad {what} webhook: {_describe(exc)}") from None


def _check_id(value: str | None, what: str, event_type: str) -> None:
    if value is not None and not ID_PATTERN.match(value):
        raise ProtocolError(f"{event_type} webhook: malformed {what} {value[:40]!r}")


def _communication(payload: Mapping[str, Any]) -> CommunicationCreated:
    raw: _Communication = _structure(payload, _Communication, "COMMUNICATION_CREATED")
    if not raw.id or not raw.conversation_id:
        raise ProtocolError("COMMUNICATION_CREATED webhook needs an id and a conversationId")
    if not raw.author.channel:
        raise ProtocolError("COMMUNICATION_CREATED webhook: author has no channel")
    _check_id(raw.id, "id", "COMMUNICATION_CREATED")
    _check_id(raw.conversation_id, "conversationId", "COMMUNICATION_CREATED")
    for author in (raw.author, *raw.recipients):
        _check_id(author.participant_id, "participantId", "COMMUNICATION_CREATED")
    return CommunicationCreated(
        id=raw.id, conversation_id=raw.conversation_id, author=raw.author,
        text=raw.content.text, content_type=raw.content.type, recipients=raw.recipients,
        channel_id=raw.channel_id, account_id=raw.account_id, created_at=raw.created_at,
    )


def _conversation(payload: Mapping[str, Any]) -> ConversationUpdated:
    raw: _Conversation = _structure(payload, _Conversation, "CONVERSATION_UPDATED")
    if not raw.id:
        raise ProtocolError("CONVERSATION_UPDATED webhook needs an id")
    _check_id(raw.id, "id", "CONVERSATION_UPDATED")
    if raw.status not in CONVERSATION_STATUSES:
        raise ProtocolError(f"CONVERSATION_UPDATED webhook: unknown status {raw.status[:30]!r}")
    return ConversationUpdated(conversation_id=raw.id, status=raw.status,
                               configuration_id=raw.configuration_id, name=raw.name,
                               updated_at=raw.updated_at)
