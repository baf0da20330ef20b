"""Streaming: the upstream's stream, whatever it speaks, to the client as OpenAI-style SSE.

The contract with the pipeline (the one call site in its streaming branch)::

    from proxy_impl.streaming import StreamPlan, relay_stream

    # the client asked to stream and the upstream answered 200
    return await relay_stream(request, upstream, StreamPlan(...))

- ``request`` is the client's ``web.Request``; ``upstream`` the ``aiohttp.ClientResponse`` whose
  status is 200 and whose body has not been read. The relay owns it from then on: it releases it
  when the body was read to the end and closes it otherwise (client gone, upstream broken, stream
  over before the upstream finished), so the upstream stops generating at once.
- A non-200 upstream answer never comes here: the pipeline passes its status, body and content
  type through unchanged, not as a stream (kong_semantics §10.14, §10.16).
- ``StreamPlan`` (``plan.py``) says what the relay needs: format, route type, resolved model,
  Kong-compatibility mode, ``stream_options.include_usage``, the effective token limit, the
  headers to add (``X-Kong-LLM-Model``, latency headers), the format's non-streaming decoder (for
  an upstream that answers a streaming request with one JSON document; it raises ``ValueError``
  with the client message, which becomes a JSON 500 as in non-streaming mode), and ``on_done``,
  called exactly once with a ``StreamOutcome`` (usage, finish reason, model, stripped text length
  for Kong's completion-token estimate, how the stream ended) for the analytics log.
- What the upstream request must look like is the codecs' business, with one streaming rule: in
  fixed mode a raw request that streams carries ``parameters.stream: true`` *and* a top-level
  ``"stream": true`` (TGI's ``/`` and the HF Inference API read the top-level one).

Inside: ``framing`` (SSE and NDJSON decoders), one translator per upstream dialect (``ollama``,
``raw`` for TGI and llama.cpp events, ``openai``), all pure state machines emitting ``events``;
``client`` encodes events for the client; ``outcome`` tallies them for analytics; ``relay`` is the
aiohttp edge.
"""

from .events import Usage
from .outcome import StreamOutcome
from .plan import StreamPlan
from .relay import relay_stream

__all__ = ["StreamOutcome", "StreamPlan", "Usage", "relay_stream"]
