"""Trusted proxies and the front door's peer table (review D10)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import trio

from tac_actors import TAC, TACConfig
from tac_actors.config import HTTPConfig
from tac_actors.protocol.signature import compute_signature
from tac_actors.server.peers import ForwardedTrust, real_client
from tac_actors.server.splice import PeerMap

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


def test_real_client_falls_back_to_what_hypercorn_saw() -> None:
    peers = PeerMap()
    assert real_client(peers, ("127.0.0.1", 5000)) == "127.0.0.1"  # not a splice
    assert real_client(peers, ("203.0.113.9", 5000)) == "203.0.113.9"
    assert real_client(peers, None) is None and real_client(peers, ()) is None


async def connect_from(source: str, port: int) -> trio.SocketStream:
    """A TCP connection to the server on loopback from the local address ``source``."""
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def test_only_the_trusted_proxy_address_is_believed_end_to_end() -> None:
    """Through either engine, forwarded headers count from 127.0.0.2 (the "proxy") and
    not from 127.0.0.1, although with the fast engine hypercorn sees 127.0.0.1 for both."""
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
