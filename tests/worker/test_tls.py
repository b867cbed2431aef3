"""A worker whose source is a TLS client (docs/worker.md, "Where the connections come from"), both
flavours: a real beanstalkd behind a TLS terminator (``tests/cluster/_tls.py``). The slots' connections
are made like the client, TLS context and ``max_body`` included."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from beanstalkm import Client, Worker
from beanstalkm.aio import AsyncClient, AsyncWorker
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
