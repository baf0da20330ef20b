"""proxyproof's reference implementation of Kong's AI Proxy / AI Proxy Advanced for the llama2
provider (``llama2_format`` raw, ollama, openai), configured by a Kong declarative config.

Public entry (used by the CLI and the harness's bundled-gateway adapter)::

    from proxyproof.proxy_impl import proxy_app, load_config, ConfigError, describe
    config = load_config("examples/ollama.yaml")   # raises ConfigError(problems)
    config.warnings                                 # unsupported plugins/fields, never silent
    app = proxy_app(config, kong_compat=False)      # an aiohttp web.Application

The fixed (reference) behaviour is the default; ``kong_compat=True`` reproduces Kong's quirks
(``behaviour`` has a flag for each; docs/kong-behaviour.md describes them).

One job per module:

- loading a config: ``config`` (the entry) reads the document with ``declarative`` and each AI
  plugin with ``plugin_config``, through ``config_fields`` (typed reads) against
  ``kong_schema`` (Kong's vocabulary), into ``model`` (the values every other module reads);
- serving: ``server`` (the aiohttp app) hands each request to ``pipeline``, which moves it through
  ``routing``, ``templates``, ``request`` and ``tuning``, ``codecs``, ``auth``, ``forwarding``,
  ``upstream`` (over ``http_client``, the pooled upstream connections), ``streaming`` or
  ``reply``, and answers with ``errors``, ``timing`` and ``analytics``; ``json_text`` writes all
  the JSON.
"""

from .config import ConfigError, describe, load_config
from .model import Config
from .server import proxy_app

__all__ = ["Config", "ConfigError", "describe", "load_config", "proxy_app"]
