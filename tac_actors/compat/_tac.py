"""The reference SDK's ``TAC``: our :class:`tac_actors.TAC` with the reference's callback
shapes. Callbacks run in asyncio mode by default (reference apps are asyncio code)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tac_actors import tac as native
from tac_actors.actors import ErrorContext, Interruption
from tac_actors.asyncio_bridge import trio_side
from tac_actors.compat._views import InterruptMessage, MemoryView, SessionView, error_dict
from tac_actors.config import TACConfig
from tac_actors.memory import TACMemoryResponse
from tac_actors.memory.retrieval import MemoryMode
from tac_actors.session import ConversationSession
from tac_actors.usercode import Kind, kind_of

if TYPE_CHECKING:
    from tac_actors.compat.channels import BaseChannel

__all__ = ["TAC"]

F = TypeVar("F", bound=Callable[..., Any])


def _adapt(fn: Callable[..., Any], convert: Callable[..., tuple[Any, ...]]) -> Callable[..., Any]:
    """``fn`` called with converted arguments, keeping its kind (sync stays sync, so it
    still runs in a worker thread; async stays async, so it runs on asyncio)."""
    if kind_of(fn) is Kind.SYNC:
        def sync(*args: Any) -> Any:
            return fn(*convert(*args))
        return sync

    async def run(*args: Any) -> Any:
        result = fn(*convert(*args))
        return (await result) if inspect.isawaitable(result) else result
    return run


class TAC(native.TAC):
    """``TAC(config)`` as in the reference SDK. Differences from :class:`tac_actors.TAC`:
    ``asyncio=True`` by default; callbacks get a session whose ``channel`` is UPPER-case,
    memory whose ``build_memory_prompts()`` is a list, ``on_error(exc, dict)`` and
    ``on_interrupt(session, InterruptMessage)``. Memory defaults to ``"never"`` as in
    the reference (call :meth:`retrieve_memory`)."""

    def __init__(self, config: TACConfig | Mapping[str, Any] | None = None, *,
                 asyncio: bool = True, memory_mode: str = "never", **options: Any) -> None:
        super().__init__(config, asyncio=asyncio, memory_mode=memory_mode, **options)
        self.channels: list[BaseChannel] = []

    def set_channel_memory_mode(self, channels: tuple[str, ...], mode: str) -> None:
        """What a reference channel object's ``config={"memory_mode": ...}`` does: set
        the mode of these native channels (before the server starts)."""
        if isinstance(self.memory_mode, str):
            modes: dict[str, str] = {"default": self.memory_mode}
        else:
            modes = dict(self.memory_mode)
        modes.update(dict.fromkeys(channels, str(MemoryMode(mode))))
        self.memory_mode = modes

    def on_message_ready(self, fn: F) -> F:  # type: ignore[override]  # the reference form
        super().on_message_ready(_adapt(fn, _message_args))
        return fn

    def on_interrupt(self, fn: F) -> F:
        super().on_interrupt(_adapt(fn, _interrupt_args))
        return fn

    def on_conversation_ended(self, fn: F) -> F:
        super().on_conversation_ended(_adapt(fn, lambda session: (SessionView(session),)))
        return fn

    def on_error(self, fn: F) -> F:
        super().on_error(_adapt(fn, _error_args))
        return fn

    @trio_side
    async def retrieve_memory(self, session: Any, query: str | None = None,
                              conversation_id: str | None = None) -> Any:
        """Memory for ``session`` (a list-shaped view, see :class:`MemoryView`), whatever
        the memory mode; awaitable from asyncio and trio code."""
        native_session = session.native if isinstance(session, SessionView) else session
        return MemoryView(await super().retrieve_memory(native_session, query,
                                                        conversation_id))


    @trio_side
    async def process_cintel_event(self, payload: Any) -> Any:
        """As :meth:`tac_actors.TAC.process_cintel_event`; awaitable from asyncio and trio
        code (its answer has the reference's ``model_dump()``)."""
        return await super().process_cintel_event(payload)


def _message_args(message: str, session: ConversationSession, memory: TACMemoryResponse
                  ) -> tuple[Any, ...]:
    return message, SessionView(session), MemoryView(memory)


def _interrupt_args(session: ConversationSession, interruption: Interruption
                    ) -> tuple[Any, ...]:
    return SessionView(session), InterruptMessage.of(session, interruption)


def _error_args(exc: BaseException, context: ErrorContext) -> tuple[Any, ...]:
    return exc, error_dict(context)
