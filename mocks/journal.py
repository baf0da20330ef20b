"""The request journal: every request a mock received and what became of it.

The pipeline records an entry when a request arrives and fills in its status, outcome and stream
frames as the reply goes out (``transmit``); the control API serialises entries and lets a test
wait for one to end.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from .base import NOT_JSON, Call

JOURNAL_LIMIT = 10_000  # the latest requests kept


class JournalEntry:
    """One received request and what became of it. Serialised lazily (cheap to record)."""

    __slots__ = (
        "id", "time", "request", "status", "outcome", "ended", "frames_sent", "frame_times"
    )

    def __init__(self, entry_id: int, request: Call) -> None:
        self.id = entry_id
        self.time = time.time()
        self.request = request
        self.status: int | None = None
        self.outcome = "pending"
        self.ended: float | None = None
        self.frames_sent = 0
        self.frame_times: list[float] = []

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.path

    def to_json(self) -> dict[str, Any]:
        request = self.request
        body = request.json
        if body is NOT_JSON:
            body = request.body.decode("utf-8", "replace")
        return {
            "id": self.id,
            "time": self.time,
            "method": request.method,
            "path": request.path,
            "query": _multi(request.query, join=False),
            "headers": _multi(request.headers, join=True),
            "body": body,
            "status": self.status,
            "outcome": self.outcome,
            "ended": self.ended,
            "frames_sent": self.frames_sent,
            "frame_times": list(self.frame_times),
        }


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
    """Every request a mock received, in order, with event-based waiting for its end."""

    def __init__(self) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=JOURNAL_LIMIT)
        self._next_id = 1
        self._waiters: dict[int, list[asyncio.Future[JournalEntry]]] = {}

    def record(self, request: Call) -> JournalEntry:
        entry = JournalEntry(self._next_id, request)
        self._next_id += 1
        self._entries.append(entry)
        return entry

    def finish(self, entry: JournalEntry) -> None:
        if entry.outcome == "pending":
            entry.outcome = "completed"
        entry.ended = time.time()
        for waiter in self._waiters.pop(entry.id, ()):
            if not waiter.done():
                waiter.set_result(entry)

    def entries(self, path: str | None = None, since: int = 0) -> list[JournalEntry]:
        return [e for e in self._entries if e.id > since and (path is None or e.path == path)]

    def get(self, entry_id: int) -> JournalEntry | None:
        if not self._entries:
            return None
        offset = entry_id - self._entries[0].id
        return self._entries[offset] if 0 <= offset < len(self._entries) else None

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
