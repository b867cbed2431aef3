"""A clean stop of a slot of several servers (docs/worker.md, "Shutdown"), both flavours, real beanstalkd:
the stop cuts the waiting reserves short by closing their connections; those failures are the stop's
own doing, not connection errors (no count, no warning)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from beanstalkm import Worker, WorkerStats
from beanstalkm.aio import AsyncWorker
from beanstalkm.testing import ServerFactory

from ._support import WAIT, url
from .test_worker import FLAVOURS, register

IDLE = 1.5
"""How long the worker waits (on both servers at once) before it is stopped."""


def _run_then_stop(worker: Worker | AsyncWorker) -> WorkerStats:
    if isinstance(worker, AsyncWorker):

        async def go() -> WorkerStats:
            asyncio.get_running_loop().call_later(IDLE, worker.stop)
            async with asyncio.timeout(WAIT):
                return await worker.run(handle_signals=False)

        return asyncio.run(go())
    timer = threading.Timer(IDLE, worker.stop)
    timer.start()
    box: list[WorkerStats] = []
    thread = threading.Thread(target=lambda: box.append(worker.run(handle_signals=False)), daemon=True)
    thread.start()
    thread.join(WAIT)
    timer.cancel()
    assert box, "the worker did not return"
    return box[0]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("servers", [2, 3])
def test_a_clean_stop_counts_no_connection_error(
    server_factory: ServerFactory, flavour: str, servers: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed before the fix: connection_errors was 2 and two WARNINGs said "[Errno 9] Bad file descriptor"."""
    urls = [url(server_factory()) for _ in range(servers)]
    worker = (Worker if flavour == "threads" else AsyncWorker)(urls, concurrency=1, grace=5)
    register(worker, "t", lambda m: None)
    with caplog.at_level(logging.WARNING, logger="beanstalkm"):
        stats = _run_then_stop(worker)
    assert stats.connection_errors == 0, stats
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
