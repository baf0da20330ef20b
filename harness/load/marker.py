"""The marker a sampled request carries at the end of its prompt, so that its upstream request
can be found in the mock's journal among all the others (``sampling``). Light on imports: every
load generator process uses it."""

from __future__ import annotations

import json
import secrets
from typing import Any


def new_marker() -> str:
    return f"sample-{secrets.token_hex(8)}"


def with_marker(body: dict[str, Any], route: str, marker: str) -> dict[str, Any]:
    """``body`` with `` marker`` after the last chat message's text or the completion prompt
    (``plan.marker_field`` says the request has one)."""
    marked = json.loads(json.dumps(body))
    if route == "chat":
        marked["messages"][-1]["content"] += f" {marker}"
    else:
        marked["prompt"] += f" {marker}"
    return marked
