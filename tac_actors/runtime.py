"""The running half of a :class:`~tac_actors.TAC`: supervisor, channels and services.

A :class:`Runtime` exists while a server (or a test harness) runs. It is the one place
where the app's callbacks, the actors, the channels and the Twilio services are wired
together, so the HTTP server, the CLI and the test kit all assemble the same thing.

In Orchestrator mode, opening the runtime opens the service clients and fetches the
conversation configuration (a failure is an :class:`OrchestratorConfigError` naming the
setting); memory then comes from Conversation Memory with its fallbacks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import trio

from tac_actors._logsafe import excerpt
from tac_actors.actors import ActorCell, SessionUpdate, Supervisor, SupervisorStatistics
from tac_actors.asyncio_bridge import AsyncioBridge, set_current_bridge
from tac_actors.channels.media import MediaStreamChannel
from tac_actors.channels.messaging import MessagingChannel
from tac_actors.channels.outbound import (
    OutboundResult,
    start_call,
    start_media_call,
    start_text_conversation,
)
from tac_actors.channels.voice import VoiceChannel
from tac_actors.intelligence import IntelligenceProcessor
from tac_actors.memory.retrieval import OrchestratorMemory, fetch_orchestrator_config
from tac_actors.metrics import RuntimeMetrics
from tac_actors.protocol.call_options import CallOptions
from tac_actors.protocol.twiml import ConversationRelayOptions
from tac_actors.realtime.options import MediaStreamOptions
from tac_actors.services import ServiceError, TwilioServices
from tac_actors.session import AuthorInfo, Channel, ConversationSession
from tac_actors.store import ConversationStore
from tac_actors.tac import TAC
from tac_actors.usercode import set_current_limiter

__all__ = ["Runtime"]

log = logging.getLogger("tac_actors")

#: how a voice call finds its Orchestrator conversation: tries, first and largest delay
LINK_ATTEMPTS = 10
LINK_DELAYS = (0.25, 1.5)


@asynccontextmanager
async def _user_code(tac: TAC) -> AsyncIterator[None]:
    """Where app code runs for this run: the worker-thread cap for sync code (callbacks and
    tools), and in asyncio mode the asyncio loop (a private one in a thread, unless a host
    loop was given, as :mod:`tac_actors.asgi` does). Tools find both through run-scoped
    variables."""
    set_current_limiter(tac.thread_limiter)
    async with AsyncExitStack() as stack:
        if tac.config.asyncio and tac.bridge is None:
            tac.bridge = await stack.enter_async_context(AsyncioBridge.open())
            stack.callback(setattr, tac, "bridge", None)
            log.info("asyncio mode: async callbacks and tools run on an asyncio loop")
        set_current_bridge(tac.bridge if tac.config.asyncio else None)
        try:
            yield
        finally:
            set_current_bridge(None)
            set_current_limiter(None)


class Runtime:
    """Supervisor + channels (+ services in Orchestrator mode) for one :class:`TAC`."""

    def __init__(self, tac: TAC, supervisor: Supervisor,
                 services: TwilioServices | None = None,
                 store: ConversationStore | None = None) -> None:
        self.tac = tac
        self.supervisor = supervisor
        self.services = services
        self.voice = VoiceChannel(supervisor, tac.agent, policy=tac.config.voice_policy,
                                  max_frame_bytes=tac.config.max_frame_bytes,
                                  on_session=self._track_call,
                                  linker=self._link_voice if services is not None else None)
        #: speech-to-speech calls: Media Streams bridged to ``tac.realtime``
        self.media = MediaStreamChannel(supervisor, tac.agent, policy=tac.config.voice_policy,
                                        options=lambda: tac.realtime,
                                        on_session=self._track_call,
                                        linker=self._link_voice if services else None,
                                        memory=self._memory_prompt if services else None)
        #: SMS, WhatsApp, RCS and Chat (Orchestrator mode only)
        self.messaging: MessagingChannel | None = None
        if services is not None:
            forget = getattr(tac.memory_provider, "forget", None)
            self.messaging = MessagingChannel(
                supervisor, tac.agent, services, tac.config,
                policy=tac.config.messaging_policy, options=tac.messaging_options,
                forget=forget, store=store, lease_ttl=tac.config.lease_ttl)
        self._calls: dict[str, ActorCell] = {}
        #: one-off observations for /metrics (turn latencies, errors, webhooks)
        self.metrics = supervisor.metrics if isinstance(supervisor.metrics, RuntimeMetrics) \
            else RuntimeMetrics()
        self._linked: dict[str, trio.Event] = {}
        #: Conversation Intelligence operator results (``config.intelligence`` set)
        self.intelligence: IntelligenceProcessor | None = None
        #: ``http://host:port`` of the server when it is bound to a loopback address:
        #: where call-event callbacks go without a public domain (local development)
        self.local_base: str | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, tac: TAC, *, transport: httpx.AsyncBaseTransport | None = None,
                   store: ConversationStore | None = None) -> AsyncIterator[Runtime]:
        """Run the runtime for the block. On the way out running turns get
        ``config.shutdown_grace`` seconds, then everything is cancelled; every
        ``on_conversation_ended`` has run when the block exits.

        ``transport`` replaces the network for the service clients (tests pass the
        emulator's in-process transport). ``store``: the conversation store shared with
        other processes (default: Redis at ``config.redis_url`` when set, else none:
        text conversations live in this process only)."""
        config = tac.config
        async with AsyncExitStack() as stack:
            services: TwilioServices | None = None
            store_id: str | None = None
            if config.orchestrator_enabled:
                services = await stack.enter_async_context(
                    TwilioServices.open(config, transport=transport))
                store_id = await fetch_orchestrator_config(services, config)
                tac.memory_provider = OrchestratorMemory(services, config, store_id,
                                                         mode=tac.memory_mode)
                log.info("Orchestrator mode: configuration %s, memory store %s, memory %s",
                         config.conversation_configuration_id, store_id, tac.memory_mode)
            else:
                log.info("ConversationRelay-only mode: voice only, empty memory")
            tac.services = services
            await stack.enter_async_context(_user_code(tac))
            metrics = RuntimeMetrics()
            supervisor = await stack.enter_async_context(Supervisor.open(
                restart_limit=config.restart_limit, shutdown_grace=config.shutdown_grace,
                metrics=metrics))
            if store is None and config.redis_url and services is not None:
                from tac_actors.store.redis import RedisStore  # coredis: only when used

                store = await stack.enter_async_context(RedisStore.open(config.redis_url))
                log.info("text conversations shared through Redis (node %s, lease %.1f s)",
                         store.node, config.lease_ttl)
            runtime = cls(tac, supervisor, services, store)
            if runtime.messaging is not None:
                runtime.messaging.memory_store_id = store_id
            if config.intelligence is not None:
                runtime.intelligence = IntelligenceProcessor(
                    config.intelligence, services.memory if services else None, store_id)
            if runtime.messaging is not None:
                # backlogs and reconcile; cancelled first on the way out (the exit stack
                # unwinds in reverse), before the supervisor drains
                nursery = await stack.enter_async_context(trio.open_nursery())
                stack.callback(nursery.cancel_scope.cancel)
                await nursery.start(runtime.messaging.run)
            tac.runtime = runtime
            try:
                yield runtime
            finally:
                tac.runtime = None
                tac.services = None

    async def start_conversation(
        self, channel: Channel | str, to: str, message: str | None = None, *,
        metadata: Mapping[str, Any] | None = None, channel_id: str | None = None,
        from_: str | None = None, websocket_url: str | None = None,
        twiml_options: ConversationRelayOptions | None = None,
        media: MediaStreamOptions | None = None,
        call_options: CallOptions | None = None,
    ) -> OutboundResult:
        """See :meth:`TAC.start_conversation`."""
        kind = Channel(str(channel).lower())
        if kind.is_voice and media is not None:
            params = {k: str(v) for k, v in (metadata or {}).items()}
            result = await start_media_call(self.tac, self.services, to, from_=from_,
                                            websocket_url_=websocket_url,
                                            parameters={**params, **media.parameters},
                                            call_options=call_options)
            if media.realtime is not None and result.call_sid:
                self.media.expect(result.call_sid, media.realtime)
            return result
        if kind.is_voice:
            return await start_call(self.tac, self.services, to, from_=from_,
                                    websocket_url_=websocket_url, twiml_options=twiml_options,
                                    parameters={k: str(v) for k, v in (metadata or {}).items()},
                                    call_options=call_options)
        if self.messaging is None:
            raise RuntimeError("text conversations need Orchestrator mode "
                               "(TWILIO_CONVERSATION_CONFIGURATION_ID)")
        if message is None:
            raise ValueError("an outbound text conversation needs a first message")
        if call_options is not None:
            raise ValueError("call_options apply to voice calls only")
        return await start_text_conversation(self.messaging, kind, to, message,
                                             metadata=metadata, channel_id=channel_id,
                                             from_=from_)

    async def _memory_prompt(self, session: ConversationSession) -> str:
        """What memory knows of a caller, as prompt sections for a realtime model."""
        memory = await self.tac.memory_provider.retrieve(session, None)
        return memory.build_memory_prompts()

    def _track_call(self, session: ConversationSession, cell: ActorCell) -> None:
        sid = session.call_sid
        if sid:
            self._calls[sid] = cell
            if self.services is not None:
                self._linked[sid] = trio.Event()
            # an ended call holds nothing here (review C7/D3): the action callback that may
            # follow finds no live session either way
            cell.call_when_stopped(_ForgetCall(self._calls, sid, cell))

    async def _link_voice(self, session: ConversationSession, cell: ActorCell) -> None:
        """Find the Orchestrator conversation Twilio created for this call (its channel id
        is the CallSid), then tell the actor who the participants are."""
        assert self.services is not None
        call = session.call_sid or ""
        done = self._linked.setdefault(call, trio.Event())  # set by _track_call first
        try:
            await self._find_conversation(session, cell, call)
        finally:
            done.set()
            self._linked.pop(call, None)

    async def wait_linked(self, call_sid: str) -> None:
        """Wait until a call's Orchestrator look-up has finished (found or not); returns at
        once when none is running."""
        event = self._linked.get(call_sid)
        if event is None:
            await trio.lowlevel.checkpoint()
        else:
            await event.wait()

    async def _find_conversation(self, session: ConversationSession, cell: ActorCell,
                                 call: str) -> None:
        assert self.services is not None
        orchestrator = self.services.orchestrator
        delay, largest = LINK_DELAYS
        try:
            for _ in range(LINK_ATTEMPTS):
                page = await orchestrator.list_conversations(channel_id=call, status=["ACTIVE"])
                if len(page.items) == 1:
                    break
                await trio.sleep(delay)
                delay = min(delay * 2, largest)
            else:
                log.info("call %s: no Orchestrator conversation found; memory is looked up "
                         "by the caller's number", excerpt(call))
                return
            conversation = page.items[0]
            changes: dict[str, object] = {"conversation_id": conversation.id}
            for participant in (await orchestrator.list_participants(conversation.id)).items:
                address = participant.addresses[0].address if participant.addresses else ""
                if participant.type == "CUSTOMER":
                    changes["author_info"] = AuthorInfo(address, participant.id)
                    if participant.profile_id:
                        changes["profile_id"] = participant.profile_id
                elif participant.type in ("AI_AGENT", "AGENT"):
                    changes["ai_agent_info"] = AuthorInfo(address, participant.id)
        except ServiceError as exc:
            log.warning("call %s: Orchestrator look-up failed (%s); going on without it",
                        excerpt(call), exc)
            return
        except Exception:  # a bug here must not take the call (or the server) down
            log.exception("call %s: Orchestrator look-up failed; going on without it",
                          excerpt(call))
            return
        log.info("call %s linked to Orchestrator conversation %s", excerpt(call),
                 excerpt(conversation.id))
        try:
            await cell.send(SessionUpdate(changes))
        except trio.ClosedResourceError:
            pass  # the call ended meanwhile

    def live_session(self, conversation_id: str) -> ConversationSession | None:
        """The live session of a conversation on this node (by Orchestrator conversation
        id, or CallSid), or ``None``."""
        cell = self.supervisor.get(conversation_id)
        if cell is not None and not cell.stopped.is_set():
            return cell.session
        for cell in self.supervisor:
            session = cell.session
            if conversation_id in (session.conversation_id, session.call_sid) \
                    and not cell.stopped.is_set():
                return session
        return None

    def call_cell(self, call_sid: str) -> ActorCell | None:
        """The live conversation of a call, or ``None`` once it has ended."""
        cell = self._calls.get(call_sid)
        if cell is None or cell.stopped.is_set():
            self._calls.pop(call_sid, None)
            return None
        return cell

    def session_by_call_sid(self, call_sid: str) -> ConversationSession | None:
        """The live session of a call, or ``None`` once it has ended."""
        cell = self._calls.get(call_sid)
        if cell is None or cell.stopped.is_set():
            self._calls.pop(call_sid, None)
            return None
        return cell.session

    async def shutdown(self, grace: float | None = None) -> None:
        """Drain every conversation (see :meth:`Supervisor.shutdown`)."""
        await self.supervisor.shutdown(grace)

    def statistics(self) -> SupervisorStatistics:
        return self.supervisor.statistics()


class _ForgetCall:
    """Drops an ended call from the registry of live calls (one small object per call:
    a closure or a ``functools.partial`` costs two to four objects more)."""

    __slots__ = ("calls", "cell", "sid")

    def __init__(self, calls: dict[str, ActorCell], sid: str, cell: ActorCell) -> None:
        self.calls = calls
        self.sid = sid
        self.cell = cell

    def __call__(self) -> None:
        if self.calls.get(self.sid) is self.cell:
            del self.calls[self.sid]
