"""Memory retrieval for Orchestrator mode, with automatic fallback and a per-turn budget.

:class:`OrchestratorMemory` answers :meth:`retrieve` from the first tier that works:

1. **Memory API** (when the configuration names a Memory store): the profile id comes
   from the session, else from a lookup by the person's address (``email`` when it holds
   an ``@``, ``phone`` when it looks like a phone number once a ``whatsapp:``/``rcs:``
   prefix is removed; a chat id is not looked up). The profile (traits) and ``/Recall``
   are then fetched **concurrently**; the profile lands on ``session.profile``.
2. **Orchestrator communications** of the conversation, when the Memory API fails
   (any :class:`~tac_actors.services.ServiceError`) or knows no profile. Each message is
   labelled customer / assistant / human agent from the participants' types.
3. **Empty**, when both fail.

A warning is logged once per conversation and per kind of failure, not every turn.

The whole retrieval runs under ``trio.move_on_after(config.memory.budget)``: when the
budget expires the turn goes on with what has arrived (the profile may be set while the
recall is missing) and the answer has ``complete=False``.

Modes (:class:`MemoryMode`), per channel (:func:`memory_modes`): ``never`` returns empty
without a request; ``always`` asks every turn with the turn's text as the query and the
conversation id; ``once`` asks once per conversation without a query (skipping Memory's
slow query expansion) and serves later turns from a cache, filled only by a complete
answer of the first tier.
Call :meth:`OrchestratorMemory.forget` when a conversation ends.

``retrieve`` never raises for a service failure; it is cancellable at any await
(cancellation propagates as usual).
"""

from __future__ import annotations

import enum
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

import attrs
import trio

from tac_actors.memory.models import TACMemoryResponse
from tac_actors.services.errors import ServiceError
from tac_actors.session import Profile

if TYPE_CHECKING:
    from tac_actors.config import TACConfig
    from tac_actors.services import TwilioServices
    from tac_actors.services.orchestrator import Communication
    from tac_actors.session import ConversationSession

__all__ = [
    "MemoryMode",
    "MemoryStatistics",
    "OrchestratorConfigError",
    "OrchestratorMemory",
    "fetch_orchestrator_config",
    "lookup_identifier",
    "memory_modes",
]

logger = logging.getLogger("tac_actors.memory")
_K = TypeVar("_K")
_V = TypeVar("_V")

_CHANNEL_PREFIX = re.compile(r"^(whatsapp|rcs|sms|mms|tel|voice):", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{4,}$")


class MemoryMode(enum.StrEnum):
    """When memory is fetched (the reference SDK's ``memory_mode``)."""

    NEVER = "never"
    ALWAYS = "always"
    ONCE = "once"


class OrchestratorConfigError(RuntimeError):
    """The Orchestrator configuration could not be loaded at start-up."""


@attrs.frozen
class MemoryStatistics:
    """Counters since the provider was created."""

    retrievals: int
    memory_answers: int
    orchestrator_answers: int
    empty_answers: int
    budget_expired: int
    cache_hits: int


async def fetch_orchestrator_config(services: TwilioServices, config: TACConfig) -> str | None:
    """The Memory store id of the configured conversation configuration (``None`` when
    it has no store). Called once at server start-up.

    Raises :class:`OrchestratorConfigError`, naming ``TWILIO_CONVERSATION_CONFIGURATION_ID``,
    when the id is unset or the configuration cannot be fetched.
    """
    config_id = config.conversation_configuration_id
    if not config_id:
        raise OrchestratorConfigError(
            "TWILIO_CONVERSATION_CONFIGURATION_ID is not set: Orchestrator mode needs a "
            "conversation configuration id"
        )
    try:
        configuration = await services.orchestrator.get_configuration(config_id)
    except ServiceError as exc:
        raise OrchestratorConfigError(
            f"could not load the conversation configuration {config_id!r} named by "
            f"TWILIO_CONVERSATION_CONFIGURATION_ID: {exc}"
        ) from exc
    return configuration.memory_store_id


def memory_modes(mode: MemoryMode | str | Mapping[str, str]) -> dict[str, MemoryMode]:
    """Per-channel modes from ``TAC(memory_mode=...)``: one mode for every channel, or a
    mapping of channel names (``voice``, ``sms``, ``whatsapp``, ``rcs``, ``chat``) and
    ``default`` to modes. Raises :class:`ValueError` for an unknown channel or mode."""
    if isinstance(mode, str):
        return {"default": MemoryMode(mode)}
    known = {"default", "voice", "sms", "whatsapp", "rcs", "chat"}
    modes: dict[str, MemoryMode] = {}
    for channel, value in mode.items():
        name = str(channel).lower()
        if name not in known:
            raise ValueError(f"memory_mode: unknown channel {channel!r} (one of "
                             f"{', '.join(sorted(known))})")
        modes[name] = MemoryMode(value)
    return modes


def lookup_identifier(address: str | None) -> tuple[str, str] | None:
    """``(id_type, value)`` to look a person up in Memory by address, or ``None`` when
    the address is neither an email nor a phone number (e.g. a chat id)."""
    if not address:
        return None
    value = _CHANNEL_PREFIX.sub("", address.strip())
    if "@" in value:
        return "email", value
    if _PHONE.match(value):
        digits = re.sub(r"[^0-9]", "", value)
        return "phone", ("+" + digits) if value.startswith("+") else digits
    return None


class _NoProfile(Exception):
    """Memory knows no profile for this person (not a failure of the service)."""


@attrs.define
class _Partial:
    """What has arrived so far, kept across a budget expiry."""

    result: TACMemoryResponse | None = None
    recall_error: ServiceError | None = None


class OrchestratorMemory:
    """The :class:`~tac_actors.memory.MemoryProvider` of Orchestrator mode.

    ``memory_store_id`` comes from :func:`fetch_orchestrator_config`; with ``None`` the
    Orchestrator communications are the first tier. ``fallback_communications`` caps how
    many of the latest Orchestrator messages are returned.
    """

    def __init__(
        self,
        services: TwilioServices,
        config: TACConfig,
        memory_store_id: str | None,
        *,
        mode: MemoryMode | str | Mapping[str, str] = MemoryMode.ALWAYS,
        fallback_communications: int = 50,
        max_tracked_conversations: int = 10_000,
    ) -> None:
        self._services = services
        self._config = config
        self._store_id = memory_store_id
        self.modes = memory_modes(mode)
        #: the mode of channels the mapping does not name
        self.mode = self.modes.get("default", MemoryMode.ONCE)
        self._fallback_limit = fallback_communications
        self._max_tracked = max_tracked_conversations
        self._cache: OrderedDict[str, TACMemoryResponse] = OrderedDict()
        self._warned: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._counts = dict.fromkeys(attrs.fields_dict(MemoryStatistics), 0)

    def __repr__(self) -> str:
        return f"OrchestratorMemory(store={self._store_id!r}, mode={self.mode.value!r})"

    @property
    def memory_store_id(self) -> str | None:
        return self._store_id

    def statistics(self) -> MemoryStatistics:
        return MemoryStatistics(**self._counts)

    def forget(self, conversation_id: str) -> None:
        """Drop the ``once`` cache and the logged-warning marks of a conversation."""
        self._cache.pop(conversation_id, None)
        for key in [k for k in self._warned if k[0] == conversation_id]:
            del self._warned[key]

    def mode_for(self, channel: str) -> MemoryMode:
        """The mode of ``channel`` (``"voice"``, ``"sms"``...)."""
        return self.modes.get(str(channel).lower(), self.mode)

    async def retrieve(
        self, session: ConversationSession, query: str | None
    ) -> TACMemoryResponse:
        """Memory for this turn of ``session`` in the mode of its channel (see the
        module docstring)."""
        mode = self.mode_for(session.channel)
        if mode is MemoryMode.NEVER:
            await trio.lowlevel.checkpoint()
            return TACMemoryResponse.empty()
        conversation_id = session.conversation_id
        if mode is MemoryMode.ONCE:
            cached = self._cache.get(conversation_id)
            if cached is not None:
                self._counts["cache_hits"] += 1
                await trio.lowlevel.checkpoint()
                return cached
            query = None
        result = await self.fetch(session, query,
                                  conversation_id=conversation_id if query else None)
        primary = "memory" if self._store_id else "orchestrator"
        if mode is MemoryMode.ONCE and result.complete and result.source == primary:
            self._remember(self._cache, conversation_id, result)
        return result

    async def fetch(
        self, session: ConversationSession, query: str | None, *,
        conversation_id: str | None = None,
    ) -> TACMemoryResponse:
        """Look memory up now for ``session`` (with ``query``), whatever the mode and the
        cache: what :meth:`TAC.retrieve_memory` does. ``conversation_id`` goes to the
        recall as given (with no query Memory then infers one from that conversation).
        Same fallbacks and budget."""
        self._counts["retrievals"] += 1
        partial = _Partial()
        recall_conversation = conversation_id
        conversation_id = session.conversation_id
        with trio.move_on_after(self._config.memory.budget) as scope:
            result = await self._tiers(session, query, partial, recall_conversation)
        if scope.cancelled_caught:
            self._counts["budget_expired"] += 1
            self._warn_once(
                conversation_id, "budget", logging.WARNING,
                "memory for conversation %s took longer than its budget of %.2f s; "
                "the turn goes on without it", conversation_id, self._config.memory.budget,
            )
            result = attrs.evolve(partial.result or TACMemoryResponse.empty(), complete=False)
        self._count(result)
        return result

    # -- tiers --------------------------------------------------------------------------

    async def _tiers(
        self, session: ConversationSession, query: str | None, partial: _Partial,
        recall_conversation: str | None = None,
    ) -> TACMemoryResponse:
        conversation_id = session.conversation_id
        if self._store_id is not None:
            try:
                return await self._memory_tier(self._store_id, session, query, partial,
                                               recall_conversation)
            except _NoProfile as exc:
                self._warn_once(
                    conversation_id, "no-profile", logging.INFO,
                    "no Memory profile for conversation %s (%s); using its Orchestrator "
                    "messages", conversation_id, exc,
                )
            except ServiceError as exc:
                self._warn_once(
                    conversation_id, "memory", logging.WARNING,
                    "Memory API failed for conversation %s (%s); falling back to the "
                    "Orchestrator's messages", conversation_id, exc,
                )
        if session.call_sid and conversation_id == session.call_sid:
            # a call with no Orchestrator conversation (yet): e.g. one placed straight on
            # /ws as `tac-actors call` does, or a first turn before the link. Asking for
            # the messages of a conversation named by the CallSid can only answer 404
            # (review finding 3: that warned on the happy path of the dev loop)
            self._warn_once(
                conversation_id, "unlinked", logging.INFO,
                "call %s has no Orchestrator conversation (yet): no stored messages to "
                "use as memory", conversation_id,
            )
            return TACMemoryResponse.empty()
        try:
            return await self._orchestrator_tier(session, partial)
        except ServiceError as exc:
            self._warn_once(
                conversation_id, "orchestrator", logging.WARNING,
                "Orchestrator communications failed for conversation %s (%s); the turn "
                "goes on without memory", conversation_id, exc,
            )
        return TACMemoryResponse.empty()

    async def _memory_tier(
        self, store_id: str, session: ConversationSession, query: str | None,
        partial: _Partial, recall_conversation: str | None = None,
    ) -> TACMemoryResponse:
        memory = self._services.memory
        profile_id = session.profile_id
        if not profile_id:
            # the person: author_info (the remote party, also on an outbound call),
            # else the caller
            address = (session.author_info.address if session.author_info else None
                       ) or session.caller
            identifier = lookup_identifier(address)
            if identifier is None:
                raise _NoProfile("no phone number or email address to look up")
            id_type, value = identifier
            found = await memory.lookup_profile(store_id, id_type=id_type, value=value)
            if not found.profiles:
                raise _NoProfile(f"no profile matches this {id_type}")
            profile_id = found.profiles[0]
            session.profile_id = profile_id

        async def fetch_profile() -> None:
            try:
                profile = await memory.get_profile(
                    store_id, profile_id,
                    trait_groups=self._config.memory.profile_trait_groups,
                )
            except ServiceError as exc:
                self._warn_once(
                    session.conversation_id, "profile", logging.WARNING,
                    "could not fetch Memory profile %s (%s); going on without its traits",
                    profile_id, exc,
                )
                return
            session.profile = Profile(
                id=profile.id, traits=profile.traits, created_at=profile.created_at
            )

        async def recall() -> None:
            limits = self._config.memory
            try:
                answer = await memory.recall(
                    store_id, profile_id,
                    conversation_id=recall_conversation,
                    query=query or None,
                    observations_limit=limits.observations_limit,
                    summaries_limit=limits.summaries_limit,
                    communications_limit=limits.communications_limit,
                    relevance_threshold=limits.relevance_threshold,
                )
            except ServiceError as exc:
                partial.recall_error = exc
                return
            partial.result = TACMemoryResponse.from_recall(answer)

        async with trio.open_nursery() as nursery:
            if session.profile is None or session.profile.id != profile_id:
                nursery.start_soon(fetch_profile)
            nursery.start_soon(recall)
        if partial.recall_error is not None:
            raise partial.recall_error
        assert partial.result is not None
        return partial.result

    async def _orchestrator_tier(
        self, session: ConversationSession, partial: _Partial
    ) -> TACMemoryResponse:
        orchestrator = self._services.orchestrator
        conversation_id = session.conversation_id
        types: dict[str, str] = {}
        if session.author_info and session.author_info.participant_id:
            types[session.author_info.participant_id] = "CUSTOMER"
        if session.ai_agent_info and session.ai_agent_info.participant_id:
            types[session.ai_agent_info.participant_id] = "AI_AGENT"
        errors: list[ServiceError] = []
        fetched: list[Communication] = []

        async def fetch_participants() -> None:
            try:
                page = await orchestrator.list_participants(conversation_id)
            except ServiceError as exc:  # only the roles get worse
                logger.debug("participants of %s unavailable: %s", conversation_id, exc)
                return
            types.update({p.id: p.type for p in page.items if p.type})

        async def fetch_communications() -> None:
            try:
                fetched.extend(await orchestrator.list_all_communications(conversation_id))
            except ServiceError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            if len(types) < 2:  # the session does not name both sides
                nursery.start_soon(fetch_participants)
            nursery.start_soon(fetch_communications)
        if errors:
            raise errors[0]
        latest = fetched[-self._fallback_limit:] if self._fallback_limit > 0 else []
        result = TACMemoryResponse.from_communications(
            latest,
            participant_types=types,
            customer_addresses=_present(
                session.caller, session.author_info.address if session.author_info else None
            ),
            assistant_addresses=_present(
                session.called,
                session.ai_agent_info.address if session.ai_agent_info else None,
            ),
        )
        partial.result = result
        return result

    # -- bookkeeping --------------------------------------------------------------------

    def _count(self, result: TACMemoryResponse) -> None:
        key = {"memory": "memory_answers", "orchestrator": "orchestrator_answers"}.get(
            result.source, "empty_answers"
        )
        self._counts[key] += 1

    def _warn_once(
        self, conversation_id: str, kind: str, level: int, message: str, *args: object
    ) -> None:
        key = (conversation_id, kind)
        if key in self._warned:
            return
        self._remember(self._warned, key, None)
        logger.log(level, message, *args)

    def _remember(self, store: OrderedDict[_K, _V], key: _K, value: _V) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self._max_tracked:
            store.popitem(last=False)


def _present(*values: str | None) -> tuple[str, ...]:
    return tuple(v for v in values if v)

