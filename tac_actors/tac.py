"""The public entry point: :class:`TAC`, with the reference SDK's names.

A ``TAC`` holds the configuration and the app's callbacks. It does no I/O when it is
built: services, the supervisor and Orchestrator look-ups start with the server
(:func:`tac_actors.serve`, the CLI, or :meth:`TAC.run` inside your own nursery).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs
import trio

from tac_actors import tracing
from tac_actors._logsafe import excerpt
from tac_actors.actors import Digits, ErrorContext, Interruption, PartialUtterance, Utterance
from tac_actors.actors.agent import Reply
from tac_actors.asyncio_bridge import AsyncioBridge
from tac_actors.channels.messaging import MessagingOptions
from tac_actors.config import TACConfig
from tac_actors.memory import MemoryProvider, NoMemory, TACMemoryResponse
from tac_actors.protocol.call_options import CallOptions
from tac_actors.protocol.twiml import ConversationRelayOptions
from tac_actors.session import ConversationSession
from tac_actors.usercode import Hook, call_hook

if TYPE_CHECKING:
    from tac_actors.channels.outbound import OutboundResult
    from tac_actors.intelligence import OperatorProcessingResult
    from tac_actors.realtime.options import MediaStreamOptions, RealtimeOptions
    from tac_actors.runtime import Runtime
    from tac_actors.services import TwilioServices
    from tac_actors.session import Channel

__all__ = ["TAC"]

log = logging.getLogger("tac_actors")

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_GREETING = "Hello! How can I help you today?"

MessageReady = Callable[[str, ConversationSession, TACMemoryResponse], Any]


class TAC:
    """Twilio Agent Connect on trio: the callbacks of an agent and their configuration.

    Register callbacks with the decorators; every one may be sync or async, and
    re-registering replaces the previous one.

    * ``on_message_ready(message, session, memory)``: the turn. Return a ``str`` (sent
      whole), an async iterator of ``str`` (streamed token by token), or ``None`` (send
      nothing, or send yourself with ``session.send``).
    * ``on_dtmf(digit, session)``: a key press on a call; same return values. Without it,
      key presses are logged and dropped.
    * ``on_partial_prompt(text, session)``: unfinished speech (``partialPrompts`` on).
    * ``on_interrupt(session, interruption)``: the caller barged in; the reply is already
      stopped and ``session.history`` holds what they heard.
    * ``on_conversation_ended(session)``: exactly once per conversation.
    * ``on_error(exc, context)``: every contained error (failed turn, timeout, hook
      failure, actor crash, protocol violation), with an :class:`ErrorContext`.
    * ``on_intelligence_result(event, session)``: Conversation Intelligence operator
      results (an :class:`~tac_actors.protocol.intelligence.OperatorResultEvent`) of the
      configured intelligence configuration, after summaries were written to Memory;
      ``session`` is the conversation's live session on this node, or ``None`` (the
      usual case for post-conversation results).
    * ``on_call_status(event)``, ``on_amd(event)``, ``on_recording(event)``: Twilio's
      call callbacks (:mod:`tac_actors.protocol.call_events`); outbound calls are placed
      with their URLs while the hook is registered.

    Several numbers: ``session.called`` is the number the person reached (or that we
    called from), and ``@tac.on_message_ready(number="+1555...")`` registers a callback
    for one number only (the one without ``number`` serves the others).
    """

    def __init__(self, config: TACConfig | Mapping[str, Any] | None = None, *,
                 twiml_options: ConversationRelayOptions | None = None,
                 memory_mode: str | Mapping[str, str] = "once",
                 messaging: MessagingOptions | None = None,
                 asyncio: bool | None = None,
                 realtime: RealtimeOptions | None = None) -> None:
        if config is None:
            config = TACConfig.from_env()
        elif isinstance(config, Mapping):
            config = TACConfig(**config)
        if asyncio is not None and asyncio != config.asyncio:
            config = attrs.evolve(config, asyncio=asyncio)
        self.config: TACConfig = config
        #: ``<ConversationRelay>`` attributes for every call (a per-call
        #: :meth:`on_inbound_call` hook may layer more on top)
        self.twiml_options = twiml_options or ConversationRelayOptions(
            welcome_greeting=DEFAULT_GREETING)
        self._message_ready: Hook | None = None
        #: per-number callbacks: ``bare(number)`` -> hook (see :meth:`on_message_ready`)
        self._message_ready_by_number: dict[str, Hook] = {}
        self._call_status: Hook | None = None
        self._amd: Hook | None = None
        self._recording: Hook | None = None
        self._dtmf: Hook | None = None
        self._partial: Hook | None = None
        self._interrupt: Hook | None = None
        self._ended: Hook | None = None
        self._error: Hook | None = None
        self._handoff: Hook | None = None
        self._twiml: Hook | None = None
        self._intelligence: Hook | None = None
        #: the asyncio loop async callbacks run on, while an asyncio-mode runtime runs
        self.bridge: AsyncioBridge | None = None
        #: caps sync callbacks running in worker threads (``config.worker_threads``)
        self.thread_limiter = trio.CapacityLimiter(config.worker_threads)
        #: Orchestrator mode: ``"once"`` fetches memory on the first turn of a
        #: conversation and caches it, ``"always"`` on every turn (with the message as the
        #: query), ``"never"`` hands callbacks empty memory (use :meth:`retrieve_memory`).
        #: A mapping sets it per channel: ``{"voice": "always", "sms": "never",
        #: "default": "once"}`` (channels not named use ``"default"``, else ``"once"``)
        self.memory_mode: str | Mapping[str, str] = memory_mode
        self.memory_provider: MemoryProvider = NoMemory()
        #: the Twilio service clients while the server runs in Orchestrator mode
        self.services: TwilioServices | None = None
        #: text channels: debounce, dedup capacity, chat agent address
        self.messaging_options = messaging or MessagingOptions()
        #: speech-to-speech calls (Twilio Media Streams bridged to a realtime model):
        #: the model, its instructions and tools; ``None`` serves no media streams
        self.realtime: RealtimeOptions | None = realtime
        #: the running runtime (set while a server or a test harness runs)
        self.runtime: Runtime | None = None
        self.agent = _AppAgent(self)

    # -- registration --------------------------------------------------------------------

    @overload
    def on_message_ready(self, fn: F, /) -> F: ...

    @overload
    def on_message_ready(self, fn: None = None, /, *, number: str) -> Callable[[F], F]: ...

    def on_message_ready(self, fn: F | None = None, /, *, number: str | None = None
                         ) -> F | Callable[[F], F]:
        """Register the turn callback; with ``number``, for conversations with that number
        only (``session.called``: the number a caller or texter reached, or that we
        called or texted from), as ``@tac.on_message_ready(number="+15550001")``."""
        if fn is None:
            if number is None:
                raise TypeError("on_message_ready() needs a callback or number=")
            key = _number_key(number)

            def register(f: F) -> F:
                self._message_ready_by_number[key] = Hook(f, f"on_message_ready[{number}]")
                return f

            return register
        if number is not None:
            self._message_ready_by_number[_number_key(number)] = Hook(
                fn, f"on_message_ready[{number}]")
        else:
            self._message_ready = Hook(fn, "on_message_ready")
        return fn

    def message_hook_for(self, session: ConversationSession) -> Hook | None:
        """The turn callback of ``session``: its number's own, else the general one."""
        if self._message_ready_by_number and session.called:
            hook = self._message_ready_by_number.get(_number_key(session.called))
            if hook is not None:
                return hook
        return self._message_ready

    def on_call_status(self, fn: F) -> F:
        """``fn(event: CallStatusEvent)``: an outbound call's progress or end
        (``event.is_unreached``: busy, no answer, failed, canceled)."""
        self._call_status = Hook(fn, "on_call_status")
        return fn

    def on_amd(self, fn: F) -> F:
        """``fn(event: AmdEvent)``: who answered an outbound call placed with machine
        detection (``event.is_machine``)."""
        self._amd = Hook(fn, "on_amd")
        return fn

    def on_recording(self, fn: F) -> F:
        """``fn(event: RecordingEvent)``: a recording of an outbound call placed with
        ``record=True`` is ready (``event.recording_url``)."""
        self._recording = Hook(fn, "on_recording")
        return fn

    def on_dtmf(self, fn: F) -> F:
        self._dtmf = Hook(fn, "on_dtmf")
        return fn

    def on_partial_prompt(self, fn: F) -> F:
        self._partial = Hook(fn, "on_partial_prompt")
        return fn

    def on_interrupt(self, fn: F) -> F:
        self._interrupt = Hook(fn, "on_interrupt")
        return fn

    def on_conversation_ended(self, fn: F) -> F:
        self._ended = Hook(fn, "on_conversation_ended")
        return fn

    def on_error(self, fn: F) -> F:
        self._error = Hook(fn, "on_error")
        return fn

    def on_handoff(self, fn: F) -> F:
        """``fn(form) -> str | None``: answer the ConversationRelay action callback.
        ``form`` is a :class:`~tac_actors.server.routes.ActionCallback`; return TwiML,
        or ``None`` for the default (hang up)."""
        self._handoff = Hook(fn, "on_handoff")
        return fn

    def on_inbound_call(self, fn: F) -> F:
        """``fn(call) -> ConversationRelayOptions | MediaStreamOptions | None``: per-call
        TwiML options, layered over the configured ones; a
        :class:`~tac_actors.realtime.MediaStreamOptions` answers the call with a media
        stream bridged to the realtime model instead."""
        self._twiml = Hook(fn, "on_inbound_call")
        return fn

    def on_intelligence_result(self, fn: F) -> F:
        """``fn(event, session)``: see the class docstring; its return value is ignored.
        A failure is logged and reported to ``on_error`` (phase ``"hook"``); the webhook
        is answered either way."""
        self._intelligence = Hook(fn, "on_intelligence_result")
        return fn

    async def run_hook(self, hook: Hook, *args: Any) -> Any:
        """Call a registered callback in this TAC's mode (see :mod:`tac_actors.usercode`)."""
        return await call_hook(hook, self.bridge, self.thread_limiter, *args)

    # -- queries -----------------------------------------------------------------------------

    def is_orchestrator_enabled(self) -> bool:
        """True in Orchestrator mode (a conversation configuration id is set)."""
        return self.config.orchestrator_enabled

    async def retrieve_memory(self, session: ConversationSession, query: str | None = None,
                              conversation_id: str | None = None) -> TACMemoryResponse:
        """Memory for ``session``, looked up now with ``query`` whatever ``memory_mode``
        and its cache (empty in ConversationRelay-only mode). ``conversation_id`` goes to
        Memory's recall as is (as in the reference: with it and no query, Memory infers
        a query from that conversation, which is slow). Never raises for a service
        failure: it falls back as documented on the memory provider."""
        fetch = getattr(self.memory_provider, "fetch", None)
        if fetch is not None:
            return await fetch(  # type: ignore[no-any-return]
                session, query, conversation_id=conversation_id)
        return await self.memory_provider.retrieve(session, query)

    async def process_cintel_event(self, payload: bytes | str | Mapping[str, Any]
                                   ) -> OperatorProcessingResult:
        """Process one Conversation Intelligence operator-results webhook payload (what
        the signed ``config.intelligence.webhook_path`` route does): write summaries to
        Memory, attach the results to the live session, then call
        ``on_intelligence_result``. Raises
        :class:`~tac_actors.protocol.errors.ProtocolError` for a malformed payload,
        :class:`ValueError` without ``config.intelligence`` and :class:`RuntimeError`
        when the runtime is not running."""
        from tac_actors.protocol.intelligence import parse_operator_results

        if self.config.intelligence is None:
            raise ValueError("Conversation Intelligence is not configured: set "
                             "CONVERSATION_INTELLIGENCE_CONFIGURATION_ID (config.intelligence)")
        runtime = self.runtime
        if runtime is None or runtime.intelligence is None:
            raise RuntimeError("process_cintel_event needs the TAC runtime running")
        event = parse_operator_results(payload)
        session = runtime.live_session(event.conversation_id)
        result = await runtime.intelligence.process(event, session)
        if self._intelligence is not None and runtime.intelligence.matches(event):
            try:
                await self.run_hook(self._intelligence, event, session)
            except Exception as exc:
                log.exception("on_intelligence_result failed for conversation %s",
                              excerpt(event.conversation_id, 80))
                channel = str(session.channel) if session is not None else ""
                try:
                    await self.agent.error(exc, ErrorContext(
                        event.conversation_id, channel, "hook", None,
                        "on_intelligence_result"))
                except Exception:
                    log.exception("on_error failed")
        return result


    def session_for_call(self, call_sid: str) -> ConversationSession | None:
        """The live session of a call on this node, or ``None``."""
        runtime = self.runtime
        return runtime.session_by_call_sid(call_sid) if runtime is not None else None

    async def end_call(self, call_sid: str) -> bool:
        """Hang up ``call_sid`` (Calls API ``Status=completed``) and end its conversation
        on this node if it is live. Returns whether Twilio accepted the hang-up; an
        unknown or already ended call is logged and gives ``False`` (no exception)."""
        from tac_actors.channels.call_events import end_call

        return await end_call(self, call_sid)

    async def send_response(self, conversation_id: str, response: Reply) -> None:
        """Send ``response`` (a ``str``, or an async iterator of ``str`` to stream it)
        into the live conversation ``conversation_id`` (its id, or a call's CallSid) from
        outside its turns: e.g. from a call-event hook, a timer or your own HTTP route.

        It becomes a turn of its own, in order with the conversation's messages. It never
        preempts: it starts once the running turn has ended (so pushing from inside a
        turn is safe: it follows that turn's reply). A barge-in stops it like any reply,
        a prompt read after it preempts it, it is recorded in ``session.history``, and a
        text goes through the messaging outbox (sent once, retried under one key).
        Returns once it is queued. :class:`LookupError` when no such conversation is
        live on this node; :class:`RuntimeError` when the runtime is not running."""
        from tac_actors.channels.call_events import push

        runtime = self.runtime
        if runtime is None:
            raise RuntimeError("send_response needs the TAC runtime running")
        await push(runtime, conversation_id, response)

    async def start_conversation(
        self, channel: Channel | str, to: str, message: str | None = None, *,
        metadata: Mapping[str, Any] | None = None, channel_id: str | None = None,
        from_: str | None = None, websocket_url: str | None = None,
        twiml_options: ConversationRelayOptions | None = None,
        media: MediaStreamOptions | None = None,
        call_options: CallOptions | None = None,
    ) -> OutboundResult:
        """Start an outbound conversation with ``to`` and return an
        :class:`~tac_actors.channels.outbound.OutboundResult`.

        ``channel`` ``"sms"``, ``"whatsapp"``, ``"rcs"`` or ``"chat"`` (Orchestrator
        mode): create or reuse the conversation, send ``message`` from our address
        (``channel_id`` is required for chat) and start its actor; the person's answer
        reaches ``on_message_ready`` like any inbound text. ``"voice"``: place a call from
        ``from_`` (default: the phone number) connected to our WebSocket (at
        ``websocket_url``, default ``wss://{voice_public_domain}/ws``); ``metadata``
        becomes the call's custom parameters. With ``media``
        (:class:`~tac_actors.realtime.MediaStreamOptions`) the call is speech-to-speech:
        a media stream to ``wss://{voice_public_domain}/media-stream``, bridged to the
        realtime model (``media.realtime`` or ``TAC(realtime=...)``). ``call_options``
        (:class:`~tac_actors.protocol.call_options.CallOptions`: machine detection,
        recording, ring timeout, any Calls API parameter) are layered over
        ``config.call_options``; the callback URLs of the registered ``on_call_status``,
        ``on_amd`` and ``on_recording`` hooks are filled in from our public URL.
        ``from_`` picks the sender on every channel (default: our configured address).

        Needs the runtime running (:func:`tac_actors.serve`, the CLI, or
        :func:`~tac_actors.testing.open_harness`): :class:`RuntimeError` otherwise.
        Service failures raise :class:`~tac_actors.services.ServiceError`.
        """
        runtime = self.runtime
        if runtime is None:
            raise RuntimeError("start_conversation needs the TAC runtime running: start the "
                               "server (tac_actors.serve) or a test harness first")
        return await runtime.start_conversation(
            channel, to, message, metadata=metadata, channel_id=channel_id, from_=from_,
            websocket_url=websocket_url, twiml_options=twiml_options, media=media,
            call_options=call_options)


class _AppAgent:
    """Adapts a :class:`TAC`'s callbacks to the actors' :class:`~tac_actors.actors.Agent`."""

    def __init__(self, tac: TAC) -> None:
        self._tac = tac

    async def reply(self, message: Utterance, session: ConversationSession) -> Reply:
        callback = self._tac.message_hook_for(session)
        if callback is None:
            raise RuntimeError("no on_message_ready callback is registered")
        provider = self._tac.memory_provider
        if type(provider) is NoMemory:  # relay-only: skip a scheduler round trip per turn
            memory = TACMemoryResponse.empty()
        else:
            with tracing.memory_span(provider):
                memory = await provider.retrieve(session, message.text)
        result = await self._tac.run_hook(callback, message.text, session, memory)
        return _check_reply(result, "on_message_ready")

    async def reply_digits(self, digits: Digits, session: ConversationSession) -> Reply:
        callback = self._tac._dtmf
        if callback is None:
            log.info("conversation %s: key %r pressed, no on_dtmf callback: ignored",
                     session.conversation_id, digits.digit)
            await trio.lowlevel.checkpoint()
            return None
        return _check_reply(await self._tac.run_hook(callback, digits.digit, session), "on_dtmf")

    async def partial(self, partial: PartialUtterance, session: ConversationSession) -> None:
        if self._tac._partial is not None:
            await self._tac.run_hook(self._tac._partial, partial.text, session)
        else:
            await trio.lowlevel.checkpoint()

    async def interrupted(self, session: ConversationSession, interruption: Interruption
                          ) -> None:
        if self._tac._interrupt is not None:
            await self._tac.run_hook(self._tac._interrupt, session, interruption)
        else:
            await trio.lowlevel.checkpoint()

    async def error(self, exc: BaseException, context: ErrorContext) -> None:
        if self._tac._error is not None:
            await self._tac.run_hook(self._tac._error, exc, context)
        else:
            await trio.lowlevel.checkpoint()

    async def ended(self, session: ConversationSession) -> None:
        forget = getattr(self._tac.memory_provider, "forget", None)
        if forget is not None:
            forget(session.conversation_id)
        if self._tac._ended is not None:
            await self._tac.run_hook(self._tac._ended, session)
        else:
            await trio.lowlevel.checkpoint()


def _number_key(number: str) -> str:
    """A number as compared for routing: without a channel prefix or spaces."""
    head, sep, rest = number.partition(":")
    if sep and head.lower() in ("whatsapp", "rcs", "sms", "tel"):
        number = rest
    return "".join(number.split()).lower()


def _check_reply(result: Any, name: str) -> Reply:
    if result is None or isinstance(result, str) or hasattr(result, "__aiter__"):
        return result  # type: ignore[no-any-return]
    raise TypeError(f"{name} must return a str, None or an async iterator of str, "
                    f"not {type(result).__name__}")


