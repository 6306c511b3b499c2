"""Conversation Orchestrator, emulated: configurations, conversations, participants,
communications and the Actions API.

Behaviour worth knowing:

- creating a conversation whose participants' addresses are all held by an ACTIVE
  conversation of the same configuration answers 409 with ``X-Conflicting-Resource-Id``;
- a CUSTOMER participant without a ``profileId`` gets the Memory profile its address
  resolves to in the configuration's store, as the real identity resolution would;
- ``SEND_MESSAGE`` answers 202, is recorded (see ``Emulator.sent_messages``) and appends
  the message to the conversation's communications, authored by the sender;
- ``SEND_MESSAGE`` honours ``I-Twilio-Idempotency-Token``: a repeated token answers the
  action it first created (202 again) and sends nothing, for as long as the emulator
  lives (Twilio keeps tokens for a while, which is what a replayed turn relies on);
- the ``sendLostReply`` fault records a send and then answers 500, as a lost answer
  would: only the idempotency token keeps its retry from sending twice;
- lists page with ``pageSize``/``pageToken`` and answer ``meta``; ``status`` may repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from quart import Blueprint, request

from tac_actors.emulator import memory
from tac_actors.emulator.common import json_object, optional_str, page, required_str
from tac_actors.emulator.db import ApiError, Database, now_iso
from tac_actors.emulator.faults import Faults

__all__ = ["add_communication", "add_participant", "blueprint", "create_conversation"]

STATUSES = ("ACTIVE", "INACTIVE", "CLOSED")
PARTICIPANT_TYPES = ("CUSTOMER", "AI_AGENT", "AGENT", "HUMAN_AGENT", "UNKNOWN")


def _addresses(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError(400, "addresses must be a list")
    result = []
    for item in raw:
        if not isinstance(item, dict):
            raise ApiError(400, "each address must be an object")
        address = {
            "channel": required_str(item, "channel", where="addresses[]."),
            "address": required_str(item, "address", where="addresses[]."),
        }
        channel_id = optional_str(item, "channelId", where="addresses[].")
        if channel_id:
            address["channelId"] = channel_id
        result.append(address)
    return result


def _store_of(db: Database, conversation: Mapping[str, Any]) -> str | None:
    configuration = db.get("configuration", conversation.get("configurationId") or "")
    return configuration.get("memoryStoreId") if configuration else None


def add_participant(db: Database, conversation: Mapping[str, Any], data: Mapping[str, Any],
                    *, participant_id: str | None = None) -> dict[str, Any]:
    """Validate and store a participant of ``conversation``."""
    kind = optional_str(data, "type")
    if kind is not None and kind not in PARTICIPANT_TYPES:
        raise ApiError(400, f"Unknown participant type {kind}")
    addresses = _addresses(data.get("addresses"))
    profile_id = optional_str(data, "profileId")
    store_id = _store_of(db, conversation)
    if kind == "CUSTOMER" and profile_id is None and store_id and addresses:
        profile_id = memory.resolve_address(db, store_id, addresses[0]["address"])
    now = now_iso()
    participant = {
        "id": participant_id or data.get("id") or db.new_id("conv_participant"),
        "conversationId": conversation["id"],
        "accountId": conversation["accountId"],
        "name": optional_str(data, "name") or (addresses[0]["address"] if addresses else ""),
        "type": kind,
        "profileId": profile_id,
        "addresses": addresses,
        "createdAt": now,
        "updatedAt": now,
    }
    db.put("participant", participant, parent=conversation["id"])
    return participant


def create_conversation(
    db: Database, account_sid: str, configuration_id: str, *, name: str | None = None,
    participants: Sequence[Mapping[str, Any]] = (), status: str = "ACTIVE",
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """Store a conversation and its inline participants (no 409 check)."""
    now = now_iso()
    conversation = {
        "id": conversation_id or db.new_id("conv_conversation"),
        "accountId": account_sid,
        "configurationId": configuration_id,
        "status": status,
        "name": name,
        "createdAt": now,
        "updatedAt": now,
    }
    db.put("conversation", conversation)
    for participant in participants:
        add_participant(db, conversation, participant)
    return conversation


def add_communication(
    db: Database, conversation: Mapping[str, Any], *, author: Mapping[str, Any],
    text: str, recipients: Sequence[Mapping[str, Any]] = (), channel_id: str | None = None,
    created_at: str | None = None, communication_id: str | None = None,
) -> dict[str, Any]:
    """Append a TEXT communication to ``conversation``."""
    now = now_iso()
    communication = {
        "id": communication_id or db.new_id("conv_communication"),
        "conversationId": conversation["id"],
        "accountId": conversation["accountId"],
        "author": dict(author),
        "content": {"type": "TEXT", "text": text},
        "recipients": [dict(r) for r in recipients],
        "channelId": channel_id,
        "createdAt": created_at or now,
        "updatedAt": created_at or now,
    }
    db.put("communication", communication, parent=conversation["id"])
    return communication


def _conversation(db: Database, conversation_id: str) -> dict[str, Any]:
    conversation = db.get("conversation", conversation_id)
    if conversation is None:
        raise ApiError(404, f"Conversation {conversation_id} was not found")
    return conversation


def _conflict(db: Database, configuration_id: str,
              participants: Sequence[Mapping[str, Any]]) -> str | None:
    wanted = {(a["channel"], a["address"]) for p in participants
              for a in _addresses(p.get("addresses"))}
    if not wanted:
        return None
    for conversation in db.all("conversation"):
        if (conversation["status"] != "ACTIVE"
                or conversation["configurationId"] != configuration_id):
            continue
        members = db.all("participant", parent=conversation["id"])
        held = {(a["channel"], a["address"]) for p in members for a in p["addresses"]}
        if wanted <= held:
            return str(conversation["id"])
    return None


def _participant_ref(db: Database, conversation_id: str, ref: Any) -> dict[str, Any]:
    """Resolve an action's ``from``/``to`` entry to a communication participant."""
    if not isinstance(ref, dict):
        raise ApiError(400, "from and to entries must be objects")
    channel = required_str(ref, "channel", where="payload.")
    participant_id = optional_str(ref, "participantId")
    address = optional_str(ref, "address")
    participants = db.all("participant", parent=conversation_id)
    for p in participants:
        if participant_id and p["id"] == participant_id:
            held = next((a for a in p["addresses"] if a["channel"] == channel), None)
            return {"participantId": p["id"], "channel": channel,
                    "address": held["address"] if held else (address or "")}
    if participant_id:
        raise ApiError(400, f"Participant {participant_id} is not in this conversation")
    if not address:
        raise ApiError(400, "An action participant needs participantId or address")
    for p in participants:
        if any(a["channel"] == channel and a["address"] == address for a in p["addresses"]):
            return {"participantId": p["id"], "channel": channel, "address": address}
    return {"channel": channel, "address": address}


IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


def blueprint(db: Database, account_sid: str, faults: Faults | None = None, *,
              on_status: Callable[[Mapping[str, Any]], None] | None = None) -> Blueprint:
    """The Orchestrator routes; ``on_status`` is called after a conversation's status
    was changed by ``PUT /v2/Conversations/{id}`` (Conversation Intelligence runs on
    CLOSED)."""
    bp = Blueprint("orchestrator", __name__)

    @bp.get("/v2/ControlPlane/Configurations/<configuration_id>")
    async def get_configuration(configuration_id: str) -> Any:
        found = db.get("configuration", configuration_id)
        if found is None:
            raise ApiError(404, f"Configuration {configuration_id} was not found")
        return found

    @bp.get("/v2/Conversations")
    async def list_conversations() -> Any:
        statuses = set(request.args.getlist("status"))
        channel_id = request.args.get("channelId")
        items = [c for c in db.all("conversation") if not statuses or c["status"] in statuses]
        if channel_id:
            items = [c for c in items if _has_channel_id(db, c["id"], channel_id)]
        return page(items, "conversations")

    @bp.post("/v2/Conversations")
    async def create() -> Any:
        body = await json_object()
        configuration_id = required_str(body, "configurationId")
        if db.get("configuration", configuration_id) is None:
            raise ApiError(400, f"Unknown configurationId {configuration_id}")
        participants = body.get("participants") or []
        if not isinstance(participants, list) or not all(isinstance(p, dict) for p in participants):
            raise ApiError(400, "participants must be a list of objects")
        existing = _conflict(db, configuration_id, participants)
        if existing:
            raise ApiError(409, "An active conversation with these participants exists",
                           headers={"X-Conflicting-Resource-Id": existing})
        conversation = create_conversation(db, account_sid, configuration_id,
                                           name=optional_str(body, "name"),
                                           participants=participants)
        return conversation, 201

    @bp.get("/v2/Conversations/<conversation_id>")
    async def get_conversation(conversation_id: str) -> Any:
        return _conversation(db, conversation_id)

    @bp.put("/v2/Conversations/<conversation_id>")
    async def update(conversation_id: str) -> Any:
        conversation = _conversation(db, conversation_id)
        body = await json_object()
        status = required_str(body, "status")
        if status not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
        changed = conversation["status"] != status
        conversation.update(status=status, updatedAt=now_iso())
        if "name" in body:
            conversation["name"] = optional_str(body, "name")
        stored = db.put("conversation", conversation)
        if changed and on_status is not None:
            on_status(stored)
        return stored

    @bp.patch("/v2/Conversations/<conversation_id>")
    async def patch(conversation_id: str) -> Any:
        conversation = _conversation(db, conversation_id)
        body = await json_object()
        if not isinstance(body.get("configuration", {}), dict):
            raise ApiError(400, "configuration must be an object")
        conversation["configuration"] = body.get("configuration", {})
        conversation["updatedAt"] = now_iso()
        return db.put("conversation", conversation)

    @bp.get("/v2/Conversations/<conversation_id>/Participants")
    async def list_participants(conversation_id: str) -> Any:
        _conversation(db, conversation_id)
        return page(db.all("participant", parent=conversation_id), "participants")

    @bp.post("/v2/Conversations/<conversation_id>/Participants")
    async def create_participant(conversation_id: str) -> Any:
        conversation = _conversation(db, conversation_id)
        return add_participant(db, conversation, await json_object()), 201

    @bp.put("/v2/Conversations/<conversation_id>/Participants/<participant_id>")
    async def update_participant(conversation_id: str, participant_id: str) -> Any:
        conversation = _conversation(db, conversation_id)
        current = db.get("participant", participant_id)
        if current is None or current["conversationId"] != conversation_id:
            raise ApiError(404, f"Participant {participant_id} was not found")
        replaced = add_participant(db, conversation, await json_object(),
                                   participant_id=participant_id)
        replaced["createdAt"] = current["createdAt"]
        return db.put("participant", replaced, parent=conversation_id)

    @bp.get("/v2/Conversations/<conversation_id>/Communications")
    async def list_communications(conversation_id: str) -> Any:
        _conversation(db, conversation_id)
        items = db.all("communication", parent=conversation_id)
        channel_id = request.args.get("channelId")
        if channel_id:
            items = [c for c in items if c.get("channelId") == channel_id]
        return page(items, "communications")

    @bp.post("/v2/Conversations/<conversation_id>/Communications")
    async def create_communication(conversation_id: str) -> Any:
        conversation = _conversation(db, conversation_id)
        body = await json_object()
        author = _participant_ref(db, conversation_id, body.get("author"))
        content = body.get("content")
        if not isinstance(content, dict):
            raise ApiError(400, "Missing required parameter content")
        recipients = [_participant_ref(db, conversation_id, r)
                      for r in body.get("recipients") or []]
        return add_communication(db, conversation, author=author,
                                 text=required_str(content, "text", where="content."),
                                 recipients=recipients,
                                 channel_id=optional_str(body, "channelId")), 201

    @bp.post("/v2/Conversations/<conversation_id>/Actions")
    async def create_action(conversation_id: str) -> Any:
        conversation = _conversation(db, conversation_id)
        token = request.headers.get(IDEMPOTENCY_HEADER)
        body = await json_object()
        # the token is checked after the last await of this handler: two owners of one
        # conversation (a lease taken over after a pause) may send the same key at once
        if token:
            first = db.get("action_token", f"{conversation_id}:{token}")
            if first is not None:
                db.put("action_replay", {"id": db.new_id("conv_replay"), "token": token,
                                         "actionId": first["action"]["id"]})
                return first["action"], 202
        if body.get("type") != "SEND_MESSAGE":
            raise ApiError(400, "type must be SEND_MESSAGE")
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise ApiError(400, "Missing required parameter payload")
        sender = _participant_ref(db, conversation_id, payload.get("from"))
        to = payload.get("to")
        if not isinstance(to, list) or not to:
            raise ApiError(400, "payload.to must list at least one recipient")
        recipients = [_participant_ref(db, conversation_id, r) for r in to]
        content = payload.get("content")
        if not isinstance(content, dict):
            raise ApiError(400, "Missing required parameter payload.content")
        text = required_str(content, "text", where="payload.content.")
        settings = payload.get("channelSettings") or {}
        channel_id = settings.get("channelId") if isinstance(settings, dict) else None
        add_communication(db, conversation, author=sender, text=text, recipients=recipients,
                          channel_id=channel_id)
        action = {
            "id": db.new_id("conv_action"),
            "type": "SEND_MESSAGE",
            "status": "COMPLETED",
            "conversationId": conversation_id,
            "createdAt": now_iso(),
        }
        db.put("action", {**action, "payload": payload, "idempotencyToken": token},
               parent=conversation_id)
        if token:
            db.put("action_token", {"id": f"{conversation_id}:{token}", "action": action})
        if faults is not None and faults.roll_lost_reply():
            raise ApiError(500, "Internal Server Error (emulated, after the send)", code=20500)
        return action, 202

    return bp


def _has_channel_id(db: Database, conversation_id: str, channel_id: str) -> bool:
    return any(
        a.get("channelId") == channel_id
        for p in db.all("participant", parent=conversation_id) for a in p["addresses"]
    ) or any(c.get("channelId") == channel_id
             for c in db.all("communication", parent=conversation_id))
