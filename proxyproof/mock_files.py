"""The ``proxyproof mock`` options that read or write files: cassettes (record a real server,
replay it offline) and control-API scripts loaded at start. docs/cassettes.md has the details.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from proxyproof.check import UsageError

EPILOG = """\
record a real server once, replay it offline (docs/cassettes.md):
  proxyproof mock ollama --record-from http://gpu-box:11434 --cassettes cassettes/
  proxyproof mock ollama --replay cassettes/ --strict
  proxyproof mock openai --scripts stubs/     scripts that live in your repository
"""


def add_arguments(mock: argparse.ArgumentParser) -> None:
    group = mock.add_argument_group("record and replay (one mock, not 'all')")
    group.add_argument("--record-from", metavar="URL",
                       help="pass every request to the real server at URL (e.g. "
                       "http://gpu-box:11434) and record each exchange into --cassettes DIR, "
                       "streams relayed frame by frame as they arrive")
    group.add_argument("--cassettes", metavar="DIR",
                       help="with --record-from: the directory recorded exchanges are written "
                       "to, one YAML file each (made if missing)")
    group.add_argument("--replay", metavar="DIR",
                       help="answer from the cassettes in DIR: a request with the same method, "
                       "path and JSON body gets the recorded reply; others get the mock's "
                       "generated reply (see --strict)")
    group.add_argument("--strict", action="store_true",
                       help="with --replay: answer a request no cassette matches with a 501 "
                       "JSON error naming the closest cassette and how it differs")
    group.add_argument("--replay-timing", action="store_true",
                       help="with --replay: send stream frames with the recorded gaps between "
                       "them (default: at once)")
    group.add_argument("--ignore-field", action="append", metavar="PATH", dest="ignore_fields",
                       help="leave this JSON body field out of matching (repeatable; dotted for "
                       "nested fields, e.g. seed, options.seed, messages.*.images)")
    group.add_argument("--redact-header", action="append", metavar="NAME",
                       dest="redact_headers",
                       help="with --record-from: write this header as *** (repeatable; "
                       "Authorization, X-Api-Key, Api-Key, Cookie and Set-Cookie always are)")
    group.add_argument("--redact-query", action="append", metavar="NAME", dest="redact_query",
                       help="with --record-from: write this query parameter as *** "
                       "(repeatable; key, api_key, token, access_token and the like always "
                       "are)")
    group.add_argument("--redact-field", action="append", metavar="PATH", dest="redact_fields",
                       help="with --record-from: write this JSON body field as *** "
                       "(repeatable, dotted); a *** field matches any value on replay")
    stubs = mock.add_argument_group("scripts")
    stubs.add_argument("--scripts", metavar="DIR",
                       help="start with the control-API scripts in DIR's *.yaml, *.yml and "
                       "*.json files (each one script, as POST /__mock__/scripts takes, or a "
                       "list), in file-name order; POST /__mock__/reset brings them back")


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """``serve_mocks`` keywords for these options, checked; ``UsageError`` in one line."""
    from proxyproof.mocks.cassette_options import KEYWORDS, CassetteOptionError, CassetteOptions
    from proxyproof.mocks.stub_files import StubFileError, load_scripts

    given = {key: getattr(args, key) for key in KEYWORDS}
    chosen = [key for key, value in given.items() if value not in (None, False)]
    if args.name == "all" and chosen:
        raise UsageError(f"--{chosen[0].replace('_', '-')} works with one mock, not 'all'")
    try:
        cassettes = CassetteOptions.from_settings(given)
        scripts = load_scripts(Path(args.scripts)) if args.scripts is not None else []
    except (CassetteOptionError, StubFileError) as problem:
        raise UsageError(str(problem)) from None
    if cassettes is not None:
        print(f"{args.name}: {cassettes.describe()}", file=sys.stderr, flush=True)
    if scripts:
        print(f"{args.name}: {len(scripts)} script(s) from {args.scripts}", file=sys.stderr,
              flush=True)
    return {"cassettes": cassettes, "scripts": scripts}
