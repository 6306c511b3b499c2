"""``GET /metrics`` (Prometheus text format) and ``GET /status`` (JSON, token-protected).

Everything is read at scrape time by :class:`TACCollector`: the ``statistics()`` of the
supervisor, of every live cell and its mailbox, of the front door, the tool registries,
memory and the service client, plus the one-off observations the runtime kept in its
:class:`~tac_actors.metrics.RuntimeMetrics`. A scrape walks the live conversations once
(about a microsecond each); nothing on the turn path touches prometheus.

Every name starts with ``tac_``; the labels are ``channel`` (voice, sms, whatsapp, rcs,
chat), ``outcome``, ``phase``, ``product`` and ``status``: no conversation or call ids,
so the number of series stays bounded whatever the traffic. The README lists them.

``/status`` lists up to :data:`STATUS_LIMIT` live conversations (ids, channel, age,
turns); it needs ``Authorization: Bearer <TWILIO_AUTH_TOKEN>`` when the server has an auth
token (it is open, like every route, when it has none).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from quart import Blueprint, Response, request

from tac_actors.metrics import Histogram
from tac_actors.server.worker_metrics import (
    LOCAL_HEADER,
    gather,
    merge_metrics,
    merge_status,
    worker_id,
)
from tac_actors.session import Channel
from tac_actors.tools.registry import live_registries

if TYPE_CHECKING:
    from tac_actors.server.state import ServerState as _State

__all__ = ["STATUS_LIMIT", "TACCollector", "add_routes", "metrics_registry"]

#: the classic text format (what generate_latest writes for our names), which every
#: Prometheus version reads; newer clients announce 1.0.0 by default
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: at most this many conversations are listed by ``/status``
STATUS_LIMIT = 200
CHANNELS = tuple(channel.value for channel in Channel)


def _histogram(name: str, doc: str, label: str,
               histograms: Iterable[tuple[str, Histogram]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, histogram in sorted(histograms):
        family.add_metric([value], list(histogram.cumulative()), histogram.sum)
    return family


class TACCollector(Collector):
    """Reads one mounted TAC's state at each scrape (see the module docstring)."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        yield from self._door()
        runtime = state.runtime
        if runtime is None:
            return
        stats = runtime.supervisor.statistics()
        metrics = runtime.metrics
        live = dict.fromkeys(CHANNELS, 0)
        interrupts = dict(metrics.ended_interrupts)
        depth = waiting = 0
        for cell in runtime.supervisor:
            channel = cell.session.channel.value
            live[channel] = live.get(channel, 0) + 1
            if cell.stats.interrupts:
                interrupts[channel] = interrupts.get(channel, 0) + cell.stats.interrupts
            mailbox = cell.mailbox.statistics()
            depth += mailbox.queued + mailbox.urgent_queued
            waiting += mailbox.waiting_senders

        gauge = GaugeMetricFamily("tac_conversations_live", "Live conversations.",
                                  labels=["channel"])
        for channel, count in sorted(live.items()):
            gauge.add_metric([channel], count)
        yield gauge
        yield CounterMetricFamily("tac_conversations_started", "Conversations started.",
                                  value=stats.started)
        ended = CounterMetricFamily("tac_conversations_ended", "Conversations ended.",
                                    labels=["channel"])
        for channel, count in sorted(metrics.ended.items()):
            ended.add_metric([channel], count)
        yield ended
        turns = CounterMetricFamily("tac_turns", "Turns run, by how they ended (ok, "
                                    "interrupt, preempt, timeout, error, stop).",
                                    labels=["channel", "outcome"])
        for (channel, outcome), count in sorted(metrics.turns.items()):
            turns.add_metric([channel, outcome], count)
        yield turns
        yield _histogram("tac_turn_seconds", "Turn latency: from the turn's start to its "
                         "last frame handed to the channel.", "channel",
                         metrics.turn_seconds.items())
        yield _histogram("tac_first_token_seconds", "Time from a turn's start to its first "
                         "token handed to the channel.", "channel",
                         metrics.first_token_seconds.items())
        barge = CounterMetricFamily("tac_barge_ins", "Interruptions (barge-ins) received.",
                                    labels=["channel"])
        for channel, count in sorted(interrupts.items()):
            barge.add_metric([channel], count)
        yield barge
        yield _histogram("tac_interrupt_stop_seconds", "From a turn being stopped (barge-in "
                         "or preemption) to the turn's task having finished.", "channel",
                         metrics.interrupt_stop_seconds.items())
        errors = CounterMetricFamily("tac_errors", "Errors handed to on_error, by phase.",
                                     labels=["phase"])
        for phase, count in sorted(metrics.errors.items()):
            errors.add_metric([phase], count)
        yield errors
        yield CounterMetricFamily("tac_actor_restarts", "Actor incarnations restarted after "
                                  "a crash.", value=stats.restarts)
        yield CounterMetricFamily("tac_actor_gave_up", "Conversations ended for crashing too "
                                  "often.", value=stats.gave_up)
        yield GaugeMetricFamily("tac_mailbox_depth", "Messages queued in all mailboxes.",
                                value=depth)
        yield GaugeMetricFamily("tac_mailbox_waiting_senders", "Senders waiting on a full "
                                "mailbox, over all conversations.", value=waiting)
        hooks = CounterMetricFamily("tac_webhooks", "Orchestrator webhooks, by outcome.",
                                    labels=["outcome"])
        for outcome, count in sorted(metrics.webhooks.items()):
            hooks.add_metric([outcome], count)
        yield hooks
        yield from self._services()
        yield from self._tools()
        yield from self._memory()

    def _door(self) -> Iterator[Metric]:
        door = self.state.door
        if door is None:
            return
        stats = door.statistics()
        yield GaugeMetricFamily("tac_frontdoor_connections", "Open connections on the "
                                "public port.", value=stats.connections)
        yield GaugeMetricFamily("tac_frontdoor_calls", "Voice WebSockets served by the "
                                "fast engine right now.", value=stats.calls)
        yield CounterMetricFamily("tac_frontdoor_refused", "Connections refused (over the "
                                  "connection cap).", value=stats.refused)
        yield CounterMetricFamily("tac_frontdoor_failed", "Connections that failed before "
                                  "or while being routed.", value=stats.failed)
        yield CounterMetricFamily("tac_frontdoor_keepalive_closed", "Voice sockets closed "
                                  "for not answering a ping.", value=stats.keepalive_closed)

    def _services(self) -> Iterator[Metric]:
        runtime = self.state.runtime
        services = runtime.services if runtime is not None else None
        if services is None:
            return
        stats = services.http.stats
        calls = CounterMetricFamily("tac_service_calls", "Twilio service requests, by "
                                    "product and final status.", labels=["product", "status"])
        for (product, status), count in sorted(stats.calls.items()):
            calls.add_metric([product, status], count)
        yield calls
        yield _histogram("tac_service_call_seconds", "Twilio service request latency, "
                         "retries included.", "product", stats.seconds.items())
        retries = CounterMetricFamily("tac_service_retries", "Twilio service requests "
                                      "retried.", labels=["product"])
        for product, count in sorted(stats.retries.items()):
            retries.add_metric([product], count)
        yield retries

    def _tools(self) -> Iterator[Metric]:
        registries = [registry.statistics() for registry in live_registries()]
        if not registries:
            return
        yield CounterMetricFamily("tac_tool_calls", "Tool calls run.",
                                  value=sum(s.calls for s in registries))
        yield CounterMetricFamily("tac_tool_errors", "Tool calls that failed.",
                                  value=sum(s.errors for s in registries))
        yield CounterMetricFamily("tac_tool_timeouts", "Tool calls that timed out.",
                                  value=sum(s.timeouts for s in registries))
        yield GaugeMetricFamily("tac_tool_calls_running", "Tool calls in progress.",
                                value=sum(s.running for s in registries))

    def _memory(self) -> Iterator[Metric]:
        provider = self.state.tac.memory_provider
        statistics = getattr(provider, "statistics", None)
        if statistics is None:
            return
        stats = statistics()
        answers = CounterMetricFamily("tac_memory_answers", "Memory retrievals, by where "
                                      "the answer came from.", labels=["source"])
        answers.add_metric(["memory"], stats.memory_answers)
        answers.add_metric(["orchestrator"], stats.orchestrator_answers)
        answers.add_metric(["empty"], stats.empty_answers)
        yield answers
        yield CounterMetricFamily("tac_memory_budget_expired", "Memory retrievals cut by "
                                  "the per-turn budget.", value=stats.budget_expired)
        yield CounterMetricFamily("tac_memory_cache_hits", "Memory retrievals answered from "
                                  "the cache.", value=stats.cache_hits)


def metrics_registry(state: _State) -> CollectorRegistry:
    """A registry of its own per mounted TAC (never prometheus' global one, so two apps
    in one process, or the tests, do not collide), with process and GC figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TACCollector(state))
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def _authorized(state: _State) -> bool:
    token = state.tac.config.auth_token
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


def status(state: _State) -> dict[str, Any]:
    """The ``/status`` document (see the module docstring)."""
    runtime = state.runtime
    if runtime is None:
        return {"status": "starting", "conversations": [], "live": 0}
    stats = runtime.supervisor.statistics()
    now = time.time()
    listed = []
    for count, cell in enumerate(runtime.supervisor):
        if count >= STATUS_LIMIT:
            break
        session = cell.session
        listed.append({
            "conversation_id": session.conversation_id, "call_sid": session.call_sid,
            "channel": session.channel.value,
            "age_s": round(now - session.started_at.timestamp(), 1),
            "turns": cell.stats.turns, "interrupts": cell.stats.interrupts,
            "errors": cell.stats.errors, "mailbox": len(cell.mailbox),
        })
    document: dict[str, Any] = {
        "status": "ok", "live": stats.live, "started": stats.started, "ended": stats.ended,
        "restarts": stats.restarts, "conversations": listed, "listed_limit": STATUS_LIMIT}
    config = state.tac.config
    if config.services_base_url and config.conversation_configuration_id:
        # a server pointed at an emulator (tac-actors dev): what `tac-actors text` needs
        document["dev"] = {"services_url": config.services_base_url,
                           "configuration_id": config.conversation_configuration_id,
                           "agent_address": config.phone_number or ""}
    return document


def add_routes(bp: Blueprint, state: _State) -> None:
    """``GET /metrics`` and ``GET /status`` on ``bp``."""
    registry = metrics_registry(state)

    @bp.route("/metrics", methods=["GET"])
    async def metrics() -> Response:
        body = generate_latest(registry)
        worker = worker_id()
        if worker is not None and not request.headers.get(LOCAL_HEADER):
            # a worker of --workers N answers for all of them (see worker_metrics)
            others = await gather("/metrics", {})
            body = merge_metrics({worker: body.decode(), **others})
        return Response(body, mimetype=None, content_type=CONTENT_TYPE)

    @bp.route("/status", methods=["GET"])
    async def status_route() -> Response:
        if not _authorized(state):
            return Response('{"error": "send Authorization: Bearer <auth token>"}',
                            status=401, mimetype="application/json",
                            headers={"WWW-Authenticate": "Bearer"})
        document = status(state)
        worker = worker_id()
        if worker is not None and not request.headers.get(LOCAL_HEADER):
            others = await gather("/status", {"Authorization":
                                              request.headers.get("Authorization", "")})
            document = merge_status({worker: json.dumps(document), **others})
        return Response(json.dumps(document), mimetype="application/json")
