"""The lease keeper and a hung server (docs/worker.md, "The lease keeper"), both flavours, real beanstalkd:
a worker of two servers, one slot each, both running a job; server A is frozen (SIGSTOP: it accepts
but never answers) so the touch of A's job hangs until the connection's timeout. B's job must keep its
lease all the same: the due touches go out side by side, none waits for another."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from beanstalkm import Client, Message, Worker
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import WAIT, url, wait_for
from .test_worker import FLAVOURS, run_worker

HOLD = 4.2
"""How long each handler runs: past B's job's TTR (3 s), so only touches keep it."""


def run_frozen(
    worker: Worker | AsyncWorker,
    server: BeanstalkdServer,
    running: Callable[[], object],
    ended: Callable[[], object],
    max_jobs: int,
) -> Any:
    """``run_worker(worker, max_jobs=...)``, ``server`` frozen (SIGSTOP) once ``running()`` holds and
    thawed once ``ended()`` does (always thawed at the end); the stats."""

    def freeze() -> None:
        wait_for(running, what="the handlers to start")
        server.pause()
        try:
            wait_for(ended, timeout=WAIT, what="the handlers to end")
        finally:
            server.resume()

    freezer = threading.Thread(target=freeze, daemon=True)
    freezer.start()
    try:
        return run_worker(worker, max_jobs=max_jobs)
    finally:
        server.resume()
        freezer.join(WAIT)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_touch_stuck_on_a_hung_server_does_not_cost_another_job_its_lease(
    server_factory: ServerFactory, flavour: str
) -> None:
    """Failed before the fix: the keeper touched A's job first and waited out the timeout (8 s), so B's
    job (TTR 3 s) was never touched: its TTR ran out under its running handler (timeouts 1, lease lost)."""
    a, b = server_factory(), server_factory()
    with Client(a.host, a.port) as ca, Client(b.host, b.port) as cb:
        job_a = ca.put({"on": "A"}, tube="t", ttr=2).uid
        job_b = cb.put({"on": "B"}, tube="t", ttr=3).uid
        running: set[str] = set()
        seen: dict[str, tuple[bool, int]] = {}  # by server: lease lost, and the TTR expiries, at the handler's end
        cls = Worker if flavour == "threads" else AsyncWorker
        worker = cls([url(a), url(b)], concurrency=2, grace=1, timeout=8)
        if isinstance(worker, AsyncWorker):

            @worker.handler("t")
            async def handle_async(message: AsyncMessage) -> None:
                running.add(message.body["on"])
                await asyncio.sleep(HOLD)
                if message.body["on"] == "B":
                    stats = await message.stats()
                    seen["B"] = (message.lease_lost, -1 if stats is None else stats.timeouts)

        else:

            @worker.handler("t")
            def handle(message: Message) -> None:
                running.add(message.body["on"])
                time.sleep(HOLD)
                if message.body["on"] == "B":
                    stats = message.stats()
                    seen["B"] = (message.lease_lost, -1 if stats is None else stats.timeouts)

        # A frozen once both handlers run, before the first touch (at half of A's TTR: 1 s)
        stats = run_frozen(worker, a, lambda: len(running) == 2, lambda: "B" in seen, max_jobs=2)
        assert seen["B"] == (False, 0), seen  # B's job kept its lease: touched, never timed out
        assert cb.queue.peek(job_b) is None  # and it was deleted once done
        assert stats.succeeded >= 1 and stats.touches >= 2, stats
        assert cb.queue.stats().job_timeouts == 0
        assert job_a  # A's job: touched late, or lost (the server was frozen past its TTR); never run twice here


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_touch_stuck_on_a_hung_server_loses_the_lease_by_the_jobs_time_left(
    server_factory: ServerFactory, flavour: str
) -> None:
    """One server, frozen (SIGSTOP) while a handler runs, so the job's first touch gets no answer.

    asyncio: the touch is bounded by the job's time left (TTR 2 s), not by the connection's timeout
    (20 s), so the lease is recorded lost (``message.lease_lost``, ``on_lease_lost``, ``stats.lease_lost``)
    while the handler still runs. Failed before the fix: the touch waited out the 20 s timeout, and the
    handler (which waits up to 8 s for the lease to be lost) ended with ``lease_lost`` False.
    threads: a blocking touch cannot be cut short, so the bound is the connection's timeout (given 3 s
    here, as docs/worker.md says): the lease is recorded lost once it passes. Either way the job, whose
    TTR ran out on the server, is neither deleted nor released by this worker: it times out and is ready."""
    a = server_factory()
    with Client(a.host, a.port) as client:
        job = client.put({"n": 1}, tube="t", ttr=2).uid
    started = threading.Event()
    seen: dict[str, object] = {}
    lost: list[str] = []
    cls = Worker if flavour == "threads" else AsyncWorker
    worker = cls(url(a), grace=1, timeout=20 if flavour == "tasks" else 3)
    if isinstance(worker, AsyncWorker):

        @worker.handler("t")
        async def handle_async(message: AsyncMessage) -> None:
            started.set()
            deadline = time.monotonic() + 8
            while not message.lease_lost and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            seen["lease_lost"] = message.lease_lost

    else:

        @worker.handler("t")
        def handle(message: Message) -> None:
            started.set()
            deadline = time.monotonic() + 8
            while not message.lease_lost and time.monotonic() < deadline:
                time.sleep(0.05)
            seen["lease_lost"] = message.lease_lost

    worker.on_lease_lost(lambda message, error: lost.append(str(error)))

    stats = run_frozen(worker, a, started.is_set, lambda: "lease_lost" in seen, max_jobs=1)  # before the 1st touch
    assert seen["lease_lost"] is True, (seen, lost)
    assert stats.lease_lost == 1 and stats.succeeded == 0 and stats.touches == 0, stats
    assert len(lost) == 1, lost
    if flavour == "tasks":
        assert "no answer within its time left" in lost[0], lost
    else:
        assert "timed out" in lost[0], lost
    with Client(a.host, a.port) as client:
        wait_for(lambda: client.queue.stats_job(job).state == "ready", what="the job's TTR to run out")
        assert client.queue.stats_job(job).timeouts == 1  # its TTR ran out: nobody deleted or released it
