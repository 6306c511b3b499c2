"""What the emulator was asked to do, for tests: Python accessors and the
``/_emulator/...`` routes that serve the same data (no auth, never faulted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from quart import Blueprint

from tac_actors.emulator.common import json_object
from tac_actors.emulator.db import ApiError, Database
from tac_actors.emulator.faults import Faults
from tac_actors.emulator.intelligence import IntelligenceEmitter
from tac_actors.emulator.intelligence import add_routes as add_intelligence_routes

__all__ = [
    "RequestRecord",
    "blueprint",
    "call_events",
    "created_observations",
    "created_profiles",
    "created_summaries",
    "made_calls",
    "sent_messages",
    "studio_executions",
]


@attrs.frozen
class RequestRecord:
    """One product request as the emulator answered it."""

    method: str
    path: str
    product: str
    status: int

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def sent_messages(db: Database) -> list[dict[str, Any]]:
    """Every message sent, oldest first: Orchestrator ``SEND_MESSAGE`` actions
    (``via: "actions"``) and ``Messages.json`` sends (``via: "messages"``)."""
    sent: list[dict[str, Any]] = []
    for action in db.all("action"):
        payload = action["payload"]
        sent.append({
            "via": "actions",
            "id": action["id"],
            "conversationId": action["conversationId"],
            "from": payload.get("from"),
            "to": payload.get("to"),
            "text": (payload.get("content") or {}).get("text"),
            "channelSettings": payload.get("channelSettings"),
            "createdAt": action["createdAt"],
        })
    for message in db.all("message"):
        sent.append({
            "via": "messages",
            "id": message["sid"],
            "conversationId": None,
            "from": message["from"],
            "to": message["to"],
            "text": message["body"],
            "channelSettings": None,
            "createdAt": message["date_created"],
        })
    return sent


def studio_executions(db: Database) -> list[dict[str, Any]]:
    """Started Studio executions with their ``from`` and decoded ``parameters``."""
    return db.all("execution")


def made_calls(db: Database) -> list[dict[str, Any]]:
    """Outbound calls placed through ``Calls.json``, with their ``twiml``."""
    return db.all("call")


def call_events(db: Database) -> list[dict[str, Any]]:
    """Call callbacks the emulator delivered (or tried to): ``call_sid``, ``kind``
    (status, amd, recording), ``url``, ``form``, and ``status_code`` or ``error``."""
    return db.all("call_event")


def created_observations(db: Database) -> list[dict[str, Any]]:
    """Observations created through the API (not the seeded ones)."""
    return db.all("api_observation")


def created_summaries(db: Database) -> list[dict[str, Any]]:
    """Conversation summaries created through the API."""
    return db.all("api_summary")


def created_profiles(db: Database) -> list[dict[str, Any]]:
    """``POST /Profiles`` calls with the profile id each resolved to."""
    return db.all("api_profile")


def blueprint(db: Database, faults: Faults, journal: list[RequestRecord],
              emitter: IntelligenceEmitter | None = None) -> Blueprint:
    bp = Blueprint("inspect", __name__, url_prefix="/_emulator")
    if emitter is not None:
        add_intelligence_routes(bp, emitter)
    listings: dict[str, Callable[[Database], list[dict[str, Any]]]] = {
        "messages": sent_messages,
        "executions": studio_executions,
        "calls": made_calls,
        "call-events": call_events,
        "observations": created_observations,
        "summaries": created_summaries,
        "profiles": created_profiles,
    }

    @bp.get("/health")
    async def health() -> Any:
        return {"status": "ok"}

    @bp.get("/requests")
    async def requests() -> Any:
        return {"requests": [r.to_json() for r in journal]}

    @bp.get("/<name>")
    async def listing(name: str) -> Any:
        if name not in listings:
            raise ApiError(404, f"No emulator listing named {name}")
        return {name: listings[name](db)}

    @bp.get("/faults")
    async def get_faults() -> Any:
        return faults.to_json()

    @bp.post("/faults")
    async def set_faults() -> Any:
        try:
            faults.update(await json_object())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return faults.to_json()

    return bp
