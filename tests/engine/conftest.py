from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Deadlines pass in no real time; a hang fails at the fake-clock deadline."""
    return trio.testing.MockClock(autojump_threshold=0)
