"""Configuration: :class:`TACConfig` and the engine settings it carries.

``TACConfig.from_env()`` reads the same ``TWILIO_*`` variables as the reference SDK. With
none set at all the server runs in ConversationRelay-only mode (voice only, empty memory);
``TWILIO_CONVERSATION_CONFIGURATION_ID`` switches on Orchestrator mode.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import os
from collections.abc import Callable, Mapping

import attrs

from tac_actors.protocol.call_options import CallOptions

__all__ = [
    "BusyPolicy",
    "ChannelPolicy",
    "HTTPConfig",
    "IntelligenceConfig",
    "MemoryConfig",
    "RestartLimit",
    "TACConfig",
]


class BusyPolicy(enum.StrEnum):
    """What a new message does while a turn is running.

    ``QUEUE``: it waits for the running turn, and turns run in arrival order.
    ``PREEMPT``: it cancels the running turn (closing its reply), then runs.
    """

    QUEUE = "queue"
    PREEMPT = "preempt"


@attrs.frozen(kw_only=True)
class ChannelPolicy:
    """How the actors of one kind of channel behave.

    ``turn_timeout`` bounds a whole turn (memory, callback, streaming); when it expires
    the caller gets ``timeout_text``. ``idle_timeout`` ends a conversation with no inbound
    message for that long. ``None`` disables a deadline. A cancelled turn (barge-in,
    preemption) that takes longer than ``stop_timeout`` to end (an app that shields its
    work) is logged; turns never overlap, so it holds its own conversation only.
    ``history_limit`` and ``history_chars`` bound ``session.history`` (the oldest entries
    go first).
    """

    busy_policy: BusyPolicy = BusyPolicy.QUEUE
    turn_timeout: float | None = 30.0
    idle_timeout: float | None = None
    mailbox_capacity: int = 32
    stop_timeout: float = 5.0
    #: voice: frames a caller's socket may send per second on average (a frame counts
    #: once more per KB), with bursts of ``frame_burst``; past it the reader waits and TCP
    #: pushes back. ``None``: no limit. Twilio sends a few frames a second.
    max_frames_per_second: float | None = 500.0
    frame_burst: int = 1000
    history_limit: int = 200
    history_chars: int = 256 * 1024
    fallback_text: str = "Sorry, something went wrong on my side. Could you say that again?"
    timeout_text: str = "Sorry, that is taking me too long. Could you say that again?"
    goodbye_text: str = (
        "Sorry, I have to end this call now because of a technical problem. Goodbye."
    )

    def __attrs_post_init__(self) -> None:
        if self.mailbox_capacity < 1:
            raise ValueError("mailbox_capacity must be at least 1")
        if self.stop_timeout <= 0 or self.history_limit < 1 or self.history_chars < 1:
            raise ValueError("stop_timeout, history_limit and history_chars must be positive")
        if (self.max_frames_per_second is not None and self.max_frames_per_second <= 0) \
                or self.frame_burst < 1:
            raise ValueError("max_frames_per_second and frame_burst must be positive")
        for name in ("turn_timeout", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")


VOICE_POLICY = ChannelPolicy(busy_policy=BusyPolicy.PREEMPT)
MESSAGING_POLICY = ChannelPolicy(busy_policy=BusyPolicy.QUEUE, idle_timeout=900.0)


@attrs.frozen(kw_only=True)
class RestartLimit:
    """Supervisor restart intensity: at most ``max_restarts`` in ``window`` seconds."""

    max_restarts: int = 3
    window: float = 10.0


@attrs.frozen(kw_only=True)
class MemoryConfig:
    """What to ask Conversation Memory for (names follow the reference SDK)."""

    profile_trait_groups: tuple[str, ...] = ()
    observations_limit: int = 20
    summaries_limit: int = 5
    communications_limit: int = 0
    relevance_threshold: float = 0.0
    phone_trait_group: str = "Contact"
    phone_trait_field: str = "phone"
    #: per-turn budget in seconds: a turn waits at most this long for memory
    budget: float = 1.5

    def __attrs_post_init__(self) -> None:
        for name in ("observations_limit", "summaries_limit", "communications_limit"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"memory {name} must be within 0..100, got {value}")


@attrs.frozen(kw_only=True)
class IntelligenceConfig:
    """Conversation Intelligence (the reference's ``ConversationIntelligenceConfig``).

    Operator-result webhooks for another ``configuration_id`` are answered and skipped.
    Results of the ``summary_operator_sid`` operator become conversation summaries in
    Memory, on the profile of each CUSTOMER participant; every result of the
    configuration reaches the app's ``on_intelligence_result`` hook. ``webhook_path`` is
    the signed route the results are POSTed to (the reference's
    ``TACServerConfig.cintel_webhook_path``)."""

    configuration_id: str
    summary_operator_sid: str | None = None
    webhook_path: str = "/ci-webhook"

    def __attrs_post_init__(self) -> None:
        if not self.configuration_id.strip():
            raise ValueError("intelligence configuration_id must not be blank")
        if not self.webhook_path.startswith("/"):
            raise ValueError(f"intelligence webhook_path must start with '/', got "
                             f"{self.webhook_path!r}")
        if self.summary_operator_sid is not None and not self.summary_operator_sid.strip():
            object.__setattr__(self, "summary_operator_sid", None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntelligenceConfig | None:
        """``CONVERSATION_INTELLIGENCE_CONFIGURATION_ID`` (unset: ``None``, no route),
        ``CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID`` (blank: no summaries) and
        ``CONVERSATION_INTELLIGENCE_WEBHOOK_PATH`` (default ``/ci-webhook``)."""
        env = os.environ if environ is None else environ
        configuration = env.get("CONVERSATION_INTELLIGENCE_CONFIGURATION_ID", "").strip()
        if not configuration:
            return None
        return cls(configuration_id=configuration,
                   summary_operator_sid=env.get(
                       "CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID", "").strip() or None,
                   webhook_path=env.get("CONVERSATION_INTELLIGENCE_WEBHOOK_PATH", "").strip()
                   or "/ci-webhook")


def _addresses(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(value, str):  # "10.0.0.1, 10.0.0.2", as in the environment variable
        value = value.split(",")
    return tuple(part.strip() for part in value if part.strip())


def _check_forwarded(_inst: object, _attribute: object, value: tuple[str, ...]) -> None:
    for entry in value:
        if entry != "*":
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"forwarded_allow_ips: {entry!r} is not an IP address, a "
                                 "network (10.0.0.0/8) or '*'") from None


@attrs.frozen(kw_only=True)
class HTTPConfig:
    """Limits and trust of the HTTP side (TwiML, callbacks, webhooks, health).

    ``forwarded_allow_ips``: peers (addresses or networks; ``"*"`` for any) whose
    ``X-Forwarded-Proto``/``X-Forwarded-Host`` are believed when the URL Twilio signed is
    rebuilt. Empty (the default): never believed; set ``voice_public_domain`` instead, or
    list the proxy in front of the server. ``body_timeout``: seconds a request body may
    take to arrive (then 408). ``max_body_bytes``: larger bodies get 413. After a 408 or a
    413 the connection is closed. ``read_timeout``: seconds without a byte from the
    client, while a request is in progress, before its connection is dropped (a
    backstop: slow bodies meet ``body_timeout`` first); applied with the fast engine
    only, because with ``engine="hypercorn"`` the same connections carry voice calls
    whose callers may stay quiet longer. ``keep_alive_timeout``: seconds an idle
    kept-alive connection stays open.
    """

    forwarded_allow_ips: tuple[str, ...] = attrs.field(
        default=(), converter=_addresses, validator=_check_forwarded)
    body_timeout: float = 10.0
    max_body_bytes: int = 1 << 20
    read_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    def __attrs_post_init__(self) -> None:
        for name in ("body_timeout", "max_body_bytes", "read_timeout", "keep_alive_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"http {name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HTTPConfig:
        """``TAC_FORWARDED_ALLOW_IPS`` (comma-separated), ``TAC_HTTP_BODY_TIMEOUT``,
        ``TAC_HTTP_MAX_BODY_BYTES``, ``TAC_HTTP_READ_TIMEOUT``,
        ``TAC_HTTP_KEEP_ALIVE_TIMEOUT``; unset or empty ones keep the defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        allow = env.get("TAC_FORWARDED_ALLOW_IPS", "").strip()
        if allow:
            values["forwarded_allow_ips"] = allow
        for name, kind in (("body_timeout", float), ("max_body_bytes", int),
                           ("read_timeout", float), ("keep_alive_timeout", float)):
            variable = f"TAC_HTTP_{name.upper()}"
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{variable} must be a {kind.__name__}, got {raw!r}"
                                     ) from None
        return cls(**values)  # type: ignore[arg-type]


def _flag(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _secret() -> str | None:
    return attrs.field(default=None, repr=lambda v: "***" if v else "None")  # type: ignore[no-any-return]


@attrs.frozen(kw_only=True)
class TACConfig:
    """Everything a :class:`~tac_actors.TAC` needs. Secrets never appear in ``repr``."""

    account_sid: str | None = None
    auth_token: str | None = _secret()
    api_key: str | None = None
    api_secret: str | None = _secret()
    phone_number: str | None = None
    #: every number this instance answers and calls from (``TWILIO_PHONE_NUMBERS``,
    #: comma-separated); ``phone_number`` is always among them, first, and is the
    #: default sender. A number given only here makes it ``phone_number``.
    phone_numbers: tuple[str, ...] = attrs.field(default=(), converter=_addresses)
    conversation_configuration_id: str | None = None
    rcs_sender_id: str | None = None
    whatsapp_number: str | None = None
    knowledge_base_id: str | None = None
    studio_handoff_flow_sid: str | None = None
    region: str | None = None
    log_level: str = "INFO"

    voice_public_domain: str | None = None
    voice_websocket_path: str = "/ws"
    voice_action_path: str = "/conversation-relay-callback"
    voice_twiml_path: str = "/twiml"
    webhook_path: str = "/webhook"
    #: base path of the call-event routes: ``{base}/status``, ``{base}/amd``,
    #: ``{base}/recording`` (``TWILIO_VOICE_CALL_EVENT_PATH``)
    voice_call_event_path: str = "/twilio/call-events"
    #: Calls API options of every outbound call (machine detection, recording, ring
    #: timeout...); a call's own options are layered over them (``TAC_CALL_*``)
    call_options: CallOptions = attrs.field(factory=CallOptions)

    #: one base URL for every Twilio product (how the local emulator is reached)
    services_base_url: str | None = None
    #: per-product base URL overrides, e.g. ``{"memory": "http://127.0.0.1:9000"}``
    service_urls: Mapping[str, str] = attrs.field(factory=dict)

    memory: MemoryConfig = MemoryConfig()
    #: Conversation Intelligence operator results (``None``: no route)
    intelligence: IntelligenceConfig | None = None
    voice_policy: ChannelPolicy = VOICE_POLICY
    messaging_policy: ChannelPolicy = MESSAGING_POLICY
    restart_limit: RestartLimit = RestartLimit()
    #: seconds running turns get to finish at shutdown before they are cancelled
    shutdown_grace: float = 5.0
    #: largest inbound WebSocket frame accepted, in bytes
    max_frame_bytes: int = 64 * 1024
    #: check X-Twilio-Signature when an auth token is set
    validate_signatures: bool = True
    #: HTTP limits and trusted proxies
    http: HTTPConfig = HTTPConfig()
    #: run async callbacks and tools on asyncio (``TAC_ASYNCIO=1``): see
    #: :mod:`tac_actors.usercode`
    asyncio: bool = False
    #: most sync callbacks and tools running at once in worker threads
    #: (``TAC_WORKER_THREADS``)
    worker_threads: int = 40
    #: the shared conversation store for text conversations across processes and hosts
    #: (``TAC_REDIS_URL``, ``redis://host:port/db``); ``None``: in this process only
    redis_url: str | None = None
    #: seconds a process owns a text conversation without renewing its lease
    #: (``TAC_LEASE_TTL``): how long a dead process's conversations wait for a takeover
    lease_ttl: float = 10.0

    def __attrs_post_init__(self) -> None:
        if self.worker_threads < 1:
            raise ValueError("worker_threads must be at least 1")
        if not self.voice_call_event_path.startswith("/"):
            raise ValueError("voice_call_event_path must start with '/', got "
                             f"{self.voice_call_event_path!r}")
        numbers = self.phone_numbers
        if self.phone_number and self.phone_number not in numbers:
            numbers = (self.phone_number, *numbers)
        elif self.phone_number:
            numbers = (self.phone_number,
                       *(number for number in numbers if number != self.phone_number))
        object.__setattr__(self, "phone_numbers", numbers)
        if self.phone_number is None and numbers:
            object.__setattr__(self, "phone_number", numbers[0])
        if not 0 < self.lease_ttl < math.inf:
            raise ValueError("lease_ttl must be a positive number of seconds")
        if self.voice_public_domain is not None:
            domain = self.voice_public_domain.split("://", 1)[-1].rstrip("/")
            object.__setattr__(self, "voice_public_domain", domain or None)

    @property
    def orchestrator_enabled(self) -> bool:
        """True when a Conversation Orchestrator configuration id is set."""
        return bool(self.conversation_configuration_id)

    def call_event_path(self, kind: str) -> str:
        """Where the call events of ``kind`` (``status``, ``amd``, ``recording``) are
        served: the routes and the callback URLs of outbound calls both use this."""
        return f"{self.voice_call_event_path.rstrip('/')}/{kind}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> TACConfig:
        """Build a config from ``TWILIO_*`` variables (the reference SDK's names).

        Unset or empty variables keep the defaults; ``overrides`` win over the environment.
        A malformed number raises :class:`ValueError` naming the variable.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, kind: type[int] | type[float], default: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be a {kind.__name__}, got {raw!r}") from None

        groups = get("TWILIO_MEMORY_PROFILE_TRAIT_GROUPS")
        memory = MemoryConfig(
            profile_trait_groups=tuple(g.strip() for g in groups.split(",") if g.strip())
            if groups
            else (),
            observations_limit=int(number("TWILIO_MEMORY_OBSERVATIONS_LIMIT", int, 20)),
            summaries_limit=int(number("TWILIO_MEMORY_SUMMARIES_LIMIT", int, 5)),
            communications_limit=int(number("TWILIO_MEMORY_COMMUNICATIONS_LIMIT", int, 0)),
            relevance_threshold=number("TWILIO_MEMORY_RELEVANCE_THRESHOLD", float, 0.0),
            phone_trait_group=get("TWILIO_MEMORY_PHONE_TRAIT_GROUP") or "Contact",
            phone_trait_field=get("TWILIO_MEMORY_PHONE_TRAIT_FIELD") or "phone",
        )
        values: dict[str, object] = {
            "account_sid": get("TWILIO_ACCOUNT_SID"),
            "auth_token": get("TWILIO_AUTH_TOKEN"),
            "api_key": get("TWILIO_API_KEY"),
            "api_secret": get("TWILIO_API_SECRET"),
            "phone_number": get("TWILIO_PHONE_NUMBER"),
            "phone_numbers": get("TWILIO_PHONE_NUMBERS") or (),
            "conversation_configuration_id": get("TWILIO_CONVERSATION_CONFIGURATION_ID"),
            "rcs_sender_id": get("TWILIO_RCS_SENDER_ID"),
            "whatsapp_number": get("TWILIO_WHATSAPP_NUMBER"),
            "knowledge_base_id": get("TWILIO_KNOWLEDGE_BASE_ID"),
            "studio_handoff_flow_sid": get("TWILIO_STUDIO_HANDOFF_FLOW_SID"),
            "region": get("TWILIO_REGION"),
            "log_level": get("TWILIO_LOG_LEVEL") or "INFO",
            "voice_public_domain": get("TWILIO_VOICE_PUBLIC_DOMAIN"),
            "voice_websocket_path": get("TWILIO_VOICE_WEBSOCKET_PATH") or "/ws",
            "voice_action_path": get("TWILIO_VOICE_ACTION_PATH")
            or "/conversation-relay-callback",
            "voice_call_event_path": get("TWILIO_VOICE_CALL_EVENT_PATH")
            or "/twilio/call-events",
            "call_options": _call_options_from_env(get),
            "services_base_url": get("TAC_SERVICES_URL"),
            "asyncio": _flag("TAC_ASYNCIO", get("TAC_ASYNCIO")),
            "worker_threads": int(number("TAC_WORKER_THREADS", int, 40)),
            "redis_url": get("TAC_REDIS_URL"),
            "lease_ttl": number("TAC_LEASE_TTL", float, 10.0),
            "memory": memory,
            "intelligence": IntelligenceConfig.from_env(env),
            "http": HTTPConfig.from_env(env),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _call_options_from_env(get: Callable[[str], str | None]) -> CallOptions:
    """``TAC_CALL_MACHINE_DETECTION`` (``Enable``/``DetectMessageEnd``),
    ``TAC_CALL_RECORD`` (a flag), ``TAC_CALL_TIMEOUT`` (seconds to ring),
    ``TAC_CALL_STATUS_EVENTS`` (comma-separated: initiated, ringing, answered, completed)."""
    timeout = get("TAC_CALL_TIMEOUT")
    try:
        seconds = int(timeout) if timeout else None
    except ValueError:
        raise ValueError(f"TAC_CALL_TIMEOUT must be an int, got {timeout!r}") from None
    record = get("TAC_CALL_RECORD")
    return CallOptions(
        machine_detection=get("TAC_CALL_MACHINE_DETECTION"),  # type: ignore[arg-type]
        record=_flag("TAC_CALL_RECORD", record) if record else None,
        timeout=seconds,
        status_callback_event=get("TAC_CALL_STATUS_EVENTS"),
    )
