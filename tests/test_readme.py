"""The README's test-kit example, run as written (so the README stays true)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"


async def test_readme_test_kit_example(autojump_clock: Any) -> None:
    text = README.read_text()
    block = re.search(r"```python\n(from tac_actors import TAC\nfrom tac_actors.testing.*?)```",
                      text, re.S)
    assert block, "the test-kit example is missing from the README"
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    await namespace["test_barge_in"](autojump_clock)
