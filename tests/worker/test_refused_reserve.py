"""A reserve the server refuses with a framed failure (docs/worker.md, "Delivery guarantee"): beanstalkd
answers ``OUT_OF_MEMORY`` when it cannot queue a waiting reserve, ``INTERNAL_ERROR`` on a bug of its own.
The connection stays in step; the slot must go on, not end the worker. A real server does not refuse on
demand, so a loopback proxy in front of a real beanstalkd turns one reply into the refusal."""

from __future__ import annotations

import asyncio
import time

import pytest

from beanstalkm import Client, Message, Worker
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from .test_connection_loss import CuttingProxy
from .test_protocol_break import Once, consume
from .test_worker import FLAVOURS, run_worker


def _refusing(job: int, status: bytes) -> Once:
    """The reserve reply that hands out ``job`` becomes ``status`` (the job stays reserved on the server
    until its TTR, as if the refusal had come and the job been reserved by someone else meanwhile)."""
    return Once(rb"RESERVED %d \d+\r\n[^\r]*\r\n" % job, status + b"\r\n")


@pytest.mark.parametrize("status", [b"OUT_OF_MEMORY", b"INTERNAL_ERROR"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_refused_reserve_is_logged_and_the_slot_goes_on(
    server: BeanstalkdServer, flavour: str, status: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed before the fix: the refusal (``OutOfMemory``) ended the slot, so the worker stopped and
    ``run`` raised it (the CLI exited 1) with both jobs left on the server."""
    with Client(server.host, server.port) as client:
        ids = [client.put({"n": n}, tube="t", ttr=2).uid for n in range(2)]
    once = _refusing(ids[0], status)
    proxy = CuttingProxy(server, b"", once)
    runs: list[tuple[int, bool]] = []
    try:
        stats = consume(flavour, proxy.port, runs, 2)
    finally:
        proxy.close()
    assert once.breaks == 1
    assert sorted(uid for uid, _ in runs) == ids and all(reserved for _, reserved in runs), runs
    assert stats.succeeded == 2 and stats.connection_errors == 1, stats
    assert "the server refused its reserve" in caplog.text
    with Client(server.host, server.port) as client:
        assert client.queue.stats().current_jobs_ready == client.queue.stats().current_jobs_reserved == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_refused_reserve_on_one_server_of_a_slot_pauses_that_server_only(
    server_factory: ServerFactory, flavour: str
) -> None:
    """One slot, two servers (two lanes): A's reserve is refused; the slot pauses A (its backoff) and goes
    on with B, then takes A's jobs once A is tried again. Failed before the fix: the slot ended."""
    a, b = server_factory(), server_factory()
    with Client(a.host, a.port) as ca, Client(b.host, b.port) as cb:
        on_a = [ca.put({"n": n}, tube="t", ttr=2).uid for n in range(2)]
        on_b = [cb.put({"n": n}, tube="t", ttr=2).uid for n in range(2)]
    once = _refusing(on_a[0], b"OUT_OF_MEMORY")
    proxy = CuttingProxy(a, b"", once)
    seen: list[tuple[str, int]] = []
    worker: Worker | AsyncWorker
    urls = [f"beanstalk://127.0.0.1:{proxy.port}", f"beanstalk://{b.host}:{b.port}"]
    if flavour == "threads":
        worker = Worker(urls, concurrency=1, grace=1)

        @worker.handler("t")
        def handle(message: Message) -> None:
            seen.append((message.server, message.uid))
            time.sleep(0.01)
    else:
        worker = AsyncWorker(urls, concurrency=1, grace=1)

        @worker.handler("t")
        async def handle_async(message: AsyncMessage) -> None:
            seen.append((message.server, message.uid))
            await asyncio.sleep(0.01)

    try:
        stats = run_worker(worker, max_jobs=4)
    finally:
        proxy.close()
    assert once.breaks == 1
    assert sorted(seen) == sorted([(urls[0], i) for i in on_a] + [(urls[1], i) for i in on_b]), seen
    assert stats.succeeded == 4 and stats.connection_errors >= 1, stats
