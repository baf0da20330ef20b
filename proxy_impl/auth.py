"""The configured upstream credential, by header, query parameter or body field
(docs/kong-behaviour.md#auth).

The configured value is used unless the client sent its own *and* ``allow_override`` is on.
Values are secrets: they are written into the upstream request and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from multidict import CIMultiDict, MultiDict

from .behaviour import Behaviour
from .model import OPENAI, Auth


def apply_header(auth: Auth, client_headers: Mapping[str, str], upstream: CIMultiDict[str]) -> None:
    if auth.header is None:
        return
    name, value = auth.header
    if not _client_overrides(auth, name, client_headers):  # else it was forwarded as it came
        upstream.popall(name, None)
        upstream[name] = value


def apply_query(auth: Auth, client_query: Mapping[str, str], query: MultiDict[str]) -> None:
    param = _param_in(auth, "query")
    if param is None:
        return
    name, value = param
    if not _client_overrides(auth, name, client_query):  # else it was forwarded as it came
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
    param = _param_in(auth, "body")
    if param is None or (behaviour.body_auth_only_for_openai_format and llama2_format != OPENAI):
        return
    name, value = param
    # The codec may have dropped the client's field, so an override is written back too.
    upstream_body[name] = client_body[name] if _client_overrides(auth, name, client_body) else value


def redact(body: Mapping[str, Any], auth: Auth) -> dict[str, Any]:
    """A copy of a client body safe to log: a body credential field is masked."""
    copy = dict(body)
    param = _param_in(auth, "body")
    if param is not None and param[0] in copy:
        copy[param[0]] = "[redacted]"
    return copy


def _param_in(auth: Auth, location: str) -> tuple[str, str] | None:
    """The credential's parameter name and value when it goes in ``location``."""
    if auth.param is None or auth.param[2] != location:
        return None
    return auth.param[0], auth.param[1]


def _client_overrides(auth: Auth, name: str, client: Mapping[str, Any]) -> bool:
    """The client sent the credential itself (a JSON null counts, as in Kong) and may."""
    return auth.allow_override and name in client
