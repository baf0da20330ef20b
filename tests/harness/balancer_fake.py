"""A small stand-in for a gateway with AI Proxy Advanced's balancer, written for the balancer
profile's tests: it reads the harness's kong.yaml, balances across each route's targets, fails
over and breaks circuits as Kong documents, and can be told to get one thing wrong (``flaws``)
so the tests show the profile catching it. It speaks just enough of the formats: the chat
messages forwarded as an Ollama or OpenAI chat request, the upstream's JSON passed back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from proxyproof.harness.gateway import InProcessGateway

FLAWS = (
    "ignore-weights",  # round-robin as if every weight were equal
    "retry-post-http",  # fails over on a listed http_* status without non_idempotent
    "no-breaker",  # max_fails does nothing
    "early-trial",  # an ejected target is tried again after a tenth of fail_timeout
    "consecutive",  # any success resets the failure count
)
COUNT_ALWAYS = {"error", "timeout", "invalid_header"}
NEVER_COUNT = {"http_403", "http_404"}


@dataclass
class Target:
    url: str
    form: str  # llama2_format: ollama or openai
    model: str
    weight: int
    current: int = 0  # smooth weighted round-robin
    latency: float | None = None  # EWMA of end-to-end seconds
    usage: int = 0  # total tokens answered
    failures: int = 0
    last_failure: float = 0.0
    ejected_until: float = 0.0


@dataclass
class Route:
    targets: list[Target]
    balancer: dict[str, Any]
    flaws: frozenset[str]
    turn: int = 0
    session: aiohttp.ClientSession | None = field(default=None, repr=False)
    request: Any = None  # the client request being answered (one at a time)

    def option(self, name: str, default: Any) -> Any:
        return self.balancer.get(name, default)

    # --- choosing -------------------------------------------------------------------------------

    def available(self, tried: set[int]) -> list[int]:
        now = time.monotonic()
        return [i for i, t in enumerate(self.targets) if i not in tried and t.ejected_until <= now]

    def pick(self, candidates: list[int], key: str | None) -> int:
        algorithm = self.option("algorithm", "round-robin")
        if algorithm == "priority":
            top = max(self.targets[i].weight for i in candidates)
            candidates = [i for i in candidates if self.targets[i].weight == top]
        if algorithm == "lowest-latency":
            self.turn += 1
            if self.turn % 10 == 0:  # a probe now and then, so one slow answer is not forever
                return candidates[self.turn // 10 % len(candidates)]
            return min(candidates, key=lambda i: self.targets[i].latency or 0.0)
        if algorithm == "lowest-usage":
            return min(candidates, key=lambda i: self.targets[i].usage)
        if algorithm == "consistent-hashing" and key is not None:
            digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
            return sorted(candidates)[digest % len(candidates)]
        if "ignore-weights" in self.flaws:
            self.turn += 1
            return candidates[self.turn % len(candidates)]
        total = sum(self.targets[i].weight for i in candidates)
        for i in candidates:
            self.targets[i].current += self.targets[i].weight
        best = max(candidates, key=lambda i: self.targets[i].current)
        self.targets[best].current -= total
        return best

    # --- failing --------------------------------------------------------------------------------

    def fails_over(self, criterion: str, sent: bool) -> bool:
        criteria = self.option("failover_criteria", ["error", "timeout"])
        if criterion not in criteria:
            return False
        if not sent or "non_idempotent" in criteria:
            return True
        return criterion.startswith("http_") and "retry-post-http" in self.flaws

    def record(self, target: Target, criterion: str | None, seconds: float) -> None:
        fail_timeout = self.option("fail_timeout", 10000) / 1000
        if criterion is None:
            since = time.monotonic() - target.last_failure
            if "consecutive" in self.flaws or since >= fail_timeout:
                target.failures = 0
            target.latency = seconds if target.latency is None else (
                0.7 * target.latency + 0.3 * seconds)
            return
        max_fails = self.option("max_fails", 0)
        counts = criterion in COUNT_ALWAYS or (
            criterion not in NEVER_COUNT
            and criterion in self.option("failover_criteria", ["error", "timeout"]))
        if not counts or not max_fails or "no-breaker" in self.flaws:
            return
        target.failures += 1
        target.last_failure = time.monotonic()
        if target.failures >= max_fails:
            pause = fail_timeout
            if "early-trial" in self.flaws:
                pause /= 10
            target.ejected_until = time.monotonic() + pause

    # --- one attempt ----------------------------------------------------------------------------

    async def attempt(self, target: Target, messages: Any, stream: web.StreamResponse | None
                      ) -> tuple[str | None, bool, web.StreamResponse]:
        """(the failover criterion it met or None, whether the request was sent, the answer).
        With ``stream`` (not yet prepared), a 200 is relayed as it comes: a failure after the
        first byte ends the client's stream, and is no failure to fail over on."""
        body = {"model": target.model, "messages": messages, "stream": stream is not None}
        timeout = aiohttp.ClientTimeout(sock_connect=self.option("connect_timeout", 60000) / 1000,
                                        sock_read=self.option("read_timeout", 60000) / 1000)
        assert self.session is not None
        try:
            async with self.session.post(target.url, json=body, timeout=timeout) as reply:
                if reply.status == 200 and stream is not None:
                    await stream.prepare(self.request)
                    try:
                        async for chunk in reply.content.iter_any():
                            await stream.write(chunk)
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    return None, True, stream
                payload = await reply.read()
                answer = web.Response(status=reply.status, body=payload,
                                      content_type="application/json")
                if reply.status == 200:
                    found = json.loads(payload)
                    usage = found.get("usage") or {}
                    target.usage += usage.get("total_tokens") or (
                        found.get("prompt_eval_count", 0) + found.get("eval_count", 0))
                    return None, True, answer
                named = f"http_{reply.status}"
                return (named if named in _HTTP else "other"), True, answer
        except aiohttp.ClientConnectorError:
            return "error", False, _kong(502, "An invalid response was received from the upstream")
        except aiohttp.ClientResponseError:
            return "invalid_header", True, _kong(502, "An invalid response was received")
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            return "error", True, _kong(502, "An invalid response was received from the upstream")
        except TimeoutError:
            return "timeout", True, _kong(504, "The upstream server is timing out")


_HTTP = {"http_403", "http_404", "http_429", "http_500", "http_502", "http_503", "http_504"}


def _kong(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _routes(config: dict[str, Any], flaws: frozenset[str]) -> dict[str, Route]:
    routes = {}
    for service in config.get("services") or []:
        for route in service.get("routes") or []:
            plugin = route["plugins"][0]["config"]
            targets = [Target(t["model"]["options"]["upstream_url"],
                              t["model"]["options"]["llama2_format"], t["model"]["name"],
                              t.get("weight", 100)) for t in plugin["targets"]]
            for path in route["paths"]:
                routes[path] = Route(targets, plugin.get("balancer") or {}, flaws)
    return routes


def fake_balancer(*flaws: str) -> InProcessGateway:
    unknown = set(flaws) - set(FLAWS)
    assert not unknown, unknown

    def app(config: dict[str, Any]) -> web.Application:
        routes = _routes(config, frozenset(flaws))

        async def handle(request: web.Request) -> web.StreamResponse:
            route = routes.get(request.path)
            if route is None:
                return _kong(404, "no Route matched with those values")
            client = json.loads(await request.read())
            messages = client["messages"]
            route.request = request
            key = request.headers.get(route.option("hash_on_header", "X-Kong-LLM-Request-ID"))
            tried: set[int] = set()
            answer: web.StreamResponse = _kong(500, "all targets are unhealthy")
            for _ in range(route.option("retries", 5) + 1):
                candidates = route.available(tried) or route.available(set())
                if not candidates:
                    return answer
                chosen = route.pick(candidates, key)
                tried.add(chosen)
                started = time.monotonic()
                stream = web.StreamResponse() if client.get("stream") else None
                criterion, sent, answer = await route.attempt(route.targets[chosen], messages,
                                                              stream)
                route.record(route.targets[chosen], criterion, time.monotonic() - started)
                if criterion is None or not route.fails_over(criterion, sent):
                    return answer
            return answer

        async def session(application: web.Application) -> Any:
            client = aiohttp.ClientSession()
            for route in routes.values():
                route.session = client
            yield
            await client.close()
            await asyncio.sleep(0)

        application = web.Application()
        application.cleanup_ctx.append(session)
        application.router.add_route("*", "/{tail:.*}", handle)
        return application

    return InProcessGateway(app, f"fake balancer ({', '.join(flaws) or 'faithful'})")
