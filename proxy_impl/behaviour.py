"""Where the reference proxy departs from Kong, in one place.

Every flag is one Kong quirk that ``docs/kong-behaviour.md`` names (the flag index there says
where): all flags off is the fixed proxy (``FIXED``), all on is Kong (``KONG``). The module that
owns a concern reads that flag and nothing else, so a quirk lives in exactly one branch.
A field that is not a boolean is a proxyproof policy, not a quirk: Kong mode keeps its default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Literal

ControlTokens = Literal["neutralise", "reject"]
CONTROL_TOKEN_POLICIES: tuple[ControlTokens, ...] = ("neutralise", "reject")
UrlTemplates = Literal["encoded", "raw"]
CONTROL_TOKENS_ENV = "PROXYPROOF_CONTROL_TOKENS"  # docs/prompt-injection.md


@dataclass(frozen=True)
class Behaviour:
    # Streaming and analytics switch Kong's quirks as a whole: too many and too intertwined for a
    # flag each (docs/kong-behaviour.md#streaming, #analytics).
    kong_compat: bool = False
    # Request parsing and checks (#request-body, #request-checks, #model-and-tuning).
    stream_when_truthy: bool = False  # any present non-false `stream` (null, 0, "") streams
    body_limit_only_when_spilled: bool = False  # the limit bites only above nginx's 8 KiB
    form_bodies: bool = False  # x-www-form-urlencoded bodies parse as flat tables
    duplicate_json_keys_last_wins: bool = False  # fixed refuses `{"a":1,"a":2}` (security.md)
    empty_messages_with_prompt_plaintext_400: bool = False  # `messages:[]`+prompt → text 400
    blank_client_model_is_a_name: bool = False  # `"model": ""` is taken as the name
    # Upstream request (#upstream-request, #auth).
    http_default_port_443: bool = False  # `http://host/...` without a port goes to 443
    forward_client_method: bool = False  # the client's method goes upstream, not POST
    drop_upstream_url_query: bool = False  # the upstream_url's own query is ignored
    forward_client_accept_encoding: bool = False  # no `Accept-Encoding: gzip, identity`
    body_auth_only_for_openai_format: bool = False  # body-param auth lost for raw and ollama
    # Codecs (#raw-format, #ollama-format).
    positional_chat_prompt: bool = False  # placed by position, assistant turns dropped
    completion_prompt_sys_typo: bool = False  # `<<SYS>>` closes the completions block
    raw_reads_only_kong_shape: bool = False  # only {"data":[{"generated_text"}]}; Lua errors
    raw_stream_flag_only_in_parameters: bool = False  # no top-level `stream` for TGI / HF
    raw_prompt_keeps_control_tokens: bool = False  # a client's `[/INST]`, `</s>`… as typed
    ollama_kong_reply: bool = False  # ISO `created`, no `id`, no completions finish; Lua sums
    ollama_config_only_finish_reason: bool = False  # done_reason ignored; config max_tokens
    ollama_drops_stop_and_seed: bool = False  # fixed maps them to options.stop/seed
    openai_choices_lua_truth: bool = False  # `"choices": null` passes; a null reply: Lua error
    # Response (#response-headers).
    keep_upstream_set_cookie: bool = False  # fixed drops an upstream Set-Cookie on a 200
    # JSON the proxy writes (#json-encoding): lua-cjson's `\/`, %.16g numbers, `{}` for an
    # upstream's empty array (the Lua errors are the codecs' flags': raw_reads_only_kong_shape,
    # ollama_kong_reply, openai_choices_lua_truth).
    cjson_encoding: bool = False
    # Policy (docs/prompt-injection.md): what the fixed raw codec does with control tokens in
    # client text; moot while raw_prompt_keeps_control_tokens is on.
    control_tokens: ControlTokens = "neutralise"
    # Kong's raw upstream_url templates (a client's value becomes the whole URL) let a client aim
    # the request and its credentials anywhere: a quirk, but opt-in even in Kong mode
    # (docs/security.md#upstream-url-templates).
    url_templates: UrlTemplates = "encoded"


FIXED = Behaviour()
KONG = Behaviour(**{flag.name: True for flag in fields(Behaviour) if flag.default is False})


def behaviour_for(
    kong_compat: bool, control_tokens: str | None = None, url_templates: UrlTemplates = "encoded"
) -> Behaviour:
    """Kong's behaviour, or the fixed one with the control-token policy given, else the one
    ``PROXYPROOF_CONTROL_TOKENS`` names, else ``neutralise``; templates as ``url_templates``."""
    if url_templates != "encoded":
        return replace(behaviour_for(kong_compat, control_tokens), url_templates=url_templates)
    if kong_compat:
        return KONG
    policy = control_tokens or os.environ.get(CONTROL_TOKENS_ENV) or FIXED.control_tokens
    for choice in CONTROL_TOKEN_POLICIES:
        if policy == choice:
            return replace(FIXED, control_tokens=choice)
    raise ValueError(f"control tokens policy {policy!r}: choose "
                     f"{' or '.join(CONTROL_TOKEN_POLICIES)} ({CONTROL_TOKENS_ENV})")
