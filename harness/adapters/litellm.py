"""LiteLLM's proxy as a gateway that is not Kong-shaped.

``load`` turns the Kong declarative config (one route per case) into a LiteLLM ``model_list``, one
entry per route, and starts ``litellm --config`` on a free loopback port. An entry's public name is
the route's configured model (``llama2``), as a LiteLLM operator would name it and as Kong's
replies name it; the entry carries the route's name as its tag and id. ``adapt`` addresses a case's
request to LiteLLM's OpenAI-style endpoints with that model and the route's tag
(``x-litellm-tags``, tag routing on) so that exactly the route's entry serves it; ``supports``
gives the reason a case cannot be expressed (reported as n/a).

    with LiteLLMGateway() as gateway:
        report = run_catalogue(gateway, cases)

What maps to what, what is n/a and why, and the start-up facts: ``docs/litellm.md``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from ..catalogue.model import Case
from ..kong_config import AI_PLUGINS, targets_of
from ..resources import Resources, process_resources
from . import GatewayError

CHAT, COMPLETIONS = "llm/v1/chat", "llm/v1/completions"
ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
# (llama2_format, route_type) → (LiteLLM provider, the upstream path suffix it always sends to).
# LiteLLM appends the suffix to api_base unless api_base already ends with it (ollama), or always
# (openai: api_base is the URL up to /v1), so only upstream_urls ending with it are expressible.
PROVIDERS = {
    ("ollama", CHAT): ("ollama_chat", "/api/chat"),
    ("ollama", COMPLETIONS): ("ollama", "/api/generate"),
    ("openai", CHAT): ("openai", "/chat/completions"),
    ("openai", COMPLETIONS): ("openai", "/completions"),
}
# Route options LiteLLM has an equivalent for: litellm_params defaults (the client's value wins in
# LiteLLM, the configured one in Kong: a difference the cases show, not one to hide).
TUNING = ("max_tokens", "temperature", "top_p", "top_k")
KNOWN_OPTIONS = {"llama2_format", "upstream_url", *TUNING}
KNOWN_PLUGIN_FIELDS = {"route_type", "model", "auth", "logging"}  # logging: no traffic effect
KNOWN_SERVICE_FIELDS = {"name", "url", "routes", "plugins", "read_timeout", "protocol", "host",
                        "port", "path", "id", "tags"}
FEATURE_REASONS = {
    "kong": "asserts Kong's own behaviour (feature kong), which has no LiteLLM counterpart",
    "headers": "checks Kong's response headers (feature headers): LiteLLM sends no X-Kong-*",
    "auth": "checks Kong's upstream auth config (header/query/body credentials, allow_override), "
            "which LiteLLM's model entries cannot express",
}
RAW_REASON = (
    "llama2_format raw: Kong renders a Llama 2 [INST] prompt and posts {inputs, parameters} to "
    "the upstream_url (TGI /generate, llama.cpp /completion); LiteLLM's huggingface/ provider "
    "posts OpenAI-style messages to <api_base>/v1/chat/completions (TGI's Messages API) and has "
    "no provider for llama.cpp's /completion, so the upstream would see another protocol")
# LiteLLM is a Python package: start its CLI with this interpreter, whatever PATH holds.
LAUNCH = "import sys; from litellm import run_server; sys.exit(run_server())"
HOST = "127.0.0.1"  # LiteLLM listens on loopback only: it is the harness's, not a service
READY_PATH = "/health/liveliness"  # answers once the app (and its model_list) has started
# Never handed to LiteLLM: credentials it would pick up for a provider (OPENAI_API_KEY,
# OLLAMA_API_KEY, ...), its own settings, a database or cache to connect to, outbound proxies.
_INHERITED_NOT = re.compile(
    r"^(LITELLM_|OPENAI_|OLLAMA_|HF_|HUGGINGFACE|AZURE_|AWS_|REDIS_|DATABASE_URL|DIRECT_URL)"
    r"|API_KEY|TOKEN|SECRET|PASSWORD|_PROXY$", re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy


class LiteLLMError(GatewayError):
    """LiteLLM is missing, died or did not become ready; the message says why (with its log)."""


def _free_port(host: str) -> int:
    """A port free now (bound, then released for LiteLLM to take)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _routes(config: Mapping[str, Any]) -> Iterator[tuple[dict, dict, list[dict]]]:
    """(route, its service, the plugins on either) for every route of a Kong config."""
    services = {s.get("name"): s for s in config.get("services") or []}
    for service in config.get("services") or []:
        for route in service.get("routes") or []:
            yield route, service, [*(route.get("plugins") or []), *(service.get("plugins") or [])]
    for route in config.get("routes") or []:
        ref = route.get("service")
        service = services.get(ref.get("name") if isinstance(ref, dict) else ref) or {}
        yield route, service, [*(route.get("plugins") or []), *(service.get("plugins") or [])]


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(process.pid, sig)  # its session's group id is its pid


def _loopback(host: str | None) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def litellm_entry(name: str, target: Mapping[str, Any],
                  service: Mapping[str, Any] | None = None) -> dict[str, Any] | str:
    """The ``model_list`` entry expressing one Kong AI target (the route ``name``), or why there
    is none."""
    service = service or {}
    extra = sorted(set(target) - KNOWN_PLUGIN_FIELDS)
    if extra:
        return f"Kong-only plugin option(s) {', '.join(extra)}: no LiteLLM equivalent"
    model = target.get("model") or {}
    options = model.get("options") or {}
    if model.get("provider", "llama2") != "llama2":
        return f"provider {model.get('provider')!r}: only llama2 routes are mapped"
    fmt, route_type = options.get("llama2_format"), target.get("route_type")
    if fmt == "raw":
        return RAW_REASON
    if any(v not in (None, False, "", {}) for v in (target.get("auth") or {}).values()):
        return ("the route's auth (Kong's header/query/body credentials and allow_override) has "
                "no LiteLLM model-entry equivalent")
    if (fmt, route_type) not in PROVIDERS:
        return f"llama2_format {fmt!r} with route_type {route_type!r} has no LiteLLM provider"
    if not model.get("name"):
        return ("no model configured (the client chooses it): a LiteLLM entry binds one upstream "
                "model, and the client's model field selects the entry")
    unknown = sorted(k for k, v in options.items() if k not in KNOWN_OPTIONS and v is not None)
    if unknown:
        return f"model option(s) {', '.join(unknown)}: no LiteLLM equivalent"
    unknown = sorted(k for k, v in service.items() if k not in KNOWN_SERVICE_FIELDS
                     and v is not None)
    if unknown:
        return f"service field(s) {', '.join(unknown)}: no LiteLLM equivalent"
    provider, suffix = PROVIDERS[(fmt, route_type)]
    upstream = urlsplit(str(options.get("upstream_url") or ""))
    if upstream.query or upstream.fragment or not upstream.path.endswith(suffix) or (
            suffix == "/completions" and upstream.path.endswith("/chat/completions")):
        return (f"upstream_url path {upstream.path or '/'!r}: LiteLLM's {provider}/ provider "
                f"always sends to <api_base>{suffix}")
    if not _loopback(upstream.hostname):
        # The harness keeps the LiteLLM it starts on loopback: no DNS look-up either (LiteLLM,
        # unlike the bundled proxy, would ask the resolver even for RFC 6761's .invalid).
        return (f"upstream host {upstream.hostname!r} is not on loopback, and the LiteLLM the "
                "harness starts talks to loopback only")
    base = upstream.path if provider.startswith("ollama") else upstream.path[: -len(suffix)]
    params: dict[str, Any] = {
        "model": f"{provider}/{model['name']}",
        "api_base": urlunsplit((upstream.scheme, upstream.netloc, base, "", "")),
        "tags": [name],  # the request's x-litellm-tags picks this entry among same-named ones
    }
    if provider == "openai":
        # The OpenAI SDK refuses to start without a key and would read OPENAI_API_KEY: a fixed
        # placeholder (sent as "Authorization: Bearer ...", which Kong would not send) instead.
        params["api_key"] = "no-key-configured"
    for option in TUNING:
        # Kong drops top_k for the openai format, so the entry does not set it either.
        if options.get(option) is not None and not (option == "top_k" and fmt == "openai"):
            params[option] = options[option]
    if service.get("read_timeout") is not None:
        # Kong: ms between two reads; LiteLLM: seconds, httpx's read timeout among others.
        params["timeout"] = params["stream_timeout"] = service["read_timeout"] / 1000
    return {"model_name": model["name"], "litellm_params": params, "model_info": {"id": name}}


def litellm_config(kong: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The LiteLLM proxy config for a Kong declarative config, and the reason for each route
    (by name) that it cannot express."""
    entries, reasons = [], {}
    for route, service, plugins in _routes(kong):
        name = route.get("name") or (route.get("paths") or [""])[0]
        ai = [p for p in plugins if p.get("name") in AI_PLUGINS]
        if not name or not ai:
            continue
        if "," in name:  # x-litellm-tags is a comma-separated list
            reasons[name] = "a route name with a comma cannot be a LiteLLM tag"
            continue
        targets = targets_of(ai[0])
        if len(ai) > 1 or len(targets) != 1:
            reasons[name] = "more than one AI target on the route: no single LiteLLM entry"
            continue
        entry = litellm_entry(name, targets[0], service)
        if isinstance(entry, str):
            reasons[name] = entry
        else:
            entries.append(entry)
    config = {
        "model_list": entries,
        # Tag routing: entries share their public model name, the route's tag picks one. One
        # upstream request per client request, as Kong's AI proxy sends, and no cooldown that
        # would turn a scripted upstream failure into a routing error for later requests.
        "router_settings": {"enable_tag_filtering": True, "num_retries": 0,
                            "disable_cooldowns": True},
        "litellm_settings": {"telemetry": False, "num_retries": 0},  # telemetry: older releases
        "general_settings": {},
    }
    return config, reasons


class LiteLLMGateway:
    """Runs ``litellm --config`` for each loaded config; see the module docstring."""

    name = "litellm"

    def __init__(self, startup_timeout: float = 120.0,
                 command: Sequence[str] | None = None) -> None:
        """``command`` starts LiteLLM's CLI (default: this interpreter's ``litellm``); the config,
        host and port arguments are appended."""
        self.startup_timeout = startup_timeout
        self.command = list(command or [sys.executable, "-c", LAUNCH])
        self._own_litellm = command is None  # LiteLLM imported by this interpreter
        self.master_key = ""
        self.started_in: float | None = None  # seconds the last start took, until ready
        self.entries: dict[str, str] = {}  # route name → its entry's public model name
        self.reasons: dict[str, str] = {}  # route name → why LiteLLM cannot express it
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._dir: Path | None = None

    # ------------------------------------------------------------------ the Gateway protocol

    def load(self, config: dict[str, Any]) -> str:
        self.close()
        if self._own_litellm and importlib.util.find_spec("litellm") is None:
            raise LiteLLMError("LiteLLM is not installed in this environment: "
                               "pip install 'litellm[proxy]'")
        litellm, self.reasons = litellm_config(config)
        self.entries = {e["model_info"]["id"]: e["model_name"] for e in litellm["model_list"]}
        self._dir = Path(tempfile.mkdtemp(prefix="proxyproof-litellm-"))
        config_path = self._dir / "config.yaml"
        config_path.write_text(yaml.safe_dump(litellm, sort_keys=False), encoding="utf-8")
        self.master_key = "sk-proxyproof-" + secrets.token_urlsafe(24)
        port = _free_port(HOST)
        url = f"http://{HOST}:{port}"
        self._log = (self._dir / "litellm.log").open("wb")
        started = time.monotonic()
        try:
            self._process = subprocess.Popen(
                [*self.command, "--config", str(config_path), "--host", HOST,
                 "--port", str(port)],
                cwd=self._dir,  # no stray .env or config of the caller's directory
                env=self.environment(), stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True)  # a group of its own: close() stops all it started
        except OSError as error:
            self.close()
            raise LiteLLMError(f"cannot start LiteLLM ({self.command[0]}): {error}") from None
        try:
            self._wait_ready(url, started)
        except BaseException:  # Ctrl-C while it starts too: the runner only closes a loaded one
            self.close()
            raise
        self.started_in = time.monotonic() - started
        return url

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # The whole group: a wrapper command (strace, a script) leaves LiteLLM behind otherwise.
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def resources(self) -> Resources:
        """The LiteLLM process's memory and descriptors (its worker, when it forks none)."""
        process = self._process
        return process_resources(process.pid) if process else Resources()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running LiteLLM, if any."""
        return self._process

    @property
    def workdir(self) -> Path | None:
        """Where its config and log are while it runs (removed by ``close``)."""
        return self._dir

    def __enter__(self) -> LiteLLMGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- the runner's optional hooks

    def supports(self, case: Case) -> str | None:
        """Why LiteLLM cannot express ``case`` (it is then n/a), or None."""
        if case.id in self.reasons:
            return self.reasons[case.id]
        if case.id not in self.entries:
            return ("no LiteLLM entry for this case: entries are named after the catalogue's "
                    "routes (/proxyproof/<case id>), a user's own routes are not mapped")
        for feature, reason in FEATURE_REASONS.items():
            if feature in case.features:
                return reason
        req = case.request
        if req.raw_body is not None or not isinstance(req.body, dict):
            return ("the client body is not a JSON object, so it cannot carry the model field "
                    "LiteLLM routes by: LiteLLM would refuse it for that, not for the body")
        if req.method != "POST" or (req.content_type or "").split(";")[0] != "application/json":
            return f"a {req.method} {req.content_type} request: LiteLLM takes JSON POSTs"
        if req.query:
            return "the request carries query parameters, which LiteLLM ignores"
        if "model" in req.body:
            return ("the client names its own model: LiteLLM reads the model field as the entry "
                    "to route to, so Kong's model rules (the configured model wins, another is "
                    "refused) cannot be expressed")
        for expectation in (case.expect, case.kong):
            kong_headers = [h for h in (expectation.headers if expectation else {})
                            if h.lower().startswith("x-kong-")]
            if kong_headers:
                return f"asserts Kong's response header(s) {', '.join(kong_headers)}"
        return None

    def adapt(self, case: Case, proxy_url: str, body: Any,
              headers: dict[str, str]) -> tuple[str, Any, dict[str, str]]:
        """The case's request as LiteLLM takes it: its OpenAI-style endpoint, the route's model
        and tag, the master key as the bearer token."""
        url = proxy_url.rstrip("/") + ENDPOINTS[case.route]
        if isinstance(body, dict) and case.id in self.entries:
            body = {**body, "model": self.entries[case.id]}
        headers = {k: v for k, v in headers.items()
                   if k.lower() not in ("authorization", "x-litellm-tags")}
        headers["Authorization"] = f"Bearer {self.master_key}"
        headers["x-litellm-tags"] = case.id
        return url, body, headers

    # ---------------------------------------------------------------------------- internals

    def environment(self) -> dict[str, str]:
        """What LiteLLM runs with: the caller's environment less credentials, LiteLLM settings,
        databases and proxies; plus the settings that keep it offline."""
        env = {k: v for k, v in os.environ.items() if not _INHERITED_NOT.search(k)}
        env.update({
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else it downloads the cost map at start
            "LITELLM_TELEMETRY_DISABLED": "true",
            "LITELLM_MODE": "PRODUCTION",  # DEV (the default) loads a .env file
            "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
            "LITELLM_MASTER_KEY": self.master_key,  # it refuses to start without one
            "HF_HUB_OFFLINE": "1",
            "NO_PROXY": "*", "no_proxy": "*",  # upstreams are reached directly, never via a proxy
            "PYTHONUNBUFFERED": "1",  # the log is complete when it dies
        })
        return env

    def _log_tail(self, lines: int = 25) -> str:
        if self._dir is None:
            return ""
        if self._log is not None:
            self._log.flush()
        try:
            text = (self._dir / "litellm.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [_ANSI.sub("", line).rstrip() for line in text.splitlines()]
        kept = [line for line in kept if line.strip()][-lines:]
        return "\n".join("  | " + line for line in kept)

    def _fail(self, what: str) -> LiteLLMError:
        tail = self._log_tail()
        self.close()
        return LiteLLMError(what + (f"; the last lines of its log:\n{tail}" if tail else
                                    " (its log is empty)"))

    def _wait_ready(self, url: str, started: float) -> None:
        assert self._process is not None
        deadline = started + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise self._fail(f"LiteLLM exited with status {code} before it was ready")
            try:
                with _DIRECT.open(url + READY_PATH, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise self._fail(f"LiteLLM was not ready at {url} within "
                                 f"{self.startup_timeout:.0f} s")
            time.sleep(0.2)
