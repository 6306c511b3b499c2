"""How a speech-to-speech call is set up: :class:`RealtimeOptions` (the model, its voice,
instructions and tools) and :class:`MediaStreamOptions` (what ``on_inbound_call`` returns
to answer one call with ``<Connect><Stream>`` instead of ConversationRelay)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from tac_actors.protocol.realtime import encode_session_update
from tac_actors.realtime.model import Connector
from tac_actors.tools.function_tool import FunctionTool
from tac_actors.tools.registry import ToolRegistry

__all__ = ["MediaStreamOptions", "RealtimeOptions"]


def _numbers_or_bool(value: bool | Iterable[str]) -> bool | frozenset[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        raise TypeError("answer_inbound takes a bool or a collection of numbers, not a str")
    return frozenset(value)


def _registry(value: ToolRegistry | Iterable[FunctionTool]) -> ToolRegistry:
    return value if isinstance(value, ToolRegistry) else ToolRegistry(value)


@attrs.frozen(kw_only=True)
class RealtimeOptions:
    """A speech-to-speech agent.

    ``connect`` opens the model for a call (default: :class:`OpenAIRealtime` with
    ``OPENAI_API_KEY``, its connection attempt bounded by ``connect_timeout``; a custom
    connector bounds its own). ``greeting``: instructions for the first response, spoken as
    soon as the call connects (``None``: the model waits for the caller). ``tools`` run
    through a :class:`ToolRegistry`, each under its own timeout or ``tool_timeout``.
    ``transcribe`` names the model that transcribes the caller for ``session.history``
    (``None``: no user entries). ``answer_inbound``: ``/twiml`` answers every call
    (``True``) or the calls to these numbers (a collection of ``To`` numbers) with a media
    stream, unless ``on_inbound_call`` returns ConversationRelay options.
    """

    instructions: str | None = None
    voice: str | None = "alloy"
    greeting: str | None = None
    tools: ToolRegistry = attrs.field(factory=ToolRegistry, converter=_registry)
    tool_timeout: float = 10.0
    transcribe: str | None = "gpt-4o-mini-transcribe"
    connect: Connector | None = None
    connect_timeout: float = 10.0
    answer_inbound: bool | frozenset[str] = attrs.field(default=False,
                                                       converter=_numbers_or_bool)
    #: merged into ``session.update``'s ``session`` last, key by key (e.g.
    #: ``{"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}``); the audio
    #: format must stay μ-law (checked here: ``LocalProtocolError``)
    session_extra: Mapping[str, Any] | None = attrs.field(default=None)

    @session_extra.validator
    def _check_extra(self, _attribute: object, value: Mapping[str, Any] | None) -> None:
        if value:
            encode_session_update(extra=value)

    def answers(self, to: str | None) -> bool:
        """Whether ``/twiml`` answers a call to ``to`` with a media stream by default."""
        if isinstance(self.answer_inbound, bool):
            return self.answer_inbound
        return to is not None and to in self.answer_inbound

    def connector(self) -> Connector:
        if self.connect is not None:
            return self.connect
        from tac_actors.realtime.openai import OpenAIRealtime

        return OpenAIRealtime(connect_timeout=self.connect_timeout)


@attrs.frozen(kw_only=True)
class MediaStreamOptions:
    """Answer this call with a bidirectional media stream bridged to a realtime model.
    ``realtime`` overrides the TAC's :class:`RealtimeOptions` for this call;
    ``parameters`` become ``<Parameter>`` values (``session.custom_parameters``)."""

    realtime: RealtimeOptions | None = None
    parameters: Mapping[str, str] = attrs.field(factory=dict)
