"""A command the server refuses while a slot settles or prepares a job (docs/worker.md, "Delivery
guarantee"): a release answered ``BURIED`` (beanstalkd buries a released job it has no memory to queue
again), a bury answered ``INTERNAL_ERROR``, a job's ``stats-job`` answered ``INTERNAL_ERROR``. The slot
goes on; none of these may end the worker. A real server does not refuse on demand, so a loopback proxy in
front of a real beanstalkd rewrites the one command (or answers it)."""

from __future__ import annotations

import asyncio
import re

import pytest

from beanstalkm import Client, Message, Worker, WorkerStats
from beanstalkm._sync.failures import list_records
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer

from .test_connection_loss import CuttingProxy
from .test_worker import FLAVOURS, run_worker


class First:
    """An intercept of what the client writes: the first ``times`` commands matching ``pattern`` (each
    alone in its write) are forwarded as ``instead`` (its groups filled in), or, with ``answer``, kept from
    the server and answered so."""

    def __init__(self, pattern: bytes, instead: bytes = b"", answer: bytes = b"", times: int = 1) -> None:
        self.pattern, self.instead, self.answer, self.done = re.compile(pattern), instead, answer, 0
        self.times = times

    def __call__(self, data: bytes) -> tuple[bytes, bytes]:
        found = None if self.done >= self.times else self.pattern.fullmatch(data)
        if found is None:
            return data, b""
        self.done += 1
        return data[: found.start()] + found.expand(self.instead) + data[found.end() :], self.answer


def consume(
    flavour: str, port: int, tubes: list[str], fail: set[int], max_jobs: int, runs: list[int], retries: int = 0
) -> tuple[Worker | AsyncWorker, WorkerStats]:
    """A one-slot worker of ``tubes`` through the proxy on ``port``; a job whose id is in ``fail`` raises."""
    worker: Worker | AsyncWorker = (Worker if flavour == "threads" else AsyncWorker)(
        host="127.0.0.1", port=port, grace=1
    )
    for tube in tubes:
        if isinstance(worker, AsyncWorker):

            @worker.handler(tube, retries=retries, backoff=[0])
            async def handle_async(message: AsyncMessage) -> None:
                runs.append(message.uid)
                await asyncio.sleep(0)
                if message.uid in fail:
                    raise ValueError("fails")

        else:

            @worker.handler(tube, retries=retries, backoff=[0])
            def handle(message: Message) -> None:
                runs.append(message.uid)
                if message.uid in fail:
                    raise ValueError("fails")

    return worker, run_worker(worker, max_jobs=max_jobs)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_release_the_server_answers_buried_is_counted_buried_and_the_slot_goes_on(
    server: BeanstalkdServer, flavour: str
) -> None:
    """The failed job's release is forwarded as a bury (what beanstalkd does to a released job it has no
    memory for, answering ``BURIED``). Failed before the fix: ``Buried`` ended the slot and the worker
    (``run`` raised it, the CLI exited 1) with the other jobs left ready."""
    with Client(server.host, server.port) as client:
        ids = [client.put({"n": n}, tube="t", priority=20 + n).uid for n in range(3)]
    release = First(rb"release %d (\d+) \d+\r\n" % ids[0], rb"bury %d \1\r\n" % ids[0])
    proxy = CuttingProxy(server, b"", intercept=release)
    runs: list[int] = []
    try:
        _, stats = consume(flavour, proxy.port, ["t"], {ids[0]}, 3, runs, retries=3)
    finally:
        proxy.close()
    assert release.done == 1 and runs == ids, runs
    assert (stats.failed, stats.retried, stats.buried, stats.succeeded) == (1, 0, 1, 2), stats
    with Client(server.host, server.port) as client:
        job = client.queue.stats_job(ids[0])
        assert (job.state, job.pri) == ("buried", 20)
        assert client.queue.stats().current_jobs_ready == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_bury_the_server_refuses_leaves_no_record_and_the_job_runs_out_its_ttr(
    server: BeanstalkdServer, flavour: str
) -> None:
    """The first bury is answered ``INTERNAL_ERROR`` (not buried: still reserved by the slot). Its record,
    stored just before, is deleted; the job comes back after its TTR (1 s) and, past its budget, is buried
    as ``crashed`` with the one record. Failed before the fix: ``InternalError`` ended the slot and the worker."""
    with Client(server.host, server.port) as client:
        ids = [client.put({"n": n}, tube="t", ttr=1).uid for n in range(3)]
    bury = First(rb"bury %d \d+\r\n" % ids[0], answer=b"INTERNAL_ERROR\r\n")
    proxy = CuttingProxy(server, b"", intercept=bury)
    runs: list[int] = []
    try:
        _, stats = consume(flavour, proxy.port, ["t"], {ids[0]}, 4, runs)
    finally:
        proxy.close()
    assert bury.done == 1 and runs == ids, runs  # run once: the second time it was buried unrun (crashed)
    assert (stats.failed, stats.buried, stats.crashed, stats.succeeded) == (1, 1, 1, 2), stats
    with Client(server.host, server.port) as client:
        assert client.queue.stats_job(ids[0]).state == "buried"
        found = list_records(client, "t")
    assert [(r.job_id, r.reason) for r in found] == [(ids[0], "crashed")]  # no record left of the refused bury


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_stats_job_the_server_refuses_releases_the_job_unrun_and_the_slot_goes_on(
    server: BeanstalkdServer, flavour: str
) -> None:
    """Two tubes (each polled apart, so a job's ``stats-job`` is asked on its own): its first two are
    answered ``INTERNAL_ERROR`` (the one asked with the reserve, and the one the slot asks again before
    the run). The job is released unrun (that counts an attempt: ``reserves``), the slot pauses, then
    runs it. Failed before the fix:
    ``InternalError`` ended the slot and the worker, the job left reserved until its TTR."""
    with Client(server.host, server.port) as client:
        ids = [client.put({"n": n}, tube="t").uid for n in range(2)]
    refuse = First(rb"stats-job %d\r\n" % ids[0], answer=b"INTERNAL_ERROR\r\n", times=2)
    proxy = CuttingProxy(server, b"", intercept=refuse)
    runs: list[int] = []
    try:
        _, stats = consume(flavour, proxy.port, ["t", "u"], set(), 2, runs, retries=3)
    finally:
        proxy.close()
    assert refuse.done == 2 and sorted(runs) == ids, runs
    assert stats.succeeded == 2 and stats.connection_errors == 1, stats
    with Client(server.host, server.port) as client:
        assert client.queue.stats().current_jobs_ready == client.queue.stats().current_jobs_reserved == 0
