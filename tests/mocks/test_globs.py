"""Control-API path globs: a linear-time matcher (``mocks/glob.py``), no regex backtracking."""

from __future__ import annotations

import fnmatch

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyproof.mocks import glob
from proxyproof.mocks.app import run_mock


def _reference(pattern: str, text: str) -> bool:
    """fnmatch with only '*' special: the other metacharacters escaped."""
    escaped = "".join(c if c == "*" else f"[{c}]" if c in "?[" else c for c in pattern)
    return fnmatch.fnmatchcase(text, escaped)


@settings(max_examples=600)
@given(pattern=st.text("ab*?[", max_size=8), text=st.text("ab?[", max_size=10))
def test_glob_agrees_with_fnmatch(pattern: str, text: str) -> None:
    assert glob.match(pattern, text) is _reference(pattern, text)


def test_examples() -> None:
    assert glob.match("/models/*", "/models/meta-llama/Llama-2-7b")
    assert glob.match("/api/*/x", "/api/a/b/x")
    assert not glob.match("/api/*/x", "/api/a/b/y")
    assert glob.match("/exact", "/exact") and not glob.match("/exact", "/exact/")
    assert glob.match("*", "") and not glob.match("", "x")


def test_many_stars_against_a_long_text_take_linear_steps() -> None:
    """12 stars, 20,000 characters, no match: a backtracking regex takes ~n**12 steps here."""
    pattern = "/" + "*a" * 12 + "*b"
    text = "/" + "a" * 20_000
    steps = [0]
    assert glob.match(pattern, text, steps) is False
    assert steps[0] <= 2 * len(text) * 2  # each text position visited at most twice per restart


@settings(max_examples=200)
@given(stars=st.integers(1, 30), length=st.integers(0, 2000))
def test_steps_are_bounded_by_pattern_times_text(stars: int, length: int) -> None:
    pattern = "*a" * stars + "b"
    steps = [0]
    glob.match(pattern, "a" * length, steps)
    assert steps[0] <= (len(pattern) + 1) * (length + 1)


def test_a_hostile_script_path_does_not_stall_the_mock() -> None:
    with run_mock("openai") as mock:
        mock.control.script(match={"path": "/" + "*a" * 12 + "*b"},
                            response={"status": 418, "body": "matched"})
        response = httpx.post(mock.url + "/" + "a" * 8000, json={}, timeout=10)
        assert response.status_code == 404  # no match: the normal unknown-path answer
        response = httpx.post(mock.url + "/" + "a" * 50 + "b", json={}, timeout=10)
        assert response.status_code == 418
