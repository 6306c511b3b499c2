"""The reference SDK's ``OpenAIRealtimeProviderConfig`` (its
``tac.channels.voice.media_streams.openai_realtime``): pass one to
``VoiceChannel(tac, config)`` and every inbound call is a speech-to-speech call,
Twilio Media Streams bridged to OpenAI Realtime (:mod:`tac_actors.channels.media`).

Differences, on purpose: ``default_session_config`` is merged into the session we build
(μ-law both ways, server voice activity detection, the tools' schemas from ``tools``)
instead of replacing it, so listing the tools twice is not needed (a ``tools`` entry in
it still wins); ``on_inbound_call_session_config`` is called with our
:class:`~tac_actors.server.callbacks.InboundCall` (``call_sid``, ``from_``, ``to``,
``params``) in place of a ``TwiMLRequest``; of ``welcome_greeting_response`` only the
``instructions`` are used.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from tac_actors.realtime import MediaStreamOptions, OpenAIRealtime, RealtimeOptions
from tac_actors.server.callbacks import InboundCall

__all__ = ["OpenAIRealtimeProviderConfig"]

SessionHook = Callable[[InboundCall], Awaitable[Mapping[str, Any] | None]]


class OpenAIRealtimeProviderConfig:
    """See the module docstring. Raises :class:`ValueError` without an API key
    (``openai_api_key`` or ``OPENAI_API_KEY``), as the reference does."""

    def __init__(self, *, openai_api_key: str | None = None, tools: Iterable[Any] = (),
                 default_session_config: Mapping[str, Any] | None = None,
                 on_inbound_call_session_config: SessionHook | None = None,
                 welcome_greeting_response: Mapping[str, Any] | None = None,
                 model: str = "gpt-realtime") -> None:
        key = openai_api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ValueError("openai_api_key is required. Set the OPENAI_API_KEY environment "
                             "variable or provide openai_api_key in "
                             "OpenAIRealtimeProviderConfig.")
        self.openai_api_key = key
        self.tools = [getattr(tool, "native", tool) for tool in tools]
        self.default_session_config = dict(default_session_config or {})
        self.on_inbound_call_session_config = on_inbound_call_session_config
        self.welcome_greeting_response = dict(welcome_greeting_response or {})
        self.model = model

    def realtime_options(self, session_config: Mapping[str, Any] | None = None
                         ) -> RealtimeOptions:
        """Our :class:`RealtimeOptions` for a session config (default: the default one)."""
        session = dict(self.default_session_config if session_config is None
                       else session_config)
        instructions = session.pop("instructions", None)
        model = session.pop("model", None) or self.model
        return RealtimeOptions(
            connect=OpenAIRealtime(model=model, api_key=self.openai_api_key),
            instructions=instructions, voice=None,
            greeting=self.welcome_greeting_response.get("instructions"),
            tools=self.tools, transcribe=None, answer_inbound=True,
            session_extra=session or None)

    def attach(self, tac: Any) -> None:
        """Serve ``tac``'s inbound calls with this provider."""
        tac.realtime = self.realtime_options()
        hook = self.on_inbound_call_session_config
        if hook is None:
            return

        async def choose(call: InboundCall) -> MediaStreamOptions:
            config = await hook(call)
            return MediaStreamOptions(
                realtime=self.realtime_options(config) if config is not None else None)

        tac.on_inbound_call(choose)
