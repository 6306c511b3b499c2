"""The ``tac-actors`` command.

* ``tac-actors serve FILE_OR_MODULE:ATTR [--host H] [--port P]``: serve a TAC app
  (``ATTR`` defaults to ``tac``; it may also be a function returning a TAC).
* ``tac-actors call URL [--say TEXT ...]``: a simulated caller in the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

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
            raise UsageError(f"cannot import module {target!r}: {exc}") from None
    try:
        value: Any = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{target} has no attribute {attr!r}") from None
    if not isinstance(value, TAC) and callable(value):
        value = value()
    if not isinstance(value, TAC):
        raise UsageError(f"{spec} is a {type(value).__name__}, not a tac_actors.TAC")
    return value


async def _serve(tac: TAC, host: str, port: int, spec: str) -> None:
    from tac_actors.server import serve

    stop = trio.Event()

    async def trigger() -> None:
        await stop.wait()

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve(
            tac, host, port, shutdown_trigger=trigger, task_status=task_status))
        _print_banner(tac, spec, binds, port)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                print("tac-actors: stopping (conversations get "
                      f"{tac.config.shutdown_grace:g} s to finish)...", flush=True)
                stop.set()
                break


def _print_banner(tac: TAC, spec: str, binds: list[str], port: int) -> None:
    http = binds[0] if binds else f"http://127.0.0.1:{port}"
    host_port = http.split("://", 1)[-1].replace("0.0.0.0", "127.0.0.1")
    mode = ("Orchestrator mode" if tac.is_orchestrator_enabled()
            else "ConversationRelay-only mode (voice, no credentials)")
    config = tac.config
    print(f"tac-actors: serving {spec} on http://{host_port} ({mode})", flush=True)
    print(f"  TwiML webhook : POST http://{host_port}{config.voice_twiml_path}")
    print(f"  WebSocket     : ws://{host_port}{config.voice_websocket_path}")
    print(f"  Health        : GET  http://{host_port}/health")
    print(f"  Talk to it    : tac-actors call ws://{host_port}{config.voice_websocket_path}"
          ' --say "hello"   (or .venv/bin/tac-actors from a checkout)', flush=True)


async def _call(url: str, says: Sequence[str], auth_token: str | None) -> None:
    from tac_actors.testing import CallEnded, connect_caller

    async with connect_caller(url, auth_token=auth_token) as caller:
        print(f"connected to {url} as {caller.from_} (call {caller.call_sid})", flush=True)

        async def exchange(text: str) -> bool:
            print(f"you   > {text}", flush=True)
            await caller.say(text)
            try:
                with trio.fail_after(60):
                    reply = await caller.read_reply()
            except CallEnded as ended:
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
            return
        print("type what the caller says; an empty line or Ctrl-D hangs up", flush=True)
        stdin = trio.wrap_file(sys.stdin)
        while True:
            line = (await stdin.readline()).strip()
            if not line or not await exchange(line):
                return


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tac-actors", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a TAC app")
    serve.add_argument("app", help="FILE.py:ATTR or package.module:ATTR")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default=None)
    call = sub.add_parser("call", help="a simulated ConversationRelay caller")
    call.add_argument("url", help="ws://HOST:PORT/ws")
    call.add_argument("--say", action="append", default=[], help="say this (repeatable)")
    call.add_argument("--auth-token", default=None, help="sign the upgrade with this token")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            tac = load_app(args.app)
            logging.basicConfig(level=(args.log_level or tac.config.log_level).upper(),
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            trio.run(_serve, tac, args.host, args.port, args.app)
        elif args.command == "call":
            logging.basicConfig(level=logging.WARNING)
            trio.run(_call, args.url, args.say, args.auth_token)
    except UsageError as exc:
        print(f"tac-actors: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
