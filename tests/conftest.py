"""Suite-wide doctrine: no trio test can hang.

Every trio test, its trio fixtures included, runs under ``trio.fail_after`` on the test's
own trio clock:

- on the real clock (the loopback tests): ``HANG_LIMIT`` seconds;
- on a ``trio.testing.MockClock`` (``autojump_clock``, or any fixture returning one):
  ``VIRTUAL_HANG_LIMIT`` virtual seconds. Virtual time is free, and tests legitimately
  skip over idle timeouts of minutes or an hour, so the limit is a day; under autojump a
  test that waits for something that never comes has every task blocked, the clock jumps
  straight to the deadline and the test fails at once with ``TooSlowError``.

``@pytest.mark.hang_limit(seconds)`` sets another limit for one test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

HANG_LIMIT = 60.0
VIRTUAL_HANG_LIMIT = 24 * 3600.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hang_limit(seconds): the test's deadline on its trio clock")


def _guarded(run: Callable[..., Any], limit: float | None) -> Callable[..., Any]:
    """``run`` (``trio.run`` or a replacement), with the test under a deadline."""

    def guarded_run(async_fn: Callable[..., Awaitable[Any]], *args: Any,
                    **run_options: Any) -> Any:
        if limit is not None:
            seconds = limit
        elif isinstance(run_options.get("clock"), trio.testing.MockClock):
            seconds = VIRTUAL_HANG_LIMIT
        else:
            seconds = HANG_LIMIT

        async def under_deadline() -> Any:
            with trio.fail_after(seconds):
                return await async_fn(*args)

        return run(under_deadline, **run_options)

    return guarded_run


@pytest.hookimpl(trylast=True)  # after pytest-trio has marked the async tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("trio")
        if marker is None:
            continue
        limit_marker = item.get_closest_marker("hang_limit")
        limit = float(limit_marker.args[0]) if limit_marker is not None else None
        # pytest-trio runs the test with the ``run`` of the first trio marker it finds
        run = marker.kwargs.get("run", trio.run)
        item.add_marker(pytest.mark.trio(run=_guarded(run, limit)), append=False)
