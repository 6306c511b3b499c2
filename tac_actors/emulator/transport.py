"""The emulator's in-process httpx transport: requests go straight to the ASGI app.

Why not ``httpx.ASGITransport`` alone: it iterates the request body with an async
generator (``ByteStream.__aiter__``) that it never closes. When the app stops reading
after the first chunk (quart-trio 0.13 cancels its body reader as soon as the handler
returns), that generator is abandoned half-way and trio reports it at garbage collection
as a ``ResourceWarning`` (encode/httpx issue 3686). Here the body is read up front and
handed to the app through a plain iterator object, which holds nothing to close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["InProcessTransport"]


class InProcessTransport(httpx.AsyncBaseTransport):
    """Sends each request to ``app`` (an ASGI app) in the caller's task; no sockets,
    so it runs under ``trio.testing.MockClock``. Cancellation of the caller cancels the
    app's handling of the request, as with ``httpx.ASGITransport``."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers,
            stream=_Body(body), extensions=request.extensions,
        )
        return await self._asgi.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self._asgi.aclose()


class _Body(httpx.AsyncByteStream):
    """A request body already in memory, re-iterable, iterated without a generator."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Chunks([self._body] if self._body else [])

    async def aclose(self) -> None:
        pass


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop(0)
