"""The report writers: JSON keeps its interface, JUnit parses as CI servers read it, Markdown and
the terminal show the matrix and the failures, and no format ever carries a credential."""

import io
import json
import xml.etree.ElementTree as ET

import junitparser
import pytest
from rich.console import Console

from proxyproof.harness.reports import (
    WRITERS,
    LiveProgress,
    mask_headers,
    print_summary,
    write_json,
    write_junit,
    write_markdown,
    write_report_file,
)
from proxyproof.harness.reports.masking import mask_text
from proxyproof.harness.results import CaseResult, Report

SECRET = "sk-secret"


def make_report() -> Report:
    return Report(
        gateway={"name": "kong-compat", "mode": "kong-compat", "proxy": "http://127.0.0.1:8000"},
        cases=[
            CaseResult("chat-basic", "Chat, one turn", ("chat",), "Ollama", "pass", seconds=0.25),
            CaseResult("chat-stream", "Chat streams", ("chat", "streaming"), "Ollama", "pass"),
            CaseResult(
                "chat-prompt", "Chat prompt is <s>[INST] formatted", ("chat", "a|b"), "Ollama",
                "fail",
                details=["prompt differs", f"upstream got Authorization: Bearer {SECRET}"],
                expected={"status": 200, "body": {"prompt": "<s>[INST] Hi [/INST]"}},
                actual={"status": 200, "headers": {"Authorization": f"Bearer {SECRET}"}},
                journal=[{
                    "method": "POST", "path": "/api/generate",
                    "headers": {"authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET,
                                "Content-Type": "application/json"},
                    "body": {"prompt": "<s>[INST] Hi [INST]", "stray": "bell\x07"},
                }],
                route="/ollama/chat", seconds=0.5,
            ),
            CaseResult(
                "hf-array", "Inference API array reply", ("chat",), "HuggingFace", "deviation",
                details=['Kong reads only {"data": [...]}'],
            ),
            CaseResult(
                "no-auth", "Gateway rejects no key", ("auth",), "", "n/a",
                details=["the --config gateway has no key-auth"],
            ),
        ],
    )  # fmt: skip


def render(writer, report: Report | None = None) -> str:
    stream = io.StringIO()
    writer(report or make_report(), stream)
    return stream.getvalue()


def render_terminal(report: Report | None = None) -> str:
    stream = io.StringIO()
    print_summary(report or make_report(), Console(file=stream, width=120))
    return stream.getvalue()


# -- masking


def test_mask_headers_masks_credentials_by_name_keeping_the_scheme():
    headers = {
        "Authorization": "Bearer sk-1", "proxy-authorization": "Basic dXNlcjpw",
        "X-API-KEY": "k", "api-key": ["a", "b"], "Cookie": "a=1; b=2", "Set-Cookie": "s=1",
        "Content-Type": "application/json",
    }  # fmt: skip
    original = json.dumps(headers)
    masked = mask_headers({"journal": [{"headers": headers}]})["journal"][0]["headers"]
    assert masked == {
        "Authorization": "Bearer ***", "proxy-authorization": "Basic ***", "X-API-KEY": "***",
        "api-key": ["***", "***"], "Cookie": "***", "Set-Cookie": "***",
        "Content-Type": "application/json",
    }  # fmt: skip
    assert json.dumps(headers) == original  # pure: the input is untouched


def test_mask_headers_handles_pairs_bare_keys_and_other_keys():
    assert mask_headers({"response_headers": [("Set-Cookie", "s=1"), ("Age", "1")]}) == {
        "response_headers": [("Set-Cookie", "***"), ("Age", "1")]
    }
    assert mask_headers({"headers": {"Authorization": "sk-raw"}}) == {
        "headers": {"Authorization": "***"}
    }
    # Outside a headers mapping, a key is only data (the free-text pass covers strings).
    assert mask_headers({"body": {"authorization": "x"}}) == {"body": {"authorization": "x"}}


def test_mask_text_hides_inline_credentials_only():
    assert mask_text("got Authorization: Bearer sk-1 back") == "got Authorization: Bearer *** back"
    assert mask_text('{"x-api-key": "k1", "a": 1}') == '{"x-api-key": "***", "a": 1}'
    assert mask_text("Cookie: a=1; b=2") == "Cookie: ***"
    assert mask_text("the Authorization header was dropped") == (
        "the Authorization header was dropped"
    )


@pytest.mark.parametrize("kind", ["json", "junit", "markdown", "terminal"])
def test_no_format_carries_the_secret(kind):
    text = render_terminal() if kind == "terminal" else render(WRITERS[kind])
    assert SECRET not in text
    assert "Bearer ***" in text


# -- JSON


def test_json_is_the_masked_report_dict():
    report = make_report()
    data = json.loads(render(write_json, report))
    assert set(data) == {"gateway", "cases", "summary"}
    assert data["summary"] == {"pass": 2, "fail": 1, "deviation": 1, "n/a": 1}
    assert data["gateway"] == report.gateway
    assert [case["id"] for case in data["cases"]] == [case.id for case in report.cases]
    assert {"id", "features", "outcome", "details"} <= set(data["cases"][0])
    failure = data["cases"][2]
    assert failure["journal"][0]["headers"]["authorization"] == "Bearer ***"
    # Apart from masking, exactly as_dict(): nothing added, nothing dropped.
    unmasked = report.as_dict()
    failure_dict = unmasked["cases"][2]
    failure_dict["details"][1] = "upstream got Authorization: Bearer ***"
    failure_dict["actual"]["headers"]["Authorization"] = "Bearer ***"
    failure_dict["journal"][0]["headers"].update(authorization="Bearer ***", **{"X-Api-Key": "***"})
    assert data == unmasked


# -- JUnit


def test_junit_reads_back_with_elementtree():
    root = ET.fromstring(render(write_junit))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("5", "1", "1")
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == [
        "proxyproof conformance: kong-compat / Ollama",
        "proxyproof conformance: kong-compat / HuggingFace",
        "proxyproof conformance: kong-compat / gateway",
    ]
    ollama = suites["proxyproof conformance: kong-compat / Ollama"]
    assert (ollama.get("tests"), ollama.get("failures"), ollama.get("errors")) == ("3", "1", "0")
    gateway_props = {p.get("name"): p.get("value") for p in ollama.find("properties")}
    assert gateway_props["gateway.proxy"] == "http://127.0.0.1:8000"

    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["chat-basic"].get("classname") == "proxyproof.chat"
    assert cases["chat-basic"].get("time") == "0.250"
    failure = cases["chat-prompt"].find("failure")
    assert failure.get("message") == "prompt differs"
    assert "expected:" in failure.text and "actual:" in failure.text
    assert "<s>[INST] Hi [/INST]" in failure.text and "/api/generate" in failure.text
    assert cases["no-auth"].find("skipped").get("message") == "the --config gateway has no key-auth"
    deviation = cases["hf-array"]
    assert deviation.find("failure") is None and deviation.find("skipped") is None
    assert deviation.find("properties/property").get("value") == 'Kong reads only {"data": [...]}'
    assert "Kong reads only" in deviation.find("system-out").text


def test_junit_reads_back_with_junitparser():
    xml = junitparser.JUnitXml.fromstring(render(write_junit))
    suites = list(xml)
    assert [suite.tests for suite in suites] == [3, 1, 1]
    assert sum(suite.failures for suite in suites) == 1
    assert sum(suite.skipped for suite in suites) == 1
    cases = {case.name: case for suite in suites for case in suite}
    assert cases["chat-prompt"].is_failure
    assert cases["chat-prompt"].result[0].message == "prompt differs"
    assert cases["no-auth"].is_skipped
    assert cases["hf-array"].is_passed and cases["chat-basic"].is_passed
    assert "Kong reads only" in cases["hf-array"].system_out


def test_junit_stays_parseable_with_control_characters():
    report = make_report()
    report.cases[2].details[0] = "stray \x1b[31m escape \x00"
    root = ET.fromstring(render(write_junit, report))
    message = next(root.iter("failure")).get("message")
    assert message == "stray \\x1b[31m escape \\x00"


# -- Markdown


def test_markdown_has_the_matrix_and_the_sections():
    text = render(write_markdown)
    assert text.startswith("# proxyproof conformance: kong-compat\n")
    assert "**❌ failed**: 2 pass · 1 fail · 1 deviation · 1 n/a" in text
    assert "| Feature | Ollama | HuggingFace | gateway |" in text
    assert "| chat | 2 ✅ · 1 ❌ | 1 ⚠️ | — |" in text
    assert "| a\\|b | 1 ❌ | — | — |" in text  # a "|" in a name does not split the cell
    assert "| auth | — | — | 1 n/a |" in text
    failures = text.split("## Failures")[1].split("## Deviations")[0]
    assert "### `chat-prompt`: Chat prompt is \\<s\\>\\[INST\\] formatted" in failures
    assert "- prompt differs" in failures
    assert failures.count("```json") == 3  # expected, actual, journal
    assert failures.index("<th>Expected</th>") < failures.index('"prompt": "<s>[INST] Hi [/INST]"')
    deviations = text.split("## Deviations")[1]
    assert '- **Kong reads only {"data": \\[...\\]}**: `hf-array` (HuggingFace)' in deviations


def test_markdown_fence_outlasts_backticks_in_a_body():
    report = make_report()
    report.cases[2].actual = {"body": "```not the end```"}
    assert "````json" in render(write_markdown, report)


# -- terminal


def test_terminal_summary_shows_matrix_failure_and_closing_counts():
    text = render_terminal()
    assert "feature" in text and "Ollama" in text and "HuggingFace" in text
    assert "2 pass · 1 fail" in text and "1 deviation" in text and "1 n/a" in text
    assert "FAIL chat-prompt" in text
    assert "[INST]" in text  # rendered as text, not swallowed as markup
    assert "expected" in text and "actual" in text and "mock journal" in text
    assert "Kong reads only" in text
    assert text.rstrip().splitlines()[-1] == "2 pass · 1 fail · 1 deviation · 1 n/a"
    assert max(len(line) for line in text.splitlines()) <= 120


def test_live_progress_is_one_line_per_case_off_a_terminal():
    stream = io.StringIO()
    report = make_report()
    with LiveProgress(total=len(report.cases), console=Console(file=stream, width=60)) as live:
        for case in report.cases:
            live.case_started(case.id, case.title)
            live.case_finished(case)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(report.cases)  # no wrapping even at 60 columns
    assert lines[2].startswith("FAIL      chat-prompt [Ollama]")
    assert SECRET not in stream.getvalue()
    assert live.counts == {"pass": 2, "fail": 1, "deviation": 1, "n/a": 1}


def test_live_progress_draws_a_bar_on_a_terminal():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=100)
    report = make_report()
    with LiveProgress(total=len(report.cases), console=console) as live:
        for case in report.cases:
            live.case_started(case.id, case.title)
            live.case_finished(case)
    output = stream.getvalue()
    assert "5/5" in output and "FAIL" in output and "chat-prompt" in output
    assert SECRET not in output


# -- files


def test_dash_writes_to_standard_output(capsys):
    write_report_file("json", "-", make_report())
    assert json.loads(capsys.readouterr().out)["summary"]["fail"] == 1


@pytest.mark.parametrize("kind", ["json", "junit", "markdown"])
def test_a_path_is_written_whole_and_nothing_else(tmp_path, kind):
    target = tmp_path / f"report.{kind}"
    target.write_text("the previous report")
    write_report_file(kind, target, make_report())
    assert target.read_text(encoding="utf-8") == render(WRITERS[kind])
    assert [path.name for path in tmp_path.iterdir()] == [target.name]


def test_a_missing_directory_is_a_clear_error(tmp_path):
    target = tmp_path / "missing" / "report.xml"
    with pytest.raises(ValueError, match=r"cannot write .*report\.xml: directory .* does not"):
        write_report_file("junit", str(target), make_report())


def test_an_unwritable_target_is_a_clear_error_and_leaves_no_temporary(tmp_path):
    (tmp_path / "report.json").mkdir()  # a directory where the file should go
    with pytest.raises(ValueError, match=r"cannot write .*report\.json: "):
        write_report_file("json", tmp_path / "report.json", make_report())
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown report kind 'html'"):
        write_report_file("html", "-", make_report())
