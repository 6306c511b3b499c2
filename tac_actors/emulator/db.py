"""The emulator's SQLite state: JSON documents, full-text indexes, ids and clocks.

Every resource (conversation, participant, profile, observation...) is one JSON
document in the ``docs`` table, keyed by ``(kind, id)``, with an optional ``parent``
(the conversation of a participant, the store of a profile...) and an insertion order.
Documents are exactly what the API answers, so a route returns them as stored.

Knowledge documents and observations are also indexed with FTS5 (porter stemming) so
searches are ranked by BM25.

One connection, used only from the emulator's trio thread: each query takes
microseconds, so it runs inline. ``path`` is a file (the state survives a restart) or
``":memory:"``. The connection is an owned resource: open it with ``with Database(path)
as db:`` (or call :meth:`Database.close`); nothing closes it behind your back.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

__all__ = ["ApiError", "Database", "fts_query", "now_iso"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    parent TEXT,
    data TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX IF NOT EXISTS docs_parent ON docs (kind, parent);
CREATE TABLE IF NOT EXISTS counters (n INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS text_index USING fts5(
    kind UNINDEXED, id UNINDEXED, parent UNINDEXED, title, body,
    tokenize = 'porter unicode61'
);
"""

_ERROR_CODES = {400: 20001, 401: 20003, 404: 20404, 405: 20004, 409: 20409, 429: 20429}
_WORD = re.compile(r"\w+", re.UNICODE)


class ApiError(Exception):
    """Answer the current request with a Twilio-shaped error body."""

    def __init__(self, status: int, message: str, *, code: int | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else _ERROR_CODES.get(status, 20500)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def now_iso() -> str:
    """The current UTC time as Twilio writes it (``2025-01-15T10:30:45Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_STOPWORDS = frozenset(
    "a an and are as at be but by can could do does for from have how i if in is it its "
    "me my of on or our so than that the their them then there these they this to us "
    "was we were what when where which who why will with would you your".split()
)


def fts_query(text: str) -> str | None:
    """A safe FTS5 query matching any word of ``text`` but common English stopwords
    (all its words when it has only stopwords; ``None`` when it has no word at all)."""
    words = _WORD.findall(text.lower())
    meaningful = [w for w in words if w not in _STOPWORDS] or words
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(meaningful)) if meaningful else None


class Database:
    """Documents by kind, with insertion order, parents and a text index.

    Opening connects to ``path``; leaving ``with`` (or :meth:`close`) closes the
    connection, on every path. If creating the schema fails, the connection is closed
    before the error propagates."""

    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self.db.executescript(_SCHEMA)
            if self.db.execute("SELECT n FROM counters").fetchone() is None:
                self.db.execute("INSERT INTO counters VALUES (0)")
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent). Any later query raises
        ``sqlite3.ProgrammingError``."""
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def new_id(self, prefix: str) -> str:
        """A fresh id, deterministic from a persisted counter. An upper-case prefix
        gives a classic SID (``FN`` + 32 hex digits), else ``prefix_`` + 26 digits."""
        (number,) = self.db.execute("UPDATE counters SET n = n + 1 RETURNING n").fetchone()
        if prefix.isupper():
            return f"{prefix}{number:032x}"
        return f"{prefix}_{number:026d}"

    # -- documents ----------------------------------------------------------------------

    def put(self, kind: str, doc: Mapping[str, Any], *, parent: str | None = None,
            doc_id: str | None = None) -> dict[str, Any]:
        """Insert or replace a document (its id is ``doc["id"]`` unless given)."""
        key = doc_id or doc["id"]
        self.db.execute(
            "INSERT INTO docs (kind, id, parent, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, "
            "parent = excluded.parent",
            (kind, key, parent, json.dumps(doc)),
        )
        return dict(doc)

    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        found = self.db.execute(
            "SELECT data FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return None if found is None else dict(json.loads(found[0]))

    def parent_of(self, kind: str, doc_id: str) -> str | None:
        found = self.db.execute(
            "SELECT parent FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return None if found is None else found[0]

    def all(self, kind: str, *, parent: str | None = None) -> list[dict[str, Any]]:
        """Documents of ``kind`` (only children of ``parent`` when given), oldest first."""
        if parent is None:
            cursor = self.db.execute("SELECT data FROM docs WHERE kind = ? ORDER BY seq", (kind,))
        else:
            cursor = self.db.execute(
                "SELECT data FROM docs WHERE kind = ? AND parent = ? ORDER BY seq",
                (kind, parent),
            )
        return [dict(json.loads(row[0])) for row in cursor.fetchall()]

    def count(self, kind: str) -> int:
        (n,) = self.db.execute("SELECT count(*) FROM docs WHERE kind = ?", (kind,)).fetchone()
        return int(n)

    # -- text index ---------------------------------------------------------------------

    def index_text(self, kind: str, doc_id: str, parent: str | None, title: str,
                   body: str) -> None:
        self.db.execute(
            "INSERT INTO text_index (kind, id, parent, title, body) VALUES (?, ?, ?, ?, ?)",
            (kind, doc_id, parent, title, body),
        )

    def search_text(self, kind: str, parent: str, text: str,
                    limit: int) -> list[tuple[str, float]]:
        """``(id, bm25)`` of the best matches, best first. SQLite's ``bm25`` is lower
        for better matches; this returns its negation, so higher is better."""
        query = fts_query(text)
        if query is None:
            return []
        cursor = self.db.execute(
            "SELECT id, bm25(text_index) AS rank FROM text_index "
            "WHERE text_index MATCH ? AND kind = ? AND parent = ? ORDER BY rank LIMIT ?",
            (query, kind, parent, limit),
        )
        return [(row[0], -float(row[1])) for row in cursor.fetchall()]
