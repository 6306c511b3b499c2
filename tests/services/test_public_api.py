"""The public names of services, memory and emulator exist and are listed sorted."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["tac_actors.services", "tac_actors.memory", "tac_actors.emulator"]
)
def test_all_is_sorted_and_importable(module: str) -> None:
    imported = importlib.import_module(module)
    names = imported.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert getattr(imported, name) is not None
