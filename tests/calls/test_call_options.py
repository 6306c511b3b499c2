"""CallOptions: the Calls API form, validation, layering; and the config defaults."""

from __future__ import annotations

import pytest

from tac_actors.config import TACConfig
from tac_actors.protocol.call_options import CallOptions


def test_typed_options_become_calls_api_parameters() -> None:
    form = CallOptions(machine_detection="DetectMessageEnd", record=True, timeout=20,
                       status_callback_event=["initiated", "answered"],
                       machine_detection_timeout=8).to_form()
    assert form == {"MachineDetection": "DetectMessageEnd", "AsyncAmd": "true",
                    "MachineDetectionTimeout": "8", "Record": "true", "Timeout": "20",
                    "StatusCallbackEvent": ["initiated", "answered"]}


def test_any_other_calls_api_parameter_passes_through() -> None:
    form = CallOptions(extra={"time_limit": 600, "CallerId": "Acme",
                              "send_digits": "ww1", "trim": False}).to_form()
    assert form == {"TimeLimit": "600", "CallerId": "Acme", "SendDigits": "ww1",
                    "Trim": "false"}


@pytest.mark.parametrize("key", ["to", "From", "twiml", "Url", "application_sid"])
def test_our_own_parameters_cannot_be_passed_through(key: str) -> None:
    with pytest.raises(ValueError, match="ours"):
        CallOptions(extra={key: "x"})


def test_amd_must_be_asynchronous_and_needs_detection() -> None:
    with pytest.raises(ValueError, match="needs machine_detection"):
        CallOptions(async_amd=True)
    with pytest.raises(ValueError, match="asynchronous"):
        CallOptions(machine_detection="Enable", async_amd=False)
    with pytest.raises(ValueError, match="Enable"):
        CallOptions(machine_detection="Sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CallOptions(extra={"Weird": object()})
    with pytest.raises(ValueError, match="timeout"):
        CallOptions(timeout=0)


def test_layers_later_wins_and_extras_merge() -> None:
    base = CallOptions(status_callback="https://a/status", record=True, timeout=30,
                       extra={"TimeLimit": 60, "CallerId": "A"})
    call = CallOptions(timeout=10, machine_detection="Enable", extra={"CallerId": "B"})
    merged = base.merged(None, call)
    assert merged.to_form() == {
        "MachineDetection": "Enable", "AsyncAmd": "true", "Record": "true",
        "StatusCallback": "https://a/status", "Timeout": "10", "TimeLimit": "60",
        "CallerId": "B"}


def test_config_defaults_from_the_environment() -> None:
    config = TACConfig.from_env({
        "TAC_CALL_MACHINE_DETECTION": "Enable", "TAC_CALL_RECORD": "yes",
        "TAC_CALL_TIMEOUT": "25", "TAC_CALL_STATUS_EVENTS": "ringing, answered",
        "TWILIO_VOICE_CALL_EVENT_PATH": "/calls/events/"})
    assert config.call_options == CallOptions(
        machine_detection="Enable", record=True, timeout=25,
        status_callback_event=("ringing", "answered"))
    assert config.call_event_path("amd") == "/calls/events/amd"
    assert TACConfig().call_event_path("status") == "/twilio/call-events/status"
    with pytest.raises(ValueError, match="TAC_CALL_TIMEOUT"):
        TACConfig.from_env({"TAC_CALL_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="start with"):
        TACConfig(voice_call_event_path="events")


def test_several_phone_numbers_keep_the_default_first() -> None:
    config = TACConfig.from_env({"TWILIO_PHONE_NUMBER": "+15550000001",
                                 "TWILIO_PHONE_NUMBERS": "+15550000002, +15550000001"})
    assert config.phone_number == "+15550000001"
    assert config.phone_numbers == ("+15550000001", "+15550000002")
    only_list = TACConfig(phone_numbers=["+15550000003", "+15550000004"])
    assert only_list.phone_number == "+15550000003"
    assert TACConfig().phone_numbers == ()
