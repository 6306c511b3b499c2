"""``AdapterOptions`` and ``MemoryPromptBuilder``: memory and profile as system-prompt
text."""

from __future__ import annotations

from typing import Any

import attrs

from tac_actors.llm.prompt import profile_prompt

__all__ = ["AdapterOptions", "MemoryPromptBuilder"]


@attrs.frozen(kw_only=True)
class AdapterOptions:
    """``profile_traits``: the trait groups to show (``None``: all)."""

    profile_traits: list[str] | None = None


class MemoryPromptBuilder:
    @staticmethod
    def build(memory_response: Any = None, context: Any = None,
              options: AdapterOptions | None = None) -> str | None:
        """The memory and profile sections, or ``None`` when there is nothing."""
        sections: list[str] = []
        profile = getattr(context, "profile", None)
        if profile is not None:
            if options is not None and options.profile_traits is not None:
                profile = attrs.evolve(profile, traits={
                    k: v for k, v in profile.traits.items() if k in options.profile_traits})
            text = profile_prompt(profile)
            if text:
                sections.append(text)
        if memory_response is not None:
            prompts = memory_response.build_memory_prompts()
            sections.extend(prompts if isinstance(prompts, list) else [prompts] if prompts
                            else [])
        return "\n\n".join(sections) or None

    @staticmethod
    def compose(system_prompt: str | None = None, memory_response: Any = None,
                context: Any = None, options: AdapterOptions | None = None) -> str:
        """``system_prompt`` followed by :meth:`build`'s sections."""
        built = MemoryPromptBuilder.build(memory_response, context, options)
        return "\n\n".join(part for part in (system_prompt, built) if part)
