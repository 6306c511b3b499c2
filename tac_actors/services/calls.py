"""Programmable Voice: placing outbound calls (``POST /2010-04-01/Accounts/{AC}/Calls.json``).

Creating a call is not idempotent: without an ``idempotency_key`` a failed request that
may have reached Twilio is not retried, so a person is never called twice.
"""

from __future__ import annotations

import attrs

from tac_actors.services.http import Product, ServiceHTTP, path_segment
from tac_actors.services.wire import decode, snake

__all__ = ["Call", "CallsClient"]


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

    async def create(self, *, to: str, from_: str, twiml: str,
                     status_callback: str | None = None,
                     idempotency_key: str | None = None) -> Call:
        """Call ``to`` from ``from_``; Twilio runs ``twiml`` when the call is answered."""
        if not self._account_sid:
            raise ValueError("placing a call needs TWILIO_ACCOUNT_SID")
        form = {"To": to, "From": from_, "Twiml": twiml}
        if status_callback:
            form["StatusCallback"] = status_callback
        reply = await self._http.request(
            Product.API, "POST",
            f"/2010-04-01/Accounts/{path_segment(self._account_sid)}/Calls.json",
            form=form, idempotency_key=idempotency_key,
        )
        return decode(reply, Call, snake)
