"""Conversation Intelligence, emulated: operator results after a conversation ends.

When a conversation of the emulator becomes CLOSED (``PUT /v2/Conversations/{id}`` with
``status: CLOSED``, or :meth:`IntelligenceEmitter.conversation_closed`), two operators
"run" over its stored communications, deterministically (no model):

* the **summary** operator (:data:`SUMMARY_OPERATOR_SID`, output format ``JSON``,
  payload ``{"summary": ...}``): who wrote how many messages, the first question and
  the last answer;
* a **sentiment** classification (:data:`SENTIMENT_OPERATOR_SID`, ``CLASSIFICATION``,
  label ``positive``/``negative``/``neutral`` from a few keywords of the customer's
  texts).

The event (the real webhook's JSON: ``accountId``, ``conversationId``,
``memoryStoreId``, ``intelligenceConfiguration``, ``operatorResults`` with the
participants and their profile ids) is recorded (``GET /_emulator/intelligence``) and,
when a target is set (:meth:`IntelligenceEmitter.set_target`, done by ``tac-actors
dev``), POSTed to it signed as Twilio signs JSON webhooks (``bodySHA256`` +
``X-Twilio-Signature``). Delivery runs in the emulator's own task group while it serves
(:meth:`~tac_actors.emulator.Emulator.running`); each delivery is bounded by
:data:`DELIVERY_TIMEOUT` and its outcome recorded. ``POST
/_emulator/intelligence/{conversation_id}`` runs the operators on demand (any status).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import trio
from quart import Blueprint

from tac_actors.emulator.db import ApiError, Database, now_iso
from tac_actors.protocol.signature import body_sha256, compute_signature

__all__ = [
    "CONFIGURATION_ID",
    "SENTIMENT_OPERATOR_SID",
    "SUMMARY_OPERATOR_SID",
    "IntelligenceEmitter",
    "operator_results",
]

log = logging.getLogger("tac_actors.emulator")

#: the emulator's intelligence configuration and operators (what ``tac-actors dev`` sets
#: as ``CONVERSATION_INTELLIGENCE_*``)
CONFIGURATION_ID = "GA" + "0" * 31 + "1"
SUMMARY_OPERATOR_SID = "LY" + "0" * 31 + "2"
SENTIMENT_OPERATOR_SID = "LY" + "0" * 31 + "3"
#: seconds one delivery may take
DELIVERY_TIMEOUT = 10.0
_POSITIVE = ("thank", "great", "perfect", "awesome", "love", "helpful", "excellent")
_NEGATIVE = ("angry", "terrible", "awful", "bad", "broken", "not working", "refund",
             "complain", "upset", "worst")


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _sides(db: Database, conversation_id: str) -> tuple[list[str], list[str],
                                                         list[dict[str, Any]]]:
    participants = db.all("participant", parent=conversation_id)
    types = {p["id"]: p.get("type") for p in participants}
    customers: list[str] = []
    agents: list[str] = []
    for c in db.all("communication", parent=conversation_id):
        author = c.get("author") or {}
        kind = types.get(author.get("participantId") or "")
        if kind is None:
            held = next((p for p in participants if any(
                a["address"] == author.get("address") for a in p["addresses"])), None)
            kind = held.get("type") if held else "CUSTOMER"
        text = (c.get("content") or {}).get("text") or ""
        (agents if kind in ("AI_AGENT", "AGENT", "HUMAN_AGENT") else customers).append(text)
    return customers, agents, participants


def _summary(customers: list[str], agents: list[str]) -> str:
    if not customers and not agents:
        return "An empty conversation: nothing was said."
    parts = [f"The customer wrote {len(customers)} message(s)"]
    if customers:
        parts[0] += f", starting with \u201c{_clip(customers[0])}\u201d"
    if agents:
        parts.append(f"the agent answered {len(agents)} time(s), last with "
                     f"\u201c{_clip(agents[-1])}\u201d")
    else:
        parts.append("the agent never answered")
    return "; ".join(parts) + "."


def _sentiment(customers: list[str]) -> str:
    text = " ".join(customers).lower()
    score = sum(w in text for w in _POSITIVE) - sum(w in text for w in _NEGATIVE)
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def operator_results(db: Database, conversation_id: str, account_sid: str, *,
                     trigger: str = "conversation_closed") -> dict[str, Any]:
    """The operator-results webhook body for one conversation (raises
    :class:`ApiError` 404 for an unknown conversation)."""
    conversation = db.get("conversation", conversation_id)
    if conversation is None:
        raise ApiError(404, f"Conversation {conversation_id} was not found")
    configuration = db.get("configuration", conversation.get("configurationId") or "") or {}
    customers, agents, participants = _sides(db, conversation_id)
    now = now_iso()
    channels = sorted({a["channel"] for p in participants for a in p["addresses"]})
    details = {
        "trigger": {"on": trigger, "timestamp": now},
        "channels": channels,
        "participants": [{"id": p["id"], "type": p.get("type"),
                          "profileId": p.get("profileId")} for p in participants],
    }
    stamp = f"{conversation_id}_{len(customers) + len(agents)}"
    return {
        "accountId": account_sid,
        "conversationId": conversation_id,
        "memoryStoreId": configuration.get("memoryStoreId"),
        "intelligenceConfiguration": {"id": CONFIGURATION_ID, "version": 1,
                                      "friendlyName": "Emulated intelligence"},
        "operatorResults": [
            {"id": f"intelligence_operatorresult_summary_{stamp}",
             "operator": {"id": SUMMARY_OPERATOR_SID, "friendlyName": "Summary",
                          "version": 1},
             "outputFormat": "JSON",
             "result": {"payload": json.dumps({"summary": _summary(customers, agents)})},
             "dateCreated": now, "referenceIds": [], "executionDetails": details},
            {"id": f"intelligence_operatorresult_sentiment_{stamp}",
             "operator": {"id": SENTIMENT_OPERATOR_SID, "friendlyName": "Sentiment",
                          "version": 1},
             "outputFormat": "CLASSIFICATION",
             "result": {"label": _sentiment(customers)},
             "dateCreated": now, "referenceIds": [], "executionDetails": details},
        ],
    }


class IntelligenceEmitter:
    """Produces and delivers operator-result events (see the module docstring)."""

    def __init__(self, db: Database, account_sid: str,
                 on_change: Callable[[], None] | None = None) -> None:
        self._db = db
        self._account = account_sid
        self._on_change = on_change
        self._target: tuple[str, str | None] | None = None
        #: set by :meth:`Emulator.running` while it serves
        self.nursery: trio.Nursery | None = None

    def set_target(self, url: str | None, auth_token: str | None = None) -> None:
        """Deliver future events to ``url`` (``None``: record them only), signed with
        ``auth_token`` when given."""
        self._target = (url, auth_token) if url else None

    def events(self) -> list[dict[str, Any]]:
        """Every event produced, oldest first, with its ``delivery`` outcome."""
        return self._db.all("intelligence_event")

    def conversation_closed(self, conversation_id: str) -> dict[str, Any]:
        """Run the operators over ``conversation_id``, record the event and deliver it
        in the background (when a target is set and the emulator serves)."""
        payload = operator_results(self._db, conversation_id, self._account)
        record = {"id": self._db.new_id("intelligence_event"), "payload": payload,
                  "delivery": "not delivered (no target)"}
        self._db.put("intelligence_event", record)
        if self._target is not None and self.nursery is not None:
            record["delivery"] = "pending"
            self._db.put("intelligence_event", record)
            self.nursery.start_soon(self._deliver, record, *self._target)
        return payload

    async def _deliver(self, record: dict[str, Any], url: str, token: str | None) -> None:
        body = json.dumps(record["payload"]).encode()
        signed_url = f"{url}{'&' if '?' in url else '?'}bodySHA256={body_sha256(body)}"
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Twilio-Signature"] = compute_signature(token, signed_url)
        try:
            with trio.fail_after(DELIVERY_TIMEOUT):
                async with httpx.AsyncClient() as client:
                    response = await client.post(signed_url, content=body, headers=headers)
            record["delivery"] = f"HTTP {response.status_code}"
            record["answer"] = response.text[:1000]
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            record["delivery"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
            log.warning("intelligence event for %s not delivered to %s: %s",
                        record["payload"]["conversationId"], url, record["delivery"])
        self._db.put("intelligence_event", record)
        if self._on_change is not None:
            self._on_change()


def add_routes(bp: Blueprint, emitter: IntelligenceEmitter) -> None:
    """``GET /_emulator/intelligence`` and ``POST /_emulator/intelligence/{id}`` on the
    inspection blueprint."""

    @bp.get("/intelligence")
    async def intelligence_events() -> Any:
        return {"intelligence": emitter.events()}

    @bp.post("/intelligence/<conversation_id>")
    async def run_operators(conversation_id: str) -> Any:
        return emitter.conversation_closed(conversation_id)


def closed_hook(emitter: IntelligenceEmitter) -> Callable[[Mapping[str, Any]], None]:
    """What the Orchestrator routes call when a conversation's status changes."""
    def changed(conversation: Mapping[str, Any]) -> None:
        if conversation.get("status") == "CLOSED":
            emitter.conversation_closed(str(conversation["id"]))
    return changed
