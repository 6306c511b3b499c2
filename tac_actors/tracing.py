"""OpenTelemetry spans: conversation → turn → memory, tool, LLM and service calls.

The package depends on ``opentelemetry-api`` only. Until the app installs an SDK and sets
a tracer provider (``opentelemetry.trace.set_tracer_provider``), every tracer here is the
API's no-op tracer and no span is recorded. The tree:

* ``conversation {channel}``: one per conversation, from its actor's start to its burial
  (attributes ``gen_ai.conversation.id``, ``tac.channel``; ``tac.stop_reason`` and
  ``tac.turns`` at the end; status ERROR when the supervisor gave up on it);
* ``turn``: one per turn, a child of its conversation (``tac.turn.id``, ``tac.outcome``:
  ``ok``, ``interrupt``, ``preempt``, ``timeout``, ``error``);
* in a turn, as its children: ``retrieve memory`` (:func:`memory_span`),
  ``execute_tool {name}`` (:func:`tool_span`), ``chat {model}`` (:func:`chat_span`, one
  per model request) and ``{METHOD} {product}`` for each Twilio service call
  (:func:`service_span`).

Names and attributes follow the OpenTelemetry GenAI semantic conventions where they
exist (``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.usage.*``); the rest are
``tac.*``.

The hot path: a conversation whose span came back invalid (no SDK when it started) keeps
``None`` as its trace context, and its turns then cost one attribute test each. A
conversation started after an SDK was configured is traced; one started before is not.

Context: each turn runs in a trio task of its own, so the turn span is made current in
that task's context and never reset (the context goes away with the task). Tools and
service calls started from the turn inherit it. The ``chat`` span lives in an async
generator that yields to its consumer, so it is never made current (a context set across
a ``yield`` would leak into the consumer): it is started with the turn as its parent and
ended when its request's stream is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Token
from typing import TYPE_CHECKING, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from tac_actors.actors.cell import ActorCell
    from tac_actors.actors.gate import Turn

__all__ = ["chat_span", "conversation_ended", "conversation_started", "end_chat", "end_turn",
           "mark_error",
           "memory_span", "service_span", "start_turn", "tool_span", "tracer"]

#: the instrumentation scope of every span of the package
tracer = trace.get_tracer("tac_actors")


# -- conversation and turn (called by the actor core) ----------------------------------------

def conversation_started(cell: ActorCell) -> None:
    """Start the conversation's span; keep its context on the cell (``None``: not traced)."""
    session = cell.session
    span = tracer.start_span(
        f"conversation {session.channel.value}", context=otel_context.Context(),
        attributes={"gen_ai.conversation.id": session.conversation_id,
                    "tac.channel": session.channel.value})
    if span is INVALID_SPAN or not span.get_span_context().is_valid:
        cell.trace = None
        return
    cell.trace = trace.set_span_in_context(span, otel_context.Context())


def conversation_ended(cell: ActorCell) -> None:
    """End the conversation's span (with its stop reason and turn count)."""
    ctx, cell.trace = cell.trace, None
    if ctx is None:
        return
    span = trace.get_current_span(ctx)
    span.set_attribute("tac.stop_reason", cell.stop_reason or "ended")
    span.set_attribute("tac.turns", cell.stats.turns)
    if cell.stop_reason == "gave_up":
        span.set_status(Status(StatusCode.ERROR, "the actor crashed past its restart limit"))
    span.end()


def start_turn(cell: ActorCell, turn: Turn) -> TurnSpan | None:
    """Start a turn's span under its conversation's and make it current until
    :func:`end_turn` (turns run in the actor's own task, so the context is restored
    there). ``None`` when not traced."""
    parent = cell.trace
    if parent is None:
        return None
    span = tracer.start_span("turn", context=parent, attributes={
        "gen_ai.conversation.id": cell.session.conversation_id, "tac.turn.id": turn.id})
    return TurnSpan(span, otel_context.attach(trace.set_span_in_context(span, parent)))


def end_turn(current: TurnSpan | None, turn: Turn) -> None:
    """End a turn's span with its outcome (a failed turn's status is ERROR) and make
    the context current before the turn current again."""
    if current is None:
        return
    span = current.span
    outcome = turn.cause or "ok"
    span.set_attribute("tac.outcome", outcome)
    if outcome in ("error", "timeout"):
        span.set_status(Status(StatusCode.ERROR, outcome))
    span.end()
    otel_context.detach(current.token)


class TurnSpan(NamedTuple):
    """A running turn's span and the token that restores the context before it."""

    span: Span
    token: Token[Context]


# -- work inside a turn ------------------------------------------------------------------------

@contextmanager
def memory_span(provider: object) -> Iterator[Span]:
    """``retrieve memory``, current while the provider looks memory up."""
    with tracer.start_as_current_span("retrieve memory", attributes={
            "tac.memory.provider": type(provider).__name__}) as span:
        yield span


@contextmanager
def tool_span(name: str, call_id: str | None) -> Iterator[Span]:
    """``execute_tool {name}`` (GenAI semantic conventions), current while it runs."""
    attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    if call_id:
        attributes["gen_ai.tool.call.id"] = call_id
    with tracer.start_as_current_span(f"execute_tool {name}", attributes=attributes) as span:
        yield span


def chat_span(provider: str, model: str, conversation_id: str | None) -> Span:
    """``chat {model}`` for one model request (GenAI semantic conventions), a child of the
    current span but not made current (see the module docstring). The caller ends it."""
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                  "gen_ai.request.model": model}
    if conversation_id:
        attributes["gen_ai.conversation.id"] = conversation_id
    return tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)


@contextmanager
def service_span(service: str, method: str, path: str) -> Iterator[Span]:
    """``{METHOD} {service}`` for one Twilio service call (all its attempts), current
    while it runs. ``path`` is the route with ids in it, so it is an attribute only."""
    with tracer.start_as_current_span(f"{method} {service}", kind=SpanKind.CLIENT, attributes={
            "http.request.method": method, "url.path": path, "tac.service": service}) as span:
        yield span


def end_chat(span: Span, stop_reason: str | None) -> None:
    """End a ``chat`` span (with ``gen_ai.response.finish_reasons`` when known)."""
    if stop_reason is not None:
        span.set_attribute("gen_ai.response.finish_reasons", [stop_reason])
    span.end()


def mark_error(span: Span, error_type: str | None, description: str) -> None:
    """Set a span's status to ERROR, with ``error.type``."""
    span.set_attribute("error.type", error_type or "error")
    span.set_status(Status(StatusCode.ERROR, description))
