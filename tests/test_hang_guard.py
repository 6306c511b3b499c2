"""The suite's hang guard (tests/conftest.py) turns a hang into a fast failure."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HANGING = """
import pytest
import trio
import trio.testing


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
async def hangs_on_teardown():
    yield
    await trio.Event().wait()


async def test_hang_under_autojump(autojump_clock):
    await trio.Event().wait()


async def test_hang_under_a_clock_fixture_of_our_own(clock):
    await trio.Event().wait()


async def test_hang_in_a_fixture(autojump_clock, hangs_on_teardown):
    pass


@pytest.mark.hang_limit(0.2)
async def test_hang_on_the_real_clock():
    await trio.Event().wait()


async def test_an_hour_of_virtual_time_is_no_hang(autojump_clock):
    await trio.sleep(3600)


def test_sync_tests_are_left_alone():
    pass
"""


def test_hangs_fail_with_too_slow_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_hanging=HANGING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(failed=4, passed=2)
    assert result.stdout.str().count("TooSlowError") >= 4
