"""Fixtures of the shared-store tests: a real Redis (session-wide) and a store of each
implementation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tac_actors.store import ConversationStore, LocalStore

from .redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


MakeStore = Callable[[str], ConversationStore]


@pytest.fixture(params=["local", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """``make_store(node)``: a view of one fresh store as process ``node`` sees it (every
    call shares the same data), in memory or in a real Redis (a fresh key prefix)."""
    if request.param == "local":
        first = LocalStore(node="n0")
        yield lambda node: first.peer(node)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    from tac_actors.store.redis import RedisStore

    prefix = f"t{uuid.uuid4().hex[:8]}:"
    async with RedisStore.open(server.url, prefix=prefix) as base:
        yield lambda node: RedisStore(base._client, node=node, prefix=prefix)
