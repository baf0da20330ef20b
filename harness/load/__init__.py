"""Load through a gateway with Locust (``proxyproof load``): the catalogue's requests in a
configurable mix, from one process or many machines, with conformance sampling.

``mix``, ``plan``, ``marker``, ``outcomes``, ``summary`` and ``sampling`` are plain modules;
``locust_run`` alone imports Locust (and with it gevent's monkey-patching), and runs only as its
own process: ``python -m proxyproof.harness.load.locust_run JOB.json``. Nothing imports it.
"""
