"""One hostile or broken conversation never takes down or starves another: each attack
runs next to a bystander call that must keep getting correct answers (real loopback
sockets, both engines, every test bounded by ``fail_after``)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.protocol import End, Text
from tac_actors.server.fastws import FastTransport
from tac_actors.server.frontdoor import FrontDoor
from tac_actors.testing import CallEnded, SimulatedCaller, connect_caller

from .conftest import running


def app(ended_gate: trio.Event | None = None) -> TAC:
    tac = TAC(TACConfig())

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "bye":
            await session.end()
            return None
        if message == "surrogate":
            return "half an emoji: \ud83d"
        return f"echo: {message}"

    @tac.on_conversation_ended
    async def ended(session: Any) -> None:
        if ended_gate is not None and session.caller == "+15550000001":
            await ended_gate.wait()

    return tac


async def bystander_ok(caller: SimulatedCaller, n: int = 3) -> None:
    for i in range(n):
        await caller.say(f"still there {i}?")
        assert (await caller.read_reply()).text == f"echo: still there {i}?"


async def test_a_frame_after_our_end_while_the_end_hook_runs(engine: str) -> None:
    """Review C1: the frame raised ClosedResourceError out of the reader into
    serve_listeners, and every call died."""
    gate = trio.Event()
    with trio.fail_after(20):
        async with running(app(gate), engine) as url, connect_caller(url) as bystander:
            async with connect_caller(url, from_="+15550000001") as hostile:
                await hostile.say("bye")
                while not isinstance(await hostile.next_frame(), End):
                    pass
                for _ in range(5):  # Twilio may still be sending
                    try:
                        await hostile.say("one more thing")
                        await hostile.interrupt()
                    except CallEnded:
                        break
                await trio.testing.wait_all_tasks_blocked(cushion=0.01)
                await bystander_ok(bystander)
                gate.set()
            await bystander_ok(bystander)


async def test_a_reply_with_a_lone_surrogate(engine: str) -> None:
    """Review D1: on the fast engine the process exited."""
    with trio.fail_after(20):
        async with running(app(), engine) as url, connect_caller(url) as bystander:
            async with connect_caller(url) as hostile:
                await hostile.say("surrogate")
                reply = await hostile.read_reply()
                assert reply.text.startswith("half an emoji")
            await bystander_ok(bystander)


async def test_a_peer_flooding_frames(engine: str) -> None:
    """Review C4: a peer streaming frames at line rate starved every call."""
    with trio.fail_after(30):
        async with running(app(), engine) as url, connect_caller(url) as bystander:
            async with connect_caller(url) as hostile, trio.open_nursery() as nursery:

                async def flood() -> None:
                    with trio.move_on_after(5):
                        for i in range(20_000):
                            await hostile.send_raw(json.dumps({"type": "info", "n": i}))
                        await hostile.say("after the flood")
                        assert (await hostile.read_reply()).text == "echo: after the flood"

                nursery.start_soon(flood)
                await bystander_ok(bystander, 5)


async def test_garbage_then_a_good_call(engine: str) -> None:
    """Bad frames get their documented close code and are logged as bounded excerpts;
    the next call is served."""
    with trio.fail_after(20):
        async with running(app(), engine) as url:
            async with connect_caller(url) as hostile:
                for _ in range(10):
                    await hostile.send_raw("{not json" + "\n\x1b[31mFORGED" * 500)
                assert await hostile.wait_closed() == 1007
            async with connect_caller(url) as bystander:
                await bystander_ok(bystander)


async def test_front_door_contains_a_failing_handler_and_an_unreachable_backend() -> None:
    """Review C2/D2: an exception in a connection's handler, or hypercorn unreachable
    (EMFILE, gone), escaped into serve_listeners."""
    calls = 0

    async def serve_socket(transport: FastTransport, request: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in a handler")
        await transport.receive()
        await transport.send(json.dumps({"type": "text", "token": "ok", "last": True}))
        await transport.close()

    with trio.fail_after(20):
        closed = await trio.open_tcp_listeners(0, host="127.0.0.1")
        dead_port = closed[0].socket.getsockname()[1]
        await closed[0].aclose()  # nothing listens there now
        door = FrontDoor(voice_path="/ws", internal=("127.0.0.1", dead_port),
                         max_frame_bytes=65536, serve_socket=serve_socket)
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, door.handle, listeners)
            url = f"ws://127.0.0.1:{port}/ws"
            async with connect_caller(url, setup=False) as first:
                assert await first.wait_closed() == 1011
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://127.0.0.1:{port}/health")
                assert response.status_code == 502
            async with connect_caller(url, setup=False) as second:
                await second.send_raw("{}")
                assert await second.next_frame() == Text(token="ok", last=True)
            assert door.statistics().failed == 1
            nursery.cancel_scope.cancel()
