"""One request through the proxy: route → read body → choose a target → templates → checks →
encode → auth → upstream call (failing over to other targets) → decode → answer.

Every stage but the upstream call is a pure function from another module; ``Call`` only moves
values between them and turns outcomes into HTTP answers. Nothing escapes as a traceback: an
unexpected error is Kong's 500 JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from . import auth, errors, forwarding, request_body, upstream
from .analytics import Outcome, Try, Usage, log_line, usage_of
from .balancer import embeddings, failover, semantic
from .balancer.algorithms import Ask
from .balancer.route import Balancers, Lease, RouteBalancer
from .behaviour import Behaviour
from .codecs import Codec, EncodeError, Exchange, TransformError, codec_for
from .http_client import Client, Response, Timeouts
from .json_text import json_bytes
from .model import (
    AI_PROXY_ADVANCED,
    PROVIDER,
    SEMANTIC,
    AiPlugin,
    ReplyStamp,
    Route,
    Target,
    fresh_id,
)
from .reply import accepts_gzip, send
from .request import Plan, Rejection, examine_body, plan_request
from .request_body import BodyRefusal
from .routing import Router
from .streaming import StreamOutcome, StreamPlan, relay_stream
from .templates import RequestValues, TemplateError, render_text
from .timing import Timing
from .url_templates import render_url, render_url_raw

logger = logging.getLogger("proxyproof.proxy")


@dataclass
class ProxyState:
    """What every request shares: the routes, the behaviour, the log sink, the client pool."""

    router: Router
    behaviour: Behaviour
    log: Callable[[str], None] | None
    client: Client | None = None  # opened with the application
    balancers: Balancers = field(default_factory=Balancers)  # each plugin's, made on first use


class _Unset:
    """The body has not been examined yet."""


_UNSET = _Unset()


@dataclass(slots=True)
class _Prepared:
    """The request translated for one target, ready to send."""

    target: Target
    plan: Plan
    exchange: Exchange
    codec: Codec
    outgoing: upstream.UpstreamRequest
    query: Any  # MultiDict[str]: the upstream query string


async def _description_vectors(
    client: Client,
    plugin: AiPlugin,
    balancer: RouteBalancer,
    timeout: Timeouts,
) -> dict[str, list[float]]:
    """The targets' description vectors: fetched on the first semantic request, then kept."""
    async with balancer.vectors_lock:
        if balancer.description_vectors is None:
            assert plugin.embeddings is not None and plugin.vectordb is not None
            texts = semantic.descriptions(plugin.targets)
            found = await embeddings.embed(
                client, plugin.embeddings, texts, plugin.vectordb.dimensions, timeout
            ) if texts else []  # fmt: skip
            balancer.description_vectors = dict(zip(texts, found, strict=True))
        return balancer.description_vectors


async def handle(request: web.Request, state: ProxyState) -> web.StreamResponse:
    """Answer ``request``; whatever goes wrong, the client gets an answer and the log a line."""
    call = _Call(request, state)
    try:
        response = await call.run()
    except ConnectionError:  # the client went away: nobody to answer
        call.status = 499
        call.write_log()
        raise
    except Exception:  # a bug must not reach the client as a traceback
        logger.exception("unexpected error handling %s %s", request.method, request.path)
        response = await call.local(500, errors.core_error(errors.UNEXPECTED, call.request_id))
    call.write_log()
    return response


class _Call:
    """One request going through the pipeline."""

    def __init__(self, request: web.Request, state: ProxyState) -> None:
        self.request = request
        self.state = state
        self.behaviour = state.behaviour
        self.request_id = fresh_id()
        self.timing = Timing()
        self.route: Route | None = None
        self.status = 0
        self.plan: Plan | None = None
        self.client_body: dict[str, Any] | None = None
        self.reply_body: bytes | None = None
        self.llm_latency_ms: int | None = None
        self.stream_outcome: StreamOutcome | None = None
        self.target: Target | None = None  # the target of the latest attempt
        self.target_index: int | None = None
        self.tries: list[Try] = []  # every attempt, in order
        self.usage: Usage | None = None  # the answer's, once it is known
        self._raw_body: bytes | None = None
        self._values: RequestValues | None = None
        self._examined: dict[str, Any] | None | Rejection | _Unset = _UNSET
        self._prepared: dict[int, _Prepared | Rejection] = {}

    # --- the pipeline -------------------------------------------------------------------------

    async def run(self) -> web.StreamResponse:
        request = self.request
        match = self.state.router.match(request.method, request.host, request.path)
        if match is None:
            return await self.local(404, errors.no_route())
        self.route = match.route
        plugin = match.route.plugin
        if plugin is None:
            message = errors.no_ai_plugin(match.route.name)
            return await self.local(501, errors.core_error(message, self.request_id))
        self.target = plugin.target

        raw_body = await self._read_body(plugin.max_request_body_size)
        if isinstance(raw_body, BodyRefusal):
            return await self.plugin_error(raw_body.status, raw_body.message)
        self._raw_body = raw_body
        self._values = RequestValues(request.headers, request.query, match.captures)
        balancer = self.state.balancers.of(plugin)
        ask = Ask(hash_key=request.headers.get(plugin.balancer.hash_on_header))
        if plugin.balancer.algorithm == SEMANTIC:
            ranked = await self._semantic_ranking(plugin, balancer)
            if isinstance(ranked, web.StreamResponse):
                return ranked
            ask = Ask(ranked=ranked)
        first = balancer.pick(ask)
        if first is None:
            message = errors.NO_HEALTHY_TARGET
            return await self.local(500, errors.core_error(message, self.request_id))
        return await self._failover(plugin, balancer, ask, first)

    def _examine(self, plugin: AiPlugin) -> dict[str, Any] | None | Rejection:
        """The client body checked once (it is the same whichever target serves it)."""
        if isinstance(self._examined, _Unset):
            self._examined = examine_body(
                self._raw_body, self.request.headers.get("Content-Type"),
                plugin.max_request_body_size, self.behaviour,
            )  # fmt: skip
            if not isinstance(self._examined, Rejection):
                self.client_body = self._examined
        return self._examined

    def _prepare(self, plugin: AiPlugin, index: int) -> _Prepared | Rejection:
        """The request for ``plugin.targets[index]`` (Kong's checks in Kong's order), or what
        stops it; worked out once per target: a retry on another target translates afresh."""
        if index not in self._prepared:
            self._prepared[index] = self._translate_for(plugin, plugin.targets[index])
        return self._prepared[index]

    def _translate_for(self, plugin: AiPlugin, target: Target) -> _Prepared | Rejection:
        request, behaviour, values = self.request, self.behaviour, self._values
        assert values is not None
        render_upstream_url = render_url_raw if behaviour.url_templates == "raw" else render_url
        try:
            model_name = render_text(target.model_name, values) if target.model_name else None
            upstream_url = render_upstream_url(target.options.upstream_url, values)
        except TemplateError as error:
            return Rejection(str(error))
        body = self._examine(plugin)
        if isinstance(body, Rejection):
            return body
        plan = plan_request(
            body,
            route_type=target.route_type,
            configured_model=model_name,
            configured_tuning=target.options.tuning,
            llama2_format=target.options.llama2_format,
            response_streaming=plugin.response_streaming,
            behaviour=behaviour,
        )
        if isinstance(plan, Rejection):
            return plan
        assert body is not None  # a plan exists only for a valid body
        exchange = Exchange(
            route_type=target.route_type,
            model=plan.model,
            stream=plan.stream,
            configured_max_tokens=target.options.max_tokens,
            effective_max_tokens=_as_int(plan.body.get("max_tokens")),
            behaviour=behaviour,
        )
        codec = codec_for(target.options.llama2_format)
        encode_failed = Rejection(
            errors.encode_failed(target.route_type, target.options.llama2_format)
        )
        try:
            upstream_json = codec.encode(plan.body, exchange)
        except EncodeError:
            return encode_failed
        auth.apply_body(target.auth, body, upstream_json, codec.name, behaviour)

        try:
            url, query = forwarding.target_url(upstream_url, request.query, behaviour)
        except ValueError:
            url = None
        # Kong's raw templates can make the whole URL a client's text: only an http(s) URL with
        # a host goes anywhere.
        if url is None or url.scheme not in ("http", "https") or not url.raw_host:
            return Rejection("upstream_url is not a valid URL")
        auth.apply_query(target.auth, request.query, query)
        headers = forwarding.request_headers(
            request.headers,
            client_ip=request.remote,
            client_host=request.host,
            client_port=_local_port(request),
            client_path=request.path,
            request_id=self.request_id,
            behaviour=behaviour,
        )
        auth.apply_header(target.auth, request.headers, headers)
        method = request.method if behaviour.forward_client_method else "POST"
        # Kong decodes the client's body and encodes the upstream's afresh, every format
        # included: with cjson_encoding, lua-cjson's `\/` and number forms (kong_json).
        try:
            upstream_bytes = json_bytes(upstream_json, cjson=behaviour.cjson_encoding)
        except ValueError:  # cjson refuses it (NaN, 1e999, deep nesting: strict_json refuses
            # those in a client body first, so this is a safety net): the transform's 400
            return encode_failed
        outgoing = upstream.UpstreamRequest(method, url, headers, upstream_bytes)
        return _Prepared(target, plan, exchange, codec, outgoing, query)

    async def _semantic_ranking(
        self, plugin: AiPlugin, balancer: RouteBalancer
    ) -> tuple[int, ...] | web.StreamResponse:
        """The targets whose description matches the prompt, best first (docs/balancer.md)."""
        body = self._examine(plugin)
        if isinstance(body, Rejection):
            return await self.reject(body)
        text = semantic.prompt_text(body, plugin.target.route_type) if body else None
        if text is None:  # nothing to route on: the CATCHALL, else the checks answer
            return semantic.catchall(plugin.targets) or tuple(range(len(plugin.targets)))
        assert self.route is not None and self.state.client is not None
        settings, vectordb = plugin.embeddings, plugin.vectordb
        assert settings is not None and vectordb is not None
        timeout = upstream.attempt_timeout(self.route.upstream)
        try:
            vectors = await _description_vectors(self.state.client, plugin, balancer, timeout)
            (prompt,) = await embeddings.embed(
                self.state.client, settings, [text], vectordb.dimensions, timeout
            )
            ranked, _ = semantic.rank(
                prompt, vectors, plugin.targets,
                metric=vectordb.distance_metric, threshold=vectordb.threshold,
            )  # fmt: skip
        except (embeddings.EmbeddingsError, ValueError) as error:
            logger.info("semantic routing: %s", error)  # the client is not told where or why
            message = errors.EMBEDDINGS_FAILED
            return await self.local(502, errors.core_error(message, self.request_id))
        if not ranked:
            return await self.plugin_error(400, errors.NO_SEMANTIC_MATCH)
        return ranked

    async def _failover(
        self, plugin: AiPlugin, balancer: RouteBalancer, ask: Ask, first: int
    ) -> web.StreamResponse:
        """Attempts until one answers or the criteria, ``retries`` or the targets run out.

        Each attempt goes where the balancer says (a retry elsewhere first), translated for that
        target; only an attempt on a target already tried waits (backoff, inside the retry
        window). The client has received nothing until an attempt is chosen as the answer, so
        there is never a retry after a byte of it.
        """
        prepared = self._prepare(plugin, first)
        if isinstance(prepared, Rejection):
            return await self.reject(prepared)
        assert self.route is not None and self.state.client is not None
        policy = self.route.upstream
        criteria = policy.failover_criteria
        timeout = upstream.attempt_timeout(policy)
        tried: list[int] = []
        skipped: set[int] = set()  # targets this request cannot go to
        index = first
        self.timing.mark_proxied()
        pacing = upstream.Pacing(policy)
        while True:
            self.target, self.target_index, self.plan = prepared.target, index, prepared.plan
            last_try = len(tried) >= policy.retries
            tried.append(index)
            lease = balancer.start(index)
            try:
                response = await upstream.send(
                    self.state.client, prepared.outgoing, prepared.query, timeout
                )
            except asyncio.CancelledError:  # the handler was cancelled: no verdict on the target
                lease.abandoned()
                raise
            except upstream.UpstreamFailure as failure:
                dns = failure.kind == "dns"
                self.tries.append(
                    Try(index, lease.elapsed_ms(), failure="dns" if dns else failure.criterion)
                )
                lease.failed()
                verdict = failover.after_error(
                    failure.criterion, sent=failure.sent, dns=dns,
                    method=prepared.outgoing.method, criteria=criteria,
                )  # fmt: skip
                if verdict.elsewhere_only:
                    skipped.add(index)
                following = None
                if verdict.retry and not last_try:
                    following = await self._next_attempt(plugin, balancer, ask, tried, skipped,
                                                         pacing)  # fmt: skip
                if following is None:
                    logger.info("upstream %s failed: %s",
                                prepared.outgoing.url.with_user(None), failure)
                    return await self._upstream_failed(failure)
                index, prepared = following
                continue
            self.llm_latency_ms = int(lease.elapsed_ms())
            verdict = failover.after_status(
                response.status, method=prepared.outgoing.method, criteria=criteria
            )
            self.tries.append(Try(index, lease.elapsed_ms(), status=response.status))
            if not verdict.retry or last_try:
                return await self._answer(plugin, prepared, response, lease, verdict)
            lease.failed() if verdict.failure else lease.passed()
            following = await self._next_attempt(plugin, balancer, ask, tried, skipped, pacing)
            if following is None:  # nowhere to go: this answer is the client's after all
                return await self._answer(plugin, prepared, response, lease, verdict)
            response.release()
            index, prepared = following

    async def _next_attempt(
        self,
        plugin: AiPlugin,
        balancer: RouteBalancer,
        ask: Ask,
        tried: list[int],
        skipped: set[int],
        pacing: upstream.Pacing,
    ) -> tuple[int, _Prepared] | None:
        """The target of the next attempt, after the wait it needs (a target not tried yet: none;
        one tried before: the backoff); None when there is none, or no time left for it."""
        open_to = [index for index in balancer.candidates(ask, excluded=skipped)
                   if self._usable(plugin, index, skipped)]  # fmt: skip
        if not open_to:
            return None
        if all(index in tried for index in open_to):
            delay = pacing.delay(len(tried))
            if delay is None:
                return None
            await asyncio.sleep(delay)
        # Chosen after the wait, so that the choice and the attempt's start are one step: the
        # breaker's half-open trial is never given to two requests.
        while (index := balancer.pick(ask, tried, excluded=skipped)) is not None:
            prepared = self._prepare(plugin, index)
            if not isinstance(prepared, Rejection):
                return index, prepared
            skipped.add(index)
        return None

    def _usable(self, plugin: AiPlugin, index: int, skipped: set[int]) -> bool:
        """Whether the request can be translated for the target (else it is skipped)."""
        if isinstance(self._prepare(plugin, index), Rejection):
            skipped.add(index)
            return False
        return True

    async def _answer(
        self,
        plugin: AiPlugin,
        prepared: _Prepared,
        response: Response,
        lease: Lease,
        verdict: failover.Verdict,
    ) -> web.StreamResponse:
        """The response this attempt got is the client's: relay it, and report how it went (if
        the lease is still open: an answer kept after all when no retry could go has been
        reported already)."""
        target, plan = prepared.target, prepared.plan
        try:
            async with response:
                if plan.stream and response.status == 200:
                    answer = await self._stream(plugin, prepared, response)
                    outcome = self.stream_outcome
                    if outcome is not None and outcome.failure is not None:
                        lease.failed()  # it broke off: too late to retry, not to count it
                    elif answer.status == 200:
                        self._measure(target, lease)
                    else:
                        lease.passed()
                    return answer
                try:
                    upstream_body = await upstream.read_body(response)
                except upstream.UpstreamFailure as failure:
                    lease.failed()
                    return await self._upstream_failed(failure)
                self.timing.mark_answered()
                if response.status != 200:  # passed on as it came: status, body, type
                    lease.failed() if verdict.failure else lease.passed()
                    headers = forwarding.response_headers(response.headers, keep_set_cookie=True)
                    return await self.proxied(response.status, upstream_body, headers)
                answer = await self._translate(plugin, prepared, response, upstream_body)
                self._measure(target, lease) if self.status == 200 else lease.passed()
                return answer
        finally:
            lease.abandoned()  # only when nothing above reported an end

    def _measure(self, target: Target, lease: Lease) -> None:
        self.usage = usage_of(target, self.reply_body, self.stream_outcome)
        lease.answered(self.usage)

    async def _translate(
        self,
        plugin: AiPlugin,
        prepared: _Prepared,
        response: Response,
        upstream_body: bytes,
    ) -> web.StreamResponse:
        codec, exchange = prepared.codec, prepared.exchange
        headers = self._success_headers(plugin, exchange, response)
        status = 200
        try:
            body = codec.decode(upstream_body, exchange, ReplyStamp.mint(exchange.route_type))
        except TransformError as error:
            status = 500
            message = errors.transformation_failed(exchange.route_type, str(error))
            body = errors.plugin_error(message, cjson=self.behaviour.cjson_encoding)
            headers["Content-Type"] = errors.JSON
        headers.setdefault("Content-Type", "application/json")
        self.reply_body = body
        return await self.proxied(status, body, headers)

    async def _stream(
        self,
        plugin: AiPlugin,
        prepared: _Prepared,
        response: Response,
    ) -> web.StreamResponse:
        """The client asked to stream and the upstream said 200: the relay takes it from here."""
        codec, exchange, target = prepared.codec, prepared.exchange, prepared.target

        def decode_json(body: bytes) -> dict[str, Any]:
            try:
                stamp = ReplyStamp.mint(exchange.route_type)
                return json.loads(codec.decode(body, exchange, stamp))
            except TransformError as error:
                message = errors.transformation_failed(exchange.route_type, str(error))
                raise ValueError(message) from None

        headers = self._success_headers(plugin, exchange, response)
        headers.popall("Content-Type", None)  # the relay writes its own
        self._add_proxied_headers(headers)
        options = prepared.plan.body.get("stream_options")
        plan = StreamPlan(
            llama2_format=target.options.llama2_format,
            route_type=exchange.route_type,
            model=exchange.model,
            kong_compat=self.behaviour.kong_compat,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            max_tokens=exchange.effective_max_tokens,
            headers_to_add=headers,
            decode_json=decode_json,
            keep_text=target.log_payloads,
            on_done=self._stream_done,
        )
        streamed = await relay_stream(self.request, response, plan)
        self.status = streamed.status
        return streamed

    def _stream_done(self, outcome: StreamOutcome) -> None:
        self.stream_outcome = outcome

    # --- answers ------------------------------------------------------------------------------

    async def _read_body(self, max_request_body_size: int) -> bytes | None | BodyRefusal:
        """The client body, decoded from its Content-Encoding; None when it is larger than the
        route accepts (no body, Kong's 400), a ``BodyRefusal`` when it cannot be read at all."""
        request = self.request
        codings = request_body.content_codings(request.headers.get("Content-Encoding"))
        if isinstance(codings, BodyRefusal):
            return codings
        limit = request_body.body_limit(max_request_body_size, self.behaviour)
        if request.content_length is not None and request.content_length > limit.size:
            return limit.over()  # said up front: nothing to read
        try:
            raw = await request_body.read_limited(request.content, limit.size)
        except web.RequestPayloadError:  # broken framing (chunked, length) from the client
            return BodyRefusal(400, "request body could not be read")
        if raw is None:
            return limit.over()
        return request_body.decode(raw, codings, limit.size)

    def _success_headers(
        self, plugin: AiPlugin, exchange: Exchange, response: Response
    ) -> CIMultiDict[str]:
        """The upstream's headers for a 200 the proxy translates or streams, and the model's."""
        keep_set_cookie = self.behaviour.keep_upstream_set_cookie
        headers = forwarding.response_headers(response.headers, keep_set_cookie=keep_set_cookie)
        if plugin.model_name_header or "Kong-Debug" in self.request.headers:
            headers["X-Kong-LLM-Model"] = f"{PROVIDER}/{exchange.model}"
        return headers

    async def reject(self, rejection: Rejection) -> web.StreamResponse:
        if rejection.plain_text:
            return await self.local(rejection.status, rejection.message.encode(), errors.TEXT)
        return await self.plugin_error(rejection.status, rejection.message)

    async def plugin_error(self, status: int, message: str) -> web.StreamResponse:
        return await self.local(
            status, errors.plugin_error(message, cjson=self.behaviour.cjson_encoding)
        )

    async def _upstream_failed(self, failure: upstream.UpstreamFailure) -> web.StreamResponse:
        message = errors.CORE_MESSAGES[failure.status]
        return await self.local(failure.status, errors.core_error(message, self.request_id))

    async def local(
        self, status: int, body: bytes, content_type: str = errors.JSON
    ) -> web.StreamResponse:
        """An answer the proxy writes itself (Kong's "Kong-generated" responses)."""
        self.status = status
        headers: CIMultiDict[str] = CIMultiDict({"Content-Type": content_type})
        headers.update(self.timing.local_headers())
        headers["X-Kong-Request-Id"] = self.request_id
        return await send(self.request, status, body, headers)

    async def proxied(
        self, status: int, body: bytes, headers: CIMultiDict[str]
    ) -> web.StreamResponse:
        """An answer that came through the upstream (translated or passed through)."""
        self.status = status
        self._add_proxied_headers(headers)
        compress = accepts_gzip(self.request.headers.get("Accept-Encoding"))
        return await send(self.request, status, body, headers, compress=compress)

    def _add_proxied_headers(self, headers: CIMultiDict[str]) -> None:
        """Kong's latency and request-id headers on an answer that came through the upstream."""
        headers.update(self.timing.proxied_headers())
        headers["X-Kong-Request-Id"] = self.request_id

    def write_log(self) -> None:
        if self.state.log is None:
            return
        plugin = self.route.plugin if self.route else None
        client_body = self.client_body
        if plugin is not None and client_body is not None:
            for target in plugin.targets:
                client_body = auth.redact(client_body, target.auth)
        outcome = Outcome(
            request_id=self.request_id,
            route=self.route.name if self.route is not None else "",
            method=self.request.method,
            path=self.request.path,
            status=self.status,
            latency_ms=self.timing.elapsed_ms(),
            target=self.target,
            request_model=self.plan.model if self.plan is not None else None,
            llm_latency_ms=self.llm_latency_ms,
            client_body=client_body,
            reply=self.reply_body,
            stream=self.stream_outcome,
            kong_compat=self.behaviour.kong_compat,
            balanced=plugin is not None and plugin.kind == AI_PROXY_ADVANCED,
            tries=tuple(self.tries),
            target_index=self.target_index,
            usage=self.usage,
        )
        try:
            self.state.log(log_line(outcome))
        except Exception:  # a broken log sink must not break the proxy
            logger.exception("log callback failed")


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
