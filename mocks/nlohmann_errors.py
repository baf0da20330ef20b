"""What nlohmann::json 3.11.3's ``json::parse`` says about a body it cannot parse: the text of
its ``parse_error.101`` and ``out_of_range.406`` exceptions, byte for byte (llama.cpp b4748
vendors that version as ``common/json.hpp`` and answers with ``e.what()``).

A small port of the library's lexer and parser (``detail/input/lexer.hpp`` and ``parser.hpp``),
kept to what shapes the message:

- the position is counted as the lexer counts it: bytes, not characters; a line feed starts a
  new line at column 0; reading past the end counts one more column;
- "last read" is the lexer's ``token_string``: every byte read since the last string or number
  began (structural characters, whitespace and literals do not restart it), control bytes
  written ``<U+XXXX>``;
- a NUL byte outside a string ends the input, and an input that ends (or hits NUL) on its first
  byte is "an empty input";
- a number whose double is not finite (``1e400``, or an integer too long even for a double) is
  ``out_of_range.406``.

Pure and iterative (no recursion, whatever the nesting): tests/mocks/nlohmann_parse_errors.yaml
holds the library's own answers that this port is checked against.
"""

from __future__ import annotations

import math
import re
from enum import Enum, auto
from typing import NamedTuple

EOF = -1


class Token(Enum):
    UNINITIALIZED = auto()
    TRUE = auto()
    FALSE = auto()
    NULL = auto()
    STRING = auto()
    NUMBER = auto()  # an integer that 64 bits hold
    FLOAT = auto()  # any other number: read as a double, which must be finite
    BEGIN_ARRAY = auto()
    BEGIN_OBJECT = auto()
    END_ARRAY = auto()
    END_OBJECT = auto()
    NAME_SEPARATOR = auto()
    VALUE_SEPARATOR = auto()
    PARSE_ERROR = auto()
    END_OF_INPUT = auto()
    LITERAL_OR_VALUE = auto()


# ``lexer_base::token_type_name``: how a message names a token
_NAMES = {
    Token.UNINITIALIZED: "<uninitialized>", Token.TRUE: "true literal",
    Token.FALSE: "false literal", Token.NULL: "null literal", Token.STRING: "string literal",
    Token.NUMBER: "number literal", Token.FLOAT: "number literal", Token.BEGIN_ARRAY: "'['",
    Token.BEGIN_OBJECT: "'{'", Token.END_ARRAY: "']'", Token.END_OBJECT: "'}'",
    Token.NAME_SEPARATOR: "':'", Token.VALUE_SEPARATOR: "','", Token.PARSE_ERROR: "<parse error>",
    Token.END_OF_INPUT: "end of input", Token.LITERAL_OR_VALUE: "'[', '{', or a literal",
}

_STRUCTURAL = {
    ord("["): Token.BEGIN_ARRAY, ord("]"): Token.END_ARRAY, ord("{"): Token.BEGIN_OBJECT,
    ord("}"): Token.END_OBJECT, ord(":"): Token.NAME_SEPARATOR, ord(","): Token.VALUE_SEPARATOR,
}
_LITERALS = {ord("t"): (b"true", Token.TRUE), ord("f"): (b"false", Token.FALSE),
             ord("n"): (b"null", Token.NULL)}
_WHITESPACE = frozenset(b" \t\n\r")
_DIGITS = frozenset(b"0123456789")
_SIMPLE_ESCAPES = frozenset(b'"\\/bfnrt')
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CONTROL_NAMES = ("NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK "
                  "SYN ETB CAN EM SUB ESC FS GS RS US").split()
_SHORT_ESCAPES = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}
# The byte ranges each UTF-8 lead byte's continuation bytes must fall in (RFC 3629).
_UTF8: dict[int, tuple[tuple[int, int], ...]] = {
    **{lead: ((0x80, 0xBF),) for lead in range(0xC2, 0xE0)},
    0xE0: ((0xA0, 0xBF), (0x80, 0xBF)),
    **{lead: ((0x80, 0xBF), (0x80, 0xBF)) for lead in (*range(0xE1, 0xED), 0xEE, 0xEF)},
    0xED: ((0x80, 0x9F), (0x80, 0xBF)),
    0xF0: ((0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)),
    **{lead: ((0x80, 0xBF), (0x80, 0xBF), (0x80, 0xBF)) for lead in (0xF1, 0xF2, 0xF3)},
    0xF4: ((0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)),
}
# A run of string bytes that need no decision (plain ASCII and well-formed UTF-8): read at once,
# so a long string costs one regex match instead of a Python loop per byte.
_PLAIN_RUN = re.compile(
    rb"(?:[\x20\x21\x23-\x5b\x5d-\x7f]+|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]"
    rb"|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2})+"
)
_WHITESPACE_RUN = re.compile(rb"[ \t\n\r]+")
_DIGIT_RUN = re.compile(rb"[0-9]+")
_CONTROL_BYTE = re.compile(rb"[\x00-\x1f]")
_UINT64_MAX = 2**64 - 1
_INT64 = (-(2**63), 2**63 - 1)
_EMPTY_INPUT = (b"attempting to parse an empty input; check that your input string or stream "
                b"contains the expected JSON")


def _control(byte: int) -> str:
    short = _SHORT_ESCAPES.get(byte)
    escape = f"\\u{byte:04X}" + (f" or \\{short}" if short else "")
    return (f"invalid string: control character U+{byte:04X} ({_CONTROL_NAMES[byte]}) must be "
            f"escaped to {escape}")


class _Lexer:
    """``detail::lexer`` over a byte string: the same reads, ungets and counters."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.index = 0  # the next byte the input adapter hands out
        self.current = EOF
        self.next_unget = False
        self.chars_read_total = 0
        self.chars_read_current_line = 0
        self.lines_read = 0
        self.token_string = bytearray()
        self.error_message = ""
        self.number_text = b""

    # --- input management -------------------------------------------------------------

    def get(self) -> int:
        self.chars_read_total += 1
        self.chars_read_current_line += 1
        if self.next_unget:
            self.next_unget = False
        elif self.index < len(self.body):
            self.current = self.body[self.index]
            self.index += 1
        else:
            self.current = EOF
        if self.current != EOF:
            self.token_string.append(self.current)
        if self.current == 0x0A:
            self.lines_read += 1
            self.chars_read_current_line = 0
        return self.current

    def unget(self) -> None:
        self.next_unget = True
        self.chars_read_total -= 1
        if self.chars_read_current_line == 0:
            if self.lines_read > 0:
                self.lines_read -= 1
        else:
            self.chars_read_current_line -= 1
        if self.current != EOF:
            self.token_string.pop()

    def reset(self) -> None:
        """A string or number starts at the current byte: "last read" restarts there."""
        self.token_string = bytearray([self.current])

    def _read_run(self, pattern: re.Pattern[bytes]) -> None:
        """Read the bytes ``pattern`` matches next, as as many ``get`` calls would: a long
        string, number or stretch of whitespace costs one regex match, not a loop per byte."""
        if self.next_unget:
            return
        run = pattern.match(self.body, self.index)
        if run is None:
            return
        text = run.group()
        self.token_string += text
        self.chars_read_total += len(text)
        newline = text.rfind(b"\n")
        if newline < 0:
            self.chars_read_current_line += len(text)
        else:
            self.lines_read += text.count(b"\n")
            self.chars_read_current_line = len(text) - newline - 1
        self.index = run.end()
        self.current = text[-1]

    # --- diagnostics --------------------------------------------------------------------

    def position(self) -> tuple[int, int]:
        return self.lines_read + 1, self.chars_read_current_line

    def token_text(self) -> bytes:
        """``get_token_string``: control bytes as ``<U+XXXX>``, every other byte as read."""
        return _CONTROL_BYTE.sub(lambda byte: b"<U+%04X>" % byte.group()[0],
                                 bytes(self.token_string))

    # --- scanning -------------------------------------------------------------------------

    def scan(self) -> Token:
        if self.chars_read_total == 0 and not self._skip_bom():
            self.error_message = "invalid BOM; must be 0xEF 0xBB 0xBF if given"
            return Token.PARSE_ERROR
        self.get()
        while self.current in _WHITESPACE:
            self._read_run(_WHITESPACE_RUN)
            self.get()
        current = self.current
        if current in _STRUCTURAL:
            return _STRUCTURAL[current]
        if current in _LITERALS:
            return self._scan_literal(*_LITERALS[current])
        if current == ord('"'):
            return self._scan_string()
        if current == ord("-") or current in _DIGITS:
            return self._scan_number()
        if current in (0, EOF):  # NUL ends the input, as the end of a C string
            return Token.END_OF_INPUT
        self.error_message = "invalid literal"
        return Token.PARSE_ERROR

    def _skip_bom(self) -> bool:
        if self.get() == 0xEF:
            return self.get() == 0xBB and self.get() == 0xBF
        self.unget()
        return True

    def _scan_literal(self, text: bytes, token: Token) -> Token:
        for expected in text[1:]:
            if self.get() != expected:
                self.error_message = "invalid literal"
                return Token.PARSE_ERROR
        return token

    def _fail(self, message: str) -> Token:
        self.error_message = message
        return Token.PARSE_ERROR

    def _scan_string(self) -> Token:
        self.reset()
        while True:
            self._read_run(_PLAIN_RUN)
            byte = self.get()
            if byte == EOF:
                return self._fail("invalid string: missing closing quote")
            if byte == ord('"'):
                return Token.STRING
            if byte == ord("\\"):
                problem = self._escape()
                if problem:
                    return self._fail(problem)
            elif byte <= 0x1F:
                return self._fail(_control(byte))
            elif byte >= 0x80:
                ranges = _UTF8.get(byte)
                if ranges is None or not all(low <= self.get() <= high for low, high in ranges):
                    return self._fail("invalid string: ill-formed UTF-8 byte")

    def _escape(self) -> str:
        """The problem with the escape after a backslash ("" if none)."""
        kind = self.get()
        if kind in _SIMPLE_ESCAPES:
            return ""
        if kind != ord("u"):
            return "invalid string: forbidden character after backslash"
        first = self._codepoint()
        if first < 0:
            return "invalid string: '\\u' must be followed by 4 hex digits"
        if 0xD800 <= first <= 0xDBFF:
            if not (self.get() == ord("\\") and self.get() == ord("u")):
                return "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"
            second = self._codepoint()
            if second < 0:
                return "invalid string: '\\u' must be followed by 4 hex digits"
            if not 0xDC00 <= second <= 0xDFFF:
                return "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"
        elif 0xDC00 <= first <= 0xDFFF:
            return "invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"
        return ""

    def _codepoint(self) -> int:
        digits = bytearray()
        for _ in range(4):
            byte = self.get()
            if byte not in _HEX:
                return -1
            digits.append(byte)
        return int(digits, 16)

    def _scan_number(self) -> Token:
        self.reset()  # from here token_string is the number's text
        is_float = False
        byte = self.current
        if byte == ord("-"):
            byte = self.get()
            if byte not in _DIGITS:
                return self._fail("invalid number; expected digit after '-'")
        byte = self.get() if byte == ord("0") else self._digits()
        if byte == ord("."):
            is_float = True
            if self.get() not in _DIGITS:
                return self._fail("invalid number; expected digit after '.'")
            byte = self._digits()
        if byte in (ord("e"), ord("E")):
            is_float = True
            byte = self.get()
            if byte in (ord("+"), ord("-")):
                if self.get() not in _DIGITS:
                    return self._fail("invalid number; expected digit after exponent sign")
            elif byte not in _DIGITS:
                return self._fail("invalid number; expected '+', '-', or digit after exponent")
            byte = self._digits()
        self.unget()
        self.number_text = bytes(self.token_string)
        return Token.FLOAT if is_float or not _fits_integer(self.number_text) else Token.NUMBER

    def _digits(self) -> int:
        """Read the digits that follow a digit; return the first byte after them."""
        self._read_run(_DIGIT_RUN)
        return self.get()


def _fits_integer(text: bytes) -> bool:
    """strtoull (strtoll with a sign) reads it without overflow; else it is read as a double."""
    if len(text) > 21:  # longer than any 64-bit integer (and than int() should be asked to read)
        return False
    value = int(text)
    return _INT64[0] <= value <= _INT64[1] if text.startswith(b"-") else value <= _UINT64_MAX


class Verdict(NamedTuple):
    """``error``: ``e.what()`` of ``json::parse(body)``, None when the body parses. ``end``: the
    bytes it parsed (all of them, or up to the NUL that ended the input)."""

    error: bytes | None
    end: int


class _Failed(Exception):
    def __init__(self, what: bytes) -> None:
        self.what = what


class _Parser:
    """``detail::parser::sax_parse_internal`` with the DOM parser behind it: the first error
    throws."""

    def __init__(self, body: bytes) -> None:
        self.lexer = _Lexer(body)
        self.last = Token.UNINITIALIZED
        self.next_token()

    def next_token(self) -> Token:
        self.last = self.lexer.scan()
        return self.last

    def fail(self, expected: Token, context: str) -> _Failed:
        message = b"syntax error while parsing " + context.encode() + b" - "
        if self.last is Token.PARSE_ERROR:
            message += (self.lexer.error_message.encode() + b"; last read: '"
                        + self.lexer.token_text() + b"'")
        else:
            message += b"unexpected " + _NAMES[self.last].encode()
        if expected is not Token.UNINITIALIZED:
            message += b"; expected " + _NAMES[expected].encode()
        return self.parse_error(message)

    def parse_error(self, message: bytes) -> _Failed:
        line, column = self.lexer.position()
        return _Failed(b"[json.exception.parse_error.101] parse error at line %d, column %d: %s"
                       % (line, column, message))

    def value(self) -> None:
        """Parse one value (the whole document); raise ``_Failed`` at the first error."""
        states: list[bool] = []  # True: inside an array; False: inside an object
        skip_to_state_evaluation = False
        while True:
            if not skip_to_state_evaluation and self._opens(states):
                continue
            skip_to_state_evaluation = False
            if not states:
                return
            if states[-1]:  # array
                if self.next_token() is Token.VALUE_SEPARATOR:
                    self.next_token()
                    continue
                if self.last is not Token.END_ARRAY:
                    raise self.fail(Token.END_ARRAY, "array")
            else:  # object
                if self.next_token() is Token.VALUE_SEPARATOR:
                    if self.next_token() is not Token.STRING:
                        raise self.fail(Token.STRING, "object key")
                    if self.next_token() is not Token.NAME_SEPARATOR:
                        raise self.fail(Token.NAME_SEPARATOR, "object separator")
                    self.next_token()
                    continue
                if self.last is not Token.END_OBJECT:
                    raise self.fail(Token.END_OBJECT, "object")
            states.pop()
            skip_to_state_evaluation = True

    def _opens(self, states: list[bool]) -> bool:
        """Read the value that starts at the last token. True when it opened an array or object
        whose first value is next; False when a whole value was read."""
        token = self.last
        if token is Token.BEGIN_OBJECT:
            if self.next_token() is Token.END_OBJECT:
                return False
            if self.last is not Token.STRING:
                raise self.fail(Token.STRING, "object key")
            if self.next_token() is not Token.NAME_SEPARATOR:
                raise self.fail(Token.NAME_SEPARATOR, "object separator")
            states.append(False)
            self.next_token()
            return True
        if token is Token.BEGIN_ARRAY:
            if self.next_token() is Token.END_ARRAY:
                return False
            states.append(True)
            return True
        if token is Token.FLOAT:
            if not math.isfinite(float(self.lexer.number_text)):
                raise _Failed(b"[json.exception.out_of_range.406] number overflow parsing '"
                              + self.lexer.token_text() + b"'")
            return False
        if token in (Token.TRUE, Token.FALSE, Token.NULL, Token.STRING, Token.NUMBER):
            return False
        if token is Token.PARSE_ERROR:
            raise self.fail(Token.UNINITIALIZED, "value")
        if token is Token.END_OF_INPUT and self.lexer.chars_read_total == 1:
            raise self.parse_error(_EMPTY_INPUT)
        raise self.fail(Token.LITERAL_OR_VALUE, "value")


def check(body: bytes) -> Verdict:
    """How ``json::parse(body)`` ends: the exception text, or where the parsed JSON ends."""
    parser = _Parser(body)
    try:
        parser.value()
        if parser.next_token() is not Token.END_OF_INPUT:
            raise parser.fail(Token.END_OF_INPUT, "value")
    except _Failed as failed:
        return Verdict(failed.what, len(body))
    lexer = parser.lexer
    return Verdict(None, lexer.index - 1 if lexer.current == 0 else len(body))
