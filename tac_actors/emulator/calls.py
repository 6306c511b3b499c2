"""Outbound calls, emulated: ``Calls.json`` records a call, and the call's callbacks are
played back to the URLs it was placed with, signed as Twilio signs them.

The emulator carries no audio and dials no WebSocket: what it plays is a call's life as
the callbacks tell it, scripted per number (:class:`CallScript`):

* ``initiated`` and ``ringing`` status callbacks, when the call asked for them
  (``StatusCallbackEvent``);
* an unreached call (``busy``, ``no-answer``, ``failed``, ``canceled``) ends there, with
  that final status;
* an answered call: ``in-progress`` (when ``answered`` was asked for), then the AMD
  result (``AsyncAmdStatusCallback``, when the call asked for machine detection), then,
  once the call is hung up (``POST Calls/{sid}.json`` with ``Status=completed``) or its
  scripted ``duration`` has passed, the ``completed`` status with ``CallDuration``, and
  with ``Record=true`` a ``completed`` recording callback.

Every callback is a form POST with ``X-Twilio-Signature`` computed with the emulator's
auth token over the URL and the form (``Emulator.auth_token``; configure the server
with it to have signatures checked). Callbacks are delivered while the emulator is
served (:meth:`Emulator.running`), one call's in order, each with a 15 s timeout and no
retry (Twilio's defaults); every attempt is recorded (``Emulator.call_events()``).
At most :data:`MAX_PENDING` calls wait to be played; past that a call's callbacks are
dropped and a warning is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import httpx
import trio
from quart import Blueprint, request

from tac_actors.emulator.db import ApiError, Database, now_iso
from tac_actors.protocol.signature import compute_signature

__all__ = ["DEFAULT_AUTH_TOKEN", "MAX_PENDING", "CallScript", "CallSimulator", "blueprint"]

log = logging.getLogger("tac_actors.emulator")

#: the auth token the emulator signs callbacks with, unless it is given another
DEFAULT_AUTH_TOKEN: Final = "emulator-auth-token"
MAX_PENDING: Final = 1000
#: Twilio waits this long for a callback's answer
CALLBACK_TIMEOUT: Final = 15.0
UNREACHED: Final = frozenset({"busy", "no-answer", "failed", "canceled"})
FINAL: Final = UNREACHED | {"completed"}


@attrs.frozen(kw_only=True)
class CallScript:
    """What happens to a call placed to one number.

    ``status``: ``completed`` (answered) or an unreached status. ``answered_by``: the AMD
    result (``human``, ``machine_start``, ``machine_end_beep``, ``fax``, ``unknown``...).
    ``duration``: seconds an answered call lasts before it completes on its own
    (``None``: until it is hung up). ``recording_duration``: seconds of the recording.
    """

    status: str = "completed"
    answered_by: str = "human"
    duration: float | None = None
    recording_duration: int = 5

    def __attrs_post_init__(self) -> None:
        if self.status not in FINAL:
            raise ValueError(f"a call ends completed or unreached {sorted(UNREACHED)}, "
                             f"not {self.status!r}")


class CallSimulator:
    """Plays the callbacks of the calls the emulator records (see the module)."""

    def __init__(self, db: Database, *, auth_token: str,
                 on_record: Callable[[], None] | None = None) -> None:
        self.db = db
        #: called after each callback attempt is recorded (the emulator wakes waiters)
        self.on_record = on_record
        self.auth_token = auth_token
        #: scripts by called number; other numbers get ``default``
        self.scripts: dict[str, CallScript] = {}
        self.default = CallScript()
        self._send, self._receive = trio.open_memory_channel[dict[str, Any]](MAX_PENDING)
        self._hung_up: dict[str, trio.Event] = {}
        self.dropped = 0

    def script(self, to: str) -> CallScript:
        return self.scripts.get(to, self.default)

    # -- what the Calls API handlers call ------------------------------------------------

    def placed(self, call: Mapping[str, Any]) -> None:
        """A call was created: queue its life (synchronous, never blocks)."""
        self._hung_up[call["sid"]] = trio.Event()
        try:
            self._send.send_nowait(dict(call))
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("emulator: %d calls already wait to be played; the callbacks of "
                        "%s are dropped", MAX_PENDING, call["sid"])

    def hang_up(self, sid: str) -> None:
        """The app ended the call (``Status=completed``)."""
        event = self._hung_up.get(sid)
        if event is not None:
            event.set()

    # -- playing -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Play queued calls until cancelled, each in its own task."""
        async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT) as client, \
                trio.open_nursery() as nursery:
            task_status.started()
            async for call in self._receive:
                nursery.start_soon(self._play, client, call)

    async def _play(self, client: httpx.AsyncClient, call: dict[str, Any]) -> None:
        sid = call["sid"]
        script = self.script(call["to"])
        asked = set(call.get("status_callback_event") or ())
        started = trio.current_time()

        async def status(value: str, **extra: str) -> None:
            self._set_status(sid, value)
            await self._post(client, call, "status", call.get("status_callback"),
                             {"CallStatus": value, **extra})

        if "initiated" in asked:
            await status("initiated")
        if "ringing" in asked:
            await status("ringing")
        if script.status in UNREACHED:
            await status(script.status, CallDuration="0")
            return
        self._set_status(sid, "in-progress")
        if "answered" in asked:
            await status("in-progress")
        if call.get("machine_detection") and call.get("amd_callback"):
            await self._post(client, call, "amd", call["amd_callback"], {
                "AnsweredBy": script.answered_by, "MachineDetectionDuration": "2100"})
        hung_up = self._hung_up[sid]
        if script.duration is None:
            await hung_up.wait()
        else:
            with trio.move_on_after(script.duration):
                await hung_up.wait()
        self._hung_up.pop(sid, None)
        await status("completed", CallDuration=str(int(trio.current_time() - started)))
        if call.get("record") and call.get("recording_callback"):
            recording = self.db.new_id("RE")
            await self._post(client, call, "recording", call["recording_callback"], {
                "RecordingSid": recording, "RecordingStatus": "completed",
                "RecordingDuration": str(script.recording_duration),
                "RecordingChannels": "1", "RecordingSource": "OutboundAPI",
                "RecordingUrl": (f"https://api.twilio.com/2010-04-01/Accounts/"
                                 f"{call['account_sid']}/Recordings/{recording}")})

    def _set_status(self, sid: str, status: str) -> None:
        doc = self.db.get("call", sid)
        if doc is not None:
            doc["status"] = status
            self.db.put("call", doc, parent=doc["account_sid"], doc_id=sid)

    async def _post(self, client: httpx.AsyncClient, call: Mapping[str, Any], kind: str,
                    url: str | None, fields: Mapping[str, str]) -> None:
        if not url:
            await trio.lowlevel.checkpoint()
            return
        form = {"AccountSid": call["account_sid"], "CallSid": call["sid"],
                "From": call["from"], "To": call["to"], "Direction": "outbound-api",
                "ApiVersion": "2010-04-01", "Timestamp": now_iso(), **fields}
        signature = compute_signature(self.auth_token, url, form)
        record: dict[str, Any] = {"call_sid": call["sid"], "kind": kind, "url": url,
                                  "form": form}
        try:
            response = await client.post(url, data=form,
                                         headers={"X-Twilio-Signature": signature})
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("emulator: %s callback of %s to %s failed: %s", kind, call["sid"],
                        url, exc)
        else:
            record["status_code"] = response.status_code
        self.db.put("call_event", record, parent=call["sid"],
                    doc_id=self.db.new_id("EV"))
        if self.on_record is not None:
            self.on_record()


def _list(form: Any, key: str) -> list[str]:
    """A repeated parameter; a single value may also list them space-separated."""
    values: list[str] = form.getlist(key)
    return [part for value in values for part in value.split()]


def blueprint(db: Database, simulator: CallSimulator) -> Blueprint:
    bp = Blueprint("calls", __name__)

    @bp.post("/2010-04-01/Accounts/<account>/Calls.json")
    async def create_call(account: str) -> Any:
        form = await request.form
        to, sender = form.get("To", ""), form.get("From", "")
        if not to:
            raise ApiError(400, "Missing required parameter To in the post body", code=21604)
        if not sender:
            raise ApiError(400, "Missing required parameter From in the post body",
                           code=20001)
        if not (form.get("Twiml") or form.get("Url") or form.get("ApplicationSid")):
            raise ApiError(400, "Either Url, Twiml or ApplicationSid is required.",
                           code=21205)
        detection = form.get("MachineDetection")
        if detection not in (None, "Enable", "DetectMessageEnd"):
            raise ApiError(400, "MachineDetection must be Enable or DetectMessageEnd",
                           code=21626)
        call = {
            "sid": db.new_id("CA"),
            "account_sid": account,
            "to": to,
            "from": sender,
            "status": "queued",
            "direction": "outbound-api",
            "date_created": now_iso(),
        }
        stored = {
            **call, "twiml": form.get("Twiml"), "url": form.get("Url"),
            "status_callback": form.get("StatusCallback"),
            "status_callback_event": _list(form, "StatusCallbackEvent"),
            "machine_detection": detection,
            "async_amd": form.get("AsyncAmd"),
            "amd_callback": form.get("AsyncAmdStatusCallback"),
            "record": form.get("Record", "").lower() == "true",
            "recording_callback": form.get("RecordingStatusCallback"),
            "timeout": form.get("Timeout"),
            "parameters": {key: form.getlist(key) if len(form.getlist(key)) > 1
                           else form[key] for key in form if key != "Twiml"},
        }
        db.put("call", stored, parent=account, doc_id=call["sid"])
        simulator.placed(stored)
        return call, 201

    @bp.post("/2010-04-01/Accounts/<account>/Calls/<sid>.json")
    async def update_call(account: str, sid: str) -> Any:
        form = await request.form
        doc = db.get("call", sid)
        if doc is None or doc["account_sid"] != account:
            raise ApiError(404, f"The requested resource /2010-04-01/Accounts/{account}/"
                           f"Calls/{sid}.json was not found", code=20404)
        status = form.get("Status")
        if status not in (None, "completed", "canceled"):
            raise ApiError(400, "Status must be completed or canceled", code=21220)
        if status is not None:
            simulator.hang_up(sid)
        public = {key: doc[key] for key in ("sid", "account_sid", "to", "from", "status",
                                            "direction", "date_created")}
        return public, 200

    @bp.post("/_emulator/call-scripts")
    async def script_call() -> Any:
        """Script calls to a number: ``{"to": "+1555...", "status": "busy"}`` or
        ``{"to": ..., "answered_by": "machine_start", "duration": 5}``; without ``to``
        the default script changes."""
        body = await request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "a JSON object is expected")
        to = body.pop("to", None)
        try:
            script = CallScript(**body)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"not a call script: {exc}") from None
        if to is None:
            simulator.default = script
        else:
            simulator.scripts[str(to)] = script
        return {"to": to, **attrs.asdict(script)}, 200

    return bp
