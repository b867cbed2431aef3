"""A reply that breaks the protocol in the middle of a worker's work: the reserve's, a job's ``stats-job``,
the delete of a job that ran. The client drops the connection for it (the stream cannot be trusted), so
the server takes back what that connection held, as for a lost connection. The slot counts a connection
error, reconnects after its pause and goes on: it must not end. A real server does not break the protocol
on demand, so a loopback proxy in front of a real beanstalkd rewrites one reply on its way back."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable

import pytest

from beanstalkm import Client, Message, Worker, WorkerStats
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer

from .test_connection_loss import CuttingProxy
from .test_worker import run_worker


class Once:
    """A rewrite of the server's bytes: the first match of ``pattern`` becomes ``broken`` (its groups
    filled in), once; every other byte passes unchanged. ``breaks`` counts the rewrites made."""

    def __init__(self, pattern: bytes, broken: bytes) -> None:
        self.pattern, self.broken, self.breaks = re.compile(pattern), broken, 0
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> bytes:
        with self._lock:
            if self.breaks:
                return data
            found = self.pattern.search(data)
            if found is None:
                return data
            self.breaks += 1
        return data[: found.start()] + found.expand(self.broken) + data[found.end() :]


def consume(flavour: str, port: int, runs: list[tuple[int, bool]], max_jobs: int, sleep: float = 0.0) -> WorkerStats:
    """A one-slot worker of ``t`` through the proxy on ``port``, until it has taken ``max_jobs`` jobs;
    ``runs`` gets each run's job id and whether the job was still reserved by the worker as it ran.
    Each handler then sleeps ``sleep`` seconds."""
    worker: Worker | AsyncWorker
    if flavour == "threads":
        worker = Worker(host="127.0.0.1", port=port)

        @worker.handler("t")
        def handle(message: Message) -> None:
            runs.append((message.uid, message.reserved))
            time.sleep(sleep)
    else:
        worker = AsyncWorker(host="127.0.0.1", port=port)

        @worker.handler("t")
        async def handle_async(message: AsyncMessage) -> None:
            runs.append((message.uid, message.reserved))
            await asyncio.sleep(sleep)

    return run_worker(worker, max_jobs=max_jobs)


def broken_once(
    server: BeanstalkdServer, flavour: str, jobs: int, rewrite: Callable[[list[int]], Once]
) -> tuple[Once, list[int], list[int], WorkerStats]:
    """Put ``jobs`` jobs in ``t``, consume them through a proxy breaking one reply (``rewrite(ids)``);
    the rewrite, the ids, the runs, the stats. Checks that nothing is left and nothing was copied."""
    with Client(server.host, server.port) as client:
        ids = [client.put({"n": n}, tube="t").uid for n in range(jobs)]
    once = rewrite(ids)
    proxy = CuttingProxy(server, b"", once)
    runs: list[tuple[int, bool]] = []
    try:
        stats = consume(flavour, proxy.port, runs, jobs)
    finally:
        proxy.close()
    with Client(server.host, server.port) as client:
        server_stats = client.queue.stats()
        assert server_stats.total_jobs == jobs  # no copy was ever put
        assert server_stats.current_jobs_ready == server_stats.current_jobs_reserved == 0  # nothing left
    assert all(reserved for _, reserved in runs)  # no job ran unreserved (another worker could have it)
    return once, ids, [uid for uid, _ in runs], stats


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_broken_reserve_reply_is_a_lost_connection_and_the_slot_goes_on(
    server: BeanstalkdServer, flavour: str
) -> None:
    def rewrite(ids: list[int]) -> Once:  # RESERVED <id> <size>: the size made no number
        return Once(rb"RESERVED %d (\d+)\r\n" % ids[0], rb"RESERVED %d x\1\r\n" % ids[0])

    once, ids, runs, stats = broken_once(server, flavour, 1, rewrite)
    assert once.breaks == 1
    assert runs == ids  # run once, after the server took the job back from the dropped connection
    assert stats.succeeded == 1 and stats.connection_errors >= 1


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_broken_stats_job_reply_is_a_lost_connection_and_the_slot_goes_on(
    server: BeanstalkdServer, flavour: str
) -> None:
    def rewrite(ids: list[int]) -> Once:  # the job's stats-job: OK <size> made no number
        return Once(rb"OK (\d+)\r\n---\nid: %d\n" % ids[0], rb"OK x\1\r\n---\nid: %d\n" % ids[0])

    once, ids, runs, stats = broken_once(server, flavour, 1, rewrite)
    assert once.breaks == 1
    assert runs == ids  # never run before its stats were read: once, on the next reserve
    assert stats.succeeded == 1 and stats.connection_errors >= 1


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_broken_delete_reply_after_a_run_is_a_lost_connection_and_the_slot_goes_on(
    server: BeanstalkdServer, flavour: str
) -> None:
    def rewrite(ids: list[int]) -> Once:  # the first delete's DELETED, with an argument it never has
        return Once(rb"DELETED\r\n", rb"DELETED 1\r\n")

    once, ids, runs, stats = broken_once(server, flavour, 2, rewrite)
    assert once.breaks == 1
    assert runs == ids  # the server did delete the first (only its reply broke): neither ran twice
    assert stats.connection_errors >= 1
    assert stats.succeeded == 1  # the second; the first's delete was left unknown, and logged so


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_delete_the_server_refuses_is_not_counted_done_and_the_job_runs_again(
    server: BeanstalkdServer, flavour: str
) -> None:
    """A framed failure (``INTERNAL_ERROR``) keeps the connection; the job stays reserved, so its time to
    run (1 s) runs out and it runs again: at least once, never counted done when it was not deleted."""
    with Client(server.host, server.port) as client:
        job = client.put({"n": 0}, tube="t", ttr=1).uid
    refused = 0

    def refuse(data: bytes) -> tuple[bytes, bytes]:  # the first delete is kept from the server and refused
        nonlocal refused
        command = b"delete %d\r\n" % job
        if refused or command not in data:
            return data, b""
        refused += 1
        return data.replace(command, b"", 1), b"INTERNAL_ERROR\r\n"

    proxy = CuttingProxy(server, b"", intercept=refuse)
    runs: list[tuple[int, bool]] = []
    try:
        stats = consume(flavour, proxy.port, runs, 2)
    finally:
        proxy.close()
    assert refused == 1
    assert runs == [(job, True), (job, True)]  # refused, then again after its TTR: each run reserved
    assert stats.succeeded == 1 and stats.connection_errors == 0  # only the delete that was done
    with Client(server.host, server.port) as client:
        assert client.queue.stats().current_jobs_ready == client.queue.stats().current_jobs_reserved == 0


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_touch_the_server_refuses_is_tried_again_after_a_pause_not_at_once(
    server: BeanstalkdServer, flavour: str
) -> None:
    """Every touch is kept from the server and refused (``INTERNAL_ERROR``): the keeper tries again after
    an eighth of the TTR (0.25 s here), not in a loop (it sent hundreds a second before)."""
    with Client(server.host, server.port) as client:
        job = client.put({"n": 0}, tube="t", ttr=2).uid
    refused = 0

    def refuse(data: bytes) -> tuple[bytes, bytes]:
        nonlocal refused
        command = b"touch %d\r\n" % job
        if command not in data:
            return data, b""
        refused += data.count(command)
        return data.replace(command, b""), b"INTERNAL_ERROR\r\n" * data.count(command)

    proxy = CuttingProxy(server, b"", intercept=refuse)
    try:  # the handler runs 2.5 s, past half its TTR: its touches are due from 1 s on
        stats = consume(flavour, proxy.port, [], 1, sleep=2.5)
    finally:
        proxy.close()
    assert 2 <= refused <= 12  # due at 1 s, then every 0.25 s until the handler ends at 2.5 s
    assert stats.touches == 0
