"""Batches bigger than the socket buffers: the drivers must read replies while they write.

beanstalkd answers each command as it reads it, and reads no more commands while
it cannot write a reply. A driver that writes a whole batch before it reads any
reply is stuck once the replies it has not read fill everything between it and
the server while it still has commands to write: the server waits for it to
read, it waits for the server to read. That deadlock ends only at the
connection's timeout (a ``SocketError``: "timed out waiting for a reply"), or
never with ``timeout=None``.

Each test sizes its batch from what can be held each way while the client does
not read, and overflows that ``MARGIN`` times, so that a driver that only writes
is stuck for sure, while one that reads as it writes gets through in about a
second:

* replies: the server's send buffer (TCP autotunes it up to the maximum of
  ``tcp_wmem``; a UNIX socket's is ``wmem_default``, and the replies queued to
  the client count against it), the client's receive buffer (TCP only), and,
  for asyncio, what its stream reader reads ahead before it pauses;
* commands: the client's send buffer, the server's receive buffer (TCP only:
  ``tcp_rmem``'s default; autotuning grows it only as beanstalkd reads, and
  beanstalkd has stopped reading), and, for asyncio, what ``drain()`` leaves
  in the transport's buffer.

The client's own buffers are set with ``SO_SNDBUF``/``SO_RCVBUF`` right after it
connects (and read back: Linux doubles what it is asked for), so that they do
not autotune.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from beanstalkm import Client, Connection
from beanstalkm.testing import BeanstalkdServer

from ._flavours import ClientFactory, ConnectionFactory, Flavour, is_message

#: The connection timeout: a stuck batch fails with a SocketError after this long without progress, not never.
TIMEOUT = 15

#: What the client's SO_SNDBUF and SO_RCVBUF are set to. Not smaller: a receive window under loopback's
#: 64 KiB segment size makes TCP crawl on zero-window probes (a 4 KiB one times out even a driver that reads).
CLIENT_BUFFER = 256 * 1024

#: asyncio's own buffering: a StreamReader (64 KiB limit) reads ahead up to twice its limit before it
#: pauses the transport, and ``drain()`` returns while up to 64 KiB (the high-water mark) are left to write.
ASYNC_READ_AHEAD = 2 * 64 * 1024
ASYNC_WRITE_BEHIND = 64 * 1024

#: How many times over a batch overflows what can be held.
MARGIN = 2

#: The size of a large job: under beanstalkd's default max job size (65535 bytes).
LARGE = 60_000

#: The fewest large jobs a test moves, however small the buffers.
MIN_LARGE_JOBS = 40

#: The shortest reply to a put, and the command of a reserve in a batch.
SHORTEST_INSERTED = len(b"INSERTED 1\r\n")
RESERVE_COMMAND = len(b"reserve-with-timeout 0\r\n")


def _sysctl(name: str, field: int, fallback: int) -> int:
    """A field of ``/proc/sys/<name>`` (Linux); ``fallback`` elsewhere."""
    try:
        return int(Path("/proc/sys", name).read_text().split()[field])
    except (OSError, ValueError, IndexError):
        return fallback


def _socket(conn: Connection, flavour: Flavour) -> socket.socket:
    """The connected socket under ``conn``.

    The sync driver's transport keeps it in ``sock``. The async connection sits
    behind the facade's proxy, which reads attributes through: its transport's
    ``writer.transport`` is asyncio's, whose
    ``get_extra_info("socket")`` is the socket (asyncio's ``TransportSocket``,
    which passes ``setsockopt``/``getsockopt`` on).
    """
    if flavour.name == "sync":
        sock: Any = cast(Any, conn)._transport.sock
    else:
        writer = cast(Any, conn)._transport.writer
        sock = writer.transport.get_extra_info("socket")
    assert sock is not None
    return cast(socket.socket, sock)


@dataclass
class Link:
    """A client with set socket buffers, and how many bytes can be held each way while it does not read."""

    client: Client
    replies_held: int  # replies that can wait between beanstalkd and a client that does not read
    commands_held: int  # commands the client can write that beanstalkd has not read


def _overflow(held: int, unit: int, least: int = 1) -> int:
    """How many items of at least ``unit`` bytes overflow ``held`` bytes ``MARGIN`` times over."""
    return max(least, math.ceil(MARGIN * held / unit))


def _address(server: BeanstalkdServer) -> dict[str, Any]:
    if server.unix_path is not None:
        return {"unix_socket": server.unix_path}
    return {"host": server.host, "port": server.port}


def _link(flavour: Flavour, make_client: ClientFactory, server: BeanstalkdServer) -> Link:
    """A client of this flavour on ``server``, its buffers set, and what can be held each way (see above)."""
    client = make_client(**_address(server), timeout=TIMEOUT)
    sock = _socket(client, flavour)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_BUFFER)
    send = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    receive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if server.unix_path is not None:
        # A UNIX stream socket queues what it sends on its peer, charged to its own send buffer
        # (its receive buffer plays no part).
        replies = _sysctl("net/core/wmem_default", 0, 256 * 1024)
        commands = send
    else:
        replies = _sysctl("net/ipv4/tcp_wmem", 2, 8 * 1024 * 1024) + receive
        commands = send + _sysctl("net/ipv4/tcp_rmem", 1, 256 * 1024)
    if flavour.name == "async":
        replies += ASYNC_READ_AHEAD
        commands += ASYNC_WRITE_BEHIND
    return Link(client, replies, commands)


@pytest.fixture(params=["tcp", "unix"])
def endpoint(request: pytest.FixtureRequest) -> BeanstalkdServer:
    """A fresh beanstalkd, on TCP or on a UNIX socket."""
    return cast(BeanstalkdServer, request.getfixturevalue("server" if request.param == "tcp" else "unix_server"))


@pytest.fixture
def observer(endpoint: BeanstalkdServer, make_connection: ConnectionFactory) -> Iterator[Connection]:
    """A second connection to ``endpoint``, to fill tubes and look at the server."""
    with make_connection(**_address(endpoint), timeout=TIMEOUT) as c:
        yield c


def _large(n: int) -> bytes:
    """The body of large job ``n`` (each one different)."""
    return b"%08d" % n + b"x" * (LARGE - 8)


def _fill(observer: Connection, tube: str, count: int) -> list[int]:
    """``count`` large jobs in ``tube``, put one by one; their ids."""
    observer.queue.use(tube)
    return [observer.queue.put(_large(n)) for n in range(count)]


def test_put_many_of_more_replies_than_the_buffers_hold(
    flavour: Flavour, make_client: ClientFactory, make_connection: ConnectionFactory, unix_server: BeanstalkdServer
) -> None:
    """Small puts have small replies: over TCP it takes some 200,000 of them to fill the send buffer that
    beanstalkd's autotunes to (4 MiB by default), seconds of work even once it works. A UNIX socket's
    buffers are fixed and small, and the drivers write and read the same way over both."""
    link = _link(flavour, make_client, unix_server)
    count = _overflow(link.replies_held, SHORTEST_INSERTED)

    sent = link.client.put_many(range(count), tube="many")

    ids = [m.uid for m in sent]
    assert len(ids) == count and len(set(ids)) == count
    assert [m.body for m in sent] == list(range(count))
    with make_connection(unix_socket=unix_server.unix_path, timeout=TIMEOUT) as observer:
        assert observer.queue.stats_tube("many").current_jobs_ready == count
    # the stream is in sync: the next command reads its own reply
    assert link.client.queue.put(b"next") == max(ids) + 1


def test_pipeline_of_large_replies_then_large_commands(
    flavour: Flavour, make_client: ClientFactory, observer: Connection, endpoint: BeanstalkdServer
) -> None:
    """Reserves of large jobs (large replies), then puts of large bodies (large commands), in one pipeline."""
    link = _link(flavour, make_client, endpoint)
    n = _overflow(max(link.replies_held, link.commands_held), LARGE, MIN_LARGE_JOBS)
    ready = _fill(observer, "in", n)
    client = link.client
    client.watch("in")
    client.ignore("default")
    client.queue.use("out")

    with client.pipeline() as p:
        for _ in range(n):
            p.reserve_with_timeout(0)
        for i in range(n):
            p.put(_large(n + i))
        results = p.execute()

    assert len(results) == 2 * n
    for i, (uid, message) in enumerate(zip(ready, results[:n], strict=True)):
        assert is_message(message) and (message.uid, message.raw) == (uid, _large(i))
    put = [job_id for job_id in results[n:] if isinstance(job_id, int)]
    assert len(put) == n and len(set(put)) == n
    for i, job_id in enumerate(put):
        peeked = observer.queue.peek(job_id)
        assert peeked is not None and peeked.raw == _large(n + i)
    stats = observer.queue.stats_tube("in")
    assert (stats.current_jobs_ready, stats.current_jobs_reserved) == (0, n)
    assert observer.queue.stats_tube("out").current_jobs_ready == n
    # the stream is in sync: the next commands read their own replies
    assert client.queue.using() == "out"
    assert client.queue.stats_job(ready[-1]).state == "reserved"


def test_reserve_many_of_large_jobs(
    flavour: Flavour, make_client: ClientFactory, observer: Connection, endpoint: BeanstalkdServer
) -> None:
    """More reserves than the command buffers hold, taking more large jobs than the reply buffers hold."""
    link = _link(flavour, make_client, endpoint)
    jobs = _overflow(link.replies_held, LARGE, MIN_LARGE_JOBS)
    asked = _overflow(link.commands_held, RESERVE_COMMAND, jobs)
    ready = _fill(observer, "big", jobs)
    client = link.client
    client.watch("big")
    client.ignore("default")

    got = client.reserve_many(asked)  # drop=True: each is deleted on receipt

    assert [m.uid for m in got] == ready
    assert [m.raw for m in got] == [_large(i) for i in range(jobs)]
    stats = observer.queue.stats_tube("big")
    assert (stats.current_jobs_ready, stats.current_jobs_reserved) == (0, 0)
    assert (stats.total_jobs, stats.cmd_delete) == (jobs, jobs)
    # the stream is in sync: the next commands read their own replies
    assert client.reserve(timeout=0) is None
    observer.queue.put(b"one more")
    last = client.reserve(timeout=0, drop=False)
    assert last is not None and last.raw == b"one more"


def test_a_batch_without_timeout_does_not_deadlock(unix_server: BeanstalkdServer) -> None:
    """``timeout=None`` (the default) leaves the sync socket blocking: a plain ``send`` of a batch returns
    only once all of it is queued, so the driver must not start a large batch with one. Run in a thread:
    a deadlock would never end on its own (the server is stopped at teardown, which ends it)."""
    outcome: list[object] = []

    def batch() -> None:
        with Client(unix_socket=unix_server.unix_path, timeout=None) as client:
            assert client._transport is not None
            sock = client._transport.sock  # the sync connection's socket (private): its send buffer, fixed and small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_BUFFER)
            count = _overflow(_sysctl("net/core/wmem_default", 0, 256 * 1024), SHORTEST_INSERTED)
            sent = client.put_many(range(count), tube="nolimit")
            ids = {m.uid for m in sent}
            outcome.append(len(ids) == count and client.queue.stats_tube("nolimit").current_jobs_ready == count)

    thread = threading.Thread(target=batch, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the batch is stuck: the driver wrote without reading"
    assert outcome == [True]
