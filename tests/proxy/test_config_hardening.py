"""Hostile configs (issue 9): route regexes judged at load, header fields without control
characters, Kong's ranges for retries and timeouts, and YAML errors that never echo a secret."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from proxy_support import CHAT, ai_proxy, declarative

from proxyproof.proxy_impl import ConfigError, load_config
from proxyproof.proxy_impl.regex_ambiguity import cost
from proxyproof.proxy_impl.route_regex import compile_route_regex

ROUTE = "services[0].routes[0]"
PLUGIN = f"{ROUTE}.plugins[0].config"


def problems_of(config) -> list[str]:
    with pytest.raises(ConfigError) as failure:
        load_config(config)
    return failure.value.problems


def with_paths(*paths: str) -> dict:
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", "http://127.0.0.1:9/api/chat")})
    config["services"][0]["routes"][0]["paths"] = list(paths)
    return config


# --- route regexes ------------------------------------------------------------------------------


def test_the_issue_regex_is_refused_at_load_naming_its_field():
    (problem,) = problems_of(with_paths("/ok", "~/c/(a+)+b$"))
    assert problem.startswith(f"{ROUTE}.paths[1]: regex can backtrack catastrophically")
    assert "[^/]+" in problem  # says what to write instead


@pytest.mark.parametrize(
    "pattern",
    [r"/c/(a+)+b$", r"/(a*)*b", r"/(a|a)*b", r"/(a|ab|b)*c", r"/(a?a?)*b", r"/(\w+\s?)*$",
     r"/(a+a)+b", r"/(a{1,2})*b", r"/x(.*,)*y", r"/([a-z]+|[0-9a-f]+)*$", r"/((ab)*|a)*c"],
)  # fmt: skip
def test_exponential_patterns_are_refused(pattern):
    assert cost(pattern).exponential
    with pytest.raises(ValueError, match="catastrophically"):
        compile_route_regex(pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"/models/(?<model>[^/]+)/chat$", r"/v1/.*", r"/(ab+)+c", r"/(/[a-z]+)+$", r"/(a|ab)*c",
     r"/(\d{1,3}\.){3}\d{1,3}$", r"/(?<tenant>[a-z0-9-]+)/(?<model>[^/]+)$", r"/(.*)/chat$",
     r"/(?i:chat)/(?<m>\w+)$", r"/a?b?c?$", r"/(a?)*b"],
)  # fmt: skip
def test_linear_patterns_load_quietly(pattern):
    assert compile_route_regex(pattern).warning is None


def test_polynomial_patterns_cubic_refused_quadratic_warned():
    assert cost(r"/.*.*.*x").degree == 3
    with pytest.raises(ValueError, match="power 3"):
        compile_route_regex(r"/.*.*.*x")
    quadratic = with_paths(r"~/(.*)/(.*)/x$")
    config = load_config(quadratic)
    assert [w for w in config.warnings if "quadratic" in w] == [
        f"{ROUTE}.paths[0]: " + compile_route_regex(r"/(.*)/(.*)/x$").warning
    ]


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [(r"/(a)\1", "backreferences"), (r"/(?=a)a", "look-ahead and look-behind"),
     (r"/a(?<!b)", "look-ahead and look-behind"), (r"/(?>a+)b", "atomic groups"),
     (r"/a++b", "possessive quantifiers"), (r"/(a)?(?(1)b|c)", "conditional groups")],
)  # fmt: skip
def test_what_kongs_router_cannot_match_is_refused(pattern, construct):
    (problem,) = problems_of(with_paths("/ok", "~" + pattern))
    assert problem == (f"{ROUTE}.paths[1]: regex uses {construct}, which Kong's router "
                       "(traditional_compatible) does not support")  # fmt: skip


def test_an_invalid_regex_still_says_why():
    (problem,) = problems_of(with_paths("/ok", "~/(?<broken"))
    assert problem.startswith(f"{ROUTE}.paths[1]: invalid regex: missing >")


def test_named_groups_in_kongs_spelling_become_captures():
    compiled = compile_route_regex(r"/models/(?<model>[^/]+)/chat$")
    assert compiled.pattern.match("/models/llama2/chat").groupdict() == {"model": "llama2"}
    assert re.compile(compiled.pattern.pattern)  # plain Python syntax from here on


# --- header fields ------------------------------------------------------------------------------

SECRET = "sk-live-0123456789"


def chat_with(**options) -> dict:
    return declarative({"/chat": ai_proxy(CHAT, "ollama", "http://127.0.0.1:9/api/chat",
                                          **options)})  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "field", "becomes"),
    [
        (lambda c: c.update(auth={"header_name": "Authorization",
                                  "header_value": f"Bearer {SECRET}\r\nX-Evil: 1"}),
         "auth.header_value", "it is sent as an HTTP header"),
        (lambda c: c.update(auth={"header_name": "Authorization",
                                  "header_value": f"Bearer {SECRET}\n"}),
         "auth.header_value", "it is sent as an HTTP header"),
        (lambda c: c.update(auth={"header_name": "Authorization",
                                  "header_value": f"Bearer\x00{SECRET}"}),
         "auth.header_value", "it is sent as an HTTP header"),
        (lambda c: c["model"].update(name="llama2\r\nSet-Cookie: a=b"),
         "model.name", "it is sent in the X-Kong-LLM-Model header"),
        (lambda c: c["model"]["options"].update(upstream_url="http://127.0.0.1\r\n:9/api/chat"),
         "model.options.upstream_url", "it becomes the upstream request line and Host header"),
    ],
)  # fmt: skip
def test_control_characters_in_what_becomes_a_header_are_refused(edit, field, becomes):
    config = chat_with()
    edit(config["services"][0]["routes"][0]["plugins"][0]["config"])
    problems = problems_of(config)
    assert problems == [f"{PLUGIN}.{field}: must not contain CR, LF or other control characters "
                        f"({becomes}); the value is not shown"]  # fmt: skip
    assert SECRET not in str(problems)


@pytest.mark.parametrize("name", ["Author ization", "X-Key\r\nX-Evil", "X:Key", "", "Ключ"])
def test_a_header_name_must_be_a_token(name):
    config = chat_with()
    config["services"][0]["routes"][0]["plugins"][0]["config"]["auth"] = {
        "header_name": name, "header_value": SECRET}
    assert problems_of(config) == [
        f"{PLUGIN}.auth.header_name: must be an HTTP header name: letters, digits and "
        "!#$%&'*+-.^_`|~ only"
    ]


def test_a_tab_inside_a_header_value_is_allowed():
    config = chat_with()
    config["services"][0]["routes"][0]["plugins"][0]["config"]["auth"] = {
        "header_name": "X-Api-Key", "header_value": f"a\t{SECRET}"}
    assert load_config(config).routes[0].plugin.target.auth.header_value == f"a\t{SECRET}"


# --- YAML errors --------------------------------------------------------------------------------

BROKEN_ON_THE_SECRET = f"""\
_format_version: "3.0"
routes:
  - name: chat
    paths: [/chat]
    plugins:
      - name: ai-proxy
        config:
          route_type: llm/v1/chat
          auth:
            header_name: Authorization
            header_value: Bearer {SECRET}: oops
"""
UNCLOSED_QUOTE = BROKEN_ON_THE_SECRET.replace(f"Bearer {SECRET}: oops", f'"Bearer {SECRET}')
BAD_TAB = BROKEN_ON_THE_SECRET.replace(f"            header_value: Bearer {SECRET}: oops",
                                       f"\theader_value: {SECRET}")


@pytest.mark.parametrize(
    ("text", "where"),
    [(BROKEN_ON_THE_SECRET, "line 11, column 52 (in header_value, value not shown)"),
     (UNCLOSED_QUOTE, "line 12, column 1 (in header_value, value not shown)"),
     (BAD_TAB, "line 11, column 1 (in header_value, value not shown)")],
)  # fmt: skip
def test_a_yaml_error_says_where_and_never_quotes_the_line(text, where):
    (problem,) = problems_of(text)
    assert problem.startswith(f"not valid YAML or JSON: {where}: ")
    assert "\n" not in problem and SECRET not in problem and "Bearer" not in problem


def test_the_proxy_command_prints_one_line_per_problem_and_no_secret(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN_ON_THE_SECRET, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "proxyproof", "proxy", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert SECRET not in run.stderr + run.stdout
    assert "Traceback" not in run.stderr
    (problem,) = [line for line in run.stderr.splitlines() if "line 11, column 52" in line]
    assert "header_value" in problem and "mapping values are not allowed" in problem
