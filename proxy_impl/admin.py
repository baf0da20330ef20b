"""Kong's Admin API, the part a DB-less Kong has that tools configure it through: ``GET /``,
``GET /status`` and ``POST /config``. Whatever configures a DB-less Kong (the harness's ``kong``
adapter, deck, curl) configures this proxy the same way.

The proxy's pipeline reads its router once per request, from its state. ``POST /config`` reads and
checks the whole new config first, then swaps the router in one assignment: a request in flight
finishes with the config it started with, and a config that is refused changes nothing.

Shapes, status codes and messages are Kong's (``kong/api/routes/config.lua``, ``kong.lua``,
``kong/db/errors.lua``); an answer that echoes entities masks their secrets.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import abc, web

from . import kong_schema as kong
from .balancer.route import Balancers
from .behaviour import UrlTemplates
from .config import ConfigError
from .config_fields import Problems
from .config_text import ConfigTextError, parse_config_text
from .declarative import read_routes
from .json_text import compact_json
from .model import AI_PLUGINS, Config
from .pipeline import ProxyState
from .routing import Router
from .server import STATE, UNLIMITED_BODY_CAP, proxy_app

logger = logging.getLogger("proxyproof.admin")

KONG_VERSION = "3.13.0"  # the Kong whose schema the config readers follow (kong_schema)
EMPTY_HASH = "0" * 32  # Kong's configuration_hash before any config is loaded
ADMIN_BODY_CAP = 16 * 1024 * 1024
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Entity collections whose elements Kong reports as entities (``@entity``, flattened errors).
ENTITY_KINDS = {"services", "routes", "plugins", *kong.TOP_LEVEL_ENTITIES}
MASK = "******"
ID_NAMESPACE = uuid.UUID("6e1c3f0a-5b1d-4f0e-9a57-70726f787970")  # ids for entities without one

Segment = str | int
AppFactory = Callable[[], web.Application]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the config the proxy serves ----------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """A config being served, with the document it came from and Kong's hash of it."""

    config: Config
    document: Mapping[str, Any] | None = None
    hash: str = EMPTY_HASH


EMPTY = Loaded(Config(()))


@dataclass
class Traffic:
    """The proxy's requests, for ``/status``: counted per request (the app sees no sockets)."""

    total: int = 0
    active: int = 0


class ConfigHolder:
    """The running proxy's config: read by the admin app, replaced whole by ``swap``."""

    def __init__(self, state: ProxyState, kong_compat: bool, loaded: Loaded = EMPTY) -> None:
        self._state = state
        self.kong_compat = kong_compat
        self.loaded = loaded
        self.node_id = str(uuid.uuid4())
        self.traffic = Traffic()
        # One POST /config at a time from check to swap, so two posted at once are served in
        # the order they were checked and each 201 means "this config is being served".
        self.changing = asyncio.Lock()

    def swap(self, loaded: Loaded, router: Router | None = None) -> None:
        # One assignment each; the pipeline reads the router once per request, and the admin app
        # reads ``loaded`` only from its own loop, where nothing runs between these two lines.
        self._state.router = router if router is not None else Router(loaded.config.routes)
        self.loaded = loaded
        # The new config's plugins start with fresh balancers (as Kong rebuilds them).
        self._state.balancers.keep_only(
            route.plugin for route in loaded.config.routes if route.plugin is not None
        )

    def balancer_status(self) -> list[dict[str, Any]]:
        """Each AI route's targets with their health and figures (``GET /status``)."""
        shown = []
        for route in self.loaded.config.routes:
            plugin = route.plugin
            if plugin is None:
                continue
            balancer = self._state.balancers.of(plugin)
            shown.append({
                "route": route.name,
                "plugin": plugin.kind,
                "algorithm": plugin.balancer.algorithm,
                "targets": balancer.status(),
            })  # fmt: skip
        return shown


HOLDER = web.AppKey("proxyproof_config_holder", ConfigHolder)


def serve(document: Any) -> Config:
    """``document`` as the routes to serve; raises ``ConfigError``. Unlike ``load_config`` an
    empty config is fine: a DB-less Kong starts with none and takes one that defines nothing."""
    problems = Problems()
    routes = read_routes(document, problems)
    if problems.errors:
        raise ConfigError(problems.errors)
    return Config(tuple(routes), problems.warnings)


def read_source(source: str | os.PathLike[str] | Mapping[str, Any]) -> Loaded:
    """A config given at start-up (a path, YAML/JSON text or a mapping), as ``load_config``
    takes it; raises ``ConfigError``."""
    if isinstance(source, Mapping):
        return Loaded(serve(source), source, _document_hash(source))
    text = source if isinstance(source, str) and "\n" in source else None
    if text is None:
        text = Path(source).read_text(encoding="utf-8")
    document = _parse_text(text)
    if isinstance(document, str):
        raise ConfigError([document])
    return Loaded(serve(document), document, _text_hash(text))


Source = str | os.PathLike[str] | Mapping[str, Any] | Loaded | None


def live_proxy_app(
    config: Source = None,
    *,
    kong_compat: bool = False,
    url_templates: UrlTemplates = "encoded",
    resolver: abc.AbstractResolver | None = None,
    log: Callable[[str], None] | None = None,
    balancers: Balancers | None = None,
) -> web.Application:
    """The reference proxy serving ``config`` (none: every request is Kong's "no Route matched"
    404) whose config ``admin_app(app[HOLDER])`` replaces."""
    if isinstance(config, Loaded):
        loaded = config
    else:
        loaded = EMPTY if config is None else read_source(config)
    app = proxy_app(loaded.config, kong_compat=kong_compat, url_templates=url_templates,
                    resolver=resolver, log=log, balancers=balancers)
    holder = ConfigHolder(app[STATE], kong_compat, loaded)
    app[HOLDER] = holder
    app.middlewares.append(_live(holder))
    return app


def proxy_and_admin_apps(
    config: Source = None,
    kong_compat: bool = False,
    *,
    url_templates: UrlTemplates = "encoded",
    resolver: abc.AbstractResolver | None = None,
    log: Callable[[str], None] | None = None,
    balancers: Balancers | None = None,
) -> tuple[AppFactory, AppFactory]:
    """Factories for ``serving`` (each called once): the proxy, and its admin app. The config
    (as ``read_source`` takes it, or what it returned) is read now: a bad one raises
    ``ConfigError`` before anything listens."""
    proxy = live_proxy_app(config, kong_compat=kong_compat, url_templates=url_templates,
                           resolver=resolver, log=log, balancers=balancers)
    admin = admin_app(proxy[HOLDER])
    return (lambda: proxy), (lambda: admin)


def _live(holder: ConfigHolder) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def live(request: web.Request, handler: Handler) -> web.StreamResponse:
        traffic = holder.traffic
        traffic.total += 1
        traffic.active += 1
        try:
            # proxy_app sizes its body cap for its first config; a later one may accept more.
            # Read up to the cap any config allows: each route's own limit still decides.
            return await handler(request.clone(client_max_size=UNLIMITED_BODY_CAP))
        finally:
            traffic.active -= 1

    return live


# --- the admin application ----------------------------------------------------------------------


def admin_app(holder: ConfigHolder) -> web.Application:
    app = web.Application(client_max_size=ADMIN_BODY_CAP, middlewares=[_kong_errors])
    app[HOLDER] = holder
    app.router.add_get("/", _node_info)
    app.router.add_get("/status", _status)
    app.router.add_post("/config", _post_config)
    return app


def _json(status: int, body: Any) -> web.Response:
    return web.Response(
        status=status, text=compact_json(body), content_type="application/json", charset="utf-8"
    )


@web.middleware
async def _kong_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is Kong's JSON: 404 and 405 in Kong's words, never a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status == 404:
            return _json(404, {"message": "Not found"})
        if error.status == 405:
            return _json(405, {"message": "Method not allowed"})
        return _json(error.status, {"message": error.reason})
    except Exception:
        logger.exception("admin API: unexpected error on %s %s", request.method, request.path)
        return _json(500, {"message": "An unexpected error occurred"})


async def _node_info(request: web.Request) -> web.Response:
    holder = request.app[HOLDER]
    plugins = {name: {"version": KONG_VERSION} for name in AI_PLUGINS}
    return _json(200, {
        "version": KONG_VERSION,
        "edition": "community",
        "tagline": "Welcome to kong",
        "hostname": socket.gethostname(),
        "node_id": holder.node_id,
        "pids": {"master": os.getpid(), "workers": [os.getpid()]},
        "timers": {"running": 0, "pending": 0},
        "plugins": {
            "available_on_server": plugins,
            "enabled_in_cluster": _plugin_names(holder.loaded.document),
        },
        "configuration": {
            "database": "off",
            "role": "traditional",
            "router_flavor": "traditional_compatible",
            "loaded_plugins": {name: True for name in AI_PLUGINS},
        },
        "proxyproof": {"behaviour": "kong-compatible" if holder.kong_compat else "reference"},
    })  # fmt: skip


async def _status(request: web.Request) -> web.Response:
    holder = request.app[HOLDER]
    traffic = holder.traffic
    return _json(200, {
        "database": {"reachable": True},
        "server": {
            "connections_accepted": traffic.total,
            "connections_active": traffic.active,
            "connections_handled": traffic.total,
            "connections_reading": 0,
            "connections_waiting": 0,
            "connections_writing": traffic.active,
            "total_requests": traffic.total,
        },
        "configuration_hash": holder.loaded.hash,
        "balancers": holder.balancer_status(),  # proxyproof's own (docs/balancer.md#status)
    })  # fmt: skip


async def _post_config(request: web.Request) -> web.Response:
    holder = request.app[HOLDER]
    posted = await _posted(request)
    if isinstance(posted, web.Response):
        return posted
    if isinstance(posted.document, str):  # the text did not parse
        return _json(400, invalid_config({"error": posted.document}, []))
    async with holder.changing:
        if posted.check_hash and posted.hash == holder.loaded.hash:
            return web.Response(status=304)
        try:
            # Off the loop: a config of thousands of routes takes seconds to read, and the
            # proxy may share this loop. The old config serves until the swap.
            config, router = await asyncio.to_thread(_prepared, posted.document)
        except ConfigError as error:
            return _json(400, refusal(error.problems, posted.document))
        for warning in config.warnings:
            logger.warning("config: %s", warning)
        holder.swap(Loaded(config, posted.document, posted.hash), router)
    return _json(201, entities(posted.document))


def _prepared(document: Any) -> tuple[Config, Router]:
    """The config and its router, built whole before anything is swapped."""
    config = serve(document)
    return config, Router(config.routes)


# --- reading what was posted --------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    document: Any  # the decoded config, or the parse error (a str)
    hash: str
    check_hash: bool = False


async def _posted(request: web.Request) -> Posted | web.Response:
    """The config in the body: a JSON document (``_format_version`` at the top), or a ``config``
    field holding YAML/JSON text (JSON body, form, multipart upload), or a YAML body."""
    check_hash = request.query.get("check_hash") == "1"
    media_type = request.content_type
    if media_type == "application/json":
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):
            return _json(400, {"message": "Cannot parse JSON body"})
        if not isinstance(body, dict):
            return _expected()
        check_hash = check_hash or str(body.get("check_hash")) == "1"
        if "_format_version" in body:
            # Kong takes the body's own keys as the config; these two are request options.
            document = {k: v for k, v in body.items() if k not in ("check_hash", "flatten_errors")}
            return Posted(document, _document_hash(document), check_hash)
        config = body.get("config")
    elif media_type in FORM_TYPES:
        try:
            form = await request.post()
        except ValueError:  # a malformed multipart body
            return _json(400, {"message": "Cannot parse the request body"})
        config = form.get("config")
        if isinstance(config, web.FileField):
            config = config.file.read()
        check_hash = check_hash or form.get("check_hash") == "1"
    elif media_type in YAML_TYPES:
        config = await request.read()
    else:
        return _expected()
    return await _posted_field(config, check_hash)


async def _posted_field(config: Any, check_hash: bool) -> Posted | web.Response:
    if isinstance(config, Mapping):
        return Posted(dict(config), _document_hash(config), check_hash)
    if isinstance(config, bytes):
        try:
            config = config.decode("utf-8")
        except UnicodeDecodeError:
            return Posted(_failed("not UTF-8 text"), hashlib.md5(config).hexdigest(), check_hash)
    if not isinstance(config, str) or not config.strip():
        return _expected()
    return Posted(await asyncio.to_thread(_parse_text, config), _text_hash(config), check_hash)


def _expected() -> web.Response:
    return _json(400, {"message": "expected a declarative configuration"})


def _parse_text(text: str) -> Any:
    """JSON, else YAML (Kong tries them in that order); a str is the parse error, which names
    the line and never quotes it (it may hold a credential)."""
    try:
        document = parse_config_text(text)
    except ConfigTextError as error:
        return _failed(str(error))
    return document if isinstance(document, dict) else _failed("expected an object")


def _failed(reason: str) -> str:
    return f"failed parsing declarative configuration: {reason}"


def _text_hash(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # Kong hashes the text it was given


def _document_hash(document: Mapping[str, Any]) -> str:
    text = json.dumps(_jsonable(document), sort_keys=True, separators=(",", ":"))
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _plugin_names(document: Mapping[str, Any] | None) -> list[str]:
    names = [f.entity.get("name") for f in _entities_in(document or {}) if f.kind == "plugins"]
    return list(dict.fromkeys(n for n in names if isinstance(n, str)))


# --- Kong's answer to a config it refuses -------------------------------------------------------

_PATH = re.compile(r"^([A-Za-z_@$][^\s\[\].:]*(?:\[\d+\]|\.[^\s\[\].:]+)*): (.+)$", re.DOTALL)
_PART = re.compile(r"\[(\d+)\]|\.?([^\s\[\].:]+)")


@dataclass(frozen=True)
class Problem:
    """One ``ConfigError`` problem, its path split and the entity it is about located."""

    path: tuple[Segment, ...]
    message: str
    entity_end: int  # path[:entity_end] is the innermost entity (0: none)

    @classmethod
    def read(cls, text: str) -> Problem:
        found = _PATH.match(text)
        if found is None:  # a problem about the whole document
            return cls((), text, 0)
        path = tuple(int(index) if index else key for index, key in _PART.findall(found[1]))
        return cls(path, found[2], _entity_end(path))

    @property
    def is_entity_level(self) -> bool:
        return self.entity_end == len(self.path)


def _entity_end(path: tuple[Segment, ...]) -> int:
    """Where the innermost entity's path ends: ``services[0].routes[1]`` in a route's field."""
    end, in_entity = 0, True  # in_entity: still walking entities and their collections
    for i, segment in enumerate(path):
        if isinstance(segment, str):
            in_entity = in_entity and segment in ENTITY_KINDS
        elif in_entity and i > 0:
            end = i + 1  # an element of an entity collection
        else:
            in_entity = False
    return end


def refusal(problems: list[str], document: Any) -> dict[str, Any]:
    """Kong's 400 for an invalid declarative config, from ``ConfigError.problems``."""
    read = [Problem.read(text) for text in problems]
    fields: dict[str, Any] = {}
    for problem in read:
        if problem.is_entity_level:
            _put(fields, (*problem.path, "@entity"), problem.message, many=True)
        else:
            _put(fields, problem.path, problem.message, many=False)
    return invalid_config(fields, _flattened(read, document))


def invalid_config(fields: dict[str, Any], flattened: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": 14,
        "name": "invalid declarative configuration",
        "message": f"declarative config is invalid: {_lua(fields)}",
        "fields": fields,
        "flattened_errors": flattened,
    }


def _put(tree: dict[str, Any], path: tuple[Segment, ...], message: str, many: bool) -> None:
    """Set ``message`` at ``path`` in Kong's nested error table (a list for an index); when
    another message holds that place already, keep this one, path and all, at the top."""
    node: Any = tree
    for segment, after in zip(path[:-1], path[1:], strict=True):
        node = _child(node, segment, [] if isinstance(after, int) else {})
        if node is None:
            break
    else:
        if many:
            slot = _child(node, path[-1], [])
            if isinstance(slot, list):
                slot.append(message)
                return
        elif _child(node, path[-1], message) is message:
            return
    _at_top(tree, f"{_dotted(path)}: {message}")


def _at_top(tree: dict[str, Any], text: str) -> None:
    slot = tree.get("@entity")
    if not isinstance(slot, list):  # a field the config calls "@entity" got there first
        slot = tree["@entity"] = [] if slot is None else [f"@entity: {slot}"]
    slot.append(text)


def _child(node: Any, key: Segment, default: Any) -> Any:
    """``node[key]``, created as ``default`` when absent; None when ``node`` cannot hold it."""
    if isinstance(key, int) and isinstance(node, list):
        node.extend([None] * (key + 1 - len(node)))
        if node[key] is None:
            node[key] = default
        found = node[key]
    elif isinstance(key, str) and isinstance(node, dict):
        found = node.setdefault(key, default)
    else:
        return None
    return found if type(found) is type(default) else None


def _dotted(path: tuple[Segment, ...], base: int = 0) -> str:
    """A path in Kong's flattened form: ``config.targets.1.model`` (Lua's indices count from 1)."""
    return ".".join(str(s + base) if isinstance(s, int) else s for s in path)


def _flattened(problems: list[Problem], document: Any) -> list[dict[str, Any]]:
    """Kong's ``flattened_errors``: one entry per entity, each with its errors."""
    grouped: dict[tuple[Segment, ...], list[dict[str, str]]] = {}
    for problem in problems:
        if not problem.entity_end:
            continue  # Kong leaves errors outside entities in ``fields`` only
        where = problem.path[: problem.entity_end]
        rest = problem.path[problem.entity_end :]
        error = (
            {"type": "entity", "message": problem.message}
            if not rest
            else {"type": "field", "field": _dotted(rest, base=1), "message": problem.message}
        )
        grouped.setdefault(where, []).append(error)
    return [_flat_entry(where, errors, document) for where, errors in grouped.items()]


def _flat_entry(
    where: tuple[Segment, ...], errors: list[dict[str, str]], document: Any
) -> dict[str, Any]:
    kind = str(where[-2])
    entity = _at(document, where)
    entity = _shown(entity) if isinstance(entity, Mapping) else {}
    if kind in ("services", "routes"):  # what it holds has entries of its own
        entity = {k: v for k, v in entity.items() if k not in NESTED}
    entry: dict[str, Any] = {"entity_type": kind.removesuffix("s"), "entity": entity}
    if isinstance(entity.get("name"), str) and entity["name"]:
        entry["entity_name"] = entity["name"]
    if isinstance(entity.get("id"), str) and _is_uuid(entity["id"]):
        entry["entity_id"] = entity["id"]
    tags = entity.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        entry["entity_tags"] = tags
    entry["errors"] = errors
    return entry


def _at(document: Any, path: tuple[Segment, ...]) -> Any:
    node = document
    for segment in path:
        if isinstance(segment, int) and isinstance(node, list) and segment < len(node):
            node = node[segment]
        elif isinstance(segment, str) and isinstance(node, Mapping):
            node = node.get(segment)
        else:
            return None
    return node


def _lua(value: Any) -> str:
    """A value as Kong's message prints its error table (penlight's ``pretty.write``)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_lua_key(k)}={_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        if None not in value:
            return "{" + ",".join(_lua(v) for v in value) + "}"
        items = (f"[{i + 1}]={_lua(v)}" for i, v in enumerate(value) if v is not None)
        return "{" + ",".join(items) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def _lua_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"[{json.dumps(key)}]"


# --- the entities a config holds, as Kong's 201 lists them --------------------------------------

NESTED = ("routes", "plugins")  # what services and routes may hold
REFERENCES = (("service", "services"), ("route", "routes"))


@dataclass(frozen=True)
class Found:
    kind: str
    entity: Mapping[str, Any]
    id: str
    parent: tuple[str, str] | None  # ("service", its id) for a route written inside a service


def entities(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every entity by kind and id, nested ones lifted out with a reference to their parent."""
    every = _entities_in(document)
    ids = {(item.kind, item.entity[key]): item.id for item in every for key in ("name", "id")
           if isinstance(item.entity.get(key), str)}  # fmt: skip
    listed: dict[str, dict[str, Any]] = {"services": {}, "routes": {}, "plugins": {}}
    for item in every:
        shown = _shown(item.entity)
        if item.kind in ("services", "routes"):
            shown = {k: v for k, v in shown.items() if k not in NESTED}
        shown["id"] = item.id
        for reference, kind in REFERENCES:
            if shown.get(reference) is not None:
                shown[reference] = {"id": _resolve(shown[reference], kind, ids)}
        if item.parent is not None:
            shown[item.parent[0]] = {"id": item.parent[1]}
        listed.setdefault(item.kind, {})[item.id] = shown
    return listed


def _resolve(value: Any, kind: str, ids: Mapping[tuple[str, str], str]) -> str:
    wanted = value.get("name") or value.get("id") if isinstance(value, Mapping) else value
    return ids.get((kind, str(wanted)), str(wanted))


def _entities_in(document: Mapping[str, Any]) -> list[Found]:
    """Services with what they hold, then top-level routes with theirs, then everything else."""
    found: list[Found] = []
    counts: dict[str, int] = {}

    def visit(kind: str, entity: Any, parent: tuple[str, str] | None) -> None:
        if not isinstance(entity, Mapping):
            return
        item = Found(kind, entity, _entity_id(kind, entity, counts.get(kind, 0)), parent)
        counts[kind] = counts.get(kind, 0) + 1
        found.append(item)
        if kind not in ("services", "routes"):
            return
        for child_kind in NESTED:
            children = entity.get(child_kind)
            for child in children if isinstance(children, list) else ():
                visit(child_kind, child, (kind.removesuffix("s"), item.id))

    kinds = ["services", "routes", *(k for k in document if k not in ("services", "routes"))]
    for kind in kinds:
        items = document.get(kind)
        if kind in ENTITY_KINDS and isinstance(items, list):
            for entity in items:
                visit(kind, entity, None)
    return found


def _entity_id(kind: str, entity: Mapping[str, Any], position: int) -> str:
    """The entity's own id, else one derived from its name (services and routes: names are
    unique) or its position: stable across loads of the same config, as Kong's generated ids."""
    given = entity.get("id")
    if isinstance(given, str) and _is_uuid(given):
        return given
    name = entity.get("name")
    named = kind in ("services", "routes") and isinstance(name, str) and name
    return str(uuid.uuid5(ID_NAMESPACE, f"{kind}:{name}" if named else f"{kind}#{position}"))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _shown(value: Any) -> Any:
    """``value`` with its credentials masked (answers end up in logs and terminals), as JSON."""
    if isinstance(value, Mapping):
        return {
            str(k): MASK if k in kong.SECRET_FIELDS and v is not None else _shown(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    """``value`` with what JSON has no word for (YAML dates, keys that are not strings) as text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


__all__ = [
    "EMPTY",
    "EMPTY_HASH",
    "HOLDER",
    "ConfigHolder",
    "Loaded",
    "admin_app",
    "entities",
    "live_proxy_app",
    "proxy_and_admin_apps",
    "read_source",
    "refusal",
    "serve",
]
