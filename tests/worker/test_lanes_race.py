"""A slot of several servers waits on all of them at once (docs/worker.md, "Fewer slots than servers"); a
job arriving on two of them in the same instant is reserved by both waits. The loser's wait is cut short
(its connection dropped: the job goes back to ready), and beanstalkd counts that reserve: it must not count
against the job's budget. Both flavours, two real servers, one slot, ``retries=0`` (a budget of one
attempt), jobs put on both servers at once (a barrier) while the slot waits."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from beanstalkm import Client, FailureRecord, Message, Worker
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import ServerFactory

from ._support import WAIT, url
from .test_worker import FLAVOURS, run_worker

ROUNDS = 6


def _put_at(barrier: threading.Barrier, client: Client, n: int) -> None:
    """Put ``{"n": n}`` into ``t`` as the other putters of ``barrier`` do theirs (the same instant)."""
    barrier.wait(WAIT)
    client.put({"n": n}, tube="t")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_job_raced_by_a_cut_short_wait_is_not_charged_an_attempt(server_factory: ServerFactory, flavour: str) -> None:
    """Failed before the fix: most rounds raced, and each raced job came back with ``reserves`` 2, so it was
    buried as ``crashed`` ("reserved 2 times (its budget is 1 attempts) without a handler finishing")
    without ever running: 7 of 16 jobs in a run of 8 rounds."""
    a, b = server_factory(), server_factory()
    cls = Worker if flavour == "threads" else AsyncWorker
    worker = cls([url(a), url(b)], concurrency=1, grace=1)
    ran: list[tuple[str, int]] = []
    buried: list[FailureRecord] = []
    worker.on_bury(lambda message, record: buried.append(record))
    if isinstance(worker, AsyncWorker):

        @worker.handler("t", retries=0)
        async def handle_async(message: AsyncMessage) -> None:
            ran.append(message.ref)
            await asyncio.sleep(0)

    else:

        @worker.handler("t", retries=0)
        def handle(message: Message) -> None:
            ran.append(message.ref)

    def produce() -> None:
        clients = [Client(a.host, a.port), Client(b.host, b.port)]
        try:
            for n in range(ROUNDS):
                time.sleep(0.6)  # the slot has swept both (nothing) and waits on both
                barrier = threading.Barrier(2)

                putters = [threading.Thread(target=_put_at, args=(barrier, c, n)) for c in clients]
                for putter in putters:
                    putter.start()
                for putter in putters:
                    putter.join(WAIT)
        finally:
            for client in clients:
                client.close()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    stats = run_worker(worker, max_jobs=2 * ROUNDS)
    producer.join(WAIT)
    assert buried == [] and stats.crashed == 0, [r.summary() for r in buried]
    assert sorted(ran) == sorted({*ran}) and len(ran) == 2 * ROUNDS, ran  # each once
    assert stats.succeeded == 2 * ROUNDS, stats
