"""The test kit: deterministic tests of agents and of the engine itself.

* :func:`open_harness` runs a :class:`~tac_actors.TAC` in-process; ``harness.call()``
  places a simulated call over memory transports.
* :func:`connect_caller` places the same simulated call over a real WebSocket.
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
from tac_actors.testing.harness import GatedTransport, Harness, open_harness

__all__ = [
    "CallEnded",
    "Gate",
    "GatedTransport",
    "Harness",
    "HeardReply",
    "Recorder",
    "SimulatedCaller",
    "connect_caller",
    "new_call_sid",
    "open_harness",
    "sign_url",
    "token_stream",
]
