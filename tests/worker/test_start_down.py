"""A server down at the start (docs/worker.md, "A server down at the start"), both flavours, real
beanstalkd: a worker with at least as many slots as servers (one server per slot) starts with the
servers it reaches; the slots of a server that is down keep trying it (the usual pause, doubling to
2 s) and consume it once it is up. Only a worker that reaches no server at all raises ``SocketError``."""

from __future__ import annotations

import threading

import pytest

from beanstalkm import Client, SocketError, Worker
from beanstalkm.aio import AsyncWorker
from beanstalkm.testing import ServerFactory

from ._support import WAIT, url, wait_for
from .test_worker import FLAVOURS, register, run_worker


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("concurrency", [2, 3])
def test_a_server_down_at_the_start_is_joined_once_it_is_up(
    server_factory: ServerFactory, flavour: str, concurrency: int
) -> None:
    """Failed before the fix: run() raised SocketError at once (the CLI exited 3) and nothing was consumed."""
    up, down = server_factory(), server_factory()
    down.stop()
    with Client(up.host, up.port) as client:
        first = {m.uid for m in client.put_many([{"n": i} for i in range(3)], tube="t")}
    cls = Worker if flavour == "threads" else AsyncWorker
    worker = cls([url(up), url(down)], concurrency=concurrency, grace=1)
    done: list[tuple[int, int]] = []  # (port, job id)
    register(worker, "t", lambda m: done.append((int(m.server.rsplit(":", 1)[1]), m.uid)))

    def bring_up() -> None:  # once the first server's jobs are done, the second comes up with a job
        wait_for(lambda: len(done) >= 3, what="the reachable server's jobs")
        down.start()
        with Client(down.host, down.port) as late:
            late.put({"n": "late"}, tube="t")

    helper = threading.Thread(target=bring_up, daemon=True)
    helper.start()
    stats = run_worker(worker, max_jobs=4)
    helper.join(WAIT)
    assert sorted(uid for port, uid in done if port == up.port) == sorted(first)
    assert [port for port, _ in done].count(down.port) == 1  # the late server's job, consumed once up
    assert stats.succeeded == 4 and stats.connection_errors >= 1, stats


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_burst_with_a_server_down_consumes_the_others(server_factory: ServerFactory, flavour: str) -> None:
    up, down = server_factory(), server_factory()
    down.stop()
    with Client(up.host, up.port) as client:
        client.put_many([{"n": i} for i in range(3)], tube="t")
    cls = Worker if flavour == "threads" else AsyncWorker
    worker = cls([url(up), url(down)], concurrency=2, grace=1)
    register(worker, "t", lambda m: None)
    stats = run_worker(worker, burst=True)
    assert stats.succeeded == 3 and stats.connection_errors >= 1, stats


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_no_server_reachable_still_raises(server_factory: ServerFactory, flavour: str) -> None:
    a, b = server_factory(), server_factory()
    a.stop()
    b.stop()
    cls = Worker if flavour == "threads" else AsyncWorker
    worker = cls([url(a), url(b)], concurrency=2, grace=1)
    register(worker, "t", lambda m: None)
    with pytest.raises(SocketError):
        if isinstance(worker, AsyncWorker):
            run_worker(worker)
        else:
            worker.run(handle_signals=False)  # raises at once, in the caller's thread
