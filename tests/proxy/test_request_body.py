"""The client's body before it is a request: limits, content codings, decompression bombs and
strict JSON (proxy_impl/request_body.py, proxy_impl/strict_json.py; docs/security.md)."""

from __future__ import annotations

import asyncio
import gzip
import json
import struct
import zlib
from unittest import mock

import pytest
from aiohttp import StreamReader

from proxyproof.proxy_impl import strict_json
from proxyproof.proxy_impl.behaviour import FIXED, KONG
from proxyproof.proxy_impl.request import Rejection, examine_body
from proxyproof.proxy_impl.request_body import (
    CEILING,
    BodyRefusal,
    body_limit,
    content_codings,
    decode,
    read_limited,
)

SEED = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()


def gzip_bomb(size: int = 1 << 30) -> bytes:
    """A valid gzip member of ``size`` zero bytes in about size/1000 bytes, built in a blink: one
    compressed MiB of zeros, full-flushed so that it refers to nothing before it, repeated."""
    block = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + piece * (size >> 20) + b"\x03\x00" + trailer  # 03 00: an empty last block


# --- limits --------------------------------------------------------------------------------------


def test_limits_the_route_the_ceiling_and_kong_nginx_buffer():
    assert body_limit(1024, FIXED).size == 1024 and body_limit(1024, FIXED).over() is None
    assert body_limit(1024, KONG).size == 8192  # Kong takes any body nginx kept in memory
    for unlimited in (0, CEILING + 1, 10 * CEILING):
        limit = body_limit(unlimited, FIXED)
        assert limit.size == CEILING
        assert limit.over() == BodyRefusal(413, f"request body is larger than {CEILING} bytes")


def test_read_limited_stops_at_the_limit():
    async def read(chunks: list[bytes], limit: int) -> bytes | None:
        loop = asyncio.get_running_loop()
        stream = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=loop)
        for chunk in chunks:
            stream.feed_data(chunk)
        stream.feed_eof()
        return await read_limited(stream, limit)

    assert asyncio.run(read([b"ab", b"cd"], 4)) == b"abcd"
    assert asyncio.run(read([b"ab", b"cde"], 4)) is None
    assert asyncio.run(read([], 4)) == b""


# --- content codings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "codings"),
    [
        (None, []),
        ("identity", []),
        ("GZIP", ["gzip"]),
        ("x-gzip", ["gzip"]),
        ("deflate, gzip", ["deflate", "gzip"]),
        (" gzip ,identity", ["gzip"]),
    ],
)
def test_codings_understood(header, codings):
    assert content_codings(header) == codings


@pytest.mark.parametrize("header", ["br", "zstd", "x-foo", "gzip, br", "compress"])
def test_other_codings_are_415(header):
    refusal = content_codings(header)
    assert isinstance(refusal, BodyRefusal) and refusal.status == 415
    assert "not supported" in refusal.message


def test_too_many_codings_are_415():
    refusal = content_codings("gzip, gzip, gzip, gzip")
    assert isinstance(refusal, BodyRefusal) and refusal.status == 415


def test_gzip_deflate_and_bare_deflate_decode():
    bare = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert decode(gzip.compress(SEED), ["gzip"], 1000) == SEED
    assert decode(zlib.compress(SEED), ["deflate"], 1000) == SEED
    assert decode(bare.compress(SEED) + bare.flush(), ["deflate"], 1000) == SEED
    assert decode(gzip.compress(zlib.compress(SEED)), ["deflate", "gzip"], 1000) == SEED
    assert decode(gzip.compress(b"ab") + gzip.compress(b"cd"), ["gzip"], 10) == b"abcd"
    assert decode(b"", ["gzip"], 10) == b""  # nothing to inflate: no body, not a broken one


@pytest.mark.parametrize(
    ("raw", "coding"),
    [
        (SEED, "gzip"),  # the header says gzip, the body is plain
        (gzip.compress(SEED, mtime=0)[:-12], "gzip"),  # truncated
        (SEED, "deflate"),
        (zlib.compress(SEED) + b"junk", "deflate"),
        (gzip.compress(SEED, mtime=0) + b"junk", "gzip"),
    ],
)
def test_corrupt_compressed_bodies_are_400(raw, coding):
    assert decode(raw, [coding], 1 << 20) == BodyRefusal(
        400, f"request body is not valid {coding} data"
    )


def test_a_bomb_stops_at_the_limit():
    refusal = decode(gzip_bomb(), ["gzip"], 1 << 20)
    assert refusal == BodyRefusal(413, f"request body inflates to more than {1 << 20} bytes")
    exactly = gzip.compress(b"x" * 100)
    assert decode(exactly, ["gzip"], 100) == b"x" * 100
    assert isinstance(decode(exactly, ["gzip"], 99), BodyRefusal)


def test_the_bomb_helper_is_a_valid_gzip_member():
    assert gzip.decompress(gzip_bomb(4 << 20)) == bytes(4 << 20)


# --- strict JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"prompt": "\xff"}', "not valid UTF-8"),
        (b'{"prompt": "\xed\xa0\x80"}', "not valid UTF-8"),  # a surrogate encoded as UTF-8
        (b'{"prompt": "\\ud800"}', "lone surrogate"),
        (b'{"\\udfff": "x", "prompt": "hi"}', "lone surrogate"),
        (b'{"prompt": "hi", "max_tokens": NaN}', "NaN"),
        (b'{"prompt": "hi", "temperature": -Infinity}', "-Infinity"),
        (b'{"prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}", "longer than 100 digits"),
        (b'{"prompt": "hi", "temperature": 1e999}', "too large for a double"),
        (b'{"prompt": "hi", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "deeper than 128"),
        (b'{"a": ' * 200 + b"1" + b"}" * 200, "deeper than 128"),
        (b'{"prompt": "a", "prompt": "b"}', 'repeats the key "prompt"'),
    ],
)
def test_json_the_proxy_refuses(raw, says):
    with pytest.raises(strict_json.Refused, match=says.replace("[", r"\[")):
        strict_json.load(raw)
    for behaviour in (FIXED, KONG):
        if b'"prompt": "a", "prompt"' in raw and behaviour is KONG:
            continue  # Kong's cjson keeps the last value
        rejection = examine_body(raw, "application/json", 0, behaviour)
        assert isinstance(rejection, Rejection) and rejection.status == 400


def test_depth_128_is_fine_and_unicode_text_too():
    nested = b'{"a": ' + b"[" * 127 + b"]" * 127 + b"}"
    assert strict_json.load(nested)["a"] is not None
    assert strict_json.load('{"p": "é 模型 \\ud83d\\ude00"}'.encode()) == {"p": "é 模型 😀"}
    assert strict_json.load(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # a UTF-8 BOM is tolerated


def test_repeated_keys_in_kong_mode_take_the_last():
    raw = b'{"prompt": "a", "prompt": "b"}'
    assert strict_json.load(raw, duplicate_keys_last_wins=True) == {"prompt": "b"}
    assert examine_body(raw, None, 0, KONG) == {"prompt": "b"}


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"a": ', b"[1, 2]"])
def test_what_is_not_json_stays_kongs_no_body(raw):
    assert examine_body(raw, None, 0, FIXED) is None
