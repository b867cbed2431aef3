"""A worker whose source is a TLS client (docs/worker.md, "Where the connections come from"), both
flavours: a real beanstalkd behind a TLS terminator (``tests/cluster/_tls.py``). The slots' connections
are made like the client, TLS context and ``max_body`` included."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from beanstalkm import ArgumentTypeError, Client, Cluster, InvalidArgument, SocketError, Worker
from beanstalkm.aio import AsyncClient, AsyncCluster, AsyncWorker
from beanstalkm.testing import BeanstalkdServer
from cluster._tls import TLSProxy, self_signed

from .test_worker import FLAVOURS, register, run_worker


@pytest.fixture
def tls(server: BeanstalkdServer, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    cert, key = self_signed(tmp_path)
    proxy = TLSProxy(cert, key, (server.host, server.port))
    try:
        yield f"beanstalks://localhost:{proxy.port}", ssl.create_default_context(cafile=str(cert))
    finally:
        proxy.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_tls_client_as_source_gives_the_slots_tls(
    server: BeanstalkdServer, tls: tuple[str, ssl.SSLContext], flavour: str
) -> None:
    """Failed before the fix: the slots spoke plain text to the TLS endpoint and looped on "server closed
    the connection" (run(burst=True) never returned; nothing ran)."""
    url, context = tls
    with Client(server.host, server.port) as plain:
        jobs = {m.uid for m in plain.put_many([{"n": i} for i in range(3)], tube="t")}
        worker: Worker | AsyncWorker
        source: Client | AsyncClient
        if flavour == "threads":
            source = sync_source = Client.from_url(url, ssl=context, timeout=3, max_body=4096)
            worker = Worker(sync_source, concurrency=2, grace=1)
        else:
            source = async_source = AsyncClient.from_url(url, ssl=context, timeout=3, max_body=4096)
            worker = AsyncWorker(async_source, concurrency=2, grace=1)
        done: list[int] = []
        register(worker, "t", lambda m: done.append(m.uid))
        stats = run_worker(worker, burst=True)
        assert set(done) == jobs and stats.succeeded == 3 and stats.connection_errors == 0, stats
        made = worker._connect(0)  # the slots' connections: like the client
        assert (made.ssl, made._reader._max_body, made.url) == (context, 4096, source.url)
        if isinstance(source, AsyncClient):
            asyncio.run(source.close())
        else:
            source.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_worker_of_tls_urls_takes_a_tls_context(
    server: BeanstalkdServer, tls: tuple[str, ssl.SSLContext], flavour: str
) -> None:
    """``Worker("beanstalks://...", ssl=context)``: every connection the worker makes (each slot's, and
    ``failures()``'s) carries the context. Before, there was no ``ssl=``: a worker of a TLS URL could only
    use the system CAs, which refuse a certificate of your own CA (SocketError at the start, nothing run)."""
    url, context = tls
    with Client(server.host, server.port) as plain:
        jobs = {m.uid for m in plain.put_many([{"n": i} for i in range(4)], tube="t")}
        cls = Worker if flavour == "threads" else AsyncWorker
        worker = cls(url, concurrency=2, grace=1, timeout=3, ssl=context)
        done: list[int] = []
        register(worker, "t", lambda m: done.append(m.uid))
        stats = run_worker(worker, burst=True)
        assert sorted(done) == sorted(jobs) and stats.succeeded == 4 and stats.connection_errors == 0, stats
        made = worker._connect(0)
        assert (made.ssl, made.url) == (context, url)
        failures = worker.failures("t")
        records = asyncio.run(failures) if asyncio.iscoroutine(failures) else failures
        assert records == []  # read through TLS too (the system CAs would refuse it)
        assert plain.queue.stats().current_jobs_ready == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_worker_of_tls_urls_without_the_context_is_refused_by_the_certificate(
    server: BeanstalkdServer, tls: tuple[str, ssl.SSLContext], flavour: str
) -> None:
    """Without ``ssl=`` the system CAs verify: the test's own certificate is refused, saying so."""
    url, _ = tls
    cls = Worker if flavour == "threads" else AsyncWorker
    worker = cls(url, timeout=3)
    register(worker, "t", lambda m: None)
    with pytest.raises(SocketError, match="certificate"):  # at the start (bounded by the 3 s timeout)
        if isinstance(worker, AsyncWorker):
            asyncio.run(worker.run(burst=True, handle_signals=False))
        else:
            worker.run(burst=True, handle_signals=False)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_ssl_with_a_source_that_brings_its_own_connections_is_an_invalid_argument(
    server: BeanstalkdServer, tls: tuple[str, ssl.SSLContext], flavour: str
) -> None:
    """A Client, a Cluster or a callable source makes its own connections (a client's or a cluster's TLS
    context is used, docs/worker.md): a second context beside it is refused, naming ``ssl``; so is one
    that no URL of the worker would use, and one that is not an ``ssl.SSLContext``."""
    url, context = tls
    if flavour == "threads":
        sources: list[Any] = [
            Client.from_url(url, ssl=context, timeout=3),
            Cluster([url], ssl=context),
            lambda: Client(server.host, server.port),
        ]
        cls: type[Worker] | type[AsyncWorker] = Worker
    else:
        sources = [AsyncClient.from_url(url, ssl=context, timeout=3), AsyncCluster([url], ssl=context)]
        cls = AsyncWorker
    for source in sources:
        with pytest.raises(InvalidArgument, match="ssl") as caught:
            cls(source, ssl=context)
        assert type(source).__name__ in str(caught.value)
    with pytest.raises(InvalidArgument, match=r"no server URL is beanstalks://"):
        cls(f"beanstalk://{server.host}:{server.port}", ssl=context)
    worker = cls(url, ssl=context)
    with pytest.raises(InvalidArgument, match=r"no server URL is beanstalks://"):
        worker.configure(source=[f"beanstalk://{server.host}:{server.port}"])  # as the CLI's -s does
    not_a_context: Any = "verify"
    with pytest.raises(ArgumentTypeError, match="ssl"):
        cls(url, ssl=not_a_context)
    for source in sources:
        if isinstance(source, Client | Cluster):
            source.close()
        elif isinstance(source, AsyncClient | AsyncCluster):
            asyncio.run(source.close())
