"""Graceful shutdown through the CLI, both flavours: SIGTERM with 4 handlers mid-job lets them finish
and exits 0 within the grace, unstarted work staying ready at its own priority; past the grace (or at
a second signal) the unfinished jobs are released at their own priority, and the process still exits 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from beanstalkm import Client
from beanstalkm.testing import BeanstalkdServer

from ._support import FLAVOUR_IDS, FLAVOURS, WAIT, Workers, read_runlog, url, wait_for


@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
def test_sigterm_lets_four_running_handlers_finish(
    server: BeanstalkdServer, workers: Workers, tmp_path: Path, flavour: str
) -> None:
    runlog = tmp_path / "run.log"
    grace = 10.0
    with Client(server.host, server.port) as client:
        running = [client.put({"sleep": 1.5}, tube="slow", priority=100).uid for _ in range(4)]
        waiting = [client.put({"sleep": 0}, tube="slow", priority=500 + i).uid for i in range(6)]
        proc = workers.start(f"worker._apps:slow{flavour}", ["-s", url(server), "--grace", str(grace)], runlog)
        wait_for(lambda: len(read_runlog(runlog).starts) == 4, what="four handlers running")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0, workers.logs()
        took = time.monotonic() - sent
        run = read_runlog(runlog)
        assert sorted(run.starts) == sorted(running) and sorted(run.ends) == sorted(running)
        assert took < grace, f"exited {took:.1f} s after SIGTERM, past the {grace} s grace"
        for job in running:
            assert client.queue.peek(job) is None  # finished, so deleted
        for i, job in enumerate(waiting):
            stats = client.queue.stats_job(job)
            assert (stats.state, stats.pri, stats.reserves) == ("ready", 500 + i, 0)  # never taken
        assert client.queue.stats().job_timeouts == 0


@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
@pytest.mark.parametrize("second_signal", [False, True], ids=["grace-expires", "second-signal"])
def test_unfinished_jobs_are_released_at_their_own_priority(
    server: BeanstalkdServer, workers: Workers, tmp_path: Path, flavour: str, second_signal: bool
) -> None:
    runlog = tmp_path / "run.log"
    grace = 30.0 if second_signal else 1.0
    with Client(server.host, server.port) as client:
        jobs = [client.put({"sleep": 60}, tube="slow", priority=42 + i).uid for i in range(2)]
        proc = workers.start(f"worker._apps:slow{flavour}", ["-s", url(server), "--grace", str(grace)], runlog)
        wait_for(lambda: len(read_runlog(runlog).starts) == 2, what="two handlers running")
        proc.send_signal(signal.SIGTERM)
        if second_signal:
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
        assert proc.wait(WAIT) == 0, workers.logs()
        for i, job in enumerate(jobs):
            stats = client.queue.stats_job(job)
            assert (stats.state, stats.pri, stats.releases, stats.timeouts) == ("ready", 42 + i, 1, 0)
        assert "released unfinished" in workers.logs()
