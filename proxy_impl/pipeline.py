"""One request through the proxy: route → read body → templates → checks → encode → auth →
upstream call → decode → answer.

Every stage but the upstream call is a pure function from another module; ``Call`` only moves
values between them and turns outcomes into HTTP answers. Nothing escapes as a traceback: an
unexpected error is Kong's 500 JSON.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from . import auth, errors, forwarding, request_body, upstream
from .analytics import Outcome, log_line
from .behaviour import Behaviour
from .codecs import Codec, EncodeError, Exchange, TransformError, codec_for
from .json_text import json_bytes
from .model import PROVIDER, AiPlugin, ReplyStamp, Route
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
    session: aiohttp.ClientSession | None = None  # opened with the application


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
        self.request_id = uuid.uuid4().hex
        self.timing = Timing()
        self.route: Route | None = None
        self.status = 0
        self.plan: Plan | None = None
        self.client_body: dict[str, Any] | None = None
        self.reply_body: bytes | None = None
        self.llm_latency_ms: int | None = None
        self.stream_outcome: StreamOutcome | None = None

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
        target = plugin.target

        raw_body = await self._read_body(plugin.max_request_body_size)
        if isinstance(raw_body, BodyRefusal):
            return await self.plugin_error(raw_body.status, raw_body.message)
        values = RequestValues(request.headers, request.query, match.captures)
        raw = self.behaviour.url_templates == "raw"
        render_upstream_url = render_url_raw if raw else render_url
        try:
            model_name = render_text(target.model_name, values) if target.model_name else None
            upstream_url = render_upstream_url(target.options.upstream_url, values)
        except TemplateError as error:
            return await self.plugin_error(400, str(error))

        body = examine_body(
            raw_body, request.headers.get("Content-Type"), plugin.max_request_body_size,
            self.behaviour,
        )  # fmt: skip
        if isinstance(body, Rejection):
            return await self.reject(body)
        self.client_body = body
        planned = plan_request(
            body,
            route_type=target.route_type,
            configured_model=model_name,
            configured_tuning=target.options.tuning,
            llama2_format=target.options.llama2_format,
            response_streaming=plugin.response_streaming,
            behaviour=self.behaviour,
        )
        if isinstance(planned, Rejection):
            return await self.reject(planned)
        assert body is not None  # a plan exists only for a valid body
        self.plan = planned
        return await self._proxy(plugin, body, planned, upstream_url)

    async def _proxy(
        self, plugin: AiPlugin, body: dict[str, Any], plan: Plan, upstream_url: str
    ) -> web.StreamResponse:
        target, request, behaviour = plugin.target, self.request, self.behaviour
        exchange = Exchange(
            route_type=target.route_type,
            model=plan.model,
            stream=plan.stream,
            configured_max_tokens=target.options.max_tokens,
            effective_max_tokens=_as_int(plan.body.get("max_tokens")),
            behaviour=behaviour,
        )
        codec = codec_for(target.options.llama2_format)
        try:
            upstream_json = codec.encode(plan.body, exchange)
        except EncodeError:
            message = errors.encode_failed(target.route_type, target.options.llama2_format)
            return await self.plugin_error(400, message)
        auth.apply_body(target.auth, body, upstream_json, codec.name, behaviour)

        try:
            url, query = forwarding.target_url(upstream_url, request.query, behaviour)
        except ValueError:
            url = None
        # Kong's raw templates can make the whole URL a client's text: only an http(s) URL with
        # a host goes anywhere.
        if url is None or url.scheme not in ("http", "https") or not url.raw_host:
            return await self.plugin_error(400, "upstream_url is not a valid URL")
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
            message = errors.encode_failed(target.route_type, target.options.llama2_format)
            return await self.plugin_error(400, message)
        outgoing = upstream.UpstreamRequest(method, url, headers, upstream_bytes)

        assert self.route is not None and self.state.session is not None
        attempts = upstream.Attempts()
        self.timing.mark_proxied()
        try:
            response = await upstream.open_response(
                self.state.session, outgoing, query, self.route.upstream, attempts
            )
        except upstream.UpstreamFailure as failure:
            logger.info("upstream %s failed: %s", url.with_user(None), failure)
            return await self._upstream_failed(failure)
        self.llm_latency_ms = attempts.upstream_ms
        async with response:
            if plan.stream and response.status == 200:
                return await self._stream(plugin, codec, exchange, response)
            try:
                upstream_body = await upstream.read_body(response)
            except upstream.UpstreamFailure as failure:
                return await self._upstream_failed(failure)
            self.timing.mark_answered()
            if response.status != 200:  # passed on as it came: status, body, type
                headers = forwarding.response_headers(response.headers, keep_set_cookie=True)
                return await self.proxied(response.status, upstream_body, headers)
            return await self._translate(plugin, codec, exchange, response, upstream_body)

    async def _translate(
        self,
        plugin: AiPlugin,
        codec: Codec,
        exchange: Exchange,
        response: aiohttp.ClientResponse,
        upstream_body: bytes,
    ) -> web.StreamResponse:
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
        codec: Codec,
        exchange: Exchange,
        response: aiohttp.ClientResponse,
    ) -> web.StreamResponse:
        """The client asked to stream and the upstream said 200: the relay takes it from here."""

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
        assert self.plan is not None
        options = self.plan.body.get("stream_options")
        plan = StreamPlan(
            llama2_format=plugin.target.options.llama2_format,
            route_type=exchange.route_type,
            model=exchange.model,
            kong_compat=self.behaviour.kong_compat,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            max_tokens=exchange.effective_max_tokens,
            headers_to_add=headers,
            decode_json=decode_json,
            keep_text=plugin.target.log_payloads,
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
        self, plugin: AiPlugin, exchange: Exchange, response: aiohttp.ClientResponse
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
        target = self.route.plugin.target if self.route and self.route.plugin else None
        client_body = self.client_body
        if target is not None and client_body is not None:
            client_body = auth.redact(client_body, target.auth)
        outcome = Outcome(
            request_id=self.request_id,
            route=self.route.name if self.route is not None else "",
            method=self.request.method,
            path=self.request.path,
            status=self.status,
            latency_ms=self.timing.elapsed_ms(),
            target=target,
            request_model=self.plan.model if self.plan is not None else None,
            llm_latency_ms=self.llm_latency_ms,
            client_body=client_body,
            reply=self.reply_body,
            stream=self.stream_outcome,
            kong_compat=self.behaviour.kong_compat,
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
