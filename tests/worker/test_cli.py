"""The worker command line: exit codes for usage and unreachable servers, and the Prometheus endpoint."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from beanstalkm import Client
from beanstalkm.testing import BeanstalkdServer
from beanstalkm.worker_main import EXIT_UNREACHABLE, EXIT_USAGE, main

from ._support import ROOT, WAIT, Workers, run_command, url, wait_for, worker_argv, worker_env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*worker_argv(), *args], env=worker_env(), capture_output=True, text=True, timeout=WAIT, cwd=ROOT
    )


def test_usage_errors_exit_2(server: BeanstalkdServer) -> None:
    for args, says in (
        (["worker", "no_such_module_xyz:worker", "-s", url(server)], "cannot import"),
        (["worker", "worker._apps", "-s", url(server)], "is not pkg.module:attribute"),
        (["worker", "worker._apps:nothing", "-s", url(server)], "has no 'nothing'"),
        (["worker", "worker._apps:note", "-s", url(server)], "not a Worker or AsyncWorker"),
        (["worker", "worker._apps:slow", "-c", "0", "-s", url(server)], "concurrency"),
        (["worker", "worker._apps:slow", "-s", "http://x"], "server"),
        (["nothing"], "No such command 'nothing'"),
    ):
        done = _run(*args)
        assert done.returncode == EXIT_USAGE, (args, done.stderr)
        assert says in done.stderr, (args, done.stderr)


def test_no_server_reachable_exits_3(server: BeanstalkdServer) -> None:
    port = server.port
    server.stop()
    done = _run("worker", "worker._apps:slow", "-s", f"beanstalk://127.0.0.1:{port}")
    assert done.returncode == EXIT_UNREACHABLE and "no server reachable" in done.stderr


def test_main_is_callable_with_global_options(server: BeanstalkdServer, capsys: object) -> None:
    """What the ``beanstalkm`` command calls: servers and --json passed as keywords."""
    assert main(["failed", "ls", "t"], servers=[url(server)], json_output=True) == 0
    port = server.port
    server.stop()
    assert main(["failed", "ls", "t"], servers=[f"beanstalk://127.0.0.1:{port}"], timeout=2) == EXIT_UNREACHABLE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_metrics_endpoint_serves_the_counters(server: BeanstalkdServer, workers: Workers, tmp_path: Path) -> None:
    with Client(server.host, server.port) as client:
        for _ in range(3):
            client.put({"sleep": 0}, tube="slow")
        port = _free_port()
        args = ["-s", url(server), "--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
        proc = workers.start("worker._apps:slow", args, tmp_path / "run.log")
        wait_for(lambda: client.queue.stats_tube("slow").cmd_delete == 3, what="three jobs done")

        def scrape() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text: str = response.read().decode()
                    return text
            except OSError:  # not listening yet
                return ""

        wait_for(lambda: "beanstalkm_worker_succeeded_total 3.0" in scrape(), what="the metrics to show 3 jobs")
        text = scrape()
        assert 'beanstalkm_worker_handler_seconds_count{tube="slow"} 3.0' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0


def test_the_beanstalkm_command_passes_worker_and_failed_through(server: BeanstalkdServer) -> None:
    """``beanstalkm [-s URL] [--json] worker|failed ...`` (the click CLI) runs this module's main."""
    pytest.importorskip("click")
    with Client(server.host, server.port) as client:
        job = client.put({"sleep": 0}, tube="slow").uid
        command = [sys.executable, "-m", "beanstalkm", "-s", url(server), "--json"]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*command, *args], env=worker_env(), capture_output=True, text=True, timeout=WAIT, cwd=ROOT
            )

        done = run("worker", "worker._apps:slow", "--max-jobs", "1")
        assert done.returncode == 0, done.stderr
        assert client.queue.peek(job) is None
        listed = run("failed", "ls", "slow")
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
        assert run("failed", "retry", "slow").returncode == EXIT_USAGE


@pytest.mark.parametrize(
    ("app", "error"),
    [
        ("slot_bug", "RuntimeError: a bug in the slot"),
        ("slot_socket_bug", "SocketError: a bug that raised a SocketError"),
    ],
)
@pytest.mark.parametrize("command", ["beanstalkm", "worker_main"])
def test_a_slot_that_dies_on_a_bug_exits_1_with_one_line_saying_what_it_was(
    server: BeanstalkdServer, command: str, app: str, error: str
) -> None:
    """The slot's traceback is logged; the command ends with one line naming the slot, its exception
    (type and message) and what became of the job it held (back to ready as its connection closed), exit 1.
    Failed before: ``beanstalkm`` said ``internal error: RuntimeError: ...``, ``python -m
    beanstalkm.worker_main`` ended on a raw traceback, and a slot's bug that raised a SocketError exited 3
    ("no server reachable") though every server answered."""
    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="t").uid
        done = run_command(command, ["worker", f"worker._apps:{app}", "-s", url(server)])
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last == (
            f"beanstalkm worker: worker slot 0 ended on a bug: {error}; the worker stopped (the other slots within"
            " the grace), and the jobs the slot held go back to ready as its connection closes (its traceback is"
            " logged above)"
        )
        assert "slot 0 failed" in done.stderr  # the log line, with the traceback before the last line
        stats = client.queue.stats_job(job)
        assert (stats.state, stats.reserves) == ("ready", 1)  # it held the job: back to ready, as the line says
