"""Speech-to-speech models behind a phone call (Twilio Media Streams).

* :class:`RealtimeModel`: what the media-stream bridge needs of a model;
  :class:`RealtimeClient` implements it over any text WebSocket speaking the OpenAI
  Realtime protocol (:mod:`tac_actors.protocol.realtime`).
* :class:`OpenAIRealtime`: the connector for OpenAI (``OPENAI_API_KEY``).
* :class:`RealtimeOptions`: the agent (instructions, voice, greeting, tools);
  :class:`MediaStreamOptions`: what ``on_inbound_call`` returns to answer one call with a
  media stream.
"""

from tac_actors.realtime.model import (
    Connector,
    ModelClosed,
    RealtimeClient,
    RealtimeModel,
    TextSocket,
    memory_socket_pair,
)
from tac_actors.realtime.openai import OpenAIRealtime, RealtimeUnavailable
from tac_actors.realtime.options import MediaStreamOptions, RealtimeOptions
from tac_actors.realtime.playback import Cut, Playback

__all__ = [
    "Connector",
    "Cut",
    "MediaStreamOptions",
    "ModelClosed",
    "OpenAIRealtime",
    "Playback",
    "RealtimeClient",
    "RealtimeModel",
    "RealtimeOptions",
    "RealtimeUnavailable",
    "TextSocket",
    "memory_socket_pair",
]
