from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tac_actors.emulator import EXAMPLE_SEED, Emulator
from tac_actors.services import TwilioServices


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator.running(seed=EXAMPLE_SEED) as emulator:
        yield emulator


@pytest.fixture
async def services(emu: Emulator) -> AsyncIterator[TwilioServices]:
    async with TwilioServices.open(emu.tac_config()) as opened:
        yield opened
