"""``GET /playground``: a page in the browser that calls the agent over the real ``/ws``.

The page (static files in this package, no build step, nothing from a CDN) speaks
ConversationRelay as Twilio would: ``setup``, then a ``prompt`` per line typed, and
``interrupt`` for a barge-in; it shows the streamed ``text`` tokens and an ``end``.

A browser cannot sign a WebSocket upgrade (it sets no ``X-Twilio-Signature``), so the
page is served only when the server checks no signatures (development); otherwise the
route answers 404 with a sentence saying why.

Under ``tac-actors dev`` (a server pointed at the emulator, with a conversation
configuration) the page can also text the agent as SMS: ``POST /playground/sms`` with
``{"from": ..., "text": ...}`` does what ``tac-actors text`` does (stores the message in
the emulator and delivers its webhook to this server), and ``GET /playground/sms?from=``
answers the agent's texts to that number not yet fetched. At most
:data:`MAX_TEXTERS` numbers are remembered (the oldest is forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from importlib import resources
from typing import TYPE_CHECKING, Any

import httpx
from quart import Blueprint, Response, request

from tac_actors.testing.remote_texter import DevInfo, RemoteTexter, TextingError

if TYPE_CHECKING:
    from tac_actors.server.state import ServerState as _State

__all__ = ["MAX_TEXTERS", "add_routes"]

#: phone numbers the page texts from, remembered at once
MAX_TEXTERS = 100
#: the longest text the page may send (characters)
MAX_TEXT = 2000

_FILES = resources.files("tac_actors.server") / "playground"


def _read(name: str) -> str:
    return (_FILES / name).read_text(encoding="utf-8")


def add_routes(bp: Blueprint, state: _State, *, url_prefix: str = "") -> None:
    """``GET /playground`` and its script on ``bp``."""
    config = state.tac.config
    ws_path = url_prefix + config.voice_websocket_path
    sms = bool(config.services_base_url and config.conversation_configuration_id)
    page = (_read("index.html").replace("{{WS_PATH}}", ws_path)
            .replace("{{SMS}}", "1" if sms else ""))
    script = _read("app.js")
    off = Response("The playground is off: this server checks X-Twilio-Signature, which a "
                   "browser cannot send. Use it with `tac-actors dev`.\n", status=404,
                   mimetype="text/plain")

    @bp.route("/playground", methods=["GET"])
    async def playground() -> Response:
        if state.validator is not None:
            return off
        return Response(page, mimetype="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'; "
                                 "connect-src 'self' ws: wss:; style-src 'unsafe-inline'"})

    @bp.route("/playground/app.js", methods=["GET"])
    async def playground_script() -> Response:
        if state.validator is not None:
            return off
        return Response(script, mimetype="text/javascript")

    if not sms:
        return
    info = DevInfo(config.services_base_url or "", config.conversation_configuration_id or "",
                   config.phone_number or "")
    texters: OrderedDict[str, RemoteTexter] = OrderedDict()
    clients: list[httpx.AsyncClient] = []

    def texter(address: str) -> RemoteTexter:
        found = texters.get(address)
        if found is not None:
            texters.move_to_end(address)
            return found
        if not clients:
            clients.append(httpx.AsyncClient(timeout=10))
        server = request.host_url.rstrip("/") + url_prefix
        found = texters[address] = RemoteTexter(clients[0], server, info, address=address,
                                                webhook_path=config.webhook_path)
        if len(texters) > MAX_TEXTERS:
            texters.popitem(last=False)
        return found

    def refused(reason: str, status: int = 400) -> tuple[dict[str, Any], int]:
        return {"error": reason}, status

    @bp.route("/playground/sms", methods=["POST"])
    async def playground_sms() -> Any:
        if state.validator is not None:
            return off
        body = await request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return refused("send a JSON object: {\"from\": \"+1555...\", \"text\": \"...\"}")
        address, text = body.get("from"), body.get("text")
        if not isinstance(address, str) or not address.strip() or len(address) > 64:
            return refused("\"from\" must be a phone number")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            return refused(f"\"text\" must be 1 to {MAX_TEXT} characters")
        try:
            await texter(address.strip()).send(text)
        except TextingError as exc:
            return refused(str(exc), 502)
        return {"sent": True}

    @bp.route("/playground/sms", methods=["GET"])
    async def playground_sms_replies() -> Any:
        if state.validator is not None:
            return off
        address = request.args.get("from", "").strip()
        found = texters.get(address)
        if found is None:
            return {"replies": []}
        try:
            return {"replies": await found.poll()}
        except TextingError as exc:
            return refused(str(exc), 502)

    @bp.after_app_serving
    async def close_client() -> None:
        for client in clients:
            await client.aclose()
