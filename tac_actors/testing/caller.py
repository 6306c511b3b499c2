"""A simulated ConversationRelay caller: the Twilio side of a voice socket.

It speaks the frames Twilio sends (``setup``, ``prompt``, ``interrupt``, ``dtmf``,
``error``) and reads the frames the server sends back, either in-process (over a
:class:`~tac_actors.channels.transport.MemoryTransport`) or over a real WebSocket
(:func:`connect_caller`).

Reads never sleep on the real clock: they wait for a frame, and the caller's own test
decides how long that may take (``trio.fail_after`` on a ``MockClock``, typically).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio_websocket

from tac_actors.channels.transport import Transport, TransportClosed
from tac_actors.protocol.relay import (
    Dtmf,
    End,
    ErrorFrame,
    Interrupt,
    OutboundFrame,
    Prompt,
    Setup,
    Text,
    UnknownFrame,
    encode_inbound,
    parse_outbound,
)

__all__ = ["CallEnded", "HeardReply", "SimulatedCaller", "connect_caller", "new_call_sid"]


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


class CallEnded(Exception):
    """The server closed the socket (``code``) or sent ``end`` while a reply was awaited."""

    def __init__(self, code: int | None, reason: str = "", end: End | None = None) -> None:
        super().__init__(f"call ended (close code {code}) {reason}".strip())
        self.code = code
        self.reason = reason
        self.end = end


@attrs.frozen
class HeardReply:
    """One reply as the caller received it: every token up to ``last: true``."""

    tokens: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.tokens)


class SimulatedCaller:
    """Drives one call from Twilio's side over any :class:`Transport` end."""

    def __init__(self, transport: Transport, *, call_sid: str | None = None,
                 from_: str = "+15550001111", to: str = "+15550002222") -> None:
        self.transport = transport
        self.call_sid = call_sid or new_call_sid()
        self.from_ = from_
        self.to = to
        #: every frame received, in order
        self.received: list[OutboundFrame | UnknownFrame] = []
        self.close_code: int | None = None
        self.close_reason = ""

    # -- what Twilio sends --------------------------------------------------------------

    async def setup(self, *, custom_parameters: Mapping[str, str] | None = None,
                    **fields: Any) -> None:
        """Send the ``setup`` frame (extra ``fields`` override the defaults)."""
        values: dict[str, Any] = {
            "call_sid": self.call_sid, "session_id": "VX" + secrets.token_hex(16),
            "account_sid": "AC" + "0" * 32, "from_": self.from_, "to": self.to,
            "direction": "inbound", "call_type": "PSTN", "call_status": "RINGING",
            "custom_parameters": dict(custom_parameters or {}),
        }
        values.update(fields)
        await self.send_raw(encode_inbound(Setup(**values)))

    async def say(self, text: str, *, lang: str = "en-US") -> None:
        """The caller finished saying ``text`` (a ``prompt`` with ``last: true``)."""
        await self.send_raw(encode_inbound(Prompt(voice_prompt=text, lang=lang, last=True)))

    async def say_partial(self, text: str, *, lang: str = "en-US") -> None:
        """An unfinished utterance (``last: false``)."""
        await self.send_raw(encode_inbound(Prompt(voice_prompt=text, lang=lang, last=False)))

    async def interrupt(self, heard: str = "", *, duration_ms: int = 500) -> None:
        """Barge in, having heard ``heard`` of the current reply."""
        frame = Interrupt(utterance_until_interrupt=heard, duration_until_interrupt_ms=duration_ms)
        await self.send_raw(encode_inbound(frame))

    async def press(self, digit: str) -> None:
        """A key press."""
        await self.send_raw(encode_inbound(Dtmf(digit=digit)))

    async def report_error(self, description: str) -> None:
        """Twilio's ``error`` frame."""
        await self.send_raw(encode_inbound(ErrorFrame(description=description)))

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything, well-formed or not (for bad-input tests)."""
        await self.transport.send(data)  # type: ignore[arg-type]

    async def hang_up(self) -> None:
        """Close the socket from Twilio's side."""
        await self.transport.close(1000, "caller hung up")

    # -- what the server sends ------------------------------------------------------------

    async def next_frame(self) -> OutboundFrame | UnknownFrame:
        """The next frame from the server. Raises :class:`CallEnded` when it closed."""
        try:
            data = await self.transport.receive()
        except TransportClosed as closed:
            self.close_code, self.close_reason = closed.code, closed.reason
            raise CallEnded(closed.code, closed.reason) from None
        if isinstance(data, bytes):
            raise AssertionError(f"server sent a binary frame: {data[:40]!r}")
        frame = parse_outbound(data)
        self.received.append(frame)
        return frame

    async def read_reply(self) -> HeardReply:
        """Collect ``text`` tokens up to ``last: true``. Other frames are kept in
        :attr:`received`; ``end`` raises :class:`CallEnded` with the frame."""
        tokens: list[str] = []
        while True:
            frame = await self.next_frame()
            if isinstance(frame, Text):
                if frame.token:
                    tokens.append(frame.token)
                if frame.last:
                    return HeardReply(tuple(tokens))
            elif isinstance(frame, End):
                raise CallEnded(None, "end frame", frame)

    async def wait_closed(self) -> int | None:
        """Read until the server closes; return the close code."""
        while True:
            try:
                await self.next_frame()
            except CallEnded as ended:
                if ended.end is None:
                    return ended.code

    def texts(self) -> list[Text]:
        """Every ``text`` frame received so far."""
        return [f for f in self.received if isinstance(f, Text)]


class _ClientTransport:
    """A trio-websocket client connection as a :class:`Transport`."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws

    async def receive(self) -> str | bytes:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            reason = exc.reason
            raise TransportClosed(reason.code if reason else None,
                                  (reason.reason or "") if reason else "") from None

    async def send(self, text: str | bytes) -> None:
        try:
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed as exc:
            raise TransportClosed(exc.reason.code if exc.reason else None) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.aclose(code, reason)


def sign_url(auth_token: str, url: str) -> str:
    """X-Twilio-Signature for a WebSocket upgrade to ``url``."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@asynccontextmanager
async def connect_caller(url: str, *, auth_token: str | None = None, signature: str | None = None,
                         setup: bool = True, **caller_options: Any
                         ) -> AsyncIterator[SimulatedCaller]:
    """Open a real WebSocket to ``url`` (``ws://host:port/ws``) as Twilio would.

    Signs the upgrade with ``auth_token`` (or sends ``signature`` as given), sends
    ``setup`` unless told not to, and closes the socket on exit.
    """
    headers: list[tuple[bytes, bytes]] = []
    if signature is None and auth_token is not None:
        signature = sign_url(auth_token, url)
    if signature is not None:
        headers.append((b"X-Twilio-Signature", signature.encode()))
    async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
        caller = SimulatedCaller(_ClientTransport(ws), **caller_options)
        try:
            if setup:
                await caller.setup()
            yield caller
        finally:
            # shielded so a cancelled test still closes its socket; bounded so a server
            # that never answers the close cannot hang the test
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 5):
                await ws.aclose()
            stream = getattr(ws, "_stream", None)
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await stream.aclose()
