"""What became of one request under load, in four classes:

- ``ok``: answered, not with an error, and whole;
- ``expected_error``: the error the request is meant to get: any 4xx; a 5xx the same catalogue
  case answers when sent alone (an unreachable upstream's 502); for a hostile request, any 4xx or
  the gateway hanging up on it;
- ``unexpected_5xx``: any other 5xx (a hostile request is never owed one);
- ``stream_cut``: the connection ended before the reply did (mid-body, mid-stream, or before
  any answer) on a well-formed request.
"""

from __future__ import annotations

from collections.abc import Collection

OK = "ok"
EXPECTED_ERROR = "expected_error"
UNEXPECTED_5XX = "unexpected_5xx"
STREAM_CUT = "stream_cut"
OUTCOMES = (OK, EXPECTED_ERROR, UNEXPECTED_5XX, STREAM_CUT)


def classify(status: int | None, complete: bool, hostile: bool,
             allowed_5xx: Collection[int] = ()) -> str:
    """``status`` None: no answer at all; ``complete``: the body arrived whole."""
    if status is None or not complete:
        return EXPECTED_ERROR if hostile else STREAM_CUT
    if status >= 500:
        return EXPECTED_ERROR if status in allowed_5xx and not hostile else UNEXPECTED_5XX
    return EXPECTED_ERROR if status >= 400 else OK


def failed(outcome: str) -> bool:
    """The outcomes that count against the gateway."""
    return outcome in (UNEXPECTED_5XX, STREAM_CUT)
