#!/usr/bin/env python3
"""Plot full-reply latency (p50 and p99) against the number of paced calls, per server.

Reads a side_by_side.py result (its ``sweeps``) and/or capacity.py results (their
``runs``; give them a label with LABEL=PATH), and writes a PNG. Needs matplotlib, a
bench-only optional dependency (``pip install matplotlib``).

    python bench/plot.py bench/results/2026-11-25T221639.json -o bench/results/latency.png
    python bench/plot.py ours=cap-ours.json ref=cap-ref.json -o capacity.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

Series = dict[str, list[tuple[int, float | None, float | None]]]


def load_series(specs: list[str]) -> tuple[Series, float | None]:
    """Turn result files into {label: [(calls, p50, p99), ...]} and a p99 target if known."""
    series: Series = {}
    target = None
    for spec in specs:
        label, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        doc: dict[str, Any] = json.loads(Path(path).read_text())
        if doc.get("tool") == "side_by_side":
            for server, points in doc.get("sweeps", {}).items():
                key = f"{label}:{server}" if label else server
                series[key] = [
                    (p["calls"], p["full_reply_ms"]["p50"], p["full_reply_ms"]["p99"])
                    for p in points
                ]
        elif doc.get("tool") == "capacity":
            target = doc["params"].get("p99_target_ms", target)
            key = label or Path(path).stem
            series[key] = [
                (
                    r["calls"],
                    (r.get("full_reply_ms") or {}).get("p50"),
                    (r.get("full_reply_ms") or {}).get("p99"),
                )
                for r in doc["runs"]
            ]
        else:
            raise SystemExit(f"{path}: not a side_by_side or capacity result")
    return series, target


def plot(series: Series, target: float | None, out: Path, title: str) -> None:
    """Draw p50 (dashed) and p99 (solid) per series on log axes and save a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError as exc:
        raise SystemExit("plot.py needs matplotlib: pip install matplotlib") from exc
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for i, (label, points) in enumerate(sorted(series.items())):
        pts = sorted(points)
        color = f"C{i}"
        xs50 = [n for n, p50, _ in pts if p50 is not None]
        ys50 = [p50 for _, p50, _ in pts if p50 is not None]
        xs99 = [n for n, _, p99 in pts if p99 is not None]
        ys99 = [p99 for _, _, p99 in pts if p99 is not None]
        ax.plot(xs99, ys99, "o-", color=color, label=f"{label} p99")
        ax.plot(xs50, ys50, "s--", color=color, alpha=0.7, label=f"{label} p50")
    if target:
        ax.axhline(target, color="grey", linestyle=":", label=f"target p99 {target:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    calls = sorted({n for points in series.values() for n, _, _ in points})
    ax.set_xticks(calls)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("concurrent calls (paced)")
    ax.set_ylabel("full-reply latency (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and draw."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("results", nargs="+", help="result JSON files, optionally LABEL=PATH")
    p.add_argument("-o", "--out", default="bench/results/latency.png")
    p.add_argument("--title", default="ConversationRelay: latency vs. calls")
    args = p.parse_args(argv)
    series, target = load_series(args.results)
    if not series:
        raise SystemExit("no sweep or capacity runs in the given files")
    plot(series, target, Path(args.out), args.title)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
