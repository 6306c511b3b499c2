"""The conversation store: what the processes serving one app share about text
conversations, behind one small interface.

Two implementations keep the same promises: :class:`~tac_actors.store.local.LocalStore`
(one process, in memory: the embedded default and the deterministic tests) and
:class:`~tac_actors.store.redis.RedisStore` (Redis or Valkey through coredis: many
processes on many hosts). The Orchestrator's communications stay the durable log; the
store holds only what routes a text to one live owner and what keeps replays single.

Per text conversation the store holds:

* **the lease**: which process (``node``) owns the conversation now, until ``ttl``
  seconds pass without a renewal; every claim draws a new **fencing number** from a
  per-conversation counter, so a holder that paused past its lease can tell (its
  renewal fails) and every holder is told apart;
* **the queue**: the texts accepted and not answered yet, in acceptance order (one
  consumer, the owner, reads it, so the order holds across processes);
* **the ids**: every accepted text's communication id, queued or answered (webhook and
  reconcile duplicates are refused by id, on every process);
* **the handed-off mark**: the conversation belongs to a human (or is CLOSED): texts are
  refused.

Across conversations: **dedupe keys** (webhook idempotency tokens) and a **notice box**
per process (a conversation id posted to its owner: "your queue grew, read it").

Every method may raise :class:`StoreError` (the store cannot be reached); none raises
anything else for a well-formed call. Cancellation: a cancelled call may or may not have
taken effect (as with any request to a server); every write is idempotent or fenced so
that doing it again is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import attrs

__all__ = ["ConversationStore", "Lease", "Pending", "QueuedText", "StoreError", "Taken"]

#: what :meth:`ConversationStore.accept` did with a text
Taken = Literal["queued", "duplicate", "handed_off"]


class StoreError(Exception):
    """The store could not be reached or answered in error (the call may or may not have
    taken effect)."""


@attrs.frozen
class Lease:
    """A held lease: ``node`` owns ``conversation_id`` under fencing number ``fence``."""

    conversation_id: str
    node: str
    fence: int

    @property
    def token(self) -> str:
        """The value the store keeps under the lease key (compared on renewal)."""
        return f"{self.node}|{self.fence}"


@attrs.frozen
class QueuedText:
    """A text waiting for its reply: its place in the queue (``entry``, increasing), its
    communication id and the serialized event (``payload``)."""

    entry: str
    communication_id: str
    payload: str


@attrs.frozen
class Pending:
    """A conversation's queue as read now (oldest first) and whether it was handed off."""

    handed_off: bool
    items: tuple[QueuedText, ...]


@attrs.frozen
class Accepted:
    """What :meth:`ConversationStore.accept` did, and who owned the conversation then
    (``owner`` node id, ``None`` when nobody held its lease)."""

    outcome: Taken
    owner: str | None


class ConversationStore(Protocol):
    """What the processes serving one app share (see the module docstring)."""

    #: this process's id (unique per process start: a restarted process is a new node)
    node: str

    async def seen(self, key: str, ttl: float) -> bool:
        """Record a dedupe key for ``ttl`` seconds: True the first time, False after."""
        ...

    async def forget(self, key: str) -> None:
        """Drop a dedupe key (its request failed and may be retried)."""
        ...

    async def accept(self, conversation_id: str, communication_id: str, payload: str
                     ) -> Accepted:
        """Queue a text unless its id is known or the conversation was handed off;
        atomic with the look-up of the conversation's owner."""
        ...

    async def pending(self, conversation_id: str, *, limit: int = 512) -> Pending:
        """The conversation's queue (at most ``limit`` texts, oldest first)."""
        ...

    async def answered(self, conversation_id: str, communication_ids: Sequence[str]
                       ) -> None:
        """The texts were answered (or need no answer): out of the queue, and known as
        answered for duplicates."""
        ...

    async def states(self, conversation_id: str, communication_ids: Sequence[str]
                     ) -> dict[str, str] | None:
        """What the store knows of these texts: ``"q"`` (queued) or ``"a"`` (answered)
        per known id; ``None`` when it holds no record of the conversation at all (new
        to the store, forgotten after ``retention``, or lost with Redis's data)."""
        ...

    async def set_handed_off(self, conversation_id: str, value: bool) -> None:
        """Mark (or unmark, after a failed handoff) the conversation as not the bot's."""
        ...

    async def claim(self, conversation_id: str, ttl: float) -> Lease | None:
        """Take the conversation's lease for ``ttl`` seconds with a new fencing number;
        ``None`` when another holder has it."""
        ...

    async def renew(self, lease: Lease, ttl: float) -> bool:
        """Extend the lease when it is still exactly this one (compare-and-extend);
        False when it was lost (expired, or claimed by another)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up if it is still this one."""
        ...

    async def owner(self, conversation_id: str) -> str | None:
        """The node holding the conversation's lease, if any."""
        ...

    async def notify(self, node: str, conversation_id: str) -> None:
        """Post ``conversation_id`` to ``node``'s notice box."""
        ...

    async def notices(self, *, wait: float) -> list[str]:
        """Conversation ids posted to this node since the last call, waiting up to
        ``wait`` seconds for one (an empty list when none came)."""
        ...

    async def queued_conversations(self, *, limit: int = 10_000) -> list[str]:
        """Conversations with texts queued (at most ``limit``), for the takeover sweep."""
        ...
