"""Where the reference proxy departs from Kong, in one place.

Every flag is one Kong quirk that ``docs/kong-behaviour.md`` names (the flag index there says
where): all flags off is the fixed proxy (``FIXED``), all on is Kong (``KONG``). The module that
owns a concern reads that flag and nothing else, so a quirk lives in exactly one branch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Behaviour:
    # Streaming and analytics switch Kong's quirks as a whole: too many and too intertwined for a
    # flag each (docs/kong-behaviour.md#streaming, #analytics).
    kong_compat: bool = False
    # Request parsing and checks (#request-body, #request-checks, #model-and-tuning).
    stream_when_truthy: bool = False  # any present non-false `stream` (null, 0, "") streams
    body_limit_only_when_spilled: bool = False  # the limit bites only above nginx's 8 KiB
    form_bodies: bool = False  # x-www-form-urlencoded bodies parse as flat tables
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
    ollama_kong_reply: bool = False  # ISO `created`, no `id`, no completions finish_reason
    ollama_config_only_finish_reason: bool = False  # done_reason ignored; config max_tokens
    ollama_drops_stop_and_seed: bool = False  # fixed maps them to options.stop/seed
    # Response (#response-headers).
    keep_upstream_set_cookie: bool = False  # fixed drops an upstream Set-Cookie on a 200


FIXED = Behaviour()
KONG = Behaviour(**{flag.name: True for flag in fields(Behaviour)})


def behaviour_for(kong_compat: bool) -> Behaviour:
    return KONG if kong_compat else FIXED
