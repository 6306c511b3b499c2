"""RealtimeOptions: validation and the per-number switch."""

from __future__ import annotations

import pytest

from tac_actors.protocol.errors import LocalProtocolError
from tac_actors.realtime import RealtimeOptions


def test_realtime_options_refuse_an_audio_format_twilio_cannot_play() -> None:
    with pytest.raises(LocalProtocolError):
        RealtimeOptions(session_extra={"audio": {"input": {"format": {"type": "audio/pcm"}}}})
    assert RealtimeOptions(session_extra={"max_output_tokens": 200}).session_extra


def test_answer_inbound_for_all_calls_or_some_numbers() -> None:
    assert RealtimeOptions(answer_inbound=True).answers("+1")
    assert not RealtimeOptions().answers("+1")
    some = RealtimeOptions(answer_inbound=["+1555", "+1666"])
    assert some.answers("+1555") and not some.answers("+1777") and not some.answers(None)
    with pytest.raises(TypeError):
        RealtimeOptions(answer_inbound="+1555")  # type: ignore[arg-type]
