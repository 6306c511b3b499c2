"""The conversation store's promises, one test body for both implementations (in memory
and a real Redis). Lease expiry needs time to pass on the store's clock: those tests use
leases of 0.2 s and poll for the takeover under a deadline."""

from __future__ import annotations

import trio

from tac_actors.store import Lease

from .conftest import MakeStore


async def test_texts_are_queued_once_in_order_until_answered(make_store: MakeStore) -> None:
    a, b = make_store("a"), make_store("b")
    assert (await a.accept("c1", "m1", "p1")).outcome == "queued"
    assert (await b.accept("c1", "m2", "p2")).outcome == "queued"
    assert (await b.accept("c1", "m1", "p1 again")).outcome == "duplicate"
    pending = await a.pending("c1")
    assert [(q.communication_id, q.payload) for q in pending.items] == [
        ("m1", "p1"), ("m2", "p2")]
    assert pending.items[0].entry != pending.items[1].entry
    assert not pending.handed_off
    assert await a.queued_conversations() == ["c1"]
    await b.answered("c1", ["m1"])
    assert [q.communication_id for q in (await a.pending("c1")).items] == ["m2"]
    assert (await a.accept("c1", "m1", "p1")).outcome == "duplicate"  # answered stays known
    await a.answered("c1", ["m2"])
    assert (await b.pending("c1")).items == ()
    assert await b.queued_conversations() == []
    assert [q.communication_id for q in (await a.pending("c2")).items] == []


async def test_a_handed_off_conversation_refuses_texts(make_store: MakeStore) -> None:
    a, b = make_store("a"), make_store("b")
    await a.set_handed_off("c1", True)
    assert (await b.accept("c1", "m1", "p")).outcome == "handed_off"
    assert (await b.pending("c1")).handed_off
    await b.set_handed_off("c1", False)
    assert (await a.accept("c1", "m1", "p")).outcome == "queued"


async def test_one_holder_per_lease_with_increasing_fences(make_store: MakeStore) -> None:
    a, b = make_store("a"), make_store("b")
    lease = await a.claim("c1", 30)
    assert isinstance(lease, Lease) and lease.node == "a"
    assert await b.claim("c1", 30) is None
    assert await b.owner("c1") == "a"
    assert (await b.accept("c1", "m1", "p")).owner == "a"
    assert await a.renew(lease, 30)
    forged = Lease("c1", "b", lease.fence)
    assert not await b.renew(forged, 30)  # compare-and-extend: only the exact holder
    await b.release(forged)  # compare-and-delete: a stranger's release does nothing
    assert await a.owner("c1") == "a"
    await a.release(lease)
    assert await a.owner("c1") is None
    second = await b.claim("c1", 30)
    assert second is not None and second.fence > lease.fence
    assert not await a.renew(lease, 30)  # the old holder learns it lost the lease


async def test_an_expired_lease_is_taken_over_with_a_higher_fence(
        make_store: MakeStore) -> None:
    a, b = make_store("a"), make_store("b")
    lease = await a.claim("c1", 0.2)
    assert lease is not None
    with trio.fail_after(5):
        while (taken := await b.claim("c1", 30)) is None:  # noqa: ASYNC110 (the store's clock)
            await trio.sleep(0.05)
    assert taken.fence > lease.fence and await a.owner("c1") == "b"
    assert not await a.renew(lease, 30)  # after a pause: the renewal fails, no extension


async def test_dedupe_keys(make_store: MakeStore) -> None:
    a, b = make_store("a"), make_store("b")
    assert await a.seen("token:1", 60)
    assert not await b.seen("token:1", 60)
    await b.forget("token:1")
    assert await a.seen("token:1", 60)


async def test_notices_reach_the_named_node_only(make_store: MakeStore) -> None:
    a, b = make_store("a"), make_store("b")
    await a.notify("b", "c1")
    await a.notify("b", "c2")
    assert await b.notices(wait=1.0) == ["c1", "c2"]
    assert await a.notices(wait=0.05) == []
    assert await b.notices(wait=0.05) == []
    async with trio.open_nursery() as nursery:
        got: list[str] = []

        async def listen() -> None:
            got.extend(await b.notices(wait=5.0))

        nursery.start_soon(listen)
        await trio.sleep(0.05)  # let the blocking read start
        await a.notify("b", "c3")
    assert got == ["c3"]
