"""Call control from outside a conversation: call events in, hang-ups and pushes out.

* :func:`deliver_call_event`: a status, AMD or recording callback (already signature
  checked by the route) is parsed into its event and handed to the app's hook
  (``on_call_status``, ``on_amd``, ``on_recording``). Answers: 400 for a payload that is
  not a call event, 403 for another account's call, else 200 (also when no hook is
  registered, or when the hook failed: that is the app's error, reported to
  ``on_error``, and Twilio does not retry callbacks). A hook gets
  :data:`HOOK_TIMEOUT` seconds (Twilio waits 15 s for an answer); past it it is
  cancelled and reported.
* :func:`callback_urls`: the callback URLs an outbound call is placed with, one per
  registered hook, at our public URL.
* :func:`end_call`: hang a call up through the Calls API and stop its conversation here.
* :func:`push`: send a reply into a live conversation from outside its turns.

Twilio posts each callback on its own: the hooks of one call may overlap, and their
events may arrive out of order (``CallStatusEvent.sequence_number`` and ``timestamp``
tell the order Twilio meant).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from tac_actors._logsafe import LogLimiter, excerpt
from tac_actors.actors import ActorCell, ErrorContext, Push
from tac_actors.actors.gate import CURRENT_TURN, NO_TURN
from tac_actors.protocol.call_events import (
    CALL_EVENT_KINDS,
    AmdEvent,
    CallEvent,
    CallStatusEvent,
    RecordingEvent,
    parse_call_event,
)
from tac_actors.protocol.call_options import CallOptions
from tac_actors.protocol.errors import ProtocolError
from tac_actors.services import ServiceError, TwilioServices
from tac_actors.services.calls import CallsClient

if TYPE_CHECKING:
    from tac_actors.runtime import Runtime
    from tac_actors.tac import TAC

__all__ = [
    "HOOK_TIMEOUT",
    "CallEventAnswer",
    "callback_urls",
    "deliver_call_event",
    "end_call",
    "find_conversation",
    "push",
]

log = logging.getLogger("tac_actors.calls")
_limited = LogLimiter(log, interval=60.0)

#: seconds a call-event hook may run before it is cancelled (Twilio waits 15 s)
HOOK_TIMEOUT: Final = 10.0

#: per kind: the hook attribute of TAC, its name, and the Calls API callback parameter
_WIRING: Final[Mapping[str, tuple[str, str, str]]] = {
    "status": ("_call_status", "on_call_status", "status_callback"),
    "amd": ("_amd", "on_amd", "async_amd_status_callback"),
    "recording": ("_recording", "on_recording", "recording_status_callback"),
}


@attrs.frozen
class CallEventAnswer:
    """What the route answers Twilio, and the event when one was parsed."""

    status: int
    text: str
    event: CallEvent | None = None


def _describe(event: CallEvent) -> str:
    if isinstance(event, CallStatusEvent):
        duration = f", {event.call_duration} s" if event.call_duration else ""
        return f"status {excerpt(event.call_status, 32)}{duration}"
    if isinstance(event, AmdEvent):
        return f"answered by {excerpt(event.answered_by, 32)}"
    assert isinstance(event, RecordingEvent)
    return (f"recording {excerpt(event.recording_sid, 40)} "
            f"{excerpt(event.recording_status, 32)}")


async def deliver_call_event(tac: TAC, kind: str, form: Mapping[str, str]
                             ) -> CallEventAnswer:
    """Parse ``form`` as a call event of ``kind`` and run the app's hook for it; see the
    module docstring for the answers. Never raises for the payload or the hook."""
    try:
        event = parse_call_event(kind, form)
    except ProtocolError as exc:
        _limited.warning(("bad", kind), "call event (%s) refused: %s: 400", kind, exc.message)
        return CallEventAnswer(400, f"not a call event: {exc.message}")
    account = tac.config.account_sid
    if event.account_sid and account and event.account_sid != account:
        _limited.warning(("account", kind), "call %s: %s event for account %s, not ours (%s):"
                         " 403", excerpt(event.call_sid, 64), kind,
                         excerpt(event.account_sid, 64), account)
        return CallEventAnswer(403, "not this account's call", event)
    log.info("call %s: %s", excerpt(event.call_sid, 64), _describe(event))
    attribute, name, _ = _WIRING[kind]
    hook = getattr(tac, attribute)
    if hook is None:
        await trio.lowlevel.checkpoint()
        return CallEventAnswer(200, "no hook", event)
    try:
        with trio.move_on_after(HOOK_TIMEOUT) as scope:
            await tac.run_hook(hook, event)
        if scope.cancelled_caught:
            raise TimeoutError(f"{name} ran past {HOOK_TIMEOUT:g} s and was cancelled")
    except Exception as exc:
        log.exception("call %s: %s failed", excerpt(event.call_sid, 64), name)
        await _report(tac, exc, event, name)
    return CallEventAnswer(200, "ok", event)


async def _report(tac: TAC, exc: BaseException, event: CallEvent, name: str) -> None:
    if tac._error is None:
        return
    runtime = tac.runtime
    session = runtime.session_by_call_sid(event.call_sid) if runtime is not None else None
    context = ErrorContext(session.conversation_id if session else event.call_sid, "voice",
                           "hook", None, f"{name}: {exc}")
    try:
        with trio.move_on_after(HOOK_TIMEOUT):
            await tac.run_hook(tac._error, exc, context)
    except Exception:
        log.exception("on_error raised while reporting a %s failure", name)


def callback_base(tac: TAC) -> str | None:
    """Where Twilio reaches us over HTTP: ``https://{voice_public_domain}``, else the
    loopback address the server is bound to (local development and the emulator), else
    ``None``."""
    domain = tac.config.voice_public_domain
    if domain:
        return f"https://{domain}"
    runtime = tac.runtime
    return runtime.local_base if runtime is not None else None


def callback_urls(tac: TAC) -> CallOptions:
    """The callback URLs of an outbound call: one for each registered call-event hook,
    at :func:`callback_base`. A kind without a hook gets no URL (Twilio would call a
    route nobody listens to). Empty options when no base is known."""
    base = callback_base(tac)
    urls: dict[str, Any] = {}
    for kind in CALL_EVENT_KINDS:
        attribute, name, parameter = _WIRING[kind]
        if getattr(tac, attribute) is None:
            continue
        if base is None:
            _limited.warning(("no-base", kind), "%s is registered but outbound calls get no "
                             "callback URL for it: set TWILIO_VOICE_PUBLIC_DOMAIN", name)
            continue
        urls[parameter] = base + tac.config.call_event_path(kind)
    return CallOptions(**urls)


async def end_call(tac: TAC, call_sid: str) -> bool:
    """Hang ``call_sid`` up through the Calls API, and stop its conversation on this
    node if one is live (``on_conversation_ended`` runs as for any hang-up).

    Returns whether Twilio accepted the hang-up; a refusal (an unknown or already ended
    call) is logged, not raised, since hanging up an ended call is routine. Cancellation
    propagates (the conversation is stopped first)."""
    runtime = tac.runtime
    if runtime is not None:
        cell = runtime.call_cell(call_sid)
        if cell is not None:
            cell.hang_up("end_call")
    services = tac.services
    try:
        if services is not None:
            await CallsClient(services.http, tac.config.account_sid).hang_up(call_sid)
        else:
            async with TwilioServices.open(tac.config) as own:
                await CallsClient(own.http, tac.config.account_sid).hang_up(call_sid)
    except (ServiceError, ValueError) as exc:
        log.warning("call %s: hang-up refused (%s)", excerpt(call_sid, 64), exc)
        return False
    log.info("call %s: hung up by the app", excerpt(call_sid, 64))
    return True


def find_conversation(runtime: Runtime, key: str) -> ActorCell | None:
    """The live conversation whose id or CallSid is ``key``, or ``None``."""
    cell = runtime.supervisor.get(key) or runtime.call_cell(key)
    if cell is None:
        cell = next((c for c in runtime.supervisor
                     if c.session.conversation_id == key and not c.stopped.is_set()), None)
    return cell


async def push(runtime: Runtime, conversation: str, reply: Any) -> None:
    """Hand ``reply`` (a ``str`` or an async iterator of ``str``) to the live
    conversation ``conversation`` (its id or, for a call, its CallSid) as a
    :class:`~tac_actors.actors.Push`. Waits while its mailbox is full (from inside that
    conversation's own turn: :class:`RuntimeError` instead, since the turn holds the
    mailbox); returns once it is queued. :class:`LookupError` when no such conversation
    is live here."""
    if not (isinstance(reply, str) or hasattr(reply, "__aiter__")):
        raise TypeError("send_response takes a str or an async iterator of str, not "
                        f"{type(reply).__name__}")
    cell = find_conversation(runtime, conversation)
    if cell is None:
        raise LookupError(f"no live conversation {conversation!r} on this node")
    try:
        if _in_own_turn(cell):
            # the actor reads no message before this turn ends: waiting for room in
            # its mailbox would wait for ourselves
            try:
                cell.send_nowait(Push(reply))
            except trio.WouldBlock:
                raise RuntimeError(f"conversation {conversation!r}: its mailbox is full "
                                   "and this turn holds it; push fewer replies from one "
                                   "turn (or return the reply)") from None
            await trio.lowlevel.checkpoint()
        else:
            await cell.send(Push(reply))
    except trio.ClosedResourceError:
        raise LookupError(f"conversation {conversation!r} has ended") from None


def _in_own_turn(cell: ActorCell) -> bool:
    """Whether the calling code runs in the conversation's running turn."""
    running = cell.gate.running
    turn = CURRENT_TURN.get()
    return running is not None and turn != NO_TURN and running.id == turn
