"""Templates in ``upstream_url``, rendered so that the client's values stay data
(docs/security.md#upstream-url-templates).

A value a client sends (a header, a query parameter, a path capture) lands in one component of
the upstream URL, and is made safe for that component only:

- path: percent-encoded as one segment (``/``, ``?``, ``#``, ``%`` … encoded), and a segment
  the value makes ``.`` or ``..`` is refused: the client cannot climb out of the configured path;
- query and fragment: percent-encoded (``&``, ``=``, ``#`` … encoded), so one value stays one
  value and adds no parameter;
- userinfo: percent-encoded;
- host and port: the config put a template there on purpose, but the value must still be a
  host name (letters, digits, ``-`` and ``.``) or a port (digits), and the result a valid host or
  port 1-65535. Anything else (``@``, ``/``, ``:`` …) is refused: the value cannot re-aim the URL;
- scheme: only ``http`` or ``https``.

Where a template sits is read from the configured text, never from the values, so a value
cannot move itself into another component. Kong itself replaces the whole field with the raw
value (``merge_model_options`` in ``kong/llm/drivers/shared.lua``): ``render_url_raw``, behind the
``url_templates = "raw"`` policy (opt-in, Kong mode included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .templates import TEMPLATE, RequestValues, UnsafeValue, parse_expression, render, resolve

# A placeholder per template while the URL's structure is read: private-use characters that hold
# none of the delimiters the structure is made of.
_MARK = "\ue000"
# Host names as resolvers take them (letters, digits, "-"; "_" too, as container names have it).
_HOST_VALUE = re.compile(r"[A-Za-z0-9._-]+")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class _Slot:
    source: str
    key: str
    component: str  # scheme, userinfo, host, port, path, query or fragment


def render_url(upstream_url: str, values: RequestValues) -> str:
    """``upstream_url`` with each template replaced by its value, encoded for its component;
    raises ``TemplateError`` (a missing value, Kong's messages) or ``UnsafeValue``."""
    if "$(" not in upstream_url:
        return upstream_url
    if _MARK in upstream_url:  # the one character the reading below reserves for itself
        raise UnsafeValue("upstream_url holds the reserved character U+E000")
    skeleton, slots = _skeleton(upstream_url)
    rendered = [_encoded(slot, resolve(slot.source, slot.key, values)) for slot in slots]
    _refuse_dot_segments(skeleton, slots, rendered)
    first, *pieces = skeleton.split(_MARK)
    text = first + "".join(value + piece for value, piece in zip(rendered, pieces, strict=True))
    if any(slot.component in ("host", "port") for slot in slots):
        _check_authority(text)
    return text


def render_url_raw(upstream_url: str, values: RequestValues) -> str:
    """Kong's way: the first template's raw value becomes the whole upstream_url (Kong's
    ``conf_m.model.options[k] = value``); nothing is encoded or checked."""
    found = TEMPLATE.search(upstream_url)
    if found is None:
        return upstream_url
    return render(found.group(0), values)


# --- where each template sits ---------------------------------------------------------------


def _skeleton(upstream_url: str) -> tuple[str, list[_Slot]]:
    """The URL with a mark per template, and each template's source, key and component."""
    parsed: list[tuple[str, str]] = []

    def mark(found: re.Match[str]) -> str:
        parsed.append(parse_expression(found.group(1), upstream_url))
        return _MARK

    skeleton = TEMPLATE.sub(mark, upstream_url)
    components = _components(skeleton)
    return skeleton, [
        _Slot(source, key, component)
        for (source, key), component in zip(parsed, components, strict=True)
    ]


def _components(skeleton: str) -> list[str]:
    """The component of each mark in ``skeleton``, in order (RFC 3986's generic syntax)."""
    found: list[str] = []
    authority = _authority_span(skeleton)
    if authority is None:  # no scheme and authority: everything is path and after
        path_start = 0
    else:
        start, path_start = authority
        found += ["scheme"] * skeleton[:start].count(_MARK)
        found += _authority_components(skeleton[start:path_start])
    component = "path"
    for char in skeleton[path_start:]:
        if char == "?" and component == "path":
            component = "query"
        elif char == "#" and component in ("path", "query"):
            component = "fragment"
        elif char == _MARK:
            found.append(component)
    return found


def _authority_components(authority: str) -> list[str]:
    userinfo, at, hostport = authority.rpartition("@")
    found = ["userinfo"] * userinfo.count(_MARK) if at else []
    hostport = hostport if at else authority
    colon = hostport.rfind(":")
    if colon < hostport.rfind("]"):  # the colon is inside an IPv6 literal: no port
        colon = -1
    host, port = (hostport, "") if colon < 0 else (hostport[:colon], hostport[colon + 1 :])
    return found + ["host"] * host.count(_MARK) + ["port"] * port.count(_MARK)


# --- making each value safe where it lands --------------------------------------------------


def _encoded(slot: _Slot, value: str) -> str:
    where = f"{slot.source} key {slot.key}"
    if slot.component == "scheme":
        if value.lower() not in _SCHEMES:
            raise UnsafeValue(f"{where}: the upstream scheme must be http or https")
        return value
    if slot.component == "host":
        if not value or not _HOST_VALUE.fullmatch(value):
            raise UnsafeValue(f"{where} is not a valid host name")
        return value
    if slot.component == "port":
        if not value.isascii() or not value.isdigit():
            raise UnsafeValue(f"{where} is not a valid port")
        return value
    # Every reserved character is encoded (quote keeps only letters, digits and "_.-~"): the
    # value is data inside its component, never a delimiter.
    try:
        return quote(value.encode("utf-8"), safe="")
    except UnicodeEncodeError:  # a header's undecodable bytes: not text
        raise UnsafeValue(f"{where} is not valid UTF-8 text") from None


def _refuse_dot_segments(skeleton: str, slots: list[_Slot], rendered: list[str]) -> None:
    """No path segment that holds a value may be ``.`` or ``..`` (or their encoded forms):
    normalisation would turn it into a move up the configured path."""
    values = iter(
        [(slot, value) for slot, value in zip(slots, rendered, strict=True)
         if slot.component == "path"]
    )  # fmt: skip
    for segment in _path_of(skeleton).split("/"):
        marks = segment.count(_MARK)
        if not marks:
            continue
        parts = segment.split(_MARK)
        filled = parts[0]
        source = ""
        for piece in parts[1:]:
            slot, value = next(values)
            filled += value + piece
            source = source or f"{slot.source} key {slot.key}"
        if unquote(filled) in (".", ".."):
            raise UnsafeValue(f"{source} makes a '{unquote(filled)}' path segment")


def _authority_span(url: str) -> tuple[int, int] | None:
    """Where the authority of ``url`` starts and ends (``scheme://`` before it), or None."""
    scheme_end = url.find("://")
    if scheme_end < 0 or any(c in url[:scheme_end] for c in "/?#"):
        return None
    start = scheme_end + 3
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return start, min(ends) if ends else len(url)


def _path_of(skeleton: str) -> str:
    authority = _authority_span(skeleton)
    start = 0 if authority is None else authority[1]
    ends = [i for i in (skeleton.find(c, start) for c in "?#") if i >= 0]
    return skeleton[start : min(ends) if ends else len(skeleton)]


def _check_authority(text: str) -> None:
    """The rendered host must be a host name or address and the port a port: values that passed
    one by one can still combine badly with the configured text (``a..b``, ``99999``)."""
    authority = _authority_span(text)
    if authority is None:
        return
    hostport = text[authority[0] : authority[1]].rpartition("@")[2]
    if hostport.startswith("["):
        return  # an IPv6 literal the config wrote itself: a value cannot add one (no ':')
    host, colon, port = hostport.partition(":")
    if not host or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise UnsafeValue(f"the upstream host '{host}' is not a valid host name")
    if colon and not (port.isdigit() and 0 < int(port) <= 65535):
        raise UnsafeValue(f"the upstream port '{port}' is not a valid port")
