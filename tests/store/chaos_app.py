"""The app the chaos tests serve in separate processes: an echo with a quick model
(``tac-actors serve tests/store/chaos_app.py:tac``), configured from the environment."""

from __future__ import annotations

import os
from typing import Any

import trio

from tac_actors import TAC
from tac_actors.channels.messaging import MessagingOptions

#: seconds between reconcile sweeps (``CHAOS_RECONCILE``; unset: none after start-up)
_interval = float(os.environ.get("CHAOS_RECONCILE") or 0) or None
tac = TAC(memory_mode="never",
          messaging=MessagingOptions(reconcile_interval=_interval, send_budget=10.0))


@tac.on_message_ready
async def reply(message: str, session: Any, memory: Any) -> str:
    await trio.sleep(0.002)  # a quick model
    return f"re: {message}"
