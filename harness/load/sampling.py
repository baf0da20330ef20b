"""Conformance sampling: a share of the replies under load, judged by the oracle as
``proxyproof check`` judges a case sent alone.

A sampled request carries a marker (`` sample-<hex>``) at the end of its prompt; the oracle
predicts the upstream body from the body actually sent, so the marker is part of what it checks.
The marker finds the upstream request in the mock's journal (``?contains=``), however many others
ran at the same time; the mock's reply to it is replayed to learn what the client should have
got, and both sides are judged. A sample whose upstream request the journal has already pushed
out (``dropped``) is skipped, not failed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxyproof.mocks import MockControl

from ..catalogue import gateway_config, load_catalogue
from ..catalogue.model import Case
from ..checks import Exchange, problems
from ..http import Response, request
from ..journal import replayed_request
from ..runner import CLIENT_TIMEOUT, without_streaming

FAILURES_KEPT = 10  # failed samples described in the report


@dataclass
class Verdicts:
    checked: int = 0
    failed: int = 0
    skipped: int = 0  # the journal no longer held the upstream request
    failures: list[str] = field(default_factory=list)  # the first few, one line each


class SampleChecker:
    """Judges samples against the plan's mocks; ``check`` is synchronous (one HTTP call or two
    to the mock, then the oracle)."""

    def __init__(self, plan: Mapping[str, Any], cases: Mapping[str, Case] | None = None) -> None:
        self.mocks = {kind: MockControl(url) for kind, url in plan["mocks"].items()}
        self.planned = {planned["binding"]: planned for kind in plan["kinds"].values()
                        for planned in kind["requests"]}
        self.cases = cases if cases is not None else {c.id: c for c in load_catalogue()}
        self.verdicts = Verdicts()

    def check(self, sample: Mapping[str, Any]) -> None:
        planned = self.planned.get(sample["binding"])
        if planned is None or planned["sample"] is None:
            return
        found = self._problems(planned, sample)
        if found is None:
            self.verdicts.skipped += 1
            return
        self.verdicts.checked += 1
        if found:
            self.verdicts.failed += 1
            if len(self.verdicts.failures) < FAILURES_KEPT:
                self.verdicts.failures.append(f"{planned['binding']}: {found[0]}")

    def _problems(self, planned: Mapping[str, Any], sample: Mapping[str, Any]
                  ) -> list[str] | None:
        mock = self.mocks[planned["mock"]]
        case = self.cases[planned["case"]]
        target = planned["sample"]["target"]
        journal = mock.journal(contains=sample["marker"])
        if not journal and mock.describe()["journal"]["dropped"]:
            return None  # pushed out of the journal before it could be read
        journal = [mock.wait(e["id"]) if e.get("outcome") == "pending" else e for e in journal]

        def replay(entry: Mapping[str, Any], stream: bool | None) -> Response:
            again = replayed_request(entry if stream is None else without_streaming(entry),
                                     mock.url)
            return request(again.method, again.url, again.body, dict(again.headers),
                           timeout=CLIENT_TIMEOUT)

        response = Response(sample["status"], sample["headers"],
                            base64.b64decode(sample["reply"]), sample["complete"])
        exchange = Exchange(case, gateway_config.route_setup(target),
                            target["model"]["options"]["upstream_url"], sample["json"],
                            response, journal, replay)
        found = problems(exchange, case.expect, kong=False)
        kong = case.kong or (case.expect if case.expect.oracle else None)
        if found and kong is not None and not problems(exchange, kong, kong=True):
            return []  # Kong's named behaviour, as check reports it: a deviation, not a failure
        return found
