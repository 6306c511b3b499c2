"""Load generator for speech-to-speech calls (Twilio Media Streams) against a server
running ``bench/media_agents.py:echo_model_tac``.

    .venv/bin/python bench/media_load.py --url ws://127.0.0.1:8080/media-stream \
        --calls 200 --seconds 20 --server-pid PID [--json out.json]

Each call sends ``connected`` and ``start``, then a 20 ms μ-law frame every 20 ms (real
time, as a phone does) and echoes every ``mark`` at once (its audio "played"). The echo
model answers each 400 ms of caller audio with 500 ms of audio in 5 pieces, so reply k
is triggered by frame 20·k: **reply latency** is the time from sending that frame to
receiving the reply's first audio. The server does not pace what it sends (Twilio
buffers a call's outbound audio), so reply latency is how late the server's audio is: on
an idle loopback it is well under a millisecond.

Also reported: **send lateness**, how long after its 20 ms slot each of our frames left
(the client's own event-loop lag; reply latency includes the client's lag too, so a run
whose send lateness is not small measures the client, not the server), frames late to be
sent by more than 20 ms, server CPU (% of one core) and RSS. ``--raw`` adds every reply
latency and a histogram of send lateness (0.1 ms buckets) so that ``media_capacity.py``
can merge several client processes.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio
import trio_websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fastws
from _proc import cpu_seconds, own_cpu_seconds, raise_fd_limit, rss_kb
from _stats import summarize_ms

FRAME = base64.b64encode(bytes([0x1F, 0x9F]) * 80).decode("ascii")
FRAMES_PER_REPLY = 20
PIECES_PER_REPLY = 5


class Totals:
    def __init__(self) -> None:
        self.connected = 0
        self.errors: list[str] = []
        self.frames = 0
        self.late_frames = 0
        self.media = 0
        self.marks = 0
        self.latencies: list[float] = []
        self.send_lateness: list[float] = []


def _open(url: str, client: str) -> Any:
    if client == "trio-websocket":
        return trio_websocket.open_websocket_url(url)
    return _fastws.open_fast_websocket(url)


async def one_call(url: str, n: int, seconds: float, totals: Totals, client: str) -> None:
    call_sid = f"CA{os.getpid():08x}{n:024x}"  # unique across client processes
    stream_sid = f"MZ{os.getpid():08x}{n:024x}"
    sent_at: dict[int, float] = {}
    stopping = False
    try:
        async with _open(url, client) as ws:
            totals.connected += 1
            # Two tasks send (frames, mark echoes); the fast client is one-task-at-a-time,
            # so sends take turns (a partial send must not interleave with another).
            lock = trio.Lock()

            async def send(text: str) -> None:
                async with lock:
                    await ws.send_message(text)

            await send(json.dumps({"event": "connected", "protocol": "Call"}))
            await send(json.dumps({
                "event": "start", "streamSid": stream_sid,
                "start": {"streamSid": stream_sid, "callSid": call_sid, "tracks": ["inbound"],
                          "customParameters": {}, "mediaFormat": {
                              "encoding": "audio/x-mulaw", "sampleRate": 8000,
                              "channels": 1}}}))

            async def read() -> None:
                media = 0
                while True:
                    message = json.loads(await ws.get_message())
                    kind = message.get("event")
                    if kind == "media":
                        if media % PIECES_PER_REPLY == 0:
                            reply = media // PIECES_PER_REPLY + 1
                            sent = sent_at.pop(reply * FRAMES_PER_REPLY, None)
                            if sent is not None:
                                totals.latencies.append(time.monotonic() - sent)
                        media += 1
                        totals.media += 1
                    elif kind == "mark":
                        totals.marks += 1
                        await send(json.dumps({
                            "event": "mark", "streamSid": stream_sid,
                            "mark": {"name": message["mark"]["name"]}}))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                start = trio.current_time()
                frame = 0
                while trio.current_time() - start < seconds:
                    frame += 1
                    due = start + frame * 0.020
                    await trio.sleep_until(due)
                    lateness = trio.current_time() - due
                    totals.send_lateness.append(lateness)
                    if lateness > 0.020:
                        totals.late_frames += 1
                    if frame % FRAMES_PER_REPLY == 0:
                        sent_at[frame] = time.monotonic()
                    await send(
                        f'{{"event":"media","streamSid":"{stream_sid}",'
                        f'"media":{{"track":"inbound","chunk":"{frame}",'
                        f'"timestamp":"{frame * 20}","payload":"{FRAME}"}}}}')
                    totals.frames += 1
                stopping = True
                await send(json.dumps({"event": "stop", "streamSid": stream_sid}))
                nursery.cancel_scope.cancel()
    except Exception as exc:  # a closed socket after our stop is the normal end
        if not stopping:
            leaf: BaseException = exc
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            totals.errors.append(type(leaf).__name__)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    totals = Totals()
    pid = args.server_pid
    cpu0 = cpu_seconds(pid) if pid else None
    own0 = own_cpu_seconds()
    t0 = time.monotonic()
    async with trio.open_nursery() as nursery:
        for n in range(args.calls):
            nursery.start_soon(one_call, args.url, n, args.seconds, totals, args.client)
            if args.ramp:
                await trio.sleep(args.ramp / args.calls)
    wall = time.monotonic() - t0
    server: dict[str, Any] = {}
    if pid:
        assert cpu0 is not None
        server = {"cpu_percent": round(100 * (cpu_seconds(pid) - cpu0) / wall, 1),
                  "rss_kb": rss_kb(pid)}
    send_lateness = sorted(totals.send_lateness)
    result: dict[str, Any] = {
        "calls": args.calls, "connected": totals.connected, "seconds": args.seconds,
        "wall_s": round(wall, 2), "errors": len(totals.errors),
        "error_kinds": sorted(set(totals.errors)),
        "frames_sent": totals.frames, "late_frames": totals.late_frames,
        "media_received": totals.media, "marks": totals.marks,
        "replies": len(totals.latencies), "reply_latency": summarize_ms(sorted(totals.latencies)),
        "send_lateness": summarize_ms(send_lateness),
        "server": server,
        "client_cpu_percent": round(100 * (own_cpu_seconds() - own0) / wall, 1),
    }
    if args.raw:
        histogram: dict[int, int] = {}
        for value in send_lateness:
            bucket = math.ceil(value * 10_000)  # 0.1 ms buckets, upper bound
            histogram[bucket] = histogram.get(bucket, 0) + 1
        result["raw"] = {
            "reply_latency_ms": [round(v * 1000, 3) for v in totals.latencies],
            "send_lateness_hist_0.1ms": {str(k): v for k, v in sorted(histogram.items())},
        }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--ramp", type=float, default=2.0, help="seconds over which calls start")
    p.add_argument("--server-pid", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--client", choices=("fast", "trio-websocket"), default="fast",
                   help="fast: _fastws.py (about half the client CPU); trio-websocket: wsproto")
    p.add_argument("--raw", action="store_true",
                   help="add raw reply latencies and a send-lateness histogram (for merging)")
    p.add_argument("--quiet", action="store_true", help="do not print the result")
    args = p.parse_args(argv)
    raise_fd_limit()
    result = trio.run(run, args)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text)
    if not args.quiet:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
