"""Who is really at the other end of an HTTP request, and whether to believe its proxy.

Twilio signs the URL it requested. Behind a proxy the server sees another scheme and host,
so the URL is rebuilt from ``X-Forwarded-Proto``/``X-Forwarded-Host``; but anyone can send
those headers, and with them replay a signature Twilio made for another host (review
D10). So they are believed only from the peers listed in
:attr:`~tac_actors.config.HTTPConfig.forwarded_allow_ips` (:class:`ForwardedTrust`).

With the fast engine every HTTP connection reaches hypercorn through the front door's
loopback splice, so hypercorn sees ``127.0.0.1`` as the peer of every request. The front
door therefore records, per spliced connection, the real client address in a
:class:`PeerTable` keyed by the local address of its connection to hypercorn, which is
exactly the ``(host, port)`` hypercorn reports as ``scope["client"]``. The contract:

* the front door calls ``with peers.spliced(upstream, client):`` right after connecting to
  hypercorn and before sending it a byte, and stays inside until ``upstream`` is closed;
* the routes call :meth:`PeerTable.resolve` with ``scope["client"]``: the real client
  address for a spliced connection, the address hypercorn saw for any other.

A table rather than a header (``X-Real-IP`` added by the front door): the front door only
reads the first request head of a connection and splices the rest untouched, so a header
would mark only the first request of a kept-alive connection, and a forged copy of it in
a later request could not be told apart. The table covers every request on the
connection and puts nothing on the wire that a client could imitate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import trio

__all__ = ["ForwardedTrust", "PeerTable"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(ip: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ForwardedTrust:
    """Whether a peer's ``X-Forwarded-*`` headers are believed: its address is in one of
    ``allow`` (addresses, networks such as ``10.0.0.0/8``, or ``"*"`` for any peer).
    Nothing is believed from an unknown peer (``None``) unless ``"*"`` is listed."""

    def __init__(self, allow: Iterable[str]) -> None:
        entries = tuple(allow)
        self.any = "*" in entries
        self.networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")

    def trusts(self, peer: str | None) -> bool:
        if self.any:
            return True
        if peer is None or not self.networks:
            return False
        address = _address(peer)
        return address is not None and any(address in net for net in self.networks)


class PeerTable:
    """The real client address of each connection the front door splices to hypercorn
    (see the module doc for the contract). Entries live exactly as long as their
    ``spliced`` block; the table never holds more entries than open splices."""

    def __init__(self) -> None:
        self._peers: dict[tuple[str, int], str] = {}

    @property
    def connections(self) -> int:
        """How many spliced connections are recorded now."""
        return len(self._peers)

    @contextmanager
    def spliced(self, upstream: trio.SocketStream, client: trio.SocketStream
                ) -> Iterator[None]:
        """Record that ``upstream`` (our connection to hypercorn) carries ``client``'s
        requests, until the block ends. If either address cannot be read (the socket is
        already gone), nothing is recorded and hypercorn's own view stands."""
        try:
            hop = upstream.socket.getsockname()
            peer = client.socket.getpeername()
        except OSError:
            yield
            return
        key = (str(hop[0]), int(hop[1]))
        self._peers[key] = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        try:
            yield
        finally:
            self._peers.pop(key, None)

    def resolve(self, client: Sequence[Any] | None) -> str | None:
        """The real address behind ``client``, a ``(host, port)`` as hypercorn reports in
        ``scope["client"]`` (``None`` when it is not known)."""
        if not client or len(client) < 2:
            return None
        host = str(client[0])
        try:
            key = (host, int(client[1]))
        except (TypeError, ValueError):
            return host
        return self._peers.get(key, host)
