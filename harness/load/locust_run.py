"""One Locust process of ``proxyproof load``: standalone, master or worker.

Run only as ``python -m proxyproof.harness.load.locust_run JOB.json``: Locust monkey-patches the
standard library for gevent when imported, which no other proxyproof process may undergo (the
mocks and the proxy run on asyncio). The job file, written by ``proxyproof.load``, says what to
do; the result file it names receives the JSON summary and the details the command prints.

- Users: ``CatalogueUser``, built from the plan (``plan``): each request picks a kind by the
  mix's shares and one of that kind's catalogue requests, sends it over its own kept-alive
  connection and reads the reply as it arrives. Locust's statistics get one entry per kind
  (type ``HTTP``), and for streams, as custom events, the time to the first body bytes
  (``TTFT``) and each gap between later arrivals (``CHUNK``).
- Outcomes (``outcomes``) are counted where the load is made and sent with Locust's worker
  reports; samples (``sampling``) go to the master as messages, where the oracle judges them.
- A master sends each worker the plan when the worker asks for it, so workers need no catalogue
  or mocks.
"""

from __future__ import annotations

import signal

# Until the plan arrives, Ctrl-C is the preparing process's: it then closes our input.
signal.signal(signal.SIGINT, signal.SIG_IGN)

from gevent import monkey  # noqa: E402

monkey.patch_all()  # before anything opens a socket; Locust's own import does the same

import base64  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.queue  # noqa: E402
from locust import User, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.html import get_html_report  # noqa: E402
from locust.rpc import Message  # noqa: E402
from locust.runners import STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner  # noqa: E402
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV  # noqa: E402

from .marker import new_marker, with_marker  # noqa: E402
from .mix import HOSTILE  # noqa: E402
from .outcomes import classify, failed  # noqa: E402
from .summary import KindFigures, summary  # noqa: E402

REQUEST_TIMEOUT = 30.0  # seconds for one reply, whole
READ_SIZE = 65536
PLAN_WAIT = 60.0  # seconds a worker's users wait for the master's plan
FINAL_REPORT_WAIT = 10.0  # seconds the master waits for each worker's last report
STOP_TIMEOUT = 5.0  # seconds a user has to finish the request in flight when the run ends
CHECKERS = 4  # greenlets judging samples
SAMPLE_QUEUE = 2000  # samples waiting to be judged; more are skipped
PLAN_MESSAGE, SAMPLE_MESSAGE = "proxyproof_plan", "proxyproof_sample"
ASK_MESSAGE = "proxyproof_plan_please"  # a worker asks once its handler is in place
log = logging.getLogger("proxyproof.load")


# A kept-alive connection the other side closed while it was idle: sending on it fails so.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Outcome(Exception):
    """A request Locust counts as failed: an unexpected 5xx or a cut reply."""


class Generator:
    """What this process's users share: the plan, the shares, the counts not yet reported."""

    def __init__(self, sample_share: float, proxy_url: str | None) -> None:
        self.sample_share, self.proxy_override = sample_share, proxy_url
        self.plan_ready = gevent.event.Event()
        self.kinds: list[str] = []
        self.shares: list[float] = []
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.address: tuple[str, int] = ("127.0.0.1", 80)
        self.outcomes: Counter[str] = Counter()  # since the last report
        self.sent = 0  # since the last report
        self.sent_total = 0
        self.samples: Any = None  # where a sample goes: a callable

    def take_plan(self, plan: dict[str, Any]) -> None:
        self.kinds = list(plan["kinds"])
        self.shares = [plan["kinds"][kind]["share"] for kind in self.kinds]
        self.requests = {kind: plan["kinds"][kind]["requests"] for kind in self.kinds}
        url = urlsplit(self.proxy_override or plan["proxy_url"])
        self.address = (url.hostname or "127.0.0.1", url.port or 80)
        self.sample_share = plan.get("sample", self.sample_share)  # the master's, on a worker
        self.plan_ready.set()

    def report(self) -> dict[str, Any]:
        """The counts since the last report (then forgotten)."""
        counted = {"outcomes": dict(self.outcomes), "requests": self.sent}
        self.outcomes.clear()
        self.sent = 0
        return counted


GENERATOR = Generator(0.0, None)


class CatalogueUser(User):
    """Sends the catalogue's requests in the mix's proportions, one at a time, as fast as the
    gateway answers (no think time: the number of users sets the concurrency)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        if not GENERATOR.plan_ready.wait(PLAN_WAIT):
            raise RuntimeError("no plan came from the master")
        self.connection: http.client.HTTPConnection | None = None
        self.random = random.Random()

    def on_stop(self) -> None:
        if getattr(self, "connection", None) is not None:
            self.connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None:
            host, port = GENERATOR.address
            self.connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
        return self.connection

    @task
    def send(self) -> None:
        kind = self.random.choices(GENERATOR.kinds, GENERATOR.shares)[0]
        planned = self.random.choice(GENERATOR.requests[kind])
        body = base64.b64decode(planned["body"])
        marker = None
        sample = planned.get("sample")
        if sample and self.random.random() < GENERATOR.sample_share:
            marker = new_marker()
            sent_json = with_marker(sample["json"], planned["route"], marker)
            body = json.dumps(sent_json).encode()
        started = time.perf_counter()
        status, headers, reply, complete, arrivals, problem = self._exchange(planned, body)
        ended = time.perf_counter()
        hostile = kind == HOSTILE
        outcome = classify(status, complete, hostile, planned["allowed_5xx"])
        GENERATOR.outcomes[outcome] += 1
        GENERATOR.sent += 1
        GENERATOR.sent_total += 1
        events = self.environment.events.request
        events.fire(request_type="HTTP", name=kind, response_time=(ended - started) * 1000,
                    response_length=len(reply), context={},
                    exception=Outcome(f"{outcome}: {problem or status}") if failed(outcome)
                    else None)
        if kind.endswith(" stream") and status == 200 and arrivals:
            events.fire(request_type="TTFT", name=kind, response_time=(arrivals[0] - started)
                        * 1000, response_length=0, context={}, exception=None)
            for before, after in zip(arrivals, arrivals[1:], strict=False):
                events.fire(request_type="CHUNK", name=kind, response_time=(after - before)
                            * 1000, response_length=0, context={}, exception=None)
        if marker is not None and status is not None:
            GENERATOR.samples({"binding": planned["binding"], "marker": marker,
                               "json": sent_json, "status": status, "headers": headers,
                               "reply": base64.b64encode(reply).decode(),
                               "complete": complete})

    def _exchange(self, planned: dict[str, Any], body: bytes
                  ) -> tuple[int | None, dict[str, str], bytes, bool, list[float], str]:
        """(status or None, headers, the body as received, whether it arrived whole, when each
        piece of it arrived, what went wrong). A kept-alive connection the gateway closed
        while idle is opened again once, as HTTP clients do."""
        for attempt in (1, 2):
            reused = self.connection is not None
            connection = self._connection()
            status: int | None = None
            headers: dict[str, str] = {}
            pieces: list[bytes] = []
            arrivals: list[float] = []
            try:
                connection.request(planned["method"], planned["path"], body=body or None,
                                   headers=planned["headers"])
                response = connection.getresponse()
                status, headers = response.status, dict(response.getheaders())
                while piece := response.read1(READ_SIZE):
                    arrivals.append(time.perf_counter())
                    pieces.append(piece)
                pieces.append(response.read())  # b"": marks the reply read, for the next one
                if response.will_close:
                    self._drop_connection()
                return status, headers, b"".join(pieces), True, arrivals, ""
            except (OSError, http.client.HTTPException) as error:  # a timeout is an OSError
                self._drop_connection()
                stale = reused and status is None and isinstance(error, _STALE)
                if attempt == 1 and stale:
                    continue
                return (status, headers, b"".join(pieces), False, arrivals,
                        type(error).__name__)
        raise AssertionError("unreachable")

    def _drop_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# --- judging samples (standalone and master) --------------------------------------------------


class Judge:
    """Samples waiting for the oracle, and the greenlets that judge them."""

    def __init__(self, plan: dict[str, Any]) -> None:
        from .sampling import SampleChecker

        self.checker = SampleChecker(plan)
        self.queue: gevent.queue.JoinableQueue = gevent.queue.JoinableQueue(SAMPLE_QUEUE)
        self.greenlets = [gevent.spawn(self._work) for _ in range(CHECKERS)]

    def put(self, sample: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(sample)
        except gevent.queue.Full:
            self.checker.verdicts.skipped += 1

    def _work(self) -> None:
        while True:
            sample = self.queue.get()
            try:
                self.checker.check(sample)
            except Exception as problem:  # a mock gone, a reply the oracle cannot read
                self.checker.verdicts.skipped += 1
                log.warning("a sample could not be judged: %s: %s", type(problem).__name__,
                            str(problem)[:200])
            finally:
                self.queue.task_done()

    def finish(self, timeout: float) -> None:
        self.queue.join(timeout=timeout)
        gevent.killall(self.greenlets)


# --- the run ----------------------------------------------------------------------------------


def _figures(environment: Environment) -> dict[str, KindFigures]:
    entries = environment.stats.entries
    by_kind: dict[str, KindFigures] = {}
    for (name, method), entry in entries.items():
        if method != "HTTP" or not entry.num_requests:
            continue
        first = entries.get((name, "TTFT"))
        ttft = (float(first.get_response_time_percentile(0.5))
                if first is not None and first.num_requests else None)
        by_kind[name] = KindFigures(entry.num_requests,
                                    float(entry.get_response_time_percentile(0.5)),
                                    float(entry.get_response_time_percentile(0.99)), ttft)
    return by_kind


def _chunk_gaps(environment: Environment) -> dict[str, dict[str, float]]:
    return {name: {"p50_ms": float(entry.get_response_time_percentile(0.5)),
                   "p99_ms": float(entry.get_response_time_percentile(0.99)),
                   "gaps": entry.num_requests}
            for (name, method), entry in environment.stats.entries.items()
            if method == "CHUNK" and entry.num_requests}


def _write_reports(environment: Environment, job: dict[str, Any]) -> None:
    if job.get("csv"):
        import csv

        writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
        for suffix, write in (("stats", writer.requests_csv), ("failures", writer.failures_csv),
                              ("exceptions", writer.exceptions_csv)):
            with open(f"{job['csv']}_{suffix}.csv", "w", newline="", encoding="utf-8") as file:
                write(csv.writer(file))
    if job.get("html"):
        Path(job["html"]).write_text(get_html_report(environment, show_download_link=False),
                                     encoding="utf-8")


def _stop_after(seconds: float, stopped: gevent.event.Event) -> None:
    stopped.wait(seconds)


def _serve_ui(environment: Environment, job: dict[str, Any]) -> None:
    if job.get("web_ui"):
        host, port = job["web_ui"]
        environment.create_web_ui(host, port)
        print(f"Locust's web UI: http://{host}:{port}", file=sys.stderr, flush=True)


def run_standalone(job: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    environment = Environment(user_classes=[CatalogueUser], stop_timeout=STOP_TIMEOUT)
    runner = environment.create_local_runner()
    judge = Judge(plan)
    GENERATOR.samples = judge.put
    GENERATOR.take_plan(plan)
    _serve_ui(environment, job)
    started = time.monotonic()
    runner.start(job["users"], job["spawn_rate"])
    _stop_after(job["run_time"], _interrupted())
    seconds = time.monotonic() - started
    runner.quit()
    judge.finish(FINAL_REPORT_WAIT * 3)
    return _result(environment, job, seconds, 1, Counter(GENERATOR.report()["outcomes"]),
                   judge, {"local": GENERATOR.sent_total})


def _interrupted() -> gevent.event.Event:
    """Set on SIGTERM or Ctrl-C: the run ends early, its reports written all the same."""
    stopped = gevent.event.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, stopped.set)
    return stopped


def run_master(job: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    environment = Environment(user_classes=[CatalogueUser], stop_timeout=STOP_TIMEOUT)
    bind_host, bind_port = job["master_bind"]
    runner: MasterRunner = environment.create_master_runner(bind_host, bind_port)
    judge = Judge(plan)
    outcomes: Counter[str] = Counter()
    per_worker: Counter[str] = Counter()
    finished: set[str] = set()

    def on_sample(environment: Environment, msg: Message, **_kwargs: Any) -> None:
        judge.put(msg.data)

    def on_report(client_id: str, data: dict[str, Any]) -> None:
        counted = data.get("proxyproof")
        if counted:
            outcomes.update(counted["outcomes"])
            per_worker[client_id] += counted["requests"]
            if counted["final"]:
                finished.add(client_id)

    def on_ask(environment: Environment, msg: Message, **_kwargs: Any) -> None:
        runner.send_message(PLAN_MESSAGE, plan, client_id=msg.node_id)

    runner.register_message(SAMPLE_MESSAGE, on_sample)
    runner.register_message(ASK_MESSAGE, on_ask)
    environment.events.worker_report.add_listener(on_report)
    expected = job["expect_workers"]
    print(f"master: waiting for {expected} worker(s) on {bind_host}:{bind_port}",
          file=sys.stderr, flush=True)
    stopped = _interrupted()
    deadline = time.monotonic() + job["expect_workers_wait"]
    while len(runner.clients.ready) < expected:
        if stopped.wait(0.1) or time.monotonic() > deadline:
            runner.quit()
            return {"error": f"{len(runner.clients.ready)} of {expected} worker(s) connected "
                    f"within {job['expect_workers_wait']:g} s"}
    _serve_ui(environment, job)
    environment.stats.reset_all()
    started = time.monotonic()
    runner.start(job["users"], job["spawn_rate"])
    _stop_after(job["run_time"], stopped)
    seconds = time.monotonic() - started
    workers = [client.id for client in runner.clients.all]
    runner.stop(send_stop_to_client=False)
    for client_id in workers:
        runner.server.send_to_client(Message("quit", None, client_id))
    deadline = time.monotonic() + FINAL_REPORT_WAIT
    while not finished.issuperset(workers) and time.monotonic() < deadline:
        gevent.sleep(0.05)  # the workers' last reports are on their way
    runner.greenlet.kill(block=True)
    judge.finish(FINAL_REPORT_WAIT * 3)
    sending = {worker: count for worker, count in per_worker.items() if count}
    return _result(environment, job, seconds, len(sending), outcomes, judge, sending)


def run_worker(job: dict[str, Any]) -> None:
    environment = Environment(user_classes=[CatalogueUser], stop_timeout=STOP_TIMEOUT)
    runner: WorkerRunner = environment.create_worker_runner(*job["master"])

    def send_sample(sample: dict[str, Any]) -> None:
        runner.send_message(SAMPLE_MESSAGE, sample)

    def on_plan(environment: Environment, msg: Message, **_kwargs: Any) -> None:
        GENERATOR.take_plan(msg.data)

    def on_report(client_id: str, data: dict[str, Any]) -> None:
        data["proxyproof"] = {**GENERATOR.report(),
                              "final": runner.state in (STATE_STOPPING, STATE_STOPPED)}

    GENERATOR.samples = send_sample
    runner.register_message(PLAN_MESSAGE, on_plan)
    environment.events.report_to_master.add_listener(on_report)
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop: tell the master, leave
        gevent.signal_handler(sig, runner.quit)
    # Asked for, not pushed on connection: a plan sent then could arrive before this process
    # has its handler (the runner connects as it is made), and Locust drops unknown messages.
    runner.send_message(ASK_MESSAGE)
    print(f"worker: connecting to the master at {job['master'][0]}:{job['master'][1]}",
          file=sys.stderr, flush=True)
    runner.greenlet.join()
    print(f"worker: {GENERATOR.sent_total} requests sent", file=sys.stderr, flush=True)


def _result(environment: Environment, job: dict[str, Any], seconds: float, workers: int,
            outcomes: Counter[str], judge: Judge, per_worker: dict[str, int]) -> dict[str, Any]:
    _write_reports(environment, job)
    verdicts = judge.checker.verdicts
    report = summary(_figures(environment), seconds, workers, outcomes, verdicts.checked,
                     verdicts.failed)
    return {"summary": report, "seconds": seconds, "per_worker": per_worker,
            "chunk_gaps": _chunk_gaps(environment), "samples_skipped": verdicts.skipped,
            "sample_failures": verdicts.failures}


def main(argv: list[str]) -> int:
    """``argv[0]``: the job, as JSON text (a worker's) or the path of a JSON file."""
    given = argv[0]
    job = json.loads(given if given.startswith("{") else Path(given).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    GENERATOR.proxy_override = job.get("proxy_url")
    if job["mode"] == "worker":
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run_worker(job)
        return 0
    given = sys.stdin.read() if job["plan"] == "-" else Path(job["plan"]).read_text("utf-8")
    if not given:
        return 0  # the run was called off before it had a plan
    signal.signal(signal.SIGINT, signal.default_int_handler)  # ours now (``_interrupted``)
    plan = json.loads(given)
    result = run_master(job, plan) if job["mode"] == "master" else run_standalone(job, plan)
    Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
