"""Who is really at the other end of an HTTP request, and whether to believe its proxy.

Twilio signs the URL it requested. Behind a proxy the server sees another scheme and host,
so the URL is rebuilt from ``X-Forwarded-Proto``/``X-Forwarded-Host``; but anyone can send
those headers, and with them replay a signature Twilio made for another host (review
D10). So they are believed only from the peers listed in
:attr:`~tac_actors.config.HTTPConfig.forwarded_allow_ips` (:class:`ForwardedTrust`).

With the fast engine every HTTP connection reaches hypercorn through the front door's
loopback splice, so hypercorn sees ``127.0.0.1`` as the peer of every request. The splice
records the real client of each spliced connection in a
:class:`~tac_actors.server.splice.PeerMap`, under the local port of its connection to
hypercorn, which is the port hypercorn reports in ``scope["client"]``; :func:`real_client`
looks it up. A map rather than a header added by the front door: the front door reads only
the first request head of a connection and splices the rest untouched, so a header would
mark only the first request of a kept-alive connection, and a forged copy of it in a later
request could not be told apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from tac_actors.server.splice import PeerMap

__all__ = ["ForwardedTrust", "real_client"]

#: where the front door's connections to hypercorn come from
_LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})

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


def real_client(peers: PeerMap, client: Sequence[Any] | None) -> str | None:
    """The real address of the client behind ``client``, the ``(host, port)`` hypercorn
    reports in ``scope["client"]``: the front door's record for a spliced connection (it
    comes from loopback), else ``client``'s own host. ``None`` when it is not known."""
    if not client or len(client) < 2:
        return None
    host = str(client[0])
    if host in _LOOPBACK:
        try:
            spliced = peers.client_of(int(client[1]))
        except (TypeError, ValueError):
            spliced = None
        if spliced is not None:
            return spliced[0]
    return host
