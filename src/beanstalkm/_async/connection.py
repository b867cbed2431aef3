"""The connection: one stream to one beanstalkd, and its pipeline (the one source of both flavours,
docs/architecture.md). I/O goes through the transport; the conversation is the I/O-free session."""

from __future__ import annotations

__all__ = ["AsyncConnection", "AsyncPipeline", "converse_all"]

import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from beanstalkm._async import ASYNC
from beanstalkm._async.message import AsyncMessage
from beanstalkm._core.base import ConnectionBase, PipelineBase
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import MISS, Command, Request
from beanstalkm._core.session import Exchange, Session, out_of_step
from beanstalkm._errors import CorruptJob, ProtocolError
from beanstalkm._generated.aqueue import AsyncQueue
from beanstalkm._generated.effects import Effect
from beanstalkm._transport.streams import RECV, StreamTransport, new_lock, receive_any

if ASYNC:
    import asyncio

    from beanstalkm._core.requests import Reply
    from beanstalkm._generated import commands as _c
    from beanstalkm._transport.pipelined import QUICK, Alone, Cancelled, Pipelined

    _log = logging.getLogger("beanstalkm.aio")

T = TypeVar("T")

log = logging.getLogger("beanstalkm.connection")


class AsyncConnection(ConnectionBase[AsyncMessage]):
    """An asyncio connection to one beanstalkd, over TCP or a UNIX socket.

    Created unconnected: ``async with`` (or ``await conn.connect()``, or the
    first command) connects.

    ``timeout`` bounds connecting, each write and every wait for a reply, in seconds
    (``None``: wait forever); it defaults to ``socket.getdefaulttimeout()``. It is
    more than 0 and at most ``MAX_TIMEOUT``; ``port`` is 1 to 65535; ``max_body``
    (the largest reply body taken, stats included) is 0 to 1 GiB. The constructor
    checks every argument (``InvalidArgument``, ``ArgumentTypeError``) before connecting.
    A blocking ``reserve`` waits as long as the server may legitimately take:
    forever for ``reserve``, the reserve timeout plus ``timeout`` for
    ``reserve_with_timeout``.

    After a connection error the next call connects again and restores the
    used tube and the watch list; a command whose reply was lost is never
    re-sent (``SocketError.maybe_executed`` says it may have run).

    Commands from concurrent tasks are auto-pipelined: those that change no
    connection state (``put`` to the tube in force, ``delete``, ``release``,
    ``stats``, a reserve that does not wait, ...) are written together, one
    write per event-loop turn, and their replies matched to them in order. A
    task cancelled meanwhile costs nothing: its command is not sent if it was
    not yet written, else its reply is read and dropped (a job a reserve took
    goes back to ready), and the stream stays in step. Everything else (a
    reserve that waits, ``use``, ``watch``, a batch, ``reserve(drop=True)``, a
    put that needs a ``use`` first) holds the connection alone from its write
    to its last reply, once the replies in flight are in. A blocking reserve
    holds it as long as it waits, so give each consumer its own (``AsyncPool``
    does).
    """

    def _setup(self) -> None:
        self.queue = AsyncQueue(self)
        self._transport: StreamTransport | None = None
        self._lock = new_lock()
        if ASYNC:
            self._pipe: Pipelined | None = None
            self._alone = Alone(self._lock)  # held for everything that is not pipelined
        else:
            self._alone = self._lock
        if not ASYNC:
            self.connect()

    # -- connection management -------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None

    async def connect(self) -> None:
        """Connect (if not connected) and restore the watch list; the used tube is restored when next needed."""
        async with self._alone:
            if self._transport is None:
                await self._open()

    async def _open(self) -> StreamTransport:
        try:
            transport = await StreamTransport.open(self.host, self.port, self.unix_socket, self.timeout, self.ssl)
        except OSError as exc:
            raise self._connect_error(exc) from exc
        self._transport = transport
        self._reader.clear()
        if ASYNC:
            self._pipe = Pipelined(transport, self._reader, self.timeout, self._pipe_lost, self._max_body)
        restore = self._session.connected()
        log.debug("connected to %s%s", self.url, f" (restoring {len(restore)} watch commands)" if restore else "")
        if restore:
            try:
                results = await self._pump(transport, self._session.exchange(self._reader, restore), restore)
            except Exception as exc:  # its connection is dropped
                raise self._restore_failed(exc) from exc
            for result in results:
                if isinstance(result, BaseException):
                    raise self._restore_failed(result) from result
        return transport

    async def _ready(self, requests: Sequence[Request[Any]]) -> StreamTransport:
        """The open transport (connecting if need be), in step (``_in_step``; nothing sent if not)."""
        transport = self._transport
        if transport is None:
            return await self._open()
        if ASYNC:
            pipe = self._pipe
            if pipe is not None and pipe.busy:  # pipelined commands first: their replies are theirs
                await pipe.drain()
                if self._transport is not transport:
                    return await self._ready(requests)
        self._in_step(transport, requests)
        return transport

    def _in_step(self, transport: StreamTransport, requests: Sequence[Request[Any]]) -> None:
        """Bytes waiting before a write are a reply to no command: a ``ProtocolError`` (the connection
        dropped). The end of the stream (the server closed it) is a ``SocketError`` saying the command
        was not sent (``maybe_executed=False``): written now, it would be lost unseen."""
        if self._reader.buffered or transport.readable():
            waiting = self._reader.buffered or transport.waiting()
            if waiting:
                raise self._stray(requests, waiting)
            if transport.ended():
                raise self._peer_gone(requests)

    @property
    def _link(self) -> object | None:
        return self._transport

    def _peer_closed(self) -> bool:
        """Whether the server closed this connection since its last command: a command written now
        would be lost, with an outcome that could not be known (a cluster drops it and connects first)."""
        transport = self._transport
        return transport is not None and transport.ended()

    async def close(self) -> None:
        """Send ``quit`` and close the connection. A later command connects again.

        A command in progress elsewhere finishes first, except a ``reserve``
        waiting for a job: that one is cut short (it gets a ``SocketError``;
        beanstalkd keeps any job it had not yet handed out).
        """
        transport = self._transport
        if transport is not None and transport.blocking:
            transport.interrupt()
        async with self._alone:
            if ASYNC:
                pipe = self._pipe
                if pipe is not None and pipe.busy:  # the pipelined commands in flight finish first
                    try:
                        await pipe.drain()
                    except Exception:  # noqa: S110 - their tasks get the error; this one closes all the same
                        pass
                self._pipe = None
            transport, self._transport = self._transport, None
            self._reader.clear()
            if transport is not None:
                await transport.quit()

    async def reconnect(self) -> None:
        """Close and connect again, restoring the used tube and the watch list."""
        await self.close()
        await self.connect()

    def _drop(self) -> None:
        if ASYNC:
            pipe, self._pipe = self._pipe, None
            if pipe is not None:
                pipe.fail(ConnectionResetError("the connection was dropped"))
        transport, self._transport = self._transport, None
        self._reader.clear()
        if transport is not None:
            transport.abort()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- running commands ------------------------------------------------------

    async def _execute(self, request: Request[T], tube: str | None = None) -> T:
        """Send one command (with whatever must precede it) and return its decoded reply; ``tube`` routes
        a ``put`` there without changing the used tube. The paths it takes: docs/hot-path.md."""
        if ASYNC:
            pipe = self._pipe
            if pipe is not None and request.body is None and (request.effect is None or self._reserve_now(request)):
                alone = self._alone
                if alone.holding:  # wait until nobody holds the connection alone: then all together
                    await alone.released()
                    pipe = self._pipe
                if pipe is not None and not alone.holding and self._session.simple(request, tube):
                    return await self._pipelined(pipe, request, request.head)
        async with self._alone:
            return await self._command(request, tube)

    async def _command(
        self, request: Command[T], tube: str | None = None, *, follows: bool = False, head: bytes | None = None
    ) -> T:
        """``_execute`` of ``request`` (its bytes ``head``, else its own) with the connection held (by the
        caller): connected and in step, a command answered at once is one send and one receive (the
        stray-reply check with them); everything else, the session's exchange. ``follows``: it is the
        next write of a conversation whose reply was just read whole, nothing more (the stream in step
        then, as between two steps of an exchange): no stray-reply check first."""
        if head is None:
            head = request.head
        transport = self._transport
        session, reader = self._session, self._reader
        if ASYNC:
            pipe = self._pipe
            if pipe is not None and pipe.busy:  # pipelined commands first (``_ready`` waits for them)
                transport = None
        at_once = request.wait == 0.0 and request.body is None
        if (
            transport is None  # connect first
            or (not follows and reader.buffered)  # out of step: _ready says so (after a reply read whole: empty)
            or not request.expects_reply
            or not session.simple(request, tube)  # a use first (routed elsewhere, or the used tube back)
            or (not at_once and not follows and transport.readable())  # bytes waiting (a stray reply), or the end
        ):
            return await self._execute_exchange(request.request(head), tube)
        session.written = False
        try:
            if at_once:  # one send, one receive (the stray-reply check first: None, nothing sent, if bytes wait)
                chunk = await transport.send_receive(head, session, not follows)
            else:
                await transport.send_command(request.request(head), session)
                chunk = await self._receive(transport, request.wait)
        except BaseException as exc:  # cancellation included: never leave a reply unread on a live stream
            raise self._failure(exc, (request.request(head),))  # noqa: B904 - the cause is set
        if chunk is None:  # bytes waiting before the write (a stray reply), or the end: the general path's check
            return await self._execute_exchange(request.request(head), tube)
        quick = request.quick
        if quick is not None:  # the usual reply (of a command that changes no state), from its bytes at once
            value = quick(chunk, self._max_body)
            if value is not MISS and not (transport.holds and transport.buffered()):
                return value
        try:
            reply = reader.one(chunk)  # nothing was buffered: the common case, exactly its reply at once
            if reply is None:  # in pieces, or more than its reply: the reader's general way
                reply = reader.read(chunk)
                while reply is None:
                    reply = reader.read(await self._receive(transport, request.wait))
                if reader.buffered:  # more than its reply came: the stream is out of step
                    raise out_of_step(request.command, reader.buffered)
            if transport.holds and transport.buffered():  # more than its reply came (a TLS or asyncio buffer)
                raise out_of_step(request.command, transport.buffered())
        except BaseException as exc:  # as above
            raise self._failure(exc, (request.request(head),))  # noqa: B904 - the cause is set
        try:
            value = request.decode(reply)
        except ProtocolError as exc:  # the reply broke the protocol: the stream cannot be trusted
            if not isinstance(exc, CorruptJob):  # (a damaged job was framed: the stream is fine)
                self._broken(exc)
            raise
        effect = request.effect
        if effect is not None and effect is not Effect.RESERVE:  # a reserve changes no connection state
            session.applied(request.request(head), value)
        return value

    if ASYNC:

        def _direct(self, head: bytes, command: Command[T], tube: str | None = None) -> Coroutine[Any, Any, T]:
            """``_execute`` of ``command``'s request whose bytes are ``head`` (its arguments checked), to
            ``tube`` if given: a generated queue method's entry, and ``Client.put``'s. No :class:`Request`
            is built unless the general path needs one. Not a coroutine itself: the caller awaits the
            pipelined command's own (one coroutine frame less per command, docs/hot-path.md)."""
            if not self._routes_execute:  # (a subclass's own ``_execute`` sees every command)
                pipe = self._pipe
                if (
                    pipe is not None
                    and command.body is None
                    and not self._alone.holding
                    and self._session.simple(command, tube)
                ):
                    return self._pipelined(pipe, command, head)
            return self._execute(command.request(head), tube)

    else:

        def _direct(self, head: bytes, command: Command[T], tube: str | None = None) -> T:
            """``_execute`` of ``command``'s request whose bytes are ``head`` (its arguments checked), to
            ``tube`` if given: a generated queue method's entry, and ``Client.put``'s. No :class:`Request`
            is built unless the general path needs one."""
            if self._routes_execute:  # a subclass's own ``_execute`` sees every command
                return self._execute(command.request(head), tube)
            with self._lock:
                return self._command(command, tube, head=head)

    _routes_execute = False
    """Whether this class, or one it derives from, routes ``_execute`` its own way (a pool's connection,
    a test's fake): then ``_direct`` hands it the request."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._execute is not AsyncConnection._execute:  # its own, or a mixin's before this class's
            cls._routes_execute = True

    async def _execute_exchange(self, request: Request[T], tube: str | None) -> T:
        """``_execute``'s general path, the connection held: connect (or check the stream is in step),
        then the session's exchange (a ``use`` first where needed; no reply for ``quit``)."""
        transport = await self._ready((request,))
        session, reader = self._session, self._reader
        results = await self._pump(transport, session.exchange(reader, (request,), tube), (request,))
        if request.effect is Effect.CLOSE:
            self._drop()
        result: T = results[0]
        if isinstance(result, BaseException):
            raise result
        return result

    async def _converse(
        self, start: Callable[[Session, ReplyReader], Exchange[T]], requests: Sequence[Request[Any]]
    ) -> T:
        """Pump a conversation (``start(session, reader)``, begun once connected)."""
        async with self._alone:
            transport = await self._ready(requests)
            return await self._pump(transport, start(self._session, self._reader), requests)

    if ASYNC:

        async def _pipelined(self, pipe: Pipelined, request: Command[T], head: bytes, kept: bool = False) -> T:
            """Send one command (``request``, its bytes ``head``) along with those of other tasks this turn;
            its decoded reply. ``kept``: once queued, it is written and its reply read even if the task is
            cancelled meanwhile."""
            try:
                entry = pipe.submit(head)  # the stray-reply check first, when nothing is in flight
                if entry is None:  # bytes wait before the write: a reply to no command (nothing sent)
                    self._in_step(pipe.transport, (request.request(head),))  # raises
                    entry = pipe.submit(head, False)
            except ConnectionResetError as exc:  # the stream is gone: nothing was written, so it cannot have run
                if pipe.error is None and self._pipe is pipe:  # the server had closed it: as the sync flavour says
                    raise self._peer_gone((request.request(head),)) from exc
                raise self._failure(exc, (request.request(head),), False, drop=self._pipe is pipe) from exc
            if request.effect is Effect.RESERVE:
                entry.on_drop = self._dropped_reserve  # (handed a reply, so never decoded as it is read)
            else:
                entry.quick = request.quick
            try:
                reply = await (asyncio.shield(entry.future) if kept else entry.future)
            except Cancelled:
                pipe.abandon(entry, kept)  # not sent, or its reply is (or was) read and dropped: in step
                raise
            except BaseException as exc:  # the stream failed: every command in flight on it gets an error
                raise self._failure(exc, (request.request(head),), entry.written, drop=self._pipe is pipe)  # noqa: B904
            if reply is QUICK:  # its usual success reply, decoded as it was read
                value: T = entry.value
                return value
            try:
                return request.decode(reply)  # no effect to record: only such commands are pipelined
            except ProtocolError as exc:
                if not isinstance(exc, CorruptJob) and self._pipe is pipe:  # the stream cannot be trusted
                    self._broken(exc)
                raise

        def _pipe_lost(self, pipe: Pipelined, error: BaseException) -> None:
            """The pipelined stream failed (every command on it told): the connection is dropped, with a
            warning if a reply broke the protocol."""
            if self._pipe is pipe:
                if isinstance(error, ProtocolError) and not isinstance(error, CorruptJob):
                    self._broken(error)
                else:
                    self._drop()

        async def _kept(self, request: Request[T]) -> T:
            """``_execute(request)``, which goes on to its end even if the awaiting task is cancelled
            meanwhile: a pipelined command is written whatever happens to the task (no task of its own)."""
            pipe = self._pipe
            if (
                pipe is not None
                and request.effect is None
                and request.body is None
                and not self._alone.holding
                and self._session.simple(request, None)
            ):
                return await self._pipelined(pipe, request, request.head, kept=True)
            return await asyncio.shield(self._execute(request))  # goes on to its end whatever the task

        @staticmethod
        def _reserve_now(request: Request[Any]) -> bool:
            """Whether ``request`` is a reserve that does not wait (``reserve_with_timeout(0)``, ``reserve_job``):
            those are pipelined too; a reserve that waits holds the connection alone."""
            return request.effect is Effect.RESERVE and request.wait == 0.0

        def _dropped_reserve(self, reply: Reply) -> None:
            """A pipelined reserve's task was cancelled: a job it reserved, which nobody will see, goes
            back to ready with its own priority (on the same stream; if that is gone, the server did it)."""
            pipe = self._pipe
            if pipe is not None and reply.status == "RESERVED" and reply.args and reply.args[0].isdigit():
                pipe.spawn(self._hand_back(pipe, int(reply.args[0])))

        async def _on_stream(self, pipe: Pipelined, request: Request[T]) -> T:
            """Pipeline ``request`` on the stream of ``pipe`` only (``ConnectionResetError`` once it is gone)."""
            alone = self._alone
            while alone.holding:
                await alone.released()
            if self._pipe is not pipe:
                raise ConnectionResetError("the connection was dropped")
            return request.decode(await pipe.submit(request.head, False).future)

        async def _hand_back(self, pipe: Pipelined, job_id: int) -> None:
            try:
                pri = (await self._on_stream(pipe, _c.stats_job(job_id))).pri
                await self._on_stream(pipe, _c.release(job_id, pri, 0))
            except OSError as exc:  # the stream is gone: beanstalkd released the job itself
                _log.debug("job %d, reserved by a cancelled task: its connection closed (%r)", job_id, exc)
            except Exception as exc:  # the job is gone (deleted, or its time to run ran out), or a broken reply
                _log.warning("job %d, reserved by a cancelled task, not released: %r", job_id, exc)

    async def _pump(self, transport: StreamTransport, steps: Exchange[T], requests: Sequence[Request[Any]]) -> T:
        """Drive a conversation: write what it yields, or wait for the bytes it needs."""
        session, reader = self._session, self._reader
        try:
            step = next(steps)
            while True:
                if isinstance(step, bytes):
                    await transport.write(step, session, reader, self._read_timeout(session.wait))
                    step = steps.send(b"")
                else:
                    step = steps.send(await self._receive(transport, step))
        except StopIteration as done:
            if session.broken:  # a reply broke the protocol: the stream cannot be trusted
                self._broken("a reply broke the protocol")
            result: T = done.value
            return result
        except BaseException as exc:  # cancellation included: never leave a reply unread on a live stream
            raise self._failure(exc, requests)  # noqa: B904 - the cause is set

    async def _receive(self, transport: StreamTransport, wait: float | None) -> bytes:
        """The next bytes of a reply, waiting the timeout plus ``wait`` (what the server may take). A wait
        for a job (``wait`` not 0) is marked ``blocking``: ``close()`` from elsewhere may cut it short."""
        transport.blocking = wait != 0.0
        try:
            chunk = await transport.receive(RECV, self._read_timeout(wait))
        finally:
            transport.blocking = False
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return chunk

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> AsyncMessage:
        return AsyncMessage._made(self, body, kwargs)

    # -- batches ---------------------------------------------------------------

    def pipeline(self) -> AsyncPipeline:
        """Queue any commands and send them in one write: ``async with conn.pipeline() as p: ...``."""
        return AsyncPipeline(self)

    async def _batch(self, requests: Sequence[Request[Any]]) -> list[Any]:
        """Run requests as one pipelined batch; results in order, jobs as messages; ``BatchFailed`` if any failed."""
        if not requests:
            return []
        results = await self._converse(lambda session, reader: session.exchange(reader, requests), requests)
        return self._batch_results(requests, results)


class AsyncPipeline(PipelineBase["AsyncConnection"]):
    """Commands queued on a connection and sent in one write by ``await execute()``.

    beanstalkm reads every reply even when some fail, so the stream stays in
    sync; then, if any item failed, :class:`~beanstalkm.BatchFailed` carries
    each item's result or exception in order.
    """

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


# -- several connections at once ---------------------------------------------------------------------


async def converse_all(
    conns: Sequence[AsyncConnection],
    starts: Sequence[Callable[[Session, ReplyReader], Exchange[T]]],
    requests: Sequence[Sequence[Request[Any]]],
    done: Callable[[int, T | BaseException], bool] | None = None,
    hold: bool = False,
    raced_ids: list[tuple[int, int]] | None = None,
) -> tuple[list[T | BaseException | None], int]:
    """Run one conversation on each connection at once (``starts[i]`` on ``conns[i]``). Each
    connection is the caller's alone, or, with ``hold``, shared: then each one is held alone (its
    lock, as a batch holds it) for the whole run, the locks taken in one fixed order so that two
    such runs cannot deadlock, and commands of other tasks or threads wait their turn.

    Every conversation writes first; then the replies are read from whichever connection has bytes,
    with no thread, so the servers work in parallel and a wait for a job waits on all of them
    together. Each result, or its error (that connection dropped, as ``_pump`` would), goes to
    ``done(i, result)`` as it comes: once ``done`` says True, the conversations still under way are
    cut short unfed, their connections dropped (beanstalkd hands back at once any job they had just
    reserved), and their results stay None. Returns the results, and how many of the conversations
    cut short had a ``RESERVED`` reply already in (a job taken and handed back); ``raced_ids`` (if
    given) gets each of those as ``(i, job id)``.
    """
    results: list[T | BaseException | None] = [None] * len(conns)
    live: dict[int, _Live[T]] = {}
    stop = False
    raced = 0
    held: list[AsyncConnection] = []

    def finish(i: int, value: T | BaseException) -> None:
        nonlocal stop
        results[i] = value
        live.pop(i, None)
        if done is not None and done(i, value):
            stop = True

    try:
        for conn in sorted({id(c): c for c in conns}.values(), key=id) if hold else ():
            await conn._alone.__aenter__()
            held.append(conn)
        for i, conn in enumerate(conns):
            if stop:
                break
            try:
                convo = _Live(conn, await conn._ready(requests[i]), starts[i](conn._session, conn._reader), requests[i])
                live[i] = convo
                if await convo.advance(None):
                    finish(i, convo.value)
            except Exception as exc:
                live.pop(i, None)
                finish(i, conn._failure(exc, requests[i]))
        while live and not stop:
            order = list(live)
            deadlines = [d for d in (live[i].deadline for i in order) if d is not None]
            wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            if wait == 0.0:
                ready = []
            elif len(order) == 1:  # the last one under way: a plain receive, as ``_pump`` does
                ready = await _receive_one(live[order[0]], wait)
            else:
                ready = await receive_any([live[i].transport for i in order], RECV, wait)
            if not ready:
                now = time.monotonic()
                for i in order:
                    deadline = live[i].deadline
                    if deadline is not None and deadline <= now:
                        finish(i, live[i].conn._failure(TimeoutError("timed out"), live[i].requests))
                continue
            for position, chunk in ready:
                i = order[position]
                if stop:  # cut short: not fed; a job it had just reserved goes back when it is dropped
                    raced += isinstance(chunk, bytes) and _raced(i, chunk, raced_ids)
                    continue
                convo = live[i]
                try:
                    if isinstance(chunk, BaseException):
                        raise chunk
                    if not chunk:
                        raise ConnectionResetError("the server closed the connection")
                    finished = await convo.advance(chunk)
                except Exception as exc:
                    finish(i, convo.conn._failure(exc, convo.requests))
                    continue
                if finished:
                    finish(i, convo.value)
    finally:
        if raced_ids is not None and stop and live:  # the replies already on their way, before the drop
            raced += await _late_races(live, raced_ids)
        for convo in live.values():
            convo.conn._drop()
        for conn in reversed(held):
            await conn._alone.__aexit__(None, None, None)
    return results, raced


RACE_GRACE = 0.005
"""How long ``converse_all`` (asked for ``raced_ids``) reads the conversations it cut short before it
drops them: a job one of them reserved in the same instant as the winner's is then known by its id."""


def _raced(i: int, chunk: bytes, raced_ids: list[tuple[int, int]] | None) -> bool:
    """Whether ``chunk``, read on conversation ``i`` after it was cut short, holds a ``RESERVED`` reply (a
    job taken that goes back when the connection is dropped); its id goes to ``raced_ids``."""
    if chunk.startswith(b"RESERVED "):
        at = 9
    else:  # after the replies before it (a watch list's change)
        at = chunk.find(b"\r\nRESERVED ")
        if at < 0:
            return False
        at += 11
    job_id = chunk[at : chunk.find(b" ", at)]
    if raced_ids is not None and job_id.isdigit():
        raced_ids.append((i, int(job_id)))
    return True


async def _late_races(live: dict[int, _Live[Any]], raced_ids: list[tuple[int, int]]) -> int:
    """Read the conversations cut short for ``RACE_GRACE`` at most: how many had a job reserved (their ids
    to ``raced_ids``). A wait that got nothing sends nothing before its timeout, so this is the grace."""
    pending = list(live)
    deadline = time.monotonic() + RACE_GRACE
    raced = 0
    while pending and (left := deadline - time.monotonic()) > 0:
        ready = await receive_any([live[i].transport for i in pending], RECV, left)
        if not ready:
            break
        answered = {pending[position] for position, _ in ready}
        for position, chunk in ready:
            raced += isinstance(chunk, bytes) and _raced(pending[position], chunk, raced_ids)
        pending = [i for i in pending if i not in answered]
    return raced


async def _receive_one(convo: _Live[Any], wait: float | None) -> list[tuple[int, bytes | BaseException]]:
    """``receive_any`` of one conversation's transport: a plain receive (an empty list when it times out)."""
    try:
        return [(0, await convo.transport.receive(RECV, wait))]
    except TimeoutError:
        return []
    except OSError as exc:
        return [(0, exc)]


class _Live(Generic[T]):
    """A conversation of ``converse_all`` under way on one connection."""

    __slots__ = ("conn", "deadline", "requests", "steps", "transport", "value")

    value: T

    def __init__(
        self, conn: AsyncConnection, transport: StreamTransport, steps: Exchange[T], requests: Sequence[Request[Any]]
    ) -> None:
        self.conn = conn
        self.transport = transport
        self.steps = steps
        self.requests = requests
        self.deadline: float | None = None

    async def advance(self, chunk: bytes | None) -> bool:
        """Feed it ``chunk`` (None: begin) and write what it yields until it waits for bytes; True once
        it finished (its result in ``value``). Its deadline: the timeout plus what the server may take."""
        conn, steps = self.conn, self.steps
        session, reader = conn._session, conn._reader
        try:
            step = next(steps) if chunk is None else steps.send(chunk)
            while isinstance(step, bytes):
                await self.transport.write(step, session, reader, conn._read_timeout(session.wait))
                step = steps.send(b"")
        except StopIteration as end:
            if session.broken:  # a reply broke the protocol: the stream cannot be trusted
                conn._broken("a reply broke the protocol")
            self.value = end.value
            return True
        timeout = conn._read_timeout(step)
        self.deadline = None if timeout is None else time.monotonic() + timeout
        return False
