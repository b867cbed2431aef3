"""A large job's body is received 64 KiB at a time, in both flavours.

A receive allocates what it asks for before anything arrives; asking for up to
1 MiB at a time for a 1 MiB body fragmented the heap enough to cost 3.4x the
body in extra peak RSS (``benchmarks/memory.py``; docs/memory.md). These tests
record every size the drivers ask their transport for while a 1 MiB job is put,
reserved and peeked, against a real beanstalkd.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import beanstalkm
from beanstalkm._transport import sockets, streams
from beanstalkm.aio import AsyncClient
from beanstalkm.testing import BeanstalkdServer, ServerFactory

MIB = 1024 * 1024
BIG = "0123456789abcdef" * (MIB // 16)


@pytest.fixture
def big_server(server_factory: ServerFactory) -> BeanstalkdServer:
    return server_factory(max_job_size=2 * MIB)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every ``size`` a driver passes to ``receive`` (either transport)."""
    sizes: list[int] = []
    sync_receive, async_receive = sockets.SocketTransport.receive, streams.StreamTransport.receive

    def receive(self: sockets.SocketTransport, size: int, timeout: float | None) -> bytes:
        sizes.append(size)
        return sync_receive(self, size, timeout)

    async def areceive(self: streams.StreamTransport, size: int, timeout: float | None) -> bytes:
        sizes.append(size)
        return await async_receive(self, size, timeout)

    monkeypatch.setattr(sockets.SocketTransport, "receive", receive)
    monkeypatch.setattr(streams.StreamTransport, "receive", areceive)
    yield sizes


def test_sync_receives_a_large_body_64_kib_at_a_time(big_server: BeanstalkdServer, asked: list[int]) -> None:
    with beanstalkm.Client(big_server.host, big_server.port, timeout=30) as client:
        sent = client.put(BIG, "big")
        client.watch("big")
        peeked = client.queue.peek(sent.uid)
        message = client.reserve(timeout=5)
    assert message is not None and message.body == BIG and message.deleted
    assert peeked is not None and peeked.body == BIG
    assert len(asked) > 2 * MIB // sockets.RECV - 4  # the body came in pieces, each asked for alone
    assert max(asked) == sockets.RECV


def test_async_receives_a_large_body_64_kib_at_a_time(big_server: BeanstalkdServer, asked: list[int]) -> None:
    async def main() -> tuple[object, object]:
        async with AsyncClient(big_server.host, big_server.port, timeout=30) as client:
            sent = await client.put(BIG, "big")
            await client.watch("big")
            peeked = await client.queue.peek(sent.uid)
            message = await client.reserve(timeout=5)
            return (None if peeked is None else peeked.body), (None if message is None else message.body)

    peeked, reserved = asyncio.run(asyncio.wait_for(main(), 60))
    assert peeked == BIG and reserved == BIG
    assert asked and max(asked) == streams.RECV
