"""Scripted fake LLM servers speaking the OpenAI (Chat Completions and Responses) and
Anthropic wire formats.

Each fake is a quart-trio app served by hypercorn on a real loopback socket (port 0)
inside the caller's trio run. It answers requests in order from a script, streams each
answer as the real API would (SSE, text split into the given chunks, tool calls with
their arguments in fragments), and records every request it received::

    script = [tool_calls(call("lookup_order", {"order_id": "A-1"})),
              text("Your order ", "has shipped.")]
    async with open_fake_openai(script) as fake:
        agent = OpenAIChatAgent(model="m", base_url=fake.url, api_key="k", tools=[...])
        ...
        assert fake.requests[1]["messages"][-1]["role"] == "tool"

A :class:`Park` holds a streamed answer after a chosen number of units (text chunks or
tool calls) until the test releases it, so a barge-in lands exactly mid-stream; its
``abandoned`` event tells when the client went away before the answer was complete.
When the script runs out the fake answers 500.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import hypercorn.trio
import trio
from hypercorn.config import Config
from quart import Response, request
from quart_trio import QuartTrio

__all__ = [
    "Failure",
    "FakeLLM",
    "Park",
    "RawStream",
    "ScriptedCall",
    "ScriptedReply",
    "call",
    "failure",
    "open_fake_anthropic",
    "open_fake_openai",
    "text",
    "tool_calls",
]


@attrs.frozen(eq=False)
class Park:
    """Hold a streamed answer once ``after`` units were sent (0: before the first) until
    ``release`` is set. ``reached`` is set when the answer parks; ``abandoned`` when the
    client went away before the answer was complete."""

    after: int = 0
    reached: trio.Event = attrs.field(factory=trio.Event)
    release: trio.Event = attrs.field(factory=trio.Event)
    abandoned: trio.Event = attrs.field(factory=trio.Event)


@attrs.frozen
class ScriptedCall:
    """One tool call the fake model makes; ``arguments`` as JSON data or raw text."""

    name: str
    arguments: Mapping[str, Any] | str = attrs.field(factory=dict)
    id: str | None = None


@attrs.frozen
class ScriptedReply:
    """A streamed answer: text ``chunks`` (each one content delta), then ``calls``."""

    chunks: tuple[str, ...] = ()
    calls: tuple[ScriptedCall, ...] = ()
    park: Park | None = None


@attrs.frozen
class Failure:
    """A non-2xx answer with the provider's JSON error body."""

    status: int
    message: str
    type: str = "api_error"


@attrs.frozen
class RawStream:
    """``body`` sent verbatim as ``text/event-stream`` (for malformed streams)."""

    body: str
    status: int = 200


Scripted = ScriptedReply | Failure | RawStream


def text(*chunks: str, park: Park | None = None) -> ScriptedReply:
    """An answer of text only, streamed chunk by chunk."""
    return ScriptedReply(chunks=chunks, park=park)


def call(name: str, arguments: Mapping[str, Any] | str | None = None, *,
         id: str | None = None) -> ScriptedCall:
    """A tool call (its id defaults to one derived from its position)."""
    return ScriptedCall(name, {} if arguments is None else arguments, id)


def tool_calls(*calls: ScriptedCall, text: Iterable[str] = (), park: Park | None = None
               ) -> ScriptedReply:
    """An answer asking for tool calls, after optional text chunks."""
    return ScriptedReply(chunks=tuple(text), calls=calls, park=park)


def failure(status: int, message: str, type: str = "api_error") -> Failure:
    """An error answer, e.g. ``failure(401, "bad key", "authentication_error")``."""
    return Failure(status, message, type)


class FakeLLM:
    """A running fake. ``url`` is the base URL to give an agent; ``requests`` the JSON
    bodies received, in order; ``headers`` their headers (lower-case names)."""

    def __init__(self, url: str, script: Iterable[Scripted]) -> None:
        self.url = url
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._script: deque[Scripted] = deque()
        self._parks: list[Park] = []
        self.add(*script)

    def add(self, *items: Scripted) -> None:
        """Append answers to the script."""
        self._script.extend(items)
        self._parks.extend(i.park for i in items if isinstance(i, ScriptedReply) and i.park)

    @property
    def pending(self) -> int:
        """Scripted answers not given yet."""
        return len(self._script)

    def _next(self) -> Scripted:
        if self._script:
            return self._script.popleft()
        return Failure(500, "fake LLM: the script has no more answers", "api_error")

    def _release_all(self) -> None:
        for park in self._parks:
            park.release.set()


Frames = Iterator[str | None]  # an SSE frame, or None at the end of a unit (a park point)


@asynccontextmanager
async def open_fake_openai(script: Iterable[Scripted] = ()) -> AsyncIterator[FakeLLM]:
    """Serve a fake OpenAI API: Chat Completions (``POST {url}/chat/completions``) and the
    Responses API (``POST {url}/responses``, what the OpenAI Agents SDK uses by default),
    each streamed when the request says ``"stream": true`` and whole otherwise. Both
    routes answer from the one script, in request order.

    On exit every park is released and the server shuts down."""
    async with _serve(script, "/v1", {
            "/v1/chat/completions": (_openai_frames, _openai_whole),
            "/v1/responses": (_responses_frames, _responses_whole)}, _openai_error) as fake:
        yield fake


@asynccontextmanager
async def open_fake_anthropic(script: Iterable[Scripted] = ()) -> AsyncIterator[FakeLLM]:
    """Serve a fake Anthropic Messages API (``POST {url}/v1/messages``).

    On exit every park is released and the server shuts down."""
    async with _serve(script, "", {"/v1/messages": (_anthropic_frames, None)},
                      _anthropic_error) as fake:
        yield fake


Whole = Callable[[ScriptedReply, str], dict[str, Any]]


@asynccontextmanager
async def _serve(
    script: Iterable[Scripted], prefix: str,
    routes: Mapping[str, tuple[Callable[[ScriptedReply, str], Frames], Whole | None]],
    error: Callable[[Failure], dict[str, Any]],
) -> AsyncIterator[FakeLLM]:
    app = QuartTrio("fake_llm")
    holder: list[FakeLLM] = []

    def route(frames: Callable[[ScriptedReply, str], Frames], whole: Whole | None
              ) -> Callable[[], Any]:
        async def answer() -> Response:
            fake = holder[0]
            body = await request.get_json(force=True, silent=True)
            fake.requests.append(body if isinstance(body, dict) else {})
            fake.headers.append({k.lower(): v for k, v in request.headers.items()})
            item = fake._next()
            if isinstance(item, Failure):
                return Response(json.dumps(error(item)), status=item.status,
                                content_type="application/json")
            if isinstance(item, RawStream):
                return Response(item.body, status=item.status,
                                content_type="text/event-stream")
            model = str(body.get("model", "fake")) if isinstance(body, dict) else "fake"
            streamed = not isinstance(body, dict) or body.get("stream") is True
            if whole is not None and not streamed:
                if item.park is not None:
                    item.park.reached.set()
                    await item.park.release.wait()
                return Response(json.dumps(whole(item, model)),
                                content_type="application/json")
            return Response(_stream(frames(item, model), item.park),
                            content_type="text/event-stream")
        return answer

    for path, (frames, whole) in routes.items():
        app.add_url_rule(path, path, route(frames, whole), methods=["POST"])

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 1.0
    config.loglevel = "WARNING"
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(hypercorn.trio.serve, app, config, shutdown_trigger=stop.wait))
        fake = FakeLLM(binds[0] + prefix, script)
        holder.append(fake)
        try:
            yield fake
        finally:
            fake._release_all()
            stop.set()


async def _stream(frames: Frames, park: Park | None) -> AsyncIterator[bytes]:
    complete = False
    units = 0
    try:
        for frame in frames:
            if frame is not None:
                yield frame.encode()
                continue
            if park is not None and units == park.after:
                park.reached.set()
                await park.release.wait()
            units += 1
        complete = True
    finally:
        if not complete and park is not None:
            park.abandoned.set()


def _sse(payload: Mapping[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n"


def _halves(value: str) -> list[str]:
    middle = len(value) // 2
    return [part for part in (value[:middle], value[middle:]) if part]


def _arguments(scripted: ScriptedCall) -> str:
    args = scripted.arguments
    return args if isinstance(args, str) else json.dumps(dict(args))


# -- OpenAI Chat Completions ---------------------------------------------------------------


def _openai_frames(reply: ScriptedReply, model: str) -> Frames:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return _sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                     "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""})
    yield None
    for piece in reply.chunks:
        yield chunk({"content": piece})
        yield None
    for index, scripted in enumerate(reply.calls):
        yield chunk({"tool_calls": [{
            "index": index, "id": scripted.id or f"call_fake_{index}", "type": "function",
            "function": {"name": scripted.name, "arguments": ""}}]})
        for part in _halves(_arguments(scripted)):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
        yield None
    yield chunk({}, "tool_calls" if reply.calls else "stop")
    yield "data: [DONE]\n\n"


def _openai_whole(reply: ScriptedReply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.chunks) or None}
    if reply.calls:
        message["tool_calls"] = [
            {"id": scripted.id or f"call_fake_{index}", "type": "function",
             "function": {"name": scripted.name, "arguments": _arguments(scripted)}}
            for index, scripted in enumerate(reply.calls)]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if reply.calls else "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


# -- OpenAI Responses ------------------------------------------------------------------------


def _responses_items(reply: ScriptedReply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.chunks:
        items.append({"type": "message", "id": "msg_fake", "status": "completed",
                      "role": "assistant", "content": [
                          {"type": "output_text", "text": "".join(reply.chunks),
                           "annotations": [], "logprobs": []}]})
    for index, scripted in enumerate(reply.calls):
        items.append({"type": "function_call", "id": f"fc_fake_{index}",
                      "call_id": scripted.id or f"call_fake_{index}", "name": scripted.name,
                      "arguments": _arguments(scripted), "status": "completed"})
    return items


def _response(model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "resp_fake", "object": "response", "created_at": 0, "status": status,
            "model": model, "output": output, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None,
            "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
            "text": {"format": {"type": "text"}},
            "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


def _responses_whole(reply: ScriptedReply, model: str) -> dict[str, Any]:
    return _response(model, "completed", _responses_items(reply))


def _responses_frames(reply: ScriptedReply, model: str) -> Frames:
    sequence = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> str:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    yield event("response.created", response=_response(model, "in_progress", []))
    yield event("response.in_progress", response=_response(model, "in_progress", []))
    yield None
    items = _responses_items(reply)
    output = 0
    if reply.chunks:
        message = items[0]
        empty: dict[str, Any] = {"type": "output_text", "text": "", "annotations": [],
                                 "logprobs": []}
        yield event("response.output_item.added", output_index=0,
                    item={**message, "status": "in_progress", "content": []})
        yield event("response.content_part.added", item_id=message["id"], output_index=0,
                    content_index=0, part=empty)
        for piece in reply.chunks:
            yield event("response.output_text.delta", item_id=message["id"], output_index=0,
                        content_index=0, delta=piece, logprobs=[])
            yield None
        yield event("response.output_text.done", item_id=message["id"], output_index=0,
                    content_index=0, text="".join(reply.chunks), logprobs=[])
        yield event("response.content_part.done", item_id=message["id"], output_index=0,
                    content_index=0, part=message["content"][0])
        yield event("response.output_item.done", output_index=0, item=message)
        output = 1
    for index, item in enumerate(items[output:], start=output):
        yield event("response.output_item.added", output_index=index,
                    item={**item, "arguments": "", "status": "in_progress"})
        for part in _halves(item["arguments"]):
            yield event("response.function_call_arguments.delta", item_id=item["id"],
                        output_index=index, delta=part)
        yield event("response.function_call_arguments.done", item_id=item["id"],
                    output_index=index, arguments=item["arguments"], name=item["name"])
        yield event("response.output_item.done", output_index=index, item=item)
        yield None
    yield event("response.completed", response=_response(model, "completed", items))


def _openai_error(item: Failure) -> dict[str, Any]:
    return {"error": {"message": item.message, "type": item.type, "param": None,
                      "code": None}}


# -- Anthropic Messages ----------------------------------------------------------------------


def _anthropic_frames(reply: ScriptedReply, model: str) -> Frames:
    yield _sse({"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1}}}, "message_start")
    yield _sse({"type": "ping"}, "ping")
    index = 0
    if reply.chunks:
        yield _sse({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}, "content_block_start")
    yield None
    if reply.chunks:
        for piece in reply.chunks:
            yield _sse({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
            yield None
        yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        index = 1
    for number, scripted in enumerate(reply.calls, start=index):
        yield _sse({"type": "content_block_start", "index": number, "content_block": {
            "type": "tool_use", "id": scripted.id or f"toolu_fake_{number}",
            "name": scripted.name, "input": {}}}, "content_block_start")
        for part in _halves(_arguments(scripted)):
            yield _sse({"type": "content_block_delta", "index": number,
                        "delta": {"type": "input_json_delta", "partial_json": part}},
                       "content_block_delta")
        yield _sse({"type": "content_block_stop", "index": number}, "content_block_stop")
        yield None
    yield _sse({"type": "message_delta",
                "delta": {"stop_reason": "tool_use" if reply.calls else "end_turn",
                          "stop_sequence": None},
                "usage": {"output_tokens": 1}}, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")


def _anthropic_error(item: Failure) -> dict[str, Any]:
    return {"type": "error", "error": {"type": item.type, "message": item.message}}
