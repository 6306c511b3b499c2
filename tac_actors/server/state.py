"""What the routes of one mounted TAC share: the app definition, the running runtime,
the signature validator, the front door's record of spliced connections and the trust in
forwarded headers. Its own module so that route modules (metrics, playground) can name it
without importing the app module that includes them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from tac_actors._logsafe import LogLimiter
from tac_actors.protocol.signature import SignatureValidator
from tac_actors.runtime import Runtime
from tac_actors.server.peers import ForwardedTrust, real_client
from tac_actors.server.splice import PeerMap
from tac_actors.tac import TAC

if TYPE_CHECKING:
    from tac_actors.server.frontdoor import FrontDoor

__all__ = ["ServerState"]

log = logging.getLogger("tac_actors.server")


class ServerState:
    """What the routes of one mounted TAC share."""

    def __init__(self, tac: TAC) -> None:
        self.tac = tac
        self.runtime: Runtime | None = None
        self.stopped = trio.Event()
        token = tac.config.auth_token if tac.config.validate_signatures else None
        self.validator = SignatureValidator(token) if token else None
        #: the front door's record of spliced connections (fast engine)
        self.peers = PeerMap()
        self.trust = ForwardedTrust(tac.config.http.forwarded_allow_ips)
        #: rejected requests: one line per peer and minute, the rest counted
        self.rejected = LogLimiter(log, interval=60.0)
        #: the fast engine's front door, when it serves (read by /metrics)
        self.door: FrontDoor | None = None
        #: why the runtime failed to start, for the server to report it by name
        self.startup_error: Exception | None = None

    def peer(self, scope: Mapping[str, Any]) -> str | None:
        """The real client address of a request (see :func:`real_client`)."""
        return real_client(self.peers, scope.get("client"))

    def require_runtime(self) -> Runtime:
        """The runtime; raises why it failed to start (e.g. a bad configuration), or
        :class:`RuntimeError` when it is not running."""
        if self.runtime is None:
            if self.startup_error is not None:
                raise self.startup_error
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
        self.rejected.flush()  # the counts of rejections not logged yet
        self.stopped.set()
