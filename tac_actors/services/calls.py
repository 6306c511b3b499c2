"""Programmable Voice: placing outbound calls (``POST /2010-04-01/Accounts/{AC}/Calls.json``)
and hanging them up (``POST .../Calls/{sid}.json`` with ``Status=completed``).

Creating a call is not idempotent: without an ``idempotency_key`` a failed request that
may have reached Twilio is not retried, so a person is never called twice.

:class:`CallOptions` holds the Calls API parameters an outbound call may carry (machine
detection, recording, status callbacks, ring timeout) and passes any other Calls API
parameter through.
"""

from __future__ import annotations

import attrs

from tac_actors.protocol.call_options import CallOptions
from tac_actors.services.http import Product, ServiceHTTP, path_segment
from tac_actors.services.wire import decode, snake

__all__ = ["Call", "CallOptions", "CallsClient"]


@attrs.frozen(kw_only=True)
class Call:
    """The answer of ``Calls.json`` (``sid`` starts with ``CA``)."""

    sid: str
    status: str | None = None
    to: str | None = None
    from_: str | None = None
    direction: str | None = None
    date_created: str | None = None


class CallsClient:
    """Outbound calls for one account, through the shared :class:`ServiceHTTP`."""

    def __init__(self, http: ServiceHTTP, account_sid: str | None) -> None:
        self._http = http
        self._account_sid = account_sid

    def __repr__(self) -> str:
        return f"CallsClient(account_sid={self._account_sid!r})"

    def _calls_path(self) -> str:
        if not self._account_sid:
            raise ValueError("the Calls API needs TWILIO_ACCOUNT_SID")
        return f"/2010-04-01/Accounts/{path_segment(self._account_sid)}/Calls"

    async def create(self, *, to: str, from_: str, twiml: str,
                     status_callback: str | None = None,
                     options: CallOptions | None = None,
                     idempotency_key: str | None = None) -> Call:
        """Call ``to`` from ``from_``; Twilio runs ``twiml`` when the call is answered.
        ``options`` adds Calls API parameters (see :class:`CallOptions`)."""
        path = self._calls_path() + ".json"
        form: dict[str, str | list[str]] = dict(options.to_form()) if options is not None else {}
        form.update({"To": to, "From": from_, "Twiml": twiml})
        if status_callback:
            form["StatusCallback"] = status_callback
        reply = await self._http.request(Product.API, "POST", path, form=form,
                                         idempotency_key=idempotency_key)
        return decode(reply, Call, snake)

    async def hang_up(self, call_sid: str) -> Call:
        """End a call (``Status=completed``: a ringing call is canceled, a live one hung
        up). Raises :class:`~tac_actors.services.ServiceError` when Twilio refuses (e.g.
        404 for an unknown call)."""
        if not call_sid:
            raise ValueError("hanging up needs a CallSid")
        reply = await self._http.request(
            Product.API, "POST", f"{self._calls_path()}/{path_segment(call_sid)}.json",
            form={"Status": "completed"})
        return decode(reply, Call, snake)
