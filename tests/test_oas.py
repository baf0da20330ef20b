"""fixtures/oas.yaml: a valid OpenAPI 3.1 document whose schemas accept real bodies and reject
wrong ones, and which fixes every error of Kong's own spec/fixtures/ai-proxy/oas.yaml.

How validity is checked: `openapi_spec_validator` is not installed in the project's venv, so the
document is validated against the official OpenAPI 3.1 meta-schema that schemathesis ships
(`schemathesis.specs.openapi.definitions.OPENAPI_31`), plus structural checks the meta-schema
cannot express (path templates, references, keyword placement), plus loading it with schemathesis.

Known-good and known-bad bodies live in tests/oas_payloads/*.yaml (layout in client.yaml); each is
a named test, and every bad body must fail with the expected keyword at the expected place.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator

from proxyproof import fixtures

PAYLOADS = Path(__file__).with_name("oas_payloads")
SCHEMA_REF = "#/components/schemas/"

# The names the rest of the project relies on (the brief of this fixture).
REQUIRED_SCHEMAS = """
    ChatRequest ChatMessage ChatResponse ChatStreamChunk CompletionsRequest CompletionsResponse
    CompletionsStreamChunk Usage ErrorResponse GatewayError StreamErrorEvent
    RawRequest RawKongResponse RawResponsesField HFInferenceResponse HFError TGIGenerateRequest
    TGIGenerateResponse TGIStreamEvent TGIError TGIInfo
    OllamaChatRequest OllamaChatResponse OllamaChatStreamLine OllamaGenerateRequest
    OllamaGenerateResponse OllamaGenerateStreamLine OllamaError OllamaTags OllamaShow OllamaPs
    OllamaEmbedRequest OllamaEmbedResponse OllamaVersion
    OpenAIChatRequest OpenAIChatResponse OpenAIChatChunk OpenAICompletionRequest
    OpenAICompletionResponse OpenAICompletionChunk OpenAIError OpenAIModel OpenAIModelList
    OpenAIEmbeddingsRequest OpenAIEmbeddingsResponse
    TGIChatResponse TGIChatChunk TGICompletionResponse TGICompletionChunk
    LlamaCppCompletionRequest LlamaCppCompletionResponse LlamaCppStreamEvent LlamaCppError
    LlamaCppHealth LlamaCppProps LlamaCppTokenizeRequest LlamaCppTokenizeResponse
    LlamaCppDetokenizeRequest LlamaCppDetokenizeResponse LlamaCppModelList
""".split()


# --------------------------------------------------------------------------------------------------
# Payload cases
# --------------------------------------------------------------------------------------------------

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def path_steps(path: str) -> list[str | int]:
    """`$.a[0].b` -> ["a", 0, "b"] (the subset of JSONPath that jsonschema's json_path uses)."""
    if not path.startswith("$"):
        raise ValueError(f"a path starts with '$': {path!r}")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"cannot read path {path!r} at {path[position:]!r}")
        steps.append(match[1] if match[1] is not None else int(match[2]))
        position = match.end()
    return steps


def _parent_and_key(instance: Any, path: str) -> tuple[Any, str | int]:
    *parents, last = path_steps(path)
    for step in parents:
        instance = instance[step]
    return instance, last


def mutated(base: Any, assignments: dict[str, Any], deletions: list[str]) -> Any:
    """A deep copy of ``base`` with values set and keys (or items) removed at the given paths."""
    instance = copy.deepcopy(base)
    for path, value in assignments.items():
        parent, key = _parent_and_key(instance, path)
        parent[key] = value
    for path in deletions:
        parent, key = _parent_and_key(instance, path)
        del parent[key]
    return instance


@dataclass(frozen=True)
class Case:
    schema: str
    name: str
    instance: Any
    keyword: str | None = None  # bad cases: the JSON Schema keyword that must fail ...
    at: str | None = None  # ... at this instance path ...
    message: str | None = None  # ... with this text in its message (optional)

    @property
    def id(self) -> str:
        return f"{self.schema}-{self.name}"


_BAD_KEYS = {"from", "instance", "set", "delete", "expect"}


def _bad_case(schema: str, name: str, spec: dict[str, Any], goods: dict[str, Any]) -> Case:
    unknown = set(spec) - _BAD_KEYS
    if unknown or ("from" in spec) == ("instance" in spec):
        raise ValueError(f"{schema}/{name}: needs one of from/instance; unknown keys {unknown}")
    base = goods[spec["from"]] if "from" in spec else spec["instance"]
    instance = mutated(base, spec.get("set", {}), spec.get("delete", []))
    keyword, at, *message = spec["expect"]
    return Case(schema, name, instance, keyword, at, message[0] if message else None)


def load_cases() -> tuple[list[Case], list[Case]]:
    good: list[Case] = []
    bad: list[Case] = []
    for file in sorted(PAYLOADS.glob("*.yaml")):
        for schema, cases in yaml.safe_load(file.read_text(encoding="utf-8")).items():
            goods = cases.get("good", {})
            good += [Case(schema, name, instance) for name, instance in goods.items()]
            bad += [_bad_case(schema, name, spec, goods) for name, spec in cases["bad"].items()]
    return good, bad


GOOD, BAD = load_cases()


def is_valid(name: str, instance: Any) -> bool:
    return fixtures.validator(name).is_valid(instance)


def all_errors(errors: Any) -> Iterator[ValidationError]:
    """Every error, including those nested in anyOf/oneOf contexts."""
    for error in errors:
        yield error
        yield from all_errors(error.context or ())


@pytest.mark.parametrize("case", GOOD, ids=lambda case: case.id)
def test_known_good_payload_validates(case: Case) -> None:
    fixtures.validate(case.schema, case.instance)


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.id)
def test_known_bad_payload_fails_for_the_right_reason(case: Case) -> None:
    with pytest.raises(ValidationError):
        fixtures.validate(case.schema, case.instance)
    errors = list(all_errors(fixtures.validator(case.schema).iter_errors(case.instance)))
    assert any(
        error.validator == case.keyword
        and error.json_path == case.at
        and (case.message is None or case.message in error.message)
        for error in errors
    ), f"expected {case.keyword!r} at {case.at}, got " + "; ".join(
        f"{error.validator} at {error.json_path}: {error.message}" for error in errors
    )


@pytest.mark.parametrize("name", fixtures.schema_names())
def test_every_schema_has_good_and_bad_examples(name: str) -> None:
    assert name in {case.schema for case in GOOD}, f"no known-good body for {name}"
    assert name in {case.schema for case in BAD}, f"no known-bad body for {name}"


def test_payload_files_name_only_existing_schemas() -> None:
    named = {case.schema for case in GOOD + BAD}
    assert named <= set(fixtures.schema_names()), named - set(fixtures.schema_names())


def test_case_paths_are_read_like_jsonschema_writes_them() -> None:
    assert path_steps("$") == []
    assert path_steps("$[0].details.tokens[12].id") == [0, "details", "tokens", 12, "id"]
    assert mutated({"a": [{"b": 1}]}, {"$.a[0].b": 2}, ["$.a[0].b"]) == {"a": [{}]}
    with pytest.raises(ValueError):
        path_steps("a.b")


# --------------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------------


def walk(node: Any, pointer: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, value) in the document."""
    yield pointer, node
    if isinstance(node, dict):
        for key, value in node.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            yield from walk(value, f"{pointer}/{escaped}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


def resolve(ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = fixtures.load_oas()
    for token in ref[2:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


ALL_REFS = sorted(
    {
        value["$ref"]
        for _, value in walk(fixtures.load_oas())
        if isinstance(value, dict) and isinstance(value.get("$ref"), str)
    }
)


def test_document_is_valid_against_the_openapi_3_1_meta_schema() -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    document = fixtures.load_oas()
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    Draft202012Validator(OPENAPI_31).validate(document)


def test_document_is_plain_json_data() -> None:
    # YAML would silently turn an unquoted timestamp into a datetime.
    document = fixtures.load_oas()
    assert json.loads(json.dumps(document)) == document


def test_path_templates_are_balanced_and_declared() -> None:
    document = fixtures.load_oas()
    operation_ids = []
    for path, item in document["paths"].items():
        names = re.findall(r"\{([^{}]+)\}", path)
        assert "{" not in re.sub(r"\{[^{}]+\}", "", path), path
        assert "}" not in re.sub(r"\{[^{}]+\}", "", path), path
        for method, operation in item.items():
            declared = [
                resolve(p["$ref"]) if "$ref" in p else p for p in operation.get("parameters", [])
            ]
            in_path = sorted(p["name"] for p in declared if p["in"] == "path")
            assert in_path == sorted(names), f"{method} {path}"
            assert all(p["required"] for p in declared if p["in"] == "path")
            operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids))


@pytest.mark.parametrize("ref", ALL_REFS)
def test_every_ref_resolves(ref: str) -> None:
    assert isinstance(resolve(ref), dict)


@pytest.mark.parametrize("name", fixtures.schema_names())
def test_every_schema_is_a_valid_2020_12_schema(name: str) -> None:
    Draft202012Validator.check_schema(fixtures.schema(name))


# Keywords that only constrain one JSON type: placing them where that type is not allowed is a
# silent no-op (Kong's `minLength` on an array is one).
_KEYWORD_TYPES = {
    **dict.fromkeys(["minLength", "maxLength", "pattern"], {"string"}),
    **dict.fromkeys(["minItems", "maxItems", "items", "prefixItems", "uniqueItems"], {"array"}),
    **dict.fromkeys(
        ["required", "properties", "additionalProperties", "minProperties"], {"object"}
    ),
    **dict.fromkeys(
        ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"],
        {"number", "integer"},
    ),
}
_OPENAPI_30_ONLY = {"nullable", "example", "x-nullable"}


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)


def subschemas(schema: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (pointer, schema object) in a JSON Schema, following only schema-valued keywords."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for key in _SCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from subschemas(sub, f"{pointer}/{key}/{name}")
    for key in _SCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key, [])):
            yield from subschemas(sub, f"{pointer}/{key}/{index}")
    for key in _SCHEMA_VALUES:
        if key in schema:
            yield from subschemas(schema[key], f"{pointer}/{key}")


def misplaced_keywords(document: Any) -> list[str]:
    problems = []
    for name, root in document["components"]["schemas"].items():
        for pointer, node in subschemas(root, f"#/components/schemas/{name}"):
            declared = node.get("type")
            types = set(declared if isinstance(declared, list) else [declared] if declared else [])
            for keyword, needs in _KEYWORD_TYPES.items():
                if keyword in node and types and not types & needs:
                    problems.append(f"{pointer}: {keyword} on type {sorted(types)}")
            problems += [f"{pointer}: {key}" for key in sorted(_OPENAPI_30_ONLY & node.keys())]
    return problems


def test_schema_keywords_sit_on_types_they_constrain() -> None:
    assert misplaced_keywords(fixtures.load_oas()) == []


def test_the_keyword_lint_catches_kongs_array_min_length() -> None:
    kong_like = {
        "components": {
            "schemas": {
                "Chat": {
                    "properties": {"messages": {"type": "array", "minLength": 1, "nullable": True}}
                }
            }
        }
    }
    assert misplaced_keywords(kong_like) == [
        "#/components/schemas/Chat/properties/messages: minLength on type ['array']",
        "#/components/schemas/Chat/properties/messages: nullable",
    ]


def test_upstream_endpoint_map_names_existing_schemas() -> None:
    endpoints = fixtures.load_oas()["x-upstream-endpoints"]
    names = set(fixtures.schema_names())
    for hosting, routes in endpoints.items():
        for route in routes:
            for role in ("request", "response", "stream", "error"):
                if role in route:
                    assert route[role] in names, f"{hosting} {route['route']} {role}"


def conformance_check(strategy: Any, name: str, drawn: list[Any]) -> Any:
    """A hypothesis test: every generated request body validates against schema ``name``."""
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def generated_body_conforms(case: Any) -> None:
        fixtures.validate(name, case.body)
        drawn.append(case.body)

    return generated_body_conforms


def test_schemathesis_loads_the_document_and_generates_conforming_requests() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(copy.deepcopy(fixtures.load_oas()))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(op.label for op in operations) == [
        "POST /{provider}/chat",
        "POST /{provider}/completions",
    ]
    for operation in operations:
        body_ref = operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
        name = body_ref["$ref"].removeprefix(SCHEMA_REF)
        drawn: list[Any] = []
        check = conformance_check(operation.as_strategy(), name, drawn)
        check()
        assert drawn


# --------------------------------------------------------------------------------------------------
# Client-facing operations
# --------------------------------------------------------------------------------------------------

CLIENT_OPERATIONS = [
    ("/{provider}/chat", "ChatRequest", "ChatResponse", "ChatStreamChunk"),
    (
        "/{provider}/completions",
        "CompletionsRequest",
        "CompletionsResponse",
        "CompletionsStreamChunk",
    ),
]


def response_schema_ref(operation: dict[str, Any], status: str) -> str:
    response = operation["responses"][status]
    response = resolve(response["$ref"]) if "$ref" in response else response
    return response["content"]["application/json"]["schema"]["$ref"]


def test_the_only_paths_are_the_two_route_types() -> None:
    assert sorted(fixtures.load_oas()["paths"]) == sorted(p for p, *_ in CLIENT_OPERATIONS)


@pytest.mark.parametrize("path, request_schema, response_schema, chunk_schema", CLIENT_OPERATIONS)
def test_client_operation_references_the_right_schemas(
    path: str, request_schema: str, response_schema: str, chunk_schema: str
) -> None:
    operation = fixtures.load_oas()["paths"][path]["post"]
    assert operation["requestBody"]["required"] is True
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": SCHEMA_REF + request_schema}

    ok = operation["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": SCHEMA_REF + response_schema}
    events = ok["content"]["text/event-stream"]["x-sse-data"]["oneOf"]
    assert events == [
        {"$ref": SCHEMA_REF + chunk_schema},
        {"$ref": SCHEMA_REF + "StreamErrorEvent"},
        {"$ref": SCHEMA_REF + "KongStreamErrorEvent"},
    ]
    assert resolve(ok["headers"]["X-Kong-LLM-Model"]["$ref"])["schema"]["type"] == "string"

    assert response_schema_ref(operation, "400") == SCHEMA_REF + "ErrorResponse"
    assert response_schema_ref(operation, "500") == SCHEMA_REF + "ErrorResponse"
    for status in ("502", "503", "504"):
        assert response_schema_ref(operation, status) == SCHEMA_REF + "GatewayError"
    assert "content" not in resolve(operation["responses"]["default"]["$ref"])  # passthrough

    (provider,) = [resolve(p["$ref"]) for p in operation["parameters"]]
    assert provider["name"] == "provider" and provider["in"] == "path" and provider["required"]


def test_stream_event_schemas_are_mutually_exclusive() -> None:
    # x-sse-data uses oneOf, so a payload must match exactly one of them.
    chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]}
    error = {"error": {"message": "boom"}}
    kong = {"error": True, "message": "empty or unsupported transformer response"}
    names = ["ChatStreamChunk", "StreamErrorEvent", "KongStreamErrorEvent"]
    for payload, expected in ((chunk, names[0]), (error, names[1]), (kong, names[2])):
        matches = [name for name in names if fixtures.validator(name).is_valid(payload)]
        assert matches == [expected]


# --------------------------------------------------------------------------------------------------
# Consistency between the client-facing and the upstream schemas
# --------------------------------------------------------------------------------------------------

# llama2_format=openai returns upstream bodies and stream frames verbatim, so every valid upstream
# body must be a valid client body too.
PASSTHROUGH = {
    "OpenAIChatResponse": "ChatResponse",
    "OpenAIChatChunk": "ChatStreamChunk",
    "OpenAICompletionResponse": "CompletionsResponse",
    "OpenAICompletionChunk": "CompletionsStreamChunk",
    "OpenAIError": "StreamErrorEvent",
    "TGIChatResponse": "ChatResponse",
    "TGIChatChunk": "ChatStreamChunk",
    "TGICompletionResponse": "CompletionsResponse",
    "TGICompletionChunk": "CompletionsStreamChunk",
}


@pytest.mark.parametrize(
    "case", [case for case in GOOD if case.schema in PASSTHROUGH], ids=lambda case: case.id
)
def test_an_openai_format_passthrough_is_a_valid_client_body(case: Case) -> None:
    fixtures.validate(PASSTHROUGH[case.schema], case.instance)


# TGI's Messages API has TGI's own schemas (ERRATA T1-T4, superseding D14's "OpenAI's shape with
# one more finish_reason"): a TGI body is not an OpenAI one whenever TGI's words differ.
def test_tgi_stream_finishes_are_not_openai_finishes() -> None:
    for case in GOOD:
        if case.schema == "TGICompletionChunk":
            assert not is_valid("OpenAICompletionChunk", case.instance) or (
                case.instance["choices"][0]["finish_reason"] == "stop_sequence"
            ), case.id


# A decoder that accepts every raw reply shape (the reference proxy's fixed mode) tells them apart
# by shape alone; no body may match two of them.
RAW_REPLY_SHAPES = [
    "RawKongResponse",
    "RawResponsesField",
    "HFInferenceResponse",
    "TGIGenerateResponse",
]


@pytest.mark.parametrize(
    "case", [case for case in GOOD if case.schema in RAW_REPLY_SHAPES], ids=lambda case: case.id
)
def test_raw_reply_shapes_are_told_apart_by_shape(case: Case) -> None:
    matching = [name for name in RAW_REPLY_SHAPES if is_valid(name, case.instance)]
    assert matching == [case.schema]


def test_kongs_raw_request_is_valid_raw_but_not_a_valid_tgi_generate_request() -> None:
    (kong,) = [case.instance for case in GOOD if case.id == "RawRequest-kong_unit_raw_chat"]
    assert kong["parameters"]["top_p"] == 1
    assert is_valid("RawRequest", kong)
    errors = list(fixtures.validator("TGIGenerateRequest").iter_errors(kong))
    assert [(e.validator, e.json_path) for e in errors] == [
        ("exclusiveMaximum", "$.parameters.top_p")
    ]


def test_a_non_streamed_ollama_reply_is_a_final_stream_line() -> None:
    for stream_line, reply in (
        ("OllamaChatStreamLine", "OllamaChatResponse"),
        ("OllamaGenerateStreamLine", "OllamaGenerateResponse"),
    ):
        for case in GOOD:
            if case.schema == stream_line:
                done = case.instance["done"]
                assert is_valid(reply, case.instance) is done, case.id


# --------------------------------------------------------------------------------------------------
# Kong's spec/fixtures/ai-proxy/oas.yaml: each erratum of fixtures/ERRATA.md, proven fixed
# --------------------------------------------------------------------------------------------------

KONG_TOOL_TURN = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ],
}


# The client schemas whose bodies carry `choices`.
WITH_CHOICES = ("ChatResponse", "CompletionsResponse", "ChatStreamChunk", "CompletionsStreamChunk")


def choice_item(name: str) -> dict[str, Any]:
    return fixtures.schema(name)["properties"]["choices"]["items"]


def test_kong_erratum_01_openapi_3_1_with_json_schema_nulls() -> None:
    document = fixtures.load_oas()
    assert document["openapi"].startswith("3.1.")
    assert not [p for p, node in walk(document) if isinstance(node, dict) and "nullable" in node]
    assert is_valid(
        "ChatResponse",
        {
            "object": "chat.completion",
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "logprobs": None, "message": {"role": "assistant", "content": "x"}}
            ],
        },
    )


def test_kong_erratum_02_chat_path_has_no_stray_brace() -> None:
    paths = fixtures.load_oas()["paths"]
    assert "/{provider}/chat" in paths
    assert not [path for path in paths if "}}" in path or "{{" in path]


def test_kong_erratum_03_messages_use_min_items_not_min_length() -> None:
    messages = fixtures.schema("ChatRequest")["properties"]["messages"]
    assert messages["type"] == "array" and messages["minItems"] == 1 and "minLength" not in messages
    assert not is_valid("ChatRequest", {"messages": []})


def test_kong_erratum_04_messages_is_never_a_template_string() -> None:
    assert not is_valid("ChatRequest", {"messages": "{template://sample-template}"})


def test_kong_erratum_05_tool_developer_and_function_roles_exist() -> None:
    assert {"system", "user", "assistant", "tool", "developer", "function"} <= set(
        fixtures.schema("ChatMessage")["properties"]["role"]["enum"]
    )
    assert is_valid("ChatMessage", {"role": "tool", "tool_call_id": "call_1", "content": "16.1"})


def test_kong_erratum_06_message_content_may_be_null_or_parts() -> None:
    assert is_valid("ChatMessage", KONG_TOOL_TURN)
    assert is_valid("ChatMessage", {"role": "user", "content": [{"type": "text", "text": "hi"}]})
    assert not is_valid("ChatMessage", {"role": "user"})


def test_kong_erratum_07_completions_response_has_no_prompt() -> None:
    assert "prompt" not in fixtures.schema("CompletionsResponse")["required"]
    assert is_valid(
        "CompletionsResponse", {"choices": [{"index": 0, "text": "x"}], "object": "text_completion"}
    )


def test_kong_erratum_08_chat_response_has_no_messages() -> None:
    assert "messages" not in fixtures.schema("ChatResponse")["required"]
    assert is_valid(
        "ChatResponse",
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
            "object": "chat.completion",
        },
    )


def test_kong_erratum_09_choices_is_required() -> None:
    for name in WITH_CHOICES:
        assert "choices" in fixtures.schema(name)["required"], name


def test_kong_erratum_10_finish_reason_is_optional_and_nullable_in_chunks() -> None:
    for name in WITH_CHOICES:
        assert "finish_reason" not in choice_item(name)["required"], name
    for name in ("ChatStreamChunk", "CompletionsStreamChunk"):
        assert choice_item(name)["properties"]["finish_reason"]["type"] == ["string", "null"]


def test_kong_erratum_11_logprobs_is_optional() -> None:
    for name in WITH_CHOICES:
        assert "logprobs" not in choice_item(name)["required"], name


def test_kong_erratum_12_logprobs_is_an_object_or_null() -> None:
    for name in WITH_CHOICES:
        assert choice_item(name)["properties"]["logprobs"]["type"] == ["object", "null"], name
    body = {"object": "text_completion", "choices": [{"index": 0, "text": "x", "logprobs": 0.5}]}
    assert not is_valid("CompletionsResponse", body)


def test_kong_erratum_13_system_fingerprint_is_a_string_or_null() -> None:
    body = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
    }
    assert is_valid("ChatResponse", {**body, "system_fingerprint": "fp_51e1070cf2"})
    assert is_valid("ChatResponse", {**body, "system_fingerprint": None})
    assert not is_valid("ChatResponse", {**body, "system_fingerprint": 1.5})


def test_kong_erratum_14_response_message_may_carry_only_tool_calls() -> None:
    body = {
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": KONG_TOOL_TURN}],
    }
    assert is_valid("ChatResponse", body)


def test_kong_erratum_15_one_usage_schema_with_all_counts() -> None:
    for name in ("ChatResponse", "CompletionsResponse"):
        assert fixtures.schema(name)["properties"]["usage"] == {"$ref": SCHEMA_REF + "Usage"}
    assert sorted(fixtures.schema("Usage")["required"]) == [
        "completion_tokens",
        "prompt_tokens",
        "total_tokens",
    ]


def test_kong_erratum_16_error_responses_are_documented() -> None:
    for path, *_ in CLIENT_OPERATIONS:
        responses = fixtures.load_oas()["paths"][path]["post"]["responses"]
        assert {"400", "500", "502", "503", "504", "default"} <= responses.keys()
    assert is_valid(
        "ErrorResponse", {"error": {"message": "request body doesn't contain valid prompts"}}
    )
    assert is_valid(
        "GatewayError",
        {
            "message": "The upstream server is timing out",
            "request_id": "0c2a9f8e7d6c5b4a3f2e1d0c9b8a7f6e",
        },
    )


def test_kong_erratum_17_streaming_is_documented() -> None:
    for path, *_ in CLIENT_OPERATIONS:
        ok = fixtures.load_oas()["paths"][path]["post"]["responses"]["200"]
        assert "text/event-stream" in ok["content"]


def test_kong_erratum_18_requests_document_the_fields_kong_reads() -> None:
    for name in ("ChatRequest", "CompletionsRequest"):
        properties = fixtures.schema(name)["properties"]
        assert {
            "model",
            "stream",
            "max_tokens",
            "temperature",
            "top_p",
            "top_k",
        } <= properties.keys()


def test_kong_erratum_19_a_body_with_both_formats_is_rejected() -> None:
    both = {"messages": [{"role": "user", "content": "hi"}], "prompt": "hi"}
    assert not is_valid("ChatRequest", both)
    assert not is_valid("CompletionsRequest", both)


def test_kong_erratum_20_servers_name_the_gateway_not_the_null_service() -> None:
    (server,) = fixtures.load_oas()["servers"]
    assert server["variables"]["gateway"]["default"] == "http://localhost:8000"
    assert "9000" not in json.dumps(fixtures.load_oas()["servers"])


def test_errata_file_lists_every_kong_erratum_test() -> None:
    errata = (Path(fixtures.__file__).with_name("ERRATA.md")).read_text(encoding="utf-8")
    tests = sorted(name for name in globals() if name.startswith("test_kong_erratum_"))
    assert len(tests) == 20
    for name in tests:
        assert f"`{name}`" in errata, name


# --------------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------------


def test_schema_names_cover_every_name_the_project_relies_on() -> None:
    names = fixtures.schema_names()
    assert names == sorted(names)
    assert set(REQUIRED_SCHEMAS) <= set(names), set(REQUIRED_SCHEMAS) - set(names)


def test_schema_returns_the_component_and_oas_path_points_at_the_file() -> None:
    assert fixtures.OAS_PATH.name == "oas.yaml" and fixtures.OAS_PATH.is_file()
    assert fixtures.schema("Usage") is fixtures.load_oas()["components"]["schemas"]["Usage"]
    with pytest.raises(KeyError, match="no schema named 'Nope'"):
        fixtures.schema("Nope")
    with pytest.raises(KeyError, match="no schema named 'Nope'"):
        fixtures.validator("Nope")


def test_validators_are_draft_2020_12_and_built_once() -> None:
    validator = fixtures.validator("ChatStreamChunk")
    assert validator is fixtures.validator("ChatStreamChunk")
    assert isinstance(validator, Validator)
    assert isinstance(validator, Draft202012Validator)
    assert fixtures.load_oas() is fixtures.load_oas()


def test_validate_names_the_schema_and_the_json_path() -> None:
    line = {"model": "llama3.2", "created_at": 1702390423, "response": "", "done": True}
    with pytest.raises(ValidationError) as caught:
        fixtures.validate("OllamaGenerateResponse", line)
    assert caught.value.json_path == "$.created_at"
    assert caught.value.validator == "type"
    assert caught.value.message.startswith("OllamaGenerateResponse at $.created_at: ")


@pytest.mark.parametrize(
    "value",
    [
        "2023-08-04T19:22:45.499127Z",
        "2023-08-04T08:52:19.385406455-07:00",
        "0001-01-01T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "2024-02-29t10:00:00+05:30",
    ],
)
def test_date_time_accepts_rfc_3339(value: str) -> None:
    line = {"model": "m", "created_at": value, "response": "", "done": False}
    fixtures.validate("OllamaGenerateStreamLine", line)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2023-08-04",
        "2023-08-04T19:22:45",
        "2023-08-04 19:22:45Z",
        "2023-13-04T19:22:45Z",
        "2023-02-30T00:00:00Z",
        "2023-08-04T25:00:00Z",
        "1702390423",
    ],
)
def test_date_time_rejects_anything_else(value: str) -> None:
    line = {"model": "m", "created_at": value, "response": "", "done": False}
    with pytest.raises(ValidationError) as caught:
        fixtures.validate("OllamaGenerateStreamLine", line)
    assert caught.value.validator == "format"
