"""Studio client (``studio.twilio.com``): start a Flow execution, which is how a text
conversation is handed to a human (Flex) or another flow.

The request is form-encoded (``To``, ``From``, ``Parameters`` as a JSON string) and the
answer is snake_case JSON, as in Twilio's classic APIs. Unlike the reference SDK the
host follows the configured region. Not retried without an ``idempotency_key``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from tac_actors.services.http import Product, ServiceHTTP, path_segment
from tac_actors.services.wire import decode, snake

__all__ = ["Execution", "StudioClient"]


@attrs.frozen(kw_only=True)
class Execution:
    """A started Flow execution (``sid`` starts with ``FN``)."""

    sid: str
    flow_sid: str | None = None
    account_sid: str | None = None
    contact_channel_address: str | None = None
    status: str | None = None
    date_created: str | None = None
    url: str | None = None


class StudioClient:
    """Calls to Studio through the shared client."""

    def __init__(self, http: ServiceHTTP) -> None:
        self._http = http

    def __repr__(self) -> str:
        return "StudioClient()"

    async def create_execution(
        self,
        flow_sid: str,
        *,
        to: str,
        from_: str,
        parameters: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Start ``flow_sid`` for the contact ``to``; ``parameters`` becomes
        ``{{flow.data.*}}`` in the flow (e.g. ``{"HandoffData": {...}}``)."""
        form = {"To": to, "From": from_}
        if parameters is not None:
            form["Parameters"] = json.dumps(parameters, separators=(",", ":"))
        reply = await self._http.request(
            Product.STUDIO, "POST", f"/v2/Flows/{path_segment(flow_sid)}/Executions",
            form=form, idempotency_key=idempotency_key,
        )
        return decode(reply, Execution, snake)
