"""Kong Gateway in DB-less mode, loaded through its Admin API as deck and the ingress controller
load it: ``POST /config`` with the declarative config, then ``load`` returns once the proxy serves
it. Works the same against proxyproof's own proxy started with its admin listener.

    gateway = KongGateway("http://127.0.0.1:8001", "http://127.0.0.1:8000")
    report = run_catalogue(gateway, cases)

Kong takes a config in one piece only without a database (``database = off``); a Kong with
PostgreSQL is refused with a ``GatewayError`` saying so, before anything is sent.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .. import http as client
from . import GatewayError

READY_WITHIN = 15.0  # seconds a reloaded Kong may take until its workers route the new config
ADMIN_TIMEOUT = 30.0  # a large config takes Kong a while to validate
PROBE_TIMEOUT = 5.0
NO_ROUTE = "no Route matched with those values"
READY_PREFIX = "/proxyproof-ready/"
SHOWN_ERRORS = 5  # a refusal shows this many of Kong's flattened errors


@dataclass(frozen=True)
class _Admin:
    """Kong's Admin API at ``url``, each failure to reach it a ``GatewayError``."""

    url: str

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: Mapping[str, str] | None = None) -> client.Response:
        try:
            return client.request(method, self.url + path, body, headers, timeout=ADMIN_TIMEOUT)
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise GatewayError(
                f"Kong's Admin API at {self.url} cannot be reached ({reason}): is Kong running, "
                "and is that its admin listener (port 8001 by default)?") from None

    def json(self, path: str) -> Any:
        answer = self.call("GET", path)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status in (401, 403):
            raise GatewayError(f"{self.url}{path} answered {answer.status}: this Admin API wants "
                               "credentials (RBAC), which the kong adapter does not send")
        if answer.status != 200 or not isinstance(body, dict):
            raise GatewayError(f"{self.url}{path} answered {answer.status} without Kong's JSON: "
                               "is that Kong's Admin API?")
        return body


class KongGateway:
    """A running DB-less Kong: ``load`` replaces its whole config; nothing is started or
    stopped here."""

    def __init__(self, admin_url: str, proxy_url: str, name: str = "Kong", *,
                 ready_within: float = READY_WITHIN) -> None:
        self.name = name
        self.admin_url = admin_url.rstrip("/")
        self.proxy_url = proxy_url.rstrip("/")
        self.ready_within = ready_within
        self.node: dict[str, Any] = {}  # Kong's ``GET /`` (version, hostname, ...) once loaded
        self._admin = _Admin(self.admin_url)

    def load(self, config: dict[str, Any]) -> str:
        self.node = self._db_less_node()
        before = self._configuration_hash()
        sent, ready_path = with_ready_route(config)
        if self._post(sent):
            self._wait_until_served(before, ready_path)
        return self.proxy_url

    def close(self) -> None:
        """Nothing to undo: the config stays loaded, as after ``deck gateway sync``."""

    # --- the steps of a load --------------------------------------------------------------------

    def _db_less_node(self) -> dict[str, Any]:
        node = self._admin.json("/")
        configuration = node.get("configuration")
        database = configuration.get("database") if isinstance(configuration, dict) else None
        if database is None:
            raise GatewayError(f"{self.admin_url}/ does not say which database Kong uses: is "
                               "that Kong's Admin API?")
        if database != "off":
            raise GatewayError(
                f"Kong at {self.admin_url} runs with a database ({database}); the kong adapter "
                "loads configs with POST /config, which only DB-less Kong has. Start Kong with "
                "KONG_DATABASE=off, or use --gateway manual and load the config yourself (deck).")
        return node

    def _configuration_hash(self) -> str | None:
        """Kong's hash of the loaded config (``GET /status``); None when it does not say."""
        try:
            found = self._admin.json("/status").get("configuration_hash")
        except GatewayError:
            return None
        return found if isinstance(found, str) else None

    def _post(self, config: dict[str, Any]) -> bool:
        """Send ``config``; False when Kong already runs exactly this config (its 304)."""
        # The config travels as text in a ``config`` field, as the ingress controller sends it:
        # Kong then hashes that text for check_hash, and no query option ends up in the config.
        query = urlencode({"check_hash": 1, "flatten_errors": 1})
        try:
            text = json.dumps(config, default=str)  # YAML dates as they are written
        except (TypeError, ValueError) as error:
            raise GatewayError(f"the config cannot be sent as JSON: {error}") from None
        body = json.dumps({"config": text}).encode()
        answer = self._admin.call("POST", f"/config?{query}", body,
                                  {"Content-Type": "application/json"})
        if answer.status == 304:
            return False
        if answer.status in (200, 201):
            return True
        raise GatewayError(refusal_message(answer))

    def _wait_until_served(self, before: str | None, ready_path: str) -> None:
        deadline = time.monotonic() + self.ready_within
        if before is not None:
            self._poll(deadline, lambda: self._configuration_hash() not in (None, before),
                       "its /status configuration_hash changed")
        self._poll(deadline, lambda: self._routes(ready_path),
                   f"its proxy at {self.proxy_url} routed {ready_path}")

    def _routes(self, path: str) -> bool:
        """Whether the proxy has a route for ``path``: any answer but Kong's no-route 404."""
        try:
            answer = client.request("GET", self.proxy_url + path, timeout=PROBE_TIMEOUT)
        except (OSError, http.client.HTTPException):
            return False
        return not (answer.status == 404 and NO_ROUTE.encode() in answer.body)

    def _poll(self, deadline: float, ready: Callable[[], bool], what: str) -> None:
        pause = 0.01
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                raise GatewayError(f"Kong accepted the config, but not within "
                                   f"{self.ready_within:g}s had {what}")
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)


def with_ready_route(config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """``config`` plus a route of its own, named after the config's hash: once the proxy routes
    it, the proxy serves this config and not the one before (which may share every path)."""
    try:
        text = json.dumps(config, sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys JSON cannot sort or spell: as written will do
        text = repr(config)
    token = hashlib.md5(text.encode()).hexdigest()
    sent = copy.deepcopy(dict(config))
    path = READY_PREFIX + token
    route = {"name": f"proxyproof-ready-{token[:12]}", "paths": [path]}
    sent["routes"] = [*(sent.get("routes") or []), route]
    return sent, path


def refusal_message(answer: client.Response) -> str:
    """Kong's refusal in a few lines: its message, or each entity's errors when it lists them."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = answer.body[:300].decode("utf-8", "replace")
        return f"Kong refused the config ({answer.status}): {text}"
    lines = _flattened_lines(body.get("flattened_errors"))
    message = str(body.get("message") or body.get("error") or body.get("name") or "")
    if lines:
        more = len(lines) - SHOWN_ERRORS
        shown = lines[:SHOWN_ERRORS] + ([f"... and {more} more"] if more > 0 else [])
        return f"Kong refused the config ({answer.status}):\n  " + "\n  ".join(shown)
    if len(message) > 500:
        message = message[:500] + "..."
    return f"Kong refused the config ({answer.status}): {message}"


def _flattened_lines(flattened: Any) -> list[str]:
    """``route 'name': paths.1: should start with ...`` for each error Kong flattened; never the
    entity itself, which may hold credentials."""
    lines = []
    for entry in flattened if isinstance(flattened, list) else ():
        if not isinstance(entry, dict):
            continue
        who = entry.get("entity_name") or entry.get("entity_id")
        entity = f"{entry.get('entity_type', 'entity')}" + (f" '{who}'" if who else "")
        for error in entry.get("errors") or ():
            if isinstance(error, dict):
                field = f"{error['field']}: " if error.get("field") else ""
                lines.append(f"{entity}: {field}{error.get('message', '')}")
    return lines
