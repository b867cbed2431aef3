"""The synchronous driver: one socket to one beanstalkd."""

from __future__ import annotations

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Connection", "Pipeline"]

import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from beanstalkm._errors import InvalidEnvelope, ProtocolError, SocketError
from beanstalkm._generated import commands as _c
from beanstalkm._generated.pipeline import PipelineCommands
from beanstalkm._generated.queue import Queue
from beanstalkm._message import Message
from beanstalkm._session import Session, batch_results
from beanstalkm._wire import Job, ReplyReader, Request

T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11300

_UNSET: Any = object()
_RECV = 65536


class Connection:
    """A connection to one beanstalkd, over TCP or a UNIX socket.

    ``timeout`` bounds connecting and every wait for a reply, in seconds
    (``None``: wait forever); it defaults to ``socket.getdefaulttimeout()``.
    A blocking ``reserve`` waits as long as the server may legitimately take:
    forever for ``reserve``, the reserve timeout plus ``timeout`` for
    ``reserve_with_timeout``.

    After a connection error the next call connects again and restores the
    used tube and the watch list; a command whose reply was lost is never
    re-sent (``SocketError.maybe_executed`` says it may have run).

    One connection may be shared by threads: each command (or batch) holds a
    lock from its write to its last reply, so replies never cross.
    """

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
        self.host = host
        self.port = port
        self.unix_socket = unix_socket
        self.timeout: float | None = socket.getdefaulttimeout() if timeout is _UNSET else timeout
        self.validate = validate
        self.queue = Queue(self)
        self._session = Session()
        self._reader: ReplyReader = _c.new_reader(max_body)
        self._max_body = max_body
        self._sock: socket.socket | None = None
        self._sock_timeout: float | None = None
        self._lock = threading.RLock()
        self._sender_json = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), "version": _version()},
            separators=(",", ":"),
        )
        self.connect()

    # -- connection management -------------------------------------------------

    @property
    def address(self) -> str:
        """Where this connection goes, for messages: ``host:port`` or the socket path."""
        return self.unix_socket if self.unix_socket is not None else f"{self.host}:{self.port}"

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
            raise SocketError(f"cannot connect to beanstalkd at {self.address}: {exc}") from exc
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
        """Send ``quit`` and close the socket. A later command connects again."""
        with self._lock:
            sock, self._sock = self._sock, None
            if sock is None:
                return
            try:
                sock.sendall(b"quit\r\n")
            except OSError:
                pass
            finally:
                sock.close()
                self._reader.clear()

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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} {'connected' if self._sock else 'closed'}>"

    # -- running commands ------------------------------------------------------

    def _execute(self, request: Request[T], tube: str | None = None) -> T:
        """Send one command (with whatever must precede it) and return its decoded reply.

        ``tube`` routes a ``put`` to that tube without changing the used tube.
        """
        result = self._run((request,), tube)[0]
        if request.effect == "close":
            self._drop()
        if isinstance(result, BaseException):
            raise result
        value: T = result
        return value

    def _run(self, requests: Sequence[Request[Any]], tube: str | None = None) -> list[Any]:
        """Run a batch through the session's exchange over this socket; each item's result or exception."""
        with self._lock:
            sock = self._sock or self._open()
            steps = self._session.exchange(self._reader, requests, tube)
            sent = False
            try:
                step = next(steps)
                while True:
                    if isinstance(step, bytes):
                        sock.sendall(step)
                        sent = True
                        step = steps.send(b"")
                        continue
                    timeout = None if (step is None or self.timeout is None) else self.timeout + step
                    if timeout != self._sock_timeout:
                        sock.settimeout(timeout)
                        self._sock_timeout = timeout
                    chunk = sock.recv(max(_RECV, self._reader.missing()))
                    if not chunk:
                        raise ConnectionResetError("the server closed the connection")
                    step = steps.send(chunk)
            except StopIteration as done:
                results: list[Any] = done.value
                return results
            except ProtocolError:
                self._drop()
                raise
            except OSError as exc:
                self._drop()
                raise _socket_error(requests[-1].command, self.address, exc, sent) from exc

    # -- jobs to messages ------------------------------------------------------

    def _message(self, job: Job, reserved: bool = False) -> Message:
        """A received job as a message; ``InvalidEnvelope`` (carrying it) if it fails validation."""
        kwargs, problem = Message._from_job(job.id, job.body, self.validate)
        message = Message(self, **kwargs)
        message.reserved = reserved
        if problem is not None:
            raise InvalidEnvelope(message, problem)
        return message

    def _reserved_message(self, job: Job) -> Message:
        """A job this connection just reserved (an ``InvalidEnvelope`` carries it, still reserved)."""
        return self._message(job, reserved=True)

    def _message_or_none(self, job: Job | None) -> Message | None:
        return None if job is None else self._message(job)

    # -- batches ---------------------------------------------------------------

    def pipeline(self) -> Pipeline:
        """Queue any commands and send them in one write: ``with conn.pipeline() as p: ...; p.execute()``."""
        return Pipeline(self)

    def _batch(self, requests: Sequence[Request[Any]], tube: str | None = None) -> list[Any]:
        """Run requests as one pipelined batch; results in order, jobs as messages; ``BatchFailed`` if any failed."""
        if not requests:
            return []
        return batch_results(self._run(requests, tube), self._message)


class Pipeline(PipelineCommands):
    """Commands queued on a connection and sent in one write by :meth:`execute`.

    beanstalkm reads every reply even when some fail, so the stream stays in
    sync; then, if any item failed, :class:`~beanstalkm.BatchFailed` carries
    each item's result or exception in order.
    """

    __slots__ = ("_conn", "_requests", "results")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._requests: list[Request[Any]] = []
        self.results: list[Any] | None = None

    def _add(self, request: Request[Any]) -> Self:
        self._requests.append(request)
        return self

    def __len__(self) -> int:
        return len(self._requests)

    def execute(self) -> list[Any]:
        """Send the queued commands; their results in order (jobs as messages)."""
        requests, self._requests = self._requests, []
        self.results = self._conn._batch(requests)
        return self.results

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self._requests:
            self.execute()
        self._requests = []


def _socket_error(command: str, address: str, exc: OSError, sent: bool) -> SocketError:
    """The error for a failed exchange; ``sent``: the command was written, so it may have run."""
    what = "timed out waiting for a reply" if isinstance(exc, TimeoutError) else "failed"
    note = " (the command was sent and may have been carried out)" if sent else ""
    return SocketError(f"{command}: connection to {address} {what}: {exc}{note}", maybe_executed=sent)


def _version() -> str:
    from beanstalkm import __version__

    return __version__
