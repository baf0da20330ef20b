"""Round-trip properties through a gateway and the mocks over HTTP, per hosting × route type ×
stream mode (a ``Combination``).

For one client request and one scripted upstream reply text, ``PropertyRig.check`` asserts:

1. the upstream request (the mock's journal) validates against its format's schema in
   ``fixtures/oas.yaml`` and decodes (``decoding.decode_upstream``) to the client's conversation
   and options, minus exactly the format's loss (``decoding.expected_loss``);
2. the client response validates against the OAS response schema and carries the mock's reply
   (the journaled request replayed to the mock without streaming, read by the oracle); an
   upstream error status reaches the client as it is;
3. streamed: every chunk validates, the stream ends with ``[DONE]``, and its text, finish reason
   and usage agree with the same request sent without streaming.

In Kong-compatible mode the upstream body must be Kong's (``oracle.expected_upstream_body`` with
``kong_compat``) and Kong's named deviations (``oracle.kong_quirks``) are reported as such.

The rig starts the mocks and loads the gateway once; each example is a handful of plain HTTP
calls. ``run_property`` drives one combination with Hypothesis for ``proxyproof check --profile
properties``; the tests use ``PropertyRig.check`` inside their own ``@given``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from proxyproof import fixtures
from proxyproof.mocks import run_mock

from . import oracle
from .catalogue import gateway_config
from .catalogue.model import ROUTE_TYPES, ROUTES, Case, ClientRequest, Expectation
from .checks import schema_problem, short
from .decoding import DecodeError, decode_upstream, expected_loss
from .gateway import Gateway
from .hostings import BY_KEY, HOSTINGS
from .http import Response, request
from .journal import replayed_request
from .oracle import ASCII_SPACE
from .runner import without_streaming
from .streams import chunk_text, finish_reasons, parse_sse

REPLY_SCHEMA = {oracle.CHAT: "ChatResponse", oracle.COMPLETIONS: "CompletionsResponse"}
CHUNK_SCHEMA = {oracle.CHAT: "ChatStreamChunk", oracle.COMPLETIONS: "CompletionsStreamChunk"}
UPSTREAM_SCHEMA = {
    ("raw", oracle.CHAT): "RawRequest", ("raw", oracle.COMPLETIONS): "RawRequest",
    ("ollama", oracle.CHAT): "OllamaChatRequest",
    ("ollama", oracle.COMPLETIONS): "OllamaGenerateRequest",
    ("openai", oracle.CHAT): "OpenAIChatRequest",
    ("openai", oracle.COMPLETIONS): "OpenAICompletionRequest",
}  # fmt: skip
KONG_UNSUPPORTED = {"error": True, "message": "empty or unsupported transformer response"}
KONG_JSON_FOR_A_STREAM = ("a stream answered with one JSON body gives only 'empty or "
                          "unsupported transformer response'")
ROUTE_PREFIX = "/proxyproof/"
TIMEOUT = 30.0
MODEL = "llama2"


@dataclass(frozen=True)
class Combination:
    hosting: str  # a hosting key (harness/hostings.py)
    route: str  # chat | completions
    stream: bool

    @property
    def id(self) -> str:
        return f"{self.hosting}.{self.route}.{'stream' if self.stream else 'json'}"

    @property
    def route_type(self) -> str:
        return ROUTE_TYPES[self.route]

    @property
    def llama2_format(self) -> str:
        return BY_KEY[self.hosting].llama2_format

    @property
    def route_id(self) -> str:  # one gateway route serves both stream modes
        return f"properties.{self.hosting}.{self.route}"


COMBINATIONS = tuple(Combination(h.key, route, stream)
                     for h in HOSTINGS for route in ROUTES for stream in (False, True))


def combinations(selection: str = "") -> list[Combination]:
    """Combinations whose id contains every comma-separated word of ``selection``."""
    words = [w.strip() for w in selection.split(",") if w.strip()]
    return [c for c in COMBINATIONS if all(w in c.id for w in words)]


class PropertyFailure(AssertionError):
    """A property does not hold; the message shows the client request, the upstream request,
    the response and what differs."""


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)  # Kong's, by name (compat mode)
    losses: list[str] = field(default_factory=list)  # what the format cannot carry


# The wire names of the tuning options: a client value out of the upstream's range is forwarded as
# it is (Kong checks none; the upstream is the judge and its error reaches the client), so the
# upstream schema's bounds on these fields do not apply to such a value.
TUNING_WIRE_NAMES = {"max_new_tokens": "max_tokens", "num_predict": "max_tokens",
                     "max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
                     "top_k": "top_k"}


def upstream_schema_problems(name: str, body: Any, client: Mapping[str, Any]) -> list[str]:
    """Where the upstream body departs from schema ``name``, except a bound on a tuning option
    carrying the client's own (out of range) value."""
    problems = []
    for error in fixtures.validator(name).iter_errors(body):
        path = list(error.absolute_path)
        wire = path[-1] if path else None
        client_name = TUNING_WIRE_NAMES.get(wire) if isinstance(wire, str) else None
        if (client_name is not None and error.validator in ("minimum", "maximum",
                                                            "exclusiveMinimum",
                                                            "exclusiveMaximum")
                and error.instance in (client.get(client_name),
                                       as_cjson(client.get(client_name)))):
            continue
        problems.append(f"does not match {name} at {error.json_path}: {error.message}")
    return problems


INT64 = (-(2**63), 2**63 - 1)


def as_cjson(value: Any) -> Any:
    """``value`` as Kong's lua-cjson writes it back (docs/kong-behaviour.md, JSON encoding):
    numbers through ``%.16g`` (a float keeps 16 significant digits), integers saturated to the
    int64 range as strtoll reads them and, past 2**53, rounded as the double Lua holds."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        value = min(max(value, INT64[0]), INT64[1])
        # A Lua number is a double: past 2**53 an integer keeps only what %.16g of it says.
        return value if abs(value) <= 2**53 else float(f"{float(value):.16g}")
    if isinstance(value, float):
        return float(f"{value:.16g}")
    if isinstance(value, list):
        return [as_cjson(item) for item in value]
    if isinstance(value, dict):
        return {key: as_cjson(item) for key, item in value.items()}
    return value


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _reply_parts(body: Any) -> tuple[str | None, str | None, Any]:
    """Text, finish_reason and usage of a client JSON reply."""
    if not isinstance(body, dict):
        return None, None, None
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else choice.get("text")
    return text, choice.get("finish_reason"), body.get("usage")


@dataclass
class Trial:
    """One exchange: what the client sent and got, and what the upstream received."""

    combination: Combination
    request: dict[str, Any]
    response: Response
    journal: list[dict[str, Any]]

    def describe(self) -> str:
        upstream = [{k: e.get(k) for k in ("method", "path", "status", "body")}
                    for e in self.journal]
        return "\n".join([
            f"client request ({self.combination.id}): {short(self.request, 1500)}",
            f"upstream request(s): {short(upstream, 1500)}",
            f"client response: {self.response.status} "
            f"{short(self.response.body.decode('utf-8', 'replace'), 1500)}",
        ])


class PropertyRig:
    """Mocks running and a gateway loaded with one route per hosting × route type (tuning not
    configured, so the client's options reach the upstream). ``with PropertyRig(gw) as rig:``."""

    def __init__(self, gateway: Gateway, kong_compat: bool = False,
                 combos: list[Combination] | None = None, mock_bind: str = "127.0.0.1",
                 mock_host: str | None = None) -> None:
        self.gateway = gateway
        self.kong_compat = kong_compat
        self.combos = list(combos or COMBINATIONS)
        self._bind, self._host = mock_bind, mock_host
        self._stack = ExitStack()
        self.mocks: dict[str, Any] = {}
        self.cases: dict[str, Case] = {}
        self.targets: dict[str, dict[str, Any]] = {}
        self.proxy_url = ""

    # -------------------------------------------------------------- set-up

    def __enter__(self) -> PropertyRig:
        try:
            kinds = sorted({BY_KEY[c.hosting].mock for c in self.combos})
            for kind in kinds:
                self.mocks[kind] = self._stack.enter_context(
                    run_mock(kind, models=(MODEL,), host=self._bind))
            self.proxy_url = self.gateway.load(self.config()).rstrip("/")
            self._stack.callback(self.gateway.close)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _mock_url(self, kind: str) -> str:
        url = self.mocks[kind].url
        if not self._host:
            return url
        return f"http://{self._host}:{urlsplit(url).port}"

    def config(self) -> dict[str, Any]:
        """The declarative config: a service and route ``/proxyproof/properties.<hosting>.<route>``
        per hosting × route type, the hosting's example target without its tuning options."""
        services = []
        for combo in self.combos:
            if combo.route_id in self.targets:
                continue
            target = gateway_config.example_target(combo.hosting, combo.route_type)
            options = target["model"]["options"]
            for name in ("max_tokens", "temperature", "top_p", "top_k"):
                options.pop(name, None)
            old = urlsplit(options["upstream_url"])
            new = urlsplit(self._mock_url(BY_KEY[combo.hosting].mock))
            options["upstream_url"] = urlunsplit((new.scheme, new.netloc, old.path, old.query,
                                                  ""))
            self.targets[combo.route_id] = target
            self.cases[combo.route_id] = Case(
                combo.route_id, f"round-trip properties: {combo.hosting} {combo.route}",
                ("properties",), combo.hosting, combo.route,
                ClientRequest(body={"messages": [{"role": "user", "content": "hi"}]}
                              if combo.route == "chat" else {"prompt": "hi"}),
                Expectation(oracle=True))
            services.append({
                "name": combo.route_id, "url": "http://127.0.0.1:9",
                "routes": [{"name": combo.route_id, "paths": [ROUTE_PREFIX + combo.route_id],
                            "plugins": [{"name": "ai-proxy", "config": target}]}],
            })
        return {"_format_version": "3.0", "services": services}

    def unsupported(self, combo: Combination) -> str | None:
        """Why the gateway cannot express ``combo`` (it is then n/a), or None."""
        supports = getattr(self.gateway, "supports", None)
        return supports(self.cases[combo.route_id]) if supports else None

    # -------------------------------------------------------------- one exchange

    def _mock(self, combo: Combination) -> Any:
        return self.mocks[BY_KEY[combo.hosting].mock]

    def send(self, combo: Combination, body: dict[str, Any]) -> Response:
        url = self.proxy_url + ROUTE_PREFIX + combo.route_id
        headers = {"Content-Type": "application/json"}
        adapt = getattr(self.gateway, "adapt", None)
        if adapt is not None:
            url, body, headers = adapt(self.cases[combo.route_id], self.proxy_url, body, headers)
        data = json.dumps(body, ensure_ascii=False).encode()
        return request("POST", url, data, headers, timeout=TIMEOUT)

    def _journal(self, mock: Any) -> list[dict[str, Any]]:
        return [mock.control.wait(e["id"]) if e.get("outcome") == "pending" else e
                for e in mock.control.journal()]

    def exchange(self, combo: Combination, client: Mapping[str, Any], reply: str | None,
                 stream: bool | None = None) -> Trial:
        """Send ``client`` (``stream`` set to the combination's mode, or ``stream``) with the
        mock scripted to answer ``reply`` (None: its generated reply)."""
        mock = self._mock(combo)
        mock.control.reset()
        if reply is not None:
            mock.control.script(reply=reply)
        body = {**copy.deepcopy(dict(client)),
                "stream": combo.stream if stream is None else stream}
        response = self.send(combo, body)
        return Trial(combo, body, response, self._journal(mock))

    def _replay(self, combo: Combination, entry: Mapping[str, Any]) -> Response:
        """The journaled upstream request sent to the mock again, asking for one JSON reply
        (the script is still in force, so the mock answers the same text)."""
        again = replayed_request(without_streaming(entry), self._mock(combo).url)
        return request(again.method, again.url, again.body, dict(again.headers),
                       timeout=TIMEOUT)

    # -------------------------------------------------------------- the properties

    def verdict(self, combo: Combination, client: Mapping[str, Any], reply: str | None
                ) -> tuple[Verdict, Trial]:
        trial = self.exchange(combo, client, reply)
        verdict = Verdict()
        if len(trial.journal) != 1:
            verdict.problems.append(f"the upstream received {len(trial.journal)} request(s), "
                                    "expected 1")
            return verdict, trial
        entry = trial.journal[0]
        self._upstream(combo, trial, entry, verdict)
        status = entry.get("status")
        if status != 200:
            if trial.response.status != status:
                verdict.problems.append(f"the upstream answered {status}, the client got "
                                        f"{trial.response.status}")
            return verdict, trial
        if combo.stream:
            self._streamed(combo, trial, entry, client, reply, verdict)
        else:
            self._json_reply(combo, trial, entry, verdict)
        return verdict, trial

    def check(self, combo: Combination, client: Mapping[str, Any], reply: str | None) -> Verdict:
        """Raise ``PropertyFailure`` (readable: requests, response, differences) unless every
        property holds for this example; return the verdict (deviations, losses)."""
        verdict, trial = self.verdict(combo, client, reply)
        if verdict.problems:
            lines = [f"{combo.id}: {len(verdict.problems)} problem(s)"]
            lines += [f"  - {p}" for p in verdict.problems]
            lines.append(trial.describe())
            if reply is not None:
                lines.append(f"scripted upstream reply: {reply!r}")
            raise PropertyFailure("\n".join(lines))
        return verdict

    def _upstream(self, combo: Combination, trial: Trial, entry: Mapping[str, Any],
                  verdict: Verdict) -> None:
        fmt, route_type = combo.llama2_format, combo.route_type
        body = entry.get("body")
        verdict.problems += [f"upstream body {p}" for p in upstream_schema_problems(
            UPSTREAM_SCHEMA[(fmt, route_type)], body, trial.request)]
        setup = gateway_config.route_setup(self.targets[combo.route_id])
        if self.kong_compat:
            want = as_cjson(oracle.expected_upstream_body(setup, trial.request,
                                                          kong_compat=True))
            if body != want:
                verdict.problems.append(f"upstream body {short(body, 600)}, Kong sends "
                                        f"{short(want, 600)}")
            verdict.deviations += oracle.kong_quirks(setup, trial.request,
                                                     BY_KEY[combo.hosting].mock)
            return
        expected, verdict.losses = expected_loss(fmt, route_type, trial.request, combo.stream,
                                                 setup.model)
        try:
            decoded = decode_upstream(fmt, route_type, body)
        except DecodeError as error:
            verdict.problems.append(f"the upstream body cannot be decoded: {error}")
            return
        verdict.problems += [f"round trip: {line}" for line in expected.differences(decoded)]

    def _expected_reply(self, combo: Combination, entry: Mapping[str, Any]
                        ) -> oracle.ExpectedReply | str:
        expected, _ = self._expected_and_text(combo, entry)
        return expected

    def _expected_and_text(self, combo: Combination, entry: Mapping[str, Any]
                           ) -> tuple[oracle.ExpectedReply | str, str | None]:
        """The oracle's expectation from the replayed reply, and for raw formats the reply's
        text as the mock generated it (the echoed prompt removed)."""
        upstream = self._replay(combo, entry)
        if upstream.status != 200:
            return (f"replaying the upstream request without streaming gave {upstream.status}",
                    None)
        setup = gateway_config.route_setup(self.targets[combo.route_id])
        generated = None
        if combo.llama2_format == "raw":
            generated = oracle.raw_generated_text(_json(upstream.body), kong_compat=False)
            inputs = (entry.get("body") or {}).get("inputs")
            if isinstance(generated, str) and isinstance(inputs, str):
                generated = generated.removeprefix(inputs)
        return oracle.expected_reply(setup, upstream.body, self.kong_compat), generated

    def _json_reply(self, combo: Combination, trial: Trial, entry: Mapping[str, Any],
                    verdict: Verdict) -> None:
        expected = self._expected_reply(combo, entry)
        if isinstance(expected, str):
            verdict.problems.append(expected)
            return
        verdict.problems += oracle.reply_deviations(expected, trial.response.status,
                                                    trial.response.body)
        if not self.kong_compat and trial.response.status == 200:
            problem = schema_problem(REPLY_SCHEMA[combo.route_type], _json(trial.response.body))
            if problem:
                verdict.problems.append(f"client body {problem}")

    def _streamed(self, combo: Combination, trial: Trial, entry: Mapping[str, Any],
                  client: Mapping[str, Any], reply: str | None, verdict: Verdict) -> None:
        response = trial.response
        stream = parse_sse(response.body)
        events = stream.json_events()
        if self.kong_compat and combo.llama2_format == "raw":
            if not (events in ([], [KONG_UNSUPPORTED]) and not stream.done):
                verdict.problems.append(f"expected Kong's empty raw stream, got {len(events)} "
                                        "event(s)")
            return
        if self.kong_compat and events == [KONG_UNSUPPORTED] and entry.get("frames_sent") == 0:
            # The upstream answered the stream request with one JSON body (Ollama's reply to an
            # empty prompt: the model loaded, done_reason "load"); Kong reads only a stream there.
            verdict.deviations.append(KONG_JSON_FOR_A_STREAM)
            return
        if not (response.header("Content-Type") or "").startswith("text/event-stream"):
            verdict.problems.append(f"Content-Type {response.header('Content-Type')!r}, "
                                    "expected text/event-stream")
            return
        if not stream.done:
            verdict.problems.append("the stream does not end with data: [DONE]")
        elif not stream.done_terminated and not self.kong_compat:
            verdict.problems.append("data: [DONE] is not followed by a blank line")
        if stream.after_done:
            verdict.problems.append(f"{len(stream.after_done)} event(s) after [DONE]")
        if not self.kong_compat:
            schema = CHUNK_SCHEMA[combo.route_type]
            bad = next((p for p in (schema_problem(schema, e) for e in events
                                    if not _is_error_event(e)) if p), None)
            if bad:
                verdict.problems.append(f"a chunk {bad}")
        text = "".join(chunk_text(event) for event in events)
        reasons = finish_reasons(events)
        usages = [e["usage"] for e in events if isinstance(e, dict) and e.get("usage")]
        expected, generated = self._expected_and_text(combo, entry)
        if isinstance(expected, str):
            if not any(isinstance(e, dict) and "error" in e for e in events):
                verdict.problems.append(f"{expected}, but the stream has no error event")
            return
        raw = combo.llama2_format == "raw"
        if raw:  # RAW_REPLY_LOSS: the stream carries the generated text, ends trimmed
            if generated is not None and not _raw_stream_agrees(text, generated):
                verdict.problems.append(f"streamed text {text!r}, the mock generated "
                                        f"{generated!r}")
        elif expected.text is not None and text != expected.text:
            verdict.problems.append(f"streamed text {text!r}, the mock's reply is "
                                    f"{expected.text!r}")
        # The same request without streaming, through the gateway: both answers must agree.
        plain = self.exchange(combo, client, reply, stream=False)
        if plain.response.status != 200:
            verdict.problems.append(f"the same request without streaming got "
                                    f"{plain.response.status}")
            return
        plain_text, plain_finish, plain_usage = _reply_parts(_json(plain.response.body))
        if plain_text is None or not (raw or text == plain_text):
            verdict.problems.append(f"streamed text {text!r} differs from the non-streamed "
                                    f"{plain_text!r}")
        if not self.kong_compat:
            if not reasons:
                verdict.problems.append("no chunk carries a finish_reason")
            elif plain_finish is not None and reasons[-1] != plain_finish:
                verdict.problems.append(f"streamed finish_reason {reasons[-1]!r}, non-streamed "
                                        f"{plain_finish!r}")
            if usages and plain_usage is not None and usages[-1] != plain_usage:
                verdict.problems.append(f"streamed usage {usages[-1]!r}, non-streamed "
                                        f"{plain_usage!r}")


def _is_error_event(event: Any) -> bool:
    """An error reported mid-stream (StreamErrorEvent): allowed where a chunk would be."""
    return isinstance(event, dict) and isinstance(event.get("error"), dict) and schema_problem(
        "StreamErrorEvent", event) is None


RAW_REPLY_LOSS = (
    "raw replies: a non-streamed answer is the text after the last [/INST] of the upstream's "
    "generated_text, trimmed of ASCII whitespace (Kong's rule for servers that echo the prompt: "
    "oracle.expected_reply checks it), so a reply holding [/INST], or an echoed prompt ending in "
    "an answer turn, reads differently from the stream, which cannot apply the rule; the "
    "streamed text must be the generated text (the echoed prompt removed), with ASCII "
    "whitespace at its ends possibly trimmed, and the two answers agree through it rather than "
    "with each other"
)


def _raw_stream_agrees(streamed: str, generated: str) -> bool:
    return streamed in (generated, generated.lstrip(ASCII_SPACE), generated.rstrip(ASCII_SPACE),
                        generated.strip(ASCII_SPACE))


# ------------------------------------------------------------------ driving one combination


@dataclass
class CombinationResult:
    id: str
    outcome: str  # pass | fail | n/a | not run
    examples: int = 0
    seconds: float = 0.0
    counterexample: str = ""  # the shrunk failing example, readable
    failing_request: dict[str, Any] | None = None  # its client request (without stream)
    deviations: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    reason: str = ""  # why n/a or not run

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in ("", [], None)}


def run_property(rig: PropertyRig, combo: Combination, max_examples: int,
                 stop_at: float | None = None, clients: Any = None, replies: Any = None,
                 **settings_overrides: Any) -> CombinationResult:
    """Run the round-trip property of ``combo`` for up to ``max_examples`` examples (Hypothesis
    shrinks a failure to its smallest example); examples after ``stop_at`` (a
    ``time.monotonic()`` value) are not sent. ``clients`` and ``replies`` replace the default
    strategies (``client_requests`` of the route type; ``reply_texts`` or the mock's own)."""
    from hypothesis import HealthCheck, given, note, settings
    from hypothesis import strategies as st

    from .strategies import client_requests, reply_texts

    started = time.monotonic()
    result = CombinationResult(combo.id, "pass")
    reason = rig.unsupported(combo)
    if reason:
        result.outcome, result.reason = "n/a", reason
        return result
    deviations: dict[str, None] = {}
    losses: dict[str, None] = {}

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), **settings_overrides)
    @given(client=clients if clients is not None else client_requests(combo.route_type),
           reply=replies if replies is not None else st.one_of(st.none(), reply_texts()))
    def holds(client: dict[str, Any], reply: str | None) -> None:
        if stop_at is not None and time.monotonic() > stop_at:
            return
        result.examples += 1
        note(f"client request: {json.dumps(client, ensure_ascii=False)}")
        try:
            verdict = rig.check(combo, client, reply)
        except PropertyFailure:
            result.failing_request = client  # the last one raised is the shrunk example
            raise
        deviations.update(dict.fromkeys(verdict.deviations))
        losses.update(dict.fromkeys(verdict.losses))

    try:
        holds()
    except PropertyFailure as failure:
        result.outcome, result.counterexample = "fail", str(failure)
    except Exception as error:  # noqa: BLE001 - a broken gateway is a failure, reported
        result.outcome = "fail"
        result.counterexample = f"{type(error).__name__}: {error}"
        inner = getattr(error, "exceptions", None)  # Hypothesis' FlakyFailure: what failed once
        if inner:
            result.counterexample += "\nfailed once with:\n" + "\n".join(map(str, inner))
    result.deviations, result.losses = list(deviations), list(losses)
    result.seconds = time.monotonic() - started
    return result


@contextmanager
def property_rig(gateway: Gateway, kong_compat: bool = False,
                 combos: list[Combination] | None = None, **placement: Any
                 ) -> Iterator[PropertyRig]:
    with PropertyRig(gateway, kong_compat, combos, **placement) as rig:
        yield rig


def run_properties(gateway: Gateway, combos: list[Combination], max_examples: int = 25,
                   deadline: float | None = 300.0, kong_compat: bool = False,
                   progress: Any = None, **placement: Any) -> list[CombinationResult]:
    """Every combination of ``combos`` through ``gateway``: mocks and gateway started once;
    combinations not reached by ``deadline`` seconds are ``not run``."""
    stop_at = None if deadline is None else time.monotonic() + deadline
    results = []
    with property_rig(gateway, kong_compat, combos, **placement) as rig:
        for combo in combos:
            if stop_at is not None and time.monotonic() > stop_at:
                results.append(CombinationResult(combo.id, "not run",
                                                 reason="the overall deadline passed"))
            else:
                results.append(run_property(rig, combo, max_examples, stop_at))
            if progress:
                progress(results[-1])
    return results


__all__ = [
    "COMBINATIONS", "Combination", "CombinationResult", "PropertyFailure", "PropertyRig",
    "Trial", "Verdict", "combinations", "property_rig", "run_properties", "run_property",
]
