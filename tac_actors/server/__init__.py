"""The HTTP/WebSocket server: a quart-trio app factory and a hypercorn runner."""

from tac_actors.server.app import create_app, mount
from tac_actors.server.callbacks import ActionCallback, InboundCall
from tac_actors.server.runner import serve

__all__ = ["ActionCallback", "InboundCall", "create_app", "mount", "serve"]
