"""QuartTransport turns only "the socket is gone" into TransportClosed (review C16)."""

from __future__ import annotations

import pytest
import trio
from hypercorn.utils import UnexpectedMessageError

from tac_actors.channels.transport import TransportClosed
from tac_actors.server.quart_transport import QuartTransport


class FakeWebsocket:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def send(self, text: str) -> None:
        await trio.lowlevel.checkpoint()
        raise self.error

    async def close(self, code: int, reason: str) -> None:
        await trio.lowlevel.checkpoint()
        raise self.error


@pytest.mark.parametrize("gone", [UnexpectedMessageError("CLOSED", "websocket.send"),  # type: ignore[arg-type]
                                  trio.BrokenResourceError(), trio.ClosedResourceError()])
async def test_a_vanished_socket_is_transport_closed(gone: Exception) -> None:
    transport = QuartTransport(FakeWebsocket(gone))
    with pytest.raises(TransportClosed):
        await transport.send("hi")
    await transport.close(1000)  # already closed: nothing to do


async def test_a_bug_is_not_mistaken_for_a_hang_up() -> None:
    transport = QuartTransport(FakeWebsocket(TypeError("a bug")))
    with pytest.raises(TypeError):
        await transport.send("hi")
    with pytest.raises(TypeError):
        await QuartTransport(FakeWebsocket(TypeError("a bug"))).close(1000)
