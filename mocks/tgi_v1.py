"""TGI's Messages API under ``/v1`` (``router/src/chat.rs``): the HuggingFace mock's dialect.

One served model whatever the request names, serde's rejections (422, plain text) for bodies of
the wrong shape, TGI's own error bodies, a ``length`` finish on the last token's chunk, and no
embeddings.
"""

from __future__ import annotations

from . import tgi_request
from .openai_compat_dialect import Dialect, Errors, Models, Replies, Requests, Streaming

_MISSING = (
    "Failed to deserialize the JSON body into the target type: missing field `{}` "
    "at line 1 column 2"
)

DIALECT = Dialect(
    name="tgi",
    requests=Requests(
        strict=False,
        serves_one_model=True,
        completion_max_tokens=None,
        stop_must_be_list=True,
        rejects_n=False,
    ),
    errors=Errors(
        build=lambda status, message, param, code: tgi_request.error(status, message),
        not_json=tgi_request.not_json,
        reject_body=tgi_request.rejection,
        body_status=422,
        missing_messages=_MISSING.format("messages"),
        empty_messages="Input validation error: `inputs` cannot be empty",
        missing_prompt=_MISSING.format("prompt"),
    ),
    replies=Replies(
        system_fingerprint="3.3.6-sha-9b2f6d7",
        chat_id=lambda digest: "",
        completion_id=lambda digest: "",
        usage_details=False,
        stop_sequence_finish="stop_sequence",
        message_extras={},
        response_extras={},
    ),
    stream=Streaming(
        content_type="text/event-stream",
        role_chunk_content=False,
        role_on_every_delta=True,
        finish_delta={"role": "assistant", "content": ""},
        finish_on_last_token=True,
        usage_null="always",
        error_body=lambda message: {"error": {"message": message, "http_status_code": 500}},
    ),
    models=Models(owned_by=None, created=0, public=True, retrievable=False),
    embeddings=None,
)
