"""The CLI's banner tells the truth; /metrics and /status over a real socket."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from tac_actors import TAC, TACConfig
from tac_actors.cli import _parser, _print_banner
from tac_actors.server import serve
from tac_actors.testing import connect_caller
from tac_actors.top import render, scrape


def test_banner_says_where_it_listens_and_whether_signatures_are_checked(
        capsys: pytest.CaptureFixture[str]) -> None:
    _print_banner(TAC(TACConfig()), "app.py:tac", ["http://0.0.0.0:8000"], 8000)
    out = capsys.readouterr().out
    assert "on http://127.0.0.1:8000 (ConversationRelay-only mode: voice only; signatures " \
           "NOT checked (no TWILIO_AUTH_TOKEN))" in out
    assert "0.0.0.0:8000, every interface: reachable from your network" in out
    assert "/webhook" not in out and "Metrics: GET http://127.0.0.1:8000/metrics" in out
    _print_banner(TAC(TACConfig(auth_token="t")), "app.py:tac", ["http://127.0.0.1:8001"],
                  8001)
    out = capsys.readouterr().out
    assert "X-Twilio-Signature checked" in out and "127.0.0.1:8001 only" in out


def test_dev_listens_on_loopback_by_default_and_serve_on_every_interface() -> None:
    assert _parser().parse_args(["dev", "a.py"]).host == "127.0.0.1"
    assert _parser().parse_args(["serve", "a.py"]).host == "0.0.0.0"
    args = _parser().parse_args(["serve", "a.py", "--log-format", "json", "--no-turn-log"])
    assert args.log_format == "json" and args.turn_log is False
    assert _parser().parse_args(["serve", "a.py", "--turn-log"]).turn_log is True
    assert _parser().parse_args(["serve", "a.py"]).turn_log is None  # off for serve


async def test_metrics_and_status_over_http() -> None:
    tac = TAC(TACConfig(auth_token="tok"))
    tac.on_message_ready(lambda message, session, memory: f"echo: {message}")
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                shutdown_trigger=stop.wait))
            base = binds[0]
            async with connect_caller(base.replace("http", "ws") + "/ws",
                                      auth_token="tok") as caller:
                await caller.say("hi")
                assert (await caller.read_reply()).text == "echo: hi"
                async with httpx.AsyncClient() as http:
                    metrics = await http.get(base + "/metrics")
                    refused = await http.get(base + "/status")
                    wrong = await http.get(base + "/status",
                                           headers={"Authorization": "Bearer nope"})
                    status = await http.get(base + "/status",
                                            headers={"Authorization": "Bearer tok"})
                    view = render(base, None, await scrape(http, base, "tok"))
            stop.set()
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'tac_turns_total{channel="voice",outcome="ok"} 1.0' in metrics.text
    assert "tac_frontdoor_connections" in metrics.text  # the fast engine's door
    assert caller.call_sid not in metrics.text
    assert refused.status_code == 401 and wrong.status_code == 401
    [entry] = json.loads(status.text)["conversations"]
    assert entry["call_sid"] == caller.call_sid
    assert "live conversations: voice 1" in view and caller.call_sid[:30] in view


async def test_a_webhook_in_conversation_relay_only_mode_is_not_silent(
        caplog: pytest.LogCaptureFixture) -> None:
    tac = TAC(TACConfig())
    tac.on_message_ready(lambda message, session, memory: "hi")
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                shutdown_trigger=stop.wait))
            async with httpx.AsyncClient() as http:
                answers = [await http.post(binds[0] + "/webhook", json={}) for _ in range(3)]
            stop.set()
    assert [a.status_code for a in answers] == [404] * 3
    assert "TWILIO_CONVERSATION_CONFIGURATION_ID" in answers[0].json()["error"]
    lines = [r for r in caplog.records if "ConversationRelay-only mode" in r.getMessage()]
    assert len(lines) == 1  # then counted, not repeated


async def test_call_without_the_token_says_what_to_do(
        capsys: pytest.CaptureFixture[str]) -> None:
    from tac_actors.cli import _call

    tac = TAC(TACConfig(auth_token="tok"))
    tac.on_message_ready(lambda message, session, memory: "hi")
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0,
                                                shutdown_trigger=stop.wait))
            await _call(binds[0].replace("http", "ws") + "/ws", ["hello"], None,
                        "+15550001111")
            stop.set()
    out = capsys.readouterr().out
    assert "rejected the call" in out and "--auth-token" in out and "(1008" in out
    assert "Traceback" not in out


def test_version_and_python_dash_m(capsys: pytest.CaptureFixture[str]) -> None:
    import runpy
    import sys

    argv = sys.argv
    sys.argv = ["tac_actors", "--version"]
    try:
        with pytest.raises(SystemExit) as exited:
            runpy.run_module("tac_actors", run_name="__main__")
    finally:
        sys.argv = argv
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("tac-actors ")


def test_a_missing_seed_is_one_sentence_and_a_pointer(
        capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    from tac_actors.cli import main

    assert main(["emulator", "--port", "0", "--seed", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot read seed" in err and "seed_example.json" in err
    assert "Traceback" not in err


def test_setup_errors_are_found_inside_exception_groups() -> None:
    from tac_actors.cli import _setup_error
    from tac_actors.memory.retrieval import OrchestratorConfigError

    bad = OrchestratorConfigError("could not load the conversation configuration 'x'")
    group = BaseExceptionGroup("outer", [ExceptionGroup("inner", [RuntimeError("other"),
                                                                  bad])])
    assert _setup_error(group) is bad
    assert _setup_error(RuntimeError("the TAC runtime is not running")) is None
