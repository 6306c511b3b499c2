"""Fault knobs: make a product slow, down, flaky, rate-limited or answer HTML.

Set them in Python (``emulator.faults.down.add("memory")``) or over HTTP
(``POST /_emulator/faults`` with the JSON of :meth:`Faults.to_json`; ``{"reset": true}``
clears everything). Products are named as in host names: ``conversations``, ``memory``,
``knowledge``, ``studio``, ``api``.

Order of effects on one request: latency, then down (503), then rate limit (429 with
``Retry-After``), then the random error rate (500; ``sendErrorRate`` applies it to
``SEND_MESSAGE`` actions only), then ``html`` (a 200 HTML page, as a captive portal or a
misrouted proxy would send). ``sendLostReply`` is the fraction of ``SEND_MESSAGE``
actions that are recorded and then answered 500 (the answer lost, not the send).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["PRODUCTS", "Faults", "product_of"]

PRODUCTS = ("conversations", "memory", "knowledge", "studio", "api")

_PREFIXES = (
    ("/v2/ControlPlane/Configurations", "conversations"),
    ("/v2/Conversations", "conversations"),
    ("/v1/Stores", "memory"),
    ("/v2/ControlPlane/KnowledgeBases", "knowledge"),
    ("/v2/KnowledgeBases", "knowledge"),
    ("/v2/Flows", "studio"),
    ("/2010-04-01", "api"),
)


def product_of(path: str) -> str | None:
    """The product a path belongs to, or ``None`` (emulator routes, unknown paths)."""
    for prefix, product in _PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return product
    return None


@attrs.define
class Faults:
    """The current faults. Mutable on purpose; changes apply to the next request."""

    #: seconds added before answering, per product
    latency: dict[str, float] = attrs.field(factory=dict)
    #: products answering 503
    down: set[str] = attrs.field(factory=set)
    #: product -> Retry-After seconds of a 429 answer
    rate_limited: dict[str, float] = attrs.field(factory=dict)
    #: fraction (0..1) of product requests answering 500
    error_rate: float = 0.0
    #: products answering 200 with an HTML page instead of JSON
    html: set[str] = attrs.field(factory=set)
    #: fraction (0..1) of SEND_MESSAGE actions answering 500 before anything is sent
    send_error_rate: float = 0.0
    #: fraction (0..1) of SEND_MESSAGE actions sent, then answered 500
    send_lost_reply: float = 0.0
    rng: random.Random = attrs.field(factory=lambda: random.Random(0), repr=False, eq=False)

    def reset(self) -> None:
        self.latency.clear()
        self.down.clear()
        self.rate_limited.clear()
        self.html.clear()
        self.error_rate = self.send_error_rate = self.send_lost_reply = 0.0

    def roll_error(self) -> bool:
        """True when this request should fail by the random error rate."""
        return self.error_rate > 0 and self.rng.random() < self.error_rate

    def roll_send_error(self) -> bool:
        return self.send_error_rate > 0 and self.rng.random() < self.send_error_rate

    def roll_lost_reply(self) -> bool:
        return self.send_lost_reply > 0 and self.rng.random() < self.send_lost_reply

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": dict(self.latency),
            "down": sorted(self.down),
            "rateLimited": dict(self.rate_limited),
            "errorRate": self.error_rate,
            "html": sorted(self.html),
            "sendErrorRate": self.send_error_rate,
            "sendLostReply": self.send_lost_reply,
        }

    def update(self, data: Mapping[str, Any]) -> None:
        """Apply a JSON update; only the given keys change. Raises :class:`ValueError`
        on an unknown key, an unknown product or a bad value, changing nothing."""
        known = {"reset", "latency", "down", "rateLimited", "errorRate", "html",
                 "sendErrorRate", "sendLostReply"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        reset = bool(data.get("reset"))
        latency = _seconds_map(data.get("latency", {} if reset else self.latency), "latency")
        rate_limited = _seconds_map(
            data.get("rateLimited", {} if reset else self.rate_limited), "rateLimited")
        down = _products(data.get("down", set() if reset else self.down), "down")
        html = _products(data.get("html", set() if reset else self.html), "html")
        error_rate = _fraction(data.get("errorRate", 0.0 if reset else self.error_rate),
                               "errorRate")
        send_error = _fraction(data.get("sendErrorRate",
                                        0.0 if reset else self.send_error_rate),
                               "sendErrorRate")
        lost = _fraction(data.get("sendLostReply", 0.0 if reset else self.send_lost_reply),
                         "sendLostReply")
        self.latency, self.rate_limited = latency, rate_limited
        self.down, self.html, self.error_rate = down, html, error_rate
        self.send_error_rate, self.send_lost_reply = send_error, lost


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        0.0 <= value <= 1.0
    ):
        raise ValueError(f"{name} must be a number within 0..1")
    return float(value)

def _products(value: Any, name: str) -> set[str]:
    if not isinstance(value, list | set | tuple) or not all(v in PRODUCTS for v in value):
        raise ValueError(f"{name} must be a list of products among {PRODUCTS}")
    return set(value)


def _seconds_map(value: Any, name: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must map products to seconds")
    result: dict[str, float] = {}
    for product, seconds in value.items():
        if product not in PRODUCTS:
            raise ValueError(f"{name}: unknown product {product!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError(f"{name}[{product}] must be a non-negative number")
        result[product] = float(seconds)
    return result
