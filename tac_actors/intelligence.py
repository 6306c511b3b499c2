"""Conversation Intelligence: operator results into Memory, the live session and the app.

:class:`IntelligenceProcessor` handles one parsed
:class:`~tac_actors.protocol.intelligence.OperatorResultEvent` (the webhook route parses
and signs; :meth:`tac_actors.TAC.process_cintel_event` takes a raw payload):

1. an event of another intelligence configuration is skipped (answered, not an error);
2. results of the configured **summary operator** become conversation summaries in
   Memory, one per summary text and CUSTOMER profile of the result (source
   ``conversation-intelligence``, occurred at the result's date), as the reference does.
   Each write carries an idempotency key made of the result id, the profile and the
   summary's index, so a webhook Twilio retries writes nothing twice; results already
   written are also remembered (a bounded LRU) and skipped;
3. every result of the configuration is appended to the live session of the
   conversation, when one runs on this node (``session.intelligence``, the latest
   :data:`MAX_SESSION_RESULTS`), so the next turn of a real-time analysed conversation
   sees it;
4. the caller (the TAC) then hands the event to the app's ``on_intelligence_result``.

A Memory failure is logged (once per result) and reported in the answer
(``success=False`` with the error when nothing could be written); it never raises.
Cancellation propagates as usual; writes done before it stay done.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import attrs

from tac_actors._logsafe import excerpt
from tac_actors.protocol.intelligence import (
    OperatorResult,
    OperatorResultEvent,
    summary_texts,
)
from tac_actors.services.errors import ServiceError

if TYPE_CHECKING:
    from tac_actors.config import IntelligenceConfig
    from tac_actors.services.memory_api import MemoryClient
    from tac_actors.session import ConversationSession

__all__ = ["MAX_SESSION_RESULTS", "IntelligenceProcessor", "OperatorProcessingResult"]

log = logging.getLogger("tac_actors.intelligence")

#: how many operator results a live session keeps (the oldest go first)
MAX_SESSION_RESULTS = 20
SUMMARY_SOURCE = "conversation-intelligence"


@attrs.frozen(kw_only=True)
class OperatorProcessingResult:
    """What processing one event did (the reference's model of the same name).

    ``skipped``: nothing to do (another configuration, no summary operator configured,
    no CUSTOMER profile, an empty result, already processed); not an error."""

    success: bool
    event_type: str | None = None
    skipped: bool = False
    skip_reason: str | None = None
    error: str | None = None
    created_count: int = 0

    def to_json(self) -> dict[str, Any]:
        """The reference's ``model_dump()`` (snake_case keys)."""
        return attrs.asdict(self)

    model_dump = to_json


class IntelligenceProcessor:
    """Processes operator-result events for one configuration (see the module
    docstring). ``memory`` and ``store_id`` are ``None`` without Memory (then summaries
    are skipped and only the session and the app see the results)."""

    def __init__(self, config: IntelligenceConfig, memory: MemoryClient | None,
                 store_id: str | None, *, remembered: int = 10_000) -> None:
        self.config = config
        self._memory = memory
        self._store_id = store_id
        self._done: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered

    def matches(self, event: OperatorResultEvent) -> bool:
        return event.configuration_id == self.config.configuration_id

    async def process(self, event: OperatorResultEvent,
                      session: ConversationSession | None = None
                      ) -> OperatorProcessingResult:
        """Write the summaries of ``event`` and attach its results to ``session``."""
        if not self.matches(event):
            log.debug("operator results for configuration %s skipped (ours: %s)",
                      excerpt(event.configuration_id, 60), self.config.configuration_id)
            return OperatorProcessingResult(
                success=True, skipped=True,
                skip_reason=f"Configuration ID mismatch (expected "
                            f"{self.config.configuration_id})")
        if session is not None:
            session.intelligence.extend(event.results)
            del session.intelligence[:-MAX_SESSION_RESULTS]
        created = 0
        errors: list[str] = []
        reasons: list[str] = []
        for result in event.results:
            count, error, reason = await self._summaries(event, result)
            created += count
            if error:
                errors.append(error)
            if reason:
                reasons.append(reason)
        if created == 0 and errors:
            return OperatorProcessingResult(success=False, event_type="summary",
                                            error="; ".join(errors))
        if created == 0:
            return OperatorProcessingResult(
                success=True, skipped=True,
                skip_reason=reasons[-1] if reasons else "No operator results")
        return OperatorProcessingResult(success=True, event_type="summary",
                                        created_count=created,
                                        error="; ".join(errors) or None)

    async def _summaries(self, event: OperatorResultEvent, result: OperatorResult
                         ) -> tuple[int, str | None, str | None]:
        """``(written, error, skip reason)`` for one result."""
        summary_sid = self.config.summary_operator_sid
        if summary_sid is None:
            return 0, None, "Summary operator SID not configured"
        if result.operator_id != summary_sid:
            return 0, None, "Operator SID mismatch"
        if result.id in self._done:
            return 0, None, "Operator result already processed"
        content = result.content
        if not content:
            return 0, None, "Operator result has empty content"
        profiles = result.customer_profile_ids
        if not profiles:
            return 0, None, "No profile IDs found in operator result execution details"
        store = self._store_id or event.memory_store_id
        if self._memory is None or not store:
            return 0, None, "No Memory store to write summaries to"
        written = 0
        errors: list[str] = []
        texts = summary_texts(content)
        for profile in profiles:
            for index, text in enumerate(texts):
                try:
                    await self._memory.create_summary(
                        store, profile, content=text, conversation_id=event.conversation_id,
                        occurred_at=result.date_created or None, source=SUMMARY_SOURCE,
                        idempotency_key=f"{result.id}:{profile}:{index}")
                except ServiceError as exc:
                    message = f"Failed to create summaries for profile {profile}: {exc}"
                    log.warning("operator result %s: %s", excerpt(result.id, 80), message)
                    errors.append(message)
                    break
                written += 1
        if not errors:
            self._remember(result.id)
        if written:
            log.info("conversation %s: %d summary(ies) written to Memory from operator "
                     "result %s", excerpt(event.conversation_id, 80), written,
                     excerpt(result.id, 80))
        return written, "; ".join(errors) or None, None

    def _remember(self, result_id: str) -> None:
        self._done[result_id] = None
        self._done.move_to_end(result_id)
        while len(self._done) > self._remembered:
            self._done.popitem(last=False)
