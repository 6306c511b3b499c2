"""Tools the LLM can call: define them, describe them to the LLM, run its calls.

>>> @function_tool
... async def order_status(order_id: str, session: ConversationSession) -> dict[str, str]:
...     '''Look up the status of an order.
...
...     Args:
...         order_id: The order number the caller gave, e.g. "A-1042".
...     '''
...     ...
>>> registry = ToolRegistry([order_status])
>>> registry.definitions("anthropic")                            # doctest: +SKIP
>>> results = await registry.run_calls(calls, session)           # doctest: +SKIP

Built-in tools (knowledge, memory, handoff) live in :mod:`tac_actors.tools.builtins`.
"""

from tac_actors.tools.function_tool import FunctionTool, create_tool, function_tool
from tac_actors.tools.registry import ToolRegistry, ToolRegistryStatistics
from tac_actors.tools.results import ToolCall, ToolResult

__all__ = [
    "FunctionTool",
    "ToolCall",
    "ToolRegistry",
    "ToolRegistryStatistics",
    "ToolResult",
    "create_tool",
    "function_tool",
]
