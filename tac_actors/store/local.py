"""The conversation store in one process's memory (see :mod:`tac_actors.store.base`).

State lives in a :class:`LocalState`; several :class:`LocalStore` views with different
node ids may share one (:meth:`LocalStore.peer`), which is how the deterministic tests run
several "processes" in one. Times are trio's clock (a ``MockClock`` drives leases in
tests). Bounded: dedupe keys and conversations' ids are forgotten oldest first past
``capacity``; a notice box holds at most ``capacity`` notices (the oldest are dropped: the
owner's periodic read of its queues covers a lost notice).
"""

from __future__ import annotations

import itertools
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence

import attrs
import trio

from tac_actors.store.base import Accepted, Lease, Pending, QueuedText

__all__ = ["LocalState", "LocalStore"]


@attrs.define(eq=False)
class _Conversation:
    queue: OrderedDict[str, QueuedText] = attrs.field(factory=OrderedDict)
    ids: dict[str, bool] = attrs.field(factory=dict)  # id -> answered
    handed_off: bool = False
    lease: tuple[str, float] | None = None  # (token, expires at)
    fence: int = 0


@attrs.define(eq=False)
class LocalState:
    """What :class:`LocalStore` views share."""

    capacity: int = 100_000
    conversations: OrderedDict[str, _Conversation] = attrs.field(factory=OrderedDict)
    seen: OrderedDict[str, float] = attrs.field(factory=OrderedDict)  # key -> expires at
    boxes: dict[str, deque[str]] = attrs.field(factory=dict)
    posted: dict[str, trio.Event] = attrs.field(factory=dict)
    entries: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    def of(self, conversation_id: str) -> _Conversation:
        found = self.conversations.get(conversation_id)
        if found is None:
            found = self.conversations[conversation_id] = _Conversation()
            while len(self.conversations) > self.capacity:
                oldest, entry = next(iter(self.conversations.items()))
                if entry.queue or entry.lease is not None:
                    break
                del self.conversations[oldest]
        self.conversations.move_to_end(conversation_id)
        return found


class LocalStore:
    """:class:`~tac_actors.store.base.ConversationStore` in memory."""

    def __init__(self, state: LocalState | None = None, *, node: str | None = None) -> None:
        self.state = state or LocalState()
        self.node = node or "local-" + uuid.uuid4().hex[:12]
        self.state.boxes.setdefault(self.node, deque())

    def peer(self, node: str | None = None) -> LocalStore:
        """Another node's view of the same state."""
        return LocalStore(self.state, node=node)

    async def seen(self, key: str, ttl: float) -> bool:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        seen = self.state.seen
        expires = seen.get(key)
        if expires is not None and expires > now:
            return False
        seen[key] = now + ttl
        seen.move_to_end(key)
        while len(seen) > self.state.capacity:
            seen.popitem(last=False)
        return True

    async def forget(self, key: str) -> None:
        await trio.lowlevel.checkpoint()
        self.state.seen.pop(key, None)

    async def accept(self, conversation_id: str, communication_id: str, payload: str
                     ) -> Accepted:
        await trio.lowlevel.checkpoint()
        conversation = self.state.of(conversation_id)
        owner = self._holder(conversation)
        if conversation.handed_off:
            return Accepted("handed_off", owner)
        if communication_id in conversation.ids:
            return Accepted("duplicate", owner)
        conversation.ids[communication_id] = False
        entry = f"{next(self.state.entries)}-0"
        conversation.queue[communication_id] = QueuedText(entry, communication_id, payload)
        return Accepted("queued", owner)

    async def pending(self, conversation_id: str, *, limit: int = 512) -> Pending:
        await trio.lowlevel.checkpoint()
        conversation = self.state.of(conversation_id)
        return Pending(conversation.handed_off,
                       tuple(itertools.islice(conversation.queue.values(), limit)))

    async def answered(self, conversation_id: str, communication_ids: Sequence[str]
                       ) -> None:
        await trio.lowlevel.checkpoint()
        conversation = self.state.of(conversation_id)
        for key in communication_ids:
            conversation.ids[key] = True
            conversation.queue.pop(key, None)

    async def states(self, conversation_id: str, communication_ids: Sequence[str]
                     ) -> dict[str, str] | None:
        await trio.lowlevel.checkpoint()
        found = self.state.conversations.get(conversation_id)
        if found is None or not found.ids:
            return None
        return {key: "a" if found.ids[key] else "q" for key in communication_ids
                if key in found.ids}

    async def set_handed_off(self, conversation_id: str, value: bool) -> None:
        await trio.lowlevel.checkpoint()
        self.state.of(conversation_id).handed_off = value

    def _holder(self, conversation: _Conversation) -> str | None:
        lease = conversation.lease
        if lease is None:
            return None
        if lease[1] <= trio.current_time():
            conversation.lease = None
            return None
        return lease[0].partition("|")[0]

    async def claim(self, conversation_id: str, ttl: float) -> Lease | None:
        await trio.lowlevel.checkpoint()
        conversation = self.state.of(conversation_id)
        if self._holder(conversation) is not None:
            return None
        conversation.fence += 1
        lease = Lease(conversation_id, self.node, conversation.fence)
        conversation.lease = (lease.token, trio.current_time() + ttl)
        return lease

    async def renew(self, lease: Lease, ttl: float) -> bool:
        await trio.lowlevel.checkpoint()
        conversation = self.state.of(lease.conversation_id)
        self._holder(conversation)  # expire first
        if conversation.lease is None or conversation.lease[0] != lease.token:
            return False
        conversation.lease = (lease.token, trio.current_time() + ttl)
        return True

    async def release(self, lease: Lease) -> None:
        await trio.lowlevel.checkpoint()
        conversation = self.state.of(lease.conversation_id)
        if conversation.lease is not None and conversation.lease[0] == lease.token:
            conversation.lease = None

    async def owner(self, conversation_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return self._holder(self.state.of(conversation_id))

    async def notify(self, node: str, conversation_id: str) -> None:
        await trio.lowlevel.checkpoint()
        box = self.state.boxes.setdefault(node, deque())
        box.append(conversation_id)
        while len(box) > self.state.capacity:
            box.popleft()
        event = self.state.posted.pop(node, None)
        if event is not None:
            event.set()

    async def notices(self, *, wait: float) -> list[str]:
        box = self.state.boxes[self.node]
        if not box:
            event = self.state.posted.setdefault(self.node, trio.Event())
            with trio.move_on_after(wait):
                await event.wait()
        else:
            await trio.lowlevel.checkpoint()
        found = list(box)
        box.clear()
        return found

    async def queued_conversations(self, *, limit: int = 10_000) -> list[str]:
        await trio.lowlevel.checkpoint()
        return list(itertools.islice(
            (c for c, v in self.state.conversations.items() if v.queue), limit))
