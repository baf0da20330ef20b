"""Loading Kong declarative config: Kong's 00-config_spec llama2 cases, field paths in every
error, warnings for what is not supported, and the bundled examples."""

from __future__ import annotations

import copy
from importlib import resources

import pytest
from proxy_support import CHAT, advanced, ai_proxy, declarative

from proxyproof.proxy_impl import ConfigError, describe, load_config
from proxyproof.proxy_impl.model import UpstreamPolicy

EXAMPLES = sorted(
    (resources.files("proxyproof.fixtures") / "examples").iterdir(), key=lambda path: path.name
)
PLUGIN = "services[0].routes[0].plugins[0].config"


def kong_spec_config(**options):
    """The config of Kong's 00-config_spec llama2 cases."""
    return {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": "Bearer token"},
        "model": {
            "name": "llama-2-7b-chat-hf",
            "provider": "llama2",
            "options": {"max_tokens": 256, "temperature": 1.0, **options},
        },
    }


def problems_of(config) -> list[str]:
    with pytest.raises(ConfigError) as failure:
        load_config(config)
    return failure.value.problems


def one_route(plugin_config, plugin="ai-proxy"):
    return declarative({"/chat": plugin_config}, plugin=plugin)


# --- Kong's 00-config_spec cases ---------------------------------------------------------------


def test_requires_upstream_url_when_using_self_hosted_llama2_model():
    config = kong_spec_config(llama2_format="raw")
    assert problems_of(one_route(config)) == [
        f"{PLUGIN}.model.options.upstream_url: "
        "must set 'model.options.upstream_url' for self-hosted providers/models"
    ]


def test_requires_llama2_format():
    config = kong_spec_config(upstream_url="http://nowhere")
    assert problems_of(one_route(config)) == [
        f"{PLUGIN}.model.options.llama2_format: "
        "must set 'model.options.llama2_format' for llama2 provider"
    ]


def test_does_not_require_api_auth_for_self_hosted_llama2_model():
    config = kong_spec_config(llama2_format="raw", upstream_url="http://nowhere")
    del config["auth"]
    loaded = load_config(one_route(config))
    assert loaded.routes[0].plugin.target.auth.header is None
    assert loaded.warnings == []


@pytest.mark.parametrize(
    ("auth", "fields"),
    [
        ({"header_name": "Authorization"}, "'auth.header_name', 'auth.header_value'"),
        ({"header_value": "v"}, "'auth.header_name', 'auth.header_value'"),
        (
            {"param_name": "apikey", "param_value": "key"},
            "'auth.param_name', 'auth.param_value', 'auth.param_location'",
        ),
    ],
)
def test_auth_fields_are_all_or_none(auth, fields):
    config = kong_spec_config(llama2_format="raw", upstream_url="http://nowhere")
    config["auth"] = auth
    assert problems_of(one_route(config)) == [
        f"{PLUGIN}.auth: all or none of these fields must be set: {fields}"
    ]


def test_header_and_param_auth_together_are_valid():
    config = kong_spec_config(llama2_format="raw", upstream_url="http://nowhere")
    config["auth"] = {
        "param_name": "apikey",
        "param_value": "key",
        "param_location": "query",
        "header_name": "Authorization",
        "header_value": "Bearer token",
    }
    auth = load_config(one_route(config)).routes[0].plugin.target.auth
    assert auth.header == ("Authorization", "Bearer token")
    assert auth.param == ("apikey", "key", "query")
    assert "Bearer token" not in repr(auth) and "'key'" not in repr(auth)


# --- types, enums, ranges, unknown fields -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"temperature": 6}, "model.options.temperature: value should be between 0 and 5"),
        ({"top_p": 1.5}, "model.options.top_p: value should be between 0 and 1"),
        ({"top_k": 501}, "model.options.top_k: value should be between 0 and 500"),
        ({"top_k": 1.5}, "model.options.top_k: expected an integer"),
        ({"max_tokens": "many"}, "model.options.max_tokens: expected an integer"),
        ({"input_cost": 0}, "model.options.input_cost: value must be greater than 0"),
        (
            {"llama2_format": "gguf"},
            "model.options.llama2_format: expected one of: raw, openai, ollama",
        ),
        ({"upstream_url": "nowhere"}, "model.options.upstream_url: missing scheme in url"),
        ({"upstream_url": "http://"}, "model.options.upstream_url: missing host in url"),
        ({"mistral_fromat": "ollama"}, "model.options.mistral_fromat: unknown field"),
    ],
)
def test_option_errors_name_their_field(change, problem):
    config = ai_proxy(CHAT, "raw", "http://nowhere")
    config["model"]["options"].update(change)
    assert problems_of(one_route(config)) == [f"{PLUGIN}.{problem}"]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda c: c.update(route_type="preserve"),
         "route_type: route_type 'preserve' is not supported by proxyproof "
         "(only llm/v1/chat and llm/v1/completions)"),
        (lambda c: c.update(route_type="llm/v2/chat"), "route_type: expected one of: "),
        (lambda c: c["model"].update(provider="openai"),
         "model.provider: provider 'openai' is not supported by proxyproof (only 'llama2')"),
        (lambda c: c["model"].update(provider="llama3"), "model.provider: expected one of: "),
        (lambda c: c.update(response_streaming="sometimes"),
         "response_streaming: expected one of: allow, deny, always"),
        (lambda c: c.update(llm_format="anthropic"),
         "llm_format: client-side format 'anthropic' is not supported by proxyproof"),
        (lambda c: c.update(model_name_header="yes"), "model_name_header: expected a boolean"),
        (lambda c: c.update(routetype="x"), "routetype: unknown field"),
        (lambda c: c.pop("route_type"), "route_type: required field missing"),
        (lambda c: c["model"].pop("provider"), "model.provider: required field missing"),
        (lambda c: c.update(auth={"param_name": "k", "param_value": "v",
                                   "param_location": "header"}),
         "auth.param_location: expected one of: query, body"),
    ],
)  # fmt: skip
def test_plugin_errors_name_their_field(edit, problem):
    config = ai_proxy(CHAT, "raw", "http://nowhere")
    edit(config)
    problems = problems_of(one_route(config))
    assert len(problems) == 1
    assert problems[0].startswith(f"{PLUGIN}.{problem}")


def test_every_problem_is_reported_at_once():
    config = ai_proxy(CHAT, "raw", "http://nowhere", temperature=9, top_k=-1)
    config["colour"] = "blue"
    assert len(problems_of(one_route(config))) == 3


def test_template_shapes_are_checked_at_load():
    config = ai_proxy(CHAT, "raw", "http://host/$(uri_captures_model)", name="$(cookies.m)")
    assert problems_of(one_route(config)) == [
        f"{PLUGIN}.model.name: source 'cookies' is not supported",
        f"{PLUGIN}.model.options.upstream_url: cannot parse expression for field "
        "'http://host/$(uri_captures_model)'",
    ]


# --- AI Proxy Advanced -------------------------------------------------------------------------


def test_advanced_target_errors_carry_the_target_path():
    target = ai_proxy(CHAT, "raw", "http://nowhere")
    del target["model"]["options"]["upstream_url"]
    problems = problems_of(one_route(advanced(target), plugin="ai-proxy-advanced"))
    assert problems == [
        f"{PLUGIN}.targets[0].model.options.upstream_url: "
        "must set 'model.options.upstream_url' for self-hosted providers/models"
    ]


def test_several_targets_are_served_by_one_route():
    target = ai_proxy(CHAT, "raw", "http://nowhere")
    config = {"targets": [target, {**copy.deepcopy(target), "weight": 5}]}
    plugin = load_config(one_route(config, plugin="ai-proxy-advanced")).routes[0].plugin
    assert [t.weight for t in plugin.targets] == [100, 5]
    assert plugin.target is plugin.targets[0]


def test_advanced_needs_a_target():
    problems = problems_of(one_route({"targets": []}, plugin="ai-proxy-advanced"))
    assert problems == [f"{PLUGIN}.targets: required field missing (at least one target)"]


def test_balancer_timeouts_and_retries_drive_the_upstream_policy():
    target = ai_proxy(CHAT, "ollama", "http://nowhere/api/chat")
    balancer = {"read_timeout": 1500, "retries": 2, "failover_criteria": ["error", "http_429"]}
    config = declarative(
        {"/chat": {"plugin": "ai-proxy-advanced", "config": advanced(target, balancer=balancer)}},
        service={"connect_timeout": 700, "read_timeout": 9000},
    )
    route = load_config(config).routes[0]
    assert route.plugin.kind == "ai-proxy-advanced"
    assert route.plugin.max_request_body_size == 1048576
    assert route.upstream == UpstreamPolicy(
        connect_timeout=700,
        read_timeout=1500,
        write_timeout=60000,
        retries=2,
        failover_criteria=("error", "http_429"),
    )


def test_service_timeouts_are_the_ai_proxy_upstream_policy():
    config = declarative(
        {"/chat": ai_proxy(CHAT, "raw", "http://nowhere")},
        service={"read_timeout": 250, "retries": 0},
    )
    route = load_config(config).routes[0]
    assert route.plugin.max_request_body_size == 8192
    assert route.upstream.read_timeout == 250
    assert route.upstream.retries == 0


def test_a_whole_float_service_timeout_is_used_not_dropped():
    """YAML's ``250.0`` passes the integer check, so it must not fall back to the default."""
    config = declarative(
        {"/chat": ai_proxy(CHAT, "raw", "http://nowhere")},
        service={"read_timeout": 250.0, "retries": 1.0},
    )
    route = load_config(config).routes[0]
    assert (route.upstream.read_timeout, route.upstream.retries) == (250, 1)


# --- warnings: loaded, never silently ignored ---------------------------------------------------


def test_unsupported_plugins_and_fields_are_warnings():
    config = declarative({"/chat": ai_proxy(CHAT, "raw", "http://nowhere")})
    route = config["services"][0]["routes"][0]
    route["plugins"].append({"name": "key-auth", "config": {"key_names": ["apikey"]}})
    route["headers"] = {"x-team": ["a"]}
    plugin_config = route["plugins"][0]["config"]
    plugin_config["model"]["options"]["azure_instance"] = "my-azure"
    plugin_config["model"]["options"]["anthropic_version"] = None  # unset: no warning
    plugin_config["model"]["options"]["azure_api_version"] = "2023-05-15"  # Kong's default
    plugin_config["auth"] = {"azure_use_managed_identity": True}
    config["consumers"] = [{"username": "alice"}]
    loaded = load_config(config)
    assert len(loaded.routes) == 1
    assert loaded.warnings == [
        "consumers: entities of this kind are ignored by proxyproof",
        "services[0].routes[0].plugins[1]: plugin 'key-auth' is not implemented by proxyproof: "
        "ignored",
        "services[0].routes[0].headers: is set but route matching on it is not implemented by "
        "proxyproof (the route matches without it)",
        f"{PLUGIN}.auth.azure_use_managed_identity: is set but only applies to other providers; "
        "the llama2 provider ignores it",
        f"{PLUGIN}.model.options.azure_instance: is set but only applies to other providers; "
        "the llama2 provider ignores it",
    ]


def test_a_route_without_ai_plugin_is_a_warning():
    config = declarative({"/chat": ai_proxy(CHAT, "raw", "http://nowhere")})
    config["services"][0]["routes"].append({"name": "plain", "paths": ["/plain"]})
    loaded = load_config(config)
    assert [route.plugin is None for route in loaded.routes] == [False, True]
    assert loaded.warnings == [
        "services[0].routes[1]: has no ai-proxy or ai-proxy-advanced plugin: proxyproof answers "
        "it with 501"
    ]


# --- document structure ---------------------------------------------------------------------


def test_top_level_routes_and_plugins_refer_by_name():
    config = {
        "_format_version": "3.0",
        "services": [{"name": "llm", "url": "http://x", "read_timeout": 1234}],
        "routes": [{"name": "chat", "paths": ["/chat"], "service": {"name": "llm"}}],
        "plugins": [
            {"name": "ai-proxy", "route": "chat", "config": ai_proxy(CHAT, "raw", "http://n")},
        ],
    }
    route = load_config(config).routes[0]
    assert route.name == "chat"
    assert route.plugin.target.options.upstream_url == "http://n"
    assert route.upstream.read_timeout == 1234


def test_a_global_plugin_applies_to_every_route_and_the_route_level_one_wins():
    config = {
        "_format_version": "3.0",
        "routes": [{"name": "a", "paths": ["/a"]}, {"name": "b", "paths": ["/b"], "plugins": [
            {"name": "ai-proxy", "config": ai_proxy(CHAT, "ollama", "http://route-level")}]}],
        "plugins": [{"name": "ai-proxy", "config": ai_proxy(CHAT, "raw", "http://global")}],
    }  # fmt: skip
    routes = load_config(config).routes
    assert [r.plugin.target.options.upstream_url for r in routes] == [
        "http://global",
        "http://route-level",
    ]


def test_unknown_reference_and_unknown_top_level_key():
    config = {
        "_format_version": "3.0",
        "routes": [{"name": "a", "paths": ["/a"], "service": "missing"}],
        "servics": [],
    }
    assert problems_of(config) == [
        "servics: unknown field",
        "routes[0].service: refers to 'missing', which is not defined",
    ]


def test_format_version_is_required():
    config = declarative({"/chat": ai_proxy(CHAT, "raw", "http://n")})
    del config["_format_version"]
    assert problems_of(config) == [
        '_format_version: required, e.g. "3.0" (Kong declarative config)'
    ]


def test_route_paths_and_methods_are_checked():
    config = declarative({"/chat": ai_proxy(CHAT, "raw", "http://n")})
    route = config["services"][0]["routes"][0]
    route["paths"] = ["chat", "~/(?<broken"]
    route["methods"] = ["FETCH"]
    assert problems_of(config) == [
        "services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path)",
        "services[0].routes[0].paths[1]: invalid regex: missing >, unterminated name at position 5",
        "services[0].routes[0].methods: invalid method 'FETCH'",
    ]


def test_yaml_text_and_invalid_yaml():
    text = "_format_version: '3.0'\nroutes:\n  - paths: [/c]\n    plugins:\n"
    text += "      - name: ai-proxy\n"
    text += "        config: {route_type: llm/v1/chat, model: {provider: llama2, options: "
    text += "{llama2_format: raw, upstream_url: 'http://n'}}}\n"
    assert load_config(text).routes[0].paths[0].text == "/c"
    assert problems_of("a: [b\n")[0].startswith("not valid YAML or JSON")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_load_without_warnings(example):
    config = load_config(example.read_text(encoding="utf-8"))
    assert config.warnings == []
    assert len(config.routes) == 2
    lines = describe(config)
    assert len(lines) == 2 and all("llama2/llama2" in line for line in lines)


def test_describe_hides_credentials_in_upstream_urls():
    config = load_config(
        declarative({"/chat": ai_proxy(CHAT, "raw", "http://user:pw@host/x?key=secret")})
    )
    (line,) = describe(config)
    assert "secret" not in line and "pw" not in line
    assert "http://host/x?…" in line


def test_write_timeout_is_accepted_with_a_warning():
    config = declarative(
        {"/chat": ai_proxy(CHAT, "raw", "http://n")}, service={"write_timeout": 5000}
    )
    loaded = load_config(config)
    assert loaded.routes[0].upstream.write_timeout == 5000
    assert loaded.warnings == [
        "services[0].write_timeout: is set but is not enforced by proxyproof (only connect and "
        "read timeouts are; request bodies are written at once)"
    ]


@pytest.mark.parametrize(("text", "found"), [("", "nothing (the file is empty)"),
                                             ("- a\n- b\n", "a list"), ("just text\n", "a str")])
def test_a_file_that_is_not_a_config_says_what_it_should_hold(text, found):
    with pytest.raises(ConfigError) as raised:
        load_config(text if "\n" in text else text + "\n")
    assert raised.value.problems == [
        'expected a Kong declarative config: a mapping with _format_version: "3.0" and services '
        f"(or routes); found {found}"]


def test_a_misspelled_plugin_is_refused_as_kong_refuses_it():
    config = declarative({"/chat": {"plugin": "ai-proxi", "config": {}}})
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.problems == [
        "services[0].routes[0].plugins[0].name: plugin 'ai-proxi' not enabled; add it to the "
        "'plugins' configuration property"]
    known = declarative({"/chat": {"plugin": "key-auth", "config": {}},
                         "/c": ai_proxy(CHAT, "raw", "http://n")})
    assert "plugin 'key-auth' is not implemented by proxyproof: ignored" in " ".join(
        load_config(known).warnings)
