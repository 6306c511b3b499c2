"""The conversation store shared by the processes serving one app (see
:mod:`tac_actors.store.base`)."""

from tac_actors.store.base import (
    Accepted,
    ConversationStore,
    Lease,
    Pending,
    QueuedText,
    StoreError,
    Taken,
)
from tac_actors.store.local import LocalStore

__all__ = ["Accepted", "ConversationStore", "Lease", "LocalStore", "Pending", "QueuedText",
           "StoreError", "Taken"]
