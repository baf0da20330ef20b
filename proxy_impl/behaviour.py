"""Where the reference proxy departs from Kong, in one place.

The proxy does the fixed (recommended) behaviour by default. ``KONG`` switches on every Kong quirk
that ``shared/reference/kong_semantics.md`` marks [BUG] (plus the few Kong-only shapes needed to
replay Kong's fixtures), so Kong's own fixtures replay. Each flag names one concern; the module
that owns the concern reads that flag and nothing else, so a quirk lives in exactly one branch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    name: str
    kong_compat: bool
    # Request parsing and validation (kong_semantics §1, §10.1-4).
    stream_when_truthy: bool  # §1.4: any present non-false `stream` (null, 0, "", "false") streams
    body_limit_only_when_spilled: bool  # §1.1: the size limit bites only above nginx's 8 KiB buffer
    form_bodies: bool  # §1.1 [QUIRK]: application/x-www-form-urlencoded bodies parse as flat tables
    empty_messages_with_prompt_plaintext_400: bool  # §1.2: `messages:[]`+prompt → plain-text 400
    blank_client_model_is_a_name: bool  # §2 [QUIRK]: `"model": ""` is taken as the model name
    # Upstream request (§3.1, §6, §10.8, §10.17).
    http_default_port_443: bool  # §3.1: `http://host/...` without a port connects to port 443
    forward_client_method: bool  # §3.1: the client's method goes upstream instead of POST
    drop_upstream_url_query: bool  # §3.1: the upstream_url's own query string is ignored
    forward_client_accept_encoding: bool  # §3.1: no `Accept-Encoding: gzip, identity` override
    body_auth_only_for_openai_format: bool  # §6: body-param auth is lost for raw and ollama
    # Codecs (§3.2-3.6, §10.9-13).
    positional_chat_prompt: bool  # §3.2: messages placed by position, assistant turns dropped
    completion_prompt_sys_typo: bool  # §3.2: `<<SYS>>` closes the completions system block
    raw_reads_only_kong_shape: bool  # §3.3: only {"data":[{"generated_text"}]}; Lua errors too
    raw_stream_flag_only_in_parameters: bool  # §3.7: no top-level `stream` for TGI / HF API
    ollama_kong_reply: bool  # §3.5: `created` is the ISO string; missing fields stay missing
    ollama_config_only_finish_reason: bool  # §3.5: done_reason ignored; only config max_tokens
    ollama_sampling_extensions: bool  # §10.11 fixed extension: stop/seed → options.stop/seed
    openai_style_response_extras: bool  # §10.12 fixed: `id` and completions `finish_reason`
    # Response (§5, §10.15).
    clear_set_cookie_on_success: bool  # fixed: an upstream Set-Cookie is not handed to clients


FIXED = Behaviour(
    name="fixed",
    kong_compat=False,
    stream_when_truthy=False,
    body_limit_only_when_spilled=False,
    form_bodies=False,
    empty_messages_with_prompt_plaintext_400=False,
    blank_client_model_is_a_name=False,
    http_default_port_443=False,
    forward_client_method=False,
    drop_upstream_url_query=False,
    forward_client_accept_encoding=False,
    body_auth_only_for_openai_format=False,
    positional_chat_prompt=False,
    completion_prompt_sys_typo=False,
    raw_reads_only_kong_shape=False,
    raw_stream_flag_only_in_parameters=False,
    ollama_kong_reply=False,
    ollama_config_only_finish_reason=False,
    ollama_sampling_extensions=True,
    openai_style_response_extras=True,
    clear_set_cookie_on_success=True,
)

KONG = Behaviour(
    name="kong-compat",
    kong_compat=True,
    stream_when_truthy=True,
    body_limit_only_when_spilled=True,
    form_bodies=True,
    empty_messages_with_prompt_plaintext_400=True,
    blank_client_model_is_a_name=True,
    http_default_port_443=True,
    forward_client_method=True,
    drop_upstream_url_query=True,
    forward_client_accept_encoding=True,
    body_auth_only_for_openai_format=True,
    positional_chat_prompt=True,
    completion_prompt_sys_typo=True,
    raw_reads_only_kong_shape=True,
    raw_stream_flag_only_in_parameters=True,
    ollama_kong_reply=True,
    ollama_config_only_finish_reason=True,
    ollama_sampling_extensions=False,
    openai_style_response_extras=False,
    clear_set_cookie_on_success=False,
)


def behaviour_for(kong_compat: bool) -> Behaviour:
    return KONG if kong_compat else FIXED
