"""JSON codec and ConversationRelay frame builders shared by the bench tools.

orjson is used when importable (it is a bench-only, optional dependency); the
standard library's json otherwise. Frames that never change per turn are
encoded once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from typing import Any

try:
    import orjson

    def dumps(obj: Any) -> str:
        """Encode ``obj`` as compact JSON text."""
        return orjson.dumps(obj).decode()

    loads: Callable[[str | bytes], Any] = orjson.loads
    CODEC = "orjson"
except ImportError:  # pragma: no cover - depends on the environment
    _encoder = json.JSONEncoder(separators=(",", ":"))

    def dumps(obj: Any) -> str:
        """Encode ``obj`` as compact JSON text."""
        return _encoder.encode(obj)

    loads = json.loads
    CODEC = "json"

#: The frame a server sends to end a reply, or to acknowledge an interrupt.
END_FRAME = dumps({"type": "text", "token": "", "last": True})


def twilio_signature(auth_token: str, url: str) -> str:
    """Return ``X-Twilio-Signature`` for a WebSocket upgrade: base64(HMAC-SHA1(token, url))."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _hex(rng: random.Random, n: int = 32) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def setup_frame(rng: random.Random, index: int) -> str:
    """Return the ``setup`` frame of simulated call number ``index``."""
    return dumps(
        {
            "type": "setup",
            "sessionId": "VX" + _hex(rng),
            "callSid": "CA" + _hex(rng),
            "accountSid": "AC" + "0" * 32,
            "from": f"+1555{index % 10_000_000:07d}",
            "to": "+15550000000",
            "direction": "inbound",
            "callType": "PSTN",
            "callStatus": "RINGING",
            "customParameters": {},
        }
    )


def prompt_frame(k: int) -> str:
    """Return a final ``prompt`` frame saying ``hello number k``."""
    return dumps(
        {"type": "prompt", "voicePrompt": f"hello number {k}", "lang": "en-US", "last": True}
    )


INTERRUPT_FRAME = dumps(
    {
        "type": "interrupt",
        "utteranceUntilInterrupt": "tok0 tok1",
        "durationUntilInterruptMs": 123,
    }
)
