"""TLS (``beanstalks://``) through a local TLS terminator in front of a real beanstalkd, with a
self-signed certificate made for the test: verified, it works in both flavours; unverified, the
connection is refused with a clear error."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from beanstalkm import Client, Cluster, Message, SocketError, Worker
from beanstalkm.aio import AsyncClient, AsyncCluster, AsyncMessage, AsyncWorker
from beanstalkm.testing import BeanstalkdServer
from worker.test_worker import run_worker

from ._tls import TLSProxy, self_signed


@pytest.fixture
def tls(tmp_path: Path, server: BeanstalkdServer) -> Iterator[tuple[TLSProxy, ssl.SSLContext]]:
    cert, key = self_signed(tmp_path)
    proxy = TLSProxy(cert, key, (server.host, server.port))
    try:
        yield proxy, ssl.create_default_context(cafile=str(cert))
    finally:
        proxy.close()


def test_verified_tls_works_sync(tls: tuple[TLSProxy, ssl.SSLContext]) -> None:
    proxy, context = tls
    url = f"beanstalks://localhost:{proxy.port}"
    with Client.from_url(url, ssl=context, timeout=10) as client:
        assert client.url == url
        client.watch("tls")
        sent = client.put({"over": "tls"}, tube="tls")
        assert client.put_many([{"n": i} for i in range(300)], tube="tls")[-1].uid > sent.uid  # a pipelined batch
        message = client.reserve(timeout=5, drop=True)
        assert message is not None and message.body == {"over": "tls"}
        assert len(client.reserve_many(300, timeout=1)) == 300
        assert client.reserve(timeout=0) is None
        assert client.queue.stats().current_jobs_ready == 0
        client.reconnect()  # a new handshake; the watch list restored
        assert client.queue.watching() == ["default", "tls"]


def test_verified_tls_works_async(tls: tuple[TLSProxy, ssl.SSLContext]) -> None:
    proxy, context = tls

    async def main() -> tuple[object, int]:
        async with AsyncClient.from_url(f"beanstalks://localhost:{proxy.port}", ssl=context, timeout=10) as client:
            await client.watch("receive")
            await client.put("hey!")
            message = await client.reserve(timeout=5)
            await client.put_many(list(range(200)))
            got = await client.reserve_many(200, timeout=1)
            return (None if message is None else message.body), len(got)

    assert asyncio.run(main()) == ("hey!", 200)


def test_unverified_certificate_is_refused(tls: tuple[TLSProxy, ssl.SSLContext]) -> None:
    proxy, _ = tls
    url = f"beanstalks://localhost:{proxy.port}"  # the default context: the system's CAs, which never signed it
    with pytest.raises(SocketError, match=r"TLS certificate was refused.*CERTIFICATE_VERIFY_FAILED") as caught:
        Client.from_url(url, timeout=10)
    assert not caught.value.maybe_executed

    async def main() -> None:
        async with AsyncClient.from_url(url, timeout=10) as client:
            await client.put("never")

    with pytest.raises(SocketError, match="TLS certificate was refused"):
        asyncio.run(main())


def test_hostname_is_checked(tls: tuple[TLSProxy, ssl.SSLContext]) -> None:
    proxy, context = tls  # the certificate names localhost, not 127.0.0.1
    with pytest.raises(SocketError, match="TLS certificate was refused"):
        Client.from_url(f"beanstalks://127.0.0.1:{proxy.port}", ssl=context, timeout=10)


@pytest.mark.parametrize("flavour", ["threads", "tasks"])
def test_a_worker_over_a_tls_cluster_uses_the_clusters_context(
    tls: tuple[TLSProxy, ssl.SSLContext], flavour: str
) -> None:
    """A ``Worker`` given a ``Cluster`` opens its own connections with the cluster's TLS context (the
    certificate here is trusted only by that context, not by the default one)."""
    proxy, context = tls
    url = f"beanstalks://localhost:{proxy.port}"
    with Cluster([url], ssl=context, timeout=10) as cluster:
        cluster.put_many([{"n": n} for n in range(3)], tube="tls-work")
    seen: list[int] = []
    worker: Worker | AsyncWorker
    if flavour == "threads":
        worker = Worker(Cluster([url], ssl=context, timeout=10))

        @worker.handler("tls-work")
        def handle(message: Message) -> None:
            seen.append(message.body["n"])
    else:
        worker = AsyncWorker(AsyncCluster([url], ssl=context, timeout=10))

        @worker.handler("tls-work")
        async def handle_async(message: AsyncMessage) -> None:
            seen.append(message.body["n"])

    stats = run_worker(worker, burst=True)
    assert sorted(seen) == [0, 1, 2] and stats.succeeded == 3 and stats.connection_errors == 0
    failures = worker.failures("tls-work") if isinstance(worker, Worker) else asyncio.run(worker.failures("tls-work"))
    assert failures == []
