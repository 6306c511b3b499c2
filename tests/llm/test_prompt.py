"""What every adapter tells the model: system prompt parts and prior turns."""

from __future__ import annotations

from datetime import UTC, datetime

from tac_actors.llm import conversation_turns, profile_prompt, system_prompt
from tac_actors.memory.models import ObservationInfo, SummaryInfo, TACMemoryResponse
from tac_actors.session import Profile

from .conftest import make_session

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_system_prompt_joins_instructions_memory_and_profile() -> None:
    memory = TACMemoryResponse(
        observations=(ObservationInfo(id="o1", content="Prefers email"),),
        summaries=(SummaryInfo(id="s1", content="Asked about a refund"),),
    )
    session = make_session(profile=Profile("p1", {"Contact": {"first_name": "Ada",
                                                              "tags": ["vip"], "fax": None}}))
    assert system_prompt("  Be brief.\n", session, memory) == (
        "Be brief.\n\n"
        "## What we know about the customer\n- Prefers email\n"
        "## Earlier conversations\n- Asked about a refund\n\n"
        "## Customer profile\n- Contact.first_name: Ada\n- Contact.tags: [\"vip\"]"
    )


def test_empty_parts_are_left_out() -> None:
    assert system_prompt("", None, None) == ""
    assert system_prompt("Hi", make_session(), TACMemoryResponse.empty()) == "Hi"
    assert profile_prompt(Profile("p1", {"Contact": {"email": ""}})) == ""
    assert profile_prompt(None) == ""


def test_turns_skip_the_message_the_engine_already_recorded() -> None:
    session = make_session()
    session.record("user", "hi", AT)
    session.record("assistant", "Hello, how can", AT, interrupted=True)
    session.record("assistant", "", AT)
    session.record("user", "my order", AT)
    assert conversation_turns(session, "my order") == [
        ("user", "hi"), ("assistant", "Hello, how can"), ("user", "my order")]
    assert conversation_turns(session, "another") == [
        ("user", "hi"), ("assistant", "Hello, how can"), ("user", "my order"),
        ("user", "another")]


def test_turns_limit_and_no_session() -> None:
    session = make_session()
    for n in range(5):
        session.record("user", f"m{n}", AT)
    assert conversation_turns(session, "now", limit=2) == [
        ("user", "m3"), ("user", "m4"), ("user", "now")]
    assert conversation_turns(session, "now", limit=0) == [("user", "now")]
    assert conversation_turns(None, "now") == [("user", "now")]
