"""Where the reference proxy departs from Kong, in one place.

Every flag is one Kong quirk that ``shared/reference/kong_semantics.md`` marks [BUG] (or one of the
few Kong-only shapes needed to replay Kong's fixtures): all flags off is the fixed proxy
(``FIXED``), all on is Kong (``KONG``). The module that owns a concern reads that flag and nothing
else, so a quirk lives in exactly one branch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Behaviour:
    # Streaming and analytics switch Kong's quirks as a whole: too many and too intertwined for a
    # flag each (kong_semantics §4, §5).
    kong_compat: bool = False
    # Request parsing and validation (kong_semantics §1, §10.1-4).
    stream_when_truthy: bool = False  # §1.4: any present non-false `stream` (null, 0, "") streams
    body_limit_only_when_spilled: bool = False  # §1.1: the limit bites only above nginx's 8 KiB
    form_bodies: bool = False  # §1.1 [QUIRK]: x-www-form-urlencoded bodies parse as flat tables
    empty_messages_with_prompt_plaintext_400: bool = False  # §1.2: `messages:[]`+prompt → text 400
    blank_client_model_is_a_name: bool = False  # §2 [QUIRK]: `"model": ""` is taken as the name
    # Upstream request (§3.1, §6, §10.8, §10.17).
    http_default_port_443: bool = False  # §3.1: `http://host/...` without a port goes to 443
    forward_client_method: bool = False  # §3.1: the client's method goes upstream, not POST
    drop_upstream_url_query: bool = False  # §3.1: the upstream_url's own query is ignored
    forward_client_accept_encoding: bool = False  # §3.1: no `Accept-Encoding: gzip, identity`
    body_auth_only_for_openai_format: bool = False  # §6: body-param auth lost for raw and ollama
    # Codecs (§3.2-3.6, §10.9-13).
    positional_chat_prompt: bool = False  # §3.2: placed by position, assistant turns dropped
    completion_prompt_sys_typo: bool = False  # §3.2: `<<SYS>>` closes the completions block
    raw_reads_only_kong_shape: bool = False  # §3.3: only {"data":[{"generated_text"}]}; Lua errors
    raw_stream_flag_only_in_parameters: bool = False  # §3.7: no top-level `stream` for TGI / HF
    ollama_kong_reply: bool = False  # §3.5: ISO `created`, no `id`, no completions finish_reason
    ollama_config_only_finish_reason: bool = False  # §3.5: done_reason ignored; config max_tokens
    ollama_drops_stop_and_seed: bool = False  # §10.11: fixed maps them to options.stop/seed
    # Response (§5, §10.15).
    keep_upstream_set_cookie: bool = False  # §10.15: fixed drops an upstream Set-Cookie on a 200


FIXED = Behaviour()
KONG = Behaviour(**{flag.name: True for flag in fields(Behaviour)})


def behaviour_for(kong_compat: bool) -> Behaviour:
    return KONG if kong_compat else FIXED
