"""The test kit: deterministic tests of agents and of the engine itself.

* :func:`open_harness` runs a :class:`~tac_actors.TAC` in-process; ``harness.call()``
  places a simulated call over memory transports.
* :func:`connect_caller` places the same simulated call over a real WebSocket.
* ``harness.media_call()`` places a speech-to-speech call (Twilio Media Streams) as a
  :class:`SimulatedMediaCaller` (:func:`connect_media_caller` over a real WebSocket);
  :func:`open_fake_realtime` is the scripted realtime model behind it.
* :class:`SimulatedTexter` (:func:`open_texter` over HTTP) writes as a person on SMS,
  WhatsApp, RCS or Chat and reads the agent's replies back from the emulator.
* :class:`Gate`, :func:`token_stream` and :class:`Recorder` script agents that park at
  chosen points, so barge-in, deadlines and hang-ups hit exactly where a test wants.

Use them under ``trio.testing.MockClock(autojump_threshold=0)`` (pytest-trio's
``autojump_clock`` fixture): deadlines then pass in no real time.
"""

from tac_actors.testing.agents import Gate, Recorder, token_stream
from tac_actors.testing.caller import (
    CallEnded,
    HeardReply,
    SimulatedCaller,
    connect_caller,
    new_call_sid,
    sign_url,
)
from tac_actors.testing.fairness import SchedulePasses, schedule_passes
from tac_actors.testing.harness import GatedTransport, Harness, open_harness
from tac_actors.testing.media_caller import (
    SimulatedMediaCaller,
    StreamEnded,
    connect_media_caller,
)
from tac_actors.testing.realtime import FakeRealtime, FakeSession, open_fake_realtime
from tac_actors.testing.texter import (
    SimulatedTexter,
    TextReply,
    WebhookFaults,
    WebhookResult,
    open_texter,
)

__all__ = [
    "CallEnded",
    "FakeRealtime",
    "FakeSession",
    "Gate",
    "GatedTransport",
    "Harness",
    "HeardReply",
    "Recorder",
    "SchedulePasses",
    "SimulatedCaller",
    "SimulatedMediaCaller",
    "SimulatedTexter",
    "StreamEnded",
    "TextReply",
    "WebhookFaults",
    "WebhookResult",
    "connect_caller",
    "connect_media_caller",
    "new_call_sid",
    "open_fake_realtime",
    "open_harness",
    "open_texter",
    "schedule_passes",
    "sign_url",
    "token_stream",
]
