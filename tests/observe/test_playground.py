"""The /playground page in headless Chromium, talking to the agent over the real /ws.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped
where they are missing. The browser is driven through chromedriver's W3C WebDriver HTTP
API directly (a few requests; no selenium). Real sockets and a real browser: each wait
polls the page under ``fail_after``. When a test fails inside the browser, a screenshot
of the page (WebDriver's screenshot endpoint) is saved to a temporary folder and its path
printed."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from tac_actors import TAC, TACConfig
from tac_actors.emulator import Emulator
from tac_actors.emulator.seed import EXAMPLE_SEED
from tac_actors.server import serve
from tac_actors.testing import token_stream

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

needs_chromium = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                    reason="needs chromium and chromium-driver (apt-get)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """A WebDriver session (just what the test needs)."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http = http
        self.base = base

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, self.base + path, json=body)
        value = response.json()["value"]
        if response.status_code != 200:
            raise AssertionError(f"webdriver {method} {path}: {value}")
        return value

    async def find(self, css: str) -> str:
        found = await self.call("POST", "/element", {"using": "css selector", "value": css})
        return str(found[ELEMENT])

    async def click(self, css: str) -> None:
        await self.call("POST", f"/element/{await self.find(css)}/click", {})

    async def type(self, css: str, text: str) -> None:
        await self.call("POST", f"/element/{await self.find(css)}/value", {"text": text})

    async def script(self, source: str) -> Any:
        return await self.call("POST", "/execute/sync", {"script": source, "args": []})

    async def screenshot(self) -> trio.Path:
        """Save a PNG of the page to a new temporary folder; its path."""
        png = base64.b64decode(await self.call("GET", "/screenshot"))
        path = trio.Path(tempfile.mkdtemp(prefix="playground-")) / "screenshot.png"
        await path.write_bytes(png)
        return path

    async def wait_for(self, source: str) -> Any:
        """Poll a JavaScript expression until it is truthy (the page changes on its own:
        there is nothing to wait on but the DOM)."""
        while True:
            value = await self.script("return " + source)
            if value:
                return value
            await trio.sleep(0.05)


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    port = _free_port()
    assert DRIVER is not None and CHROMIUM is not None
    async with trio.open_nursery() as nursery:
        process = await nursery.start(partial(trio.run_process, [DRIVER, f"--port={port}"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              check=False))
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                base = f"http://127.0.0.1:{port}"
                while True:  # chromedriver takes a moment to listen
                    try:
                        await http.get(base + "/status")
                        break
                    except httpx.TransportError:
                        await trio.sleep(0.05)
                options = {"binary": CHROMIUM, "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage"]}
                session = await http.post(base + "/session", json={"capabilities": {
                    "alwaysMatch": {"goog:chromeOptions": options}}})
                session_id = session.json()["value"]["sessionId"]
                page = Browser(http, f"{base}/session/{session_id}")
                try:
                    yield page
                except BaseException:
                    # a failing (or timed-out) test: keep what the page showed
                    with trio.CancelScope(shield=True), trio.move_on_after(10):
                        try:
                            print(f"playground screenshot: {await page.screenshot()}")
                        except Exception as exc:
                            print(f"playground screenshot failed: {exc!r}")
                    raise
                finally:
                    await http.delete(f"{base}/session/{session_id}")
        finally:
            process.terminate()


@needs_chromium
async def test_playground_calls_the_agent_streams_and_barges_in() -> None:
    tac = TAC(TACConfig())
    parked = trio.Event()

    @tac.on_message_ready
    async def cb(message: str, session: Any, memory: Any) -> Any:
        if message == "long story":
            async def forever() -> Any:
                yield "once upon "
                yield "a time"
                parked.set()
                await trio.sleep_forever()
            return forever()
        return token_stream([f"{session.caller} ", "said: ", message])

    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                shutdown_trigger=stop.wait))
            async with browser() as page:
                await page.call("POST", "/url", {"url": binds[0] + "/playground"})
                await page.click("#connect")
                await page.wait_for("!document.getElementById('message').disabled")
                await page.type("#message", "hello there")
                await page.click("#send")
                agent = await page.wait_for(
                    "Array.from(document.querySelectorAll('.agent'))"
                    ".filter(e => e.dataset.done).map(e => e.textContent)[0]")
                assert agent == "+15551230001 said: hello there"
                await page.type("#message", "long story")
                await page.click("#send")
                await parked.wait()
                await page.wait_for("document.querySelectorAll('.agent').length == 2 && "
                                    "document.querySelectorAll('.agent')[1].textContent "
                                    "== 'once upon a time'")
                await page.click("#interrupt")
                # the server acknowledges; the next prompt is answered as usual
                await page.type("#message", "after")
                await page.click("#send")
                last = await page.wait_for(
                    "Array.from(document.querySelectorAll('.agent'))"
                    ".filter(e => e.textContent.endsWith('after')).map(e => e.textContent)[0]")
                assert last == "+15551230001 said: after"
                assert await page.script("return document.querySelectorAll('.agent')[1]"
                                         ".classList.contains('interrupted')")
                await page.click("#hangup")
                status = await page.wait_for("document.getElementById('status').textContent"
                                             ".startsWith('call over') && document"
                                             ".getElementById('status').textContent")
                assert "1000" in status
            stop.set()


async def test_playground_is_off_when_signatures_are_checked() -> None:
    tac = TAC(TACConfig(auth_token="secret"))
    tac.on_message_ready(lambda message, session, memory: "hi")
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                shutdown_trigger=stop.wait))
            async with httpx.AsyncClient() as http:
                answer = await http.get(binds[0] + "/playground")
            stop.set()
    assert answer.status_code == 404 and "X-Twilio-Signature" in answer.text


@needs_chromium
async def test_playground_texts_the_agent_through_the_emulator() -> None:
    async with Emulator.running(seed=EXAMPLE_SEED) as emu:
        tac = TAC(emu.tac_config())

        @tac.on_message_ready
        async def cb(message: str, session: Any, memory: Any) -> str:
            return f"[{session.channel}] you said: {message}"

        stop = trio.Event()
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                    shutdown_trigger=stop.wait))
                async with browser() as page:
                    await page.call("POST", "/url", {"url": binds[0] + "/playground"})
                    await page.wait_for("!document.getElementById('sms').hidden")
                    for text in ("hello", "again"):
                        await page.type("#sms-message", text)
                        await page.click("#sms-send")
                        reply = await page.wait_for(
                            "Array.from(document.querySelectorAll('#sms-log .agent'))"
                            f".map(e => e.textContent).filter(t => t.endsWith('{text}'))[0]")
                        assert reply == f"[sms] you said: {text}"
                    replies = await page.script(
                        "return Array.from(document.querySelectorAll('#sms-log .agent'))"
                        ".map(e => e.textContent)")
                    assert replies == ["[sms] you said: hello", "[sms] you said: again"]
                stop.set()


@needs_chromium
async def test_without_the_emulator_the_page_has_no_texting(capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda message, session, memory: "hi")
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                shutdown_trigger=stop.wait))
            async with httpx.AsyncClient() as http:
                assert (await http.post(binds[0] + "/playground/sms", json={})).status_code \
                    == 404
            # and a failing browser test leaves a screenshot behind
            failed = False
            try:
                async with browser() as page:
                    await page.call("POST", "/url", {"url": binds[0] + "/playground"})
                    assert await page.script("return document.getElementById('sms').hidden")
                    raise AssertionError("on purpose")
            except* AssertionError:  # (wrapped in the browser's nursery's group)
                failed = True
            assert failed
            stop.set()
    printed = capsys.readouterr().out
    assert "playground screenshot: " in printed
    shot = trio.Path(printed.split("playground screenshot: ")[1].split()[0])
    assert (await shot.read_bytes()).startswith(b"\x89PNG")
    await trio.to_thread.run_sync(shutil.rmtree, shot.parent)
