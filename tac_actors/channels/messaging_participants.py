"""Participant reconciliation: make an Orchestrator conversation's participants what a
reply needs, as the reference does before its first turn.

Conversations Twilio creates from an inbound text (the "v1 bridge") may lack our agent
participant, or type it or the customer ``UNKNOWN``. :func:`reconcile_participants`
reads the participants the turn already fetched and decides, per the reference's
matrix (our side = the participant holding our address on the channel):

=========================  ======================  =====================================
our side                   customer side           action
=========================  ======================  =====================================
AI_AGENT / AGENT           CUSTOMER                none (no request)
AI_AGENT / AGENT           UNKNOWN, no CUSTOMER    look up or create the Memory profile,
                                                   PUT the customer as CUSTOMER
UNKNOWN                    any                     PUT ours as AI_AGENT, then as above
nobody                     any                     POST an AI_AGENT at our address, then
                                                   as above
HUMAN_AGENT, CUSTOMER...   any                     :class:`Refused` ``held``: a person
                                                   holds our address, the bot must not
                                                   speak for them
any                        none resolvable         :class:`Refused` ``no_customer``
=========================  ======================  =====================================

Chat skips the customer side (its customer is the author, known from the webhook).

The profile (SMS and WhatsApp: phone numbers) is looked up by phone in the Memory
store, else created with the trait ``{phone_trait_group: {phone_trait_field: number}}``
(``TWILIO_MEMORY_PHONE_TRAIT_GROUP``/``_FIELD``); a Memory failure promotes the customer
without a profile. An Orchestrator failure (or a 409) is a :class:`Refused`
``failed``: nothing is retried here; the next text tries again. Cancellation propagates;
a change already made stays made (each is idempotent to redo).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import attrs

from tac_actors._logsafe import excerpt
from tac_actors.memory.retrieval import lookup_identifier
from tac_actors.services.errors import ServiceError
from tac_actors.services.orchestrator import Participant, ParticipantAddress

if TYPE_CHECKING:
    from tac_actors.config import MemoryConfig
    from tac_actors.services import TwilioServices

__all__ = ["AGENT_TYPES", "InboundDropped", "Reconciled", "Refused",
           "reconcile_participants"]

log = logging.getLogger("tac_actors.messaging")

AGENT_TYPES = frozenset({"AI_AGENT", "AGENT"})
#: channels whose customer address is a phone number (a profile can be made from it)
PHONE_CHANNELS = frozenset({"SMS", "WHATSAPP", "VOICE"})


class InboundDropped(RuntimeError):
    """Reported to ``on_error`` (phase ``"channel"``, detail ``dropped_inbound: ...``)
    for a text that was not answered because reconciliation refused (the reference's
    "Participant reconciliation failed; inbound message dropped")."""


@attrs.frozen
class Reconciled:
    """The participants after reconciliation (``changed``: some were added or
    retyped); ``customer`` is ``None`` when the customer side was not reconciled."""

    participants: tuple[Participant, ...]
    agent: Participant
    customer: Participant | None
    changed: bool


@attrs.frozen
class Refused:
    """No reply can be sent: ``held`` (someone else holds our address: ``holder``),
    ``no_customer`` or ``failed`` (an Orchestrator request failed: ``detail``)."""

    reason: Literal["held", "no_customer", "failed"]
    detail: str
    holder: Participant | None = None


def _bare(address: str) -> str:
    """As :func:`tac_actors.channels.messaging.bare` (not imported: that module imports
    this one)."""
    head, sep, rest = address.partition(":")
    return (rest if sep and head.lower() in ("whatsapp", "rcs", "sms") else address).lower()


def _holds(participant: Participant, channel: str, address: str) -> bool:
    return any(a.channel.upper() == channel and _bare(a.address) == _bare(address)
               for a in participant.addresses)


def _on(participant: Participant, channel: str) -> bool:
    return any(a.channel.upper() == channel for a in participant.addresses)


async def reconcile_participants(
    services: TwilioServices, conversation_id: str, participants: tuple[Participant, ...],
    *, channel: str, agent_address: str, channel_id: str | None = None,
    memory_store_id: str | None = None, memory: MemoryConfig | None = None,
    reconcile_customer: bool = True,
) -> Reconciled | Refused:
    """Reconcile ``participants`` of ``conversation_id`` on ``channel`` (upper-case) with
    our ``agent_address`` (see the module docstring)."""
    channel = channel.upper()
    orchestrator = services.orchestrator
    changed = False
    current = list(participants)
    ours = next((p for p in current if _holds(p, channel, agent_address)), None)
    try:
        if ours is None:
            ours = await orchestrator.create_participant(
                conversation_id, type="AI_AGENT",
                addresses=[ParticipantAddress(channel=channel, address=agent_address,
                                              channel_id=channel_id)])
            current.append(ours)
            changed = True
            log.info("conversation %s: added our AI_AGENT participant %s",
                     excerpt(conversation_id, 80), excerpt(ours.id, 80))
        elif ours.type == "UNKNOWN" or ours.type is None:
            ours = await _retype(services, conversation_id, ours, "AI_AGENT")
            current = [ours if p.id == ours.id else p for p in current]
            changed = True
        elif ours.type not in AGENT_TYPES:
            return Refused("held", f"a {ours.type} participant holds our address "
                           f"{agent_address} on {channel}", ours)
        if not reconcile_customer:
            return Reconciled(tuple(current), ours, None, changed)
        agent_id = ours.id
        others = [p for p in current if p.id != agent_id and _on(p, channel)
                  and not _holds(p, channel, agent_address)]
        customer = next((p for p in others if p.type == "CUSTOMER"), None)
        if customer is not None:
            return Reconciled(tuple(current), ours, customer, changed)
        unknown = next((p for p in others if p.type in ("UNKNOWN", None)), None)
        if unknown is None:
            return Refused("no_customer", f"no customer participant on {channel}")
        profile_id = unknown.profile_id or await _profile_for(
            services, unknown, channel, memory_store_id, memory, conversation_id)
        customer = await _retype(services, conversation_id, unknown, "CUSTOMER",
                                 profile_id=profile_id)
    except ServiceError as exc:
        log.warning("conversation %s: participant reconciliation failed (%s)",
                    excerpt(conversation_id, 80), exc)
        return Refused("failed", str(exc)[:300])
    current = [customer if p.id == customer.id else p for p in current]
    return Reconciled(tuple(current), ours, customer, True)


async def _retype(services: TwilioServices, conversation_id: str, participant: Participant,
                  kind: str, *, profile_id: str | None = None) -> Participant:
    """PUT ``participant`` as ``kind`` (a full replacement: name and addresses kept)."""
    updated = await services.orchestrator.update_participant(
        conversation_id, participant.id, type=kind, addresses=participant.addresses,
        name=participant.name, profile_id=profile_id or participant.profile_id)
    log.info("conversation %s: participant %s retyped %s -> %s",
             excerpt(conversation_id, 80), excerpt(participant.id, 80), participant.type,
             kind)
    return updated


async def _profile_for(services: TwilioServices, customer: Participant, channel: str,
                       store_id: str | None, memory: MemoryConfig | None,
                       conversation_id: str) -> str | None:
    """Look up, else create, the customer's Memory profile by phone number (``None``
    without a store, a phone number, or when Memory fails)."""
    if store_id is None or memory is None or channel not in PHONE_CHANNELS:
        return None
    address = next((a.address for a in customer.addresses
                    if a.channel.upper() == channel and a.address), None)
    identifier = lookup_identifier(address)
    if identifier is None or identifier[0] != "phone":
        return None
    phone = identifier[1]
    client = services.memory
    try:
        found = await client.lookup_profile(store_id, id_type="phone", value=phone)
        if found.profiles:
            return found.profiles[0]
    except ServiceError as exc:
        log.warning("conversation %s: profile look-up failed (%s); creating one",
                    excerpt(conversation_id, 80), exc)
    try:
        created = await client.create_profile(
            store_id, traits={memory.phone_trait_group: {memory.phone_trait_field: phone}},
            idempotency_key=f"profile:{store_id}:{phone}")
    except ServiceError as exc:
        log.warning("conversation %s: profile creation failed (%s); the customer goes on "
                    "without a profile", excerpt(conversation_id, 80), exc)
        return None
    log.info("conversation %s: created Memory profile %s for a first contact",
             excerpt(conversation_id, 80), excerpt(created, 80))
    return created
