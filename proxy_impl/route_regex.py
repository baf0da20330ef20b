"""Kong's ``~`` route paths as Python regexes: translated, checked at load, and the fixed text
they start with, which the router indexes them by (docs/kong-behaviour.md#routing).

Kong 3's default router (``traditional_compatible``) hands route regexes to the Rust ``regex``
crate: it refuses backreferences and look-around, and matches in linear time. Python's ``re``
backtracks, so a pattern Kong matches in microseconds can hold the event loop for seconds
(``(a+)+b`` against a path of 30 ``a``). Patterns are therefore judged at load, never timed per
request (``re`` cannot be interrupted, and holds the GIL while it matches):

- what Kong's router refuses is refused;
- exponential and cubic-or-worse patterns are refused, with the rewrite to try;
- quadratic ones load with a warning: ``/(.*)/(.*)/x$`` takes about 0.4 s on the longest path
  a request line carries (8 KiB), so the warning says what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from .regex_ambiguity import UnsupportedRegex, cost

# Kong's PCRE and Rust syntax name groups `(?<name>...)`; Python spells it `(?P<name>...)`.
_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_REWRITE = "make the repeated parts unable to match the same text (e.g. [^/]+ rather than .*)"


class RouteRegexError(ValueError):
    """Why the path regex cannot be served (the message names no field: the caller does)."""


@dataclass(frozen=True)
class RouteRegex:
    pattern: re.Pattern[str]
    warning: str | None = None  # loads, but say why it may be slow


def compile_route_regex(kong_regex: str) -> RouteRegex:
    """``kong_regex`` (without its ``~``) compiled and judged; raises ``RouteRegexError``."""
    try:
        pattern = re.compile(_NAMED_GROUP.sub("(?P<", kong_regex))
    except re.error as error:
        raise RouteRegexError(f"invalid regex: {error}") from None
    try:
        judged = cost(pattern.pattern, pattern.flags)
    except UnsupportedRegex as error:
        raise RouteRegexError(
            f"regex uses {error}, which Kong's router (traditional_compatible) does not support"
        ) from None
    except RecursionError:
        raise RouteRegexError("regex nested too deeply") from None
    if judged.exponential:
        raise RouteRegexError(
            "regex can backtrack catastrophically (exponential time in the path's length: "
            f"nested or overlapping repetition, as in (a+)+ or (a|a)*); {_REWRITE}"
        )
    if judged.degree >= 3:
        raise RouteRegexError(
            f"regex can take time growing as the path's length to the power {judged.degree} "
            f"(repetitions in sequence that can match the same text, as in .*.*.*); {_REWRITE}"
        )
    warning = None
    if judged.degree == 2:
        warning = (
            "regex can take time quadratic in the path's length (two repetitions that can match "
            f"the same text, as in .*/.*): up to about a second per request on long paths; "
            f"{_REWRITE}"
        )
    return RouteRegex(pattern, warning)


def literal_prefix(pattern: re.Pattern[str]) -> str:
    """The fixed text every match starts with (``/models/`` for ``/models/(?P<m>.+)``); empty
    when case is ignored or the pattern starts with anything else."""
    if pattern.flags & re.IGNORECASE:
        return ""
    prefix = []
    for op, argument in sre_parse.parse(pattern.pattern, pattern.flags):
        if op is not sre.LITERAL:
            break
        prefix.append(chr(argument))
    return "".join(prefix)
