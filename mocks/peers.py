"""The journal of a mock served by several worker processes, as one.

Each worker keeps the requests it answered (``sharing``: ids from one counter, each entry naming
its worker) and also serves its control API, unauthenticated, on a Unix socket in the mock's
private directory (made ``0700`` by the parent). The worker that receives a control request
about the journal asks its siblings over those sockets and answers for all:

- ``GET /__mock__/journal``: every worker's entries, merged by id (each worker keeps
  ``--journal-entries``; ``dropped`` is the sum);
- ``DELETE /__mock__/journal`` and ``POST /__mock__/reset``: every worker clears its journal;
- ``GET /__mock__/journal/{id}`` and ``.../wait``: asked of the worker that has the entry;
- ``GET /__mock__/``: the journal figures summed.

Scripts and models need no fan-out: they live in shared memory (``sharing``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from . import control_api
from .sharing import Sharing
from .state import MockState

_WAIT_STEP = 0.01  # seconds between looks for a journal id no worker has given out yet
_ASK_TIMEOUT = 30.0  # seconds for a sibling's answer (a wait adds its own timeout)
Answer = tuple[int, Any]


class Peers:
    """This worker's private control listener and its clients to the siblings."""

    def __init__(self, state: MockState, sharing: Sharing, me: int) -> None:
        self.state, self.sharing, self.me = state, sharing, me
        self.others = [n for n in range(1, sharing.workers + 1) if n != me]
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    async def context(self, _app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: the private listener and the sibling clients."""
        private = web.Application()
        private.router.add_route("*", r"/{tail:[\s\S]*}", self._private)
        runner = web.AppRunner(private, access_log=None, handle_signals=False)
        await runner.setup()
        await web.UnixSite(runner, self.sharing.socket_path(self.me)).start()
        for number in self.others:
            connector = aiohttp.UnixConnector(path=self.sharing.socket_path(number))
            self._sessions[number] = aiohttp.ClientSession(connector=connector)
        try:
            yield
        finally:
            for session in self._sessions.values():
                await session.close()
            await runner.cleanup()

    async def _private(self, request: web.Request) -> web.Response:
        """A sibling's question, answered from this worker's state alone."""
        status, result = await control_api.respond(
            self.state, request.method, request.path, request.query, await request.read())
        return web.json_response(result, status=status)

    async def _ask(self, number: int, method: str, path: str,
                   query: Mapping[str, str] | None = None, timeout: float = 0.0) -> Answer:
        try:
            async with self._sessions[number].request(
                method, f"http://worker{path}", params=dict(query or {}),
                timeout=aiohttp.ClientTimeout(total=_ASK_TIMEOUT + timeout),
            ) as reply:
                return reply.status, await reply.json(loads=json.loads, content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as problem:
            return 502, {"error": f"worker {number} did not answer: {type(problem).__name__}"}

    async def _ask_others(self, method: str, path: str,
                          query: Mapping[str, str] | None = None) -> list[Answer]:
        return list(await asyncio.gather(*(self._ask(n, method, path, query)
                                           for n in self.others)))

    def _local(self, method: str, path: str, query: Mapping[str, str]) -> Answer:
        return control_api.handle(self.state, method, path, query, None)

    async def answer(self, method: str, path: str, query: Mapping[str, str]) -> Answer | None:
        """The answer for all workers, or None when this request needs no fan-out."""
        try:
            endpoint, params = control_api.resolve(method, path)
        except control_api.ControlError:
            return None  # the local answer says what is wrong
        if endpoint.name in ("clear_journal", "reset"):
            local = self._local(method, path, query)  # a reset also restores shared scripts
            if local[0] == 200:
                await self._ask_others("DELETE", control_api.BY_NAME["clear_journal"].url_path())
            return local
        if endpoint.name == "describe":
            return await self._describe(method, path, query)
        if endpoint.name == "entry":
            return await self._entry(params["id"])
        if endpoint.name == "wait":
            return await self._wait(params["id"], query)
        return None

    async def journal(self, query: Mapping[str, str]) -> Answer:
        """``GET /__mock__/journal`` for all workers: the entries merged by id."""
        status, local = self._local("GET", control_api.BY_NAME["journal"].url_path(), query)
        if status != 200:
            return status, local
        answers = await self._ask_others("GET", control_api.BY_NAME["journal"].url_path(), query)
        failed = next((a for a in answers if a[0] != 200), None)
        if failed is not None:
            return failed
        requests = [entry for _, body in [(status, local), *answers]
                    for entry in body["requests"]]
        requests.sort(key=lambda entry: entry["id"])
        dropped = local["dropped"] + sum(body["dropped"] for _, body in answers)
        return 200, {"requests": requests, "dropped": dropped}

    async def _describe(self, method: str, path: str, query: Mapping[str, str]) -> Answer:
        status, described = self._local(method, path, query)
        if status != 200:
            return status, described
        for other_status, other in await self._ask_others(method, path, query):
            if other_status != 200:
                return other_status, other
            for name in ("entries", "dropped"):
                described["journal"][name] += other["journal"][name]
        return 200, described

    async def _owner(self, text: str) -> tuple[int | None, Answer]:
        """Which worker has journal entry ``text`` (None: none has it), with its answer."""
        path = control_api.BY_NAME["entry"].url_path(id=text)
        local = self._local("GET", path, {})
        if local[0] != 404:
            return (self.me if local[0] == 200 else None), local
        for number in self.others:
            answer = await self._ask(number, "GET", path)
            if answer[0] == 200:
                return number, answer
        return None, local

    async def _entry(self, text: str) -> Answer:
        return (await self._owner(text))[1]

    async def _wait(self, text: str, query: Mapping[str, str]) -> Answer:
        try:
            entry_id = int(text)
            timeout = control_api.wait_timeout(query)
        except (ValueError, control_api.ControlError):
            return await self._refused(text, query)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            owner, answer = await self._owner(text)
            if owner is not None:
                break
            if answer[0] != 404:
                return answer
            if entry_id < self.sharing.entry_ids_below():  # given out, and gone
                return 404, {"error": f"no journal entry {entry_id} (cleared or dropped)"}
            if loop.time() >= deadline:
                return 408, {"error": f"request {entry_id} has not ended within {timeout:g}s"}
            await asyncio.sleep(_WAIT_STEP)  # no worker has received it yet
        left = {**query, "timeout": f"{max(0.0, deadline - loop.time()):.3f}"}
        path = control_api.BY_NAME["wait"].url_path(id=text)
        if owner == self.me:
            return await control_api.respond(self.state, "GET", path, left, b"")
        return await self._ask(owner, "GET", path, left, timeout)

    async def _refused(self, text: str, query: Mapping[str, str]) -> Answer:
        """A malformed wait: the local control API says what is wrong with it."""
        path = control_api.BY_NAME["wait"].url_path(id=text)
        return await control_api.respond(self.state, "GET", path, query, b"")
