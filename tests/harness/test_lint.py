"""``proxyproof lint``'s engine: each pitfall is found at its field, with its code and fix; the
bundled examples are clean; files that hold no config give one clear error."""

from __future__ import annotations

import copy
import dataclasses
import json
from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyproof.harness.lint import (
    LLAMACPP_NO_PROMPT,
    Finding,
    exit_status,
    findings_as_json,
    format_findings,
    lint_config,
    lint_file,
)
from proxyproof.harness.regex_risk import regex_risk

EXAMPLES = resources.files("proxyproof.fixtures") / "examples"
PLUGIN = "services[0].routes[0].plugins[0]"
CONFIG = f"{PLUGIN}.config"
OPTIONS = f"{CONFIG}.model.options"
URL = f"{OPTIONS}.upstream_url"


def _ai_proxy(
    llama2_format: str = "ollama",
    upstream_url: str = "http://127.0.0.1:11434/api/chat",
    route_type: str = "llm/v1/chat",
    **extra: Any,
) -> dict[str, Any]:
    """An ai-proxy config for llama2 that lints clean; ``extra`` adds top-level fields."""
    options = {"llama2_format": llama2_format, "upstream_url": upstream_url, "max_tokens": 256}
    return {
        "route_type": route_type,
        "model": {"provider": "llama2", "name": "llama2", "options": options},
        **extra,
    }


def _document(config: dict[str, Any], name: str = "ai-proxy") -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [{
            "name": "llama2",
            "url": "http://localhost:32000",
            "routes": [{"name": "chat", "paths": ["/chat"],
                        "plugins": [{"name": name, "config": config}]}],
        }],
    }  # fmt: skip


def _lint(config: dict[str, Any], name: str = "ai-proxy") -> list[Finding]:
    return lint_config(_document(config, name))


def _only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, format_findings(findings)
    return findings[0]


def _codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


# --- clean configs ------------------------------------------------------------------------------


def _example_files() -> list[Any]:
    return sorted((f for f in EXAMPLES.iterdir() if f.name.endswith(".yaml")), key=str)


def test_there_are_five_bundled_examples():
    assert [f.name for f in _example_files()] == [
        "gguf-openai.yaml", "huggingface-raw.yaml", "llamacpp-raw.yaml", "ollama-failover.yaml",
        "ollama.yaml",
    ]  # fmt: skip


@pytest.mark.parametrize("example", _example_files(), ids=lambda f: f.name)
def test_bundled_examples_lint_clean(example):
    findings = lint_file(example)
    assert findings == [], format_findings(findings)
    assert exit_status(findings) == 0


def test_a_plain_llama2_config_is_clean():
    assert _lint(_ai_proxy()) == []


def test_linting_leaves_the_document_untouched():
    document = _document(_ai_proxy("raw", "http://h/completion", auth={"header_name": "X"}))
    before = copy.deepcopy(document)
    assert lint_config(document)
    assert document == before


# --- 1. raw format at llama.cpp's completion endpoint -------------------------------------------


@pytest.mark.parametrize("path", ["/completion", "/completions", "/v1/completions", "/completion/"])
def test_raw_format_at_llamacpp_completion_is_an_error(path):
    finding = _only(_lint(_ai_proxy("raw", f"http://127.0.0.1:8080{path}")))
    assert (finding.severity, finding.code, finding.path) == (
        "error", "raw-llamacpp-completion", URL,
    )  # fmt: skip
    assert LLAMACPP_NO_PROMPT in finding.message
    assert "key 'prompt' not found" in finding.message
    assert "adapter" in finding.fix
    assert "llama2_format: openai" in finding.fix and "/v1/chat/completions" in finding.fix


def test_raw_fix_names_the_completions_route_for_a_completions_route():
    config = _ai_proxy("raw", "http://127.0.0.1:8080/completion", route_type="llm/v1/completions")
    assert "/v1/completions" in _only(_lint(config)).fix


def test_raw_format_at_an_adapter_is_clean():
    assert _lint(_ai_proxy("raw", "http://127.0.0.1:8080/raw")) == []


# --- 2. port defaulting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fixed"),
    [
        ("http://ollama/api/chat", "http://ollama:80/api/chat"),
        ("http://ollama", "http://ollama:80"),
        ("http://user:secret@ollama/api/chat", "http://user:secret@ollama:80/api/chat"),
        ("http://[::1]/api/chat", "http://[::1]:80/api/chat"),
    ],
)
def test_http_without_a_port_is_an_error(url, fixed):
    finding = _only(_lint(_ai_proxy(upstream_url=url)))
    assert (finding.severity, finding.code, finding.path) == ("error", "http-default-port", URL)
    assert "443" in finding.message
    assert fixed in finding.fix


@pytest.mark.parametrize(
    "url",
    [
        "https://ollama.example.com/api/chat",
        "http://ollama:80/api/chat",
        "http://[::1]:11434/api/chat",
    ],
)
def test_https_without_a_port_and_explicit_ports_are_clean(url):
    assert _lint(_ai_proxy(upstream_url=url)) == []


# --- 3. body-param auth with raw/ollama ---------------------------------------------------------

BODY_AUTH = {"param_name": "api_key", "param_value": "k", "param_location": "body"}


@pytest.mark.parametrize(
    ("llama2_format", "url"),
    [("raw", "http://127.0.0.1:8080/raw"), ("ollama", "http://127.0.0.1:11434/api/chat")],
)
def test_body_auth_with_raw_or_ollama_is_an_error(llama2_format, url):
    finding = _only(_lint(_ai_proxy(llama2_format, url, auth=BODY_AUTH)))
    assert (finding.severity, finding.code) == ("error", "body-auth-dropped")
    assert finding.path == f"{CONFIG}.auth.param_location"
    assert "'api_key'" in finding.message
    assert "header" in finding.fix and "llama2_format: openai" in finding.fix


def test_body_auth_with_the_openai_format_is_clean():
    config = _ai_proxy("openai", "http://127.0.0.1:8082/v1/chat/completions", auth=BODY_AUTH)
    assert _lint(config) == []


def test_query_auth_with_raw_is_clean():
    auth = {**BODY_AUTH, "param_location": "query"}
    assert _lint(_ai_proxy("raw", "http://127.0.0.1:8080/raw", auth=auth)) == []


# --- 4. templates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://$(headers.x-upstream):11434/api/chat",
        "http://ollama:$(query_params.port)/api/chat",
        "$(headers.upstream)",
        "$(uri_captures.scheme)://ollama:11434/api/chat",
    ],
)
def test_a_template_in_the_scheme_host_or_port_is_a_warning(url):
    """Explicit, so it works (the bundled proxy takes only a host name or a port there), but the
    client picks which server receives the configured auth."""
    findings = _lint(_ai_proxy(upstream_url=url))
    finding = next(f for f in findings if f.code == "templated-upstream-host")
    assert (finding.severity, finding.path) == ("warning", URL)
    assert "$(" in finding.message and "auth" in finding.message
    assert "fixed" in finding.fix
    assert "templated-upstream-path" not in _codes(findings)


@pytest.mark.parametrize(
    "url",
    ["http://ollama:11434/api/$(uri_captures.op)", "http://h:8082/v1/chat?m=$(query_params.m)"],
)
def test_a_template_only_in_the_path_or_query_is_a_warning(url):
    findings = _lint(_ai_proxy(upstream_url=url))
    finding = next(f for f in findings if f.code == "templated-upstream-path")
    assert (finding.severity, finding.path) == ("warning", URL)
    assert "whole upstream_url" in finding.message  # what Kong itself does with it
    assert "error" not in [f.severity for f in findings if f.code != "upstream-query-ignored"]


def test_a_templated_model_name_is_a_warning():
    config = _ai_proxy()
    config["model"]["name"] = "$(headers.x-model)"
    finding = _only(_lint(config))
    assert (finding.severity, finding.code) == ("warning", "templated-model-name")
    assert finding.path == f"{CONFIG}.model.name"


def test_a_templated_model_name_with_raw_is_clean():
    # raw sends no model name upstream: nothing for a client to choose
    config = _ai_proxy("raw", "http://127.0.0.1:8080/raw")
    config["model"]["name"] = "$(headers.x-model)"
    assert _lint(config) == []


@pytest.mark.parametrize(
    ("template", "kong_says"),
    [
        ("$(header.x-model)", "source 'header' is not supported"),
        ("$(headers)", "cannot parse expression for field 'model.name'"),
        ("$(headers.a.b)", "cannot parse expression for field 'model.name'"),
    ],
)
def test_a_malformed_template_is_an_error(template, kong_says):
    config = _ai_proxy()
    config["model"]["name"] = template
    findings = _lint(config)
    finding = next(f for f in findings if f.code == "bad-template")
    assert (finding.severity, finding.path) == ("error", f"{CONFIG}.model.name")
    assert kong_says in finding.message


# --- 5. vault references ------------------------------------------------------------------------


def test_a_vault_reference_is_a_warning():
    auth = {"header_name": "Authorization", "header_value": "{vault://env/llama-key}"}
    finding = _only(_lint(_ai_proxy(auth=auth)))
    assert (finding.severity, finding.code) == ("warning", "vault-reference")
    assert finding.path == f"{CONFIG}.auth.header_value"
    assert "bundled proxy" in finding.message


def test_a_vault_reference_inside_a_longer_value_is_an_error():
    auth = {"header_name": "Authorization", "header_value": "Bearer {vault://env/llama-key}"}
    finding = _only(_lint(_ai_proxy(auth=auth)))
    assert (finding.severity, finding.code) == ("error", "vault-reference-embedded")
    assert finding.path == f"{CONFIG}.auth.header_value"
    assert "whole value" in finding.message


# --- 6. plugin names ----------------------------------------------------------------------------

BRIEF_PLUGINS = """ai-proxy ai-proxy-advanced ai-prompt-decorator ai-prompt-guard ai-prompt-template
ai-request-transformer ai-response-transformer ai-semantic-cache ai-rate-limiting-advanced key-auth
basic-auth jwt oauth2 hmac-auth ldap-auth acl cors rate-limiting rate-limiting-advanced
request-transformer response-transformer request-size-limiting ip-restriction bot-detection
correlation-id file-log http-log tcp-log udp-log syslog loggly datadog prometheus opentelemetry
zipkin statsd proxy-cache request-termination response-ratelimiting pre-function post-function
grpc-gateway grpc-web aws-lambda azure-functions session acme openid-connect""".split()


def _with_plugin(name: str) -> dict[str, Any]:
    document = _document(_ai_proxy())
    document["services"][0]["plugins"] = [{"name": name}]
    return document


@pytest.mark.parametrize("name", BRIEF_PLUGINS)
def test_kong_plugins_are_known(name):
    assert lint_config(_with_plugin(name)) == []


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("ai-proxi", "ai-proxy"), ("key_auth", "key-auth"), ("ai-proxy-advance", "ai-proxy-advanced")],
)
def test_an_unknown_plugin_is_an_error_with_a_suggestion(name, suggestion):
    finding = _only(lint_config(_with_plugin(name)))
    assert (finding.severity, finding.code) == ("error", "unknown-plugin")
    assert finding.path == "services[0].plugins[0].name"
    assert repr(name) in finding.message
    assert finding.fix == f"did you mean {suggestion!r}?"


def test_an_unknown_plugin_without_a_near_name_points_at_kong_plugins():
    finding = _only(lint_config(_with_plugin("zzzzzz")))
    assert "KONG_PLUGINS" in finding.fix


def test_custom_plugins_can_be_declared():
    assert lint_config(_with_plugin("my-plugin"), custom_plugins=["my-plugin"]) == []


# --- 7. duplicate names -------------------------------------------------------------------------


def test_duplicate_route_names_are_an_error():
    document = _document(_ai_proxy())
    document["routes"] = [{"name": "chat", "paths": ["/other"]}]
    finding = _only(lint_config(document))
    assert (finding.severity, finding.code) == ("error", "duplicate-route-name")
    assert finding.path == "routes[0].name"
    assert "services[0].routes[0]" in finding.message


def test_duplicate_service_names_are_an_error():
    document = _document(_ai_proxy())
    document["services"].append({"name": "llama2", "url": "http://localhost:32001"})
    finding = _only(lint_config(document))
    assert (finding.severity, finding.code, finding.path) == (
        "error", "duplicate-service-name", "services[1].name",
    )  # fmt: skip


def test_two_instances_of_a_plugin_on_one_route_are_an_error():
    document = _document(_ai_proxy())
    document["plugins"] = [{"name": "ai-proxy", "route": "chat", "config": _ai_proxy()}]
    finding = _only(lint_config(document))
    assert (finding.severity, finding.code, finding.path) == (
        "error",
        "duplicate-plugin",
        "plugins[0]",
    )
    assert PLUGIN in finding.message


def test_a_reference_to_a_missing_route_is_an_error():
    document = _document(_ai_proxy())
    document["plugins"] = [{"name": "cors", "route": "chta"}]
    finding = _only(lint_config(document))
    assert (finding.code, finding.path) == ("unknown-reference", "plugins[0].route")


# --- 8. what Kong's schema refuses --------------------------------------------------------------


def _without_option(key: str) -> dict[str, Any]:
    config = _ai_proxy()
    del config["model"]["options"][key]
    return config


def test_llama2_without_a_format_is_an_error_with_kongs_message():
    finding = _only(_lint(_without_option("llama2_format")))
    assert (finding.code, finding.path) == ("llama2-format-missing", f"{OPTIONS}.llama2_format")
    assert "must set 'model.options.llama2_format' for llama2 provider" in finding.message


def test_llama2_without_an_upstream_url_is_an_error_with_kongs_message():
    finding = _only(_lint(_without_option("upstream_url")))
    assert (finding.code, finding.path) == ("upstream-url-missing", URL)
    assert (
        "must set 'model.options.upstream_url' for self-hosted providers/models" in finding.message
    )


def test_a_bad_llama2_format_is_an_error():
    finding = _only(_lint(_ai_proxy("olama")))
    assert (finding.code, finding.path) == ("llama2-format-invalid", f"{OPTIONS}.llama2_format")
    assert finding.fix == "did you mean 'ollama'?"


@pytest.mark.parametrize(
    ("route_type", "code"),
    [("llm/v1/chats", "route-type-invalid"), ("llm/v1/embeddings", "route-type-invalid")],
)
def test_a_bad_route_type_is_an_error(route_type, code):
    finding = _only(_lint(_ai_proxy(route_type=route_type)))
    assert (finding.severity, finding.code, finding.path) == ("error", code, f"{CONFIG}.route_type")


def test_a_missing_route_type_is_an_error():
    config = _ai_proxy()
    del config["route_type"]
    finding = _only(_lint(config))
    assert (finding.code, finding.path) == ("route-type-missing", f"{CONFIG}.route_type")


def test_half_a_header_auth_pair_is_an_error_with_kongs_message():
    finding = _only(_lint(_ai_proxy(auth={"header_name": "Authorization"})))
    assert (finding.code, finding.path) == ("auth-header-incomplete", f"{CONFIG}.auth")
    assert (
        "all or none of these fields must be set: 'auth.header_name', 'auth.header_value'"
        in finding.message
    )


def test_part_of_a_param_auth_trio_is_an_error_with_kongs_message():
    finding = _only(_lint(_ai_proxy(auth={"param_name": "key", "param_value": "k"})))
    assert (finding.code, finding.path) == ("auth-param-incomplete", f"{CONFIG}.auth")
    assert "'auth.param_name', 'auth.param_value', 'auth.param_location'" in finding.message


def test_a_bad_param_location_is_an_error():
    auth = {**BODY_AUTH, "param_location": "header"}
    finding = _only(_lint(_ai_proxy(auth=auth)))
    assert (finding.code, finding.path) == (
        "auth-param-location-invalid", f"{CONFIG}.auth.param_location",
    )  # fmt: skip


def test_a_misspelt_field_is_an_error_with_a_suggestion():
    config = _without_option("upstream_url")
    config["model"]["options"]["upstream-url"] = "http://127.0.0.1:11434/api/chat"
    findings = _lint(config)
    assert _codes(findings) == ["upstream-url-missing", "unknown-field"]
    assert findings[1].path == f"{OPTIONS}.upstream-url"
    assert findings[1].fix == "did you mean 'upstream_url'?"


@pytest.mark.parametrize(
    ("value", "wanted"), [(None, "no _format_version"), (3.0, "number"), ("4.0", "'4.0'")]
)
def test_a_missing_or_bad_format_version_is_an_error(value, wanted):
    document = _document(_ai_proxy())
    document["_format_version"] = value
    finding = _only(lint_config(document))
    assert (finding.code, finding.path) == ("format-version", "_format_version")
    assert wanted in finding.message
    assert '"3.0"' in finding.fix


def test_a_config_without_routes_is_a_warning():
    finding = _only(lint_config({"_format_version": "3.0", "services": []}, "kong.yaml"))
    assert (finding.severity, finding.code, finding.path) == ("warning", "no-routes", "kong.yaml")


def test_wrong_shapes_are_reported_where_they_are():
    document = _document(_ai_proxy())
    document["services"][0]["routes"][0]["plugins"].append("cors")
    document["routes"] = {"name": "x"}
    findings = lint_config(document)
    assert [(f.code, f.path) for f in findings] == [
        ("bad-structure", "services[0].routes[0].plugins[1]"),
        ("bad-structure", "routes"),
    ]


# --- more upstream_url checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("llama2_format", "route_type", "url"),
    [
        ("openai", "llm/v1/chat", "http://h:11434/api/chat"),
        ("raw", "llm/v1/chat", "http://h:11434/api/generate"),
        ("ollama", "llm/v1/chat", "http://h:11434/v1/chat/completions"),
        ("ollama", "llm/v1/chat", "http://h:11434/api/generate"),
        ("ollama", "llm/v1/completions", "http://h:11434/api/chat"),
        ("raw", "llm/v1/chat", "http://h:8080/v1/chat/completions"),
        ("openai", "llm/v1/chat", "http://h:8080/completion"),
        ("openai", "llm/v1/chat", "http://h:8080/v1/completions"),
        ("openai", "llm/v1/completions", "http://h:8080/v1/chat/completions"),
    ],
)
def test_a_format_that_cannot_talk_to_the_endpoint_is_an_error(llama2_format, route_type, url):
    finding = _only(_lint(_ai_proxy(llama2_format, url, route_type)))
    assert (finding.severity, finding.code, finding.path) == ("error", "format-path-mismatch", URL)


def test_preserve_routes_skip_the_endpoint_check():
    # preserve sends the client's own path upstream, so upstream_url's path says nothing
    assert _lint(_ai_proxy("raw", "http://h:8080/completion", route_type="preserve")) == []


def test_a_query_string_in_upstream_url_is_a_warning():
    finding = _only(_lint(_ai_proxy(upstream_url="http://h:11434/api/chat?keep_alive=5m")))
    assert (finding.severity, finding.code, finding.path) == (
        "warning", "upstream-query-ignored", URL,
    )  # fmt: skip


@pytest.mark.parametrize("url", ["ollama:11434/api/chat", "ftp://h:21/x", "http:///api/chat"])
def test_a_url_that_is_not_absolute_http_is_an_error(url):
    finding = _only(_lint(_ai_proxy(upstream_url=url)))
    assert (finding.code, finding.path) == ("upstream-url-invalid", URL)


# --- ai-proxy-advanced, other providers and placement -------------------------------------------


def test_ai_proxy_advanced_targets_are_checked_one_by_one():
    openai = {"route_type": "llm/v1/chat", "model": {"provider": "openai", "name": "gpt-4o"}}
    config = {"targets": [_ai_proxy(), openai, _ai_proxy("raw", "http://h:8080/completion")]}
    finding = _only(_lint(config, "ai-proxy-advanced"))
    assert finding.code == "raw-llamacpp-completion"
    assert finding.path == f"{CONFIG}.targets[2].model.options.upstream_url"


def test_other_providers_are_not_checked():
    config = {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "param_location": "body"},
        "model": {"provider": "openai", "name": "gpt-4o", "options": {"upstream_url": "http://x"}},
    }
    assert _lint(config) == []


def test_plugins_are_found_wherever_they_sit():
    bad = [{"name": "ai-proxy", "config": _ai_proxy("raw", "http://h:8080/completion")}]
    document = {
        "_format_version": "3.0",
        "services": [{"name": "s", "url": "http://h", "plugins": bad,
                      "routes": [{"name": "r", "paths": ["/r"]}]}],
        "routes": [{"name": "top", "paths": ["/t"], "plugins": bad}],
        "consumers": [{"username": "u", "plugins": bad}],
        "plugins": bad,
    }  # fmt: skip
    paths = [f.path for f in lint_config(document) if f.code == "raw-llamacpp-completion"]
    assert [p.removesuffix(".config.model.options.upstream_url") for p in paths] == [
        "services[0].plugins[0]", "routes[0].plugins[0]", "consumers[0].plugins[0]", "plugins[0]",
    ]  # fmt: skip


# --- files that hold no config ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code", "problem"),
    [
        (None, "unreadable-file", "no such file"),
        ("", "empty-config", "is empty"),
        ("# nothing but a comment\n", "empty-config", "is empty"),
        ("- one\n- two\n", "not-a-mapping", "holds a list"),
        ("just words\n", "not-a-mapping", "holds a string"),
        ("services: [\n", "invalid-yaml", "is not valid YAML"),
        ("a: b: c\n", "invalid-yaml", "is not valid YAML"),
    ],
    ids=["missing", "empty", "comment-only", "list", "scalar", "unclosed", "bad-mapping"],
)
def test_a_file_without_a_config_gives_one_clear_error(tmp_path, content, code, problem):
    path = tmp_path / "kong.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    finding = _only(lint_file(path))
    assert (finding.severity, finding.code, finding.path) == ("error", code, str(path))
    assert problem in finding.message
    assert "Kong declarative config" in finding.message
    assert '_format_version: "3.0"' in finding.message
    assert "services" in finding.message and "routes" in finding.message
    assert "proxyproof examples" in finding.fix


def test_a_directory_is_not_a_config(tmp_path):
    assert _only(lint_file(tmp_path)).code == "unreadable-file"


def test_invalid_yaml_says_where(tmp_path):
    path = tmp_path / "kong.yaml"
    path.write_text('_format_version: "3.0"\nservices: [\n', encoding="utf-8")
    assert "line 3" in _only(lint_file(str(path))).message


def test_lint_file_reads_what_lint_config_checks(tmp_path):
    path = tmp_path / "kong.yaml"
    document = _document(_ai_proxy("raw", "http://h:8080/completion"))
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert lint_file(path) == lint_config(document, str(path))


def test_lint_config_on_a_non_mapping_is_one_error():
    finding = _only(lint_config(["a"], "stdin"))
    assert (finding.code, finding.path) == ("not-a-mapping", "stdin")


# --- output -------------------------------------------------------------------------------------


def test_format_findings_prints_each_finding_its_fix_and_a_summary():
    error = Finding("error", "a.b", "broken", "mend it", "x-error")
    warning = Finding("warning", "c", "odd", "look", "x-warning")
    assert format_findings([error, warning]) == (
        "error a.b: broken\n  fix: mend it\nwarning c: odd\n  fix: look\n1 error, 1 warning"
    )
    assert format_findings([error, error]).endswith("\n2 errors, 0 warnings")


def test_format_findings_without_findings():
    assert format_findings([]) == "no problems found"


def test_a_real_finding_reads_well():
    text = format_findings(_lint(_ai_proxy(upstream_url="http://ollama/api/chat")))
    assert text.splitlines() == [
        f"error {URL}: an http:// upstream_url without a port: Kong connects to port 443, not 80 "
        "(it defaults to 443 for every scheme), so it misses a server listening on 80",
        "  fix: write the port explicitly: http://ollama:80/api/chat",
        "1 error, 0 warnings",
    ]


def test_exit_status_is_one_only_with_errors():
    warning = Finding("warning", "p", "m", "f", "c")
    assert exit_status([]) == 0
    assert exit_status([warning]) == 0
    assert exit_status([warning, dataclasses.replace(warning, severity="error")]) == 1


def test_findings_as_json():
    findings = _lint(_ai_proxy("raw", "http://h/completion"))
    report = json.loads(findings_as_json(findings))
    assert (report["errors"], report["warnings"]) == (2, 0)
    assert [Finding(**f) for f in report["findings"]] == findings
    assert json.loads(findings_as_json([])) == {"errors": 0, "warnings": 0, "findings": []}


def test_findings_are_frozen():
    finding = Finding("error", "p", "m", "f", "c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.severity = "warning"  # type: ignore[misc]


# --- route regexes ------------------------------------------------------------------------------


def _with_paths(*paths: str) -> dict[str, Any]:
    document = _document(_ai_proxy())
    document["services"][0]["routes"][0]["paths"] = list(paths)
    return document


@pytest.mark.parametrize(
    ("pattern", "code"),
    [("~/c/(a+)+b$", "route-regex-exponential"), ("~/(a|a)*b", "route-regex-exponential"),
     ("~/(\\w+\\s?)*$", "route-regex-exponential"), ("~/.*.*.*x", "route-regex-polynomial"),
     ("~/(?<m>[a-z]+)(?=/chat)", "route-regex-unsupported"),
     ("~/(a)/\\1", "route-regex-unsupported")],
)  # fmt: skip
def test_a_route_regex_the_proxy_refuses_is_a_warning(pattern, code):
    finding = _only(lint_config(_with_paths("/chat", pattern)))
    assert (finding.severity, finding.code) == ("warning", code)
    assert finding.path == "services[0].routes[0].paths[1]"
    assert "the bundled proxy refuses it" in finding.message


@pytest.mark.parametrize(
    "pattern",
    ["~/models/(?<model>[^/]+)/chat$", "~/v1/.*", "~/(?<a>[a-z]+)/(?<b>[a-z]+)/(?<c>[a-z]+)$",
     "~/(/[a-z]+)+$", "~/(.*)/chat$", "~/(\\d{1,3}\\.){3}\\d{1,3}$"],
)  # fmt: skip
def test_ordinary_route_regexes_lint_clean(pattern):
    assert lint_config(_with_paths(pattern)) == []


_ATOMS = st.sampled_from(["a", "b", "[ab]", ".", "\\w", "/", "[^/]"])
_PATTERNS = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map(lambda pair: f"({pair[0]}|{pair[1]})"),
        st.tuples(inner, st.sampled_from(["*", "+", "?", "{1,3}", "{2}"])).map(
            lambda pair: f"({pair[0]}){pair[1]}"),
    ),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(_PATTERNS)
def test_the_lint_flags_every_regex_the_proxy_refuses(pattern):
    """The lint reads regexes its own way (it must not share the proxy's reading) and leans to
    warning; what the proxy refuses, it must flag."""
    from proxyproof.proxy_impl.route_regex import RouteRegexError, compile_route_regex

    try:
        compile_route_regex("/" + pattern)
    except RouteRegexError:
        assert regex_risk("/" + pattern) is not None
