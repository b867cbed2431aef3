"""The stream stays in step, or the connection is dropped: stray replies, framed replies that do
not decode, a restore that fails on reconnect, dropped async connections, cancelled reserves,
``message.reserved`` after the reservation is gone, and ``reserve_many`` against short TTRs.

Both flavours where both exist (``make_client``/``make_connection``); a fake server
(``_fake.py``) only for what beanstalkd will not do on demand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from beanstalkm import (
    BatchFailed,
    Client,
    Connection,
    CorruptJob,
    NotFound,
    ProtocolError,
    SocketError,
    TimedOut,
)
from beanstalkm._core.requests import Job
from beanstalkm.aio import AsyncClient, AsyncConnection, AsyncMessage
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._fake import PATIENCE, FakeServer
from ._flavours import ClientFactory, ConnectionFactory


def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.close()


# -- 4. a stray reply --------------------------------------------------------------------------


def _put_direct(c: Client) -> object:
    return c.queue.put(b"job")


def _put_routed(c: Client) -> object:
    return c.put({"n": 1}, tube="elsewhere")


def _put_pipelined(c: Client) -> object:
    with c.pipeline() as p:
        p.put(b"job").put(b"job")
    return p.results


@pytest.mark.parametrize("call", [_put_direct, _put_routed, _put_pipelined], ids=["direct", "routed", "pipeline"])
def test_a_stray_reply_waiting_before_a_command_is_a_protocol_error(
    fake: FakeServer, make_client: ClientFactory, call: Callable[[Client], object]
) -> None:
    """Written first (failed before the fix: the stray was taken as the put's reply, every later one a step behind)."""
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    assert client.queue.put(b"first") == 1
    fake.inject(b"INSERTED 99\r\n")  # a reply to no command
    time.sleep(0.2)  # it reaches the client's socket (or the asyncio stream's buffer)
    sent = len(fake.log)
    with pytest.raises(ProtocolError, match="not sent"):
        call(client)
    assert len(fake.log) == sent, "the command was sent behind a stray reply"
    assert not client.connected
    fake.wait_closed()
    assert client.queue.put(b"next") == 2  # a new connection, in step
    assert client.connected


def test_a_stray_reply_glued_to_a_reply_is_a_protocol_error(fake: FakeServer, make_client: ClientFactory) -> None:
    """Written first (failed before the fix: put returned 1, the next put the stray 99)."""
    fake.answer = lambda line, body: b"INSERTED 1\r\nINSERTED 99\r\n" if fake.commands("put") == 1 else NotImplemented
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    with pytest.raises(ProtocolError, match="more than"):
        client.queue.put(b"first")
    assert not client.connected
    assert client.queue.put(b"second") == 1  # fake.next_id: the first put was answered by the script
    fake.wait_closed(1)


def test_a_stray_reply_after_a_batch_is_a_protocol_error(fake: FakeServer, make_client: ClientFactory) -> None:
    fake.answer = lambda line, body: b"INSERTED 2\r\nINSERTED 3\r\n" if fake.commands("put") == 2 else NotImplemented
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    with pytest.raises(ProtocolError, match="more than"):
        _put_pipelined(client)
    assert not client.connected
    assert client.queue.put(b"next") == 2  # the first put was fake.next_id's 1


# -- 5. a framed reply that does not decode ----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reply", "call"),
    [
        ("put", b"INSERTED 5 3\r\n", lambda c: c.queue.put(b"x")),
        ("put", b"INSERTED -5\r\n", lambda c: c.put({"x": 1}, tube="t")),
        ("peek", b"FOUND -1 3\r\nabc\r\n", lambda c: c.queue.peek(1)),
        ("peek", b"FOUND 1 3\r\nabcd\r\n", lambda c: c.queue.peek(1)),
    ],
    ids=["put-arity", "routed-put-negative", "peek-negative-id", "peek-lying-length"],
)
def test_a_protocol_error_drops_the_connection(
    fake: FakeServer, make_client: ClientFactory, command: str, reply: bytes, call: Callable[[Client], object]
) -> None:
    """Written first (failed before the fix: the connection was kept, the leftovers read as the next reply)."""
    fake.answer = lambda line, body: reply if line.split()[0] == command and fake.accepted == 1 else NotImplemented
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    with pytest.raises(ProtocolError):
        call(client)
    assert not client.connected
    fake.wait_closed()
    assert client.queue.put(b"next") == 1  # reconnected, in step
    assert client.connected


def test_a_broken_reply_and_a_stray_reply_are_logged_at_warning(
    fake: FakeServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection they drop is named on ``beanstalkm.connection``, at WARNING (nothing is printed)."""
    fake.answer = lambda line, body: b"INSERTED 5 3\r\n" if fake.accepted == 1 else NotImplemented
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    with caplog.at_level(logging.WARNING, logger="beanstalkm.connection"), pytest.raises(ProtocolError):
        client.queue.put(b"x")
    warnings = [r for r in caplog.records if r.name == "beanstalkm.connection" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(fake.port) in warnings[0].getMessage(), caplog.records
    assert "dropped" in warnings[0].getMessage()
    caplog.clear()
    assert client.queue.put(b"next") == 1  # reconnected
    fake.inject(b"INSERTED 99\r\n")  # a reply to no command
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, logger="beanstalkm.connection"), pytest.raises(ProtocolError):
        client.queue.put(b"later")
    warnings = [r for r in caplog.records if r.name == "beanstalkm.connection" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "reply to no command" in warnings[0].getMessage(), caplog.records


def test_a_protocol_error_in_a_batch_drops_the_connection(fake: FakeServer, make_client: ClientFactory) -> None:
    fake.answer = lambda line, body: b"INSERTED 5 3\r\n" if fake.commands("put") == 2 else NotImplemented
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    with pytest.raises(BatchFailed) as info:
        _put_pipelined(client)
    assert info.value.results[0] == 1
    assert isinstance(info.value.results[1], ProtocolError)
    assert not client.connected
    fake.wait_closed()


def test_a_corrupt_job_keeps_the_connection(fake: FakeServer, make_client: ClientFactory) -> None:
    fake.answer = lambda line, body: b"FOUND 4 3\r\n\x00\x00\x00\x00\x00" if line.startswith("peek") else NotImplemented
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    with pytest.raises(CorruptJob):
        client.queue.peek(4)
    assert client.connected
    assert client.queue.put(b"next") == 1
    assert fake.accepted == 1


# -- 6. a restore that times out ---------------------------------------------------------------


def test_a_restore_that_times_out_leaves_the_command_unsent(
    server: BeanstalkdServer, make_client: ClientFactory, make_connection: ConnectionFactory
) -> None:
    """Written first (failed before the fix: the put got the watch's error, maybe_executed=True)."""
    observer = make_connection(server.host, server.port, timeout=10)
    client = make_client(server.host, server.port, timeout=0.5)
    client.watch("w1")
    client.close()
    server.pause()
    try:
        with pytest.raises(SocketError) as info:
            client.put({"n": 1}, tube="t")
    finally:
        server.resume()
    assert info.value.maybe_executed is False
    assert "restor" in str(info.value) and "not sent" in str(info.value)
    assert not client.connected
    _until(lambda: observer.queue.stats().current_connections == 1, "the stalled connection closed")
    assert observer.queue.stats()["cmd-put"] == 0
    client.put({"n": 2}, tube="t")
    assert observer.queue.stats()["cmd-put"] == 1
    assert sorted(client.queue.watching()) == ["default", "w1"]


# -- 11. a restore the server refuses ----------------------------------------------------------


def test_a_restore_the_server_refuses_drops_the_new_connection(fake: FakeServer, make_client: ClientFactory) -> None:
    """Written first (failed before the fix: OutOfMemory, and the new connection kept watching default)."""

    def answer(line: str, body: bytes | None) -> object:
        if line.startswith("watch"):
            return b"WATCHING 2\r\n" if fake.accepted == 1 else b"OUT_OF_MEMORY\r\n"
        if line.startswith("ignore"):
            return b"WATCHING 1\r\n"
        if line.startswith("reserve-with-timeout"):
            return b"RESERVED 8 7\r\nfrom-da\r\n"  # what a connection still watching default would get
        return NotImplemented

    fake.answer = answer
    client = make_client(fake.host, fake.port, timeout=2, validate=False)
    client.watch("mine")
    client.ignore("default")
    client.close()
    for _ in range(2):  # each later call tries again, and fails the same way
        with pytest.raises(SocketError) as info:
            client.reserve(timeout=0)
        assert "restor" in str(info.value) and "OUT_OF_MEMORY" in str(info.value)
        assert info.value.maybe_executed is False
        assert not client.connected
        fake.wait_closed()
    assert fake.commands("reserve-with-timeout") == 0


# -- 12. async: a dropped connection is gone at once -------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_async_dropped_connections_are_closed_at_once(server_factory: ServerFactory) -> None:
    """Written first (failed before the fix: every dropped transport kept its fd and its buffered put,
    and the server stored each of them once it woke)."""
    server = server_factory(max_job_size=21 * 2**20)
    big = b"x" * (20 * 2**20)

    async def main() -> None:
        with Connection(server.host, server.port, timeout=10) as observer:
            client = AsyncConnection(server.host, server.port, timeout=0.3)
            await client.connect()
            await client.queue.list_tubes()
            before = _open_fds()
            server.pause()
            try:
                for _ in range(6):
                    with pytest.raises(SocketError):
                        await client.queue.put(big)
                    assert not client.connected
                await asyncio.sleep(0.05)
                after = _open_fds()
            finally:
                server.resume()
            assert after < before, f"{after - before + 1} dropped connection(s) still hold an fd"
            deadline = time.monotonic() + PATIENCE
            while observer.queue.stats().current_connections > 1:
                assert time.monotonic() < deadline, "the dropped connections stayed open"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # anything still buffered somewhere would arrive now
            stats = observer.queue.stats()
            assert stats.total_jobs == 0, f"{stats.total_jobs} put(s) of dropped connections were stored"
            assert stats.current_connections == 1

    asyncio.run(main())


# -- 7. cancelled reserves leave no orphaned reservation ---------------------------------------


def test_async_reserve_drop_cancelled_on_a_shared_connection_orphans_nothing(server: BeanstalkdServer) -> None:
    """Written first (failed before the fix: the job stayed reserved by a live connection no task held)."""

    async def main() -> None:
        with Connection(server.host, server.port, timeout=10) as observer:
            async with AsyncClient(server.host, server.port, timeout=5) as client:
                first = asyncio.create_task(client.reserve(timeout=5, drop=True))
                deadline = time.monotonic() + PATIENCE
                while observer.queue.stats().current_waiting != 1:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
                second = asyncio.create_task(client.queue.reserve_with_timeout(1))  # waits for the connection
                await asyncio.sleep(0.05)
                job_id = observer.queue.put(b"the job")
                await asyncio.sleep(0.2)  # the first reserve got it; the second now holds the connection
                first.cancel()
                try:
                    message = await first
                except asyncio.CancelledError:
                    message = None
                state: str
                try:
                    state = observer.queue.stats_job(job_id).state
                except NotFound:
                    state = "deleted"
                assert state != "reserved" or not client.connected, "a reservation no task holds"
                if message is not None:
                    assert message.deleted and state == "deleted"
                with pytest.raises(TimedOut):
                    await second

    asyncio.run(main())


class _Interrupted(Exception):
    pass


N_JOBS = 100
CANCEL_AT = 40  # the reserve_many is interrupted once this many messages were decoded


@pytest.mark.parametrize("drop", [True, False], ids=["drop", "keep"])
@pytest.mark.parametrize("how", ["sync", "async", "async-cancelled"])
def test_an_interrupted_reserve_many_loses_only_what_it_deleted(server: BeanstalkdServer, how: str, drop: bool) -> None:
    """Every job is deleted (its delete reached the server) or ready again at once; none stays reserved.
    The interruption comes while a message is decoded: an exception, or (asyncio) the task's cancellation."""
    interruption: type[BaseException] = asyncio.CancelledError if how == "async-cancelled" else _Interrupted
    with Connection(server.host, server.port, timeout=10) as observer:
        observer.queue.use("batch")
        ids = [observer.queue.put(b"job %d" % i, ttr=3600) for i in range(N_JOBS)]
        decoded = [0]

        def count() -> None:
            decoded[0] += 1
            if decoded[0] == CANCEL_AT:
                raise interruption

        if how == "sync":

            class SyncInterrupting(Client):
                def _reserved_message(self, job: Job) -> Any:
                    count()
                    return super()._reserved_message(job)

            client = SyncInterrupting(server.host, server.port, timeout=5, validate=False)
            client.watch("batch")
            with pytest.raises(_Interrupted):
                client.reserve_many(N_JOBS, drop=drop)
            assert not client.connected
        else:

            class AsyncInterrupting(AsyncClient):
                def _reserved_message(self, job: Job) -> AsyncMessage:
                    count()
                    return super()._reserved_message(job)

            async def main() -> None:
                client = AsyncInterrupting(server.host, server.port, timeout=5, validate=False)
                await client.watch("batch")
                with pytest.raises(interruption):
                    await client.reserve_many(N_JOBS, drop=drop)
                assert not client.connected

            asyncio.run(main())

        _until(lambda: observer.queue.stats().current_connections == 1, "the interrupted connection closed")
        states: dict[str, int] = {}
        for job_id in ids:
            state: str
            try:
                state = observer.queue.stats_job(job_id).state
            except NotFound:
                state = "deleted"
            states[state] = states.get(state, 0) + 1
        deletes = observer.queue.stats()["cmd-delete"]
        assert states.get("reserved", 0) == 0, states
        assert states.get("deleted", 0) == deletes, (states, deletes)
        assert states.get("ready", 0) + states.get("deleted", 0) == N_JOBS
        if not drop:
            assert deletes == 0
        tube = observer.queue.stats_tube("batch")
        assert tube.current_jobs_reserved == 0
        assert tube.current_jobs_ready == states.get("ready", 0)


# -- message.reserved once the reservation is gone ---------------------------------------------


def test_reserved_turns_false_when_the_connection_closes(server: BeanstalkdServer, make_client: ClientFactory) -> None:
    """Written first (failed before the fix: reserved stayed True)."""
    client = make_client(server.host, server.port, timeout=5)
    client.put({"n": 1}, tube="default")
    message = client.reserve(timeout=0, drop=False)
    assert message is not None and message.reserved
    client.close()
    assert not message.reserved  # beanstalkd released it with the connection
    client.connect()
    assert not message.reserved


def test_reserved_turns_false_when_touch_gets_not_found(
    server: BeanstalkdServer, make_client: ClientFactory, make_connection: ConnectionFactory
) -> None:
    """Written first (failed before the fix: reserved stayed True)."""
    observer = make_connection(server.host, server.port, timeout=5)
    client = make_client(server.host, server.port, timeout=5)
    client.put({"n": 1}, tube="default")
    message = client.reserve(timeout=0, drop=False)
    assert message is not None and message.reserved
    client.queue.release(message.uid, 0, 0)  # behind the message's back: no longer reserved by anyone
    assert observer.queue.stats_job(message.uid).state == "ready"
    with pytest.raises(NotFound):
        message.touch()
    assert not message.reserved


# -- reserve_many and the batch's own DEADLINE_SOON -------------------------------------------


def test_reserve_many_stops_at_its_own_deadline_soon(
    server: BeanstalkdServer, make_client: ClientFactory, make_connection: ConnectionFactory
) -> None:
    """Written first (failed before the fix: BatchFailed, the three deleted messages only in e.results)."""
    observer = make_connection(server.host, server.port, timeout=5)
    client = make_client(server.host, server.port, timeout=5)
    for n in range(3):
        client.put({"n": n}, tube="short", ttr=1)
    client.watch("short")
    messages = client.reserve_many(5, drop=True)
    assert [m.body for m in messages] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(m.deleted and not m.reserved for m in messages)
    tube = observer.queue.stats_tube("short")
    assert (tube.total_jobs, tube.current_jobs_ready, tube.current_jobs_reserved) == (3, 0, 0)
    assert observer.queue.stats()["cmd-delete"] == 3
    # kept: the batch's messages stay reserved, and a later reserve still hears of the deadline
    for n in range(2):
        client.put({"n": n}, tube="short", ttr=1)
    kept = client.reserve_many(5, drop=False)
    assert len(kept) == 2 and all(m.reserved for m in kept)
    assert observer.queue.stats_tube("short").current_jobs_reserved == 2
