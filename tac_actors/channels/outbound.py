"""Outbound conversations: the agent writes (or calls) first.

* **Text** (sms, whatsapp, rcs, chat): create the Orchestrator conversation with a
  CUSTOMER and an AI_AGENT participant (an active one with the same addresses is
  reused: 409), send the first message through ``SEND_MESSAGE``, and start the
  conversation's actor (or keep the live one), so the person's answer lands in it.
  When the first message cannot be sent, the actor started for it is stopped, a
  conversation created for it is closed, and the service error is raised.
* **Voice**: place a call through the Voice API whose TwiML connects the answered call
  to our ConversationRelay WebSocket; the actor starts when the socket's ``setup``
  arrives, as for an inbound call. The call carries Calls API options
  (:class:`~tac_actors.protocol.call_options.CallOptions`): the callback URLs of the
  registered call-event hooks, then ``config.call_options``, then the call's own.

Every start goes from ``from_`` when given (any of our numbers: ``config.phone_numbers``,
or another address Twilio lets us send from), else from our configured address on the
channel (``phone_number`` for voice and SMS).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import trio

from tac_actors.channels.messaging import MessagingChannel, bare
from tac_actors.channels.messaging_outbox import Route
from tac_actors.protocol.call_options import CallOptions
from tac_actors.protocol.twiml import ConversationRelayOptions, connect_twiml, stream_twiml
from tac_actors.services import ServiceError, TwilioServices
from tac_actors.services.calls import Call, CallsClient
from tac_actors.session import AuthorInfo, Channel, ConversationSession

if TYPE_CHECKING:
    from tac_actors.tac import TAC

__all__ = ["OutboundResult", "call_options_for", "start_call", "start_text_conversation"]

log = logging.getLogger("tac_actors.outbound")


@attrs.frozen(kw_only=True)
class OutboundResult:
    """What an outbound start produced: ``conversation_id`` and ``session`` for text
    (``reused`` when the Orchestrator already had an active conversation), ``call_sid``
    for voice."""

    channel: Channel
    to: str
    conversation_id: str | None = None
    call_sid: str | None = None
    session: ConversationSession | None = attrs.field(default=None, eq=False, repr=False)
    reused: bool = False


async def start_text_conversation(
    messaging: MessagingChannel, channel: Channel, to: str, message: str, *,
    metadata: Mapping[str, Any] | None = None, channel_id: str | None = None,
    from_: str | None = None,
) -> OutboundResult:
    """Start (or continue) a text conversation with ``to``; see the module docstring.
    The message goes from ``from_`` (one of our numbers or addresses), by default our
    configured address on the channel. Raises :class:`ValueError` for a missing sender
    or message, :class:`~tac_actors.services.ServiceError` when the Orchestrator
    refuses."""
    if channel.is_voice:
        raise ValueError("use start_call for voice")
    if not message.strip():
        raise ValueError("an outbound conversation needs a first message")
    if channel is Channel.CHAT and not channel_id:
        raise ValueError("an outbound chat needs the chat's channel_id")
    ours = messaging.sender_address(channel, from_)
    if not ours:
        raise ValueError(f"no sender address configured for {channel} "
                         "(phone_number, whatsapp_number or rcs_sender_id)")
    wire = str(channel).upper()
    extra = {"channelId": channel_id} if channel_id else {}
    orchestrator = messaging.services.orchestrator
    conversation_id, reused = await orchestrator.create_or_reuse_conversation(participants=[
        {"type": "CUSTOMER", "addresses": [{"channel": wire, "address": to, **extra}]},
        {"type": "AI_AGENT", "addresses": [{"channel": wire, "address": ours, **extra}]},
    ])
    spawned = None
    try:
        participants = (await orchestrator.list_participants(conversation_id)).items
        messaging.remember_participants(conversation_id, participants)

        def holder(address: str, types: tuple[str, ...]) -> str | None:
            return next((p.id for p in participants if p.type in types and any(
                a.channel.upper() == wire and bare(a.address) == bare(address)
                for a in p.addresses)), None)

        customer_id = holder(to, ("CUSTOMER",))
        agent_id = holder(ours, ("AI_AGENT", "AGENT"))
        route = Route(conversation_id=conversation_id, channel=wire, from_address=ours,
                      to_address=to, from_participant_id=agent_id,
                      to_participant_id=customer_id, channel_id=channel_id)
        cell = messaging.supervisor.get(conversation_id)
        session = cell.session if cell is not None else None
        if cell is None:
            session = ConversationSession(
                conversation_id=conversation_id, channel=channel,
                started_at=datetime.now(UTC), caller=to, called=ours,
                author_info=AuthorInfo(to, customer_id),
                ai_agent_info=AuthorInfo(ours, agent_id),
                metadata={**(metadata or {}), "direction": "outbound",
                          **({"channel_id": channel_id} if channel_id else {})},
            )
            session.record("assistant", message, datetime.now(UTC))
            router = messaging.router
            # with a shared store the conversation's owner runs its actor: this process
            # when it holds (or now claims) the lease; else that owner answers the
            # person's replies (the session returned is then not a live one)
            if router is None or await router.claim_for_outbound(conversation_id):
                cell = spawned = messaging.spawn(session, route)
                if cell is None:
                    raise RuntimeError("the server is shutting down")
        await orchestrator.send_message(
            conversation_id, from_=route.sender(), to=[route.recipient()], text=message,
            channel_settings={"channelId": channel_id} if channel_id else None,
            idempotency_key="tac-" + uuid.uuid4().hex)
    except BaseException:
        if spawned is not None:
            spawned.hang_up("failed")
        if not reused:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                try:
                    await orchestrator.update_conversation(conversation_id, status="CLOSED")
                except ServiceError as exc:
                    log.warning("conversation %s: could not close it after a failed start "
                                "(%s)", conversation_id, exc)
        raise
    log.info("outbound %s conversation %s with %s%s", channel, conversation_id, to,
             " (reused)" if reused else "")
    return OutboundResult(channel=channel, to=to, conversation_id=conversation_id,
                          session=session, reused=reused)


def websocket_url(tac: TAC) -> str:
    """``wss://{voice_public_domain}{voice_websocket_path}``, else (a server bound to a
    loopback address: local development) ``ws://host:port{voice_websocket_path}``;
    ValueError without either."""
    domain = tac.config.voice_public_domain
    if domain:
        return f"wss://{domain}{tac.config.voice_websocket_path}"
    local = tac.runtime.local_base if tac.runtime is not None else None
    if local:
        return "ws" + local.removeprefix("http") + tac.config.voice_websocket_path
    raise ValueError("an outbound call needs TWILIO_VOICE_PUBLIC_DOMAIN (or websocket_url)")


def call_options_for(tac: TAC, per_call: CallOptions | None) -> CallOptions:
    """The Calls API options of one outbound call, lowest layer first: the callback URLs
    of the registered call-event hooks, ``config.call_options``, then ``per_call``."""
    from tac_actors.channels.call_events import callback_urls

    return callback_urls(tac).merged(tac.config.call_options, per_call)


async def _place(tac: TAC, services: TwilioServices | None, *, to: str, sender: str,
                 twiml: str, options: CallOptions) -> Call:
    config = tac.config
    if services is not None:
        return await CallsClient(services.http, config.account_sid).create(
            to=to, from_=sender, twiml=twiml, options=options)
    async with TwilioServices.open(config) as own:
        return await CallsClient(own.http, config.account_sid).create(
            to=to, from_=sender, twiml=twiml, options=options)


async def start_call(tac: TAC, services: TwilioServices | None, to: str, *,
                     from_: str | None = None, websocket_url_: str | None = None,
                     twiml_options: ConversationRelayOptions | None = None,
                     parameters: Mapping[str, str] | None = None,
                     call_options: CallOptions | None = None) -> OutboundResult:
    """Call ``to`` and connect the answered call to our WebSocket, with the Calls API
    options of :func:`call_options_for`. Opens a service client for the call when the
    runtime has none (ConversationRelay-only mode)."""
    config = tac.config
    sender = from_ or config.phone_number
    if not sender:
        raise ValueError("an outbound call needs a caller id (phone_number or from_)")
    options = ConversationRelayOptions(
        url=websocket_url_ or websocket_url(tac),
        conversation_configuration=config.conversation_configuration_id,
        parameters=dict(parameters or {}),
    ).merged(tac.twiml_options, *([twiml_options] if twiml_options else []))
    action = (f"https://{config.voice_public_domain}{config.voice_action_path}"
              if config.voice_public_domain else None)
    twiml = connect_twiml(options, action_url=action)
    call = await _place(tac, services, to=to, sender=sender, twiml=twiml,
                        options=call_options_for(tac, call_options))
    log.info("outbound call %s to %s from %s", call.sid, to, sender)
    return OutboundResult(channel=Channel.VOICE, to=to, call_sid=call.sid)


async def start_media_call(tac: TAC, services: TwilioServices | None, to: str, *,
                           from_: str | None = None, websocket_url_: str | None = None,
                           parameters: Mapping[str, str] | None = None,
                           call_options: CallOptions | None = None) -> OutboundResult:
    """Call ``to`` and connect the answered call to our media-stream route (a
    speech-to-speech call: ``<Connect><Stream>``). ``websocket_url_`` defaults to
    ``wss://{voice_public_domain}/media-stream``."""
    from tac_actors.channels.media import MEDIA_ACTION_PATH, MEDIA_WEBSOCKET_PATH

    config = tac.config
    sender = from_ or config.phone_number
    if not sender:
        raise ValueError("an outbound call needs a caller id (phone_number or from_)")
    domain = config.voice_public_domain
    if websocket_url_ is None:
        if not domain:
            raise ValueError("an outbound call needs TWILIO_VOICE_PUBLIC_DOMAIN "
                             "(or websocket_url)")
        websocket_url_ = f"wss://{domain}{MEDIA_WEBSOCKET_PATH}"
    twiml = stream_twiml(websocket_url_,
                         parameters={"From": sender, "To": to, "Direction": "outbound-api",
                                     **(parameters or {})},
                         action_url=f"https://{domain}{MEDIA_ACTION_PATH}" if domain else None)
    call = await _place(tac, services, to=to, sender=sender, twiml=twiml,
                        options=call_options_for(tac, call_options))
    log.info("outbound speech-to-speech call %s to %s", call.sid, to)
    return OutboundResult(channel=Channel.VOICE, to=to, call_sid=call.sid)
