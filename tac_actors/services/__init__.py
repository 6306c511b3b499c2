"""Clients for the Twilio products behind Agent Connect, sharing one HTTP client.

Open them all at once from a :class:`~tac_actors.config.TACConfig`::

    async with TwilioServices.open(config) as services:
        configuration = await services.orchestrator.get_configuration()
        chunks = await services.knowledge.search(kb_id, "store hours")

Every call raises only :class:`ServiceError` subclasses on failure; see
:mod:`tac_actors.services.http` for hosts, auth, timeouts and retries.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import httpx
import trio

from tac_actors.services.errors import (
    BadResponse,
    Conflict,
    NotFound,
    RateLimited,
    ServiceError,
    ServiceUnavailable,
)
from tac_actors.services.http import (
    DEFAULT_LIMITS,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Product,
    RetryPolicy,
    ServiceHosts,
    ServiceHTTP,
)
from tac_actors.services.knowledge import KnowledgeClient
from tac_actors.services.memory_api import MemoryClient
from tac_actors.services.messaging import MessagingClient
from tac_actors.services.orchestrator import OrchestratorClient
from tac_actors.services.studio import StudioClient

if TYPE_CHECKING:
    from tac_actors.config import TACConfig

__all__ = [
    "BadResponse",
    "Conflict",
    "KnowledgeClient",
    "MemoryClient",
    "MessagingClient",
    "NotFound",
    "OrchestratorClient",
    "Product",
    "RateLimited",
    "RetryPolicy",
    "ServiceError",
    "ServiceHTTP",
    "ServiceHosts",
    "ServiceUnavailable",
    "StudioClient",
    "TwilioServices",
]

#: seconds closing the pool may take when the owner is being cancelled
_CLOSE_GRACE = 2.0


@attrs.frozen(kw_only=True)
class TwilioServices:
    """Every product client, over one shared :class:`ServiceHTTP`.

    Build it with :meth:`open` (an async context manager that closes the connection
    pool on exit) or :meth:`create` plus :meth:`aclose`.
    """

    http: ServiceHTTP
    orchestrator: OrchestratorClient
    memory: MemoryClient
    knowledge: KnowledgeClient
    studio: StudioClient
    messaging: MessagingClient

    @classmethod
    def create(
        cls,
        config: TACConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        rng: random.Random | None = None,
    ) -> TwilioServices:
        """The clients for ``config`` (credentials, region, URL overrides).

        ``transport`` replaces the network (tests pass an ``httpx.MockTransport`` or the
        emulator's in-process transport). Raises :class:`ValueError` when ``config``
        has no credentials.
        """
        http = ServiceHTTP.from_config(
            config, transport=transport, timeouts=timeouts, limits=limits, retry=retry, rng=rng
        )
        orchestrator = OrchestratorClient(http, config.conversation_configuration_id)
        return cls(
            http=http,
            orchestrator=orchestrator,
            memory=MemoryClient(http),
            knowledge=KnowledgeClient(http),
            studio=StudioClient(http),
            messaging=MessagingClient(http, orchestrator, config.account_sid),
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config: TACConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        rng: random.Random | None = None,
    ) -> AsyncIterator[TwilioServices]:
        """``async with TwilioServices.open(config) as services:`` (see :meth:`create`)."""
        services = cls.create(
            config, transport=transport, timeouts=timeouts, limits=limits, retry=retry, rng=rng
        )
        try:
            yield services
        finally:
            with trio.move_on_after(_CLOSE_GRACE) as scope:
                scope.shield = True
                await services.aclose()

    async def aclose(self) -> None:
        """Close the shared connection pool."""
        await self.http.aclose()
