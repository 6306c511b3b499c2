"""``tac-actors top URL``: a live view of a running server, refreshed every few seconds.

It reads ``GET /metrics`` (no token) and ``GET /status`` (``--auth-token`` when the
server has one) and prints: live conversations by channel, turns per second, turn
latency and time to first token (p50/p99 over the last interval, from the histogram
buckets' growth), errors, barge-ins, restarts, mailbox depth, and the longest-running
live conversations. Pure functions build the view from two scrapes
(:func:`render`), so it is tested without a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape", "quantile", "render", "run_top", "scrape"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@attrs.frozen
class Scrape:
    """One reading of a server: its metric samples, its status document, and when."""

    at: float
    samples: Samples
    status: Mapping[str, Any] | None


def parse(text: str) -> Samples:
    """Prometheus text → ``{(sample name, sorted labels): value}``."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def scrape(client: httpx.AsyncClient, url: str, auth_token: str | None) -> Scrape:
    """Read ``/metrics`` and ``/status`` once (``status`` is ``None`` when refused)."""
    base = url.rstrip("/")
    metrics = await client.get(base + "/metrics")
    metrics.raise_for_status()
    headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
    answer = await client.get(base + "/status", headers=headers)
    status = answer.json() if answer.status_code == 200 else None
    return Scrape(trio.current_time(), parse(metrics.text), status)


def _sum(samples: Samples, name: str, **labels: str) -> float:
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and all((k, v) in sample_labels for k, v in labels.items()))


def _by(samples: Samples, name: str, label: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            key = dict(labels).get(label, "")
            found[key] = found.get(key, 0.0) + value
    return found


def _buckets(samples: Samples, name: str) -> dict[float, float]:
    """Cumulative bucket counts of a histogram, summed over its labels."""
    found: dict[float, float] = {}
    for (sample, labels), value in samples.items():
        if sample == name + "_bucket":
            le = float(dict(labels)["le"])
            found[le] = found.get(le, 0.0) + value
    return found


def quantile(q: float, before: Mapping[float, float], after: Mapping[float, float]
             ) -> float | None:
    """The ``q`` quantile (seconds) of what was observed between two readings of a
    histogram's cumulative buckets, interpolated linearly inside the bucket, as
    Prometheus' ``histogram_quantile`` does; ``None`` when nothing was observed."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def render(url: str, before: Scrape | None, now: Scrape, *, rows: int = 15) -> str:
    """The view, as text (see the module docstring)."""
    s = now.samples
    prev = before.samples if before is not None else {}
    span = (now.at - before.at) if before is not None else 0.0
    lines = [f"tac-actors top  {url}  {time.strftime('%H:%M:%S')}"]
    live = _by(s, "tac_conversations_live", "channel")
    started = _sum(s, "tac_conversations_started_total")
    lines.append("live conversations: " + (", ".join(
        f"{channel} {count:g}" for channel, count in sorted(live.items()) if count) or "none")
        + f"   (total {sum(live.values()):g}, started {started:g})")
    turns = _sum(s, "tac_turns_total")
    rate = (turns - _sum(prev, "tac_turns_total")) / span if span > 0 else None
    lines.append(f"turns: {turns:g}" + (f"   {rate:.1f}/s" if rate is not None else ""))
    for title, name in (("turn latency", "tac_turn_seconds"),
                        ("first token ", "tac_first_token_seconds"),
                        ("barge-in stop", "tac_interrupt_stop_seconds")):
        after = _buckets(s, name)
        earlier = _buckets(prev, name)
        lines.append(f"{title}: p50 {_ms(quantile(0.5, earlier, after))}   "
                     f"p99 {_ms(quantile(0.99, earlier, after))}"
                     + ("   (since the last refresh)" if before is not None else
                        "   (since start)"))
    errors = _by(s, "tac_errors_total", "phase")
    lines.append("errors: " + (", ".join(f"{phase} {count:g}" for phase, count
                                         in sorted(errors.items())) or "none")
                 + f"   barge-ins {_sum(s, 'tac_barge_ins_total'):g}"
                 + f"   restarts {_sum(s, 'tac_actor_restarts_total'):g}"
                 + f"   mailbox depth {_sum(s, 'tac_mailbox_depth'):g}")
    hooks = _by(s, "tac_webhooks_total", "outcome")
    if hooks:
        lines.append("webhooks: " + ", ".join(f"{k} {v:g}" for k, v in sorted(hooks.items())))
    calls = _by(s, "tac_service_calls_total", "status")
    if calls:
        lines.append("service calls: " + ", ".join(f"{k} {v:g}" for k, v in
                                                   sorted(calls.items())))
    status = now.status
    if status is None:
        lines.append("(conversation list: /status refused; pass --auth-token)")
    else:
        conversations = sorted(status.get("conversations", []),
                               key=lambda c: -float(c.get("age_s", 0)))
        lines.append("")
        lines.append(f"{'conversation':<38} {'channel':<8} {'age':>8} {'turns':>6} "
                     f"{'errors':>6} {'mailbox':>7}")
        for entry in conversations[:rows]:
            lines.append(f"{str(entry['conversation_id'])[:38]:<38} {entry['channel']:<8} "
                         f"{entry['age_s']:>7.0f}s {entry['turns']:>6} {entry['errors']:>6} "
                         f"{entry['mailbox']:>7}")
        if len(conversations) > rows:
            lines.append(f"... and {len(conversations) - rows} more")
    return "\n".join(lines)


def run_top(url: str, *, auth_token: str | None = None, interval: float = 2.0,
            once: bool = False) -> int:
    """Refresh the view every ``interval`` seconds until Ctrl-C (or once). Exit status
    1 when the server cannot be read."""
    try:
        return trio.run(_top, url, auth_token, interval, once)
    except KeyboardInterrupt:
        return 0


async def _top(url: str, auth_token: str | None, interval: float, once: bool) -> int:
    before: Scrape | None = None
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() and not once else ""
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            try:
                now = await scrape(client, url, auth_token)
            except httpx.HTTPError as exc:
                print(f"tac-actors: cannot read {url}/metrics: {exc}", file=sys.stderr)
                return 1
            print(clear + render(url, before, now), flush=True)
            if once:
                return 0
            before = now
            await trio.sleep(interval)
