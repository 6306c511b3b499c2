"""What the caller heard, from mark echoes (pure state)."""

from __future__ import annotations

from tac_actors.realtime.playback import MAX_PENDING_MARKS, Playback


def test_marks_advance_what_was_played() -> None:
    p = Playback()
    first = p.sent("item", 800)  # 100 ms
    second = p.sent("item", 800)
    assert (first, second) == ("m1", "m2")
    assert p.unplayed
    assert p.played("m1") and p.played_ms == 100
    assert p.played("m2") and p.played_ms == 200
    assert not p.unplayed
    assert p.cut() is None  # everything was heard: nothing to cut


def test_cut_at_the_last_echoed_mark_with_the_heard_words() -> None:
    p = Playback()
    p.transcript("item", "one two three four five six")
    for _ in range(4):
        p.sent("item", 800)
    assert p.played("m1")
    cut = p.cut()
    assert cut is not None
    assert (cut.item_id, cut.heard_ms, cut.sent_ms) == ("item", 100, 400)
    assert cut.heard_text == "one"  # a quarter of the text, down to a word boundary
    assert p.is_cut("item")
    # marks echoed after the clear are not pending: they change nothing
    assert not p.played("m3")
    assert p.item_id is None and p.pending_marks == 0


def test_nothing_heard_means_no_words() -> None:
    p = Playback()
    p.transcript("item", "hello there")
    p.sent("item", 800)
    cut = p.cut()
    assert cut is not None and (cut.heard_ms, cut.heard_text) == (0, "")


def test_a_new_item_starts_from_zero() -> None:
    p = Playback()
    p.sent("a", 800)
    p.played("m1")
    p.sent("b", 400)
    assert (p.item_id, p.sent_ms, p.played_ms) == ("b", 50, 0)
    # a late echo for the old item does not count for the new one
    p2 = Playback()
    p2.sent("a", 800)
    p2.sent("b", 800)
    assert p2.played("m1") and p2.played_ms == 0


def test_pending_marks_are_bounded() -> None:
    p = Playback()
    names = [p.sent("item", 8) for _ in range(MAX_PENDING_MARKS + 10)]
    assert names[MAX_PENDING_MARKS:] == [None] * 10
    assert p.pending_marks == MAX_PENDING_MARKS
    assert p.played(f"m{MAX_PENDING_MARKS}")
    assert p.played_ms == MAX_PENDING_MARKS * 8 // 8

