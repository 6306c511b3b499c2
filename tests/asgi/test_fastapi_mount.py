"""The engine mounted into a FastAPI app served by real uvicorn, end to end over loopback:
TwiML, a voice call over the WebSocket (with a barge-in), the app's own route, and an
asyncio callback running on uvicorn's loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import httpx
import pytest
import trio

from tac_actors import TAC, TACConfig
from tac_actors.asgi import asgi
from tac_actors.protocol import Text
from tac_actors.protocol.signature import compute_signature
from tac_actors.testing import connect_caller

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """uvicorn serving ``app`` in a thread (its own asyncio loop)."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.up = threading.Event()
        up = self.up

        class Server(uvicorn.Server):  # type: ignore[misc]
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets)
                up.set()

        self.server = Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                            log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def __aenter__(self) -> str:
        self.thread.start()
        assert await trio.to_thread.run_sync(self.up.wait, 10), "uvicorn did not start"
        return f"127.0.0.1:{self.port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await trio.to_thread.run_sync(self.thread.join, 10)


def make_app(tac: TAC) -> Any:
    tac_app = asgi(tac)
    app = fastapi.FastAPI(lifespan=tac_app.lifespan)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "from fastapi"}

    app.mount("/tac", tac_app)
    return app


TOKEN = "test-auth-token"


async def test_a_call_through_fastapi_and_uvicorn() -> None:
    tac = TAC(TACConfig(auth_token=TOKEN), asyncio=True)
    loops: list[str] = []
    interrupted = threading.Event()

    @tac.on_message_ready
    async def reply(message: str, session: Any, memory: Any) -> Any:
        loops.append(threading.current_thread().name)
        await asyncio.sleep(0)
        if message == "long":
            async def tokens() -> Any:
                yield "one "
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    interrupted.set()
                    raise
                yield "never"
            return tokens()
        return f"you said {message}"

    with trio.fail_after(30):
        async with Served(make_app(tac)) as host, httpx.AsyncClient() as http:
            assert (await http.get(f"http://{host}/hello")).json() == {"hello": "from fastapi"}
            form = {"CallSid": "CA1", "From": "+15551230001", "To": "+15550000000"}
            url = f"http://{host}/tac/twiml"
            unsigned = await http.post(url, data=form)
            assert unsigned.status_code == 403
            twiml = await http.post(url, data=form, headers={
                "X-Twilio-Signature": compute_signature(TOKEN, url, form)})
            assert twiml.status_code == 200 and "<ConversationRelay" in twiml.text
            assert f"ws://{host}/tac/ws" in twiml.text
            health = (await http.get(f"http://{host}/tac/health")).json()
            assert health["status"] == "ok"
            async with connect_caller(f"ws://{host}/tac/ws", auth_token=TOKEN) as caller:
                await caller.say("hi")
                assert (await caller.read_reply()).text == "you said hi"
                await caller.say("long")
                assert await caller.next_frame() == Text(token="one ", last=False)
                await caller.interrupt(heard="one")
                while True:
                    frame = await caller.next_frame()
                    if isinstance(frame, Text) and frame.token == "" and frame.last:
                        break
                assert await trio.to_thread.run_sync(interrupted.wait, 10)
                await caller.say("again")
                assert (await caller.read_reply()).text == "you said again"
    # asyncio callbacks ran on uvicorn's thread (the host loop), not a private one
    assert loops and all(name != "tac-asyncio" for name in loops)


async def test_compat_server_mounts_into_your_fastapi_app() -> None:
    from tac_actors.compat import TAC as CompatTAC
    from tac_actors.compat.server import TACFastAPIServer

    tac = CompatTAC(TACConfig())

    async def on_message(message: str, context: Any, memory: Any) -> str:
        await asyncio.sleep(0)
        return f"{context.channel}: {message}"

    tac.on_message_ready(on_message)
    app = fastapi.FastAPI()

    @app.get("/mine")
    async def mine() -> dict[str, bool]:
        return {"mine": True}

    server = TACFastAPIServer(tac, app=app)
    with trio.fail_after(30):
        async with Served(server.app) as host, httpx.AsyncClient() as http:
            assert (await http.get(f"http://{host}/mine")).json() == {"mine": True}
            assert (await http.get(f"http://{host}/health")).json()["status"] == "ok"
            async with connect_caller(f"ws://{host}/ws") as caller:
                await caller.say("hi")
                assert (await caller.read_reply()).text == "VOICE: hi"
