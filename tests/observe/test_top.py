"""``tac-actors top``: the view built from two scrapes (no terminal, no server)."""

from __future__ import annotations

from tac_actors.top import Scrape, parse, quantile, render

BEFORE = """
tac_conversations_live{channel="voice"} 1
tac_turns_total{channel="voice",outcome="ok"} 10
tac_turn_seconds_bucket{channel="voice",le="0.01"} 10
tac_turn_seconds_bucket{channel="voice",le="0.1"} 10
tac_turn_seconds_bucket{channel="voice",le="+Inf"} 10
tac_turn_seconds_count{channel="voice"} 10
tac_turn_seconds_sum{channel="voice"} 0.05
"""
AFTER = """
tac_conversations_live{channel="voice"} 2
tac_conversations_live{channel="sms"} 1
tac_turns_total{channel="voice",outcome="ok"} 30
tac_turn_seconds_bucket{channel="voice",le="0.01"} 10
tac_turn_seconds_bucket{channel="voice",le="0.1"} 30
tac_turn_seconds_bucket{channel="voice",le="+Inf"} 30
tac_turn_seconds_count{channel="voice"} 30
tac_turn_seconds_sum{channel="voice"} 1.05
tac_errors_total{phase="turn"} 2
"""


def test_quantile_interpolates_inside_the_bucket() -> None:
    assert quantile(0.5, {0.1: 0, float("inf"): 0}, {0.1: 10, float("inf"): 10}) == 0.05
    assert quantile(0.5, {}, {0.1: 0, float("inf"): 0}) is None


def test_render_shows_rates_latency_errors_and_conversations() -> None:
    before = Scrape(100.0, parse(BEFORE), None)
    status = {"conversations": [
        {"conversation_id": "CAold", "channel": "voice", "age_s": 90.0, "turns": 4,
         "errors": 0, "mailbox": 0},
        {"conversation_id": "CAnew", "channel": "voice", "age_s": 3.0, "turns": 1,
         "errors": 1, "mailbox": 2}]}
    now = Scrape(102.0, parse(AFTER), status)
    view = render("http://x", before, now)
    assert "live conversations: sms 1, voice 2" in view
    assert "turns: 30   10.0/s" in view
    # the 20 new turns all fell in (0.01, 0.1]: the median is interpolated at 0.055 s
    assert "turn latency: p50 55.0 ms" in view
    assert "errors: turn 2" in view
    assert view.index("CAold") < view.index("CAnew")  # the oldest first
    assert "pass --auth-token" in render("http://x", None, Scrape(0.0, parse(AFTER), None))
