"""Fewer slots than servers: each slot reserves across the servers of its share (one connection to each),
both flavours, in process and through the real ``beanstalkm worker`` command. Every server's jobs are
processed exactly once; a slot's servers are asked in turn (no server starves); a server killed
mid-run leaves the others consumed and is rejoined once it is back (its jobs restored from its
binlog); SIGTERM still releases the running job at its own priority and exits 0."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from beanstalkm import Client, Cluster, FailureRecord, Message, NotFound, SocketError, Worker
from beanstalkm.aio import AsyncCluster, AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import FLAVOUR_IDS, FLAVOURS, WAIT, Workers, read_runlog, url, wait_for
from .test_worker import run_worker

PER_SERVER = 12


def _ready_and_reserved(server: BeanstalkdServer, tube: str) -> int:
    """The jobs left in ``tube`` on ``server`` (ready, reserved or delayed); 0 once the tube is gone."""
    with Client(server.host, server.port) as client:
        try:
            stats = client.queue.stats_tube(tube)
        except NotFound:  # an empty tube nobody watches is gone
            return 0
        return stats.current_jobs_ready + stats.current_jobs_reserved + stats.current_jobs_delayed


def _servers_with_jobs(
    server_factory: ServerFactory, count: int, per_server: int
) -> tuple[list[BeanstalkdServer], list[str]]:
    """``count`` servers with ``per_server`` jobs each in tube ``t`` (the same ids on each), and their URLs."""
    servers = [server_factory() for _ in range(count)]
    for srv in servers:
        with Client(srv.host, srv.port) as client:
            client.put_many([{"n": n} for n in range(per_server)], tube="t")
    return servers, [url(s) for s in servers]


def _count_servers(worker: Worker | AsyncWorker) -> Counter[str]:
    """A handler for ``t`` in the worker's flavour counting the jobs of each server; the counter."""
    seen: Counter[str] = Counter()
    if isinstance(worker, Worker):
        worker.handler("t")(lambda message: seen.update([message.server]))
    else:

        @worker.handler("t")
        async def handle(message: AsyncMessage) -> None:
            seen.update([message.server])

    return seen


@pytest.mark.parametrize("concurrency", [1, 2])
@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_every_servers_jobs_are_processed_exactly_once(
    server_factory: ServerFactory, flavour: str, concurrency: int
) -> None:
    servers = [server_factory() for _ in range(3)]
    urls = [url(s) for s in servers]
    for srv in servers:  # the same ids on every server: a job is (server, id)
        with Client(srv.host, srv.port) as client:
            client.put_many([{"n": n} for n in range(PER_SERVER)], tube="t")
    refs: list[tuple[str, int]] = []
    worker: Worker | AsyncWorker
    if flavour == "threads":
        worker = Worker(urls, concurrency=concurrency)

        @worker.handler("t")
        def handle(message: Message) -> None:
            refs.append(message.ref)
    else:
        worker = AsyncWorker(urls, concurrency=concurrency)

        @worker.handler("t")
        async def handle_async(message: AsyncMessage) -> None:
            refs.append(message.ref)

    stats = run_worker(worker, burst=True)
    assert stats.succeeded == 3 * PER_SERVER and stats.connection_errors == 0
    assert sorted(refs) == sorted((u, uid) for u in urls for uid in range(1, PER_SERVER + 1))  # once each
    assert all(_ready_and_reserved(s, "t") == 0 for s in servers)
    if concurrency == 1:  # one slot, three servers, all of them full: asked in turn
        assert [urls.index(server) for server, _ in refs[:9]] == [0, 1, 2] * 3


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_cluster_of_three_servers_with_one_slot(server_factory: ServerFactory, flavour: str) -> None:
    _, urls = _servers_with_jobs(server_factory, 3, 3)
    source: Any = Cluster(urls) if flavour == "threads" else AsyncCluster(urls)
    worker = Worker(source) if flavour == "threads" else AsyncWorker(source)
    seen = _count_servers(worker)
    assert run_worker(worker, burst=True).succeeded == 9
    assert seen == Counter(dict.fromkeys(urls, 3))


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_urls_given_by_configure_replace_host_and_port(server_factory: ServerFactory, flavour: str) -> None:
    """``configure(source=urls)`` on a worker made with ``host``/``port`` (as ``beanstalkm worker -s`` does):
    its one slot still reserves from every server of the list, none left unconsumed."""
    servers, urls = _servers_with_jobs(server_factory, 3, 3)
    cls = Worker if flavour == "threads" else AsyncWorker
    worker = cls(host=servers[0].host, port=servers[0].port)
    seen = _count_servers(worker)
    worker.configure(source=urls)
    assert run_worker(worker, burst=True).succeeded == 9
    assert seen == Counter(dict.fromkeys(urls, 3))
    assert all(_ready_and_reserved(s, "t") == 0 for s in servers)


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_failures_reads_every_servers_records(server_factory: ServerFactory, flavour: str) -> None:
    """``worker.failures(tube)`` with several servers: each server's records (the same job ids on
    each), every record naming its server; a server down is an error, never a silent half answer."""
    servers, urls = _servers_with_jobs(server_factory, 2, 2)
    worker: Worker | AsyncWorker
    if flavour == "threads":
        worker = Worker(urls, concurrency=1)

        @worker.handler("t", retries=0)
        def handle(message: Message) -> None:
            raise ValueError(f"bad {message.uid}")
    else:
        worker = AsyncWorker(urls, concurrency=1)

        @worker.handler("t", retries=0)
        async def handle_async(message: AsyncMessage) -> None:
            raise ValueError(f"bad {message.uid}")

    assert run_worker(worker, burst=True).buried == 4

    def failures() -> list[FailureRecord]:
        return worker.failures("t") if isinstance(worker, Worker) else asyncio.run(worker.failures("t"))

    records = failures()
    assert [(r.server, r.job_id, r.state, r.message) for r in records] == [
        (u, uid, "buried", f"bad {uid}") for u in urls for uid in (1, 2)
    ]
    servers[1].stop()
    with pytest.raises(SocketError):
        failures()


def _put_soak(servers: list[BeanstalkdServer], per_server: int, sleep: float) -> dict[int, int]:
    """``per_server`` soak jobs on each server, ids unique across them in their bodies; body id -> server index."""
    where: dict[int, int] = {}
    for i, srv in enumerate(servers):
        ids = [i * 1000 + n for n in range(per_server)]
        with Client(srv.host, srv.port) as client:
            client.put_many([{"id": job, "sleep": sleep} for job in ids], tube="soak")
        where.update(dict.fromkeys(ids, i))
    return where


@pytest.mark.parametrize("concurrency", [1, 2])
@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
def test_the_cli_worker_with_fewer_slots_than_servers(
    server_factory: ServerFactory, workers: Workers, tmp_path: Path, flavour: str, concurrency: int
) -> None:
    servers = [server_factory() for _ in range(3)]
    where = _put_soak(servers, 20, 0.0)
    runlog = tmp_path / "run.log"
    args = [arg for s in servers for arg in ("-s", url(s))] + ["-c", str(concurrency), "--burst"]
    proc = workers.start(f"worker._apps:soak{flavour}", args, runlog)
    assert proc.wait(WAIT) == 0, workers.logs()
    run = read_runlog(runlog)
    assert {job: len(ends) for job, ends in run.ends.items()} == dict.fromkeys(where, 1)
    assert {job: len(starts) for job, starts in run.starts.items()} == dict.fromkeys(where, 1)
    assert all(_ready_and_reserved(s, "soak") == 0 for s in servers)


@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
def test_a_server_killed_mid_run_is_rejoined_and_the_others_keep_being_consumed(
    server_factory: ServerFactory, workers: Workers, tmp_path: Path, flavour: str
) -> None:
    servers = [server_factory(binlog_dir=str(tmp_path / f"binlog{i}")) for i in range(3)]
    where = _put_soak(servers, 30, 0.03)
    runlog = tmp_path / "run.log"
    args = [arg for s in servers for arg in ("-s", url(s))] + ["-c", "1", "--log-level", "WARNING"]
    proc = workers.start(f"worker._apps:soak{flavour}", args, runlog)

    def ended() -> set[int]:
        return set(read_runlog(runlog).ends)

    wait_for(lambda: len(ended()) >= 15, what="15 jobs done")
    servers[2].kill()  # its connection is lost mid-run; its jobs wait in its binlog
    before = ended()
    wait_for(lambda: len(ended() - before) >= 12, what="the other servers' jobs while one is down")
    assert {where[job] for job in ended() - before} <= {0, 1}
    assert proc.poll() is None
    servers[2].start()  # back from its binlog: the slot's lane to it reconnects
    wait_for(lambda: ended() == set(where), what="every job, the restored server's included")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(WAIT) == 0, workers.logs()
    run = read_runlog(runlog)
    twice = {job: len(ends) for job, ends in run.ends.items() if len(ends) > 1}
    assert all(where[job] == 2 for job in twice) and len(twice) <= 1, twice  # only the one in flight at the kill
    assert all(_ready_and_reserved(s, "soak") == 0 for s in servers)
    assert "trying it again" in workers.logs()


@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
def test_sigterm_releases_the_running_job_of_a_slot_with_several_servers(
    server_factory: ServerFactory, workers: Workers, tmp_path: Path, flavour: str
) -> None:
    servers = [server_factory() for _ in range(3)]
    for i, srv in enumerate(servers):
        with Client(srv.host, srv.port) as client:
            client.put({"sleep": 60}, tube="slow", priority=40 + i)
    runlog = tmp_path / "run.log"
    args = [arg for s in servers for arg in ("-s", url(s))] + ["-c", "1", "--grace", "1"]
    proc = workers.start(f"worker._apps:slow{flavour}", args, runlog)
    wait_for(lambda: len(read_runlog(runlog).starts) == 1, what="one handler running")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(WAIT) == 0, workers.logs()
    states = []
    for i, srv in enumerate(servers):
        with Client(srv.host, srv.port) as client:
            stats = client.queue.stats_job(1)
            assert (stats.state, stats.pri, stats.timeouts) == ("ready", 40 + i, 0)
            states.append((stats.reserves, stats.releases))
    assert sorted(states) == [(0, 0), (0, 0), (1, 1)]  # the running one released, the others never taken
    assert "released unfinished" in workers.logs()


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_slot_starts_with_the_servers_it_reaches(
    server_factory: ServerFactory, flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    servers = [server_factory() for _ in range(2)]
    for srv in servers:
        with Client(srv.host, srv.port) as client:
            client.put_many([{"n": n} for n in range(3)], tube="t")
    urls = [url(servers[0]), "beanstalk://127.0.0.1:1", url(servers[1])]  # nothing listens on port 1
    worker: Worker | AsyncWorker = Worker(urls) if flavour == "threads" else AsyncWorker(urls)
    if isinstance(worker, Worker):
        worker.handler("t")(lambda message: None)
    else:

        @worker.handler("t")
        async def handle(message: AsyncMessage) -> None:
            pass

    with caplog.at_level("WARNING", logger="beanstalkm.worker"):
        stats = run_worker(worker, burst=True)
    assert stats.succeeded == 6 and stats.connection_errors >= 1
    assert "127.0.0.1:1" in caplog.text and "trying it again" in caplog.text
