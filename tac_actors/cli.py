"""The ``tac-actors`` command.

* ``tac-actors serve FILE_OR_MODULE:ATTR [--host H] [--port P] [--workers N]``: serve a
  TAC app (``ATTR`` defaults to ``tac``; it may also be a function returning a TAC), in N
  worker processes sharing the port (:mod:`tac_actors.server.workers`).
* ``tac-actors dev FILE_OR_MODULE:ATTR``: the app in Orchestrator mode against a local
  emulator of the Twilio services, seeded with an example profile and knowledge base.
* ``tac-actors emulator [--port P] [--seed FILE]``: the emulator alone.
* ``tac-actors call URL [--say TEXT ...]``: a simulated caller in the terminal.
* ``tac-actors text [URL] [--say TEXT ...]``: text a running ``dev`` server (SMS and
  the other text channels) and print the agent's replies.
* ``tac-actors top URL``: live conversations, turn latency and errors of a server.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

from tac_actors.logs import configure_logging
from tac_actors.tac import TAC

__all__ = ["load_app", "main"]

log = logging.getLogger("tac_actors.cli")


class UsageError(Exception):
    """A command-line mistake: printed without a traceback."""


def load_app(spec: str) -> TAC:
    """Load ``path/to/file.py:attr`` or ``package.module:attr`` (``attr`` defaults to
    ``tac``). The attribute may be a :class:`TAC` or a callable that returns one."""
    target, _, attr = spec.partition(":")
    attr = attr or "tac"
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        if not path.is_file():
            raise UsageError(f"no such file: {target}")
        module_name = f"_tac_app_{path.stem}"
        file_spec = importlib.util.spec_from_file_location(module_name, path)
        if file_spec is None or file_spec.loader is None:
            raise UsageError(f"cannot import {target}")
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.parent.resolve()))
        file_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            hint = ""
            if "." not in target and Path(f"{target}.py").is_file():
                hint = f" (to serve the file in this folder, say {target}.py:{attr})"
            raise UsageError(f"cannot import module {target!r}: {exc}{hint}") from None
    try:
        value: Any = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{target} has no attribute {attr!r}") from None
    if isinstance(value, type):
        raise UsageError(f"{spec} is the class {value.__name__}, not an app: name the "
                         "TAC instance your callbacks are registered on (e.g. file.py:tac)")
    if not isinstance(value, TAC) and callable(value):
        value = value()
    if not isinstance(value, TAC):
        raise UsageError(f"{spec} is of type {type(value).__name__}, not a tac_actors.TAC")
    return value


async def _serve(tac: TAC, host: str, port: int, spec: str,
                 caller_hint: str | None = None, engine: str = "fast",
                 on_bound: Callable[[list[str]], None] | None = None) -> None:
    from tac_actors.server import serve

    stop = trio.Event()

    async def trigger() -> None:
        await stop.wait()

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve(
            tac, host, port, engine=engine,  # type: ignore[arg-type]
            shutdown_trigger=trigger, task_status=task_status))
        _print_banner(tac, spec, binds, port, caller_hint)
        if on_bound is not None:
            on_bound(binds)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                print("tac-actors: stopping (conversations get "
                      f"{tac.config.shutdown_grace:g} s to finish)...", flush=True)
                stop.set()
                break


def _print_banner(tac: TAC, spec: str, binds: list[str], port: int,
                  caller_hint: str | None = None) -> None:
    http = binds[0] if binds else f"http://127.0.0.1:{port}"
    bound = http.split("://", 1)[-1]
    wildcard = bound.startswith(("0.0.0.0:", "[::]:"))
    host_port = bound.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]")
    config = tac.config
    mode = ("Orchestrator mode: voice and text channels" if tac.is_orchestrator_enabled()
            else "ConversationRelay-only mode: voice only")
    signed = ("X-Twilio-Signature checked" if config.auth_token and config.validate_signatures
              else "signatures NOT checked (no TWILIO_AUTH_TOKEN)")
    print(f"tac-actors: serving {spec} on http://{host_port} ({mode}; {signed})", flush=True)
    if wildcard:
        print(f"  Listening on  : {bound}, every interface: reachable from your network "
              "(--host 127.0.0.1 for this machine only)")
    else:
        print(f"  Listening on  : {bound} only")
    print(f"  TwiML webhook : POST http://{host_port}{config.voice_twiml_path}")
    print(f"  WebSocket     : ws://{host_port}{config.voice_websocket_path}")
    print(f"  Action URL    : POST http://{host_port}{config.voice_action_path}")
    if tac.is_orchestrator_enabled():
        print(f"  Orchestrator  : POST http://{host_port}{config.webhook_path}")
    hooks = [name for name, hook in (("on_call_status", tac._call_status),
                                     ("on_amd", tac._amd), ("on_recording", tac._recording))
             if hook is not None]
    print(f"  Call events   : POST http://{host_port}{config.voice_call_event_path}"
          "/{status,amd,recording}" + (f"  ({', '.join(hooks)})" if hooks else ""))
    print(f"  Health        : GET  http://{host_port}/health   Metrics: GET "
          f"http://{host_port}/metrics   Live view: tac-actors top http://{host_port}")
    as_caller = f" --from {caller_hint}" if caller_hint else ""
    print(f"  Talk to it    : tac-actors call ws://{host_port}{config.voice_websocket_path}"
          f'{as_caller} --say "hello"   (.venv/bin/tac-actors from a checkout)', flush=True)
    if caller_hint:
        print(f"                  ({caller_hint} is the seeded customer: memory and traits "
              "come from the emulator)", flush=True)
    if tac.is_orchestrator_enabled() and config.services_base_url:
        token = " --auth-token $TWILIO_AUTH_TOKEN" if config.auth_token else ""
        print(f"  Text it       : tac-actors text http://{host_port}{as_caller}{token} "
              '--say "hello"   (--channel whatsapp|rcs|chat; no --say: type lines)',
              flush=True)


async def _dev(spec: str, host: str, port: int, emulator_port: int, seed: str | None) -> None:
    from tac_actors.emulator import intelligence, serve_emulator
    from tac_actors.emulator.calls import CallScript
    from tac_actors.emulator.seed import EXAMPLE_SEED, read_seed

    seed_path = seed or str(EXAMPLE_SEED)
    data = read_seed(seed_path)
    async with trio.open_nursery() as nursery:
        emulator = await nursery.start(serve_emulator, "127.0.0.1", emulator_port, seed_path)
        defaults = {
            "TWILIO_ACCOUNT_SID": data.get("accountSid") or "AC" + "0" * 32,
            "TWILIO_API_KEY": "SK" + "0" * 32,
            "TWILIO_API_SECRET": "emulator-secret",
            "TWILIO_PHONE_NUMBER": "+15559990000",
            "TWILIO_STUDIO_HANDOFF_FLOW_SID": "FW" + "0" * 32,
        }
        if data.get("configurations"):
            defaults["TWILIO_CONVERSATION_CONFIGURATION_ID"] = data["configurations"][0]["id"]
        if data.get("knowledgeBases"):
            defaults["TWILIO_KNOWLEDGE_BASE_ID"] = data["knowledgeBases"][0]["id"]
        defaults["CONVERSATION_INTELLIGENCE_CONFIGURATION_ID"] = intelligence.CONFIGURATION_ID
        defaults["CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID"] = (
            intelligence.SUMMARY_OPERATOR_SID)
        for name, value in defaults.items():
            os.environ.setdefault(name, value)
        os.environ["TAC_SERVICES_URL"] = emulator.url
        tac = load_app(spec)
        print(f"tac-actors: Twilio emulator on {emulator.url} (seed {seed_path})", flush=True)
        people = [p for store in data.get("memoryStores", []) for p in store.get("profiles", [])]
        phone = next((p["traits"].get("Contact", {}).get("phone") for p in people
                      if p.get("traits", {}).get("Contact", {}).get("phone")), None)
        # outbound calls: answered by a person who hangs up after 20 s, unless scripted
        emulator.calls.default = CallScript(duration=20.0)
        print(f"  Outbound calls: the emulator plays their status/AMD/recording callbacks "
              f"(script a number: curl -d '{{\"to\": \"+1555...\", \"answered_by\": "
              f"\"machine_start\"}}' {emulator.url}/_emulator/call-scripts)", flush=True)

        def bound(binds: list[str]) -> None:
            # the emulator's Conversation Intelligence posts its operator results here
            # when a conversation closes (`tac-actors text --close`)
            settings = tac.config.intelligence
            if settings is None or not binds:
                return
            base = binds[0].replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]")
            emulator.intelligence.set_target(base + settings.webhook_path,
                                             tac.config.auth_token)
            print(f"  Intelligence  : POST {base}{settings.webhook_path} (the emulator "
                  "sends operator results when a conversation closes)", flush=True)

        await _serve(tac, host, port, spec, caller_hint=phone, on_bound=bound)
        nursery.cancel_scope.cancel()


#: what a close code tells the person at the terminal
_CLOSE_HINTS = {
    1000: "the server closed the call",
    1001: "the server is shutting down: the call ended",
    1008: "the server rejected the call (policy): a bad or missing signature? pass "
          "--auth-token with the server's TWILIO_AUTH_TOKEN",
    1009: "the server refused a frame as too large",
    1011: "the server hit an internal error (see its log)",
}


def _closed_message(code: int | None, reason: str = "") -> str:
    hint = _CLOSE_HINTS.get(code or 0, "the connection closed")
    detail = f" ({code}{': ' + reason if reason else ''})" if code else ""
    return f"tac-actors: {hint}{detail}"


async def _call(url: str, says: Sequence[str], auth_token: str | None,
                from_: str) -> None:
    from tac_actors.channels.transport import TransportClosed
    from tac_actors.testing import CallEnded

    try:
        await _call_session(url, says, auth_token, from_)
    except (TransportClosed, CallEnded) as closed:  # e.g. 1008 right after the upgrade
        print(_closed_message(closed.code, closed.reason), flush=True)


async def _call_session(url: str, says: Sequence[str], auth_token: str | None,
                        from_: str) -> None:
    from tac_actors.channels.transport import TransportClosed
    from tac_actors.testing import CallEnded, connect_caller

    async with connect_caller(url, auth_token=auth_token, from_=from_) as caller:
        print(f"connected to {url} as {caller.from_} (call {caller.call_sid})", flush=True)

        async def exchange(text: str) -> bool:
            print(f"you   > {text}", flush=True)
            try:
                await caller.say(text)
                with trio.fail_after(60):
                    reply = await caller.read_reply()
            except TransportClosed as closed:
                print(_closed_message(closed.code, closed.reason), flush=True)
                return False
            except CallEnded as ended:
                if ended.end is None:
                    print(_closed_message(ended.code, ended.reason), flush=True)
                    return False
                detail = f" with handoff data {ended.end.handoff_data}" if ended.end and \
                    ended.end.handoff_data else ""
                print(f"agent ended the call{detail}", flush=True)
                return False
            print(f"agent < {reply.text}", flush=True)
            return True

        if says:
            for text in says:
                if not await exchange(text):
                    return
            with trio.move_on_after(0.5):  # an ``end`` may follow the last reply
                try:
                    await caller.read_reply()
                except CallEnded as ended:
                    if ended.end is not None:
                        data = ended.end.handoff_data
                        print("agent ended the call" + (f" with handoff data {data}"
                                                        if data else ""), flush=True)
            return
        print("type what the caller says; an empty line or Ctrl-D hangs up", flush=True)
        stdin = trio.wrap_file(sys.stdin)
        while True:
            line = (await stdin.readline()).strip()
            if not line or not await exchange(line):
                return


async def _text(url: str, says: Sequence[str], *, from_: str, channel: str,
                auth_token: str | None, emulator: str | None, configuration: str | None,
                agent: str | None, wait: float, close: bool = False) -> None:
    import httpx

    from tac_actors.testing.remote_texter import DevInfo, RemoteTexter

    async with httpx.AsyncClient(timeout=10.0) as client:
        if emulator and configuration:
            info = DevInfo(emulator, configuration, agent or "+15559990000")
        else:
            info = await DevInfo.fetch(client, url, auth_token)
        texter = RemoteTexter(client, url, info, address=from_, channel=channel,
                              auth_token=auth_token)

        async def exchange(text: str) -> None:
            print(f"you   > {text}", flush=True)
            await texter.send(text)
            replies = await texter.replies(wait=wait)
            if not replies:
                print(f"(no reply within {wait:g} s)", flush=True)
            for reply in replies:
                print(f"agent < {reply}", flush=True)

        async def finish() -> None:
            if close and texter.conversation_id is not None:
                await texter.close()
                print(f"(conversation {texter.conversation_id} closed)", flush=True)

        if says:
            for text in says:
                await exchange(text)
            await finish()
            return
        print(f"texting {url} by {channel} as {from_}; an empty line or Ctrl-D stops",
              flush=True)
        stdin = trio.wrap_file(sys.stdin)
        while True:
            line = (await stdin.readline()).strip()
            if not line:
                await finish()
                return
            await exchange(line)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tac-actors",
        description="Serve, try and watch TAC agents: phone calls and texts to your AI agent.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a TAC app")
    serve.add_argument("app", help="FILE.py:ATTR or package.module:ATTR")
    serve.add_argument("--host", default="0.0.0.0",
                       help="address to listen on (default: 0.0.0.0, every interface)")
    serve.add_argument("--port", type=int, default=8000, help="default: 8000")
    serve.add_argument("--log-level", default=None,
                       help="debug, info, warning... (default: TWILIO_LOG_LEVEL or info)")
    _log_options(serve)
    serve.add_argument("--engine", choices=["fast", "hypercorn"], default="fast",
                       help="voice WebSocket engine (default: fast)")
    _worker_options(serve)
    serve.add_argument("--redis", default=None, metavar="URL",
                       help="share text conversations with other processes through this "
                            "Redis (redis://HOST:PORT/DB; default: TAC_REDIS_URL, else "
                            "none)")
    dev = sub.add_parser("dev", help="serve an app against the local Twilio emulator")
    dev.add_argument("app", help="FILE.py:ATTR or package.module:ATTR")
    dev.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: 127.0.0.1, this machine only: "
                     "the dev server checks no signatures)")
    dev.add_argument("--port", type=int, default=8000, help="default: 8000")
    dev.add_argument("--emulator-port", type=int, default=0, help="default: any free port")
    dev.add_argument("--seed", default=None, help="JSON seed (default: the example seed)")
    dev.add_argument("--log-level", default=None,
                     help="debug, info, warning... (default: TWILIO_LOG_LEVEL or info)")
    _log_options(dev)
    emulator = sub.add_parser("emulator", help="run the local Twilio services emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8765)
    emulator.add_argument("--seed", default=None, help="JSON seed (default: the example)")
    call = sub.add_parser("call", help="a simulated ConversationRelay caller")
    call.add_argument("url", help="ws://HOST:PORT/ws")
    call.add_argument("--say", action="append", default=[], help="say this (repeatable)")
    call.add_argument("--auth-token", default=None, help="sign the upgrade with this token")
    call.add_argument("--from", dest="from_", default="+15550001111",
                      help="the caller's number (default +15550001111)")
    text = sub.add_parser("text", help="text a running `tac-actors dev` server")
    text.add_argument("url", nargs="?", default="http://127.0.0.1:8000",
                      help="the server (default: http://127.0.0.1:8000)")
    text.add_argument("--say", action="append", default=[], help="send this (repeatable)")
    text.add_argument("--from", dest="from_", default="+15551230001",
                      help="the texter's address (default: +15551230001, the seeded "
                      "customer)")
    text.add_argument("--channel", default="sms", choices=["sms", "whatsapp", "rcs", "chat"])
    text.add_argument("--auth-token", default=None, help="sign webhooks with this token")
    text.add_argument("--wait", type=float, default=30.0,
                      help="seconds to wait for a reply (default: 30)")
    text.add_argument("--emulator", default=None,
                      help="the emulator's URL (default: asked from the server's /status)")
    text.add_argument("--configuration", default=None,
                      help="conversation configuration id (with --emulator)")
    text.add_argument("--agent", default=None, help="the agent's address (with --emulator)")
    text.add_argument("--close", action="store_true",
                      help="close the conversation at the end (the emulator then sends "
                      "Conversation Intelligence results to the server)")
    top = sub.add_parser("top", help="a live view of a server: conversations, latency, "
                         "errors")
    top.add_argument("url", nargs="?", default="http://127.0.0.1:8000",
                     help="the server (default: http://127.0.0.1:8000)")
    top.add_argument("--auth-token", default=None,
                     help="the server's TWILIO_AUTH_TOKEN (for /status)")
    top.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    top.add_argument("--once", action="store_true", help="print one view and exit")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tac-actors")
    except PackageNotFoundError:
        return "(not installed)"


def _worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", default=None, metavar="N",
                        help="worker processes sharing the port (default: TAC_WORKERS or "
                        "1; 0 or auto: one per core)")
    parser.add_argument("--share-port", choices=["reuseport", "inherit"], default=None,
                        help="how workers share the port: each binds it with SO_REUSEPORT "
                        "(default on Linux) or all accept from the parent's socket")
    parser.add_argument("--restart-limit", type=int, default=5, metavar="N",
                        help="at most N worker restarts within --restart-window seconds, "
                        "then every worker stops and serve exits 1 (default: 5)")
    parser.add_argument("--restart-window", type=float, default=60.0, metavar="T",
                        help="default: 60")


def _serve_workers(args: argparse.Namespace, argv: Sequence[str], count: int) -> int:
    """The parent of ``--workers N`` (see :mod:`tac_actors.server.workers`)."""
    from tac_actors.server import workers

    tac = load_app(args.app)  # a mistake in the app is one message here, not N crash loops
    configure_logging(args.log_level or tac.config.log_level, fmt=args.log_format,
                      unmasked=args.log_unmasked, turns=bool(args.turn_log))
    share = args.share_port or workers.default_share()
    port = workers.bind_shared(args.host, args.port, share)
    try:
        _print_banner(tac, args.app, [port.url()], port.port)
        print(f"  Workers       : {count} processes ("
              f"{'SO_REUSEPORT' if share == 'reuseport' else 'one inherited socket'}); "
              "each line of their log says which (w1, w2...)", flush=True)
        parent = workers.Parent(
            [sys.executable, "-m", "tac_actors", *argv], count, port,
            limit=workers.RestartLimit(args.restart_limit, args.restart_window),
            drain_timeout=tac.config.shutdown_grace + 10.0)
        return trio.run(parent.run)
    finally:
        port.close()


def _serve_as_worker(args: argparse.Namespace, worker: str) -> None:
    from tac_actors.server import workers

    tac = load_app(args.app)
    if args.redis:
        tac.config = attrs.evolve(tac.config, redis_url=args.redis)
    configure_logging(args.log_level or tac.config.log_level, fmt=args.log_format,
                      unmasked=args.log_unmasked, turns=bool(args.turn_log), worker=worker)
    sock = workers.worker_socket(args.host)
    trio.run(partial(workers.serve_worker, tac, args.host, sock, worker=worker,
                     engine=args.engine))


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="text lines (default) or one JSON object per line")
    parser.add_argument("--log-unmasked", action="store_true",
                        help="log phone numbers and emails in full (masked by default)")
    parser.add_argument("--turn-log", action=argparse.BooleanOptionalAction, default=None,
                        help="an INFO line per turn (default: on for dev, off for serve, "
                        "where it costs about a third more CPU per echo turn); "
                        "conversation start and end are logged either way")


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError in ``exc`` (trio reports start-up failures inside exception groups)."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_error(inner)
            if found is not None:
                return found
    return None


def _setup_error(exc: BaseException) -> Exception | None:
    """A start-up mistake in ``exc`` (possibly inside exception groups): a bad seed or
    Orchestrator configuration, missing credentials."""
    from tac_actors.emulator.seed import SeedError
    from tac_actors.memory.retrieval import OrchestratorConfigError

    if isinstance(exc, SeedError | OrchestratorConfigError):
        return exc
    if isinstance(exc, ValueError) and "need credentials" in str(exc):
        return exc
    if type(exc).__name__ == "LifespanFailureError":  # hypercorn's, from the app's start-up
        return RuntimeError(str(exc).removeprefix("Lifespan failure in startup. ").strip("'"))
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _setup_error(inner)
            if found is not None:
                return found
    return None


def _workers(value: str | None) -> int:
    from tac_actors.server.workers import worker_count

    try:
        return worker_count(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _quiet_libraries() -> None:
    for name in ("httpx", "httpcore", "websockets", "hpack"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _quiet_libraries()
    try:
        if args.command == "serve" and os.environ.get("TAC_WORKER_ID"):
            _serve_as_worker(args, os.environ["TAC_WORKER_ID"])
        elif args.command == "serve" and _workers(args.workers) > 1:
            return _serve_workers(args, argv, _workers(args.workers))
        elif args.command == "serve":
            tac = load_app(args.app)
            if args.redis:
                tac.config = attrs.evolve(tac.config, redis_url=args.redis)
            configure_logging(args.log_level or tac.config.log_level, fmt=args.log_format,
                              unmasked=args.log_unmasked, turns=bool(args.turn_log))
            trio.run(_serve, tac, args.host, args.port, args.app, None, args.engine)
        elif args.command == "dev":
            level = (args.log_level or os.environ.get("TWILIO_LOG_LEVEL") or "INFO").upper()
            configure_logging(level, fmt=args.log_format, unmasked=args.log_unmasked,
                              turns=args.turn_log is not False)
            trio.run(_dev, args.app, args.host, args.port, args.emulator_port, args.seed)
        elif args.command == "emulator":
            from tac_actors.emulator import run_emulator
            from tac_actors.emulator.seed import EXAMPLE_SEED

            logging.basicConfig(level=logging.INFO)
            run_emulator(args.host, args.port, args.seed or EXAMPLE_SEED)
        elif args.command == "call":
            import trio_websocket

            logging.basicConfig(level=logging.WARNING)
            try:
                trio.run(_call, args.url, args.say, args.auth_token, args.from_)
            except (OSError, trio_websocket.HandshakeError) as exc:
                print(f"tac-actors: cannot connect to {args.url}: {exc.__cause__ or exc}",
                      file=sys.stderr)
                return 1
        elif args.command == "text":
            from tac_actors.testing.remote_texter import TextingError

            logging.basicConfig(level=logging.WARNING)
            try:
                trio.run(partial(_text, args.url, args.say, from_=args.from_,
                                 channel=args.channel, auth_token=args.auth_token,
                                 emulator=args.emulator, configuration=args.configuration,
                                 agent=args.agent, wait=args.wait, close=args.close))
            except TextingError as exc:
                print(f"tac-actors: {exc}", file=sys.stderr)
                return 1
        elif args.command == "top":
            from tac_actors.top import run_top

            return run_top(args.url, auth_token=args.auth_token, interval=args.interval,
                           once=args.once)
    except UsageError as exc:
        print(f"tac-actors: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError, BaseExceptionGroup) as exc:
        # a bad seed or configuration is one sentence, not a traceback (review 11, 32)
        setup = _setup_error(exc)
        if setup is not None and args.command in ("serve", "dev", "emulator"):
            print(f"tac-actors: {setup}", file=sys.stderr)
            if "seed" in type(setup).__name__.lower():
                print("tac-actors: the seed format is described in "
                      "tac_actors/emulator/seed.py; start from "
                      "tac_actors/emulator/seed_example.json", file=sys.stderr)
            return 2
        # e.g. the port is taken
        error = _os_error(exc)
        if error is None or args.command not in ("serve", "dev", "emulator"):
            raise
        print(f"tac-actors: cannot listen on {args.host}:{args.port}: "
              f"{error.strerror or error} (choose another --port)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
