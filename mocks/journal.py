"""The request journal: every request a mock received and what became of it, within bounds.

The pipeline records an entry when a request arrives and fills in its status, outcome and stream
frames as the reply goes out (``transmit``); the control API serialises entries and lets a test
wait for one to end.

Bounded, so that a soak or a hostile client cannot grow a mock without limit: the journal keeps
the latest ``entries`` requests (older ones are dropped and counted in ``dropped``), and of each
body its first ``body_bytes`` bytes (an entry says ``truncated`` and the ``body_length``
received). An entry keeps copies of what it shows, never the request itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from . import strict_json
from .base import JOURNAL_BODY_BYTES, JOURNAL_ENTRIES, NOT_JSON, Call

MASK = "***"
KEEP_PARSED = 64 * 1024  # bodies up to this size keep their parsed JSON; longer ones are reparsed
_REPARSE = object()


class JournalEntry:
    """One received request and what became of it. Serialised lazily (cheap to record)."""

    __slots__ = (
        "id", "time", "method", "path", "query", "headers", "body", "parsed", "body_length",
        "truncated", "status", "outcome", "ended", "frames_sent", "frame_times", "worker",
    )

    def __init__(self, entry_id: int, request: Call, body_bytes: int,
                 worker: int | None = None) -> None:
        self.id = entry_id
        self.worker = worker
        self.time = time.time()
        self.method = request.method
        self.path = request.path
        self.query = request.query
        self.headers = request.headers
        self.body_length = len(request.body)
        self.truncated = self.body_length > body_bytes
        self.body = request.body[:body_bytes] if self.truncated else request.body
        # A truncated body no longer parses: it is shown as text. A small one shares the JSON
        # the handler parsed; a larger one is parsed again when shown, since parsed JSON can take
        # tens of times its bytes ({} is 64 bytes of dict for 3 of text).
        if self.truncated or request.json is NOT_JSON:
            self.parsed: Any = NOT_JSON
        else:
            self.parsed = request.json if self.body_length <= KEEP_PARSED else _REPARSE
        self.status: int | None = None
        self.outcome = "pending"
        self.ended: float | None = None
        self.frames_sent = 0
        self.frame_times: list[float] = []

    def to_json(self, secret: str | None = None) -> dict[str, Any]:
        """The entry as JSON; a header value holding ``secret`` is shown as ``***``."""
        body = self.parsed
        if body is _REPARSE:
            body = strict_json.parse_body(self.body, replace=True)
        if body is NOT_JSON:
            body = self.body.decode("utf-8", "replace")
        headers = _multi(self.headers, join=True)
        if secret:
            headers = {k: MASK if secret in v else v for k, v in headers.items()}
        shown = {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": _multi(self.query, join=False),
            "headers": headers,
            "body": body,
            "body_length": self.body_length,
            "truncated": self.truncated,
            "status": self.status,
            "outcome": self.outcome,
            "ended": self.ended,
            "frames_sent": self.frames_sent,
            "frame_times": list(self.frame_times),
        }
        if self.worker is not None:  # a mock served by several processes: which one answered
            shown["worker"] = self.worker
        return shown


def _multi(values: Mapping[str, str], *, join: bool) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name not in result:
            result[name] = value
        elif join:
            result[name] = f"{result[name]}, {value}"
        elif isinstance(result[name], list):
            result[name].append(value)
        else:
            result[name] = [result[name], value]
    return result


class Journal:
    """The latest requests a mock received, in order, with event-based waiting for their end."""

    def __init__(
        self, entries: int = JOURNAL_ENTRIES, body_bytes: int = JOURNAL_BODY_BYTES, *,
        ids: Callable[[], int] | None = None, worker: int | None = None,
    ) -> None:
        """``ids``: where ids come from when several workers number their requests together
        (then this journal's ids have gaps); ``worker``: the number its entries carry."""
        if entries < 1 or body_bytes < 0:
            raise ValueError("the journal keeps at least 1 entry and 0 or more body bytes")
        self.limit, self.body_bytes = entries, body_bytes
        self.dropped = 0  # entries pushed out by newer ones (not those cleared)
        self._entries: deque[JournalEntry] = deque(maxlen=entries)
        self._next_id = 1
        self._ids, self._worker = ids, worker
        self._waiters: dict[int, list[asyncio.Future[JournalEntry]]] = {}

    def record(self, request: Call) -> JournalEntry:
        entry_id = self._ids() if self._ids is not None else self._next_id
        entry = JournalEntry(entry_id, request, self.body_bytes, self._worker)
        self._next_id = entry_id + 1
        if len(self._entries) == self.limit:
            self.dropped += 1
        self._entries.append(entry)
        return entry

    def finish(self, entry: JournalEntry) -> None:
        if entry.outcome == "pending":
            entry.outcome = "completed"
        entry.ended = time.time()
        for waiter in self._waiters.pop(entry.id, ()):
            if not waiter.done():
                waiter.set_result(entry)

    def entries(self, path: str | None = None, since: int = 0,
                contains: bytes | None = None) -> list[JournalEntry]:
        """Safe from a worker thread: the deque is copied in one step (C, under the GIL).
        ``contains``: only requests whose (kept) body holds these bytes."""
        kept = list(self._entries)
        return [e for e in kept if e.id > since and (path is None or e.path == path)
                and (contains is None or contains in e.body)]

    def get(self, entry_id: int) -> JournalEntry | None:
        if not self._entries:
            return None
        offset = entry_id - self._entries[0].id
        if 0 <= offset < len(self._entries) and self._entries[offset].id == entry_id:
            return self._entries[offset]
        if self._ids is None:
            return None
        low, high = 0, len(self._entries)  # ids with gaps (shared numbering): still in order
        while low < high:
            middle = (low + high) // 2
            if self._entries[middle].id < entry_id:
                low = middle + 1
            else:
                high = middle
        found = self._entries[low] if low < len(self._entries) else None
        return found if found is not None and found.id == entry_id else None

    def summary(self) -> dict[str, int]:
        return {"entries": len(self._entries), "dropped": self.dropped, "limit": self.limit,
                "body_bytes": self.body_bytes}

    def clear(self) -> None:
        self._entries.clear()

    async def wait(self, entry_id: int, timeout: float) -> JournalEntry | None:
        """The entry once it has ended; None on timeout. ``KeyError`` if it is gone."""
        entry = self.get(entry_id)
        if entry is not None and entry.ended is not None:
            return entry
        if entry is None and entry_id < self._next_id:
            raise KeyError(entry_id)
        waiter: asyncio.Future[JournalEntry] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(entry_id, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            pending = self._waiters.get(entry_id)
            if pending and waiter in pending:
                pending.remove(waiter)
                if not pending:
                    del self._waiters[entry_id]
