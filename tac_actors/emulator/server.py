"""The :class:`Emulator`: state, app and server in one object.

In a test, over real loopback sockets::

    async with Emulator.running(seed=EXAMPLE_SEED) as emu:
        config = emu.tac_config()            # points every product at emu.url
        async with TwilioServices.open(config) as services: ...
        assert emu.sent_messages()[0]["text"] == "Hello"

Or without sockets (e.g. under ``trio.testing.MockClock``), through
``TwilioServices.open(config, transport=emu.transport())`` on an emulator opened with
``with Emulator(seed=...) as emu:``. Standalone: :func:`run_emulator`.

An emulator owns one SQLite connection, opened by the constructor and closed when its
``with`` block (or :meth:`Emulator.running`) is left, however it is left, cancellation
included; :meth:`Emulator.close` closes it by hand.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import hypercorn.trio
import trio
from hypercorn.config import Config as HypercornConfig

from tac_actors.config import TACConfig
from tac_actors.emulator import inspection
from tac_actors.emulator.app import create_app
from tac_actors.emulator.calls import DEFAULT_AUTH_TOKEN, CallScript, CallSimulator
from tac_actors.emulator.db import Database
from tac_actors.emulator.faults import Faults
from tac_actors.emulator.inspection import RequestRecord
from tac_actors.emulator.intelligence import IntelligenceEmitter
from tac_actors.emulator.seed import load_seed
from tac_actors.emulator.transport import InProcessTransport
from tac_actors.hypercorn_guard import contain_connection_failures

__all__ = ["Emulator", "run_emulator", "serve_emulator"]

logger = logging.getLogger("tac_actors.emulator")
_DEFAULT_ACCOUNT = "AC" + "0" * 32


class Emulator:
    """Emulated Twilio products over one SQLite database.

    ``seed`` is a path to a JSON fixture or the fixture itself
    (see :mod:`tac_actors.emulator.seed`). ``credentials`` maps accepted API keys to
    secrets; ``None`` accepts any. ``faults`` can be changed at any time.

    The constructor opens the database (and closes it again if the seed is rejected);
    use the emulator as a context manager, ``with Emulator(...) as emu:``, so the
    database is closed when the block is left.
    """

    def __init__(
        self,
        *,
        seed: str | Path | Mapping[str, Any] | None = None,
        db_path: str = ":memory:",
        credentials: Mapping[str, str] | None = None,
        fault_seed: int = 0,
        auth_token: str = DEFAULT_AUTH_TOKEN,
    ) -> None:
        self.db = Database(db_path)
        try:
            self.account_sid = (load_seed(self.db, seed) if seed is not None
                                else _DEFAULT_ACCOUNT)
        except BaseException:
            self.db.close()
            raise
        self.faults = Faults(rng=random.Random(fault_seed))
        self.journal: list[RequestRecord] = []
        self._credentials = dict(credentials) if credentials is not None else None
        self._changed = trio.Event()
        #: Conversation Intelligence: operator results when a conversation closes
        #: (:mod:`tac_actors.emulator.intelligence`)
        self.intelligence = IntelligenceEmitter(self.db, self.account_sid,
                                                on_change=lambda: self._wake())
        #: the auth token callbacks are signed with (``X-Twilio-Signature``)
        self.auth_token = auth_token
        #: plays the callbacks of outbound calls (see :mod:`tac_actors.emulator.calls`)
        self.calls = CallSimulator(self.db, auth_token=auth_token,
                                   on_record=lambda: self._wake())
        self.app = create_app(
            self.db, self.faults, account_sid=self.account_sid, journal=self.journal,
            credentials=self._credentials, on_request=lambda: self._wake(),
            emitter=self.intelligence, calls=self.calls,
        )
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"Emulator(url={self._url!r})"

    def close(self) -> None:
        """Close the database (idempotent); the emulator answers no request after."""
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The base URL of every product, e.g. ``http://127.0.0.1:53211``."""
        if self._url is None:
            raise RuntimeError("the emulator is not serving; use Emulator.running()")
        return self._url

    # -- what tests look at -------------------------------------------------------------

    def sent_messages(self) -> list[dict[str, Any]]:
        """Messages sent via Orchestrator Actions or ``Messages.json``, oldest first."""
        return inspection.sent_messages(self.db)

    def made_calls(self) -> list[dict[str, Any]]:
        """Outbound calls placed through ``Calls.json`` (with their ``twiml``)."""
        return inspection.made_calls(self.db)

    def call_events(self) -> list[dict[str, Any]]:
        """Call callbacks delivered (or tried), oldest first: ``call_sid``, ``kind``,
        ``url``, ``form``, and ``status_code`` or ``error``."""
        return inspection.call_events(self.db)

    def script_call(self, to: str, script: CallScript | None = None, **fields: Any) -> None:
        """What happens to calls placed to ``to`` from now on: a :class:`CallScript`, or
        its fields (``status="busy"``, ``answered_by="machine_start"``, ``duration=0``)."""
        self.calls.scripts[to] = script if script is not None else CallScript(**fields)

    async def wait_call_events(self, count: int, *, call_sid: str | None = None
                               ) -> list[dict[str, Any]]:
        """Wait until ``count`` call callbacks (of ``call_sid``, when given) have been
        delivered or have failed; returns them."""

        def delivered() -> list[dict[str, Any]]:
            return [e for e in self.call_events()
                    if call_sid is None or e["call_sid"] == call_sid]

        await self.wait_until(lambda: len(delivered()) >= count)
        return delivered()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` is true, re-checking after every product request
        the emulator answers (no polling). Must run in the emulator's trio run; bound
        it with ``trio.fail_after``."""
        while not condition():
            await self._changed.wait()
        await trio.lowlevel.checkpoint()

    async def wait_sent_messages(self, count: int, *, conversation_id: str | None = None
                                 ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` messages were sent (in ``conversation_id`` when
        given) and return them, oldest first."""
        def sent() -> list[dict[str, Any]]:
            return [m for m in self.sent_messages()
                    if conversation_id is None or m["conversationId"] == conversation_id]
        await self.wait_until(lambda: len(sent()) >= count)
        return sent()

    def studio_executions(self) -> list[dict[str, Any]]:
        return inspection.studio_executions(self.db)

    def created_observations(self) -> list[dict[str, Any]]:
        return inspection.created_observations(self.db)

    def created_summaries(self) -> list[dict[str, Any]]:
        return inspection.created_summaries(self.db)

    def created_profiles(self) -> list[dict[str, Any]]:
        return inspection.created_profiles(self.db)

    def requests(
        self, *, product: str | None = None, method: str | None = None,
        path_contains: str | None = None,
    ) -> list[RequestRecord]:
        """The product requests answered so far, filtered."""
        return [
            r for r in self.journal
            if (product is None or r.product == product)
            and (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
        ]

    def tac_config(self, **overrides: Any) -> TACConfig:
        """A :class:`TACConfig` whose services all point at this emulator, with
        credentials it accepts and the seed's first configuration and knowledge base."""
        key, secret = next(iter((self._credentials or {"SK" + "0" * 32: "secret"}).items()))
        configurations = self.db.all("configuration")
        bases = self.db.all("knowledge_base")
        values: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_key": key,
            "api_secret": secret,
            "phone_number": "+15550000000",
            "conversation_configuration_id": configurations[0]["id"] if configurations else None,
            "knowledge_base_id": bases[0]["id"] if bases else None,
            "services_base_url": self._url,
        }
        values.update(overrides)
        return TACConfig(**values)

    def transport(self) -> httpx.AsyncBaseTransport:
        """An in-process transport to the app: no sockets, so it runs under a fake
        clock. Use a base URL such as ``http://emulator`` with it."""
        return InProcessTransport(self.app)

    # -- serving ------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        *,
        seed: str | Path | Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str = ":memory:",
        credentials: Mapping[str, str] | None = None,
        fault_seed: int = 0,
        auth_token: str = DEFAULT_AUTH_TOKEN,
    ) -> AsyncIterator[Emulator]:
        """Start an emulator on ``host:port`` (0: any free port) for the block.

        Leaving the block (normally, by an exception or by cancellation) stops the
        server, waits for it to close its sockets and closes the database."""
        contain_connection_failures()
        stop = trio.Event()
        body_error: BaseException | None = None
        with cls(seed=seed, db_path=db_path, credentials=credentials,
                 fault_seed=fault_seed, auth_token=auth_token) as emulator:
            try:
                async with trio.open_nursery() as nursery:
                    playing = trio.CancelScope()
                    await nursery.start(_in_scope, playing, emulator.calls.run)
                    binds = await nursery.start(partial(
                        hypercorn.trio.serve, emulator.app, _config(host, port),
                        shutdown_trigger=stop.wait,
                    ))
                    emulator._url = binds[0]
                    emulator.intelligence.nursery = nursery
                    try:
                        yield emulator
                    except BaseException as exc:
                        body_error = exc
                        raise
                    finally:
                        emulator._url = None
                        emulator.intelligence.nursery = None
                        stop.set()
                        playing.cancel()  # callbacks still being played
            except BaseExceptionGroup as group:
                # the block's own exception comes back wrapped by the nursery: unwrap it
                if body_error is not None and list(group.exceptions) == [body_error]:
                    raise body_error from None
                raise


async def _in_scope(scope: trio.CancelScope, fn: Callable[..., Any], *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with scope:
        await fn(task_status=task_status)


def _config(host: str, port: int) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    config.loglevel = "WARNING"
    return config


async def serve_emulator(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed_path: str | Path | None = None,
    *,
    task_status: trio.TaskStatus[Emulator] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an emulator until cancelled (the async twin of :func:`run_emulator`)."""
    async with Emulator.running(seed=seed_path, host=host, port=port) as emulator:
        logger.info("Twilio emulator listening on %s", emulator.url)
        task_status.started(emulator)
        await trio.sleep_forever()


def run_emulator(host: str = "127.0.0.1", port: int = 8765,
                 seed_path: str | Path | None = None) -> None:
    """Serve the emulator in the foreground until Ctrl-C (``tac-actors emulator``).

    Prints the base URL to use as ``TAC_SERVICES_URL`` once it is listening.
    """

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            emulator: Emulator = await nursery.start(
                partial(serve_emulator, host, port, seed_path)
            )
            print(f"Twilio emulator listening on {emulator.url}", flush=True)
            print(f"  export TAC_SERVICES_URL={emulator.url}", flush=True)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
