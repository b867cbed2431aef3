"""A pipelined command's reply that comes alone, whole, in one read, for the only command in flight,
is decoded by the command's quick decoder as the loop reads it (``Pipelined.received``; docs/hot-path.md,
"Round three"): the same value as the general way, anything else the general way, and a reserve's
reply never (a cancelled reserve's job is handed back from its reply).

Plain test functions run their coroutine with ``asyncio.run``; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from beanstalkm import Connection, JobTooBig, NotFound, ProtocolError
from beanstalkm._core.requests import Command, Reply
from beanstalkm._generated import commands as _c
from beanstalkm._transport.pipelined import Pipelined
from beanstalkm.aio import AsyncConnection
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._fake import FakeServer

PATIENCE = 10.0


def _counting(monkeypatch: pytest.MonkeyPatch, command: Command[Any]) -> list[Reply]:
    """Every reply ``command``'s general decoder is handed, from now on."""
    seen: list[Reply] = []
    decode: Callable[[Reply], Any] = command.decode

    def counted(reply: Reply) -> Any:
        seen.append(reply)
        return decode(reply)

    monkeypatch.setattr(command, "decode", counted)
    return seen


def test_lone_replies_are_decoded_as_read_with_the_general_way_s_values(
    server: BeanstalkdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One task alone: each put and delete is answered alone; the values are the server's (the ids
    in order, the deletes done), and the general decoders never run for those usual replies."""
    puts, deletes = _counting(monkeypatch, _c.PUT_COMMAND), _counting(monkeypatch, _c.DELETE_COMMAND)

    async def main() -> None:
        async with AsyncConnection(server.host, server.port, timeout=5) as conn:
            await conn.queue.use("lone")
            ids = [await conn.queue.put(b"job %d" % i) for i in range(20)]
            assert ids == sorted(ids) and len(set(ids)) == 20
            for job_id in ids[:10]:
                await conn.queue.delete(job_id)
            assert (await conn.queue.stats_tube("lone")).current_jobs_ready == 10
            with pytest.raises(NotFound):  # not the usual reply: the general way decides
                await conn.queue.delete(ids[0])

    asyncio.run(main())
    assert puts == [], "a lone INSERTED went the general way"
    assert [reply.status for reply in deletes] == ["NOT_FOUND"]
    with Connection(server.host, server.port, timeout=5) as observer:
        assert observer.queue.stats_tube("lone").current_jobs_ready == 10


def test_a_lone_failure_reply_goes_the_general_way(server_factory: ServerFactory) -> None:
    """``JOB_TOO_BIG`` alone in its read is no usual reply: the quick decoder misses, the general
    decoder raises, and the stream stays in step."""
    small = server_factory(max_job_size=100)

    async def main() -> None:
        async with AsyncConnection(small.host, small.port, timeout=5) as conn:
            with pytest.raises(JobTooBig):
                await conn.queue.put(b"x" * 200)
            assert await conn.queue.put(b"fits") > 0

    asyncio.run(main())


def test_two_replies_in_one_read_for_one_command_are_out_of_step() -> None:
    """A reply to no command glued to the real one: the read is two replies, which no quick decoder
    takes; the stream is out of step, the command fails and the connection is dropped."""
    fake = FakeServer(lambda line, body: b"INSERTED 1\r\nINSERTED 2\r\n" if line.startswith("put ") else NotImplemented)

    async def main() -> None:
        async with AsyncConnection(fake.host, fake.port, timeout=5) as conn:
            with pytest.raises(ProtocolError, match="out of step"):
                await conn.queue.put(b"one")
            assert not conn.connected

    try:
        asyncio.run(main())
    finally:
        fake.close()


def _cancel_on_reply(monkeypatch: pytest.MonkeyPatch, victim: list[asyncio.Task[Any]]) -> None:
    """Each read handed to a pipeline cancels the task in ``victim`` once the reply is handed out: it
    came, and the task is cancelled before it can take it."""
    received = Pipelined.received

    def cancelling(self: Pipelined, data: bytes) -> None:
        received(self, data)
        if victim:
            victim.pop().cancel()

    monkeypatch.setattr(Pipelined, "received", cancelling)


def test_a_put_cancelled_once_its_lone_reply_came_leaves_the_stream_in_step(
    server: BeanstalkdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim: list[asyncio.Task[Any]] = []
    _cancel_on_reply(monkeypatch, victim)

    async def main() -> None:
        async with AsyncConnection(server.host, server.port, timeout=5) as conn:
            await conn.queue.use("cancelled.put")
            task = asyncio.create_task(conn.queue.put(b"stored all the same"))
            victim.append(task)
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, PATIENCE)
            assert conn.connected
            assert await conn.queue.put(b"next") > 0  # its own reply: in step
            assert (await conn.queue.stats_tube("cancelled.put")).current_jobs_ready == 2

    asyncio.run(main())


def test_a_reserve_cancelled_once_its_lone_reply_came_hands_its_job_back(
    server: BeanstalkdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipelined reserve's reply is never decoded as read: a task cancelled after it came hands the
    job back from the reply (with a quick-decoded reply there would be no job id to release)."""
    victim: list[asyncio.Task[Any]] = []
    with Connection(server.host, server.port, timeout=5) as producer:
        producer.queue.use("cancelled.reserve")
        job_id = producer.queue.put(b"must go back")

    async def main() -> None:
        async with AsyncConnection(server.host, server.port, timeout=5) as conn:
            await conn.queue.watch("cancelled.reserve")
            _cancel_on_reply(monkeypatch, victim)
            task = asyncio.create_task(conn.queue.reserve_with_timeout(0))
            victim.append(task)
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, PATIENCE)
            deadline = time.monotonic() + PATIENCE
            while (stats := await conn.queue.stats_job(job_id)).state != "ready":
                assert time.monotonic() < deadline, f"the job stayed {stats.state}"
                await asyncio.sleep(0.01)
            job = await conn.queue.reserve_with_timeout(0)
            assert job.uid == job_id and job.raw == b"must go back"

    asyncio.run(main())
