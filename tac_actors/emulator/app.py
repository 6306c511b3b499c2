"""The emulator's quart-trio app: every product's routes behind Twilio-like auth,
faults, request ids and error bodies.

Every product response carries a ``Twilio-Request-Id``. Product routes need HTTP basic
auth: any key and secret pass unless ``credentials`` is given (then only those pairs);
none at all answers 401 with Twilio's error 20003. Errors are JSON objects with
``code``, ``message``, ``more_info`` and ``status``, except the ``html`` fault.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from tac_actors.emulator import calls as call_routes
from tac_actors.emulator import inspection, intelligence, knowledge, memory, orchestrator, studio
from tac_actors.emulator.calls import DEFAULT_AUTH_TOKEN, CallSimulator
from tac_actors.emulator.db import ApiError, Database
from tac_actors.emulator.faults import Faults, product_of
from tac_actors.emulator.inspection import RequestRecord

__all__ = ["create_app"]

_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
    "<body><h1>Sorry</h1><p>The page you requested is not available.</p></body></html>"
)


def _error(exc: ApiError) -> Response:
    response = Response(
        json.dumps(exc.body()), status=exc.status,
        content_type="application/json",
    )
    for key, value in exc.headers.items():
        response.headers[key] = value
    return response


def create_app(
    db: Database,
    faults: Faults,
    *,
    account_sid: str,
    journal: list[RequestRecord],
    credentials: Mapping[str, str] | None = None,
    on_request: Callable[[], None] | None = None,
    emitter: intelligence.IntelligenceEmitter | None = None,
    calls: CallSimulator | None = None,
) -> QuartTrio:
    """The app serving ``db``. ``journal`` receives one record per product request;
    ``on_request`` is called after each one (the emulator wakes its waiters with it);
    ``emitter`` produces Conversation Intelligence events when conversations close."""
    app = QuartTrio("tac_actors.emulator")
    app.config["JSON_SORT_KEYS"] = False
    app.register_blueprint(orchestrator.blueprint(
        db, account_sid, faults,
        on_status=intelligence.closed_hook(emitter) if emitter is not None else None))
    app.register_blueprint(memory.blueprint(db))
    app.register_blueprint(knowledge.blueprint(db))
    app.register_blueprint(studio.blueprint(db, account_sid))
    app.register_blueprint(call_routes.blueprint(
        db, calls if calls is not None else CallSimulator(db, auth_token=DEFAULT_AUTH_TOKEN)))
    app.register_blueprint(inspection.blueprint(db, faults, journal, emitter))

    @app.before_request
    async def gate() -> Any:
        product = product_of(request.path)
        if product is None:
            return None
        delay = faults.latency.get(product, 0.0)
        if delay > 0:
            await trio.sleep(delay)
        if product in faults.down:
            raise ApiError(503, f"{product} is unavailable (emulated outage)", code=20503)
        if product in faults.rate_limited:
            raise ApiError(429, "Too Many Requests", headers={
                "Retry-After": f"{faults.rate_limited[product]:g}"})
        if faults.roll_error() or (request.method == "POST" and request.path.endswith(
                "/Actions") and faults.roll_send_error()):
            raise ApiError(500, "Internal Server Error (emulated)", code=20500)
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username:
            raise ApiError(401, "Authenticate", headers={
                "WWW-Authenticate": 'Basic realm="Twilio API"'})
        if credentials is not None and credentials.get(auth.username) != auth.password:
            raise ApiError(401, "Authenticate")
        if product in faults.html:
            return Response(_HTML_PAGE, status=200, content_type="text/html")
        return None

    @app.after_request
    async def stamp(response: Response) -> Response:
        product = product_of(request.path)
        if product is not None:
            response.headers["Twilio-Request-Id"] = "RQ" + uuid.uuid4().hex
            journal.append(RequestRecord(request.method, request.path, product,
                                         response.status_code))
            if on_request is not None:
                on_request()
        return response

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        return _error(exc)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = "The requested resource was not found" if status == 404 else (
            exc.description or exc.name)
        return _error(ApiError(status, message))

    return app
