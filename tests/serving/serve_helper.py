"""A foreground server for the serving tests, run as its own process:

    python serve_helper.py [--grace S] [--header-timeout S] [--spare-files N]

It serves through ``serve_forever`` and prints ``helper: URL`` once listening. ``POST /hold``
answers at once with a first chunk ``started``, then waits for its request body (which the test
sends when it chooses) and ends with ``finished``. ``GET /`` answers ``ok``. ``--spare-files N``
lowers the process's descriptor limit, once listening, to N more than it has open, so clients
can run it out of descriptors (the connection cap was set from the limit before).
"""

import argparse
import os
import resource

from aiohttp import web

from proxyproof.serving import ConnectionLimits, serve_forever


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

    application = web.Application()
    application.router.add_post("/hold", hold)
    application.router.add_get("/", ok)
    return application


def main() -> None:
    options = argparse.ArgumentParser()
    options.add_argument("--grace", type=float, default=10.0)
    options.add_argument("--header-timeout", type=float, default=10.0)
    options.add_argument("--spare-files", type=int, default=None)
    args = options.parse_args()

    def announce(name: str, url: str) -> None:
        if args.spare_files is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            in_use = len(os.listdir("/proc/self/fd")) - 1  # not the listing's own
            resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + args.spare_files, hard))
        print(f"{name}: {url}", flush=True)

    limits = ConnectionLimits(header_timeout=args.header_timeout)
    serve_forever([("helper", app, "127.0.0.1", 0)], announce, limits=limits, grace=args.grace)


if __name__ == "__main__":
    main()
