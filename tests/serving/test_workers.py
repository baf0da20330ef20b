"""``--workers N`` (proxyproof.workers): N processes answer on one port, one SIGTERM drains all,
and an address that cannot be had is one line before any worker starts."""

import http.client
import os
import signal
import socket

import pytest
from test_drain import _hold, _until_closed

from proxyproof.cli import main


def _pid(address: tuple[str, int]) -> int:
    """The worker that answers a new connection."""
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request("GET", "/pid")
        return int(connection.getresponse().read())
    finally:
        connection.close()


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as file:
        return {int(child) for child in file.read().split()}


def test_two_workers_answer_on_one_port_and_one_sigterm_drains_both(serve):
    served = serve("--workers", "2", "--grace", "10")
    workers = _children(served.process.pid)
    assert len(workers) == 2 and served.process.pid not in workers
    seen = set()
    for _ in range(400):  # the kernel spreads new connections by their address hash
        seen.add(_pid(served.address))
        if seen == workers:
            break
    assert seen == workers
    with _hold(served.address) as held:  # a request in flight at one of them
        served.process.send_signal(signal.SIGTERM)
        assert "stopping 2 workers" in served.stderr_line("stopping")
        held.sendall(b"x")
        rest = _until_closed(held)
    assert b"finished\n" in rest and rest.endswith(b"0\r\n\r\n")
    assert served.process.wait(timeout=20) == 0
    for worker in workers:
        assert not os.path.exists(f"/proc/{worker}") or _zombie(worker)
    assert "Traceback" not in served.process.stderr.read()


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="ascii") as file:
        return file.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_the_proxy_command_serves_from_workers_and_stops_on_sigterm(serve):
    served = serve("-m", "proxyproof", "proxy", "--example", "ollama", "--port", "0",
                   "--workers", "2")
    assert len(_children(served.process.pid)) == 2
    connection = http.client.HTTPConnection(*served.address, timeout=10)
    connection.request("POST", "/llama2-chat", b"{}", {"Content-Type": "application/json"})
    assert connection.getresponse().status == 400  # answered by a worker: no messages
    connection.close()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_busy_port_is_one_line_before_any_worker_starts(capsys, reuse_port):
    with socket.socket() as taken:  # another server, which may have set SO_REUSEPORT too
        if reuse_port:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["proxy", "--example", "ollama", "--port", str(port), "--workers", "2"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"proxyproof proxy: cannot listen on 127.0.0.1:{port}: the port is already in use "
        "(pick another with --port, or --port 0 for any free port)")


def test_workers_and_the_admin_api_do_not_mix(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["proxy", "--admin-port", "0", "--workers", "2"])
    assert exit_info.value.code == 2
    assert "a POSTed config would reach one worker only" in capsys.readouterr().err
