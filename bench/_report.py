"""A readable table of one voice_load result document."""

from __future__ import annotations

from typing import Any

from _stats import fmt


def _lat_row(label: str, s: dict[str, Any]) -> str:
    if not s or not s.get("n"):
        return f"  {label:<24} -"
    return (
        f"  {label:<24} p50 {fmt(s['p50']):>8}  p90 {fmt(s['p90']):>8}  "
        f"p99 {fmt(s['p99']):>8}  max {fmt(s['max']):>8}   (n={s['n']})"
    )


def format_table(doc: dict[str, Any]) -> str:
    """Render the figures of a voice_load document as aligned text lines."""
    p, f = doc["params"], doc["figures"]
    srv, cli, err = f["server"], f["client"], f["errors"]
    lines = [
        f"voice_load  {doc['date']}  mode={p['mode']}  calls={p['calls']}  turns={p['turns']}"
        f"  url={p['url']}",
        f"  {'connected':<24} {f['connected']}/{f['calls']} in {fmt(f['connect']['total_s'])} s",
        _lat_row("connect (ms)", f["connect"]["per_call_ms"]),
    ]
    if p["mode"] != "idle":
        lines += [
            f"  {'turns':<24} {f['turns_done']}/{f['turns_expected']} in "
            f"{fmt(f['duration_s'])} s = {fmt(f['turns_per_s'], 1)} turns/s",
            _lat_row("first token (ms)", f["first_token_ms"]),
            _lat_row("full reply (ms)", f["full_reply_ms"]),
        ]
        if p["mode"] in ("stream", "bargein") or (f["tokens_per_turn"] or 0) > 1:
            lines.append(
                f"  {'tokens':<24} {f['tokens']} ({fmt(f['tokens_per_turn'])}/turn, "
                f"{fmt(f['tokens_per_s'], 0)}/s)"
            )
        if p["mode"] == "bargein":
            lines += [
                _lat_row("barge-in stop (ms)", f["barge_stop_ms"]),
                f"  {'late tokens after ack':<24} {f['late_tokens']} "
                f"(in {f['turns_with_late_tokens']} turns); before ack "
                f"{f['tokens_after_interrupt_before_ack']}; reply already ended "
                f"{f['barge_after_reply_end']}",
            ]
    lines.append(
        f"  {'errors':<24} {err['total']}  ("
        + ", ".join(f"{k} {v}" for k, v in err.items() if k != "total")
        + ")"
    )
    if srv["pid"] is not None:
        lines.append(
            f"  {'server pid ' + str(srv['pid']):<24} cpu/turn {fmt(srv['cpu_ms_per_turn'], 3)} ms"
            f" (sched {fmt(srv.get('cpu_sched_ms_per_turn'), 3)})"
            f"  util {fmt(srv['cpu_util'])}  rss {srv['rss_before_kb']} -> "
            f"{srv['rss_connected_kb']} KB = {fmt(srv['rss_per_call_kb'])} KB/call"
        )
    if p["mode"] != "idle":
        lines.append(
            f"  {'client (this process)':<24} cpu/turn {fmt(cli['cpu_ms_per_turn'], 3)} ms"
            f"  util {fmt(cli['cpu_util'])}  codec {cli['codec']}"
            f"  transport {cli.get('transport', 'trio-websocket')}"
        )
        if (cli["cpu_util"] or 0) > 0.9:
            lines.append("  WARNING: the client used >90% of a core: it may be the bottleneck")
    return "\n".join(lines)
