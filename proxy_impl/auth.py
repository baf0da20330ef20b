"""The configured upstream credential, by header, query parameter or body field (§6, §10.17).

The configured value is used unless the client sent its own *and* ``allow_override`` is on.
Values are secrets: they are written into the upstream request and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from multidict import CIMultiDict, MultiDict

from .behaviour import Behaviour
from .plugin_config import Auth


def apply_header(auth: Auth, client_headers: Mapping[str, str], upstream: CIMultiDict[str]) -> None:
    if auth.header is None:
        return
    name, value = auth.header
    if name in client_headers and auth.allow_override:
        return  # the client's header was forwarded as it came
    upstream.popall(name, None)
    upstream[name] = value


def apply_query(auth: Auth, client_query: Mapping[str, str], query: MultiDict[str]) -> None:
    if auth.param is None or auth.param[2] != "query":
        return
    name, value, _ = auth.param
    if name in client_query and auth.allow_override:
        return
    query.popall(name, None)
    query[name] = value


def apply_body(
    auth: Auth,
    client_body: Mapping[str, Any],
    upstream_body: MutableMapping[str, Any],
    llama2_format: str,
    behaviour: Behaviour,
) -> None:
    """Kong writes the field into the client table after translating it, so only the openai
    format (which forwards that table) carries it; the fixed proxy writes the upstream body."""
    if auth.param is None or auth.param[2] != "body":
        return
    if behaviour.body_auth_only_for_openai_format and llama2_format != "openai":
        return
    name, value, _ = auth.param
    if name in client_body and auth.allow_override:  # a JSON null counts as sent, as in Kong
        upstream_body[name] = client_body[name]
    else:
        upstream_body[name] = value


def redact(body: Mapping[str, Any], auth: Auth) -> dict[str, Any]:
    """A copy of a client body safe to log: a body credential field is masked."""
    copy = dict(body)
    if auth.param is not None and auth.param[2] == "body" and auth.param[0] in copy:
        copy[auth.param[0]] = "[redacted]"
    return copy
