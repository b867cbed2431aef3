"""Static type checks of the worker API (mypy checks this file; nothing runs it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

import beanstalkm
from beanstalkm import FailureRecord, LeaseLost, Message, WorkerStats
from beanstalkm.aio import AsyncMessage, AsyncWorker


def worker_api() -> None:
    worker = beanstalkm.Worker(host="127.0.0.1", port=11300, concurrency=4, grace=10)

    @worker.handler("emails", retries=5, backoff=[1, 5, 30], limit=2)
    def send(message: Message) -> None:
        pass

    handler: Callable[[Message], None] = send  # the decorator keeps the function's type
    assert_type(handler, Callable[[Message], None])
    worker.on_lease_lost(lambda message, error: None)
    assert_type(worker.run(burst=True, max_jobs=10), WorkerStats)
    assert_type(worker.stats, WorkerStats)
    assert_type(worker.failures("emails"), list[FailureRecord])
    assert_type(worker.stats.durations["emails"].mean, float)
    assert_type(LeaseLost(1, "t", "why").job_id, int)


async def async_worker_api() -> None:
    worker = AsyncWorker(concurrency=8)

    @worker.handler("emails", backoff=lambda attempt: 2.0**attempt)
    async def send(message: AsyncMessage) -> None:
        pass

    assert_type(await worker.run(), WorkerStats)
    assert_type(await worker.failures("emails"), list[FailureRecord])
