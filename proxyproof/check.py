"""``proxyproof check``: the catalogue against a gateway, with a live view and report files.

Exit status: 0 when no case fails (deviations and n/a do not fail), 1 when one does, 2 for a
usage or configuration error."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

GATEWAYS = ("bundled", "kong", "manual", "litellm")


class UsageError(Exception):
    """A mistake in the command line or the files it names: one line, exit status 2."""


def _cases(args: argparse.Namespace) -> list[Any]:
    from proxyproof.harness.catalogue import CatalogueError, load_catalogue, select

    profiles = [p.strip() for p in (args.profile or "").split(",") if p.strip()]
    try:
        return select(load_catalogue(), profiles, args.case or [], args.k or "")
    except CatalogueError as error:
        raise UsageError(str(error)) from None


def _list(cases: list[Any], args: argparse.Namespace) -> int:
    listing = {"cases": [{"id": c.id, "title": c.title, "features": list(c.features)}
                         for c in cases]}
    if args.json:
        _write_text(args.json, json.dumps(listing, indent=2) + "\n")
    else:
        width = max((len(c.id) for c in cases), default=0)
        for case in cases:
            print(f"{case.id:{width}}  [{','.join(case.features)}] {case.title}")
        print(f"{len(cases)} cases")
    return 0


def _write_text(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def user_config_from(args: argparse.Namespace) -> dict[str, Any] | None:
    """The user's own kong.yaml (``--config``), if named."""
    return _user_config(args.config) if args.config else None


def _user_config(path: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML or JSON: {error}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}: expected a Kong declarative config, a mapping with "
                         "_format_version: \"3.0\" and services or routes")
    return document


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise UsageError(f"--gateway {args.gateway} needs {' and '.join(missing)}")


def gateway_from(args: argparse.Namespace) -> Any:
    """The gateway ``--gateway`` and its options name."""
    if args.kong_compat and args.gateway != "bundled":
        raise UsageError("--kong-compat runs the bundled proxy in Kong's mode: use it with "
                         "--gateway bundled (any gateway's Kong behaviour is reported as a "
                         "named deviation anyway)")
    if args.gateway == "bundled":
        from proxyproof.gateways import bundled_gateway

        return bundled_gateway(args.kong_compat)
    if args.gateway == "kong":
        _require(args, "admin_url", "proxy_url")
        from proxyproof.harness.adapters.kong import KongGateway

        return KongGateway(args.admin_url, args.proxy_url)
    if args.gateway == "litellm":
        from proxyproof.harness.adapters.litellm import LiteLLMGateway

        return LiteLLMGateway()
    _require(args, "proxy_url", "write_config")
    return ManualGateway(args.proxy_url, args.write_config, args.load_command, args.yes)


class ManualGateway:
    """Any gateway the user loads by hand (or with ``--load-command``): the harness writes the
    declarative config the cases need, waits until it is loaded, and calls ``--proxy-url``."""

    name = "manual"

    def __init__(self, proxy_url: str, path: str, load_command: str | None, yes: bool) -> None:
        self.proxy_url, self.path = proxy_url.rstrip("/"), path
        self.load_command, self.yes = load_command, yes

    def load(self, config: dict[str, Any]) -> str:
        _write_text(self.path, yaml.safe_dump(config, sort_keys=False))
        print(f"wrote the gateway config the cases need to {self.path}", file=sys.stderr)
        if self.load_command:
            command = self.load_command.replace("{config}", shlex.quote(self.path))
            done = subprocess.run(command, shell=True, check=False)
            if done.returncode != 0:
                raise UsageError(f"--load-command exited with {done.returncode}: {command}")
        elif not self.yes:
            if not sys.stdin.isatty():
                raise UsageError("no terminal to confirm that the config is loaded: "
                                 "pass --yes or --load-command")
            input(f"load {self.path} into your gateway, then press Enter… ")
        return self.proxy_url

    def close(self) -> None:
        pass


def run_check(args: argparse.Namespace) -> int:
    from proxyproof.harness.adapters import GatewayError
    from proxyproof.harness.reports import LiveProgress, finish, make_console
    from proxyproof.harness.runner import MockPlacement, run_catalogue
    from proxyproof.harness.user_routes import UserConfigError

    if "properties" in [p.strip() for p in (args.profile or "").split(",")]:
        from proxyproof.harness.property_check import run_properties_command

        if args.profile.strip() != "properties" or args.list or args.case or args.config:
            raise UsageError("--profile properties runs alone (no other profile, --case, "
                             "--list or --config); -k selects combinations")
        return run_properties_command(args, gateway_from(args), UsageError)
    if "balancer" in [p.strip() for p in (args.profile or "").split(",")]:
        from proxyproof.harness.balancer.command import run_balancer_command

        if args.profile.strip() != "balancer" or args.config:
            raise UsageError("--profile balancer runs alone (no other profile or --config); "
                             "--case and -k select its checks")
        return run_balancer_command(args, lambda: gateway_from(args), UsageError)
    cases = _cases(args)
    if args.list:
        return _list(cases, args)
    if not cases:
        raise UsageError("no case matches the selection (see --list)")
    user_config = user_config_from(args)
    gateway = gateway_from(args)
    to_stdout = "-" in (args.json, args.junit, args.markdown)
    console = make_console(sys.stderr if to_stdout else sys.stdout)
    describe = {"mode": "Kong-compatible" if args.kong_compat else "reference",
                "adapter": args.gateway}
    if args.config:
        describe["config"] = args.config
    with LiveProgress(total=None, console=console) as live:
        def progress(case: Any, result: Any) -> None:
            if result is None:
                live.case_started(case.id, case.title)
            else:
                live.case_finished(result)

        try:
            placement = MockPlacement(args.mock_bind, args.mock_host)
            report = run_catalogue(gateway, cases, progress, describe, placement, user_config)
        except UserConfigError as error:
            raise UsageError(f"{args.config}: {error}") from None
        except GatewayError as error:
            raise UsageError(str(error)) from None
    try:
        return finish(report, console, args)
    except ValueError as error:
        raise UsageError(str(error)) from None


def whole_number(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number, ``least`` or more."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if number < least:
            raise argparse.ArgumentTypeError(f"{number}: must be {least} or more")
        return number

    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value:  # NaN passes every comparison below
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    return value


def positive_number(text: str) -> float:
    """An argparse type: a finite number above 0."""
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
    return value


def share(text: str) -> float:
    """An argparse type: a fraction from 0 to 1."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1")
    return value


def add_arguments(check: argparse.ArgumentParser) -> None:
    add_gateway_arguments(check)
    which = check.add_argument_group("which cases")
    which.add_argument("--profile", metavar="P,...", help="only these features: "
                       "core, seed, streaming, auth, errors, headers, options, kong, security; "
                       "or properties: the round-trip properties (docs/properties.md); or "
                       "balancer: AI Proxy Advanced's targets and balancer, by statistics and "
                       "faults (docs/balancer-profile.md)")
    which.add_argument("--case", action="append", metavar="ID", help="only this case "
                       "(repeatable)")
    which.add_argument("-k", metavar="EXPR", help="only cases whose id, title or features "
                       "match, as pytest's -k: 'ollama and not stream'")
    which.add_argument("--list", action="store_true", help="print the selected cases and stop")
    which.add_argument("--max-examples", type=int, metavar="N", help="--profile properties: "
                       "examples per hosting x route x stream combination (default 25)")
    which.add_argument("--deadline", type=float, metavar="SECONDS", help="--profile "
                       "properties: stop starting combinations after this long (default 600)")
    out = check.add_argument_group("reports (FILE '-' is standard output)")
    out.add_argument("--json", metavar="FILE", help="the JSON report (with --list: the list)")
    out.add_argument("--junit", metavar="FILE", help="JUnit XML for CI servers")
    out.add_argument("--markdown", metavar="FILE", help="Markdown for a README or pull request")


def add_gateway_arguments(command: argparse.ArgumentParser) -> None:
    """Which gateway, and how to reach and load it: shared by check, soak and load."""
    where = command.add_argument_group("the gateway")
    where.add_argument("--gateway", choices=GATEWAYS, default="bundled",
                       help="bundled: proxyproof's reference proxy (default); kong: a Kong in "
                       "DB-less mode, configured through its Admin API; manual: any gateway "
                       "you load the written config into; litellm: a LiteLLM proxy started "
                       "with a generated config")
    where.add_argument("--proxy-url", metavar="URL", help="where the gateway proxies (kong, "
                       "manual), e.g. http://127.0.0.1:8000")
    where.add_argument("--admin-url", metavar="URL", help="Kong's Admin API (kong), e.g. "
                       "http://127.0.0.1:8001")
    where.add_argument("--config", metavar="FILE", help="your own kong.yaml: run the cases on "
                       "its llama2 routes, with its options and auth, upstreams pointed at "
                       "the mocks (bundled or kong)")
    where.add_argument("--kong-compat", action="store_true",
                       help="run the bundled proxy with Kong's behaviour, bugs included")
    manual = command.add_argument_group("--gateway manual")
    manual.add_argument("--write-config", metavar="FILE",
                        help="where to write the declarative config the cases need")
    manual.add_argument("--load-command", metavar="CMD", help="a shell command that loads it, "
                        "{config} standing for the file (e.g. 'deck gateway sync {config}')")
    manual.add_argument("--yes", action="store_true",
                        help="do not wait for Enter: the config is loaded already")
    manual.add_argument("--mock-host", metavar="HOST", help="the host name the gateway reaches "
                        "the mocks by, written into the config (e.g. host.docker.internal)")
    manual.add_argument("--mock-bind", metavar="ADDR", default="127.0.0.1",
                        help="the address the mocks listen on (default 127.0.0.1; a container "
                        "may need the docker bridge's address)")
