"""``TACFastAPIServer(tac, ...).start()``: serve the app (our trio server, or mounted into
your FastAPI app when ``app=`` is given) on ``TWILIO_SERVER_HOST``/``TWILIO_SERVER_PORT``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from tac_actors.compat._tac import TAC

__all__ = ["TACFastAPIServer", "TACServerConfig"]


@attrs.frozen(kw_only=True)
class TACServerConfig:
    """Where to listen. :meth:`from_env` reads ``TWILIO_SERVER_HOST`` and
    ``TWILIO_SERVER_PORT`` (defaults ``0.0.0.0``, ``8000``)."""

    host: str = "0.0.0.0"
    port: int = 8000
    conversation_webhook_path: str = "/webhook"
    twiml_path: str = "/twiml"
    #: the Conversation Intelligence route (needs ``tac.config.intelligence``;
    #: ``None`` keeps its ``webhook_path``)
    cintel_webhook_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TACServerConfig:
        env = os.environ if environ is None else environ
        host = env.get("TWILIO_SERVER_HOST", "").strip() or "0.0.0.0"
        raw = env.get("TWILIO_SERVER_PORT", "").strip() or "8000"
        try:
            port = int(raw)
        except ValueError:
            raise ValueError(f"TWILIO_SERVER_PORT must be an int, got {raw!r}") from None
        return cls(host=host, port=port)


class TACFastAPIServer:
    """Serves ``tac``. Every channel is served whichever channel objects are passed (they
    are accepted for the reference's signature). With ``app`` (a FastAPI/Starlette app),
    the TAC routes are mounted into it and it is served with uvicorn."""

    def __init__(self, tac: TAC, voice_channel: Any = None,
                 messaging_channels: Sequence[Any] | None = None,
                 config: TACServerConfig | None = None, app: Any = None) -> None:
        self.tac = tac
        self.config = config or TACServerConfig.from_env()
        if (self.config.conversation_webhook_path != tac.config.webhook_path
                or self.config.twiml_path != tac.config.voice_twiml_path):
            tac.config = attrs.evolve(tac.config,
                                      webhook_path=self.config.conversation_webhook_path,
                                      voice_twiml_path=self.config.twiml_path)
        settings = tac.config.intelligence
        if (self.config.cintel_webhook_path is not None and settings is not None
                and settings.webhook_path != self.config.cintel_webhook_path):
            tac.config = attrs.evolve(tac.config, intelligence=attrs.evolve(
                settings, webhook_path=self.config.cintel_webhook_path))
        self.app = app

        if app is not None:
            from tac_actors.asgi import asgi

            self.asgi = asgi(tac)
            # your routes first; ours answer whatever they do not
            app.router.on_startup.append(self.asgi.start)
            app.router.on_shutdown.append(self.asgi.aclose)
            app.mount("/", self.asgi)

    def start(self) -> None:
        """Serve until interrupted (blocks)."""
        if self.app is not None:
            import uvicorn

            uvicorn.run(self.app, host=self.config.host, port=self.config.port)
            return
        from tac_actors.server import serve

        trio.run(serve, self.tac, self.config.host, self.config.port)
