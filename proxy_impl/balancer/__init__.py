"""AI Proxy Advanced's balancer (docs/balancer.md): choosing among a route's targets, failing
over, and ejecting failing targets.

- ``algorithms``: how each ``balancer.algorithm`` chooses, as a function of its state and an
  injected random source;
- ``health``: the circuit breaker (``max_fails``, ``fail_timeout``) over an injected clock;
- ``failover``: whether a failed attempt may go on, and whether it counts against the target;
- ``semantic`` and ``embeddings``: semantic routing's ranking and its embeddings call;
- ``route``: a route's balancer at run time (leases on targets, figures for ``/status``).

The loop that sends each attempt is the pipeline's (``pipeline.py``): I/O stays at the edge.
"""
