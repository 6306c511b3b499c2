"""The emulator itself: Twilio-shaped errors, auth, faults, seeds, persistence."""

from __future__ import annotations

import base64
import gc
import sqlite3
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tac_actors.emulator import (
    EXAMPLE_SEED,
    Database,
    Emulator,
    Faults,
    SeedError,
    read_seed,
    serve_emulator,
)
from tac_actors.emulator import knowledge as knowledge_module
from tac_actors.emulator import server as emulator_server
from tac_actors.emulator.db import fts_query
from tac_actors.emulator.faults import product_of

AUTH = {"Authorization": "Basic " + base64.b64encode(b"SKany:any").decode()}


@pytest.fixture
async def client() -> AsyncIterator[tuple[Emulator, httpx.AsyncClient]]:
    async with Emulator.running(seed=EXAMPLE_SEED) as emu:
        async with httpx.AsyncClient(base_url=emu.url) as http:
            yield emu, http


async def test_missing_auth_is_401_like_twilio(
    client: tuple[Emulator, httpx.AsyncClient],
) -> None:
    _, http = client
    answer = await http.get("/v2/ControlPlane/Configurations/conv_configuration_example")
    assert answer.status_code == 401
    assert answer.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert answer.headers["Twilio-Request-Id"].startswith("RQ")
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


async def test_unknown_resources_and_routes_are_json_404(
    client: tuple[Emulator, httpx.AsyncClient],
) -> None:
    _, http = client
    answer = await http.get("/v2/Conversations/conv_nope", headers=AUTH)
    assert answer.status_code == 404 and answer.json()["code"] == 20404
    answer = await http.get("/v2/Nothing/Here", headers=AUTH)
    assert answer.status_code == 404 and answer.json()["status"] == 404


async def test_bad_input_is_400(client: tuple[Emulator, httpx.AsyncClient]) -> None:
    _, http = client
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v2/Conversations", {"content": b"not json"}),
        ("POST", "/v2/Conversations", {"json": {"configurationId": "conv_unknown"}}),
        ("GET", "/v2/Conversations?pageSize=0", {}),
        ("GET", "/v2/Conversations?pageToken=garbage", {}),
        ("POST", "/v1/Stores/mem_store_example/Profiles/Lookup", {"json": {"idType": "phone"}}),
        (
            "POST",
            "/v2/KnowledgeBases/know_base_example/Search",
            {"json": {"query": "x", "top": 99}},
        ),
        ("POST", "/v2/Flows/FW1/Executions", {"data": {"From": "+1"}}),
    ]
    for method, path, extra in cases:
        answer = await http.request(method, path, headers=AUTH, **extra)
        assert answer.status_code == 400, (path, answer.text)
        assert set(answer.json()) == {"code", "message", "more_info", "status"}


async def test_fault_knobs(client: tuple[Emulator, httpx.AsyncClient]) -> None:
    emu, http = client
    path = "/v2/ControlPlane/KnowledgeBases/know_base_example"
    emu.faults.rate_limited["knowledge"] = 2
    answer = await http.get(path, headers=AUTH)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "2"
    emu.faults.reset()
    emu.faults.error_rate = 1.0
    assert (await http.get(path, headers=AUTH)).status_code == 500
    emu.faults.reset()
    assert (await http.get(path, headers=AUTH)).status_code == 200
    bad = await http.post("/_emulator/faults", json={"down": ["pager"]})
    assert bad.status_code == 400
    assert (await http.get("/_emulator/faults")).json()["down"] == []
    assert [r.status for r in emu.requests(product="knowledge")] == [429, 500, 200]
    listed = (await http.get("/_emulator/requests")).json()["requests"]
    assert listed[-1] == {"method": "GET", "path": path, "product": "knowledge", "status": 200}


def test_faults_update_validates_everything_first() -> None:
    faults = Faults()
    faults.update({"latency": {"memory": 1.5}, "down": ["studio"]})
    assert faults.latency == {"memory": 1.5} and faults.down == {"studio"}
    for bad in (
        {"latency": {"memory": -1}},
        {"errorRate": 2},
        {"html": "memory"},
        {"bogus": 1},
        {"down": ["api"], "errorRate": True},
    ):
        with pytest.raises(ValueError):
            faults.update(bad)
    assert faults.down == {"studio"}
    faults.update({"reset": True})
    assert faults.to_json() == Faults().to_json()


def test_products_by_path() -> None:
    assert product_of("/v2/Conversations/x/Actions") == "conversations"
    assert product_of("/v1/Stores/s/Profiles/Lookup") == "memory"
    assert product_of("/v2/KnowledgeBases/k/Search") == "knowledge"
    assert product_of("/2010-04-01/Accounts/AC1/Messages.json") == "api"
    assert product_of("/_emulator/faults") is None
    assert product_of("/v2/ConversationsX") is None


def test_bm25_orders_documents_and_scores_within_0_1() -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        chunks = knowledge_module.search(emu.db, "know_base_example", "return refund item", 8)
        # stemming: "shipped" finds the shipping and tracking documents
        stemmed = knowledge_module.search(emu.db, "know_base_example", "shipped", 8)
    ids = [c["knowledgeId"] for c in chunks]
    assert ids[0] == "know_knowledge_returns"
    assert "know_knowledge_shipping" not in ids
    scores = [c["score"] for c in chunks]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert {c["knowledgeId"] for c in stemmed} >= {"know_knowledge_shipping"}


def test_seed_errors_name_the_place(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="unknown seed keys"):
        read_seed({"profiles": []})
    with pytest.raises(SeedError, match=r"\$.knowledgeBases\[0\].documents\[0\].content"):
        Emulator(seed={"knowledgeBases": [{"id": "kb", "documents": [{"title": "t"}]}]})
    with pytest.raises(SeedError, match="cannot read seed"):
        read_seed(tmp_path / "missing.json")
    with pytest.raises(SeedError, match="unknown participant"):
        Emulator(
            seed={
                "configurations": [{"id": "c"}],
                "conversations": [
                    {
                        "configurationId": "c",
                        "communications": [{"author": {"participantId": "p"}, "text": "hi"}],
                    }
                ],
            }
        )


def test_example_seed_has_what_the_docs_promise() -> None:
    seed = read_seed(EXAMPLE_SEED)
    assert seed["configurations"][0]["memoryStoreId"] == "mem_store_example"
    assert len(seed["knowledgeBases"][0]["documents"]) == 8
    with Emulator(seed=EXAMPLE_SEED) as emu:
        config = emu.tac_config()
    assert config.conversation_configuration_id == "conv_configuration_example"
    assert config.knowledge_base_id == "know_base_example"


def test_file_database_keeps_state_and_ids(tmp_path: Path) -> None:
    path = str(tmp_path / "emu.sqlite")
    with Database(path) as first:
        ids = [first.new_id("conv_conversation"), first.new_id("FN")]
        first.put("conversation", {"id": ids[0], "status": "ACTIVE"})
    with Database(path) as again:
        assert again.get("conversation", ids[0]) == {"id": ids[0], "status": "ACTIVE"}
        assert again.new_id("conv_conversation") not in ids
    assert ids[1] == "FN" + "0" * 31 + "2"


async def test_serve_emulator_runs_until_cancelled() -> None:
    async with trio.open_nursery() as nursery:
        emu: Emulator = await nursery.start(partial(serve_emulator, "127.0.0.1", 0, EXAMPLE_SEED))
        async with httpx.AsyncClient(base_url=emu.url) as http:
            assert (await http.get("/_emulator/health")).json() == {"status": "ok"}
        nursery.cancel_scope.cancel()


async def test_errors_in_the_block_come_out_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with Emulator.running() as emu:
            assert emu.url.startswith("http://127.0.0.1:")
            raise KeyError("mine")
    with pytest.raises(RuntimeError, match="not serving"):
        _ = emu.url


def test_stopwords_do_not_rank_documents() -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        chunks = knowledge_module.search(emu.db, "know_base_example",
                                         "when are you open on sunday", 8)
    assert [c["knowledgeId"] for c in chunks] == ["know_knowledge_hours"]
    assert fts_query("what is it") == '"what" OR "is" OR "it"'
    assert fts_query("!!!") is None


# -- resources: the database and the in-process transport ------------------------------


def _is_closed(db: Database) -> bool:
    try:
        db.count("conversation")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_leaving_the_block_closes_the_database() -> None:
    with Emulator(seed=EXAMPLE_SEED) as emu:
        assert not _is_closed(emu.db)
    assert _is_closed(emu.db)
    with pytest.raises(KeyError), Emulator() as failing:
        raise KeyError("mine")
    assert _is_closed(failing.db)


def test_a_rejected_seed_closes_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Database] = []

    class Recording(Database):
        def __init__(self, path: str = ":memory:") -> None:
            super().__init__(path)
            opened.append(self)

    monkeypatch.setattr(emulator_server, "Database", Recording)
    with pytest.raises(SeedError):
        Emulator(seed={"knowledgeBases": [{"id": "kb", "documents": [{"title": "t"}]}]})
    assert len(opened) == 1 and _is_closed(opened[0])


async def test_a_cancelled_running_emulator_closes_socket_and_database() -> None:
    with trio.move_on_after(5) as scope:
        async with Emulator.running(seed=EXAMPLE_SEED) as emu:
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught and _is_closed(emu.db)
    with pytest.raises(RuntimeError, match="not serving"):
        _ = emu.url


async def test_in_process_requests_leave_no_generator_behind() -> None:
    # httpx.ASGITransport alone abandons its request-body generator when the app stops
    # reading early (quart-trio 0.13); trio then warns when it is collected, which our
    # warnings filter turns into a failure of this test.
    with Emulator(seed=EXAMPLE_SEED) as emu:
        async with httpx.AsyncClient(transport=emu.transport(),
                                     base_url="http://emulator") as http:
            for _ in range(3):
                assert (await http.get("/_emulator/health")).status_code == 200
                answer = await http.post("/v2/Conversations", headers=AUTH, json={})
                assert answer.status_code < 500
    gc.collect()
    await trio.lowlevel.checkpoint()
