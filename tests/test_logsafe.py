"""excerpt() and LogLimiter: peer values cannot forge or flood log lines (review D11, D12)."""

from __future__ import annotations

import logging

import pytest

from tac_actors._logsafe import LogLimiter, excerpt

FORGED = "CA1\n2026-01-01 00:00:00,000 CRITICAL tac_actors.server: FORGED"


def test_excerpt_escapes_everything_that_breaks_a_line() -> None:
    assert excerpt(FORGED) == "CA1\\n2026-01-01 00:00:00,000 CRITICAL tac_actors.server: FORGED"
    for char in "\r\x00\x1b\x7f\x85\u2028\u2029\u202e\u2066\ud800":
        escaped = excerpt(f"a{char}b")
        assert char not in escaped and escaped.startswith("a\\")
    assert excerpt("a\\nb") == "a\\\\nb"  # a literal backslash-n stays distinguishable
    assert excerpt("né 😀 日本") == "né 😀 日本"  # printable text is kept
    excerpt("\udfff").encode("utf-8")  # always encodable


def test_excerpt_bounds_the_length() -> None:
    assert excerpt("x" * 10_000, 50) == "x" * 50 + "…(+9950 chars)"
    assert len(excerpt("\n" * 10_000, 50)) <= 6 * 50 + 20
    assert excerpt(b"ok\xff\n" + b"y" * 100, 6) == "ok\\xff\\nyy…(+98 bytes)"
    assert excerpt(None) == "None" and excerpt(42) == "42"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError

    assert excerpt(Broken()) == "<unprintable Broken>"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_limiter_logs_once_per_key_then_summarises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    limiter = LogLimiter(logging.getLogger("test.limiter"), interval=60, clock=clock)
    assert limiter.warning("conv-1", "bad frame %s", 1)
    for n in range(2, 6):
        assert not limiter.warning("conv-1", "bad frame %s", n)
    assert limiter.warning("conv-2", "bad frame %s", "other")  # keys are independent
    assert limiter.statistics().suppressed == 4
    clock.now = 61
    assert limiter.warning("conv-1", "bad frame %s", 6)
    assert lines(caplog) == [
        "bad frame 1", "bad frame other",
        "bad frame 6 (and 4 more like it in the last 61 s, not logged)"]
    limiter.warning("conv-1", "bad frame %s", 7)
    limiter.flush()
    assert lines(caplog)[-1] == "conv-1: 1 more line(s) like the last one were not logged"
    assert limiter.statistics().suppressed == 0


def test_limiter_bounds_lines_and_keys_when_every_message_has_a_new_key(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    limiter = LogLimiter(logging.getLogger("test.limiter"), interval=10, max_keys=5,
                         max_lines=20, clock=clock)
    for n in range(1000):
        limiter.warning(f"source-{n}", "bad input from %s", n)
    assert len(caplog.records) <= 20 + 20  # first lines, plus summaries of evicted keys
    assert limiter.statistics().keys == 5
    clock.now = 10
    limiter.warning("late", "next window")
    assert "980 log line(s) not written: more than 20 in 10 s" in lines(caplog)
    assert lines(caplog)[-1] == "next window"
