"""A foreground server for the serving tests, run as its own process:

    python serve_helper.py [--grace S] [--header-timeout S] [--spare-files N] [--workers N]

It serves through ``serve_forever`` and prints ``helper: URL`` once listening. ``POST /hold``
answers at once with a first chunk ``started``, then waits for its request body (which the test
sends when it chooses) and ends with ``finished``. ``GET /`` answers ``ok``, ``GET /pid`` the
serving process's id (``--workers N``: N processes, ``proxyproof.workers``). ``--spare-files N``
lowers the process's descriptor limit, once listening, to N more than it has open, so clients
can run it out of descriptors (the connection cap was set from the limit before).
"""

import argparse
import os
import resource

from aiohttp import web

from proxyproof.serving import ConnectionLimits, serve_forever
from proxyproof.workers import serve_workers


def app() -> web.Application:
    async def hold(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"started\n")
        await request.read()  # until the test sends the body
        await response.write(b"finished\n")
        return response

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pid(request: web.Request) -> web.Response:
        return web.Response(text=str(os.getpid()))

    application = web.Application()
    application.router.add_post("/hold", hold)
    application.router.add_get("/", ok)
    application.router.add_get("/pid", pid)
    return application


def main() -> None:
    options = argparse.ArgumentParser()
    options.add_argument("--grace", type=float, default=10.0)
    options.add_argument("--header-timeout", type=float, default=10.0)
    options.add_argument("--spare-files", type=int, default=None)
    options.add_argument("--workers", type=int, default=1)
    args = options.parse_args()

    def announce(name: str, url: str) -> None:
        if args.spare_files is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            in_use = len(os.listdir("/proc/self/fd")) - 1  # not the listing's own
            resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + args.spare_files, hard))
        print(f"{name}: {url}", flush=True)

    limits = ConnectionLimits(header_timeout=args.header_timeout)
    if args.workers > 1:
        raise SystemExit(serve_workers([("helper", app, "127.0.0.1", 0)], args.workers,
                                       announce, limits=limits, grace=args.grace))
    serve_forever([("helper", app, "127.0.0.1", 0)], announce, limits=limits, grace=args.grace)


if __name__ == "__main__":
    main()
