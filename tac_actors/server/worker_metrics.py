"""``/metrics`` and ``/status`` of ``serve --workers N``: one scrape answers for every
worker.

Each worker keeps its figures in its own memory and reads them at scrape time (see
:mod:`tac_actors.server.metrics`). A scrape of the shared port lands on one worker, by
the kernel's choice, so that worker asks its siblings for theirs and answers with all of
them: every series gets a ``worker`` label (``"1"``..``"N"``), and
``tac_worker_up{worker}`` says which workers answered (0: it was restarting or did not
answer within :data:`SIBLING_TIMEOUT`; its series are missing from that scrape). Sums
over workers are the scraper's job (``sum without (worker) (...)``).

prometheus-client's multiprocess mode was not used: it shares only the metric objects
that code updates as events happen (files in a shared directory), and ours are read from
the live actors at scrape time, which keeps prometheus off the turn path.

How siblings are found: each worker writes the loopback address of its private HTTP
server (the hypercorn behind its front door) to a file named by its id in the directory
the parent made (``TAC_WORKER_DIR``). A sibling is asked with the header
:data:`LOCAL_HEADER`, which makes it answer for itself only. The ``hypercorn`` engine has
no private server: there each scrape answers for the worker it reached, labelled.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["LOCAL_HEADER", "announce", "gather", "merge_metrics", "merge_status",
           "worker_id"]

log = logging.getLogger("tac_actors.workers")

WORKER_ID = "TAC_WORKER_ID"
WORKER_DIR = "TAC_WORKER_DIR"
#: sent to a sibling: answer for yourself only
LOCAL_HEADER = "X-TAC-Worker-Local"
SIBLING_TIMEOUT = 2.0


def worker_id() -> str | None:
    """This process's worker id, or ``None`` when it is not a worker of ``--workers N``."""
    return os.environ.get(WORKER_ID) or None


def announce(host: str, port: int) -> None:
    """Publish this worker's private address to its siblings (nothing outside a worker)."""
    worker, folder = worker_id(), os.environ.get(WORKER_DIR)
    if worker is None or not folder:
        return
    path = Path(folder) / worker
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{host}:{port}")
    temporary.replace(path)  # a sibling never reads half an address


def _siblings() -> dict[str, str]:
    worker, folder = worker_id(), os.environ.get(WORKER_DIR)
    if worker is None or not folder:
        return {}
    found = {}
    for path in Path(folder).iterdir():
        if path.suffix or path.name == worker:
            continue
        try:
            found[path.name] = path.read_text().strip()
        except OSError:
            continue
    return found


async def gather(path: str, headers: Mapping[str, str]) -> dict[str, str | None]:
    """Ask every sibling for ``path`` (with :data:`LOCAL_HEADER`), concurrently, each
    within :data:`SIBLING_TIMEOUT`: worker id → body, or ``None`` if it did not answer."""
    siblings = await trio.to_thread.run_sync(_siblings)
    answers: dict[str, str | None] = dict.fromkeys(siblings)
    if not siblings:
        return answers

    async def ask(client: httpx.AsyncClient, worker: str, address: str) -> None:
        try:
            response = await client.get(f"http://{address}{path}",
                                        headers={**headers, LOCAL_HEADER: "1"})
            if response.status_code == 200:
                answers[worker] = response.text
        except httpx.HTTPError as exc:
            log.debug("worker %s did not answer %s: %s", worker, path, exc)

    async with httpx.AsyncClient(timeout=SIBLING_TIMEOUT) as client:
        async with trio.open_nursery() as nursery:
            for worker, address in siblings.items():
                nursery.start_soon(ask, client, worker, address)
    return answers


class _Merged(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def merge_metrics(texts: Mapping[str, str | None]) -> bytes:
    """One Prometheus text document from each worker's own (worker id → text, ``None``
    for a worker that did not answer), every sample labelled with its worker."""
    families: dict[str, Metric] = {}
    up = GaugeMetricFamily("tac_worker_up", "Whether the worker answered this scrape.",
                           labels=["worker"])
    for worker, text in sorted(texts.items()):
        up.add_metric([worker], 0.0 if text is None else 1.0)
        if text is None:
            continue
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation,
                                                        family.type, family.unit)
            for sample in family.samples:
                merged.samples.append(sample._replace(labels={**sample.labels,
                                                              "worker": worker}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([up, *families.values()]))
    return generate_latest(registry)


def merge_status(documents: Mapping[str, str | None]) -> dict[str, Any]:
    """One ``/status`` document from each worker's (worker id → JSON text or ``None``):
    the counts summed, the conversations listed with their worker, ``workers`` saying
    which answered."""
    merged: dict[str, Any] = {"status": "ok", "live": 0, "started": 0, "ended": 0,
                              "restarts": 0, "conversations": [], "workers": {}}
    for worker, text in sorted(documents.items()):
        if text is None:
            merged["workers"][worker] = "no answer"
            continue
        document = json.loads(text)
        merged["workers"][worker] = document.get("status", "ok")
        for key in ("live", "started", "ended", "restarts"):
            merged[key] += int(document.get(key, 0))
        merged["conversations"].extend({**entry, "worker": worker}
                                       for entry in document.get("conversations", []))
        for key in ("listed_limit", "dev"):
            if key in document:
                merged[key] = document[key]
    return merged
