"""asyncio flavour of beanstalkm: :class:`AsyncConnection`, :class:`AsyncClient`,
:class:`AsyncMessage`, :class:`AsyncPool` and :class:`AsyncWorker`.

Same names, arguments, defaults, errors and envelope as the sync API: the
sync classes are derived from these (``beanstalkm._async`` is their one
source), the per-command methods (``conn.queue``) are generated from the same
spec, and the conversation itself is the same I/O-free code.

    async with AsyncClient(host="127.0.0.1", port=11300) as client:
        await client.put({"n": 1}, tube="jobs")
        await client.watch("jobs")
        message = await client.reserve(timeout=5, drop=False)

Cancelling a task while it waits for a reply (say, in a blocking
``reserve``) closes that connection, so no stale reply is ever read as the
next command's; the next call connects again and restores the used tube and
the watch list (beanstalkd releases a job reserved on a closed connection).

A dropped connection (a ``SocketError``, a ``ProtocolError``, a cancellation)
is gone at once: its transport is aborted, its socket closed and whatever
asyncio still held to write discarded. A cancelled (or timed-out) ``put``
may still be stored all the same: the bytes the kernel had already taken
reach a server that is alive, and if they held the whole command, it runs
(``SocketError.maybe_executed`` says when that can be). A job reserved by a
cancelled ``reserve(drop=True)`` is deleted only if its delete had reached the
server; otherwise the dropped connection hands it back to ready at once.
"""

from __future__ import annotations

__all__ = [
    "AsyncClient",
    "AsyncCluster",
    "AsyncConnection",
    "AsyncMessage",
    "AsyncPipeline",
    "AsyncPool",
    "AsyncWorker",
]

from beanstalkm._async.client import AsyncClient
from beanstalkm._async.cluster import AsyncCluster
from beanstalkm._async.connection import AsyncConnection, AsyncPipeline
from beanstalkm._async.message import AsyncMessage
from beanstalkm._async.pool import AsyncPool
from beanstalkm._async.worker import AsyncWorker
