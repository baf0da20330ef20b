"""How slow a route regex can get under Python's backtracking ``re``: linear, polynomial of some
degree, or exponential in the length of the path (docs/kong-behaviour.md#routing).

A backtracking matcher is slow exactly where the pattern is ambiguous: where one input can be
matched in many ways and a failing match tries them all. So the question is asked of the
pattern's position automaton (Glushkov's: one state per character-matching atom). Transitions
are counted, so that ``(a+)+`` keeps its two ways round the loop that a plain automaton merges.
Then, as Weber and Seidl characterise an automaton's degree of ambiguity:

- exponential: some state has two different paths back to itself reading the same text
  (``(a+)+``, ``(a|a)*``, ``(\\w+\\s?)*``);
- polynomial of degree d + 1: a chain of d pairs of states p ≠ q where the same text loops on
  p, leads from p to q, and loops on q (``.*.*`` is quadratic, ``.*.*.*`` cubic).

Character sets are compared on a sample alphabet: ASCII, every character the pattern names
(range ends included, so two ranges overlap exactly when they share a sampled character) and a
few non-ASCII letters, digits and spaces for the Unicode classes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

MAX_POSITIONS = 400  # atoms after expanding small counted repeats; route regexes are far smaller
EXPAND_UP_TO = 8  # `x{2,5}` is checked as written up to here; a larger bound counts as a loop
# Non-ASCII samples for the Unicode classes: letters, a digit, spaces, a mark, something of none.
_SAMPLES = "éΩ中٣\u00a0\u2003\u0301\U0001f600\U0010fffe"
_CATEGORIES = {
    sre.CATEGORY_DIGIT: re.compile(r"\d"),
    sre.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    sre.CATEGORY_SPACE: re.compile(r"\s"),
    sre.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    sre.CATEGORY_WORD: re.compile(r"\w"),
    sre.CATEGORY_NOT_WORD: re.compile(r"\W"),
}
# What needs a backtracking engine, and what Kong's router (the Rust regex crate) refuses.
UNSUPPORTED = {
    sre.GROUPREF: "backreferences",
    sre.GROUPREF_EXISTS: "conditional groups",
    sre.ASSERT: "look-ahead and look-behind",
    sre.ASSERT_NOT: "look-ahead and look-behind",
    sre.ATOMIC_GROUP: "atomic groups",
    sre.POSSESSIVE_REPEAT: "possessive quantifiers",
}


class UnsupportedRegex(ValueError):
    """The pattern uses a construct outside what route regexes may use."""


@dataclass(frozen=True)
class Cost:
    """``degree`` 1 is linear, 2 quadratic...; ``exponential`` trumps it."""

    exponential: bool = False
    degree: int = 1


@lru_cache(maxsize=4096)  # configs repeat their patterns; a reload re-reads them all
def cost(pattern: str, flags: int = 0) -> Cost:
    """How matching time can grow with the path's length; raises ``UnsupportedRegex``."""
    parsed = sre_parse.parse(pattern, flags)
    items = list(parsed)
    # Fixed text before the first and after the last construct cannot be part of a loop, nor lead
    # from one loop to another: leave it out (`/models/` of `/models/(?<m>[^/]+)/chat$`).
    while items and items[0][0] in (sre.LITERAL, sre.AT):
        items.pop(0)
    while items and items[-1][0] in (sre.LITERAL, sre.AT):
        items.pop()
    automaton = _Builder(flags | parsed.state.flags, _alphabet(items)).build(items)
    components = _components(automaton)
    if all(component == -1 for component in components):
        return Cost()  # no loop: at most one step per character
    if _exponential(automaton, components):
        return Cost(exponential=True)
    return Cost(degree=_degree(automaton, components))


# --- the position automaton -----------------------------------------------------------------


@dataclass
class _Automaton:
    chars: list[int] = field(default_factory=list)  # per position: a bitmask over the alphabet
    # follow[p][q]: how many ways lead from p to q on q's character (capped at 2: "several")
    follow: defaultdict[int, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))


@dataclass(frozen=True)
class _Part:
    """A sub-pattern's Glushkov sets, each position with its number of ways (capped at 2)."""

    empty: int  # ways to match the empty string
    first: dict[int, int]
    last: dict[int, int]


_EMPTY = _Part(1, {}, {})


def _add(into: dict[int, int], position: int, ways: int) -> None:
    if ways:
        into[position] = min(2, into.get(position, 0) + ways)


def _sum(*parts: dict[int, int]) -> dict[int, int]:
    total: dict[int, int] = {}
    for part in parts:
        for position, ways in part.items():
            _add(total, position, ways)
    return total


def _scaled(part: dict[int, int], factor: int) -> dict[int, int]:
    return {p: min(2, ways * factor) for p, ways in part.items()} if factor else {}


class _Builder:
    def __init__(self, flags: int, alphabet: str) -> None:
        self.alphabet = alphabet
        self.automaton = _Automaton()
        self.ignore_case = [bool(flags & re.IGNORECASE)]

    def build(self, parsed: Any) -> _Automaton:
        self._sequence(parsed)
        return self.automaton

    def _sequence(self, items: Any) -> _Part:
        result = _EMPTY
        for op, argument in items:
            result = self._then(result, self._item(op, argument))
        return result

    def _then(self, a: _Part, b: _Part) -> _Part:
        for last, ways in a.last.items():
            follow = self.automaton.follow[last]
            for first, more in b.first.items():
                _add(follow, first, ways * more)
        return _Part(
            min(2, a.empty * b.empty),
            _sum(a.first, _scaled(b.first, a.empty)),
            _sum(b.last, _scaled(a.last, b.empty)),
        )

    def _item(self, op: Any, argument: Any) -> _Part:
        if op in UNSUPPORTED:
            raise UnsupportedRegex(UNSUPPORTED[op])
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
            return self._atom(op, argument)
        if op is sre.AT:
            return _EMPTY  # anchors read nothing; counting them as "anything" only adds paths
        if op is sre.BRANCH:
            parts = [self._sequence(branch) for branch in argument[1]]
            return _Part(
                min(2, sum(p.empty for p in parts)),
                _sum(*(p.first for p in parts)),
                _sum(*(p.last for p in parts)),
            )
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, items = argument
            case = (self.ignore_case[-1] or bool(add_flags & re.IGNORECASE)) and not (
                del_flags & re.IGNORECASE
            )
            self.ignore_case.append(case)
            try:
                return self._sequence(items)
            finally:
                self.ignore_case.pop()
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            return self._repeat(*argument)
        raise UnsupportedRegex(f"the construct {op}")

    def _repeat(self, low: int, high: int, items: Any) -> _Part:
        if high == 0:
            return _EMPTY
        if high != sre.MAXREPEAT and high <= EXPAND_UP_TO:
            # As written: `x{2,4}` is x x (x (x)?)?, each copy with positions of its own.
            optional = _EMPTY
            for _ in range(high - low):
                optional = self._optional(self._then(self._sequence(items), optional))
            result = _EMPTY
            for _ in range(low):
                result = self._then(result, self._sequence(items))
            return self._then(result, optional)
        body = self._sequence(items)
        for last, ways in body.last.items():  # round the loop: any last back to any first
            follow = self.automaton.follow[last]
            for first, more in body.first.items():
                _add(follow, first, ways * more)
        empty = (1 if low == 0 else 0) + (2 if body.empty else 0)
        return _Part(min(2, empty), body.first, body.last)

    @staticmethod
    def _optional(part: _Part) -> _Part:
        return _Part(min(2, part.empty + 1), part.first, part.last)

    def _atom(self, op: Any, argument: Any) -> _Part:
        automaton = self.automaton
        if len(automaton.chars) >= MAX_POSITIONS:
            raise UnsupportedRegex(f"patterns of more than {MAX_POSITIONS} character positions")
        key = (op, repr(argument), self.ignore_case[-1], self.alphabet)
        automaton.chars.append(_mask(key, op, argument))
        position = len(automaton.chars) - 1
        return _Part(0, {position: 1}, {position: 1})


_MASKS: dict[tuple[Any, ...], int] = {}


def _mask(key: tuple[Any, str, bool, str], op: Any, argument: Any) -> int:
    """The atom's characters as a bitmask over the alphabet (remembered: atoms repeat)."""
    mask = _MASKS.get(key)
    if mask is None:
        ignore_case, alphabet = key[2], key[3]
        mask = 0
        for index, char in enumerate(alphabet):
            variants = {char, char.lower(), char.upper()} if ignore_case else (char,)
            if any(_matches(op, argument, variant) for variant in variants):
                mask |= 1 << index
        if len(_MASKS) < 65536:
            _MASKS[key] = mask
    return mask


def _matches(op: Any, argument: Any, char: str) -> bool:
    if op is sre.LITERAL:
        return ord(char) == argument
    if op is sre.NOT_LITERAL:
        return ord(char) != argument
    if op is sre.ANY:
        return True  # newline too: a superset only adds paths
    negate = False
    found = False
    for item, value in argument:  # op is IN
        if item is sre.NEGATE:
            negate = True
        elif item is sre.LITERAL:
            found = found or ord(char) == value
        elif item is sre.RANGE:
            found = found or value[0] <= ord(char) <= value[1]
        elif item is sre.CATEGORY:
            pattern = _CATEGORIES.get(value)
            found = found or pattern is None or bool(pattern.match(char))
    return found != negate


_BASE = "".join(chr(code) for code in range(128)) + _SAMPLES


def _alphabet(parsed: Any) -> str:
    """The base samples, then whatever else the pattern names (rarely anything)."""
    named = {chr(code) for code in _codes(parsed)} - set(_BASE)
    return _BASE + "".join(sorted(named))


def _codes(items: Any) -> Iterator[int]:
    """Every code point the pattern names: literals, and both ends of each range."""
    for op, argument in items:
        if op in (sre.LITERAL, sre.NOT_LITERAL):
            yield argument
        elif op is sre.RANGE:
            yield from argument
        elif op is sre.IN:
            yield from _codes(argument)
        elif op is sre.BRANCH:
            for branch in argument[1]:
                yield from _codes(branch)
        elif op is sre.SUBPATTERN:
            yield from _codes(argument[3])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            yield from _codes(argument[2])


# --- ambiguity ------------------------------------------------------------------------------


def _components(automaton: _Automaton) -> list[int]:
    """Each position's strongly connected component (-1: on no cycle). An ambiguous loop lives
    inside one component, so the searches below never leave it."""
    count = len(automaton.chars)
    index = [-1] * count
    low = [0] * count
    on_stack = [False] * count
    stack: list[int] = []
    component = [-1] * count
    counter = 0
    components = 0
    for root in range(count):
        if index[root] != -1:
            continue
        work = [(root, iter(automaton.follow.get(root, {})))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            node, successors = work[-1]
            for successor in successors:
                if index[successor] == -1:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack[successor] = True
                    work.append((successor, iter(automaton.follow.get(successor, {}))))
                    break
                if on_stack[successor]:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack[member] = False
                        members.append(member)
                        if member == node:
                            break
                    cyclic = len(members) > 1 or node in automaton.follow.get(node, {})
                    for member in members:
                        component[member] = components if cyclic else -1
                    components += 1
    return component


def _steps(automaton: _Automaton, position: int, within: int, component: list[int]):
    for successor, ways in automaton.follow.get(position, {}).items():
        if component[successor] == within:
            yield successor, ways


def _exponential(automaton: _Automaton, component: list[int]) -> bool:
    """Two different ways from some state back to itself on one text: pairs of runs that start
    together, part (different states, or the two ways of one counted transition) and meet."""
    for start in range(len(automaton.chars)):
        within = component[start]
        if within == -1:
            continue
        seen = {(start, start, False)}
        todo = [(start, start, False)]
        while todo:
            p, q, parted = todo.pop()
            for p2, p_ways in _steps(automaton, p, within, component):
                for q2, _ in _steps(automaton, q, within, component):
                    if not automaton.chars[p2] & automaton.chars[q2]:
                        continue
                    now = parted or p2 != q2 or (p == q and p2 == q2 and p_ways > 1)
                    if now and p2 == q2 == start:
                        return True
                    state = (p2, q2, now)
                    if state not in seen:
                        seen.add(state)
                        todo.append(state)
    return False


def _degree(automaton: _Automaton, component: list[int]) -> int:
    """1 + the longest chain of pairs p → q where one text loops on p, leads p to q, loops on q."""
    cyclic = [p for p in range(len(automaton.chars)) if component[p] != -1]
    leads: dict[int, list[int]] = {p: [] for p in cyclic}
    for p in cyclic:
        for q in cyclic:
            if p != q and _loops_and_leads(automaton, component, p, q):
                leads[p].append(q)
    longest: dict[int, int] = {}

    def chain(p: int, path: frozenset[int]) -> int:
        if p not in longest:
            longest[p] = 1 + max((chain(q, path | {p}) for q in leads[p] if q not in path),
                                 default=0)
        return longest[p]

    return max((chain(p, frozenset()) for p in cyclic), default=1)


def _loops_and_leads(automaton: _Automaton, component: list[int], p: int, q: int) -> bool:
    """Some text takes p back to p, p to q, and q back to q (three runs in step)."""
    seen = {(p, p, q)}
    todo = [(p, p, q)]
    chars = automaton.chars
    while todo:
        a, b, c = todo.pop()
        for a2, _ in _steps(automaton, a, component[p], component):
            for c2, _ in _steps(automaton, c, component[q], component):
                common = chars[a2] & chars[c2]
                if not common:
                    continue
                for b2 in automaton.follow.get(b, {}):
                    if not common & chars[b2]:
                        continue
                    if (a2, b2, c2) == (p, q, q):
                        return True
                    if (a2, b2, c2) not in seen:
                        seen.add((a2, b2, c2))
                        todo.append((a2, b2, c2))
    return False
