"""The synchronous driver: one socket to one beanstalkd."""

from __future__ import annotations

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "MAX_TIMEOUT", "Connection", "ConnectionBase", "Pipeline", "PipelineBase"]

import contextlib
import json
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from beanstalkm._errors import InvalidEnvelope, SocketError
from beanstalkm._generated import commands as _c
from beanstalkm._generated.pipeline import PipelineCommands
from beanstalkm._generated.queue import Queue
from beanstalkm._message import Message, MessageBase
from beanstalkm._session import Exchange, Session, batch_results
from beanstalkm._wire import (
    Job,
    Reply,
    ReplyReader,
    Request,
    check_bool,
    check_host,
    check_path,
    check_seconds,
    check_uint,
)

T = TypeVar("T")
M = TypeVar("M", bound=MessageBase)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11300

MAX_TIMEOUT = 2**31 - 1
"""The longest ``timeout`` a connection takes, in seconds (68 years; None: no limit). On top of it
a read waits what the server may take (a reserve's timeout, at most as long again): the sum stays
within what every platform's sockets and asyncio accept."""

_UNSET: Any = object()
_RECV = 65536
_WRITE_AT_ONCE = 16384
"""A batch up to this size goes out in one plain send: the server's receive buffer takes it whole
even while the server is not reading. A larger one is written reading replies meanwhile."""


class ConnectionBase(Generic[M]):
    """What the sync and async connections share: settings, session, reader,
    turning jobs into messages, and error mapping. No I/O."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float | None = _UNSET,
        *,
        unix_socket: str | None = None,
        validate: bool | None = None,
        max_body: int = _c.BODY_MAX,
    ) -> None:
        # every setting is checked here, before the driver's _setup (before connecting)
        self.host = check_host("host", host)
        self.port = check_uint("port", port, 1, 65535)
        self.timeout: float | None = (
            socket.getdefaulttimeout() if timeout is _UNSET else check_seconds("timeout", timeout, MAX_TIMEOUT)
        )
        self.unix_socket = None if unix_socket is None else check_path("unix_socket", unix_socket)
        self.validate = None if validate is None else check_bool("validate", validate)
        max_body = check_uint("max_body", max_body, 0, _c.BODY_MAX)
        self._session = Session()
        self._reader: ReplyReader = _c.new_reader(max_body)
        self._sender: dict[str, Any] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.time(),
            "version": _version(),
        }
        self._sender_wire = (self._sender, json.dumps(self._sender, separators=(",", ":")))
        self._setup()

    def _setup(self) -> None:
        """The driver's own state (and, for the sync one, connecting)."""
        raise NotImplementedError

    @property
    def address(self) -> str:
        """Where this connection goes, for messages: ``host:port`` or the socket path."""
        return self.unix_socket if self.unix_socket is not None else f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether a socket is open (after a connection error it is not, until the next call)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} {'connected' if self.connected else 'closed'}>"

    def _drop(self) -> None:
        """Forget the socket after a failure (no quit): the next call connects again."""
        raise NotImplementedError

    def _read_timeout(self, wait: float | None) -> float | None:
        """The read deadline for a step of an exchange: the timeout plus what the server may take."""
        return None if (wait is None or self.timeout is None) else self.timeout + wait

    def _connect_error(self, exc: OSError) -> SocketError:
        return SocketError(f"cannot connect to beanstalkd at {self.address}: {exc}")

    def _failure(self, exc: BaseException, requests: Sequence[Request[Any]]) -> BaseException:
        """The error to raise for an exchange that did not finish; the socket is
        dropped whatever happened (a cancelled or interrupted exchange would
        otherwise leave a reply to be read as the next command's)."""
        self._drop()
        if isinstance(exc, OSError) and not isinstance(exc, SocketError):
            sent = self._session.written
            what = "timed out waiting for a reply" if isinstance(exc, TimeoutError) else "failed"
            note = " (the command was sent and may have been carried out)" if sent else ""
            command = requests[-1].command if requests else "?"
            error = SocketError(f"{command}: connection to {self.address} {what}: {exc}{note}", maybe_executed=sent)
            error.__cause__ = exc
            return error
        return exc

    def _decoded(self, request: Request[T], reply: Reply) -> T:
        """The decoded reply of a command sent on its own, its effect recorded."""
        value = request.decode(reply)
        if request.effect is not None:
            self._session.applied(request, value)
        return value

    @staticmethod
    def _result(request: Request[T], results: list[Any]) -> T:
        """The single result of ``_run((request,))``, raised if it is an error."""
        result = results[0]
        if isinstance(result, BaseException):
            raise result
        value: T = result
        return value

    # -- jobs to messages ------------------------------------------------------

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> M:
        raise NotImplementedError

    def _message(self, job: Job, reserved: bool = False) -> M:
        """A received job as a message; ``InvalidEnvelope`` (carrying it) if it fails validation."""
        kwargs, problem = MessageBase._from_job(job.id, job.body, self.validate)
        message = self._new_message(kwargs.pop("body"), kwargs)
        message.reserved = reserved
        if problem is not None:
            raise InvalidEnvelope(message, problem)
        return message

    def _reserved_message(self, job: Job) -> M:
        """A job this connection just reserved (an ``InvalidEnvelope`` carries it, still reserved)."""
        return self._message(job, reserved=True)

    def _message_or_none(self, job: Job | None) -> M | None:
        return None if job is None else self._message(job)

    def _batch_results(self, requests: Sequence[Request[Any]], results: list[Any]) -> list[Any]:
        """A batch's results for the caller: jobs as messages; ``BatchFailed`` if any item failed."""
        return batch_results(requests, results, self._message)


class Connection(ConnectionBase[Message]):
    """A connection to one beanstalkd, over TCP or a UNIX socket.

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
    lock from its write to its last reply, so replies never cross.
    """

    def _setup(self) -> None:
        self.queue = Queue(self)
        self._sock: socket.socket | None = None
        self._blocking = False
        self._sock_timeout: float | None = None
        self._lock = threading.RLock()
        self.connect()

    # -- connection management -------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Connect (if not connected) and restore the watch list; the used tube is restored when next needed."""
        with self._lock:
            if self._sock is None:
                self._open()

    def _open(self) -> socket.socket:
        try:
            if self.unix_socket is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout)
                    sock.connect(self.unix_socket)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise self._connect_error(exc) from exc
        self._sock = sock
        self._sock_timeout = sock.gettimeout()
        self._reader.clear()
        restore = self._session.connected()
        if restore:
            for result in self._run(restore):
                if isinstance(result, BaseException):
                    raise result
        return sock

    def close(self) -> None:
        """Send ``quit`` and close the socket. A later command connects again.

        A command in progress in another thread finishes first, except a
        ``reserve`` waiting for a job: that one is cut short (its thread gets
        a ``SocketError``; beanstalkd keeps any job it had not yet handed out).
        """
        sock = self._sock
        if self._blocking and sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            sock, self._sock = self._sock, None
            self._reader.clear()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.sendall(b"quit\r\n")
                sock.close()

    def reconnect(self) -> None:
        """Close and connect again, restoring the used tube and the watch list."""
        with self._lock:
            self.close()
            self._open()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        self._reader.clear()
        if sock is not None:
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- running commands ------------------------------------------------------

    def _execute(self, request: Request[T], tube: str | None = None) -> T:
        """Send one command (with whatever must precede it) and return its decoded reply.

        ``tube`` routes a ``put`` to that tube without changing the used tube.
        The common case (connected, nothing to put in force first, a reply
        expected) takes a direct path; everything else goes through the
        session's exchange.
        """
        with self._lock:
            sock = self._sock
            reader = self._reader
            if sock is None or not request.expects_reply or reader.buffered or not self._session.simple(request, tube):
                results = self._run((request,), tube)
                if request.effect == "close":
                    self._drop()
                return self._result(request, results)
            self._session.written = False
            try:
                if self._sock_timeout != self.timeout:  # a blocking reserve may have left it at None
                    sock.settimeout(self.timeout)
                    self._sock_timeout = self.timeout
                # one command: cut short, it cannot have run
                if request.body is None:
                    sock.sendall(request.head)
                else:
                    _send_pieces(sock, request.pieces)
                self._session.written = True
                reply = None  # nothing was buffered: the reply is all to come
                while reply is None:
                    reply = reader.read(self._io(sock, request.wait))
            except BaseException as exc:
                raise self._failure(exc, (request,))  # noqa: B904 - the cause is set
            return self._decoded(request, reply)

    def _run(
        self, requests: Sequence[Request[Any]], tube: str | None = None, meanwhile: Callable[[], object] | None = None
    ) -> list[Any]:
        """Pump the session's exchange for a batch over this socket; each item's result or exception."""
        return self._converse(lambda session, reader: session.exchange(reader, requests, tube, meanwhile), requests)

    def _converse(self, start: Callable[[Session, ReplyReader], Exchange[T]], requests: Sequence[Request[Any]]) -> T:
        """Pump a conversation (``start(session, reader)``, begun once connected) over this socket."""
        with self._lock:
            sock = self._sock or self._open()
            steps = start(self._session, self._reader)
            try:
                step = next(steps)
                while True:
                    step = steps.send(self._io(sock, step))
            except StopIteration as done:
                result: T = done.value
                return result
            except BaseException as exc:
                raise self._failure(exc, requests)  # noqa: B904 - the cause is set

    def _io(self, sock: socket.socket, step: bytes | float | None) -> bytes:
        """One step of an exchange: write bytes, or wait for more."""
        if isinstance(step, bytes):
            if self._sock_timeout != self.timeout:  # a blocking reserve may have left it at None
                sock.settimeout(self.timeout)
                self._sock_timeout = self.timeout
            with memoryview(step) as data:
                if self._session.written or len(data) > _WRITE_AT_ONCE:
                    # replies may be on their way, or may fill the buffers before the write ends:
                    # never wait only to write
                    self._write_duplex(sock, data, 0)
                    return b""
                done = sock.send(data)
                # from the first byte on, whole commands may reach the server and run
                self._session.written = True
                if done < len(data):
                    self._write_duplex(sock, data, done)
            return b""
        timeout = self._read_timeout(step)
        if timeout != self._sock_timeout:
            sock.settimeout(timeout)
            self._sock_timeout = timeout
        self._blocking = step != 0.0  # a reserve waiting for a job: close() may cut it short
        try:
            chunk = sock.recv(max(_RECV, self._reader.missing()))
        finally:
            self._blocking = False
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return chunk

    def _write_duplex(self, sock: socket.socket, data: memoryview, done: int) -> None:
        """Write (the rest of) a batch, reading replies meanwhile whenever the socket will not take more.

        beanstalkd answers each command as it reads it and stops reading while
        it cannot write: a client that only wrote would deadlock with it once
        the replies filled its receive buffer. Whatever arrives is buffered in
        the reader for the exchange. ``timeout`` bounds each wait without
        progress (or, while the batch holds a blocking reserve, what the server
        may take on top of it).
        """
        session = self._session
        timeout = self._read_timeout(session.wait)
        sock.setblocking(False)
        self._sock_timeout = 0.0
        try:
            while done < len(data):
                try:
                    done += sock.send(data[done:])
                    session.written = True  # whole commands may have reached the server
                    continue
                except BlockingIOError:
                    pass
                self._blocking = session.wait != 0.0  # the batch holds a reserve: close() may cut it short
                try:
                    readable, writable = _wait(sock, timeout)
                finally:
                    self._blocking = False
                if not (readable or writable):
                    raise TimeoutError("timed out")
                if readable:
                    try:
                        chunk = sock.recv(_RECV)
                    except BlockingIOError:
                        chunk = None
                    if chunk == b"":
                        raise ConnectionResetError("the server closed the connection")
                    if chunk:
                        self._reader.feed(chunk)
        finally:
            sock.settimeout(self.timeout)
            self._sock_timeout = self.timeout

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> Message:
        return Message(self, body, **kwargs)

    # -- batches ---------------------------------------------------------------

    def pipeline(self) -> Pipeline:
        """Queue any commands and send them in one write: ``with conn.pipeline() as p: ...; p.execute()``."""
        return Pipeline(self)

    def _batch(
        self, requests: Sequence[Request[Any]], tube: str | None = None, meanwhile: Callable[[], object] | None = None
    ) -> list[Any]:
        """Run requests as one pipelined batch; results in order, jobs as messages; ``BatchFailed`` if any failed."""
        return self._batch_results(requests, self._run(requests, tube, meanwhile) if requests else [])


C = TypeVar("C")


class PipelineBase(PipelineCommands, Generic[C]):
    """The queue of a pipeline (sync or async): commands are checked and
    encoded as they are queued; ``results`` holds the last execution's."""

    __slots__ = ("_conn", "_requests", "results")

    def __init__(self, conn: C) -> None:
        self._conn = conn
        self._requests: list[Request[Any]] = []
        self.results: list[object] | None = None

    def _add(self, request: Request[Any]) -> Self:
        self._requests.append(request)
        return self

    def __len__(self) -> int:
        return len(self._requests)

    def _take(self) -> list[Request[Any]]:
        requests, self._requests = self._requests, []
        return requests


class Pipeline(PipelineBase["Connection"]):
    """Commands queued on a connection and sent in one write by :meth:`execute`.

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


_POLL_MAX = 2**31 - 1
"""The longest wait ``_wait`` passes to the system at once (poll's milliseconds, select's seconds)."""

if hasattr(select, "poll"):

    def _wait(sock: socket.socket, timeout: float | None) -> tuple[bool, bool]:
        """Wait until ``sock`` is readable or writable (or ``timeout`` seconds pass): which it is."""
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLOUT)
        # poll takes a C int of milliseconds: a longer wait (timeout plus a long reserve's) is cut to 24.8 days
        events = poller.poll(None if timeout is None else min(max(0, math.ceil(timeout * 1000)), _POLL_MAX))
        flags = events[0][1] if events else 0
        # an error or hang-up counts as readable: the recv reports it
        return bool(flags & (select.POLLIN | select.POLLERR | select.POLLHUP)), bool(flags & select.POLLOUT)

else:  # pragma: no cover - Windows

    def _wait(sock: socket.socket, timeout: float | None) -> tuple[bool, bool]:
        """Wait until ``sock`` is readable or writable (or ``timeout`` seconds pass): which it is."""
        readable, writable, _ = select.select([sock], [sock], [], None if timeout is None else min(timeout, _POLL_MAX))
        return bool(readable), bool(writable)


def _send_pieces(sock: socket.socket, pieces: Sequence[bytes]) -> None:
    """``sock.sendall`` of the pieces joined, without joining them: a large body is not copied.

    Scatter-gather (``sendmsg``) where the socket has it; each call is bounded by the socket's timeout.
    """
    if not hasattr(sock, "sendmsg"):  # Windows
        for piece in pieces:
            sock.sendall(piece)
        return
    views = [memoryview(piece) for piece in pieces]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if sent:
            views[0] = views[0][sent:]


def _version() -> str:
    from beanstalkm import __version__

    return __version__
