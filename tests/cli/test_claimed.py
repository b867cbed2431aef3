"""``move`` and ``export --delete`` claim each job (``reserve-job``) before its copy is made: when the
copy cannot be made (the destination server stops answering, stdout's reader went away), every job
claimed and not yet deleted is given back as it was (a buried job buried, a delayed one delayed for
what was left of its delay, each at its own priority), not left to fall back to ready when the
connection closes. Real servers (one frozen with SIGSTOP), the real command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from beanstalkm import Client
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import TIMEOUT, cli_env, client, run, url

DELAY = 3600


def _three(server: BeanstalkdServer) -> list[int]:
    """A buried, a delayed and a ready job in tube ``jobs``."""
    with client(server) as c:
        c.queue.use("jobs")
        buried = c.queue.put(b"buried-one", 10, 0, 60)
        c.queue.reserve_job(buried)
        c.queue.bury(buried, 10)
        delayed = c.queue.put(b"delayed-one", 20, DELAY, 60)
        ready = c.queue.put(b"ready-one", 30, 0, 60)
    return [buried, delayed, ready]


def _as_they_were(c: Client, ids: list[int]) -> None:
    buried, delayed, ready = (c.queue.stats_job(i) for i in ids)
    assert (buried.state, buried.pri, buried.tube) == ("buried", 10, "jobs")
    assert (delayed.state, delayed.pri, delayed.tube) == ("delayed", 20, "jobs")
    assert DELAY - 60 <= delayed.time_left <= DELAY  # what was left of its delay, not 0
    assert (ready.state, ready.pri, ready.tube) == ("ready", 30, "jobs")
    peeked = [c.queue.peek(i) for i in ids]
    assert [m.raw if m is not None else None for m in peeked] == [b"buried-one", b"delayed-one", b"ready-one"]


def test_move_to_a_server_that_stops_answering_gives_the_claimed_jobs_back(server_factory: ServerFactory) -> None:
    source, frozen = server_factory(), server_factory()
    ids = _three(source)
    args = ["-s", url(source), "--timeout", "1", "move", "jobs", "jobs", "--to", url(frozen)]
    frozen.pause()  # it accepts the connection (the kernel's backlog) but never answers the puts
    try:
        result = run(*args)
    finally:
        frozen.resume()
    assert result.code == 3, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("beanstalkm: "), result.err
    assert "3 claimed job(s) were put back as they were" in result.err, result.err
    assert url(frozen).split("//")[1] in result.err  # names the server that failed
    with client(source) as c:
        _as_they_were(c, ids)


def test_export_delete_to_a_closed_pipe_gives_the_claimed_jobs_back(server: BeanstalkdServer) -> None:
    ids = _three(server)
    read, write = os.pipe()
    os.close(read)  # the reader went away (as `| head -0` does)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "beanstalkm", "-s", url(server), "export", "jobs", "--delete"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
            env=cli_env(),
            check=False,
        )
    finally:
        os.close(write)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no traceback
    assert proc.stderr.startswith("beanstalkm: export: stdout was closed (broken pipe)"), proc.stderr
    assert "3 claimed job(s) were put back as they were" in proc.stderr, proc.stderr
    with client(server) as c:
        _as_they_were(c, ids)


def test_move_whose_deletes_are_lost_says_the_copies_are_in_both_places(server: BeanstalkdServer) -> None:
    """The copies are stored, then the source connection is cut as the originals' deletes go out: the
    originals fall back to ready. The one line must say so (before, it said nothing of the copies). A
    proxy in front of the real server cuts the connection when it sees the first delete."""
    from worker.test_connection_loss import CuttingProxy

    with client(server) as c:
        c.queue.use("src")
        ids = [c.queue.put(b"job-%d" % i, 10, 0, 60) for i in range(3)]
    proxy = CuttingProxy(server, b"delete ")
    try:
        result = run("-s", f"beanstalk://127.0.0.1:{proxy.port}", "--timeout", "2", "move", "src", "dst")
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert result.code == 3, result.err
    assert result.err.count("\n") == 1, result.err
    assert "3 job(s) were copied to the destination tube but their originals could not be deleted" in result.err
    with client(server) as c:
        assert c.queue.stats_tube("dst").current_jobs_ready == 3  # the copies
        deadline = time.monotonic() + TIMEOUT  # the server releases them as it sees the cut connection close
        while [c.queue.stats_job(i).state for i in ids] != ["ready"] * 3:  # and the originals, back
            assert time.monotonic() < deadline, [c.queue.stats_job(i).state for i in ids]
            time.sleep(0.02)
