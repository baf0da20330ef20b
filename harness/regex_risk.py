"""The lint's reading of a route's ``~`` regex path: what Kong 3's router cannot match, and what a
backtracking matcher (the bundled proxy's Python ``re``) can take seconds on.

Written for the lint, apart from the proxy's own check (which decides by the pattern's automaton,
docs/kong-behaviour.md#routing): this one reads the pattern's structure and errs on the side of
warning, so a pattern the proxy refuses is always flagged here, and now and then one it accepts.

- Unsupported: backreferences, look-around, atomic groups, possessive quantifiers and
  conditionals. Kong's ``traditional_compatible`` router matches with the Rust ``regex`` crate,
  which has none of them.
- Exponential: a repetition whose body can be cut into iterations in more than one way: the body
  matches the empty string, or a variable part of it (a nested repetition, an optional part) can
  read a character the body can start with, or it has alternatives that can start alike
  (``(a+)+``, ``(\\w+\\s?)*``, ``(a|ab)*``).
- Polynomial of degree 3 or more: three repetitions in a row, each able to read what the next
  reads, with no required character between them that the earlier one cannot read (``.*.*.*``;
  ``[a-z]+/[a-z]+/[a-z]+`` is fine: ``/`` fences them). A small bound repeats what it holds
  (``(.*){3}`` is ``.*.*.*``) and is otherwise no loop: it costs a constant factor at most.

Quadratic patterns (``.*/.*``), which the proxy serves with a warning, are not flagged here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as parser  # type: ignore[attr-defined]
from typing import Any

_UNSUPPORTED = {
    c.GROUPREF: "a backreference",
    c.GROUPREF_EXISTS: "a conditional group",
    c.ASSERT: "a look-ahead or look-behind",
    c.ASSERT_NOT: "a look-ahead or look-behind",
    c.ATOMIC_GROUP: "an atomic group",
    c.POSSESSIVE_REPEAT: "a possessive quantifier",
}
SMALL_BOUND = 8
_ATOMS = (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN)
_REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT)
# Characters the checks compare sets on: ASCII and some Unicode letters, digits and spaces.
_SAMPLE = [chr(n) for n in range(128)] + list("ßж中٣\u00a0\u2028\U0001f600")
_CLASS = {
    c.CATEGORY_DIGIT: r"\d", c.CATEGORY_NOT_DIGIT: r"\D", c.CATEGORY_SPACE: r"\s",
    c.CATEGORY_NOT_SPACE: r"\S", c.CATEGORY_WORD: r"\w", c.CATEGORY_NOT_WORD: r"\W",
}  # fmt: skip


@dataclass(frozen=True)
class Risk:
    kind: str  # "unsupported", "exponential" or "polynomial"
    detail: str


def regex_risk(kong_regex: str) -> Risk | None:
    """What is wrong with a Kong path regex (without its ``~``), or None. An invalid regex is
    None here: the lint's other checks and Kong's own say so."""
    python = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", kong_regex)
    try:
        tree = parser.parse(python)
    except (re.error, RecursionError):
        return None
    reader = _Reader(bool(tree.state.flags & re.IGNORECASE), _sample(tree))
    for op, _ in _walk(tree):
        if op in _UNSUPPORTED:
            return Risk("unsupported", f"uses {_UNSUPPORTED[op]}")
    for op, argument in _walk(tree):
        if _loops(op, argument):
            why = reader.ambiguous_body(argument[2])
            if why:
                return Risk("exponential", why)
    if reader.longest_chain(tree) >= 3:
        return Risk("polynomial", "has three or more repetitions in a row that can read the same "
                                  "text (as .*.*.*)")  # fmt: skip
    return None


def _walk(items: Any) -> Iterator[tuple[Any, Any]]:
    for op, argument in items:
        yield op, argument
        for child in _children(op, argument):
            yield from _walk(child)


def _children(op: Any, argument: Any) -> list[Any]:
    if op is c.BRANCH:
        return list(argument[1])
    if op in (c.SUBPATTERN,):
        return [argument[3]]
    if op in _REPEATS:
        return [argument[2]]
    if op in (c.ASSERT, c.ASSERT_NOT):
        return [argument[1]]
    if op is c.ATOMIC_GROUP:
        return [argument]
    return []


def _sample(tree: Any) -> list[str]:
    extra = set()
    for op, argument in _walk(tree):
        if op in (c.LITERAL, c.NOT_LITERAL):
            extra.add(chr(argument))
        elif op is c.IN:
            for item, value in argument:
                if item is c.LITERAL:
                    extra.add(chr(value))
                elif item is c.RANGE:
                    extra.update(map(chr, value))
    return _SAMPLE + sorted(extra - set(_SAMPLE))


class _Reader:
    def __init__(self, ignore_case: bool, sample: list[str]) -> None:
        self.ignore_case = ignore_case
        self.sample = sample

    # --- character sets, as the sampled characters an atom reads --------------------------------

    def atom(self, op: Any, argument: Any) -> frozenset[str]:
        return frozenset(ch for ch in self.sample if any(
            _reads(op, argument, v)
            for v in ({ch, ch.lower(), ch.upper()} if self.ignore_case else {ch})))  # fmt: skip

    def reads(self, items: Any) -> frozenset[str]:
        """Every character some part of ``items`` can read."""
        return frozenset().union(*(self.atom(op, a) for op, a in _walk(items) if op in _ATOMS))

    def starts(self, items: Any) -> frozenset[str]:
        """The characters a match of ``items`` can start with."""
        found: set[str] = set()
        for op, argument in items:
            found |= self._starts_item(op, argument)
            if not _nullable_item(op, argument):
                break
        return frozenset(found)

    def _starts_item(self, op: Any, argument: Any) -> frozenset[str]:
        if op in _ATOMS:
            return self.atom(op, argument)
        if op is c.BRANCH:
            return frozenset().union(*(self.starts(b) for b in argument[1]))
        if op is c.SUBPATTERN:
            return self.starts(argument[3])
        if op in _REPEATS:
            return self.starts(argument[2])
        return frozenset()

    # --- the checks ------------------------------------------------------------------------------

    def ambiguous_body(self, body: Any) -> str | None:
        """Why iterations of ``body`` could be cut in more than one way, or one iteration read in
        more than one way (which repetition multiplies), or None."""
        if _nullable(body):
            return "repeats something that can match nothing (as (a*)*)"
        first = self.starts(body)
        varying = []  # parts of the body whose length varies, with what they read
        for op, argument in _walk(body):
            if op is c.BRANCH:
                branches = argument[1]
                starts = [self.starts(branch) for branch in branches]
                if sum(_nullable(branch) for branch in branches) > 1 or any(
                    a & b for i, a in enumerate(starts) for b in starts[i + 1:]
                ):
                    return "repeats alternatives that can match alike (as (a|ab)* or (a|a)*)"
                varying.append((argument, self.reads([(op, argument)])))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and argument[0] != argument[1]:
                varying.append((argument, self.reads(argument[2])))
        for index, (part, reads) in enumerate(varying):
            if reads & first:
                return "repeats a part that itself varies in length over the characters an " \
                       "iteration starts with (as (a+)+ or (\\w+\\s?)*)"  # fmt: skip
            for other, more in varying[index + 1:]:
                if reads & more and not _inside(other, part):
                    return "repeats two parts that vary in length over the same characters " \
                           "(as (a*[ab]?)+)"  # fmt: skip
        return None

    def longest_chain(self, tree: Any) -> int:
        """The most repetitions in a row (others may come between), each able to read what the
        next reads, with no required character between them that the earlier cannot read."""
        events: list[tuple[bool, frozenset[str]]] = []  # (a repetition?, what it reads)
        for op, argument in _flat(tree):
            if op in _ATOMS:
                events.append((False, self.atom(op, argument)))
            else:  # repetitions, and those inside alternatives or optional parts, in order
                events += [(True, self.reads(loop[2])) for loop in _loops_in(op, argument)]
        best: dict[int, int] = {}
        for i, (is_loop, reads) in enumerate(events):
            if not is_loop:
                continue
            best[i] = 1
            for j in best:
                if j < i and events[j][1] & reads and not any(
                    not atom & events[j][1] for loop, atom in events[j + 1 : i] if not loop
                ):
                    best[i] = max(best[i], best[j] + 1)
        return max(best.values(), default=0)


def _loops(op: Any, argument: Any) -> bool:
    """A repetition that can go round many times: a small bound (``\\d{1,3}``) costs at most a
    constant factor, however ambiguous its body."""
    return op in (c.MAX_REPEAT, c.MIN_REPEAT) and argument[1] > SMALL_BOUND


def _loops_in(op: Any, argument: Any) -> list[Any]:
    """The repetitions inside an item, in order; a small bound repeats them (``(a+){3}`` holds
    three, as a+a+a+)."""
    if _loops(op, argument):
        return [argument]
    found = [loop for child in _children(op, argument) for o, a in child
             for loop in _loops_in(o, a)]  # fmt: skip
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):
        return found * argument[1]
    return found


def _inside(inner: Any, outer: Any) -> bool:
    """Whether the parsed node ``inner`` lies within ``outer`` (a branch's or repeat's argument)."""
    children = outer[1] if isinstance(outer, tuple) and len(outer) == 2 else [outer[2]]
    return any(argument is inner for child in children for _, argument in _walk(child))


def _flat(items: Any) -> Iterator[tuple[Any, Any]]:
    """The sequence with groups opened, so ``(.*)(.*)`` reads as two repetitions in a row."""
    for op, argument in items:
        if op is c.SUBPATTERN:
            yield from _flat(argument[3])
        else:
            yield op, argument


def _nullable(items: Any) -> bool:
    return all(_nullable_item(op, argument) for op, argument in items)


def _nullable_item(op: Any, argument: Any) -> bool:
    if op in _ATOMS:
        return False
    if op is c.BRANCH:
        return any(_nullable(b) for b in argument[1])
    if op is c.SUBPATTERN:
        return _nullable(argument[3])
    if op in _REPEATS:
        return argument[0] == 0 or _nullable(argument[2])
    return True  # anchors and assertions read nothing


def _reads(op: Any, argument: Any, ch: str) -> bool:
    if op is c.LITERAL:
        return ch == chr(argument)
    if op is c.NOT_LITERAL:
        return ch != chr(argument)
    if op is c.ANY:
        return True
    hit, negated = False, False
    for item, value in argument:
        if item is c.NEGATE:
            negated = True
        elif item is c.LITERAL:
            hit = hit or ch == chr(value)
        elif item is c.RANGE:
            hit = hit or value[0] <= ord(ch) <= value[1]
        elif item is c.CATEGORY:
            pattern = _CLASS.get(value)
            hit = hit or pattern is None or re.match(pattern, ch) is not None
    return hit != negated
