"""Call events end to end over loopback sockets: the emulator places a call, plays its
signed status/AMD/recording callbacks to our served routes, and the app's hooks run."""

from __future__ import annotations

from typing import Any

import httpx
import trio
import trio.testing

from tac_actors import TAC, TACConfig
from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.protocol.call_events import AmdEvent, CallStatusEvent, RecordingEvent
from tac_actors.protocol.call_options import CallOptions
from tac_actors.protocol.signature import compute_signature

from ..messaging.conftest import served

TOKEN = "call-events-token"
ADA = "+15551230001"
BUSY = "+15551230002"


def relay_only_tac(emu: Emulator, **overrides: Any) -> TAC:
    """ConversationRelay-only mode, signatures checked with the emulator's token."""
    values: dict[str, Any] = {"conversation_configuration_id": None, "knowledge_base_id": None,
                              "auth_token": TOKEN}
    values.update(overrides)
    tac = TAC(emu.tac_config(**values))
    tac.on_message_ready(lambda m, s, mem: "ok")
    return tac


async def test_voicemail_is_detected_hung_up_and_reported() -> None:
    events: list[Any] = []
    done = trio.Event()
    hung_up: list[bool] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED, auth_token=TOKEN) as emu:
            emu.script_call(ADA, answered_by="machine_start")
            tac = relay_only_tac(emu, call_options=CallOptions(timeout=25))

            @tac.on_call_status
            def status(event: CallStatusEvent) -> None:  # sync hooks run in a thread
                events.append(event)
                if event.is_final:
                    trio.from_thread.run_sync(done.set)

            @tac.on_amd
            async def amd(event: AmdEvent) -> None:
                events.append(event)
                if event.is_machine:
                    hung_up.append(await tac.end_call(event.call_sid))

            @tac.on_recording
            async def recording(event: RecordingEvent) -> None:
                events.append(event)

            async with served(tac) as url:
                result = await tac.start_conversation(
                    "voice", ADA, call_options=CallOptions(
                        machine_detection="Enable", record=True,
                        status_callback_event=["initiated", "ringing", "answered"]))
                await done.wait()
                await emu.wait_call_events(6)
            (call,) = emu.made_calls()
            delivered = emu.call_events()
    params = call["parameters"]
    assert params["MachineDetection"] == "Enable" and params["AsyncAmd"] == "true"
    assert params["Record"] == "true" and params["Timeout"] == "25"  # config default
    assert params["StatusCallback"] == f"{url}/twilio/call-events/status"
    assert params["AsyncAmdStatusCallback"] == f"{url}/twilio/call-events/amd"
    assert params["RecordingStatusCallback"] == f"{url}/twilio/call-events/recording"
    assert [e["status_code"] for e in delivered] == [200] * 6  # every signature checked
    kinds = [(type(e).__name__, getattr(e, "call_status", None) or
              getattr(e, "answered_by", None) or getattr(e, "recording_status", None))
             for e in events]
    assert kinds == [("CallStatusEvent", "initiated"), ("CallStatusEvent", "ringing"),
                     ("CallStatusEvent", "in-progress"), ("AmdEvent", "machine_start"),
                     ("CallStatusEvent", "completed"), ("RecordingEvent", "completed")]
    assert {e.call_sid for e in events} == {result.call_sid}
    assert hung_up == [True]
    assert events[3].is_machine and not events[4].is_unreached


async def test_unreached_call_reaches_on_call_status_only() -> None:
    seen: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED, auth_token=TOKEN) as emu:
            emu.script_call(BUSY, status="busy")
            tac = relay_only_tac(emu)
            got = trio.Event()

            @tac.on_call_status
            async def status(event: CallStatusEvent) -> None:
                seen.append(event)
                got.set()

            async with served(tac):
                await tac.start_conversation("voice", BUSY, call_options=CallOptions(
                    machine_detection="Enable"))
                await got.wait()
            (call,) = emu.made_calls()
    (event,) = seen
    assert event.call_status == "busy" and event.is_unreached and event.to == BUSY
    # no on_amd hook: the call was placed without an AMD callback URL
    assert "AsyncAmdStatusCallback" not in call["parameters"]
    assert "RecordingStatusCallback" not in call["parameters"]


async def test_bad_signature_bad_payload_other_account_and_failing_hook() -> None:
    errors: list[Any] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED, auth_token=TOKEN) as emu:
            tac = relay_only_tac(emu)

            @tac.on_amd
            async def amd(event: AmdEvent) -> None:
                raise RuntimeError("app bug")

            @tac.on_error
            async def on_error(exc: BaseException, context: Any) -> None:
                errors.append((str(exc), context.phase, context.conversation_id,
                               context.detail))

            async with served(tac) as url, httpx.AsyncClient() as client:
                endpoint = f"{url}/twilio/call-events/amd"

                async def post(form: dict[str, str], token: str = TOKEN) -> httpx.Response:
                    signature = compute_signature(token, endpoint, form)
                    return await client.post(endpoint, data=form,
                                             headers={"X-Twilio-Signature": signature})

                good = {"CallSid": "CA1", "AccountSid": emu.account_sid,
                        "AnsweredBy": "human"}
                forged = await post(good, token="someone-else")
                unsigned = await client.post(endpoint, data=good)
                no_sid = await post({"AnsweredBy": "human"})
                other = await post({**good, "AccountSid": "AC" + "9" * 32})
                failing = await post(good)
                no_hook = await client.post(
                    f"{url}/twilio/call-events/recording",
                    data={"CallSid": "CA1"}, headers={"X-Twilio-Signature": compute_signature(
                        TOKEN, f"{url}/twilio/call-events/recording", {"CallSid": "CA1"})})
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert no_sid.status_code == 400 and "CallSid" in no_sid.text
    assert other.status_code == 403
    assert failing.status_code == 200  # the app's failure is reported, not Twilio's
    assert no_hook.status_code == 200
    assert errors == [("app bug", "hook", "CA1", "on_amd: app bug")]


async def test_call_event_path_is_configurable() -> None:
    seen: list[str] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED, auth_token=TOKEN) as emu:
            emu.script_call(BUSY, status="no-answer")
            tac = relay_only_tac(emu, voice_call_event_path="/hooks/calls")
            got = trio.Event()

            @tac.on_call_status
            async def status(event: CallStatusEvent) -> None:
                seen.append(event.call_status or "")
                got.set()

            async with served(tac) as url:
                await tac.start_conversation("voice", BUSY)
                await got.wait()
            (call,) = emu.made_calls()
    assert call["parameters"]["StatusCallback"] == f"{url}/hooks/calls/status"
    assert seen == ["no-answer"]


def test_the_banner_lists_the_call_event_routes_and_hooks(capsys: Any) -> None:
    from tac_actors.cli import _print_banner

    tac = TAC(TACConfig())
    tac.on_amd(lambda event: None)
    _print_banner(tac, "app.py:tac", ["http://127.0.0.1:8000"], 8000)
    out = capsys.readouterr().out
    assert ("Call events   : POST http://127.0.0.1:8000/twilio/call-events/"
            "{status,amd,recording}  (on_amd)") in out


async def test_calls_are_scripted_over_http() -> None:
    with trio.fail_after(20):
        async with Emulator.running() as emu, httpx.AsyncClient() as client:
            busy = await client.post(f"{emu.url}/_emulator/call-scripts",
                                     json={"to": BUSY, "status": "busy"})
            default = await client.post(f"{emu.url}/_emulator/call-scripts",
                                        json={"answered_by": "machine_start", "duration": 3})
            bad = await client.post(f"{emu.url}/_emulator/call-scripts",
                                    json={"status": "ringing"})
    assert (busy.status_code, default.status_code, bad.status_code) == (200, 200, 400)
    assert emu.calls.script(BUSY).status == "busy"
    assert emu.calls.script(ADA).answered_by == "machine_start"
    assert emu.calls.default.duration == 3


async def test_both_engines_know_their_loopback_base_for_callbacks() -> None:
    from functools import partial

    from tac_actors.server import serve

    for engine in ("fast", "hypercorn"):
        tac = TAC(TACConfig())
        tac.on_call_status(lambda event: None)
        stop = trio.Event()
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(partial(serve, tac, "127.0.0.1", 0, engine=engine,
                                                    shutdown_trigger=stop.wait))
                assert tac.runtime is not None and tac.runtime.local_base == binds[0], engine
                from tac_actors.channels.call_events import callback_urls
                assert callback_urls(tac).status_callback == (
                    f"{binds[0]}/twilio/call-events/status")
                stop.set()


async def test_end_call_hangs_up_and_ends_the_live_conversation() -> None:
    from tac_actors.testing import open_harness

    ended: list[str] = []
    with trio.fail_after(20):
        async with Emulator.running(seed=EXAMPLE_SEED, auth_token=TOKEN) as emu:
            tac = relay_only_tac(emu, voice_public_domain="agent.example.com")
            tac.on_conversation_ended(lambda session: ended.append(session.call_sid))
            async with open_harness(tac) as h:
                placed = await tac.start_conversation("voice", ADA)
                assert placed.call_sid is not None
                # Twilio answers and connects the call to our socket
                async with h.call(call_sid=placed.call_sid, setup=False) as caller:
                    await caller.setup(direction="outbound-api", from_="+15550000000", to=ADA)
                    await trio.testing.wait_all_tasks_blocked()
                    session = tac.session_for_call(placed.call_sid)
                    assert session is not None and session.caller == ADA
                    assert await tac.end_call(placed.call_sid) is True
                    await caller.wait_closed()
                assert tac.session_for_call(placed.call_sid) is None
                assert await tac.end_call("CA" + "f" * 32) is False  # unknown: no raise
            updates = emu.requests(method="POST", path_contains="/Calls/")
    assert ended == [placed.call_sid]
    assert [r.status for r in updates] == [200, 404]


async def test_a_hook_past_its_time_is_cancelled_and_reported(autojump_clock: Any) -> None:
    from tac_actors.channels.call_events import HOOK_TIMEOUT, deliver_call_event

    tac = TAC(TACConfig(account_sid="AC1"))
    errors: list[tuple[str, str]] = []

    @tac.on_call_status
    async def slow(event: CallStatusEvent) -> None:
        await trio.sleep_forever()

    tac.on_error(lambda exc, context: errors.append((type(exc).__name__, context.detail)))
    started = trio.current_time()
    answer = await deliver_call_event(tac, "status", {"CallSid": "CA1", "AccountSid": "AC1",
                                                      "CallStatus": "completed"})
    assert answer.status == 200 and trio.current_time() - started == HOOK_TIMEOUT
    assert errors == [("TimeoutError", f"on_call_status: on_call_status ran past "
                                        f"{HOOK_TIMEOUT:g} s and was cancelled")]
