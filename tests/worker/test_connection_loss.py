"""A connection lost at a precise point of a job's start: between its reserve and its handler, while the
worker looks up a kicked job's failure record. A real server cannot drop a connection on demand at that
point, so a loopback proxy in front of a real beanstalkd cuts the connection when it sees the record
lookup's command. The job goes back to the server with the connection (never lost, never run twice),
the slot counts a connection error and goes on, and the job runs once on a later reserve."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from beanstalkm import Client, FailureRecord, Message, NotFound, Worker
from beanstalkm._core.worker import record_tube
from beanstalkm.aio import AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer

from .test_worker import run_worker


class CuttingProxy:
    """Forwards loopback connections to ``server``; the first time a client writes ``marker``, that
    connection is closed on both sides (what it wrote is not forwarded). With ``rewrite``, what the
    server sends goes through it instead (bytes in, bytes out), and ``marker`` is never cut; with
    ``intercept``, what the client writes does (bytes in; the bytes to forward and those to answer the
    client with at once). Bounded: threads are daemons with socket timeouts, all closed by ``close()``."""

    def __init__(
        self,
        server: BeanstalkdServer,
        marker: bytes,
        rewrite: Callable[[bytes], bytes] | None = None,
        intercept: Callable[[bytes], tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.server, self.marker, self.cuts = server, marker, 0
        self.rewrite, self.intercept = rewrite, intercept
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection((self.server.host, self.server.port), timeout=5)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        source.settimeout(0.2)
        seen = b""
        while not self._closed.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if not from_client and self.rewrite is not None:
                data = self.rewrite(data)
            elif from_client and self.intercept is not None:
                data, answer = self.intercept(data)
                if answer:
                    try:
                        source.sendall(answer)
                    except OSError:
                        break
            elif from_client and self.rewrite is None:
                seen = (seen + data)[-4096:]
                with self._lock:
                    cut = self.cuts == 0 and self.marker in seen
                    self.cuts += cut
                if cut:
                    break
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            sock.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()


@pytest.fixture
def kicked_job(server: BeanstalkdServer) -> Iterator[int]:
    """A job in tube ``t`` that was buried and kicked (``kicks == 1``): its start looks up a record."""
    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="t")
        client.watch("t")
        message = client.reserve(timeout=5, drop=False)
        assert message is not None and message.uid == job.uid
        message.bury()
        client.queue.kick_job(job.uid)
        assert client.queue.stats_job(job.uid).kicks == 1
    yield job.uid


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_connection_lost_during_the_record_lookup_hands_the_job_back_and_the_slot_goes_on(
    server: BeanstalkdServer, kicked_job: int, flavour: str
) -> None:
    marker = b"use " + record_tube("t", kicked_job).encode("ascii") + b"\r\n"
    proxy = CuttingProxy(server, marker)
    runs: list[int] = []
    worker: Worker | AsyncWorker
    try:
        if flavour == "threads":
            worker = Worker(host="127.0.0.1", port=proxy.port)

            @worker.handler("t")
            def handle(message: Message) -> None:
                runs.append(message.uid)
        else:
            worker = AsyncWorker(host="127.0.0.1", port=proxy.port)

            @worker.handler("t")
            async def handle_async(message: AsyncMessage) -> None:
                runs.append(message.uid)

        stats = run_worker(worker, max_jobs=1)  # not burst: the server takes the job back as it sees the close
    finally:
        proxy.close()
    assert proxy.cuts == 1  # the lookup was cut once, as meant
    assert runs == [kicked_job]  # run once, after the cut, on the next reserve
    assert stats.succeeded == 1 and stats.connection_errors >= 1
    with Client(server.host, server.port) as client:
        with pytest.raises(NotFound):  # deleted: nothing left to run again
            client.queue.stats_job(kicked_job)
        assert client.queue.stats().total_jobs == 1  # and no copy was ever put


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_record_left_behind_by_a_lost_delete_does_not_hide_the_newer_one(
    server: BeanstalkdServer, flavour: str
) -> None:
    """A kicked job buried again: its new record is stored, the job buried, and the old record's delete
    is cut with the connection. The job is counted buried, and the newer record is the one read."""
    cls = Worker if flavour == "threads" else AsyncWorker

    def failing(worker: Worker | AsyncWorker, text: str) -> None:
        if isinstance(worker, Worker):

            @worker.handler("t", retries=0)
            def handle(message: Message) -> None:
                raise ValueError(text)
        else:

            @worker.handler("t", retries=0)
            async def handle_async(message: AsyncMessage) -> None:
                raise ValueError(text)

    def records(worker: Worker | AsyncWorker) -> list[FailureRecord]:
        return worker.failures("t") if isinstance(worker, Worker) else asyncio.run(worker.failures("t"))

    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="t").uid
        first = cls(host=server.host, port=server.port)
        failing(first, "first")
        assert run_worker(first, burst=True).buried == 1
        [old] = records(first)
        client.queue.kick_job(job)
        proxy = CuttingProxy(server, f"delete {old.record_id}\r\n".encode("ascii"))
        try:
            second = cls(host="127.0.0.1", port=proxy.port)
            failing(second, "second")
            stats = run_worker(second, burst=True)
        finally:
            proxy.close()
        assert proxy.cuts == 1 and stats.buried == 1  # buried, though the old record's delete was lost
        assert client.queue.stats_tube(record_tube("t", job)).current_jobs_ready == 2  # the old one is left
        [shown] = records(first)
        assert (shown.job_id, shown.message, shown.kicks, shown.state) == (job, "second", 1, "buried")
