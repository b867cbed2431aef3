"""The lease keeper and a hung server (docs/worker.md, "The lease keeper"), both flavours, real beanstalkd:
a worker of two servers, one slot each, both running a job; server A is frozen (SIGSTOP: it accepts
but never answers) so the touch of A's job hangs until the connection's timeout. B's job must keep its
lease all the same: the due touches go out side by side, none waits for another."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from beanstalkm import Client, Message, Worker
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import ServerFactory

from ._support import WAIT, url, wait_for
from .test_worker import FLAVOURS, run_worker

HOLD = 4.2
"""How long each handler runs: past B's job's TTR (3 s), so only touches keep it."""


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

        def freeze_a() -> None:
            wait_for(lambda: len(running) == 2, what="both handlers to start")
            a.pause()  # before the first touch (at half of A's TTR: 1 s)
            try:
                wait_for(lambda: "B" in seen, timeout=WAIT, what="B's handler to end")
            finally:
                a.resume()

        freezer = threading.Thread(target=freeze_a, daemon=True)
        freezer.start()
        try:
            stats: Any = run_worker(worker, max_jobs=2)
        finally:
            a.resume()
            freezer.join(WAIT)
        assert seen["B"] == (False, 0), seen  # B's job kept its lease: touched, never timed out
        assert cb.queue.peek(job_b) is None  # and it was deleted once done
        assert stats.succeeded >= 1 and stats.touches >= 2, stats
        assert cb.queue.stats().job_timeouts == 0
        assert job_a  # A's job: touched late, or lost (the server was frozen past its TTR); never run twice here
