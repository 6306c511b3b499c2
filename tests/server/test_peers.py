"""Trusted proxies and the front door's peer table (review D10)."""

from __future__ import annotations

import inspect
from functools import partial
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import hypercorn.trio
import pytest
import trio

from tac_actors import TAC, TACConfig
from tac_actors.config import HTTPConfig
from tac_actors.protocol.signature import compute_signature
from tac_actors.server.app import create_app, state_of
from tac_actors.server.fastws import FrontDoor
from tac_actors.server.peers import ForwardedTrust, PeerTable
from tac_actors.server.runner import hypercorn_config

from .conftest import running

TOKEN = "test-auth-token"


def test_forwarded_trust_matches_addresses_and_networks() -> None:
    trust = ForwardedTrust(["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"])
    assert trust.trusts("127.0.0.1") and trust.trusts("10.2.3.4")
    assert trust.trusts("::ffff:10.9.9.9")  # IPv4-mapped, as a dual-stack socket reports
    assert trust.trusts("2001:db8::1")
    assert not trust.trusts("127.0.0.2") and not trust.trusts("203.0.113.9")
    assert not trust.trusts(None) and not trust.trusts("not an address")
    assert not ForwardedTrust([]).trusts("127.0.0.1")  # the default: nobody
    assert ForwardedTrust(["*"]).trusts(None)


def test_http_config_validates_and_reads_the_environment() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        HTTPConfig(forwarded_allow_ips=("localhost",))
    with pytest.raises(ValueError, match="positive"):
        HTTPConfig(body_timeout=0)
    config = TACConfig.from_env({"TAC_FORWARDED_ALLOW_IPS": "127.0.0.1, 10.0.0.0/8",
                                 "TAC_HTTP_MAX_BODY_BYTES": "2048",
                                 "TAC_HTTP_BODY_TIMEOUT": "2.5"})
    assert config.http == HTTPConfig(forwarded_allow_ips=("127.0.0.1", "10.0.0.0/8"),
                                     max_body_bytes=2048, body_timeout=2.5)
    with pytest.raises(ValueError, match="TAC_HTTP_READ_TIMEOUT"):
        TACConfig.from_env({"TAC_HTTP_READ_TIMEOUT": "soon"})
    assert HTTPConfig(forwarded_allow_ips="10.0.0.1, 10.0.0.2").forwarded_allow_ips == (
        "10.0.0.1", "10.0.0.2")


def fake_client(ip: str) -> Any:
    """What the front door holds: the accepted client stream (only its peer is read)."""
    return SimpleNamespace(socket=SimpleNamespace(getpeername=lambda: (ip, 40000)))


async def post_twiml(stream: trio.SocketStream, signature: str) -> bytes:
    """POST /twiml as a proxy would forward it, and read the answer to the end."""
    form = urlencode({"CallSid": "CA1"}).encode()
    await stream.send_all(
        b"POST /twiml HTTP/1.1\r\nHost: internal\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: other-app.example\r\n"
        b"X-Twilio-Signature: " + signature.encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(form) + form)
    answer = b""
    while chunk := await stream.receive_some(65536):
        answer += chunk
    return answer


async def test_the_front_door_contract_on_hypercorn() -> None:
    """The table decides whose headers count: a spliced client from outside is not the
    loopback proxy, though hypercorn sees 127.0.0.1 for both."""
    tac = TAC(TACConfig(auth_token=TOKEN, http=HTTPConfig(forwarded_allow_ips=("127.0.0.1",))))
    app = create_app(tac)
    peers: PeerTable = state_of(app).peers
    signature = compute_signature(TOKEN, "https://other-app.example/twiml", {"CallSid": "CA1"})
    stop = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(
                hypercorn.trio.serve, app, hypercorn_config(tac, "127.0.0.1", 0,
                                                            websockets=False),
                shutdown_trigger=stop.wait))
            port = int(binds[0].rsplit(":", 1)[1])
            # what the front door does for a connection from 203.0.113.9
            upstream = await trio.open_tcp_stream("127.0.0.1", port)
            async with upstream:
                with peers.spliced(upstream, fake_client("203.0.113.9")):
                    assert peers.connections == 1
                    spliced = await post_twiml(upstream, signature)
            assert peers.connections == 0
            # a connection the front door did not splice: its peer is the loopback proxy
            direct = await trio.open_tcp_stream("127.0.0.1", port)
            async with direct:
                trusted = await post_twiml(direct, signature)
            stop.set()
    assert spliced.startswith(b"HTTP/1.1 403")
    assert trusted.startswith(b"HTTP/1.1 200")


def test_peer_table_resolves_only_recorded_hops() -> None:
    table = PeerTable()
    assert table.resolve(("127.0.0.1", 5000)) == "127.0.0.1"
    assert table.resolve(None) is None and table.resolve(()) is None
    gone = SimpleNamespace(socket=SimpleNamespace(getsockname=_raise_oserror))
    with table.spliced(gone, fake_client("203.0.113.9")):  # type: ignore[arg-type]
        assert table.connections == 0  # nothing readable: nothing recorded


def _raise_oserror() -> Any:
    raise OSError("socket closed")


async def connect_from(source: str, port: int) -> trio.SocketStream:
    """A TCP connection to the server on loopback from the local address ``source``."""
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def test_only_the_trusted_proxy_address_is_believed_end_to_end(
        engine: str, request: pytest.FixtureRequest) -> None:
    """Through either engine, forwarded headers count from 127.0.0.2 (the "proxy") and
    not from 127.0.0.1, although with the fast engine hypercorn sees 127.0.0.1 for both."""
    if engine == "fast" and "peers" not in inspect.signature(FrontDoor).parameters:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="the front door does not record its splices in a PeerTable "
            "yet (contract in tac_actors/server/peers.py)"))
    tac = TAC(TACConfig(auth_token=TOKEN, http=HTTPConfig(forwarded_allow_ips=("127.0.0.2",))))
    signature = compute_signature(TOKEN, "https://other-app.example/twiml", {"CallSid": "CA1"})
    async with running(tac) as base:
        port = int(base.rsplit(":", 1)[1])
        with trio.fail_after(10):
            proxy = await connect_from("127.0.0.2", port)
            async with proxy:
                from_proxy = await post_twiml(proxy, signature)
            outsider = await connect_from("127.0.0.1", port)
            async with outsider:
                from_outsider = await post_twiml(outsider, signature)
    assert from_proxy.startswith(b"HTTP/1.1 200"), from_proxy[:300]
    assert from_outsider.startswith(b"HTTP/1.1 403")
