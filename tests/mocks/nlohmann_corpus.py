"""The request bodies measured against nlohmann::json, and the writer of their fixture.

``python tests/mocks/nlohmann_corpus.py HARNESS`` runs the compiled ``nlohmann_errors.cpp`` (its
header says how to build it) on every body below and writes ``nlohmann_parse_errors.yaml``: the
input (base64), then either nlohmann's ``e.what()`` and the exact HTTP body llama.cpp b4748 sends
for it, or, for a body nlohmann accepts, the value as llama.cpp would dump it. The outputs are
measurements; only the inputs and their names are written here.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import yaml

FIXTURE = Path(__file__).with_name("nlohmann_parse_errors.yaml")

_DIGITS_400 = b"1" + b"0" * 399

CASES: list[tuple[str, bytes]] = [
    # nothing to read
    ("empty", b""),
    ("space", b" "),
    ("whitespace of each kind", b" \t\r\n "),
    ("a NUL byte", b"\x00"),
    ("a NUL byte then an object", b"\x00{}"),
    ("whitespace then NUL", b" \x00"),
    # byte order marks
    ("a UTF-8 BOM alone", b"\xef\xbb\xbf"),
    ("a UTF-8 BOM before an object", b'\xef\xbb\xbf{"prompt":"x"}'),
    ("half a BOM", b"\xef\xbb{}"),
    ("0xEF then a letter", b"\xefx"),
    ("a UTF-16LE BOM", b'\xff\xfe{\x00}\x00'),
    ("UTF-16LE without BOM", '{"prompt":"x"}'.encode("utf-16-le")),
    ("UTF-16BE without BOM", '{"prompt":"x"}'.encode("utf-16-be")),
    # objects
    ("an unquoted key", b"{bad"),
    ("a key and nothing more", b'{"a"'),
    ("a key without colon", b'{"a" 1}'),
    ("a colon and no value", b'{"a":}'),
    ("a trailing comma in an object", b'{"a":1,}'),
    ("two members without comma", b'{"a":1 "b":2}'),
    ("a number as key", b"{1:2}"),
    ("a second key without value", b'{"a":1,"b"}'),
    ("a lone comma in an object", b"{,}"),
    ("single quotes", b"{'a':1}"),
    ("an object closed by a bracket", b'{"a":{"b":1]'),
    ("an unclosed object", b'{"prompt":"x"'),
    ("an unclosed object after whitespace", b'{"prompt":"x" \n '),
    # arrays
    ("a trailing comma in an array", b"[1,]"),
    ("two values without comma", b"[1 2]"),
    ("a leading comma", b"[,1]"),
    ("an array closed by a brace", b'{"a":[1,2}'),
    ("a closing bracket alone", b"]"),
    ("a colon alone", b":"),
    # after a complete value
    ("garbage after an object", b"{} x"),
    ("two objects", b"{}{}"),
    ("an extra closing bracket", b"[] ]"),
    ("garbage on a later line", b'{"a":1}\n\n x'),
    ("a NUL after the value", b'{"prompt":"x"}\x00garbage'),
    ("trailing whitespace", b'{"prompt":"x"} \r\n'),
    # literals
    ("tru", b"tru"),
    ("nul inside an object", b'{"a":nul}'),
    ("falsee", b'{"a":true,"b":falsee}'),
    ("True", b"True"),
    ("NaN", b"NaN"),
    ("NaN as a value", b'{"temperature":NaN}'),
    ("Infinity", b"Infinity"),
    ("-Infinity", b"-Infinity"),
    ("a word", b"hello"),
    ("a long word", b"x" * 80),
    ("a line comment", b"// c\n{}"),
    ("a block comment", b"/* c */ {}"),
    ("a non-ASCII letter outside strings", '{"a":é}'.encode()),
    ("an emoji outside strings", "[😀]".encode()),
    ("an invalid byte outside strings", b"\xff"),
    ("an invalid byte after whitespace", b"[1,\n  \xfe]"),
    # numbers
    ("a leading zero", b"01"),
    ("a minus alone", b"-"),
    ("a minus and a letter", b"-a"),
    ("a dot and nothing", b"1."),
    ("a dot then an exponent", b"1.e5"),
    ("an exponent without digits", b"1e"),
    ("an exponent sign without digits", b"1e+"),
    ("a leading dot", b".5"),
    ("a plus sign", b"+1"),
    ("a hex number", b"0x10"),
    ("1e400", b"1e400"),
    ("-1e400", b"-1e400"),
    ("1e400 as a value", b'{"prompt":"x","temperature":1e400}'),
    ("1.5e308 times ten", b"[15e308]"),
    ("a 400-digit integer", _DIGITS_400),
    ("a negative 400-digit integer", b"-" + _DIGITS_400),
    ("1e308", b"1e308"),
    ("1e-400", b"1e-400"),
    ("2 to the 64", b"18446744073709551616"),
    ("below int64", b"-9223372036854775809"),
    # strings
    ("an unterminated string", b'"abc'),
    ("an unterminated prompt", b'{"prompt": "hel'),
    ("a bad escape", b'{"a":"\\x"}'),
    ("a backslash at the end", b'"abc\\'),
    ("a short unicode escape", b'"\\u12"'),
    ("a non-hex unicode escape", b'"\\u12G4"'),
    ("a raw tab in a string", b'"a\tb"'),
    ("a raw newline in a string", b'{"prompt":"a\nb"}'),
    ("a raw carriage return in a string", b'"a\rb"'),
    ("SOH in a string", b'"\x01"'),
    ("US in a string", b'"\x1f"'),
    ("NUL in a string", b'"a\x00b"'),
    ("DEL in a string", b'"a\x7fb"'),
    ("an invalid byte in a string", b'"\xff"'),
    ("a bad continuation byte", b'"\xc3("'),
    ("a truncated sequence at the end", b'"\xe2\x82'),
    ("a truncated sequence before a quote", b'"\xe2\x82"'),
    ("an overlong encoding", b'"\xc0\xaf"'),
    ("a UTF-8 encoded surrogate", b'"\xed\xa0\x80"'),
    ("above U+10FFFF", b'"\xf4\x90\x80\x80"'),
    ("E0 then 80", b'"\xe0\x80\x80"'),
    ("valid non-ASCII then an invalid byte", '{"prompt":"é'.encode() + b'\xff"}'),
    # surrogates
    ("a lone high surrogate", b'"\\ud800"'),
    ("a high surrogate then a letter", b'"\\ud800x"'),
    ("a high surrogate then a non-surrogate", b'"\\ud800\\u0041"'),
    ("a high surrogate then a bad escape", b'"\\ud800\\u12"'),
    ("two high surrogates", b'"\\ud800\\ud800"'),
    ("a lone low surrogate", b'"\\udc00"'),
    ("a pair", b'"\\ud83d\\ude00"'),
    # nesting
    ("a thousand open brackets", b"[" * 1000),
    ("600 nested arrays", b"[" * 600 + b"]" * 600),
    ("deep then bad", b'{"a":' * 40 + b"}"),
    ("truex", b"truex"),
    ("a tab in a key", b'{"a\tb":1}'),
    ("-0 then garbage", b"-0x"),
    ("-01", b"-01"),
    ("0e", b"0e"),
    ("an exponent then a letter", b"[1.5e+3x]"),
    ("a capital exponent", b"[1E5,]"),
    # lines and columns
    ("an error on line four", b'{\n  "a": 1,\n  "b": \n}'),
    ("CRLF line ends", b'{\r\n"a":x}'),
    ("an open bracket then a newline", b"[\n"),
    ("blank lines then garbage", b"\n\n\n   x"),
    ("a multi-byte character before the error", '{"prompt":"日本語",x}'.encode()),
    ("an error after a long string", b'{"prompt":"' + b"a" * 300 + b'" x}'),
]


# every control byte inside a string, each with its own name in the message
CASES += [(f"control byte {byte:02X} in a string", b'"' + bytes((byte,)) + b'"')
          for byte in range(0x20) if byte not in (0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F)]


def _run(harness: str) -> dict[str, list[str]]:
    stdin = "".join(f"{name}\t{body.hex()}\n" for name, body in CASES)
    out = subprocess.run([harness], input=stdin, capture_output=True, text=True, check=True)
    results = {}
    for line in out.stdout.splitlines():
        name, *fields = line.split("\t")
        results[name] = fields
    return results


def _text_or_base64(key: str, data: bytes) -> dict[str, str]:
    try:
        return {key: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{key}_b64": base64.b64encode(data).decode()}


def main(harness: str) -> None:
    assert len({name for name, _ in CASES}) == len(CASES), "case names must be unique"
    results = _run(harness)
    cases = []
    for name, body in CASES:
        verdict, first, second = results[name]
        case: dict[str, object] = {"name": name, "input": base64.b64encode(body).decode()}
        if verdict == "accepted":
            case["accepted"] = bytes.fromhex(first).decode("utf-8")
        else:
            case.update(_text_or_base64("what", bytes.fromhex(first)))
            case["reply"] = bytes.fromhex(second).decode("utf-8")
        cases.append(case)
    header = (
        "# What llama.cpp b4748 (c392e509; nlohmann/json 3.11.3) answers to request bodies that\n"
        "# json::parse rejects: e.what() and the exact 500 body. Measured with\n"
        "# tests/mocks/nlohmann_errors.cpp; regenerate with tests/mocks/nlohmann_corpus.py.\n"
        "# input: base64 of the body; what (or what_b64 when not UTF-8): the exception text;\n"
        "# reply: the HTTP body; accepted: the parsed value, for bodies nlohmann accepts.\n"
    )
    text = yaml.safe_dump({"cases": cases}, allow_unicode=True, sort_keys=False, width=100)
    FIXTURE.write_text(header + text, encoding="utf-8")
    print(f"{len(cases)} cases written to {FIXTURE}")


if __name__ == "__main__":
    main(sys.argv[1])
