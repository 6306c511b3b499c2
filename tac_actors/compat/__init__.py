"""Twilio Agent Connect's API on tac-actors: port a TAC app by changing ``tac`` to
``tac_actors.compat`` in its imports.

    from tac_actors.compat import TAC, TACConfig
    from tac_actors.compat.channels import SMSChannel, VoiceChannel
    from tac_actors.compat.server import TACFastAPIServer

A thin translation over the native API (:mod:`tac_actors`), which is unchanged. Callbacks
run in asyncio mode (reference apps are asyncio code); see the README section "Coming from
Twilio Agent Connect" for every name and the deliberate differences.
"""

from tac_actors import __version__
from tac_actors.compat._tac import TAC
from tac_actors.compat._views import InterruptMessage
from tac_actors.compat.logging import get_logger, mask_address, mask_email, mask_phone
from tac_actors.config import IntelligenceConfig as ConversationIntelligenceConfig
from tac_actors.config import TACConfig
from tac_actors.intelligence import OperatorProcessingResult

__all__ = ["TAC", "ConversationIntelligenceConfig", "InterruptMessage",
           "OperatorProcessingResult", "TACConfig", "__version__", "get_logger",
           "mask_address", "mask_email", "mask_phone"]
