"""A texter for a server in another process: ``tac-actors text`` against ``tac-actors dev``.

:class:`~tac_actors.testing.texter.SimulatedTexter` needs the emulator in its own
process. :class:`RemoteTexter` does the same three steps over HTTP, as Twilio would:

1. find or create the Orchestrator conversation in the emulator (``POST
   /v2/Conversations``; a 409 names the active conversation of these participants,
   which is then reused, so texting again from the same number continues it);
2. store the person's message (``POST .../Communications``);
3. deliver the ``COMMUNICATION_CREATED`` webhook to the server, signed when an auth
   token is given, and wait for the agent's replies in the emulator's record of sent
   messages (``GET /_emulator/messages``, polled every :data:`POLL_INTERVAL` seconds).

Where the emulator is, and which conversation configuration and agent number to use,
come from the server's ``GET /status`` (its ``dev`` block, present under ``tac-actors
dev``) unless given.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import attrs
import httpx
import trio

from tac_actors.protocol.signature import body_sha256, compute_signature

__all__ = ["POLL_INTERVAL", "DevInfo", "RemoteTexter", "TextingError"]

#: seconds between two looks at the emulator's sent messages
POLL_INTERVAL = 0.1


class TextingError(Exception):
    """Something the person texting has to fix (printed without a traceback)."""


@attrs.frozen
class DevInfo:
    """What a texter needs to know about a ``tac-actors dev`` server."""

    emulator_url: str
    configuration_id: str
    agent_address: str

    @classmethod
    async def fetch(cls, client: httpx.AsyncClient, server_url: str,
                    auth_token: str | None = None) -> DevInfo:
        """Read the ``dev`` block of the server's ``/status``.

        Raises :class:`TextingError` when the server cannot say (not a ``dev`` server,
        a wrong token)."""
        headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
        try:
            response = await client.get(server_url.rstrip("/") + "/status", headers=headers)
        except httpx.HTTPError as exc:
            raise TextingError(f"cannot reach {server_url}: {exc}") from None
        if response.status_code == 401:
            raise TextingError(f"{server_url}/status wants the auth token: pass --auth-token")
        if response.status_code != 200:
            raise TextingError(f"{server_url}/status answered HTTP {response.status_code}")
        dev = response.json().get("dev")
        if not dev:
            raise TextingError(f"{server_url} is not a `tac-actors dev` server with the "
                               "emulator: pass --emulator URL --configuration ID --agent "
                               "ADDRESS")
        return cls(dev["services_url"], dev["configuration_id"], dev["agent_address"])


class RemoteTexter:
    """One person texting one server over HTTP (see the module docstring)."""

    def __init__(self, client: httpx.AsyncClient, server_url: str, info: DevInfo, *,
                 address: str, channel: str = "sms", auth_token: str | None = None,
                 webhook_path: str = "/webhook") -> None:
        self.client = client
        self.server_url = server_url.rstrip("/")
        self.info = info
        self.address = address
        self.channel = channel.upper()
        self.auth_token = auth_token
        self.webhook_path = webhook_path
        self.conversation_id: str | None = None
        self._seen: set[str] = set()
        self._auth = httpx.BasicAuth("AC" + "0" * 32, "emulator")

    async def _emulator(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            return await self.client.request(method, self.info.emulator_url.rstrip("/") + path,
                                             json=body, auth=self._auth)
        except httpx.HTTPError as exc:
            raise TextingError(f"cannot reach the emulator at {self.info.emulator_url}: "
                               f"{exc}") from None

    async def _conversation(self) -> str:
        if self.conversation_id is not None:
            return self.conversation_id
        agent = self.info.agent_address
        if self.channel == "WHATSAPP" and not agent.startswith("whatsapp:"):
            agent = "whatsapp:" + agent
        response = await self._emulator("POST", "/v2/Conversations", {
            "configurationId": self.info.configuration_id,
            "participants": [
                {"type": "CUSTOMER", "addresses": [
                    {"channel": self.channel, "address": self.address}]},
                {"type": "AI_AGENT", "addresses": [
                    {"channel": self.channel, "address": agent}]},
            ]})
        if response.status_code == 409:
            existing = response.headers.get("X-Conflicting-Resource-Id")
            if existing:
                self.conversation_id = existing
                self._seen.update(m["id"] for m in await self._sent())
                return str(existing)
        if response.status_code != 201:
            raise TextingError(f"the emulator refused the conversation: HTTP "
                               f"{response.status_code} {response.text[:200]}")
        self.conversation_id = str(response.json()["id"])
        return self.conversation_id

    async def _sent(self) -> list[dict[str, Any]]:
        response = await self._emulator("GET", "/_emulator/messages")
        return [m for m in response.json()["messages"]
                if m["conversationId"] == self.conversation_id]

    async def send(self, text: str) -> str:
        """Store ``text`` and deliver its webhook; returns the server's answer body.

        Raises :class:`TextingError` when the server does not accept it."""
        conversation = await self._conversation()
        response = await self._emulator(
            "POST", f"/v2/Conversations/{conversation}/Communications",
            {"author": {"address": self.address, "channel": self.channel},
             "content": {"type": "TEXT", "text": text},
             "recipients": [{"address": self.info.agent_address, "channel": self.channel}]})
        if response.status_code != 201:
            raise TextingError(f"the emulator refused the message: HTTP "
                               f"{response.status_code} {response.text[:200]}")
        return await self._deliver({"eventType": "COMMUNICATION_CREATED",
                                    "data": response.json()})

    async def _deliver(self, event: dict[str, Any]) -> str:
        body = json.dumps(event).encode()
        url = f"{self.server_url}{self.webhook_path}?bodySHA256={body_sha256(body)}"
        headers = {"Content-Type": "application/json",
                   "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
        if self.auth_token:
            headers["X-Twilio-Signature"] = compute_signature(self.auth_token, url)
        try:
            answer = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TextingError(f"cannot reach {self.server_url}: {exc}") from None
        if answer.status_code == 403:
            raise TextingError("the server rejected the webhook's signature: pass "
                               "--auth-token with the server's TWILIO_AUTH_TOKEN")
        if answer.status_code == 404:
            raise TextingError(f"{self.server_url} has no {self.webhook_path} route: it "
                               "is not in Orchestrator mode")
        if answer.status_code != 200:
            raise TextingError(f"the server answered HTTP {answer.status_code}: "
                               f"{answer.text[:200]}")
        return answer.text

    async def close(self) -> None:
        """Close the conversation in the emulator (``PUT`` status ``CLOSED``: its
        Conversation Intelligence then runs) and deliver ``CONVERSATION_UPDATED`` to the
        server. Raises :class:`TextingError` when either refuses."""
        conversation = await self._conversation()
        response = await self._emulator("PUT", f"/v2/Conversations/{conversation}",
                                        {"status": "CLOSED"})
        if response.status_code != 200:
            raise TextingError(f"the emulator refused to close the conversation: HTTP "
                               f"{response.status_code} {response.text[:200]}")
        await self._deliver({"eventType": "CONVERSATION_UPDATED", "data": response.json()})

    async def replies(self, *, wait: float, quiet: float = 0.5) -> list[str]:
        """The agent's new messages: waits up to ``wait`` seconds for the first, then
        until none came for ``quiet`` seconds (a reply may come in several texts)."""
        found: list[str] = []
        with trio.move_on_after(wait):
            while not found:
                found = await self._new()
                if not found:
                    await trio.sleep(POLL_INTERVAL)
        if not found:
            return found
        while True:
            await trio.sleep(quiet)
            more = await self._new()
            if not more:
                return found
            found += more

    async def poll(self) -> list[str]:
        """The agent's messages not seen yet, at once (no waiting)."""
        if self.conversation_id is None:
            await trio.lowlevel.checkpoint()
            return []
        return await self._new()

    async def _new(self) -> list[str]:
        new = [m for m in await self._sent() if m["id"] not in self._seen]
        self._seen.update(m["id"] for m in new)
        return [m["text"] or "" for m in new]
