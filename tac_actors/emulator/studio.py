"""Studio executions and Programmable Messaging, emulated (form-encoded requests,
snake_case answers, as in Twilio's classic APIs). Both record what they were asked to
do, for tests to inspect. Outbound calls: :mod:`tac_actors.emulator.calls`."""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, request

from tac_actors.emulator.db import ApiError, Database, now_iso

__all__ = ["blueprint"]


async def _form() -> dict[str, str]:
    form = await request.form
    return {key: form[key] for key in form}


def _required(form: dict[str, str], key: str) -> str:
    value = form.get(key, "")
    if not value:
        raise ApiError(400, f"Missing required parameter {key} in the post body", code=21604
                       if key == "To" else 20001)
    return value


def blueprint(db: Database, account_sid: str) -> Blueprint:
    bp = Blueprint("studio", __name__)

    @bp.post("/v2/Flows/<flow_sid>/Executions")
    async def create_execution(flow_sid: str) -> Any:
        form = await _form()
        to, sender = _required(form, "To"), _required(form, "From")
        parameters: Any = None
        if "Parameters" in form:
            try:
                parameters = json.loads(form["Parameters"])
            except ValueError:
                raise ApiError(400, "Parameters must be a JSON object") from None
            if not isinstance(parameters, dict):
                raise ApiError(400, "Parameters must be a JSON object")
        sid = db.new_id("FN")
        execution = {
            "sid": sid,
            "account_sid": account_sid,
            "flow_sid": flow_sid,
            "contact_channel_address": to,
            "contact_sid": None,
            "status": "active",
            "context": {"flow": {"data": parameters or {}}},
            "date_created": now_iso(),
            "date_updated": None,
            "url": f"https://studio.twilio.com/v2/Flows/{flow_sid}/Executions/{sid}",
        }
        db.put("execution", {**execution, "from": sender, "parameters": parameters},
               parent=flow_sid, doc_id=sid)
        return execution, 201

    @bp.post("/2010-04-01/Accounts/<account>/Messages.json")
    async def create_message(account: str) -> Any:
        form = await _form()
        to = _required(form, "To")
        sender = form.get("From") or form.get("MessagingServiceSid") or ""
        if not sender:
            raise ApiError(400, "A 'From' phone number is required.", code=21603)
        body = form.get("Body", "")
        if not body and "MediaUrl" not in form:
            raise ApiError(400, "Message body is required.", code=21602)
        message = {
            "sid": db.new_id("SM"),
            "account_sid": account,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "date_created": now_iso(),
            "num_segments": "1",
        }
        db.put("message", message, parent=account, doc_id=message["sid"])
        return message, 201

    return bp
