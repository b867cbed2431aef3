"""asyncio flavour of beanstalkm: :class:`AsyncConnection`, :class:`AsyncClient`,
:class:`AsyncMessage` and :class:`AsyncPool`.

Same names, arguments, defaults, errors and envelope as the sync API; the
per-command methods (``conn.queue``) are generated from the same spec, and the
conversation itself (``Session.exchange``) is the same I/O-free code: this
module only writes and reads the stream.

    async with AsyncClient(host="127.0.0.1", port=11300) as client:
        await client.put({"n": 1}, tube="jobs")
        await client.watch("jobs")
        message = await client.reserve(timeout=5, drop=False)

Cancelling a task while it waits for a reply (say, in a blocking
``reserve``) closes that connection, so no stale reply is ever read as the
next command's; the next call connects again and restores the used tube and
the watch list (beanstalkd releases a job reserved on a closed connection).
"""

from __future__ import annotations

__all__ = ["AsyncClient", "AsyncConnection", "AsyncMessage", "AsyncPipeline", "AsyncPool"]

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

from beanstalkm._client import (
    ClientCore,
    PutBatch,
    delete_requests,
    deleted,
    finish_reserve_many,
    reserve_many_requests,
    reserve_many_steps,
)
from beanstalkm._connection import _RECV, _UNSET, DEFAULT_HOST, DEFAULT_PORT, ConnectionBase, PipelineBase
from beanstalkm._errors import BatchFailed, CommandFailed, InvalidArgument, InvalidEnvelope
from beanstalkm._generated import commands as _c
from beanstalkm._generated.aqueue import AsyncQueue
from beanstalkm._generated.commands import DEFAULT_DELAY, DEFAULT_PRIORITY, DEFAULT_TTR
from beanstalkm._generated.errors import TimedOut
from beanstalkm._generated.stats import JobStats
from beanstalkm._message import DEFAULT_TUBE, MessageBase, MessageFields
from beanstalkm._session import Exchange, Session
from beanstalkm._wire import ReplyReader, Request, check_bool, check_items

T = TypeVar("T")

_Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


_NO_LEASE = contextlib.nullcontext()


class AsyncMessage(MessageBase):
    """A message bound to an :class:`AsyncConnection`; lifecycle methods are awaitable.

    ``priority``, ``delay`` and ``ttr`` are None for a received job until
    known (``await message.stats()`` learns them); ``release()`` and
    ``bury()`` still keep the job's own priority by default.
    """

    __slots__ = ("_conn", "_lease")

    def __init__(self, conn: AsyncConnection, body: Any, **kwargs: Unpack[MessageFields]) -> None:
        super().__init__(body, **kwargs)
        self._conn = conn
        self._lease: Callable[[], None] | None = None  # AsyncPool.reserve: gives the connection back

    def _settling(self) -> contextlib.AbstractContextManager[None]:
        """Around a delete, release or bury: see ``_leased`` (nothing to do without a lease)."""
        return _NO_LEASE if self._lease is None else self._leased()

    @contextlib.contextmanager
    def _leased(self) -> Iterator[None]:
        """Once the reservation is over (settled, refused by the server, or void with a dropped
        connection) a connection lent by :class:`AsyncPool` goes back to it; not when the call
        was refused before sending, or cancelled in line."""
        try:
            yield
        except CommandFailed:
            self._end_lease()
            raise
        finally:
            if not self.reserved or not self._conn.connected:
                self._end_lease()

    def _end_lease(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease()

    @property
    def priority(self) -> int | None:
        """The job's priority, when known."""
        return self._priority

    @property
    def delay(self) -> int | None:
        """The job's delay, when known."""
        return self._delay

    @property
    def ttr(self) -> int | None:
        """The job's time to run, when known."""
        return self._ttr

    async def _own_priority(self, priority: int | None) -> int:
        if priority is not None:
            return priority
        if self._priority is None:
            await self._job_stats()
        return self._priority if self._priority is not None else DEFAULT_PRIORITY

    async def _job_stats(self) -> JobStats:
        stats = await self._conn.queue.stats_job(self.uid)
        self._learn(stats)
        return stats

    async def send(self, tube: str = DEFAULT_TUBE) -> int:
        """Put this message into ``tube``; returns (and sets) its ``uid``. ``queue.using()`` is not changed."""
        return self._sent(await self._conn._execute(self._put_request(self._conn._sender_wire), tube=tube))

    async def delete(self) -> None:
        """Delete the job; afterwards ``deleted`` is True and ``stats()`` returns None."""
        with self._settling():
            if self._deletable():
                await self._conn.queue.delete(self.uid)
            self._deleted()

    async def release(self, priority: int | None = None, delay: int | None = None) -> None:
        """Release the reserved job (keeping its own priority unless one is given)."""
        with self._settling():
            delay = self._check_settling(priority, delay)
            await self._conn.queue.release(self.uid, await self._own_priority(priority), delay)
            self._settled(priority)

    async def bury(self, priority: int | None = None) -> None:
        """Bury the reserved job (keeping its own priority unless one is given)."""
        with self._settling():
            await self._conn.queue.bury(self.uid, await self._own_priority(priority))
            self._settled(priority)

    async def kick(self) -> None:
        """Kick this buried or delayed job to ready."""
        await self._conn.queue.kick_job(self.uid)

    async def touch(self) -> None:
        """Ask for more time to work on the reserved job."""
        await self._conn.queue.touch(self.uid)

    async def stats(self) -> JobStats | None:
        """The job's statistics, or None once it is deleted (or before it is sent)."""
        return await self._job_stats() if self._has_stats() else None


class AsyncConnection(ConnectionBase[AsyncMessage]):
    """An asyncio connection to one beanstalkd (TCP or UNIX socket).

    Created unconnected: ``async with`` (or ``await conn.connect()``, or the
    first command) connects. Commands from concurrent tasks are serialized by
    a lock, each holding it from its write to its last reply; a blocking
    reserve holds the connection, so give each consumer its own (see
    :class:`AsyncPool`).
    """

    def _setup(self) -> None:
        self.queue = AsyncQueue(self)
        self._streams: _Streams | None = None
        self._blocking = False
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._streams is not None

    async def connect(self) -> None:
        """Connect (if not connected) and restore the watch list."""
        async with self._lock:
            if self._streams is None:
                await self._open()

    async def _open(self) -> _Streams:
        try:
            async with asyncio.timeout(self.timeout):
                if self.unix_socket is not None:
                    streams = await asyncio.open_unix_connection(self.unix_socket)
                else:
                    streams = await asyncio.open_connection(self.host, self.port)
                    sock = streams[1].get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise self._connect_error(exc) from exc
        self._streams = streams
        self._reader.clear()
        restore = self._session.connected()
        if restore:
            for result in await self._exchange(streams, restore, None):
                if isinstance(result, BaseException):
                    raise result
        return streams

    async def close(self) -> None:
        """Send ``quit`` and close the stream. A later command connects again.

        A command in progress in another task finishes first, except a
        ``reserve`` waiting for a job: that one is cut short (its task gets a
        ``SocketError``; beanstalkd keeps any job it had not yet handed out).
        """
        if self._blocking:
            self._drop()
            return
        async with self._lock:
            streams, self._streams = self._streams, None
            self._reader.clear()
            if streams is not None:
                writer = streams[1]
                with contextlib.suppress(OSError):
                    writer.write(b"quit\r\n")
                    writer.close()
                    await writer.wait_closed()

    async def reconnect(self) -> None:
        """Close and connect again, restoring the used tube and the watch list."""
        await self.close()
        await self.connect()

    def _drop(self) -> None:
        streams, self._streams = self._streams, None
        self._reader.clear()
        if streams is not None:
            streams[1].close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _execute(self, request: Request[T], tube: str | None = None) -> T:
        """Send one command (with whatever must precede it) and return its decoded reply.

        The common case (nothing to put in force first, a reply expected) takes
        a direct path; everything else goes through the session's exchange.
        """
        async with self._lock:
            streams = self._streams or await self._open()
            session, reader = self._session, self._reader
            if not request.expects_reply or reader.buffered or not session.simple(request, tube):
                results = await self._exchange(streams, (request,), tube)
                if request.effect == "close":
                    self._drop()
                return self._result(request, results)
            session.written = False
            try:
                writer = streams[1]
                writer.write(request.data)
                session.written = True
                if writer.transport.get_write_buffer_size():
                    await self._drain(writer)
                reply = None  # nothing was buffered: the reply is all to come
                while reply is None:
                    reply = reader.read(await self._io(streams, request.wait))
            except BaseException as exc:  # cancellation included: never leave a reply unread on a live stream
                raise self._failure(exc, (request,))  # noqa: B904 - the cause is set
            return self._decoded(request, reply)

    async def _run(
        self, requests: Sequence[Request[Any]], tube: str | None = None, meanwhile: Callable[[], object] | None = None
    ) -> list[Any]:
        """Pump the session's exchange for a batch over this stream; each item's result or exception."""
        return await self._converse(
            lambda session, reader: session.exchange(reader, requests, tube, meanwhile), requests
        )

    async def _converse(
        self, start: Callable[[Session, ReplyReader], Exchange[T]], requests: Sequence[Request[Any]]
    ) -> T:
        """Pump a conversation (``start(session, reader)``, begun once connected) over this stream."""
        async with self._lock:
            streams = self._streams or await self._open()
            return await self._pump(streams, start(self._session, self._reader), requests)

    async def _exchange(self, streams: _Streams, requests: Sequence[Request[Any]], tube: str | None) -> list[Any]:
        return await self._pump(streams, self._session.exchange(self._reader, requests, tube), requests)

    async def _pump(self, streams: _Streams, steps: Exchange[T], requests: Sequence[Request[Any]]) -> T:
        try:
            step = next(steps)
            while True:
                step = steps.send(await self._io(streams, step))
        except StopIteration as done:
            result: T = done.value
            return result
        except BaseException as exc:  # cancellation included: never leave a reply unread on a live stream
            raise self._failure(exc, requests)  # noqa: B904 - the cause is set

    async def _io(self, streams: _Streams, step: bytes | float | None) -> bytes:
        """One step of an exchange: write bytes, or wait for more."""
        reader, writer = streams
        if isinstance(step, bytes):
            writer.write(step)  # sends what the socket takes at once: whole commands may reach the server
            self._session.written = True
            # No drain: the transport sends the rest as the server takes it while the
            # exchange reads the replies. Waiting here for the whole batch to go out
            # would deadlock with a server that stops reading until its replies are read.
            return b""
        self._blocking = step != 0.0  # a reserve waiting for a job: close() may cut it short
        timeout = self._read_timeout(step)
        try:
            if timeout is None:
                chunk = await reader.read(max(_RECV, self._reader.missing()))
            else:
                async with asyncio.timeout(timeout):
                    chunk = await reader.read(max(_RECV, self._reader.missing()))
        finally:
            self._blocking = False
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return chunk

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait until the write buffer drains; ``TimeoutError`` after ``timeout`` seconds without progress
        (as the sync driver's timeout bounds each send), so a stopped server cannot hold a big write forever."""
        while True:
            pending = writer.transport.get_write_buffer_size()
            if not pending or self.timeout is None:  # all sent (the usual case), or no bound: nothing to time
                await writer.drain()
                return
            try:
                async with asyncio.timeout(self.timeout):
                    await writer.drain()
                return
            except TimeoutError:
                if writer.transport.get_write_buffer_size() >= pending:
                    raise

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> AsyncMessage:
        return AsyncMessage(self, body, **kwargs)

    def pipeline(self) -> AsyncPipeline:
        """Queue commands and send them in one write: ``async with conn.pipeline() as p: ...``."""
        return AsyncPipeline(self)

    async def _batch(
        self, requests: Sequence[Request[Any]], tube: str | None = None, meanwhile: Callable[[], object] | None = None
    ) -> list[Any]:
        """One pipelined batch; results in order, jobs as messages; ``BatchFailed`` if any failed."""
        return self._batch_results(requests, await self._run(requests, tube, meanwhile) if requests else [])


class AsyncPipeline(PipelineBase["AsyncConnection"]):
    """Commands queued on an :class:`AsyncConnection`, sent in one write by ``await execute()``."""

    __slots__ = ()

    async def execute(self) -> list[object]:
        """Send the queued commands; their results in order (jobs as messages)."""
        self.results = await self._conn._batch(self._take())
        return self.results

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self._requests:
            await self.execute()
        self._requests = []


class AsyncClient(ClientCore[AsyncMessage], AsyncConnection):
    """An :class:`AsyncConnection` that sends and receives :class:`AsyncMessage` envelopes.

    The same methods as :class:`beanstalkm.Client`, awaitable.
    """

    async def put(
        self,
        body: Any,
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
        subscribe: str | None = None,
        sender: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> AsyncMessage:
        """Wrap ``body`` in the envelope and put it into ``tube``; returns the sent message."""
        message = self(
            body, subscribe=subscribe, sender=sender, channel=channel, priority=priority, delay=delay, ttr=ttr
        )
        await message.send(tube)
        return message

    async def reserve(self, timeout: int | None = None, drop: bool = True) -> AsyncMessage | None:
        """Reserve a message; None on timeout. ``drop=True`` deletes it on receipt (see ``Client.reserve``)."""
        check_bool("drop", drop)
        try:
            message = await (self.queue.reserve() if timeout is None else self.queue.reserve_with_timeout(timeout))
        except TimedOut:
            return None
        if drop:
            await message.delete()
        return message

    async def watch(self, tube: str) -> int:
        """Watch ``tube``; restored after a reconnect."""
        return await self.queue.watch(tube)

    async def ignore(self, tube: str) -> int:
        """Stop watching ``tube``."""
        return await self.queue.ignore(tube)

    async def put_many(
        self,
        bodies: Iterable[Any],
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
    ) -> list[AsyncMessage]:
        """Put many bodies into ``tube`` in one pipelined write (see ``Client.put_many``)."""
        batch = PutBatch(self, bodies, tube, priority, delay, ttr)
        try:
            ids = await self._batch(batch.requests, tube, batch.build)
        except BatchFailed as exc:
            raise batch.failed(exc) from None
        return batch.sent(ids)

    async def reserve_many(self, n: int, timeout: int = 0, drop: bool = True) -> list[AsyncMessage]:
        """Up to ``n`` messages, fewer when fewer are ready (see ``Client.reserve_many``)."""
        requests = reserve_many_requests(n, timeout, drop)
        if not requests:
            return []
        to_message = self._reserved_message
        messages, outcomes = await self._converse(
            lambda session, reader: reserve_many_steps(session, reader, requests, drop, to_message), requests
        )
        return finish_reserve_many(messages, outcomes)

    async def delete_many(self, messages: Iterable[AsyncMessage | int]) -> None:
        """Delete many jobs (messages or ids) in one pipelined write."""
        items = check_items("messages", messages)
        try:
            await self._batch(delete_requests(items))
        except BatchFailed as exc:
            deleted(items, exc.results)
            raise
        deleted(items)


class _PoolConnection(AsyncClient):
    """Runs each command on a connection borrowed from its pool for that command, so the
    messages of ``AsyncPool.put`` (and settled ones of ``AsyncPool.reserve``) never wait
    behind another task's blocking reserve."""

    _pool: AsyncPool

    async def _converse(
        self, start: Callable[[Session, ReplyReader], Exchange[T]], requests: Sequence[Request[Any]]
    ) -> T:
        client = await self._pool._borrow()
        try:
            return await client._converse(start, requests)
        finally:
            self._pool._give_back(client)

    async def _execute(self, request: Request[T], tube: str | None = None) -> T:
        client = await self._pool._borrow()
        try:
            return await client._execute(request, tube)
        finally:
            self._pool._give_back(client)


class AsyncPool:
    """A pool of :class:`AsyncClient` connections for many concurrent tasks.

    A blocking reserve holds its connection, so one connection cannot serve
    many consumers: each ``async with pool.client() as c:`` borrows one (up to
    ``size``; more callers wait). Every pooled connection watches ``watch``
    and uses ``default``; a client given back with another watch list or used
    tube leaves the pool. ``put``/``reserve`` borrow a client for one call; a
    job ``reserve`` leaves reserved keeps its connection until the message is
    deleted, released or buried. Later calls on such messages borrow a
    connection each.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float | None = _UNSET,
        *,
        size: int = 10,
        watch: Sequence[str] = (),
        unix_socket: str | None = None,
        validate: bool | None = None,
    ) -> None:
        if type(size) is not int or size < 1:
            raise InvalidArgument("size", size, "must be a positive int")
        self._args = (host, port, timeout)
        self._kwargs: dict[str, Any] = {"unix_socket": unix_socket, "validate": validate}
        self._watch = list(dict.fromkeys(_c.TUBE_RULE.check("watch", tube) for tube in check_items("watch", watch)))
        self._watching = set(self._watch) if self._watch else {"default"}  # what a pooled connection watches
        self._idle: list[AsyncClient] = []
        self._all: list[AsyncClient] = []
        self._slots = asyncio.Semaphore(size)
        self.size = size
        self._shared = _PoolConnection(host, port, timeout, unix_socket=unix_socket, validate=validate)
        self._shared._pool = self

    async def _new(self) -> AsyncClient:
        client = AsyncClient(*self._args, **self._kwargs)
        await client.connect()
        for tube in self._watch:
            await client.watch(tube)
        if self._watch and "default" not in self._watch:
            await client.ignore("default")
        self._all.append(client)
        return client

    async def _borrow(self) -> AsyncClient:
        await self._slots.acquire()
        try:
            return self._idle.pop() if self._idle else await self._new()
        except BaseException:
            self._slots.release()
            raise

    def _give_back(self, client: AsyncClient) -> None:
        """A borrowed client back to the pool; out of it if it broke (or the pool was closed meanwhile)."""
        if client in self._all:
            session = client._session
            if client.connected and session.using == "default" and set(session.watching) == self._watching:
                self._idle.append(client)
            else:
                self._all.remove(client)
                client._drop()
        self._slots.release()

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[AsyncClient]:
        """Borrow a connected client; it goes back to the pool afterwards (out of it if it broke)."""
        client = await self._borrow()
        try:
            yield client
        finally:
            self._give_back(client)

    async def put(
        self,
        body: Any,
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
        subscribe: str | None = None,
        sender: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> AsyncMessage:
        """``AsyncClient.put`` on a borrowed connection."""
        return await self._shared.put(body, tube, priority, delay, ttr, subscribe, sender, channel)

    async def reserve(self, timeout: int | None = None, drop: bool = True) -> AsyncMessage | None:
        """``AsyncClient.reserve`` on a borrowed connection.

        beanstalkd ties a reservation to its connection, so a job left reserved
        (``drop=False``, or the message of an ``InvalidEnvelope``) keeps that
        connection and its place in the pool until the message is deleted,
        released or buried: no other task can block it in a reserve meanwhile.
        """
        client = await self._borrow()
        try:
            message = await client.reserve(timeout=timeout, drop=drop)
        except InvalidEnvelope as exc:
            self._lend(client, exc.message)
            raise
        except BaseException:
            self._give_back(client)
            raise
        self._lend(client, message)
        return message

    def _lend(self, client: AsyncClient, message: object) -> None:
        """Leave ``client`` with ``message`` while it holds a reservation, else give it back."""
        if isinstance(message, AsyncMessage) and message.reserved and client.connected:
            message._lease = lambda: self._settled(client, message)
        else:
            self._give_back(client)

    def _settled(self, client: AsyncClient, message: AsyncMessage) -> None:
        """A lent reservation is over: the client goes back, the message borrows from now on."""
        self._give_back(client)
        message._conn = self._shared

    async def close(self) -> None:
        """Close every connection."""
        clients, self._all, self._idle = self._all, [], []
        for client in clients:
            await client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
