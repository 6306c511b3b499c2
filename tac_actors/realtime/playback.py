"""What the caller has actually heard of the model's speech, from Twilio's ``mark``
echoes: plain synchronous state, no I/O.

After each piece of audio sent to Twilio the bridge sends a mark (:meth:`Playback.sent`
names it); Twilio echoes a mark when the audio before it has been played
(:meth:`Playback.played`). On a barge-in, :meth:`Playback.cut` says how much of the
current item was heard: that is the ``audio_end_ms`` for ``conversation.item.truncate``
(the reference counts bytes *sent*, which overstates what a caller heard by whatever
Twilio still had buffered). Marks Twilio returns after a ``clear`` carry names
:meth:`cut` forgot, so they cannot inflate the count.

The heard text is an estimate: the transcript received so far, cut in proportion to
heard/sent audio, at a word boundary (the model's transcript is not time-aligned).
"""

from __future__ import annotations

from collections import deque

import attrs

from tac_actors.protocol.realtime import MULAW_BYTES_PER_MS

__all__ = ["Cut", "Playback"]

#: marks awaiting their echo; past it, audio is sent without a mark (the next covers it)
MAX_PENDING_MARKS = 512
#: items remembered as cut, so late deltas of a cancelled response are dropped
REMEMBER_CUT = 32


@attrs.frozen
class Cut:
    """A barge-in cut item ``item_id`` at ``heard_ms`` of the ``sent_ms`` sent."""

    item_id: str
    heard_ms: int
    sent_ms: int
    heard_text: str


class Playback:
    """One call's audio accounting. See the module docstring."""

    def __init__(self) -> None:
        self.item_id: str | None = None
        self.sent_bytes = 0
        self.played_ms = 0
        self._text: list[str] = []
        self._marks: deque[tuple[str, str, int]] = deque()
        self._seq = 0
        self._cut: deque[str] = deque(maxlen=REMEMBER_CUT)

    @property
    def sent_ms(self) -> int:
        return self.sent_bytes // MULAW_BYTES_PER_MS

    @property
    def pending_marks(self) -> int:
        return len(self._marks)

    def is_cut(self, item_id: str) -> bool:
        return item_id in self._cut

    def _switch(self, item_id: str) -> None:
        if item_id != self.item_id:
            self.item_id = item_id
            self.sent_bytes = 0
            self.played_ms = 0
            self._text = []

    def sent(self, item_id: str, size: int) -> str | None:
        """``size`` bytes of ``item_id`` went to Twilio: the name of the mark to send
        after them, or ``None`` (too many marks pending; the next one covers these)."""
        self._switch(item_id)
        self.sent_bytes += size
        if len(self._marks) >= MAX_PENDING_MARKS:
            return None
        self._seq += 1
        name = f"m{self._seq}"
        self._marks.append((name, item_id, self.sent_ms))
        return name

    def transcript(self, item_id: str, delta: str) -> None:
        """Text of what the model says in ``item_id``."""
        self._switch(item_id)
        self._text.append(delta)

    def played(self, name: str) -> bool:
        """Twilio played everything before mark ``name``. False for a name not pending
        (a mark cleared by a barge-in)."""
        if not any(pending == name for pending, _, _ in self._marks):
            return False
        while self._marks:
            pending, item_id, end_ms = self._marks.popleft()
            if item_id == self.item_id:
                self.played_ms = end_ms
            if pending == name:
                return True
        return True  # pragma: no cover - the name was found above

    @property
    def unplayed(self) -> bool:
        """Audio of the current item was sent and not yet played."""
        return self.item_id is not None and self.sent_ms > self.played_ms

    def cut(self) -> Cut | None:
        """A barge-in: how much of the current item was heard (``None``: nothing is
        playing). Forgets the item's pending marks; its later audio is to be dropped."""
        if self.item_id is None or not self.unplayed:
            return None
        item_id, heard, sent = self.item_id, self.played_ms, self.sent_ms
        text = _heard_text("".join(self._text), heard, sent)
        self._cut.append(item_id)
        self._marks.clear()
        self.item_id = None
        self.sent_bytes = self.played_ms = 0
        self._text = []
        return Cut(item_id, heard, sent, text)


def _heard_text(text: str, heard_ms: int, sent_ms: int) -> str:
    if heard_ms <= 0 or not text:
        return ""
    if heard_ms >= sent_ms:
        return text
    end = len(text) * heard_ms // sent_ms
    if end < len(text) and not text[end].isspace():
        space = text.rfind(" ", 0, end)
        end = space if space >= 0 else 0
    return text[:end].rstrip()
