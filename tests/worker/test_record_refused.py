"""A failure record the server refuses (docs/worker.md, "A record the server refuses"), both flavours,
real beanstalkd: a draining server (SIGUSR1: it refuses every put, serves the rest) or an error text
bigger than the server's max-job-size. The job is buried all the same (without its record, or with the
record cut to fit), the slot goes on with the other jobs, and a slot that does end on an exception makes
``run()`` raise it (the CLI exits 1) instead of returning as if the work were done."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from typing import Any

import pytest

from beanstalkm import Client, FailureRecord, Worker
from beanstalkm._core.worker import record_tube
from beanstalkm.aio import AsyncWorker
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import WAIT, Workers, url
from .test_worker import FLAVOURS, make_worker, register, run_worker


def _poison_and_good(client: Client) -> tuple[int, list[int]]:
    bad = client.put({"n": "poison"}, tube="t", priority=9).uid
    good = [m.uid for m in client.put_many([{"n": i} for i in range(5)], tube="t", priority=100)]
    return bad, good


def _raise_for_poison(text: str) -> Any:
    def body(message: Any) -> None:
        if message.body["n"] == "poison":
            raise ValueError(text)

    return body


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_draining_server_buries_the_job_without_its_record(server: BeanstalkdServer, flavour: str) -> None:
    """Failed before the fix: the record's put got DRAINING, the slot died, run() returned at once with
    {'reserved': 1, 'failed': 1}, none of the good jobs ran and the poison job stayed reserved."""
    with Client(server.host, server.port) as client:
        bad, good = _poison_and_good(client)
        server.signal(signal.SIGUSR1)
        deadline = time.monotonic() + WAIT
        while not client.queue.stats().draining:
            assert time.monotonic() < deadline, "the server never drained"
            time.sleep(0.01)
        worker = make_worker(flavour, server)
        register(worker, "t", _raise_for_poison("bad job"), retries=0)
        buried: list[FailureRecord] = []
        worker.on_bury(lambda message, record: buried.append(record))
        stats = run_worker(worker, burst=True)
        assert (stats.succeeded, stats.failed, stats.buried) == (5, 1, 1), stats
        assert all(client.queue.peek(uid) is None for uid in good)
        after = client.queue.stats_job(bad)
        assert (after.state, after.pri, after.buries) == ("buried", 9, 1)
        assert record_tube("t", bad) not in client.queue.list_tubes()  # no record was stored
        assert [(r.job_id, r.reason, r.record_id) for r in buried] == [(bad, "raised", 0)]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_error_text_over_max_job_size_is_cut_to_fit(server: BeanstalkdServer, flavour: str) -> None:
    """Failed before the fix: the record (message=str(error), 70 KB) got JOB_TOO_BIG and the slot died."""
    with Client(server.host, server.port) as client:
        bad, _ = _poison_and_good(client)
        worker = make_worker(flavour, server)
        register(worker, "t", _raise_for_poison("upstream said: " + "x" * 70000), retries=0)
        stats = run_worker(worker, burst=True)
        assert (stats.succeeded, stats.failed, stats.buried, stats.crashed) == (5, 1, 1, 0), stats
        assert client.queue.stats_job(bad).state == "buried"
    records = run_worker_failures(worker)
    assert [(r.job_id, r.reason, r.exception) for r in records] == [(bad, "raised", "ValueError")]
    assert records[0].message.startswith("upstream said: xxx") and len(records[0].message) < 70000
    assert "ValueError" in records[0].traceback


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_record_too_big_even_cut_buries_the_job_without_it(server_factory: ServerFactory, flavour: str) -> None:
    """A server whose max-job-size takes no record at all (400 bytes): the job is buried without one."""
    server = server_factory(max_job_size=400)
    with Client(server.host, server.port) as client:
        bad, _ = _poison_and_good(client)
        worker = make_worker(flavour, server)
        register(worker, "t", _raise_for_poison("y" * 3000), retries=0)
        stats = run_worker(worker, burst=True)
        assert (stats.succeeded, stats.buried) == (5, 1), stats
        assert client.queue.stats_job(bad).state == "buried"
        assert record_tube("t", bad) not in client.queue.list_tubes()


def run_worker_failures(worker: Worker | AsyncWorker) -> list[FailureRecord]:
    if isinstance(worker, AsyncWorker):
        return asyncio.run(worker.failures("t"))
    return worker.failures("t")


class _Broken(Worker):
    """A worker whose slot meets a bug of its own (what a real server cannot cause once the record is
    handled): its job handling raises."""

    def _handle(self, *args: Any) -> Any:
        raise RuntimeError("a bug in the slot")


class _AsyncBroken(AsyncWorker):
    async def _handle(self, *args: Any) -> Any:
        raise RuntimeError("a bug in the slot")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_slot_that_ends_on_an_exception_makes_run_raise(server: BeanstalkdServer, flavour: str) -> None:
    """Failed before the fix: run() returned normally (a dead slot looked like a finished one)."""
    with Client(server.host, server.port) as client:
        client.put_many([{"n": i} for i in range(3)], tube="t")
        worker = (_Broken if flavour == "threads" else _AsyncBroken)(host=server.host, port=server.port, grace=1)
        register(worker, "t", lambda m: None)
        with pytest.raises(RuntimeError, match="a bug in the slot"):
            if isinstance(worker, AsyncWorker):
                run_worker(worker)
            else:  # in a thread of its own, bounded, its exception kept
                raised: list[BaseException] = []

                def go() -> None:
                    try:
                        worker.run(handle_signals=False)
                    except BaseException as exc:
                        raised.append(exc)

                thread = threading.Thread(target=go, daemon=True)
                thread.start()
                thread.join(WAIT)
                assert not thread.is_alive(), "run() did not end"
                raise raised[0] if raised else AssertionError("run() returned")


def test_the_cli_goes_on_past_a_record_a_draining_server_refuses(server: BeanstalkdServer, workers: Workers) -> None:
    """Failed before the fix: the CLI exited 0 after 0.6 s with all 6 jobs still there (its one slot died)."""
    with Client(server.host, server.port) as client:
        bad, good = _poison_and_good(client)
        server.signal(signal.SIGUSR1)
        proc = workers.start("worker._apps:poison_raises", ["-s", url(server), "--burst"])
        assert proc.wait(WAIT) == 0, workers.logs()
        assert all(client.queue.peek(uid) is None for uid in good), workers.logs()
        assert client.queue.stats_job(bad).state == "buried"
        assert "without its failure record" in workers.logs()


class _BuryAfterUse:
    """A rewrite of the server's bytes: the reply right after ``USING <tube>`` (the record's put), if it is
    ``INSERTED <id>``, becomes ``BURIED <id>``, once; the two replies may come in one read or in two."""

    def __init__(self, tube: bytes) -> None:
        self.using, self.armed, self.breaks = b"USING %b\r\n" % tube, False, 0
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> bytes:
        with self._lock:
            if self.breaks:
                return data
            head = b""
            if not self.armed:
                at = data.find(self.using)
                if at < 0:
                    return data
                self.armed = True
                head, data = data[: at + len(self.using)], data[at + len(self.using) :]
            if not data:  # the put's reply comes in the next read
                return head
            found = re.match(rb"INSERTED (\d+)\r\n", data)
            if found is None:  # the put got another reply: nothing to turn
                self.armed = False
                return head + data
            self.breaks += 1
            return head + b"BURIED %b\r\n" % found.group(1) + data[found.end() :]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_record_stored_buried_is_kept_and_made_ready(server: BeanstalkdServer, flavour: str) -> None:
    """``BURIED <id>`` for the record's put: the server stored it, buried (out of memory growing a
    queue). The record keeps its id and is kicked to ready, where the lookups find it. A proxy turns the
    record put's ``INSERTED`` into ``BURIED`` (a real server does not run out of memory on demand).
    Failed before: the job was buried 'without its failure record' (record_id 0), the record lost."""
    from .test_connection_loss import CuttingProxy

    with Client(server.host, server.port) as client:
        bad = client.put({"n": "poison"}, tube="t").uid
        once = _BuryAfterUse(record_tube("t", bad).encode())
        proxy = CuttingProxy(server, b"", once)
        try:
            worker = (Worker if flavour == "threads" else AsyncWorker)(host="127.0.0.1", port=proxy.port)
            register(worker, "t", _raise_for_poison("bad job"), retries=0)
            buried: list[FailureRecord] = []
            worker.on_bury(lambda message, record: buried.append(record))
            stats = run_worker(worker, burst=True)
        finally:
            proxy.close()
        assert once.breaks == 1 and stats.buried == 1
        [record] = buried
        assert record.record_id > 0 and client.queue.stats_job(record.record_id).state == "ready"
        assert [r.record_id for r in run_worker_failures(make_worker(flavour, server))] == [record.record_id]
