"""The HTTP and WebSocket routes, as a quart-trio blueprint you can mount anywhere.

=================================  ================================================
route                              what it does
=================================  ================================================
``POST /twiml``                    TwiML connecting the call to our WebSocket
``WS /ws``                         one ConversationRelay session per socket
``POST /conversation-relay-        the session is over: parse HandoffData, ask the
callback``                         app's ``on_handoff`` hook for the next TwiML
``POST /webhook``                  Orchestrator events (Orchestrator mode): 200 once a
                                   text is recorded (mailbox, backlog or left to
                                   reconcile), 503 + Retry-After only while the node
                                   shuts down or is overloaded, 400 for a bad payload
                                   (see :mod:`tac_actors.channels.messaging`)
``POST /ci-webhook``               Conversation Intelligence operator results
                                   (``config.intelligence``), see
                                   :mod:`tac_actors.server.intelligence`
``GET /health``                    liveness and a few figures
``POST /twilio/call-events/        Twilio's call callbacks (status, async AMD,
{status,amd,recording}``           recording) to ``on_call_status``, ``on_amd``,
                                   ``on_recording``: 200, 400 for a payload that is not
                                   a call event, 403 for another account's call
                                   (:mod:`tac_actors.channels.call_events`; the base
                                   path is ``voice_call_event_path``)
``POST /media-twiml``              TwiML connecting the call to a media stream
                                   (speech-to-speech: ``TAC(realtime=...)``)
``WS /media-stream``               one Twilio Media Streams call, bridged to the
                                   realtime model (:mod:`tac_actors.channels.media`)
``POST /media-stream-callback``    the stream is over: the recorded handoff data goes
                                   to the app's ``on_handoff`` hook
``GET /metrics``, ``GET /status``  Prometheus metrics; live conversations (bearer
                                   token), see :mod:`tac_actors.server.metrics`
``GET /playground``                a browser caller (only without signature checks)
=================================  ================================================

``/twiml`` answers with a media stream too when ``on_inbound_call`` returns
:class:`~tac_actors.realtime.MediaStreamOptions` for the call, or when
``RealtimeOptions(answer_inbound=True)`` (or the call's number is in it) and the hook
returns nothing.

With an auth token configured every Twilio route checks X-Twilio-Signature: HTTP routes
answer 403, the WebSocket is closed with 1008. Without one the server warns at start-up
that anyone can reach the agent. The signed URL is rebuilt from the configured public
domain, else from ``X-Forwarded-Proto/Host`` when the peer is a trusted proxy
(:mod:`tac_actors.server.peers`), else from the request itself.

HTTP limits (:class:`~tac_actors.config.HTTPConfig`): bodies larger than
``max_body_bytes`` get 413 and bodies slower than ``body_timeout`` get 408; after either
the connection is closed, so a kept-alive connection never waits on an unread body. Peer
values in log lines go through :func:`~tac_actors._logsafe.excerpt`, and rejected
requests are logged once per peer and minute (then counted).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio
from quart import Blueprint, Response, current_app, request, websocket
from quart_trio import QuartTrio

from tac_actors._logsafe import excerpt
from tac_actors.channels.call_events import deliver_call_event
from tac_actors.channels.media import MEDIA_ACTION_PATH, MEDIA_TWIML_PATH, MEDIA_WEBSOCKET_PATH
from tac_actors.protocol.call_events import CALL_EVENT_KINDS
from tac_actors.protocol.signature import public_url
from tac_actors.protocol.twiml import (
    ConversationRelayOptions,
    connect_twiml,
    hangup_twiml,
    stream_twiml,
)
from tac_actors.realtime.options import MediaStreamOptions
from tac_actors.server.callbacks import ActionCallback, InboundCall
from tac_actors.server.intelligence import add_intelligence_route
from tac_actors.server.metrics import add_routes as add_metrics_routes
from tac_actors.server.playground import add_routes as add_playground_routes
from tac_actors.server.quart_transport import QuartTransport
from tac_actors.server.state import ServerState
from tac_actors.tac import TAC

if TYPE_CHECKING:
    pass

__all__ = ["create_app", "mount"]

log = logging.getLogger("tac_actors.server")

XML = "text/xml; charset=utf-8"
#: statuses after which the request body may be unread: the connection is closed
CLOSE_AFTER = frozenset({408, 413})
#: how long the last send of a response may take once shielded (see _close_after_errors)
FINAL_SEND_TIMEOUT = 10.0


#: the state the routes of one mounted TAC share (see :mod:`tac_actors.server.state`)
_State = ServerState


def _url(*, websocket_route: bool = False) -> str:
    """The URL Twilio requested, rebuilt behind proxies (see :func:`public_url`)."""
    conn: Any = websocket if websocket_route else request
    query = conn.query_string.decode("latin-1")
    root = (conn.root_path or "").rstrip("/")  # mounted under a prefix
    path = root + conn.path + (f"?{query}" if query else "")
    state: _State = current_app.extensions["tac_actors"]
    return public_url(scheme=conn.scheme, host=conn.host, path_and_query=path,
                      headers=dict(conn.headers),
                      public_domain=state.tac.config.voice_public_domain,
                      websocket=websocket_route,
                      forwarded=state.trust.trusts(state.peer(conn.scope)))


def _public_base(path: str, *, websocket_route: bool) -> str:
    state: _State = current_app.extensions["tac_actors"]
    # mounted under a prefix (e.g. FastAPI's app.mount("/tac", ...)): keep it in the URL
    path = (request.root_path or "").rstrip("/") + path
    return public_url(scheme=request.scheme, host=request.host, path_and_query=path,
                      headers=dict(request.headers),
                      public_domain=state.tac.config.voice_public_domain,
                      websocket=websocket_route,
                      forwarded=state.trust.trusts(state.peer(request.scope)))


def _reject(state: _State, conn: Any, what: str, *args: object) -> None:
    """Log a rejected request: once per peer and minute, with a hint when proxy headers
    were ignored (the usual cause behind a proxy)."""
    peer = state.peer(conn.scope)
    ignored = ("X-Forwarded-Host" in conn.headers or "X-Forwarded-Proto" in conn.headers
               ) and not state.trust.trusts(peer) and not state.tac.config.voice_public_domain
    hint = (" (X-Forwarded-* ignored: not from a trusted proxy; set "
            "TWILIO_VOICE_PUBLIC_DOMAIN or TAC_FORWARDED_ALLOW_IPS)" if ignored else "")
    state.rejected.warning(peer, "%s from %s" + what + "%s", excerpt(conn.path, 100),
                           excerpt(peer), *args, hint)


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
    _reject(state, request, ": bad or missing X-Twilio-Signature (CallSid %s): 403",
            excerpt(form.get("CallSid"), 64))
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
        extra = await tac.run_hook(tac._twiml, call) if tac._twiml is not None else None
        if isinstance(extra, MediaStreamOptions) or (
                extra is None and tac.realtime is not None and tac.realtime.answers(call.to)):
            return Response(_stream_answer(state, call, extra, url_prefix), mimetype=XML)
        ws_url = _public_base(url_prefix + config.voice_websocket_path, websocket_route=True)
        base = ConversationRelayOptions(
            url=ws_url, conversation_configuration=config.conversation_configuration_id)
        options = base.merged(tac.twiml_options)
        if extra is not None:
            options = options.merged(extra)
        xml = connect_twiml(options, action_url=_action_url(state, url_prefix))
        return Response(xml, mimetype=XML)

    @bp.route(MEDIA_TWIML_PATH, methods=["POST", "GET"])
    async def media_twiml() -> Response:
        form = await _form() if request.method == "POST" else dict(request.args)
        if (denied := await _check_form(state, form)) is not None:
            return denied
        call = InboundCall.from_form(form)
        extra = await tac.run_hook(tac._twiml, call) if tac._twiml is not None else None
        media = extra if isinstance(extra, MediaStreamOptions) else None
        return Response(_stream_answer(state, call, media, url_prefix), mimetype=XML)

    @bp.websocket(MEDIA_WEBSOCKET_PATH)
    async def media_stream() -> None:
        runtime = state.require_runtime()
        if state.validator is not None:
            signature = websocket.headers.get("X-Twilio-Signature")
            if not state.validator.validate_websocket(_url(websocket_route=True), signature):
                _reject(state, websocket, ": media stream upgrade with a bad or missing "
                        "X-Twilio-Signature: 1008")
                await websocket.accept()
                await websocket.close(1008, "invalid signature")
                return
        await websocket.accept()
        await runtime.media.handle(QuartTransport(websocket._get_current_object()))  # type: ignore[attr-defined]

    @bp.route(MEDIA_ACTION_PATH, methods=["POST"])
    async def media_action() -> Response:
        form = await _form()
        if (denied := await _check_form(state, form)) is not None:
            return denied
        callback = ActionCallback.from_form(form)
        runtime = state.runtime
        outcome = (runtime.media.take_outcome(callback.call_sid)
                   if runtime is not None and callback.call_sid else None)
        if outcome is not None and outcome.handoff_data is not None:
            callback = ActionCallback.from_form(
                {**form, "HandoffData": outcome.handoff_data})
        log.info("call %s: media stream over (%s)%s", excerpt(callback.call_sid, 64),
                 outcome.reason if outcome else "unknown",
                 " with handoff data" if callback.handoff_data else "")
        xml: str | None = None
        if tac._handoff is not None:
            xml = await tac.run_hook(tac._handoff, callback)
        return Response(xml or hangup_twiml(), mimetype=XML)

    @bp.websocket(config.voice_websocket_path)
    async def relay() -> None:
        runtime = state.require_runtime()
        if state.validator is not None:
            signature = websocket.headers.get("X-Twilio-Signature")
            if not state.validator.validate_websocket(_url(websocket_route=True), signature):
                _reject(state, websocket,
                        ": WebSocket upgrade with a bad or missing X-Twilio-Signature: 1008")
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
        log.info("call %s: ConversationRelay session %s (%s)%s", excerpt(callback.call_sid, 64),
                 excerpt(callback.session_status, 40), excerpt(callback.call_status, 40),
                 " with handoff data" if callback.handoff_data else "")
        runtime = state.runtime
        if runtime is not None and callback.call_sid:
            session = runtime.session_by_call_sid(callback.call_sid)
            cell = runtime.supervisor.get(callback.call_sid)
            if session is not None and cell is not None:
                cell.hang_up("ended")
        xml: str | None = None
        if tac._handoff is not None:
            xml = await tac.run_hook(tac._handoff, callback)
        return Response(xml or hangup_twiml(), mimetype=XML)

    def add_call_event_route(kind: str) -> None:
        async def call_event() -> Response:
            form = await _form()
            if (denied := await _check_form(state, form)) is not None:
                return denied
            answer = await deliver_call_event(tac, kind, form)
            return Response(answer.text, status=answer.status, mimetype="text/plain")

        bp.add_url_rule(config.call_event_path(kind), f"call_event_{kind}", call_event,
                        methods=["POST"])

    for kind in CALL_EVENT_KINDS:
        add_call_event_route(kind)

    if config.orchestrator_enabled:
        @bp.route(config.webhook_path, methods=["POST"])
        async def webhook() -> Response:
            raw = await request.get_data()
            body = raw if isinstance(raw, bytes) else raw.encode()
            if state.validator is not None and not state.validator.validate_json(
                    _url(), request.headers.get("X-Twilio-Signature"), body):
                _reject(state, request,
                        ": bad or missing X-Twilio-Signature (or bodySHA256): 403")
                return Response("invalid signature", status=403, mimetype="text/plain")
            runtime = state.runtime
            if runtime is None or runtime.messaging is None:
                return Response(json.dumps({"status": "starting"}), status=503,
                                mimetype="application/json", headers={"Retry-After": "1"})
            answer = await runtime.messaging.receive_webhook(
                body, idempotency_token=request.headers.get("I-Twilio-Idempotency-Token"))
            runtime.metrics.observe_webhook(str(answer.body.get("outcome", answer.status)))
            headers = ({"Retry-After": str(answer.retry_after)}
                       if answer.retry_after is not None else {})
            return Response(json.dumps(answer.body), status=answer.status,
                            mimetype="application/json", headers=headers)
    else:
        @bp.route(config.webhook_path, methods=["POST"])
        async def webhook_off() -> Response:
            # not silent (review finding 24): a webhook here means Twilio was set up for
            # Orchestrator mode and this server was not
            state.rejected.warning(
                ("webhook-off",), "POST %s: an Orchestrator webhook, but this server runs "
                "in ConversationRelay-only mode (set TWILIO_CONVERSATION_CONFIGURATION_ID): "
                "404", excerpt(config.webhook_path, 100))
            return Response(json.dumps({"error": "Orchestrator mode is off: set "
                                        "TWILIO_CONVERSATION_CONFIGURATION_ID"}),
                            status=404, mimetype="application/json")

    if config.intelligence is not None:
        add_intelligence_route(bp, state, config.intelligence.webhook_path, _url, _reject)

    @bp.route("/health", methods=["GET"])
    async def health() -> dict[str, Any]:
        runtime = state.runtime
        stats = runtime.statistics() if runtime else None
        return {
            "status": "ok" if runtime else "starting",
            "mode": "orchestrator" if tac.is_orchestrator_enabled() else "conversation-relay",
            "conversations": stats.live if stats else 0,
            "restarts": stats.restarts if stats else 0,
            **_worker_fields(),
        }

    add_metrics_routes(bp, state)
    add_playground_routes(bp, state, url_prefix=url_prefix)
    app.register_blueprint(bp)
    _close_after_errors(app)

    @app.before_serving
    async def _start() -> None:
        if state.validator is None:
            log.warning("NO AUTH TOKEN: X-Twilio-Signature is not checked, so anyone who can "
                        "reach this server can talk to the agent. Set TWILIO_AUTH_TOKEN.")
        try:
            await app.nursery.start(state.run)
        except Exception as exc:
            state.startup_error = exc
            raise

    @app.after_serving
    async def _stop() -> None:
        await state.shutdown()

    return app


def _worker_fields() -> dict[str, Any]:
    """In a worker process of ``--workers N``: which one answered (its id and pid)."""
    worker = os.environ.get("TAC_WORKER_ID")
    return {"worker": worker, "pid": os.getpid()} if worker else {}


def _action_url(state: _State, url_prefix: str) -> str:
    config = state.tac.config
    if config.studio_handoff_flow_sid and config.account_sid:
        return (f"https://webhooks.twilio.com/v1/Accounts/{config.account_sid}/Flows/"
                f"{config.studio_handoff_flow_sid}?Trigger=incomingCall")
    return _public_base(url_prefix + config.voice_action_path, websocket_route=False)


def _stream_answer(state: _State, call: InboundCall, media: MediaStreamOptions | None,
                   url_prefix: str) -> str:
    """``<Connect><Stream>`` to our media route, with the caller's numbers as
    parameters; per-call realtime options are kept for the stream that follows."""
    parameters = {key: value for key, value in (("From", call.from_), ("To", call.to))
                  if value}
    if media is not None:
        parameters.update(media.parameters)
        if media.realtime is not None and call.call_sid and state.runtime is not None:
            state.runtime.media.expect(call.call_sid, media.realtime)
    return stream_twiml(
        _public_base(url_prefix + MEDIA_WEBSOCKET_PATH, websocket_route=True),
        parameters=parameters,
        action_url=_public_base(url_prefix + MEDIA_ACTION_PATH, websocket_route=False))


def create_app(tac: TAC) -> QuartTrio:
    """A quart-trio app serving only the TAC routes, with the body limits of
    ``tac.config.http`` (``mount`` leaves an app's own limits alone)."""
    app = QuartTrio("tac_actors")
    # conversations get their own grace; the app's background tasks get a bit more
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = tac.config.shutdown_grace + 5.0
    app.config["MAX_CONTENT_LENGTH"] = tac.config.http.max_body_bytes
    app.config["BODY_TIMEOUT"] = tac.config.http.body_timeout
    return mount(app, tac)


ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def _close_after_errors(app: QuartTrio) -> None:
    """Answer, then close, when a request body was refused (review D14).

    quart answers 413 (or 408) before the body has arrived; once its handler has sent
    the response it hears hypercorn's ``http.disconnect`` and cancels itself, and the
    cancellation lands inside hypercorn's code that was about to close the connection.
    The connection then stays open with its body unread, and the next request on it
    waits forever. Two fixes: such responses say ``Connection: close``, and the last send
    of every response is shielded (bounded by ``FINAL_SEND_TIMEOUT``) so hypercorn
    finishes it, recycling or closing the connection.
    """
    if getattr(app, "_tac_close_after_errors", False):
        return
    app._tac_close_after_errors = True  # type: ignore[attr-defined]

    @app.after_request
    async def _close_refused(response: Response) -> Response:
        if response.status_code in CLOSE_AFTER:
            response.headers["Connection"] = "close"
        return response

    inner: ASGIApp = app.asgi_app

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await inner(scope, receive, send)
            return

        async def finish_send(message: Any) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                deadline = trio.current_time() + FINAL_SEND_TIMEOUT
                with trio.CancelScope(shield=True, deadline=deadline):
                    await send(message)
            else:
                await send(message)

        await inner(scope, receive, finish_send)

    app.asgi_app = asgi_app  # type: ignore[method-assign]


def state_of(app: QuartTrio) -> _State:
    """The mounted TAC's state (runtime, validator) of ``app``."""
    state: _State = app.extensions["tac_actors"]
    return state
