"""The public API: names, configuration from the environment, loading and embedding."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from quart_trio import QuartTrio

import tac_actors
from tac_actors import TAC, BusyPolicy, TACConfig
from tac_actors.cli import UsageError, load_app, main
from tac_actors.server import mount

ROOT = Path(__file__).resolve().parents[1]


def test_public_names() -> None:
    assert set(tac_actors.__all__) >= {
        "TAC", "TACConfig", "ConversationSession", "TACMemoryResponse", "Channel",
        "BusyPolicy", "ActorCrash", "ErrorContext", "Interruption"}
    for name in tac_actors.__all__:
        assert getattr(tac_actors, name) is not None


def test_from_env_with_nothing_is_relay_only() -> None:
    config = TACConfig.from_env({})
    tac = TAC(config)
    assert not tac.is_orchestrator_enabled()
    assert config.auth_token is None
    assert config.voice_policy.busy_policy is BusyPolicy.PREEMPT
    assert config.messaging_policy.busy_policy is BusyPolicy.QUEUE


def test_from_env_reads_the_reference_names() -> None:
    env = {
        "TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "secret-token",
        "TWILIO_API_KEY": "SK1", "TWILIO_API_SECRET": "api-secret",
        "TWILIO_PHONE_NUMBER": "+15550001111",
        "TWILIO_CONVERSATION_CONFIGURATION_ID": "conv_configuration_1",
        "TWILIO_VOICE_PUBLIC_DOMAIN": "https://agent.example.com/",
        "TWILIO_MEMORY_PROFILE_TRAIT_GROUPS": "Contact, Preferences",
        "TWILIO_MEMORY_OBSERVATIONS_LIMIT": "7", "TWILIO_REGION": "ie1",
        "TWILIO_STUDIO_HANDOFF_FLOW_SID": "FW1", "TWILIO_KNOWLEDGE_BASE_ID": "know_1",
    }
    config = TACConfig.from_env(env)
    assert config.orchestrator_enabled
    assert config.voice_public_domain == "agent.example.com"
    assert config.memory.profile_trait_groups == ("Contact", "Preferences")
    assert config.memory.observations_limit == 7
    assert (config.region, config.studio_handoff_flow_sid, config.knowledge_base_id) == (
        "ie1", "FW1", "know_1")
    text = repr(config)
    assert "secret-token" not in text and "api-secret" not in text


def test_from_env_rejects_malformed_numbers() -> None:
    with pytest.raises(ValueError, match="TWILIO_MEMORY_SUMMARIES_LIMIT"):
        TACConfig.from_env({"TWILIO_MEMORY_SUMMARIES_LIMIT": "many"})
    with pytest.raises(ValueError, match=r"0\.\.100"):
        TACConfig.from_env({"TWILIO_MEMORY_SUMMARIES_LIMIT": "500"})


def test_tac_accepts_a_mapping() -> None:
    assert TAC({"auth_token": "t"}).config.auth_token == "t"


def test_load_app_from_file_and_module(tmp_path: Path, monkeypatch: Any) -> None:
    assert isinstance(load_app(str(ROOT / "examples" / "echo.py") + ":tac"), TAC)
    (tmp_path / "my_agent.py").write_text(
        "from tac_actors import TAC\n\ndef make():\n    return TAC()\n\nnot_tac = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(load_app("my_agent:make"), TAC)
    with pytest.raises(UsageError, match=r"not a tac_actors\.TAC"):
        load_app("my_agent:not_tac")
    with pytest.raises(UsageError, match="no attribute"):
        load_app("my_agent:missing")
    with pytest.raises(UsageError, match="no such file"):
        load_app("nowhere.py:tac")
    assert main(["serve", "nowhere.py:tac"]) == 2
    # newcomer finding 25: the class itself, and a module named like a file here
    with pytest.raises(UsageError, match="is the class TAC, not an app"):
        load_app(str(ROOT / "examples" / "echo.py") + ":TAC")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not on sys.path, as in a user's shell
    (tmp_path / "elsewhere" / "side_agent.py").write_text("tac = 1\n")
    with pytest.raises(UsageError, match=r"say side_agent\.py:tac"):
        load_app("side_agent:tac")


async def test_mount_into_an_existing_app_keeps_its_routes(
        caplog: pytest.LogCaptureFixture) -> None:
    import hypercorn.config
    import hypercorn.trio

    app = QuartTrio("users_app")

    @app.route("/mine")
    async def mine() -> str:
        return "still here"

    tac = TAC(TACConfig())
    tac.on_message_ready(lambda m, s, mem: f"echo: {m}")
    mount(app, tac, url_prefix="/agent")
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    stop = trio.Event()
    caplog.set_level(logging.WARNING, logger="tac_actors")
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(hypercorn.trio.serve, app, config,
                                                shutdown_trigger=stop.wait))
            from tac_actors.testing import connect_caller

            async with httpx.AsyncClient(base_url=binds[0]) as http:
                assert (await http.get("/mine")).text == "still here"
                twiml = (await http.post("/agent/twiml", data={"CallSid": "CA1"})).text
                assert "/agent/ws" in twiml
            url = binds[0].replace("http://", "ws://") + "/agent/ws"
            async with connect_caller(url) as caller:
                await caller.say("embedded")
                assert (await caller.read_reply()).text == "echo: embedded"
            stop.set()
    assert any("NO AUTH TOKEN" in r.getMessage() for r in caplog.records)


def test_serve_on_a_taken_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", str(ROOT / "examples" / "echo.py") + ":tac",
                     "--host", "127.0.0.1", "--port", str(port)])
    assert code == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
