"""The upstreams behind the balancer checks' targets, each under a role name the checks use:
three Ollama mocks (``a``, ``b``, ``c``), an OpenAI-style mock (``gguf``, for failover across
formats), a loopback port nobody listens on (``refused``) and a server that answers every request
with a broken response header (``garbage``: the mocks' faults break bodies and connections, not
header lines).

Each upstream lists what it received as ``Arrival``s; a check finds its requests there by the
token it put in each prompt, so no gateway header or log is needed to tell which target served
which request."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from proxyproof.mocks import run_mock

MOCK_ROLES = {"a": "ollama", "b": "ollama", "c": "ollama", "gguf": "openai"}
HOSTING_OF = {"ollama": "ollama", "openai": "gguf"}  # mock kind -> the hosting whose route it plays
MODELS = ("llama2",)
# A header line with a NUL in its name: nginx's parser and aiohttp's both refuse it, which nginx
# reports as ``invalid_header`` (the status line alone would not do: nginx takes a response
# without one as HTTP/0.9).
BROKEN_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"X-Broken\x00Header: yes\r\nContent-Length: 2\r\n\r\n{}")
MAX_REQUEST = 1 << 20
READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class Arrival:
    """One request an upstream received: when, its body as text, and what became of it."""

    role: str
    time: float
    text: str
    path: str = ""
    status: int | None = None
    outcome: str = ""


class Upstream(Protocol):
    role: str
    hosting: str  # the hosting key whose example target it plays ("ollama", "gguf")
    url: str  # its base URL as the gateway reaches it

    def arrivals(self) -> list[Arrival]: ...

    def reset(self) -> None: ...


@dataclass
class MockUpstream:
    """A running mock: its journal, and its scripts for faults and latency."""

    role: str
    hosting: str
    url: str
    mock: Any  # a running mock (``mocks.run_mock``)

    def arrivals(self) -> list[Arrival]:
        return [Arrival(self.role, entry["time"], _text(entry.get("body")), entry.get("path", ""),
                        entry.get("status"), entry.get("outcome") or "")
                for entry in self.mock.control.journal()]

    def reset(self) -> None:
        self.mock.control.reset()

    def fault(self, kind: str, times: int | None = None, **params: Any) -> None:
        self.mock.control.fault(kind, times=times, **params)

    def fail_with(self, status: int, times: int | None = None) -> None:
        """Answer with ``status`` (and a JSON error body) ``times`` times, or always."""
        self.fault("status", times=times, status=status,
                   json={"error": {"message": f"proxyproof balancer check: scripted {status}"}})

    def reply_with(self, text: str) -> None:
        """Answer every generation with ``text`` (in the server's own protocol and counts)."""
        self.mock.control.script(reply=text)

    def heal(self) -> None:
        """Back to normal answers (the journal is kept)."""
        self.mock.control.clear_scripts()


@dataclass
class RefusedUpstream:
    """A loopback port nobody listens on: every connection is refused, nothing is received."""

    role: str
    hosting: str
    url: str

    def arrivals(self) -> list[Arrival]:
        return []

    def reset(self) -> None:
        pass


@dataclass
class GarbageUpstream:
    """Reads each request whole, records it, and answers with a broken header line."""

    role: str
    hosting: str
    host: str = "127.0.0.1"
    url: str = ""
    _seen: list[Arrival] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def start(self) -> GarbageUpstream:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                server = loop.run_until_complete(
                    asyncio.start_server(self._answer, self.host, 0))
            except OSError as error:
                failure.append(error)
                ready.set()
                loop.close()
                return
            port = server.sockets[0].getsockname()[1]
            self.url = f"http://{self.host}:{port}"
            ready.set()
            loop.run_forever()
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=serve, name="proxyproof-garbage", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = self._thread = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
            if received is not None:
                head, _, body = received.partition(b"\r\n\r\n")
                path = head.split(b"\r\n", 1)[0].split(b" ")[1:2] or [b""]
                with self._lock:
                    self._seen.append(Arrival(self.role, time.time(),
                                              body.decode("utf-8", "replace"),
                                              path[0].decode("latin-1"), None, "invalid_header"))
                writer.write(BROKEN_HEAD)
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._seen)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 request's bytes (head and body), or None when the client went away."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip()
              for k, _, v in (line.partition(":") for line in lines[1:]) if k}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = b""
        while not body.endswith(b"0\r\n\r\n") and len(body) < MAX_REQUEST:
            body += await reader.readuntil(b"\r\n")
        return head + _dechunk(body)
    length = min(int(fields.get("content-length", "0") or 0), MAX_REQUEST)
    return head + (await reader.readexactly(length) if length else b"")


def _dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def _text(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def seen_as(url: str, host: str | None) -> str:
    """``url`` with the host name the gateway reaches the harness's servers by."""
    return url if not host else f"http://{host}:{urlsplit(url).port}"


@dataclass
class Upstreams:
    """The running upstreams of a profile run, by role."""

    by_role: Mapping[str, Upstream]

    def __getitem__(self, role: str) -> Any:
        return self.by_role[role]

    def reset(self) -> None:
        for upstream in self.by_role.values():
            upstream.reset()

    def arrivals(self, roles: Iterator[str] | list[str] | tuple[str, ...]) -> list[Arrival]:
        """What ``roles`` received, oldest first."""
        found = [a for role in roles for a in self.by_role[role].arrivals()]
        return sorted(found, key=lambda arrival: arrival.time)


@contextmanager
def running_upstreams(bind: str = "127.0.0.1", host: str | None = None) -> Iterator[Upstreams]:
    """Start every upstream the checks use; stop them on exit. ``bind``: the address they listen
    on; ``host``: the name the gateway reaches them by (a gateway in a container)."""
    with ExitStack() as stack:
        by_role: dict[str, Upstream] = {}
        for role, kind in MOCK_ROLES.items():
            mock = stack.enter_context(run_mock(kind, models=MODELS, host=bind))
            by_role[role] = MockUpstream(role, HOSTING_OF[kind], seen_as(mock.url, host), mock)
        garbage = GarbageUpstream("garbage", "ollama", bind).start()
        stack.callback(garbage.stop)
        garbage.url = seen_as(garbage.url, host)
        by_role["garbage"] = garbage
        refused = f"http://{bind}:{closed_port(bind)}"
        by_role["refused"] = RefusedUpstream("refused", "ollama", seen_as(refused, host))
        yield Upstreams(by_role)
