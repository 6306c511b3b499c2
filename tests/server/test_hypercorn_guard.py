"""hypercorn's connections contain their own failures (a connection that raises inside
hypercorn took the whole server down under load)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tac_actors.hypercorn_guard import contain_connection_failures

from .conftest import running
from .test_e2e import echo


async def test_a_connection_that_fails_inside_hypercorn_closes_alone(
        monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    from hypercorn.protocol.h11 import H11Protocol

    contain_connection_failures()
    original = H11Protocol.handle
    calls = 0

    async def failing(self: Any, event: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise trio.BusyResourceError("another task is currently sending data")
        await original(self, event)

    monkeypatch.setattr(H11Protocol, "handle", failing)
    async with running(echo()) as base, httpx.AsyncClient() as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(base + "/health")  # the failing connection is dropped
        assert (await http.get(base + "/health")).status_code == 200  # the server lives
