"""The worker in process, both flavours where both exist, against real beanstalkd servers: the lease
keeper, lost leases (NOT_FOUND on touch, a lost connection), bodies that cannot be used, fairness
between tubes, per-tube limits, max_jobs, RetryAfter/BuryJob, a kick's fresh budget, hooks, stats,
bad arguments."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import beanstalkm
from beanstalkm import (
    ArgumentTypeError,
    BuryJob,
    Client,
    FailureRecord,
    InvalidArgument,
    LeaseLost,
    Message,
    RetryAfter,
    SocketError,
    Worker,
    WorkerStats,
)
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import WAIT, wait_for

FLAVOURS = ["threads", "tasks"]


def run_worker(worker: Worker | AsyncWorker, **kwargs: Any) -> WorkerStats:
    """``worker.run(**kwargs)`` without signal handlers, bounded by WAIT."""
    if isinstance(worker, AsyncWorker):

        async def go() -> WorkerStats:
            async with asyncio.timeout(WAIT):
                return await worker.run(handle_signals=False, **kwargs)

        return asyncio.run(go())
    box: list[WorkerStats] = []
    thread = threading.Thread(target=lambda: box.append(worker.run(handle_signals=False, **kwargs)), daemon=True)
    thread.start()
    thread.join(WAIT)
    assert box, "the worker did not return"
    return box[0]


def make_worker(flavour: str, server: BeanstalkdServer, **kwargs: Any) -> Worker | AsyncWorker:
    cls = Worker if flavour == "threads" else AsyncWorker
    return cls(host=server.host, port=server.port, **kwargs)


def register(
    worker: Worker | AsyncWorker, tube: str, body: Callable[[Any], None], sleep: float = 0.0, **options: Any
) -> None:
    """A handler for ``tube`` in the worker's flavour: sleeps ``sleep`` s, then calls ``body(message)``."""
    if isinstance(worker, AsyncWorker):

        @worker.handler(tube, **options)
        async def handle_async(message: AsyncMessage) -> None:
            await asyncio.sleep(sleep)
            body(message)

    else:

        @worker.handler(tube, **options)
        def handle(message: Message) -> None:
            time.sleep(sleep)
            body(message)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_lease_keeper_touches_a_job_running_past_its_ttr(server: BeanstalkdServer, flavour: str) -> None:
    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="long", ttr=1).uid
        worker = make_worker(flavour, server)
        seen: list[int] = []
        register(worker, "long", lambda m: seen.append(m.uid), sleep=2.6)
        stats = run_worker(worker, burst=True)
        assert seen == [job] and client.queue.peek(job) is None
        assert (stats.succeeded, stats.lease_lost, stats.retried) == (1, 0, 0)
        assert stats.touches >= 4  # every half TTR
        assert client.queue.stats().job_timeouts == 0
        assert stats.durations["long"].count == 1 and stats.durations["long"].max >= 2.6


def test_a_lost_connection_mid_job_is_counted_lost_and_never_deleted(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(binlog_dir=str(tmp_path / "binlog"))
    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="t", ttr=2, priority=9).uid
    worker = Worker(host=server.host, port=server.port)
    flags: list[bool] = []
    lost: list[LeaseLost] = []
    worker.on_lease_lost(lambda message, error: lost.append(error))

    @worker.handler("t")
    def handle(message: Message) -> None:
        server.kill()  # the server dies under the running handler, and comes back from its binlog
        server.start()
        wait_for(lambda: message.lease_lost, timeout=10, what="the keeper to see the lease lost")
        flags.append(message.lease_lost)

    stats = run_worker(worker, max_jobs=1)
    assert flags == [True] and stats.lease_lost == 1 and stats.succeeded == 0
    assert [e.job_id for e in lost] == [job] and "connection" in lost[0].why
    with Client(server.host, server.port) as client:
        after = client.queue.stats_job(job)
        assert (after.state, after.pri) == ("ready", 9)  # not deleted on the new connection


def test_a_lease_lost_to_ttr_expiry_is_never_settled(server: BeanstalkdServer) -> None:
    """A touch answered NOT_FOUND: the job timed out (the server was frozen past its TTR) and another
    client holds it now; the worker neither deletes nor releases it."""
    with Client(server.host, server.port) as client, Client(server.host, server.port) as other:
        other.watch("t")
        job = client.put({"n": 1}, tube="t", ttr=1).uid
        worker = Worker(host=server.host, port=server.port)
        taken = threading.Event()
        held: list[Message] = []

        @worker.handler("t")
        def handle(message: Message) -> None:
            server.pause()
            time.sleep(2.2)  # past the TTR: on resume the server times the job out
            server.resume()
            wait_for(lambda: message.lease_lost, timeout=10, what="the keeper's touch to get NOT_FOUND")
            got = other.reserve(timeout=5, drop=False)
            assert got is not None
            held.append(got)
            taken.set()

        stats = run_worker(worker, max_jobs=1)
        assert taken.is_set() and held[0].uid == job
        assert stats.lease_lost == 1 and stats.succeeded == 0
        held[0].touch()  # still ours: the worker did not delete or release it
        assert other.queue.stats_job(job).state == "reserved"
        assert other.queue.stats_job(job).timeouts == 1
        held[0].delete()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_invalid_envelope_is_buried_with_a_record_never_run(server: BeanstalkdServer, flavour: str) -> None:
    with Client(server.host, server.port) as client:
        client.queue.use("t")
        bad = client.queue.put(b'{"@context": "message", "body": 1}', priority=5)
        good = client.put({"ok": True}, tube="t", priority=6).uid
        worker = make_worker(flavour, server, validate=True)
        seen: list[int] = []
        buried: list[FailureRecord] = []
        worker.on_bury(lambda message, record: buried.append(record))
        register(worker, "t", lambda m: seen.append(m.uid))
        stats = run_worker(worker, burst=True)
        assert seen == [good] and (stats.invalid, stats.buried) == (1, 1)
        after = client.queue.stats_job(bad)
        assert (after.state, after.pri, after.reserves) == ("buried", 5, 1)  # not deleted, not hot-looped
        [record] = buried
        assert (record.job_id, record.reason, record.exception) == (bad, "invalid", "InvalidEnvelope")
        assert "invalid envelope" in record.message


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_urgent_flood_in_one_tube_does_not_starve_another(server: BeanstalkdServer, flavour: str) -> None:
    with Client(server.host, server.port) as client:
        client.put_many([{"t": "flood"}] * 200, tube="flood", priority=0)
        client.put_many([{"t": "calm"}] * 20, tube="calm", priority=2**31)
        worker = make_worker(flavour, server)
        order: list[str] = []
        register(worker, "flood", lambda m: order.append("flood"))
        register(worker, "calm", lambda m: order.append("calm"))
        run_worker(worker, max_jobs=40)
        assert len(order) == 40 and order.count("calm") >= 15, order


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_tube_limit_bounds_its_jobs_at_once(server: BeanstalkdServer, flavour: str) -> None:
    with Client(server.host, server.port) as client:
        client.put_many([{}] * 6, tube="one")
        client.put_many([{}] * 12, tube="many")
        worker = make_worker(flavour, server, concurrency=4)
        now = {"one": 0, "many": 0}
        peak = {"one": 0, "many": 0}
        lock = threading.Lock()

        def leave(tube: str) -> Callable[[Any], None]:
            def body(message: Any) -> None:
                with lock:
                    now[tube] -= 1

            return body

        def counting(tube: str, sleep: float) -> None:
            def start(message: Any) -> None:
                with lock:
                    now[tube] += 1
                    peak[tube] = max(peak[tube], now[tube])

            if isinstance(worker, AsyncWorker):

                @worker.handler(tube, limit=1 if tube == "one" else None)
                async def handle_async(message: AsyncMessage) -> None:
                    start(message)
                    await asyncio.sleep(sleep)
                    leave(tube)(message)

            else:

                @worker.handler(tube, limit=1 if tube == "one" else None)
                def handle(message: Message) -> None:
                    start(message)
                    time.sleep(sleep)
                    leave(tube)(message)

        counting("one", 0.05)
        counting("many", 0.05)
        stats = run_worker(worker, burst=True)
        assert stats.succeeded == 18
        assert peak["one"] == 1 and peak["many"] >= 2


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_max_jobs_takes_exactly_that_many(server: BeanstalkdServer, flavour: str) -> None:
    with Client(server.host, server.port) as client:
        client.put_many([{}] * 20, tube="t")
        worker = make_worker(flavour, server, concurrency=3)
        register(worker, "t", lambda m: None)
        stats = run_worker(worker, max_jobs=7)
        assert (stats.reserved, stats.succeeded) == (7, 7)
        assert client.queue.stats_tube("t").current_jobs_ready == 13


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_retry_after_and_bury_job(server: BeanstalkdServer, flavour: str) -> None:
    with Client(server.host, server.port) as client:
        later = client.put({"do": "later"}, tube="t", priority=3).uid
        bury = client.put({"do": "bury"}, tube="t", priority=4).uid
        worker = make_worker(flavour, server)
        retries: list[int] = []
        worker.on_retry(lambda message, error, delay: retries.append(delay))

        def body(message: Any) -> None:
            if message.body["do"] == "later":
                raise RetryAfter(30, "not yet")
            raise BuryJob("cannot ever work")

        register(worker, "t", body, retries=5)
        stats = run_worker(worker, burst=True)
        assert retries == [30] and (stats.retried, stats.buried, stats.failed) == (1, 1, 2)
        delayed = client.queue.stats_job(later)
        assert (delayed.state, delayed.delay, delayed.pri) == ("delayed", 30, 3)
        buried = client.queue.stats_job(bury)
        assert (buried.state, buried.pri) == ("buried", 4)
        [record] = worker.failures("t") if isinstance(worker, Worker) else asyncio.run(worker.failures("t"))
        assert (record.job_id, record.reason, record.message, record.state) == (
            bury,
            "requested",
            "cannot ever work",
            "buried",
        )


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(("seconds", "delay"), [(2, 2), (2.5, 3), (2.0000000001, 3), (0.2, 1), (0, 0)])
def test_retry_after_rounds_up_to_whole_seconds(
    server: BeanstalkdServer, flavour: str, seconds: float, delay: int
) -> None:
    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="t").uid
        worker = make_worker(flavour, server)
        asked: list[int] = []
        worker.on_retry(lambda message, error, given: asked.append(given))

        def body(message: Any) -> None:
            raise RetryAfter(seconds)

        register(worker, "t", body, retries=5)
        assert run_worker(worker, max_jobs=1).retried == 1
        assert asked == [delay]
        stats = client.queue.stats_job(job)
        assert (stats.state, stats.delay) == ("delayed" if delay else "ready", delay)


def test_a_kicked_job_gets_a_fresh_budget_and_its_record_goes_on_success(server: BeanstalkdServer) -> None:
    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="t").uid
        attempts: list[int] = []
        fail = [True]

        def body(message: Any) -> None:
            attempts.append(message.uid)
            if fail[0]:
                raise ValueError("down")

        worker = Worker(host=server.host, port=server.port)
        register(worker, "t", body, retries=1, backoff=[0])
        run_worker(worker, burst=True)
        assert len(attempts) == 2 and client.queue.stats_job(job).state == "buried"
        [record] = worker.failures("t")
        assert (record.attempts, record.reserves, record.kicks) == (2, 2, 0)
        client.queue.kick_job(job)
        fail[0] = False
        stats = run_worker(worker, burst=True)
        assert stats.succeeded == 1 and client.queue.peek(job) is None
        assert worker.failures("t") == []  # the record went with the job
        assert not [t for t in client.queue.list_tubes() if ".failed." in t]


def test_bad_arguments_are_refused_before_anything_runs(server: BeanstalkdServer) -> None:
    worker = Worker(host=server.host, port=server.port)
    with pytest.raises(InvalidArgument, match="tube"):
        worker.handler("bad tube!")
    with pytest.raises(InvalidArgument, match="retries"):
        worker.handler("t", retries=-1)
    with pytest.raises(InvalidArgument, match="backoff"):
        worker.handler("t", backoff=[])
    with pytest.raises(ArgumentTypeError, match="backoff"):
        worker.handler("t", backoff="1,2")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="backoff"):
        worker.handler("t", backoff=[1, -2])
    with pytest.raises(InvalidArgument, match="limit"):
        worker.handler("t", limit=0)
    with pytest.raises(InvalidArgument, match="concurrency"):
        Worker(concurrency=0)
    with pytest.raises(InvalidArgument, match="grace"):
        Worker(grace=-1)
    with pytest.raises(ArgumentTypeError, match="source"):
        Worker(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="unknown scheme"):
        Worker("http://127.0.0.1:11300")
    with pytest.raises(InvalidArgument, match="port"):
        Worker(port=0)
    with pytest.raises(InvalidArgument, match="seconds"):
        RetryAfter(-1)
    with pytest.raises(InvalidArgument, match="handler"):
        worker.run()
    worker.handler("t")(lambda m: None)
    with pytest.raises(InvalidArgument, match="already has a handler"):
        worker.handler("t")
    with pytest.raises(InvalidArgument, match="max_jobs"):
        worker.run(max_jobs=0)
    two = Worker(["beanstalk://127.0.0.1:1", "beanstalk://127.0.0.1:2"], concurrency=1)  # one slot, both servers
    two.handler("t")(lambda m: None)
    with pytest.raises(SocketError):  # neither answers
        two.run()


def test_no_server_reachable_raises_socket_error(server: BeanstalkdServer) -> None:
    port = server.port
    server.stop()
    worker = Worker(host="127.0.0.1", port=port)
    worker.handler("t")(lambda m: None)
    with pytest.raises(SocketError):
        worker.run()
    async_worker = AsyncWorker(host="127.0.0.1", port=port)

    @async_worker.handler("t")
    async def handle(message: AsyncMessage) -> None:
        pass

    with pytest.raises(SocketError):
        asyncio.run(async_worker.run(handle_signals=False))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_urls_and_a_cluster_spread_the_slots_over_the_servers(server_factory: ServerFactory, flavour: str) -> None:
    servers = [server_factory(), server_factory()]
    urls = [f"beanstalk://{s.host}:{s.port}" for s in servers]
    for srv in servers:
        with Client(srv.host, srv.port) as client:
            client.put_many([{}] * 10, tube="t")  # 2 per server per source
    if flavour == "threads":
        sources: list[Any] = [urls, ",".join(urls), beanstalkm.Cluster(urls)]
    else:
        sources = [urls, beanstalkm.aio.AsyncCluster(urls)]
    for source in sources:
        worker = Worker(source, concurrency=2) if flavour == "threads" else AsyncWorker(source, concurrency=2)
        register(worker, "t", lambda m: None, sleep=0.05)
        before = [_deletes(s) for s in servers]
        run_worker(worker, max_jobs=4)
        after = [_deletes(s) for s in servers]
        assert [b - a for a, b in zip(before, after, strict=True)] == [2, 2], source  # one slot per server


def _deletes(server: BeanstalkdServer) -> int:
    with Client(server.host, server.port) as client:
        return client.queue.stats_tube("t").cmd_delete


def test_a_failing_hook_is_counted_and_the_job_still_done(server: BeanstalkdServer) -> None:
    with Client(server.host, server.port) as client:
        job = client.put({}, tube="t").uid
        worker = Worker(host=server.host, port=server.port)

        def hook(message: Message) -> None:
            raise RuntimeError("hook bug")

        worker.on_success(hook)
        register(worker, "t", lambda m: None)
        stats = run_worker(worker, burst=True)
        assert (stats.succeeded, stats.hook_errors) == (1, 1) and client.queue.peek(job) is None


def test_public_names() -> None:
    assert beanstalkm.Worker is Worker and beanstalkm.aio.AsyncWorker is AsyncWorker
    for name in ("FailureRecord", "WorkerStats", "LeaseLost", "RetryAfter", "BuryJob", "DurationStats"):
        assert name in beanstalkm.__all__ and getattr(beanstalkm, name).__module__ == "beanstalkm"
