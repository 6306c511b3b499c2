"""Conversation Intelligence operator-result webhooks, sans-IO.

Conversation Intelligence runs *operators* (a summary, a classification, an extraction,
a generated text, a JSON payload) over a conversation, in real time (trigger
``utterance``...) or once it is over (trigger ``conversation_closed``), and POSTs their
results as JSON: ``{"accountId", "conversationId", "memoryStoreId",
"intelligenceConfiguration": {"id", "version", ...}, "operatorResults": [...]}``. This
module turns the raw body into one frozen :class:`OperatorResultEvent` and offers the
pure helpers the processor needs (:func:`result_content`, :func:`summary_texts`); no
signature check, no I/O.

Promises: :func:`parse_operator_results` returns an event or raises
:class:`~tac_actors.protocol.errors.ProtocolError` (answered 400), for any input at all.
Field types are strict where we use the field (ids and the output format must be strings,
lists must be lists); ``result`` is kept as the JSON it came as (its shape depends on the
output format); unknown fields are tolerated; ``null`` counts as absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

from tac_actors.protocol.errors import ProtocolError

__all__ = [
    "MAX_OPERATOR_RESULTS",
    "ExecutionParticipant",
    "OperatorResult",
    "OperatorResultEvent",
    "parse_operator_results",
    "result_content",
    "summary_texts",
]

#: the most operator results one webhook may carry (more is a ProtocolError)
MAX_OPERATOR_RESULTS: Final = 100
_JSON_UNION_KEY: Final = "com.twilio.cai.intelligence.JSONResult"


@attrs.frozen(kw_only=True)
class ExecutionParticipant:
    """A participant of the analysed conversation; ``type`` is e.g. ``CUSTOMER``."""

    id: str
    type: str | None = None
    profile_id: str | None = None


@attrs.frozen(kw_only=True)
class OperatorResult:
    """One operator's result. ``operator_id`` is the operator's SID (``LY...``);
    ``output_format`` is upper-case (``JSON``, ``CLASSIFICATION``, ``EXTRACTION``,
    ``GENERATION``/``TEXT``); ``result`` is the raw JSON value; ``trigger`` is what ran
    it (``conversation_closed`` for a post-conversation result, ``utterance``... for a
    real-time one)."""

    id: str
    operator_id: str | None
    operator_name: str | None
    output_format: str
    result: Any
    date_created: str
    trigger: str | None = None
    channels: tuple[str, ...] = ()
    participants: tuple[ExecutionParticipant, ...] = ()
    reference_ids: tuple[str, ...] = ()

    @property
    def content(self) -> str | None:
        """The result as text (see :func:`result_content`)."""
        return result_content(self)

    @property
    def customer_profile_ids(self) -> tuple[str, ...]:
        """Memory profile ids of the CUSTOMER participants, in order."""
        return tuple(p.profile_id for p in self.participants
                     if p.profile_id and p.type == "CUSTOMER")

    @property
    def is_post_conversation(self) -> bool:
        return self.trigger == "conversation_closed"


@attrs.frozen(kw_only=True)
class OperatorResultEvent:
    """One webhook: every operator result of one execution over one conversation."""

    account_id: str
    conversation_id: str
    configuration_id: str
    configuration_version: int | None = None
    memory_store_id: str | None = None
    results: tuple[OperatorResult, ...] = ()


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"operator results: {what} must be an object")
    return value


def _text(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False
          ) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise ProtocolError(f"operator results: {where} lacks {key!r}")
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"operator results: {where}{key!r} must be a string")
    if required and not value:
        raise ProtocolError(f"operator results: {where}{key!r} is empty")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"operator results: {where}{key!r} must be a list")
    return value


def _participant(raw: Any) -> ExecutionParticipant:
    obj = _object(raw, "a participant")
    where = "participant "
    return ExecutionParticipant(id=_text(obj, "id", where, required=True) or "",
                                type=_text(obj, "type", where),
                                profile_id=_text(obj, "profileId", where))


def _result(raw: Any) -> OperatorResult:
    obj = _object(raw, "an operator result")
    where = "operator result "
    operator = _object(obj.get("operator") or {}, "operator")
    details = _object(obj.get("executionDetails") or {}, "executionDetails")
    trigger = _object(details.get("trigger") or {}, "executionDetails.trigger")
    channels = _list(details, "channels", "executionDetails ")
    if not all(isinstance(c, str) for c in channels):
        raise ProtocolError("operator results: channels must be strings")
    references = _list(obj, "referenceIds", where)
    if not all(isinstance(r, str) for r in references):
        raise ProtocolError("operator results: referenceIds must be strings")
    return OperatorResult(
        id=_text(obj, "id", where, required=True) or "",
        operator_id=_text(operator, "id", "operator "),
        operator_name=_text(operator, "friendlyName", "operator "),
        output_format=(_text(obj, "outputFormat", where, required=True) or "").upper(),
        result=obj.get("result"),
        date_created=_text(obj, "dateCreated", where) or "",
        trigger=_text(trigger, "on", "trigger "),
        channels=tuple(channels),
        participants=tuple(_participant(p)
                           for p in _list(details, "participants", "executionDetails ")),
        reference_ids=tuple(references),
    )


def parse_operator_results(body: bytes | str | Mapping[str, Any]) -> OperatorResultEvent:
    """Parse one operator-results webhook (raw bytes, text, or already-decoded JSON)."""
    if isinstance(body, (bytes, str)):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise ProtocolError("operator results: the body is not JSON") from None
    else:
        data = body
    obj = _object(data, "the body")
    configuration = _object(obj.get("intelligenceConfiguration"),
                            "intelligenceConfiguration")
    version = configuration.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise ProtocolError("operator results: intelligenceConfiguration 'version' must be "
                            "an integer")
    results = obj.get("operatorResults")
    if not isinstance(results, list):
        raise ProtocolError("operator results: 'operatorResults' must be a list")
    if len(results) > MAX_OPERATOR_RESULTS:
        raise ProtocolError(f"operator results: more than {MAX_OPERATOR_RESULTS} results")
    return OperatorResultEvent(
        account_id=_text(obj, "accountId", "", required=True) or "",
        conversation_id=_text(obj, "conversationId", "", required=True) or "",
        configuration_id=_text(configuration, "id", "intelligenceConfiguration ",
                               required=True) or "",
        configuration_version=version,
        memory_store_id=_text(obj, "memoryStoreId", ""),
        results=tuple(_result(r) for r in results),
    )


def _dumps(value: Any) -> str | None:
    return json.dumps(value) if value else None


def result_content(result: OperatorResult) -> str | None:
    """The result as text, by output format (``None`` when empty): a JSON operator's
    ``payload`` string, a classification's ``label``, an extraction's ``entities`` as
    JSON, a generated text's ``result``; anything else as JSON."""
    value = result.result
    kind = result.output_format
    if kind == "JSON":
        if isinstance(value, dict):
            if "payload" in value:
                return str(value["payload"])
            nested = value.get(_JSON_UNION_KEY)
            if isinstance(nested, dict) and "payload" in nested:
                return str(nested["payload"])
        return _dumps(value)
    if kind == "CLASSIFICATION":
        if isinstance(value, dict) and "label" in value:
            return str(value["label"])
        return str(value) if value else None
    if kind == "EXTRACTION":
        if isinstance(value, dict) and "entities" in value:
            return json.dumps(value["entities"])
        return _dumps(value)
    if kind in ("TEXT", "GENERATION"):
        if isinstance(value, dict) and "result" in value:
            return str(value["result"])
        return str(value) if value else None
    return _dumps(value)


def summary_texts(content: str) -> list[str]:
    """The summaries in a summary operator's content: ``{"summaries": [{"summary":
    ...}, ...]}``, ``{"summary": ...}``, or else the whole content as one summary."""
    try:
        payload = json.loads(content)
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        listed = payload.get("summaries")
        if isinstance(listed, list):
            found = [str(s["summary"]) for s in listed
                     if isinstance(s, dict) and s.get("summary")]
            if found:
                return found
        if payload.get("summary"):
            return [str(payload["summary"])]
    return [content] if content else []
