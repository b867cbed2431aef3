# Derived by `python -m codegen` from src/beanstalkm/_async/connection.py (sha256 f222cadd6d05ab99dae097cbc69db76a72555adc149d8268f404dbf05ecc2393). DO NOT EDIT; edit the source and run `make generate`.
"""The connection: one stream to one beanstalkd, and its pipeline (the one source of both flavours,

The sync flavour, derived from the asyncio source by ``python -m codegen``.
"""

from __future__ import annotations

__all__ = ["Connection", "Pipeline", "converse_all"]

import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from beanstalkm._core.base import ConnectionBase, PipelineBase
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import MISS, Command, Request
from beanstalkm._core.session import Exchange, Session, out_of_step
from beanstalkm._errors import CorruptJob, ProtocolError
from beanstalkm._generated.effects import Effect
from beanstalkm._generated.queue import Queue
from beanstalkm._sync.message import Message
from beanstalkm._transport.sockets import RECV, SocketTransport, new_lock, receive_any

T = TypeVar("T")

log = logging.getLogger("beanstalkm.connection")


class Connection(ConnectionBase[Message]):
    """A connection to one beanstalkd, over TCP or a UNIX socket.

    It connects at once (a refused connection raises ``SocketError`` naming
    the address).

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

    One connection may be shared by threads: each command (or batch) holds a
    lock from its write to its last reply, so replies never cross. A blocking
    reserve holds it too, so give each consuming thread its own connection.
    """

    def _setup(self) -> None:
        self.queue = Queue(self)
        self._transport: SocketTransport | None = None
        self._lock = new_lock()
        self._alone = self._lock
        self.connect()

    # -- connection management -------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None

    def connect(self) -> None:
        """Connect (if not connected) and restore the watch list; the used tube is restored when next needed."""
        with self._alone:
            if self._transport is None:
                self._open()

    def _open(self) -> SocketTransport:
        try:
            transport = SocketTransport.open(self.host, self.port, self.unix_socket, self.timeout, self.ssl)
        except OSError as exc:
            raise self._connect_error(exc) from exc
        self._transport = transport
        self._reader.clear()
        restore = self._session.connected()
        log.debug("connected to %s%s", self.url, f" (restoring {len(restore)} watch commands)" if restore else "")
        if restore:
            try:
                results = self._pump(transport, self._session.exchange(self._reader, restore), restore)
            except Exception as exc:  # its connection is dropped
                raise self._restore_failed(exc) from exc
            for result in results:
                if isinstance(result, BaseException):
                    raise self._restore_failed(result) from result
        return transport

    def _ready(self, requests: Sequence[Request[Any]]) -> SocketTransport:
        """The open transport (connecting if need be), in step (``_in_step``; nothing sent if not)."""
        transport = self._transport
        if transport is None:
            return self._open()
        self._in_step(transport, requests)
        return transport

    def _in_step(self, transport: SocketTransport, requests: Sequence[Request[Any]]) -> None:
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

    def close(self) -> None:
        """Send ``quit`` and close the connection. A later command connects again.

        A command in progress in another thread finishes first, except a ``reserve``
        waiting for a job: that one is cut short (its thread gets a ``SocketError``;
        beanstalkd keeps any job it had not yet handed out).
        """
        transport = self._transport
        if transport is not None and transport.blocking:
            transport.interrupt()
        with self._alone:
            transport, self._transport = self._transport, None
            self._reader.clear()
            if transport is not None:
                transport.quit()

    def reconnect(self) -> None:
        """Close and connect again, restoring the used tube and the watch list."""
        self.close()
        self.connect()

    def _drop(self) -> None:
        transport, self._transport = self._transport, None
        self._reader.clear()
        if transport is not None:
            transport.abort()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- running commands ------------------------------------------------------

    def _execute(self, request: Request[T], tube: str | None = None) -> T:
        """Send one command (with whatever must precede it) and return its decoded reply; ``tube`` routes
        a ``put`` there without changing the used tube. The paths it takes: docs/hot-path.md."""
        with self._alone:
            return self._command(request, tube)

    def _command(
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
        at_once = request.wait == 0.0 and request.body is None
        if (
            transport is None  # connect first
            or (not follows and reader.buffered)  # out of step: _ready says so (after a reply read whole: empty)
            or not request.expects_reply
            or not session.simple(request, tube)  # a use first (routed elsewhere, or the used tube back)
            or (not at_once and not follows and transport.readable())  # bytes waiting (a stray reply), or the end
        ):
            return self._execute_exchange(request.request(head), tube)
        session.written = False
        try:
            if at_once:  # one send, one receive (the stray-reply check first: None, nothing sent, if bytes wait)
                chunk = transport.send_receive(head, session, not follows)
            else:
                transport.send_command(request.request(head), session)
                chunk = self._receive(transport, request.wait)
        except BaseException as exc:  # cancellation included: never leave a reply unread on a live stream
            raise self._failure(exc, (request.request(head),))  # noqa: B904 - the cause is set
        if chunk is None:  # bytes waiting before the write (a stray reply), or the end: the general path's check
            return self._execute_exchange(request.request(head), tube)
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
                    reply = reader.read(self._receive(transport, request.wait))
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
        if cls._execute is not Connection._execute:  # its own, or a mixin's before this class's
            cls._routes_execute = True

    def _execute_exchange(self, request: Request[T], tube: str | None) -> T:
        """``_execute``'s general path, the connection held: connect (or check the stream is in step),
        then the session's exchange (a ``use`` first where needed; no reply for ``quit``)."""
        transport = self._ready((request,))
        session, reader = self._session, self._reader
        results = self._pump(transport, session.exchange(reader, (request,), tube), (request,))
        if request.effect is Effect.CLOSE:
            self._drop()
        result: T = results[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _converse(self, start: Callable[[Session, ReplyReader], Exchange[T]], requests: Sequence[Request[Any]]) -> T:
        """Pump a conversation (``start(session, reader)``, begun once connected)."""
        with self._alone:
            transport = self._ready(requests)
            return self._pump(transport, start(self._session, self._reader), requests)

    def _pump(self, transport: SocketTransport, steps: Exchange[T], requests: Sequence[Request[Any]]) -> T:
        """Drive a conversation: write what it yields, or wait for the bytes it needs."""
        session, reader = self._session, self._reader
        try:
            step = next(steps)
            while True:
                if isinstance(step, bytes):
                    transport.write(step, session, reader, self._read_timeout(session.wait))
                    step = steps.send(b"")
                else:
                    step = steps.send(self._receive(transport, step))
        except StopIteration as done:
            if session.broken:  # a reply broke the protocol: the stream cannot be trusted
                self._broken("a reply broke the protocol")
            result: T = done.value
            return result
        except BaseException as exc:  # cancellation included: never leave a reply unread on a live stream
            raise self._failure(exc, requests)  # noqa: B904 - the cause is set

    def _receive(self, transport: SocketTransport, wait: float | None) -> bytes:
        """The next bytes of a reply, waiting the timeout plus ``wait`` (what the server may take). A wait
        for a job (``wait`` not 0) is marked ``blocking``: ``close()`` from elsewhere may cut it short."""
        transport.blocking = wait != 0.0
        try:
            chunk = transport.receive(RECV, self._read_timeout(wait))
        finally:
            transport.blocking = False
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return chunk

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> Message:
        return Message._made(self, body, kwargs)

    # -- batches ---------------------------------------------------------------

    def pipeline(self) -> Pipeline:
        """Queue any commands and send them in one write: ``with conn.pipeline() as p: ...; p.execute()``."""
        return Pipeline(self)

    def _batch(self, requests: Sequence[Request[Any]]) -> list[Any]:
        """Run requests as one pipelined batch; results in order, jobs as messages; ``BatchFailed`` if any failed."""
        if not requests:
            return []
        results = self._converse(lambda session, reader: session.exchange(reader, requests), requests)
        return self._batch_results(requests, results)


class Pipeline(PipelineBase["Connection"]):
    """Commands queued on a connection and sent in one write by ``execute()``.

    beanstalkm reads every reply even when some fail, so the stream stays in
    sync; then, if any item failed, :class:`~beanstalkm.BatchFailed` carries
    each item's result or exception in order.
    """

    __slots__ = ()

    def execute(self) -> list[object]:
        """Send the queued commands; their results in order (jobs as messages)."""
        self.results = self._conn._batch(self._take())
        return self.results

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self._requests:
            self.execute()
        self._requests = []


# -- several connections at once ---------------------------------------------------------------------


def converse_all(
    conns: Sequence[Connection],
    starts: Sequence[Callable[[Session, ReplyReader], Exchange[T]]],
    requests: Sequence[Sequence[Request[Any]]],
    done: Callable[[int, T | BaseException], bool] | None = None,
    hold: bool = False,
    raced_ids: list[tuple[int, int]] | None = None,
) -> tuple[list[T | BaseException | None], int]:
    """Run one conversation on each connection at once (``starts[i]`` on ``conns[i]``). Each
    connection is the caller's alone, or, with ``hold``, shared: then each one is held alone (its
    lock, as a batch holds it) for the whole run, the locks taken in one fixed order so that two
    such runs cannot deadlock, and commands of other threads or threads wait their turn.

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
    held: list[Connection] = []

    def finish(i: int, value: T | BaseException) -> None:
        nonlocal stop
        results[i] = value
        live.pop(i, None)
        if done is not None and done(i, value):
            stop = True

    try:
        for conn in sorted({id(c): c for c in conns}.values(), key=id) if hold else ():
            conn._alone.__enter__()
            held.append(conn)
        for i, conn in enumerate(conns):
            if stop:
                break
            try:
                convo = _Live(conn, conn._ready(requests[i]), starts[i](conn._session, conn._reader), requests[i])
                live[i] = convo
                if convo.advance(None):
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
                ready = _receive_one(live[order[0]], wait)
            else:
                ready = receive_any([live[i].transport for i in order], RECV, wait)
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
                    finished = convo.advance(chunk)
                except Exception as exc:
                    finish(i, convo.conn._failure(exc, convo.requests))
                    continue
                if finished:
                    finish(i, convo.value)
    finally:
        if raced_ids is not None and stop and live:  # the replies already on their way, before the drop
            raced += _late_races(live, raced_ids)
        for convo in live.values():
            convo.conn._drop()
        for conn in reversed(held):
            conn._alone.__exit__(None, None, None)
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


def _late_races(live: dict[int, _Live[Any]], raced_ids: list[tuple[int, int]]) -> int:
    """Read the conversations cut short for ``RACE_GRACE`` at most: how many had a job reserved (their ids
    to ``raced_ids``). A wait that got nothing sends nothing before its timeout, so this is the grace."""
    pending = list(live)
    deadline = time.monotonic() + RACE_GRACE
    raced = 0
    while pending and (left := deadline - time.monotonic()) > 0:
        ready = receive_any([live[i].transport for i in pending], RECV, left)
        if not ready:
            break
        answered = {pending[position] for position, _ in ready}
        for position, chunk in ready:
            raced += isinstance(chunk, bytes) and _raced(pending[position], chunk, raced_ids)
        pending = [i for i in pending if i not in answered]
    return raced


def _receive_one(convo: _Live[Any], wait: float | None) -> list[tuple[int, bytes | BaseException]]:
    """``receive_any`` of one conversation's transport: a plain receive (an empty list when it times out)."""
    try:
        return [(0, convo.transport.receive(RECV, wait))]
    except TimeoutError:
        return []
    except OSError as exc:
        return [(0, exc)]


class _Live(Generic[T]):
    """A conversation of ``converse_all`` under way on one connection."""

    __slots__ = ("conn", "deadline", "requests", "steps", "transport", "value")

    value: T

    def __init__(
        self, conn: Connection, transport: SocketTransport, steps: Exchange[T], requests: Sequence[Request[Any]]
    ) -> None:
        self.conn = conn
        self.transport = transport
        self.steps = steps
        self.requests = requests
        self.deadline: float | None = None

    def advance(self, chunk: bytes | None) -> bool:
        """Feed it ``chunk`` (None: begin) and write what it yields until it waits for bytes; True once
        it finished (its result in ``value``). Its deadline: the timeout plus what the server may take."""
        conn, steps = self.conn, self.steps
        session, reader = conn._session, conn._reader
        try:
            step = next(steps) if chunk is None else steps.send(chunk)
            while isinstance(step, bytes):
                self.transport.write(step, session, reader, conn._read_timeout(session.wait))
                step = steps.send(b"")
        except StopIteration as end:
            if session.broken:  # a reply broke the protocol: the stream cannot be trusted
                conn._broken("a reply broke the protocol")
            self.value = end.value
            return True
        timeout = conn._read_timeout(step)
        self.deadline = None if timeout is None else time.monotonic() + timeout
        return False
