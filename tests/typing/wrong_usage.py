"""Deliberate misuse of the generated API: mypy must reject every marked line.

Excluded from the project's mypy run (pyproject ``[tool.mypy] exclude``);
test_typing.py checks it and compares mypy's errors with wrong_usage.expected.
Nothing runs it.
"""

from __future__ import annotations

import beanstalkm
from beanstalkm.aio import AsyncClient, AsyncMessage, AsyncPool


def misuse(client: beanstalkm.Client) -> None:
    q = client.queue
    q.put(b"body", priority="high")  # priority is an int
    q.put(b"body", "1")  # positional priority as str
    q.use(1)  # a tube is a str
    q.watch(b"tube")  # bytes are not a tube name
    n: int = q.stats()["current-jobs-ready"]  # a Mapping value is any StatValue
    q.frobnicate()  # no such command
    q.delete(None)  # a job id is required
    q.stats_job("1")  # a job id is an int
    q.reserve_with_timeout(None)  # reserve() is the command without a timeout
    state: int = q.stats_job(1).state  # the state is a Literal of names
    utime: float = q.stats().rusage_utime  # a Decimal, not a float
    ready: str = q.stats().current_jobs_ready  # an int, not text
    print(q.peek(1).body)  # peek returns Message | None
    q.stats().current_jobs_ready = 1  # stats are frozen
    print(n, state, utime, ready)


def misuse_messages(client: beanstalkm.Client) -> None:
    message = client.put("body")
    message.release(priority="1")  # priority is an int
    message.bury(delay=1)  # bury takes no delay
    client.reserve().delete()  # reserve may return None
    uid: str = message.uid  # a job id is an int
    client.put("body", tube=None)  # a tube is a str
    client.queue.kick_job(message.stats())  # stats are not an id
    print(uid)


def misuse_errors() -> None:
    job_id: int = beanstalkm.Buried("put", "BURIED", ()).id  # None when the reply lacks it
    beanstalkm.NotFound("delete")  # status is required
    print(job_id)


async def misuse_async(client: AsyncClient, pool: AsyncPool) -> None:
    m: AsyncMessage = client.reserve()  # forgot await: a coroutine, not a message
    client.watch("tube")  # forgot await: the command never runs
    client.put("body").delete()  # forgot await: a coroutine has no delete
    message = await client.put("body")
    priority: int = message.priority  # None until known, for a received job
    with pool.client() as c:  # an async context manager
        print(c)
    print(m, priority)
