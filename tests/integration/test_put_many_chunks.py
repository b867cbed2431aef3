"""``put_many`` writes its envelopes in chunks as it encodes them (``PutBatch.steps``): every body is
still checked before anything is sent, each id holds its own body, and a ``use`` the plan adds goes
first. Both flavours; every wait is bounded by the clients' timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from beanstalkm import ArgumentTypeError, Client, Connection
from beanstalkm._core.batches import PUT_FIRST
from beanstalkm._transport.sockets import SocketTransport
from beanstalkm._transport.streams import StreamTransport
from beanstalkm.aio import AsyncClient
from beanstalkm.testing import BeanstalkdServer


class _Unserializable:
    """Not JSON: the envelope refuses it."""


def _sent(observer: Connection) -> tuple[int, int]:
    stats = observer.queue.stats()
    return stats.cmd_put, stats.total_jobs


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every step of a conversation either transport writes."""
    seen: list[bytes] = []
    sync_write, async_write = SocketTransport.write, StreamTransport.write

    def write(self: SocketTransport, data: bytes, *args: Any) -> None:
        seen.append(bytes(data))
        sync_write(self, data, *args)

    async def awrite(self: StreamTransport, data: bytes, *args: Any) -> None:
        seen.append(bytes(data))
        await async_write(self, data, *args)

    monkeypatch.setattr(SocketTransport, "write", write)
    monkeypatch.setattr(StreamTransport, "write", awrite)
    return seen


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_bad_body_late_in_a_large_batch_sends_nothing(server: BeanstalkdServer, flavour: str) -> None:
    """The check comes before the first chunk is written: a bad body 95th of 100 sends none of them."""
    bodies: list[object] = [{"n": i} for i in range(100)]
    bodies[94] = _Unserializable()
    with Connection(server.host, server.port, timeout=5) as observer:
        before = _sent(observer)
        if flavour == "sync":
            with Client(server.host, server.port, timeout=5) as client, pytest.raises(ArgumentTypeError) as info:
                client.put_many(bodies, tube="late")
        else:

            async def main() -> None:
                async with AsyncClient(server.host, server.port, timeout=5) as client:
                    await client.put_many(bodies, tube="late")

            with pytest.raises(ArgumentTypeError) as info:
                asyncio.run(main())
        assert info.value.value is bodies[94]
        assert _sent(observer) == before


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_put_many_writes_in_growing_chunks_and_each_id_holds_its_body(
    server: BeanstalkdServer, flavour: str, writes: list[bytes]
) -> None:
    """100 bodies to a tube not in use: the ``use`` and the first ``PUT_FIRST`` puts in the first write,
    then chunks twice as large; every reply read, each message's id holding its own body."""
    bodies = [{"n": i, "pad": "x" * (i % 7)} for i in range(100)]
    if flavour == "sync":
        with Client(server.host, server.port, timeout=5) as client:
            sent = client.put_many(bodies, tube="chunked")
            assert client.queue.using() == "default"  # the tube routed, the caller's choice kept
    else:

        async def main() -> list[Any]:
            async with AsyncClient(server.host, server.port, timeout=5) as client:
                messages = await client.put_many(bodies, tube="chunked")
                assert await client.queue.using() == "default"
                return messages

        sent = asyncio.run(main())
    steps = [w for w in writes if b"put " in w]
    counts = [w.count(b"put ") for w in steps]
    assert steps[0].startswith(b"use chunked\r\n")
    assert counts == [PUT_FIRST, 2 * PUT_FIRST, 4 * PUT_FIRST, 100 - 7 * PUT_FIRST]
    assert [m.body for m in sent] == bodies
    assert len({m.uid for m in sent}) == 100
    with Client(server.host, server.port, timeout=5) as reader:
        for message in sent[::11] + sent[-3:]:
            peeked = reader.queue.peek(message.uid)
            assert peeked is not None and peeked.body == message.body and peeked.token == message.token
