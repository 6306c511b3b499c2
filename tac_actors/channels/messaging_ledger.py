"""Which inbound texts were answered: the messaging channel's ledger.

The Conversation Orchestrator stores every inbound text as a Communication with a stable
id before it calls our webhook, so its log is the durable record of what we owe. What we
keep here is only what the log cannot tell: which of those texts this process has
already taken on or answered.

Per conversation:

* ``pending``: texts accepted in this process (queued, in a mailbox or being answered);
* ``answered``: texts whose reply was sent (or whose turn chose to send nothing);
* ``baseline``: whether the texts from before this process were classified, once, by
  :func:`pair_replies` (what a restarted server knows about the past).

Reconcile then owes a reply to every customer text in the log that is neither answered
nor pending. The ledger is bounded (``capacity`` conversations, least recently used
first out; ``MAX_IDS`` answered ids per conversation); what it forgets is classified
again from the log, and a replayed turn sends nothing new because every reply carries an
idempotency key (see :mod:`~tac_actors.channels.messaging_outbox`).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial

import attrs

from tac_actors.services.orchestrator import Communication

__all__ = ["ConversationLedger", "Ledger", "pair_replies"]

#: answered ids kept per conversation (the oldest are forgotten first)
MAX_IDS = 2_000


@attrs.define(eq=False)
class ConversationLedger:
    """What one conversation's texts became in this process (see the module docstring)."""

    answered: OrderedDict[str, None] = attrs.field(factory=OrderedDict)
    pending: set[str] = attrs.field(factory=set)
    baseline: bool = False
    #: the conversation was handed to a human (its door is closed)
    handed_off: bool = False
    #: whether this process read the conversation's log before feeding its actor
    primed: bool = False
    #: position in the log of the texts last read (orders a backlog by the log)
    positions: dict[str, int] = attrs.field(factory=dict)
    #: when (trio clock) the conversation's state was last read as open
    door_seen_open: float | None = None
    #: the log as a reconcile just read it, for the next actor's history (then dropped)
    fresh_log: tuple[Communication, ...] | None = None
    #: told the ids newly marked answered (the shared store's acks), if set
    sink: Callable[[list[str]], None] | None = None

    def owes(self, communication_id: str) -> bool:
        """True when the text is neither answered nor being answered here."""
        return communication_id not in self.answered and communication_id not in self.pending

    def mark_answered(self, ids: Iterable[str]) -> None:
        marked = []
        for key in ids:
            self.pending.discard(key)
            self.answered[key] = None
            self.answered.move_to_end(key)
            marked.append(key)
        if self.sink is not None and marked:
            self.sink(marked)
        while len(self.answered) > MAX_IDS:
            self.answered.popitem(last=False)


class Ledger:
    """:class:`ConversationLedger` per conversation id, bounded (LRU)."""

    def __init__(self, capacity: int, *,
                 on_answered: Callable[[str, list[str]], None] | None = None) -> None:
        self.capacity = capacity
        self.on_answered = on_answered
        self._items: OrderedDict[str, ConversationLedger] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, conversation_id: str) -> ConversationLedger | None:
        return self._items.get(conversation_id)

    def of(self, conversation_id: str) -> ConversationLedger:
        """The conversation's ledger, made when first needed."""
        found = self._items.get(conversation_id)
        if found is None:
            found = self._items[conversation_id] = ConversationLedger()
            if self.on_answered is not None:
                found.sink = partial(self.on_answered, conversation_id)
            while len(self._items) > self.capacity:
                oldest, entry = next(iter(self._items.items()))
                if entry.pending:  # never forget texts being answered: evict later
                    break
                del self._items[oldest]
        self._items.move_to_end(conversation_id)
        return found

    def take(self, conversation_id: str, communication_id: str) -> bool:
        """Record that this process now answers the text; False when it already did or
        does (a duplicate)."""
        entry = self.of(conversation_id)
        if not entry.owes(communication_id):
            return False
        entry.pending.add(communication_id)
        return True

    def answered(self, conversation_id: str, ids: Iterable[str]) -> None:
        self.of(conversation_id).mark_answered(ids)

    def release(self, conversation_id: str, ids: Iterable[str]) -> None:
        """The texts were not answered after all (dropped at shutdown, backlog full, an
        undelivered reply given up): reconcile owes them again."""
        entry = self._items.get(conversation_id)
        if entry is not None:
            entry.pending.difference_update(ids)

    def release_all(self, conversation_id: str) -> int:
        """The conversation's actor ended: whatever it had not answered is owed again.
        Returns how many texts that was."""
        entry = self._items.get(conversation_id)
        if entry is None:
            return 0
        count = len(entry.pending)
        entry.pending.clear()
        return count


def pair_replies(communications: Sequence[Communication], *,
                 is_ours: Callable[[Communication], bool],
                 is_text: Callable[[Communication], bool]
                 ) -> tuple[list[str], list[str]]:
    """Classify a conversation's log with no other knowledge: ``(answered, owed)`` ids of
    customer texts, oldest first.

    Texts are answered in arrival order, one reply message each (a reply, the fallback
    or timeout words), so each message of ours answers the oldest customer text before
    it that has none yet. Exact under the default policy; an app that sends more than one
    message per text (``session.controls.send_text``) or none makes it err by one: a
    text is then taken for answered (first case) or owed (second, and its replayed reply
    is new, because nothing was sent under its key).
    """
    waiting: deque[str] = deque()
    answered: list[str] = []
    for communication in communications:
        if is_ours(communication):
            if waiting:
                answered.append(waiting.popleft())
        elif is_text(communication):
            waiting.append(communication.id)
    return answered, list(waiting)
