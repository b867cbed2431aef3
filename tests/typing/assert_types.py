"""Static type checks of the generated public API.

mypy checks this file (it is under tests/); nothing runs it, and every check
sits inside a function so importing it does nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, assert_type

import beanstalkm
from beanstalkm import (
    Buried,
    CommandFailed,
    JobStats,
    Message,
    NotFound,
    Pipeline,
    ServerStats,
    StatValue,
    TubeStats,
)
from beanstalkm._generated.aqueue import AsyncQueue
from beanstalkm._generated.queue import Queue
from beanstalkm.aio import AsyncClient, AsyncCluster, AsyncConnection, AsyncMessage, AsyncPipeline, AsyncPool


def queue_commands(client: beanstalkm.Client) -> None:
    q = client.queue
    assert_type(q, Queue)

    assert_type(q.put(b"body"), int)
    assert_type(q.put("body", priority=1, delay=2, ttr=3), int)
    assert_type(q.use("tube"), str)
    assert_type(q.using(), str)
    assert_type(q.watch("tube"), int)
    assert_type(q.ignore("tube"), int)
    assert_type(q.kick(10), int)
    assert_type(q.list_tubes(), list[str])
    assert_type(q.watching(), list[str])

    assert_type(q.reserve(), Message)
    assert_type(q.reserve_with_timeout(0), Message)
    assert_type(q.reserve_job(1), Message)
    assert_type(q.peek(1), Message | None)
    assert_type(q.peek_ready(), Message | None)
    assert_type(q.peek_delayed(), Message | None)
    assert_type(q.peek_buried(), Message | None)

    assert_type(q.delete(1), None)
    assert_type(q.release(1), None)
    assert_type(q.release(1, priority=5, delay=0), None)
    assert_type(q.bury(1), None)
    assert_type(q.bury(1, 5), None)
    assert_type(q.touch(1), None)
    assert_type(q.kick_job(1), None)
    assert_type(q.pause_tube("tube", 10), None)
    assert_type(q.quit(), None)

    assert_type(q.stats(), ServerStats)
    assert_type(q.stats_tube("tube"), TubeStats)
    assert_type(q.stats_job(1), JobStats)
    assert_type(q.stats_yaml(), str)
    assert_type(q.stats_tube_yaml("tube"), str)
    assert_type(q.stats_job_yaml(1), str)
    assert_type(q.list_tubes_yaml(), str)
    assert_type(q.watching_yaml(), str)


def stats_fields(client: beanstalkm.Client) -> None:
    server = client.queue.stats()
    assert_type(server.current_jobs_ready, int)
    assert_type(server.rusage_utime, Decimal)
    assert_type(server.rusage_stime, Decimal)
    assert_type(server.id, str)
    assert_type(server.hostname, str)
    assert_type(server.draining, bool)
    assert_type(server["current-jobs-ready"], StatValue)
    assert_type(server["current-jobs-ready"], int | str | bool | Decimal)
    assert_type(server.get("nope"), StatValue | None)
    assert_type(server.extra["new-field"], str)

    tube = client.queue.stats_tube("tube")
    assert_type(tube.name, str)
    assert_type(tube.current_jobs_urgent, int)
    assert_type(tube["pause"], StatValue)

    job = client.queue.stats_job(1)
    assert_type(job.id, int)
    assert_type(job.tube, str)
    assert_type(job.state, Literal["ready", "delayed", "reserved", "buried"])
    assert_type(job.pri, int)
    assert_type(job.time_left, int)
    assert_type(JobStats.from_yaml(b"---\n"), JobStats)


def client_api(client: beanstalkm.Client) -> None:
    assert_type(client.reserve(), Message | None)
    assert_type(client.reserve(timeout=0, drop=False), Message | None)
    assert_type(client.put({"a": 1}), Message)
    assert_type(client.put("body", tube="t", priority=1, delay=0, ttr=60), Message)
    assert_type(client.watch("tube"), int)
    assert_type(client.ignore("tube"), int)
    assert_type(client("body"), Message)
    assert_type(client.put_many([1, 2]), list[Message])
    assert_type(client.reserve_many(2), list[Message])
    assert_type(client.pipeline(), Pipeline)
    assert_type(client.pipeline().put(b"x").delete(1).stats(), Pipeline)


def message_api(client: beanstalkm.Client) -> None:
    message = client.put("body")
    assert_type(message.uid, int)
    assert_type(message.stats(), JobStats | None)
    assert_type(message.priority, int)
    assert_type(message.send(), int)
    assert_type(message.delete(), None)
    assert_type(message.release(), None)
    assert_type(message.release(priority=1, delay=2), None)
    assert_type(message.bury(priority=1), None)
    assert_type(message.touch(), None)
    assert_type(message.kick(), None)


def errors_api() -> None:
    buried = Buried("put", "BURIED", ("5",))
    assert_type(buried.id, int | None)
    assert_type(buried.status, str)
    assert_type(beanstalkm.STATUS_ERRORS["NOT_FOUND"], type[CommandFailed])
    assert_type(NotFound("delete", "NOT_FOUND"), NotFound)


# -- the asyncio flavour ---------------------------------------------------------------------------


async def async_queue_commands(client: AsyncClient) -> None:
    q = client.queue
    assert_type(q, AsyncQueue)

    assert_type(await q.put(b"body"), int)
    assert_type(await q.put("body", priority=1, delay=2, ttr=3), int)
    assert_type(await q.use("tube"), str)
    assert_type(await q.using(), str)
    assert_type(await q.watch("tube"), int)
    assert_type(await q.ignore("tube"), int)
    assert_type(await q.kick(10), int)
    assert_type(await q.list_tubes(), list[str])
    assert_type(await q.watching(), list[str])

    assert_type(await q.reserve(), AsyncMessage)
    assert_type(await q.reserve_with_timeout(0), AsyncMessage)
    assert_type(await q.reserve_job(1), AsyncMessage)
    assert_type(await q.peek(1), AsyncMessage | None)
    assert_type(await q.peek_ready(), AsyncMessage | None)
    assert_type(await q.peek_delayed(), AsyncMessage | None)
    assert_type(await q.peek_buried(), AsyncMessage | None)

    assert_type(await q.delete(1), None)
    assert_type(await q.release(1, priority=5, delay=0), None)
    assert_type(await q.bury(1), None)
    assert_type(await q.touch(1), None)
    assert_type(await q.kick_job(1), None)
    assert_type(await q.pause_tube("tube", 10), None)
    assert_type(await q.quit(), None)

    assert_type(await q.stats(), ServerStats)
    assert_type(await q.stats_tube("tube"), TubeStats)
    assert_type(await q.stats_job(1), JobStats)
    assert_type(await q.stats_yaml(), str)
    assert_type(await q.stats_tube_yaml("tube"), str)
    assert_type(await q.stats_job_yaml(1), str)
    assert_type(await q.list_tubes_yaml(), str)
    assert_type(await q.watching_yaml(), str)


async def async_client_api(client: AsyncClient) -> None:
    assert_type(await client.reserve(), AsyncMessage | None)
    assert_type(await client.reserve(timeout=0, drop=False), AsyncMessage | None)
    assert_type(await client.put({"a": 1}), AsyncMessage)
    assert_type(await client.put("body", tube="t", priority=1, delay=0, ttr=60), AsyncMessage)
    assert_type(await client.watch("tube"), int)
    assert_type(await client.ignore("tube"), int)
    assert_type(client("body"), AsyncMessage)
    assert_type(await client.put_many([1, 2]), list[AsyncMessage])
    assert_type(await client.reserve_many(2), list[AsyncMessage])
    assert_type(await client.delete_many([1, await client.put(3)]), None)
    assert_type(client.pipeline(), AsyncPipeline)
    assert_type(client.pipeline().put(b"x").delete(1).stats(), AsyncPipeline)
    assert_type(await client.pipeline().execute(), list[object])
    assert_type(client.connected, bool)
    assert_type(await client.connect(), None)
    assert_type(await client.reconnect(), None)
    assert_type(await client.close(), None)
    async with client as entered:
        assert_type(entered, AsyncClient)
    async with AsyncConnection() as conn:
        assert_type(conn, AsyncConnection)
        assert_type(await conn.queue.peek(1), AsyncMessage | None)
    async with client.pipeline() as p:
        assert_type(p, AsyncPipeline)


async def async_message_api(client: AsyncClient) -> None:
    message = await client.put("body")
    assert_type(message.uid, int)
    assert_type(await message.stats(), JobStats | None)
    assert_type(message.priority, int | None)
    assert_type(message.delay, int | None)
    assert_type(message.ttr, int | None)
    assert_type(await message.send(), int)
    assert_type(await message.delete(), None)
    assert_type(await message.release(), None)
    assert_type(await message.release(priority=1, delay=2), None)
    assert_type(await message.bury(priority=1), None)
    assert_type(await message.touch(), None)
    assert_type(await message.kick(), None)


async def async_pool_api() -> None:
    async with AsyncPool("127.0.0.1", 11300, timeout=5, size=4, watch=["jobs"]) as pool:
        assert_type(pool, AsyncPool)
        assert_type(pool.size, int)
        assert_type(await pool.put({"a": 1}, tube="jobs", priority=1), AsyncMessage)
        assert_type(await pool.reserve(), AsyncMessage | None)
        assert_type(await pool.reserve(timeout=0, drop=False), AsyncMessage | None)
        async with pool.client() as c:
            assert_type(c, AsyncClient)
        assert_type(await pool.close(), None)


def urls_and_cluster_api() -> None:
    assert_type(beanstalkm.default_urls(), list[str])
    assert_type(beanstalkm.Client.from_url("beanstalk://q:11300"), beanstalkm.Client)
    assert_type(beanstalkm.Connection.from_url(), beanstalkm.Connection)
    assert_type(AsyncClient.from_url("beanstalks://q", timeout=5), AsyncClient)
    with beanstalkm.Cluster("beanstalk://a,beanstalk://b", placement="hash") as cluster:
        assert_type(cluster, beanstalkm.Cluster)
        message = cluster.put({"n": 1}, tube="jobs", key="customer-7")
        assert_type(message, Message)
        assert_type(message.server, str)
        assert_type(message.ref, tuple[str, int])
        assert_type(cluster.put_many([1, 2], tube="jobs"), list[Message])
        assert_type(cluster.reserve(timeout=5, drop=False), Message | None)
        assert_type(cluster.reserve_many(10), list[Message])
        assert_type(cluster.servers, list[beanstalkm.ServerHealth])
        assert_type(cluster.stats(), beanstalkm.ClusterStats)
        assert_type(cluster.stats().current_jobs_ready, int)
        assert_type(cluster.stats_tube("jobs"), dict[str, TubeStats])
        assert_type(cluster.list_tubes(), list[str])
        assert_type(cluster.kick("jobs", 10), int)
        assert_type(cluster.peek(message.ref), Message | None)
        assert_type(cluster.peek_buried("jobs"), Message | None)
        assert_type(cluster.watch("jobs"), int)
        assert_type(cluster.delete_many([message, message.ref]), None)


async def async_cluster_api() -> None:
    async with AsyncCluster(["beanstalk://a", "beanstalk://b"], timeout=5) as cluster:
        assert_type(cluster, AsyncCluster)
        message = await cluster.put("x")
        assert_type(message, AsyncMessage)
        assert_type(message.ref, tuple[str, int])
        assert_type(await cluster.put_many(["x"]), list[AsyncMessage])
        assert_type(await cluster.reserve(), AsyncMessage | None)
        assert_type(await cluster.reserve_many(5, timeout=1), list[AsyncMessage])
        assert_type(await cluster.stats(), beanstalkm.ClusterStats)
        assert_type(cluster.servers, list[beanstalkm.ServerHealth])
