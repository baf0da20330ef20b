"""JUnit XML, the format CI servers (Jenkins, GitLab, GitHub test reporters) show as test results.

One ``<testsuite>`` per hosting, one ``<testcase>`` per case: a fail is a ``<failure>``, an n/a
is ``<skipped>``, and a deviation passes (it is a named, known Kong behaviour) but carries its
names as properties and in ``<system-out>``: visible in CI without failing the build.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, TextIO

from ..results import CaseResult, Report
from .masking import mask_report
from .tally import hosting_of

# XML 1.0 cannot carry most control characters, escaped or not; ElementTree writes them as they
# are and the file then fails to parse. Upstream bodies can hold anything, so show them as \xNN.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_junit(report: Report, stream: TextIO) -> None:
    report = mask_report(report)
    name = f"proxyproof conformance: {report.gateway.get('name') or 'gateway'}"
    suites: dict[str, list[CaseResult]] = {}
    for case in report.cases:
        suites.setdefault(hosting_of(case), []).append(case)

    root = ET.Element("testsuites", _counts(name, report.cases))
    for hosting, cases in suites.items():
        suite = ET.SubElement(root, "testsuite", _counts(f"{name} / {hosting}", cases))
        properties = ET.SubElement(suite, "properties")
        for key, value in report.gateway.items():
            _property(properties, f"gateway.{key}", value)
        _property(properties, "hosting", hosting)
        for case in cases:
            _testcase(suite, case)

    ET.indent(root)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(root, encoding="unicode"))
    stream.write("\n")


def _counts(name: str, cases: list[CaseResult]) -> dict[str, str]:
    return {
        "name": _xml(name),
        "tests": str(len(cases)),
        "failures": str(sum(case.outcome == "fail" for case in cases)),
        "errors": "0",  # a harness error aborts the run; it never becomes a case result
        "skipped": str(sum(case.outcome == "n/a" for case in cases)),
        "time": f"{sum(case.seconds for case in cases):.3f}",
    }


def _testcase(suite: ET.Element, case: CaseResult) -> None:
    feature = case.features[0] if case.features else "gateway"
    element = ET.SubElement(
        suite, "testcase",
        {"classname": _xml(f"proxyproof.{feature}"), "name": _xml(case.id),
         "time": f"{case.seconds:.3f}"},
    )  # fmt: skip
    first = case.details[0] if case.details else case.outcome
    if case.outcome == "fail":
        failure = ET.SubElement(element, "failure", {"message": _xml(first), "type": "fail"})
        failure.text = _xml(_failure_text(case))
    elif case.outcome == "n/a":
        skipped = ET.SubElement(element, "skipped", {"message": _xml(first)})
        skipped.text = _xml("\n".join(case.details)) or None
    elif case.outcome == "deviation":
        properties = ET.SubElement(element, "properties")
        for deviation in case.details or ["deviation"]:
            _property(properties, "deviation", deviation)
        out = ET.SubElement(element, "system-out")
        out.text = _xml("\n".join(["Kong deviation(s):", *case.details]))


def _failure_text(case: CaseResult) -> str:
    parts = [
        f"{case.title} ({hosting_of(case)}{', route ' + case.route if case.route else ''})",
        "\n".join(f"- {detail}" for detail in case.details),
        "expected:\n" + _json(case.expected),
        "actual:\n" + _json(case.actual),
        "mock journal (what the upstream received):\n" + _json(case.journal),
    ]
    return "\n\n".join(part for part in parts if part)


def _property(parent: ET.Element, name: str, value: Any) -> None:
    text = value if isinstance(value, str) else _json(value, indent=None)
    ET.SubElement(parent, "property", {"name": _xml(name), "value": _xml(text)})


def _json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def _xml(text: str) -> str:
    return _NOT_XML.sub(lambda match: f"\\x{ord(match[0]):02x}", text)
