"""The HTTP and WebSocket routes, as a quart-trio blueprint you can mount anywhere.

=================================  ================================================
route                              what it does
=================================  ================================================
``POST /twiml``                    TwiML connecting the call to our WebSocket
``WS /ws``                         one ConversationRelay session per socket
``POST /conversation-relay-        the session is over: parse HandoffData, ask the
callback``                         app's ``on_handoff`` hook for the next TwiML
``POST /webhook``                  Orchestrator events (Orchestrator mode): 200 once a
                                   message is in its actor's mailbox, 503 +
                                   Retry-After when the mailbox is full, 400 for a
                                   bad payload (see :mod:`tac_actors.channels.messaging`)
``GET /health``                    liveness and a few figures
=================================  ================================================

With an auth token configured every Twilio route checks X-Twilio-Signature: HTTP routes
answer 403, the WebSocket is closed with 1008. Without one the server warns at start-up
that anyone can reach the agent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import trio
from quart import Blueprint, Response, current_app, request, websocket
from quart_trio import QuartTrio

from tac_actors.protocol.signature import SignatureValidator, public_url
from tac_actors.protocol.twiml import ConversationRelayOptions, connect_twiml, hangup_twiml
from tac_actors.runtime import Runtime
from tac_actors.server.callbacks import ActionCallback, InboundCall
from tac_actors.server.quart_transport import QuartTransport
from tac_actors.tac import TAC, _call

__all__ = ["create_app", "mount"]

log = logging.getLogger("tac_actors.server")

XML = "text/xml; charset=utf-8"


class _State:
    """What the routes of one mounted TAC share."""

    def __init__(self, tac: TAC) -> None:
        self.tac = tac
        self.runtime: Runtime | None = None
        self.stopped = trio.Event()
        token = tac.config.auth_token if tac.config.validate_signatures else None
        self.validator = SignatureValidator(token) if token else None

    def require_runtime(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError("the TAC runtime is not running (app not started)")
        return self.runtime

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        async with Runtime.open(self.tac) as runtime:
            self.runtime = runtime
            task_status.started()
            try:
                await self.stopped.wait()
            finally:
                self.runtime = None

    async def shutdown(self) -> None:
        """Drain conversations (turns finish within the grace), then stop the runtime."""
        if self.runtime is not None:
            await self.runtime.shutdown()
        self.stopped.set()


def _url(*, websocket_route: bool = False) -> str:
    """The URL Twilio requested, rebuilt behind proxies (see :func:`public_url`)."""
    conn: Any = websocket if websocket_route else request
    query = conn.query_string.decode("latin-1")
    path = conn.path + (f"?{query}" if query else "")
    state: _State = current_app.extensions["tac_actors"]
    return public_url(scheme=conn.scheme, host=conn.host, path_and_query=path,
                      headers=dict(conn.headers),
                      public_domain=state.tac.config.voice_public_domain,
                      websocket=websocket_route)


def _public_base(path: str, *, websocket_route: bool) -> str:
    state: _State = current_app.extensions["tac_actors"]
    return public_url(scheme=request.scheme, host=request.host, path_and_query=path,
                      headers=dict(request.headers),
                      public_domain=state.tac.config.voice_public_domain,
                      websocket=websocket_route)


async def _form() -> dict[str, str]:
    form = await request.form
    return {key: form.get(key, "") for key in form}


async def _check_form(state: _State, form: Mapping[str, str]) -> Response | None:
    if state.validator is None:
        return None
    signature = request.headers.get("X-Twilio-Signature")
    params = {key: values for key, values in (await request.form).lists()}
    if state.validator.validate_form(_url(), signature, params):
        return None
    log.warning("%s %s: bad or missing X-Twilio-Signature (CallSid %s): 403", request.method,
                request.path, form.get("CallSid"))
    return Response("invalid signature", status=403, mimetype="text/plain")


def mount(app: QuartTrio, tac: TAC, *, url_prefix: str = "") -> QuartTrio:
    """Add the TAC routes to an existing quart-trio ``app`` and run its runtime with the
    app (started in ``before_serving``, drained in ``after_serving``)."""
    config = tac.config
    state = _State(tac)
    app.extensions["tac_actors"] = state
    bp = Blueprint("tac_actors", __name__, url_prefix=url_prefix or None)

    @bp.route(config.voice_twiml_path, methods=["POST", "GET"])
    async def twiml() -> Response:
        form = await _form() if request.method == "POST" else dict(request.args)
        if (denied := await _check_form(state, form)) is not None:
            return denied
        call = InboundCall.from_form(form)
        ws_url = _public_base(url_prefix + config.voice_websocket_path, websocket_route=True)
        base = ConversationRelayOptions(
            url=ws_url, conversation_configuration=config.conversation_configuration_id)
        options = base.merged(tac.twiml_options)
        if tac._twiml is not None:
            extra = await _call(tac._twiml, call)
            if extra is not None:
                options = options.merged(extra)
        xml = connect_twiml(options, action_url=_action_url(state, url_prefix))
        return Response(xml, mimetype=XML)

    @bp.websocket(config.voice_websocket_path)
    async def relay() -> None:
        runtime = state.require_runtime()
        if state.validator is not None:
            signature = websocket.headers.get("X-Twilio-Signature")
            if not state.validator.validate_websocket(_url(websocket_route=True), signature):
                log.warning("WebSocket upgrade with a bad or missing X-Twilio-Signature: 1008")
                await websocket.accept()
                await websocket.close(1008, "invalid signature")
                return
        await websocket.accept()
        await runtime.voice.handle(QuartTransport(websocket._get_current_object()))  # type: ignore[attr-defined]

    @bp.route(config.voice_action_path, methods=["POST"])
    async def action() -> Response:
        form = await _form()
        if (denied := await _check_form(state, form)) is not None:
            return denied
        callback = ActionCallback.from_form(form)
        log.info("call %s: ConversationRelay session %s (%s)%s", callback.call_sid,
                 callback.session_status, callback.call_status,
                 " with handoff data" if callback.handoff_data else "")
        runtime = state.runtime
        if runtime is not None and callback.call_sid:
            session = runtime.session_by_call_sid(callback.call_sid)
            cell = runtime.supervisor.get(callback.call_sid)
            if session is not None and cell is not None:
                cell.hang_up("ended")
        xml: str | None = None
        if tac._handoff is not None:
            xml = await _call(tac._handoff, callback)
        return Response(xml or hangup_twiml(), mimetype=XML)

    if config.orchestrator_enabled:
        @bp.route(config.webhook_path, methods=["POST"])
        async def webhook() -> Response:
            raw = await request.get_data()
            body = raw if isinstance(raw, bytes) else raw.encode()
            if state.validator is not None and not state.validator.validate_json(
                    _url(), request.headers.get("X-Twilio-Signature"), body):
                log.warning("POST %s: bad or missing X-Twilio-Signature (or bodySHA256): 403",
                            request.path)
                return Response("invalid signature", status=403, mimetype="text/plain")
            runtime = state.runtime
            if runtime is None or runtime.messaging is None:
                return Response(json.dumps({"status": "starting"}), status=503,
                                mimetype="application/json", headers={"Retry-After": "1"})
            answer = await runtime.messaging.receive_webhook(
                body, idempotency_token=request.headers.get("I-Twilio-Idempotency-Token"))
            headers = ({"Retry-After": str(answer.retry_after)}
                       if answer.retry_after is not None else {})
            return Response(json.dumps(answer.body), status=answer.status,
                            mimetype="application/json", headers=headers)

    @bp.route("/health", methods=["GET"])
    async def health() -> dict[str, Any]:
        runtime = state.runtime
        stats = runtime.statistics() if runtime else None
        return {
            "status": "ok" if runtime else "starting",
            "mode": "orchestrator" if tac.is_orchestrator_enabled() else "conversation-relay",
            "conversations": stats.live if stats else 0,
            "restarts": stats.restarts if stats else 0,
        }

    app.register_blueprint(bp)

    @app.before_serving
    async def _start() -> None:
        if state.validator is None:
            log.warning("NO AUTH TOKEN: X-Twilio-Signature is not checked, so anyone who can "
                        "reach this server can talk to the agent. Set TWILIO_AUTH_TOKEN.")
        await app.nursery.start(state.run)

    @app.after_serving
    async def _stop() -> None:
        await state.shutdown()

    return app


def _action_url(state: _State, url_prefix: str) -> str:
    config = state.tac.config
    if config.studio_handoff_flow_sid and config.account_sid:
        return (f"https://webhooks.twilio.com/v1/Accounts/{config.account_sid}/Flows/"
                f"{config.studio_handoff_flow_sid}?Trigger=incomingCall")
    return _public_base(url_prefix + config.voice_action_path, websocket_route=False)


def create_app(tac: TAC) -> QuartTrio:
    """A quart-trio app serving only the TAC routes."""
    app = QuartTrio("tac_actors")
    # conversations get their own grace; the app's background tasks get a bit more
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = tac.config.shutdown_grace + 5.0
    return mount(app, tac)


def state_of(app: QuartTrio) -> _State:
    """The mounted TAC's state (runtime, validator) of ``app``."""
    state: _State = app.extensions["tac_actors"]
    return state
