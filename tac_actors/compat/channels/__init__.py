"""The reference SDK's channel objects. Our server serves every channel anyway; a channel
object registers itself with its TAC and offers ``send_response``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from tac_actors.asyncio_bridge import trio_side
from tac_actors.compat._views import SessionView
from tac_actors.session import ConversationSession
from tac_actors.tac import TAC as TACBase

if TYPE_CHECKING:
    from tac_actors.compat._tac import TAC

__all__ = ["BaseChannel", "ChatChannel", "MessagingChannel", "RCSChannel", "SMSChannel",
           "VoiceChannel", "WhatsAppChannel"]


#: the native channel names a reference channel object's ``memory_mode`` applies to
_MEMORY_CHANNELS: dict[str, tuple[str, ...]] = {
    "VOICE": ("voice",), "SMS": ("sms",), "WHATSAPP": ("whatsapp",), "RCS": ("rcs",),
    "CHAT": ("chat",), "MESSAGING": ("sms", "whatsapp", "rcs", "chat"),
}


def _memory_mode_of(config: Mapping[str, Any] | Any | None) -> str | None:
    if config is None:
        return None
    if isinstance(config, Mapping):
        mode = config.get("memory_mode")
    else:
        mode = getattr(config, "memory_mode", None)
    return str(mode) if mode is not None else None


class BaseChannel:
    name = "BASE"

    def __init__(self, tac: TAC, config: Mapping[str, Any] | Any | None = None) -> None:
        self.tac = tac
        self.config = config
        tac.channels.append(self)
        mode = _memory_mode_of(config)
        if mode is not None:  # the reference's per-channel memory_mode (default "never")
            tac.set_channel_memory_mode(_MEMORY_CHANNELS.get(self.name, ()), mode)

    def get_channel_name(self) -> str:
        return self.name

    async def send_response(self, conversation_id: str, response: str | AsyncIterator[Any],
                            role: str | None = None) -> None:
        """Send ``response`` to the live conversation ``conversation_id`` (a CallSid works
        too for voice). A string is one message; an async generator is sent as it comes
        (voice: each item is spoken; text channels: one message when it ends). Items may
        be strings or ``{"text": ...}`` dicts. Raises :class:`LookupError` when no such
        conversation is live. Callable from asyncio and trio code."""
        if isinstance(response, str):
            await self._send(conversation_id, response)
            return
        parts: list[str] = []
        async for item in response:
            piece = item.get("text", "") if isinstance(item, Mapping) else str(item)
            if self.name == "VOICE":
                if piece:
                    await self._send(conversation_id, piece)
            else:
                parts.append(piece)
        if parts:
            await self._send(conversation_id, "".join(parts))

    @trio_side
    async def _send(self, conversation_id: str, text: str) -> None:
        session = self._find(conversation_id)
        await session.send(text)

    def _find(self, conversation_id: str) -> ConversationSession:
        runtime = self.tac.runtime
        if runtime is not None:
            for cell in runtime.supervisor:
                session = cell.session
                if conversation_id in (session.conversation_id, session.call_sid):
                    return session
        raise LookupError(f"no live conversation {conversation_id!r}")

    def get_conversation_session(self, conversation_id: str) -> SessionView | None:
        try:
            return SessionView(self._find(conversation_id))
        except LookupError:
            return None


class VoiceChannel(BaseChannel):
    name = "VOICE"

    def __init__(self, tac: TAC, config: Mapping[str, Any] | Any | None = None) -> None:
        super().__init__(tac, config)
        attach = getattr(config, "attach", None)
        if attach is not None:  # a media-stream provider (OpenAIRealtimeProviderConfig)
            attach(tac)

    def get_conversation_session_by_call_sid(self, call_sid: str) -> SessionView | None:
        return self.get_conversation_session(call_sid)

    # the reference's call-event registrations and hang-up, on the TAC's own
    def on_call_status(self, callback: Any) -> None:
        """``callback(CallStatusEvent)``: see :meth:`tac_actors.TAC.on_call_status`."""
        TACBase.on_call_status(self.tac, callback)

    def on_amd(self, callback: Any) -> None:
        """``callback(AmdEvent)``: see :meth:`tac_actors.TAC.on_amd`."""
        TACBase.on_amd(self.tac, callback)

    def on_recording(self, callback: Any) -> None:
        """``callback(RecordingEvent)``: see :meth:`tac_actors.TAC.on_recording`."""
        TACBase.on_recording(self.tac, callback)

    @trio_side
    async def end_call(self, call_sid: str) -> bool:
        """Hang up ``call_sid``; see :meth:`tac_actors.TAC.end_call`."""
        return await TACBase.end_call(self.tac, call_sid)


class MessagingChannel(BaseChannel):
    name = "MESSAGING"


class SMSChannel(MessagingChannel):
    name = "SMS"


class WhatsAppChannel(MessagingChannel):
    name = "WHATSAPP"


class RCSChannel(MessagingChannel):
    name = "RCS"


class ChatChannel(MessagingChannel):
    name = "CHAT"
