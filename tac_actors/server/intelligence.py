"""The Conversation Intelligence route: ``POST {config.intelligence.webhook_path}``.

Signed like the Orchestrator webhook (``bodySHA256`` + ``X-Twilio-Signature``: 403
otherwise, when an auth token is set). Answers, with the reference's JSON body
(``success``, ``event_type``, ``skipped``, ``skip_reason``, ``error``,
``created_count``):

* **200** once the event was processed (summaries written, results attached to the live
  session, ``on_intelligence_result`` called), skipped (another configuration...) or
  failed on Memory's side (``success: false``: the error is logged; retrying would not
  help the summaries already written, which are idempotent anyway);
* **400** for a body that is not an operator-results event (logged once per peer and
  minute, with an excerpt);
* **503** with ``Retry-After`` while the runtime starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from quart import Blueprint, Response, request

from tac_actors._logsafe import excerpt
from tac_actors.protocol.errors import ProtocolError
from tac_actors.server.state import ServerState

__all__ = ["add_intelligence_route"]

_JSON = "application/json"


def add_intelligence_route(bp: Blueprint, state: ServerState, path: str,
                           url: Callable[[], str],
                           reject: Callable[..., None]) -> None:
    """Register the route on ``bp`` (``url`` rebuilds the signed URL, ``reject`` logs a
    refused request; both from :mod:`tac_actors.server.app`)."""

    @bp.route(path, methods=["POST"], endpoint="intelligence_webhook")
    async def intelligence_webhook() -> Response:
        raw = await request.get_data()
        body = raw if isinstance(raw, bytes) else raw.encode()
        if state.validator is not None and not state.validator.validate_json(
                url(), request.headers.get("X-Twilio-Signature"), body):
            reject(state, request, ": bad or missing X-Twilio-Signature (or bodySHA256): 403")
            return Response("invalid signature", status=403, mimetype="text/plain")
        runtime = state.runtime
        if runtime is None or runtime.intelligence is None:
            return _answer({"status": "starting"}, 503, {"Retry-After": "1"})
        try:
            result = await state.tac.process_cintel_event(body)
        except ProtocolError as exc:
            reject(state, request, ": not an operator-results event (%s): 400",
                   excerpt(exc.message, 200))
            return _answer({"success": False, "error": exc.message}, 400)
        return _answer(result.to_json(), 200)


def _answer(body: dict[str, Any], status: int, headers: dict[str, str] | None = None
            ) -> Response:
    return Response(json.dumps(body), status=status, mimetype=_JSON, headers=headers or {})
