"""Merging the workers' scrapes (sans IO: the texts as the siblings would answer)."""

from __future__ import annotations

import json

from tac_actors.server.worker_metrics import merge_metrics, merge_status

ONE = """# HELP tac_turns_total Turns run.
# TYPE tac_turns_total counter
tac_turns_total{channel="voice",outcome="ok"} 3.0
# HELP tac_turn_seconds Turn latency.
# TYPE tac_turn_seconds histogram
tac_turn_seconds_bucket{channel="voice",le="0.1"} 3.0
tac_turn_seconds_bucket{channel="voice",le="+Inf"} 3.0
tac_turn_seconds_count{channel="voice"} 3.0
tac_turn_seconds_sum{channel="voice"} 0.01
"""


def test_every_series_is_labelled_with_its_worker_and_a_silent_worker_is_down() -> None:
    text = merge_metrics({"1": ONE, "2": ONE.replace("3.0", "4.0"), "3": None}).decode()
    assert text.count("# TYPE tac_turns_total counter") == 1  # one family, three workers
    assert 'tac_turns_total{channel="voice",outcome="ok",worker="1"} 3.0' in text
    assert 'tac_turns_total{channel="voice",outcome="ok",worker="2"} 4.0' in text
    assert 'tac_turn_seconds_bucket{channel="voice",le="+Inf",worker="2"} 4.0' in text
    assert 'tac_worker_up{worker="3"} 0.0' in text and 'worker="3",' not in text
    assert 'tac_worker_up{worker="1"} 1.0' in text


def test_status_sums_the_counts_and_lists_each_conversation_with_its_worker() -> None:
    def document(live: int, call: str) -> str:
        return json.dumps({"status": "ok", "live": live, "started": live, "ended": 0,
                           "restarts": 0, "listed_limit": 200,
                           "conversations": [{"call_sid": call}]})

    merged = merge_status({"1": document(1, "CA1"), "2": document(2, "CA2"), "3": None})
    assert merged["live"] == 3 and merged["started"] == 3
    assert merged["conversations"] == [{"call_sid": "CA1", "worker": "1"},
                                       {"call_sid": "CA2", "worker": "2"}]
    assert merged["workers"] == {"1": "ok", "2": "ok", "3": "no answer"}
