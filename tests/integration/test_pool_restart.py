"""``AsyncPool`` after the server restarted under idle connections: the pool never hands out a
connection the server has closed (its next command would fail unsent); it connects again, restoring
the watch list, and every call works at once. Real beanstalkd, killed and started again."""

from __future__ import annotations

import asyncio

import pytest

from beanstalkm import Connection, SocketError
from beanstalkm.aio import AsyncPool
from beanstalkm.testing import BeanstalkdServer


async def _restarted(server: BeanstalkdServer) -> None:
    server.kill()
    server.start()
    await asyncio.sleep(0.2)  # the end of each old stream reaches the client (loopback: at once)


def test_the_pool_connects_again_where_the_server_closed_its_idle_connections(server: BeanstalkdServer) -> None:
    async def main() -> None:
        async with AsyncPool(server.host, server.port, timeout=5, size=2, watch=["jobs"]) as pool:
            await pool.put("before", tube="jobs")
            got = await pool.reserve(timeout=1)  # a pooled connection, given back idle
            assert got is not None and got.body == "before"
            await pool.put("before 2", tube="jobs")
            got = await pool.reserve(timeout=0)  # the pipelined connection watches too
            assert got is not None and got.body == "before 2"
            await _restarted(server)

            sent = await pool.put("after", tube="jobs")  # the pipelined connection
            got = await pool.reserve(timeout=1)  # the idle pooled one
            assert got is not None and got.uid == sent.uid and got.body == "after"
            await _restarted(server)
            with Connection(server.host, server.port, timeout=5) as observer:
                observer.queue.use("jobs")
                job_id = observer.queue.put(b"from another client")
                got = await pool.reserve(timeout=0)  # the pipelined connection, reserving
                assert got is not None and got.uid == job_id and got.raw == b"from another client"
                assert observer.queue.stats().current_jobs_reserved == 0  # and deleted (drop)

    asyncio.run(main())


def test_a_touch_that_finds_the_reservation_over_gives_the_lent_connection_back(server: BeanstalkdServer) -> None:
    """A job reserved through the pool keeps its pooled connection while it is reserved; once a touch
    finds the reservation over (the connection that held it closed, or its time to run ran out),
    there is nothing left to settle, so the connection goes back to the pool then. Before, it stayed
    lent to a message its caller rightly abandoned: a pool of one then waited forever."""

    async def main() -> None:
        async with AsyncPool(server.host, server.port, timeout=5, size=1, watch=["slot"]) as pool:
            await pool.put("job", tube="slot")
            m = await pool.reserve(timeout=1, drop=False)
            assert m is not None and m.reserved
            lent = m._conn
            assert lent._transport is not None
            lent._transport.writer.write(b"quit\r\n")  # the server closes it, behind the client's back
            with Connection(server.host, server.port, timeout=5) as observer:
                for _ in range(500):
                    if observer.queue.stats().current_connections == 2:  # the pipelined one, the observer
                        break
                    await asyncio.sleep(0.01)
            with pytest.raises(SocketError):
                await m.touch()  # the reservation is over (the touch was not sent: the end was seen)
            async with asyncio.timeout(5):  # the pool's only connection is free again
                again = await pool.reserve(timeout=1, drop=False)
            assert again is not None and again.uid == m.uid and again.body == "job"
            await again.delete()

    asyncio.run(main())
