"""Streaming: the upstream's stream, whatever it speaks, to the client as OpenAI-style SSE.

The pipeline calls it once the client asked to stream and the upstream answered 200::

    return await relay_stream(request, upstream, StreamPlan(...))

- ``upstream`` is the ``http_client.Response`` whose body has not been read. The relay owns it
  from then on: it releases it when the body was read to the end and closes it otherwise (client
  gone, upstream broken, stream over before the upstream finished), so the upstream stops
  generating at once. A non-200 upstream answer never comes here: the pipeline passes it through.
- ``StreamPlan`` (``plan.py``) says what the relay needs: format, route type, resolved model,
  Kong-compatibility mode, ``stream_options.include_usage``, the effective token limit, the
  headers to send, the format's non-streaming decoder (for an upstream that answers a streaming
  request with one JSON document) and ``on_done``, called exactly once with a ``StreamOutcome``
  for the analytics log.

Inside: ``framing`` (SSE and NDJSON decoders), one translator per upstream dialect (``ollama``,
``raw`` for TGI and llama.cpp events, ``openai``), all pure state machines emitting ``events``;
``client`` encodes events for the client; ``outcome`` tallies them for analytics; ``relay`` is the
aiohttp edge.
"""

from .outcome import StreamOutcome
from .plan import StreamPlan
from .relay import relay_stream

__all__ = ["StreamOutcome", "StreamPlan", "relay_stream"]
