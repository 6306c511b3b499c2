"""``tac.channels.voice`` names that have an equivalent here."""

from tac_actors.compat.channels import VoiceChannel
from tac_actors.protocol.twiml import InterruptMode

__all__ = ["InterruptMode", "VoiceChannel"]
