"""``GET /playground``: a page in the browser that calls the agent over the real ``/ws``.

The page (static files in this package, no build step, nothing from a CDN) speaks
ConversationRelay as Twilio would: ``setup``, then a ``prompt`` per line typed, and
``interrupt`` for a barge-in; it shows the streamed ``text`` tokens and an ``end``.

A browser cannot sign a WebSocket upgrade (it sets no ``X-Twilio-Signature``), so the
page is served only when the server checks no signatures (development); otherwise the
route answers 404 with a sentence saying why.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from quart import Blueprint, Response

if TYPE_CHECKING:
    from tac_actors.server.app import _State

__all__ = ["add_routes"]

_FILES = resources.files("tac_actors.server") / "playground"


def _read(name: str) -> str:
    return (_FILES / name).read_text(encoding="utf-8")


def add_routes(bp: Blueprint, state: _State, *, url_prefix: str = "") -> None:
    """``GET /playground`` and its script on ``bp``."""
    ws_path = url_prefix + state.tac.config.voice_websocket_path
    page = _read("index.html").replace("{{WS_PATH}}", ws_path)
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
