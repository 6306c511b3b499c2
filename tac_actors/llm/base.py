"""The turn loop every LLM adapter shares: stream a step, run its tool calls, repeat.

An adapter (:mod:`tac_actors.llm.openai`, :mod:`tac_actors.llm.anthropic`) supplies the
wire format only: headers, request body, message shapes and a sans-IO
:class:`StreamDecoder` that turns :class:`~tac_actors.llm.sse.SSEEvent` values into text
deltas and, at the end of a step, a :class:`StepOutcome`. Everything with I/O lives here:
the HTTP stream, the tool calls and the clean-up on cancellation.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any, ClassVar, Protocol

import attrs
import httpx
import trio

from tac_actors import tracing
from tac_actors.llm.errors import LLMError
from tac_actors.llm.prompt import Turn, conversation_turns, system_prompt
from tac_actors.llm.sse import SSEEvent, SSEParser
from tac_actors.memory.models import TACMemoryResponse
from tac_actors.session import ConversationSession
from tac_actors.tools import FunctionTool, ToolCall, ToolRegistry, ToolResult

__all__ = [
    "DEFAULT_TIMEOUT",
    "STEP_LIMIT_TEXT",
    "ChatAgent",
    "ChatAgentStatistics",
    "StepOutcome",
    "StreamDecoder",
    "event_object",
]

log = logging.getLogger(__name__)

#: Connect within 5 s; then each read, write and pool wait within 30 s.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

#: Said when the model still asks for tools after ``max_steps`` steps.
STEP_LIMIT_TEXT = "I'm sorry, I couldn't finish that just now. Could you ask me another way?"

Message = dict[str, Any]


@attrs.frozen
class StepOutcome:
    """How one streamed step ended: its whole ``text``, the ``tool_calls`` it asked for,
    the API's ``stop_reason`` and, for APIs that need it echoed back verbatim, the
    assistant ``content`` blocks."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: str | None = None
    content: tuple[Mapping[str, Any], ...] = ()


class StreamDecoder(Protocol):
    """Turns one step's events into text deltas, then a :class:`StepOutcome`. Sans-IO.
    Events after the stream's end marker are ignored."""

    def feed(self, event: SSEEvent) -> str:
        """The text delta this event carries ("" for none); :class:`LLMError` when the
        event is malformed or reports an error."""
        ...

    def outcome(self) -> StepOutcome:
        """The step's outcome once the stream ended; :class:`LLMError` when it ended
        before the step was complete."""
        ...


@attrs.frozen
class ChatAgentStatistics:
    """Counters since the agent was made: ``requests`` sent, ``errors`` among them,
    ``tool_rounds`` run, ``step_limits`` hit, and ``streaming``, the replies in progress
    right now."""

    requests: int
    errors: int
    tool_rounds: int
    step_limits: int
    streaming: int


class ChatAgent(abc.ABC):
    """An LLM agent answering one turn at a time as a stream of text tokens.

    ``tools`` (a :class:`ToolRegistry` or :class:`FunctionTool` values) are offered to
    the model; their calls run concurrently through :meth:`ToolRegistry.run_calls`, with
    the session injected, under ``tool_timeout`` seconds each unless the tool sets its
    own. At most ``max_steps`` requests are made per turn; when the model still wants
    tools after that, ``step_limit_text`` is said instead. ``options`` are merged into
    every request body (``{"temperature": 0.2}``). ``history_limit`` keeps only the last
    so many history entries.

    HTTP: give ``client`` to share an :class:`httpx.AsyncClient` (its own timeout applies
    unless ``timeout`` is given), else the agent makes one on first use, owns it, and
    closes it in :meth:`aclose` (or ``async with agent:``). ``base_url`` and ``api_key``
    default to the provider's environment variables, then the public endpoint.
    """

    provider: ClassVar[str]
    default_base_url: ClassVar[str]
    base_url_env: ClassVar[str]
    api_key_env: ClassVar[str]
    path: ClassVar[str]

    #: called inline on trio in every mode (see :func:`tac_actors.usercode.trio_native`)
    __tac_trio_native__ = True

    def __init__(
        self,
        *,
        model: str,
        instructions: str = "",
        tools: ToolRegistry | Iterable[FunctionTool] = (),
        client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_steps: int = 5,
        tool_timeout: float | None = 10.0,
        history_limit: int | None = None,
        options: Mapping[str, Any] | None = None,
        step_limit_text: str = STEP_LIMIT_TEXT,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.model = model
        self.instructions = instructions
        self.registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        self.history_limit = history_limit
        self.options: Mapping[str, Any] = dict(options or {})
        self.step_limit_text = step_limit_text
        self.base_url = (
            base_url
            or (str(client.base_url) if client is not None and str(client.base_url) else None)
            or os.environ.get(self.base_url_env)
            or self.default_base_url
        ).rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get(self.api_key_env)
        self._timeout = httpx.Timeout(timeout) if timeout is not None else None
        self._client = client
        self._owns_client = client is None
        self._requests = self._errors = self._tool_rounds = self._step_limits = 0
        self._streaming = 0

    # -- the public face -----------------------------------------------------------------

    def stream(
        self,
        message: str,
        session: ConversationSession | None = None,
        memory: TACMemoryResponse | None = None,
    ) -> AsyncIterator[str]:
        """The reply to ``message`` as an async iterator of text tokens, in order.

        Nothing is sent before the first token is asked for. Each request's content
        deltas are yielded as they arrive; tool calls run between steps (text of a later
        step starts with a space when needed). Raises :class:`LLMError` when a request
        fails, from wherever the iteration is.

        Cancellation, or closing the iterator (``aclose``), closes the HTTP stream at
        once, and any running tools are cancelled; no token follows. Close it when
        abandoning it early (the engine does): ``async with aclosing(...)``.
        """
        return self._turn(message, session, memory)

    def __call__(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse
    ) -> AsyncIterator[str]:
        """:meth:`stream`, so the agent itself can be ``tac.on_message_ready(agent)``."""
        return self.stream(message, session, memory)

    async def reply(
        self,
        message: str,
        session: ConversationSession | None = None,
        memory: TACMemoryResponse | None = None,
    ) -> str:
        """The whole reply at once (the tokens of :meth:`stream`, joined)."""
        async with contextlib.aclosing(self._turn(message, session, memory)) as tokens:
            return "".join([token async for token in tokens])

    def statistics(self) -> ChatAgentStatistics:
        """A snapshot of the counters."""
        return ChatAgentStatistics(self._requests, self._errors, self._tool_rounds,
                                   self._step_limits, self._streaming)

    async def aclose(self) -> None:
        """Close the HTTP client if the agent made it (a shared one is left open)."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        else:
            await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> ChatAgent:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- what an adapter provides --------------------------------------------------------

    @abc.abstractmethod
    def headers(self, api_key: str | None) -> dict[str, str]:
        """The HTTP headers of every request."""

    @abc.abstractmethod
    def initial_messages(self, system: str, turns: list[Turn]) -> list[Message]:
        """The API's messages for the system prompt and the turns so far."""

    @abc.abstractmethod
    def request_body(self, system: str, messages: list[Message]) -> Message:
        """The request body of one step (without :attr:`options`)."""

    @abc.abstractmethod
    def decoder(self) -> StreamDecoder:
        """A fresh decoder for one step's stream."""

    @abc.abstractmethod
    def tool_messages(self, outcome: StepOutcome, results: list[ToolResult]) -> list[Message]:
        """The messages that record a step's tool calls and their results."""

    # -- the loop ----------------------------------------------------------------------------

    async def _turn(
        self, message: str, session: ConversationSession | None,
        memory: TACMemoryResponse | None,
    ) -> AsyncGenerator[str, None]:
        system = system_prompt(self.instructions, session, memory)
        turns = conversation_turns(session, message, limit=self.history_limit)
        messages = self.initial_messages(system, turns)
        said = ""
        self._streaming += 1
        try:
            for step in range(self.max_steps):
                decoder = self.decoder()
                fresh = True
                body = {**self.request_body(system, messages), **self.options}
                # one span per model request, ended with its stream (never made current:
                # this generator yields to its consumer; see tac_actors.tracing)
                span = tracing.chat_span(self.provider, self.model,
                                         session.conversation_id if session else None)
                stop_reason: str | None = None
                try:
                    async with self._open(body) as response:
                        parser = SSEParser()
                        chunks = response.aiter_text()
                        try:
                            async for chunk in chunks:
                                for event in parser.feed(chunk):
                                    delta = decoder.feed(event)
                                    if delta:
                                        if fresh and said and not said[-1].isspace() \
                                                and not delta[0].isspace():
                                            delta = " " + delta
                                        fresh, said = False, delta
                                        yield delta
                            parser.close()
                            outcome = decoder.outcome()
                            stop_reason = outcome.stop_reason
                        except LLMError as exc:
                            self._count(exc, response.status_code)
                            raise
                        except httpx.HTTPError as exc:
                            raise self._count(LLMError(
                                f"the stream broke: {exc!r}", kind="transport",
                                provider=self.provider)) from exc
                        finally:
                            await _discard(response, chunks)
                except LLMError as exc:
                    tracing.mark_error(span, exc.kind, str(exc))
                    raise
                finally:
                    tracing.end_chat(span, stop_reason)
                if not outcome.tool_calls:
                    return
                if step == self.max_steps - 1:
                    break
                self._tool_rounds += 1
                log.debug("%s: running tools %s", self.provider,
                          [call.name for call in outcome.tool_calls])
                results = await self.registry.run_calls(
                    outcome.tool_calls, session, default_timeout=self.tool_timeout
                )
                messages.extend(self.tool_messages(outcome, results))
            self._step_limits += 1
            log.warning("%s: still calling tools after %d steps; giving up",
                        self.provider, self.max_steps)
            yield (" " if said and not said[-1].isspace() else "") + self.step_limit_text
        finally:
            self._streaming -= 1

    @contextlib.asynccontextmanager
    async def _open(self, body: Message) -> AsyncIterator[httpx.Response]:
        """POST ``body``; the streaming response once it answered with a 2xx status."""
        if self._api_key is None and self.base_url == self.default_base_url:
            raise self._count(LLMError(
                f"no API key: pass api_key= or set {self.api_key_env}", kind="configuration",
                provider=self.provider))
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout or DEFAULT_TIMEOUT)
        self._requests += 1
        extra: dict[str, Any] = {} if self._timeout is None else {"timeout": self._timeout}
        try:
            async with self._client.stream(
                "POST", self.base_url + self.path, json=body,
                headers={"accept": "text/event-stream", **self.headers(self._api_key)},
                **extra,
            ) as response:
                if not response.is_success:
                    raise self._count(LLMError.from_response(
                        response.status_code, await response.aread(), provider=self.provider))
                yield response
        except httpx.HTTPError as exc:
            raise self._count(LLMError(f"no answer: {exc!r}", kind="transport",
                                       provider=self.provider)) from exc

    def _count(self, error: LLMError, status: int | None = None) -> LLMError:
        self._errors += 1
        if error.status is None and status is not None and error.kind != "transport":
            error.status = status
        return error


def event_object(event: SSEEvent, provider: str) -> dict[str, Any]:
    """The event's data as a JSON object; :class:`LLMError` (``bad_stream``) otherwise."""
    try:
        value = json.loads(event.data)
    except ValueError as exc:
        raise LLMError(f"an event is not JSON: {event.data[:200]!r}", kind="bad_stream",
                       provider=provider) from exc
    if not isinstance(value, dict):
        raise LLMError(f"an event is not a JSON object: {event.data[:200]!r}",
                       kind="bad_stream", provider=provider)
    return value


async def _discard(response: httpx.Response, chunks: AsyncIterator[str]) -> None:
    """Close the response and finish httpx's body iterators.

    Abandoned half-way (the consumer closed us at a ``yield``), httpx's nested async
    generators would be left suspended and trio would warn when they are collected.
    Reading on after the close makes the innermost one fail, which finishes them all.
    Shielded, so it also runs under cancellation; bounded, so it cannot hang.
    """
    with trio.move_on_after(1, shield=True), contextlib.suppress(Exception):
        await response.aclose()
        async for _ in chunks:
            pass
