"""proxyproof's pytest plugin (the ``pytest11`` entry point): the mock fixtures, and the conformance
catalogue as tests.

- ``mock_ollama``, ``mock_huggingface``, ``mock_llamacpp``, ``mock_openai``, ``mock_server``,
  the ``mock_settings`` marker (cassettes: ``replay=DIR``) and ``--proxyproof-record=URL``: see
  ``proxyproof.mocks.pytest_plugin``.
- ``pytest --proxyproof-catalogue`` adds one test per catalogue case, run through the same code
  as ``proxyproof check``: a pass or a named Kong deviation passes, a failure fails with the
  expected-against-actual diff, a case the gateway cannot express is skipped with its reason.
  ``--proxyproof-gateway bundled|kong|litellm`` (with ``--proxyproof-admin-url`` and
  ``--proxyproof-proxy-url`` for kong), ``--proxyproof-kong-compat``, ``--proxyproof-profile``,
  ``-k`` as usual, and ``--proxyproof-config kong.yaml`` for the user's own routes.
  ``--proxyproof-profile balancer`` runs the balancer checks instead (``docs/balancer-profile.md``),
  one test each, marked ``balancer``.

Imported into every pytest run of every project that installs proxyproof: nothing heavy is
imported unless the catalogue is asked for.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import pytest

from proxyproof.mocks.pytest_plugin import add_options as _add_mock_options
from proxyproof.mocks.pytest_plugin import (  # noqa: F401 (fixtures are found by name)
    mock_huggingface,
    mock_llamacpp,
    mock_ollama,
    mock_openai,
    mock_server,
)
from proxyproof.mocks.pytest_plugin import pytest_configure as _configure_mocks

_READY = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("proxyproof", "proxyproof conformance catalogue")
    group.addoption("--proxyproof-catalogue", action="store_true",
                    help="run the conformance catalogue as tests")
    group.addoption("--proxyproof-gateway", default="bundled",
                    choices=("bundled", "kong", "litellm"), help="the gateway to check")
    group.addoption("--proxyproof-kong-compat", action="store_true",
                    help="run the bundled proxy with Kong's behaviour")
    group.addoption("--proxyproof-admin-url", help="Kong's Admin API (with --proxyproof-gateway "
                    "kong)")
    group.addoption("--proxyproof-proxy-url", help="Kong's proxy URL (with kong)")
    group.addoption("--proxyproof-profile", default="", help="only these features (P,...); "
                    "balancer: the balancer checks instead of the catalogue")
    group.addoption("--proxyproof-config", help="your own kong.yaml: cases on its llama2 routes")
    _add_mock_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    _configure_mocks(config)
    if config.getoption("proxyproof_catalogue", False):
        from proxyproof.harness.catalogue import PROFILES

        for feature in PROFILES:  # each case is marked with its features: -m auth
            config.addinivalue_line("markers", f"{feature}: proxyproof catalogue feature")
        config.addinivalue_line("markers", "balancer: proxyproof balancer check")


class CatalogueCase(pytest.Item):
    def __init__(self, *, binding: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.binding = binding
        for feature in binding.case.features:
            self.add_marker(feature)

    def _result(self) -> Any:
        return self.session.stash[_READY].result(self.binding)

    def runtest(self) -> None:
        result = self._result()
        self.user_properties.append(("outcome", result.outcome))
        if result.outcome == "n/a":
            pytest.skip("; ".join(result.details))
        if result.outcome == "deviation":
            self.user_properties.append(("deviation", "; ".join(result.details)))
        if result.outcome == "fail":
            raise CaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
                     ) -> str:
        if isinstance(excinfo.value, CaseFailed):
            result = excinfo.value.result
            lines = [f"{result.id}: {result.title}", *(f"  - {d}" for d in result.details),
                     "expected:", json.dumps(result.expected, indent=2, default=str),
                     "actual:", json.dumps(result.actual, indent=2, default=str),
                     "the mock received:", json.dumps(result.journal, indent=2, default=str)]
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return f"proxyproof catalogue ({self.binding.case.source})", None, self.binding.id


class BalancerCheck(CatalogueCase):
    """A balancer check (``harness/balancer``), judged and reported as a catalogue case is."""

    def __init__(self, *, check: Any, **kwargs: Any) -> None:
        pytest.Item.__init__(self, **kwargs)
        self.check = check
        self.add_marker("balancer")

    def _result(self) -> Any:
        return self.session.stash[_READY].result(self.check)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "proxyproof balancer profile", None, self.check.id


class CaseFailed(Exception):
    def __init__(self, result: Any) -> None:
        super().__init__(result.id)
        self.result = result


def _gateway(config: pytest.Config) -> Any:
    option = config.getoption
    if option("proxyproof_gateway") == "kong":
        from proxyproof.harness.adapters.kong import KongGateway

        if not (option("proxyproof_admin_url") and option("proxyproof_proxy_url")):
            raise pytest.UsageError("--proxyproof-gateway kong needs --proxyproof-admin-url and "
                                    "--proxyproof-proxy-url")
        return KongGateway(option("proxyproof_admin_url"), option("proxyproof_proxy_url"))
    if option("proxyproof_gateway") == "litellm":
        from proxyproof.harness.adapters.litellm import LiteLLMGateway

        return LiteLLMGateway()
    from proxyproof.gateways import bundled_gateway

    return bundled_gateway(option("proxyproof_kong_compat"))


@pytest.hookimpl(tryfirst=True)  # before pytest's own -k and -m deselect among the items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if not config.getoption("proxyproof_catalogue"):
        return
    import yaml

    from proxyproof.harness.catalogue import CatalogueError, load_catalogue, select
    from proxyproof.harness.runner import prepared

    profiles = [p for p in config.getoption("proxyproof_profile").split(",") if p]
    if "balancer" in profiles:
        if profiles != ["balancer"] or config.getoption("proxyproof_config"):
            raise pytest.UsageError("--proxyproof-profile balancer runs alone (no other profile, "
                                    "no --proxyproof-config)")
        _collect_balancer(session, config, items)
        return
    try:
        cases = select(load_catalogue(), profiles)
    except CatalogueError as error:
        raise pytest.UsageError(str(error)) from None
    user_config = None
    if config.getoption("proxyproof_config"):
        with open(config.getoption("proxyproof_config"), encoding="utf-8") as file:
            user_config = yaml.safe_load(file)
    stack = ExitStack()
    ready = stack.enter_context(prepared(_gateway(config), cases, user_config))
    session.stash[_READY] = ready
    config.add_cleanup(stack.close)
    items.extend(CatalogueCase.from_parent(session, name=binding.id, binding=binding)
                 for binding in ready.bindings)


def _collect_balancer(session: pytest.Session, config: pytest.Config,
                      items: list[pytest.Item]) -> None:
    from proxyproof.harness.balancer import all_checks
    from proxyproof.harness.balancer.run import prepared

    checks = all_checks()
    stack = ExitStack()
    session.stash[_READY] = stack.enter_context(prepared(_gateway(config), checks))
    config.add_cleanup(stack.close)
    items.extend(BalancerCheck.from_parent(session, name=check.id, check=check)
                 for check in checks)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    deviations = [(report.nodeid, dict(report.user_properties).get("deviation"))
                  for report in terminalreporter.stats.get("passed", [])
                  if dict(report.user_properties).get("outcome") == "deviation"]
    if deviations:
        terminalreporter.section("proxyproof: Kong deviations (not failures)")
        for nodeid, names in deviations:
            terminalreporter.line(f"{nodeid}: {names}")
