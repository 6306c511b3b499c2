"""The conversation store in Redis (or Valkey), through coredis on trio (see
:mod:`tac_actors.store.base` for the promises).

Keys (``prefix`` defaults to ``tac:``; ``{c}`` is a conversation id):

===========================  =============================================================
``{prefix}lease:{c}``        ``node|fence``, ``SET NX PX`` (in a script that also draws the
                             fence), renewed by compare-and-extend, released by
                             compare-and-delete
``{prefix}fence:{c}``        the fencing counter (``INCR``, never below the clock in ms)
``{prefix}q:{c}``            the queue: a stream of ``id``/``p`` (communication id,
                             payload); entries are deleted once answered. One reader
                             (the owner), so no consumer group: several consumers of one
                             stream would reorder one conversation's texts
``{prefix}ids:{c}``          hash: communication id -> ``q`` (queued) or ``a`` (answered)
``{prefix}off:{c}``          present when the conversation was handed off (or CLOSED)
``{prefix}queued``           set of conversations whose queue is not empty (the sweep)
``{prefix}seen:{key}``       dedupe keys (``SET NX PX``)
``{prefix}box:{node}``       a node's notice box: a stream of conversation ids (capped)
===========================  =============================================================

Per-conversation keys expire ``retention`` seconds after their last write (7 days by
default): a conversation quiet for longer is forgotten here and classified again from
the Orchestrator's log. Each multi-key step is one Lua script, so it is atomic on one
Redis; the keys of one step are not in one hash slot, so Redis Cluster is not supported
(Sentinel or a single primary is). Connection failures and error replies raise
:class:`~tac_actors.store.base.StoreError`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import coredis
import coredis.exceptions
import trio

from tac_actors.store.base import Accepted, Lease, Pending, QueuedText, StoreError, Taken

__all__ = ["RedisStore"]

log = logging.getLogger("tac_actors.store")

RETENTION = 7 * 24 * 3600.0
#: notices kept per box (approximately; the owner's periodic queue read covers a loss)
BOX_CAP = 10_000
#: how long a box lives after its last notice (a dead node's box goes away)
BOX_TTL_MS = 3_600_000

_ACCEPT = """
local holder = redis.call('GET', KEYS[5])
if holder then holder = string.match(holder, '^[^|]*') else holder = '' end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'handed_off', holder} end
if redis.call('HSETNX', KEYS[1], ARGV[1], 'q') == 0 then return {'duplicate', holder} end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('XADD', KEYS[3], '*', 'id', ARGV[1], 'p', ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[4])
return {'queued', holder}
"""

_ANSWERED = """
local want = {}
for i = 3, #ARGV do
  want[ARGV[i]] = true
  redis.call('HSET', KEYS[1], ARGV[i], 'a')
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local entries = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1024)
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'id' and want[fields[j + 1]] then redis.call('XDEL', KEYS[2], entry[1]) end
  end
end
if redis.call('XLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return 1
"""

_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- the counter never goes below the clock in ms: fences keep increasing across a Redis
-- that lost its data (restart without persistence, failover to a stale replica)
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < floor then redis.call('SET', KEYS[2], floor) end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[2])
return fence
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: what a failed request raises (coredis's errors; a dropped socket may surface as OSError)
_FAILURES = (coredis.exceptions.RedisError, OSError, TimeoutError)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore:
    """:class:`~tac_actors.store.base.ConversationStore` over one Redis (see the module
    docstring). Made by :meth:`open`."""

    def __init__(self, client: coredis.Redis[str], *, node: str | None = None,
                 prefix: str = "tac:", retention: float = RETENTION) -> None:
        self._client = client
        self.node = node or uuid.uuid4().hex[:16]
        self.prefix = prefix
        self._retention = str(_ms(retention))
        self._accept = client.register_script(_ACCEPT)
        self._answered = client.register_script(_ANSWERED)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._box_cursor = "0-0"

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, *, node: str | None = None, prefix: str = "tac:",
                   request_timeout: float = 2.0) -> AsyncIterator[RedisStore]:
        """Connect to ``url`` (``redis://host:port/db``) for the block. The first
        request is made lazily: an unreachable Redis fails requests (``StoreError``),
        not the opening. ``request_timeout``: seconds to connect and per reply (a blocking read
        adds its wait)."""
        client: coredis.Redis[str] = coredis.Redis.from_url(
            url, decode_responses=True, connect_timeout=request_timeout,
            stream_timeout=request_timeout,
            verify_version=False)
        # coredis logs every reconnection at INFO, with an empty traceback: a Redis
        # restart would flood the log (our own warnings say what failed, rate-limited)
        logging.getLogger("coredis").setLevel(max(logging.WARNING,
                                                  logging.getLogger("coredis").level))
        async with client:
            yield cls(client, node=node, prefix=prefix)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    async def _call(self, request: Any) -> Any:
        try:
            return await request
        except _FAILURES as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc

    async def seen(self, key: str, ttl: float) -> bool:
        return bool(await self._call(self._client.set(
            self._key("seen", key), "1", condition=coredis.PureToken.NX, px=_ms(ttl))))

    async def forget(self, key: str) -> None:
        await self._call(self._client.delete([self._key("seen", key)]))

    async def accept(self, conversation_id: str, communication_id: str, payload: str
                     ) -> Accepted:
        c = conversation_id
        outcome, holder = await self._call(self._accept(
            keys=[self._key("ids", c), self._key("off", c), self._key("q", c),
                  self.prefix + "queued", self._key("lease", c)],
            args=[communication_id, payload, self._retention, c]))
        taken: Taken = outcome
        return Accepted(taken, holder or None)

    async def pending(self, conversation_id: str, *, limit: int = 512) -> Pending:
        c = conversation_id
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                off = pipe.exists([self._key("off", c)])
                entries = pipe.xrange(self._key("q", c), "-", "+", count=limit)
            handed_off, found = await off, await entries
        except _FAILURES as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc
        items = tuple(QueuedText(str(e.identifier), str(e.field_values["id"]),
                                 str(e.field_values["p"])) for e in found)
        return Pending(bool(handed_off), items)

    async def answered(self, conversation_id: str, communication_ids: Sequence[str]
                       ) -> None:
        if not communication_ids:
            await trio.lowlevel.checkpoint()
            return
        c = conversation_id
        await self._call(self._answered(
            keys=[self._key("ids", c), self._key("q", c), self.prefix + "queued"],
            args=[self._retention, c, *communication_ids]))

    async def states(self, conversation_id: str, communication_ids: Sequence[str]
                     ) -> dict[str, str] | None:
        key = self._key("ids", conversation_id)
        if not communication_ids:
            return None if not await self._call(self._client.exists([key])) else {}
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                exists = pipe.exists([key])
                values = pipe.hmget(key, list(communication_ids))
            known, found = await exists, await values
        except _FAILURES as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc
        if not known:
            return None
        return {k: str(v) for k, v in zip(communication_ids, found, strict=True) if v}

    async def set_handed_off(self, conversation_id: str, value: bool) -> None:
        key = self._key("off", conversation_id)
        if value:
            await self._call(self._client.set(key, "1", px=int(self._retention)))
        else:
            await self._call(self._client.delete([key]))

    async def claim(self, conversation_id: str, ttl: float) -> Lease | None:
        c = conversation_id
        fence = await self._call(self._claim(
            keys=[self._key("lease", c), self._key("fence", c)],
            args=[self.node, _ms(ttl), self._retention]))
        return Lease(c, self.node, int(fence)) if fence else None

    async def renew(self, lease: Lease, ttl: float) -> bool:
        return bool(await self._call(self._renew(
            keys=[self._key("lease", lease.conversation_id)],
            args=[lease.token, _ms(ttl)])))

    async def release(self, lease: Lease) -> None:
        await self._call(self._release(keys=[self._key("lease", lease.conversation_id)],
                                       args=[lease.token]))

    async def owner(self, conversation_id: str) -> str | None:
        value = await self._call(self._client.get(self._key("lease", conversation_id)))
        return value.partition("|")[0] if value else None

    async def notify(self, node: str, conversation_id: str) -> None:
        box = self._key("box", node)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xadd(box, {"c": conversation_id},
                          trim_strategy=coredis.PureToken.MAXLEN, threshold=BOX_CAP,
                          trim_operator=coredis.PureToken.APPROXIMATELY)
                pipe.pexpire(box, BOX_TTL_MS)
        except _FAILURES as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc

    async def notices(self, *, wait: float) -> list[str]:
        box = self._key("box", self.node)
        found = await self._call(self._client.xread(
            {box: self._box_cursor}, count=1000, block=_ms(wait)))
        if not found:
            return []
        entries = found.get(box, ())
        if entries:
            self._box_cursor = entries[-1].identifier
        return [str(e.field_values["c"]) for e in entries]

    async def queued_conversations(self, *, limit: int = 10_000) -> list[str]:
        found: list[str] = []
        cursor = 0
        while True:
            cursor, members = await self._call(self._client.sscan(
                self.prefix + "queued", cursor, count=500))
            found.extend(members)
            if not cursor or len(found) >= limit:
                return found[:limit]
