"""The pure parts of ``proxyproof load``: the mix, outcome classes, the summary and its verdict,
the sample marker, and the command's usage errors (each one line, status 2)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from proxyproof.cli import main
from proxyproof.harness.catalogue import load_catalogue
from proxyproof.harness.load.marker import with_marker
from proxyproof.harness.load.mix import HOSTILE, Mix, MixError, load_mix
from proxyproof.harness.load.outcomes import classify
from proxyproof.harness.load.plan import kind_of, load_cases, marker_field
from proxyproof.harness.load.summary import SCHEMA, KindFigures, summary, verdict


def test_the_default_mix_covers_every_hosting_and_sums_to_one() -> None:
    kinds = {kind_of(case) for case in load_cases(load_catalogue(), Mix())} | {HOSTILE}
    weights = Mix().weights(kinds)
    assert sum(weights.values()) == pytest.approx(1)
    assert weights[HOSTILE] == pytest.approx(0.05, rel=0.05)  # a few error kinds are missing
    assert weights["ollama chat"] == pytest.approx(3 * weights["ollama completions"])
    assert weights["ollama chat stream"] == pytest.approx(weights["ollama chat"] * 0.3 / 0.7)
    assert {kind.split()[0] for kind in weights} == {"huggingface", "ollama", "llamacpp",
                                                     "gguf", HOSTILE}


def test_a_share_with_no_request_goes_to_the_others() -> None:
    weights = Mix(hostings={"ollama": 1}, hostile=0).weights(["ollama chat", "ollama chat error"])
    assert set(weights) == {"ollama chat", "ollama chat error"}
    assert sum(weights.values()) == pytest.approx(1)


def test_a_mix_file_names_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text("hostings: {ollama: 2}\nroutes: {chat: 1}\nstream: 0.5\n")
    mix = load_mix(str(path))
    assert mix.hostings == {"ollama": 2} and mix.stream == 0.5 and mix.hostile == 0.05
    for text, said in (("stream: 2\n", "stream: 2.0 is not a share"),
                       ("hostings: {kong: 1}\n", "unknown kong"),
                       ("speed: 3\n", "unknown field(s) speed"),
                       ("routes: {chat: 0, completions: 0}\n", "nothing to send"),
                       ("failing: 0.6\nhostile: 0.6\n", "more than 1"),
                       ("- a list\n", "a mix is a mapping")):
        path.write_text(text)
        with pytest.raises(MixError, match=said.replace("(", r"\(").replace(")", r"\)")):
            load_mix(str(path))


@pytest.mark.parametrize(("status", "complete", "hostile", "allowed", "outcome"), [
    (200, True, False, [], "ok"),
    (400, True, False, [], "expected_error"),
    (502, True, False, [502], "expected_error"),
    (502, True, False, [], "unexpected_5xx"),
    (500, True, True, [500], "unexpected_5xx"),  # a hostile request is never owed a 5xx
    (200, False, False, [], "stream_cut"),
    (None, False, False, [], "stream_cut"),
    (None, False, True, [], "expected_error"),  # a gateway may hang up on a hostile request
    (413, True, True, [], "expected_error"),
])
def test_outcome_classes(status, complete, hostile, allowed, outcome) -> None:
    assert classify(status, complete, hostile, allowed) == outcome


def test_the_summary_has_the_issues_shape_and_its_verdict() -> None:
    report = summary({"ollama chat stream": KindFigures(30, 4.0, 9.0, 2.0),
                      "ollama chat": KindFigures(70, 3.0, 8.0, None)}, 2.0, 2,
                     {"ok": 99, "unexpected_5xx": 1}, 10, 0)
    jsonschema.validate(report, SCHEMA)
    assert report["requests"] == 100 and report["by_kind"]["ollama chat"]["rps"] == 35.0
    assert report["outcomes"] == {"ok": 99, "expected_error": 0, "unexpected_5xx": 1,
                                  "stream_cut": 0}
    assert verdict(report, 0.0) == ["1 of 100 requests got an unexpected 5xx or were cut "
                                    "(more than 0 of them)"]
    assert verdict(report, 0.01) == []
    failed = {**report, "samples_failed": 2}
    assert "2 of 10 sampled replies failed" in verdict(failed, 0.1)[0]
    assert verdict({**report, "requests": 0}, 1.0) == ["no request was answered or sent"]


def test_a_sample_marker_goes_at_the_end_of_the_prompt() -> None:
    chat = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}
    assert with_marker(chat, "chat", "sample-1")["messages"][-1]["content"] == "hi sample-1"
    assert chat["messages"][-1]["content"] == "hi"
    assert with_marker({"prompt": "2+2"}, "completions", "m")["prompt"] == "2+2 m"
    cases = load_cases(load_catalogue(), Mix())
    assert sum(marker_field(case) for case in cases) > len(cases) // 2


@pytest.mark.parametrize(("argv", "said"), [
    (["--master", "--worker", "--run-time", "1"], "one or the other"),
    (["--worker"], "--worker needs --master-host"),
    (["--master-host", "h", "--run-time", "1"], "--master-host is for --worker"),
    (["--expect-workers", "2", "--run-time", "1"], "--expect-workers is for --master"),
    (["--worker", "--master-host", "h", "--json", "x"], "--json is the master's"),
    ([], "--run-time SECONDS is needed"),
])
def test_usage_errors_are_one_line(argv, said, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["load", *argv])
    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert error.count("\n") == 1 and said in error


def test_without_locust_the_command_names_the_extra(monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "locust" else real(name, *a))
    with pytest.raises(SystemExit) as exited:
        main(["load", "--run-time", "1"])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and error.count("\n") == 1
    assert "pip install 'proxyproof[load]'" in error


def test_a_bad_mix_file_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mix.json"
    path.write_text(json.dumps({"stream": "lots"}))
    with pytest.raises(SystemExit) as exited:
        main(["load", "--run-time", "1", "--mix", str(path)])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and error.count("\n") == 1 and "stream: a number" in error


def test_only_locusts_own_process_is_patched_for_gevent() -> None:
    """Everything the command's process and other commands import stays free of gevent."""
    import subprocess
    import sys

    probe = ("import sys, proxyproof.cli, proxyproof.load, proxyproof.harness.load.plan, "
             "proxyproof.harness.load.sampling, proxyproof.harness.load.summary; "
             "proxyproof.cli.parser(); print('gevent' in sys.modules, 'locust' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr
