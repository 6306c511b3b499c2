"""Splicing: pass an HTTP connection from the front door to hypercorn untouched.

The connection reaches hypercorn from the front door's loopback socket, so hypercorn
sees 127.0.0.1 as every client. :class:`PeerMap` keeps, for each spliced connection, the
real client address under the local port hypercorn sees it come from; the app looks it
up (:meth:`PeerMap.client_of`) where it needs the client's address (forwarded headers
are honoured only from trusted proxies). The entry lives exactly as long as the splice.

If hypercorn cannot be reached (it is gone, or no file descriptor is left), the client
gets ``502 Bad Gateway`` and the connection is closed: the failure stays with it.
"""

from __future__ import annotations

import logging

import trio

from tac_actors.server.fastws import RECEIVE_SIZE

__all__ = ["PeerMap", "splice"]

log = logging.getLogger("tac_actors.server")

_BAD_GATEWAY = (b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n"
                b"content-length: 16\r\nconnection: close\r\n\r\nserver is busy.\n")


class PeerMap:
    """Client addresses of spliced connections, by the local port of the internal hop."""

    def __init__(self) -> None:
        self._by_port: dict[int, tuple[str, int]] = {}
        self.unreachable = 0

    def client_of(self, internal_port: int) -> tuple[str, int] | None:
        """The real client behind the internal connection from ``internal_port``."""
        return self._by_port.get(internal_port)

    def __len__(self) -> int:
        return len(self._by_port)

    def _add(self, port: int, client: tuple[str, int]) -> None:
        self._by_port[port] = client

    def _remove(self, port: int) -> None:
        self._by_port.pop(port, None)


async def splice(client: trio.SocketStream, head: bytes, internal: tuple[str, int],
                 peers: PeerMap) -> None:
    """Pass ``client`` (whose first bytes, ``head``, were already read) to ``internal``
    in both directions until either side ends. Never raises for a network failure."""
    try:
        upstream = await trio.open_tcp_stream(*internal)
    except OSError as exc:
        peers.unreachable += 1
        if peers.unreachable == 1 or not peers.unreachable % 1000:
            log.warning("cannot reach the internal HTTP server (%s): 502 (%d so far)", exc,
                        peers.unreachable)
        try:
            await client.send_all(_BAD_GATEWAY)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return
    port = upstream.socket.getsockname()[1]
    try:
        peers._add(port, _address(client))
    except OSError:  # the client is already gone
        pass
    try:
        async with upstream:
            await upstream.send_all(head)
            async with trio.open_nursery() as nursery:

                async def up() -> None:
                    try:
                        while data := await client.receive_some(RECEIVE_SIZE):
                            await upstream.send_all(data)
                        await upstream.send_eof()
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        nursery.cancel_scope.cancel()

                nursery.start_soon(up)
                try:
                    while data := await upstream.receive_some(RECEIVE_SIZE):
                        await client.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                nursery.cancel_scope.cancel()
    finally:
        peers._remove(port)


def _address(stream: trio.SocketStream) -> tuple[str, int]:
    name = stream.socket.getpeername()
    return str(name[0]), int(name[1])
