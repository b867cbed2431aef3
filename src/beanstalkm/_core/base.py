"""What both flavours of connection share, with no I/O: settings, session, reader, messages, errors."""

from __future__ import annotations

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_TIMEOUT",
    "AsyncQueueDriver",
    "ConnectionBase",
    "PipelineBase",
    "QueueDriver",
]

import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from ssl import SSLCertVerificationError, SSLContext, create_default_context
from typing import Any, Generic, Protocol, Self, TypeVar

from beanstalkm._core.checks import check_bool, check_host, check_path, check_seconds, check_uint
from beanstalkm._core.message import MessageBase
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Command, Job, Request
from beanstalkm._core.session import Session, batch_results
from beanstalkm._core.urls import default_urls, format_url, parse_url
from beanstalkm._errors import (
    ArgumentTypeError,
    InvalidArgument,
    InvalidEnvelope,
    ProtocolError,
    SocketError,
)
from beanstalkm._generated import commands as _c
from beanstalkm._generated.pipeline import PipelineCommands

log = logging.getLogger("beanstalkm.connection")

T = TypeVar("T")
M = TypeVar("M", bound=MessageBase)
M_co = TypeVar("M_co", bound=MessageBase, covariant=True)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11300

MAX_TIMEOUT = 2**31 - 1
"""The longest ``timeout`` a connection takes, in seconds (68 years; None: no limit). On top of it
a read waits what the server may take (a reserve's timeout, at most as long again): the sum stays
within what every platform's sockets and asyncio accept."""

_UNSET: Any = object()


class _JobsToMessages(Protocol[M_co]):
    """What both flavours of generated queue call to turn jobs into messages."""

    def _message(self, job: Job, reserved: bool = False) -> M_co:
        """A received job as a message."""

    def _message_or_none(self, job: Job | None) -> M_co | None:
        """A received job as a message; None for none."""

    def _reserved_message(self, job: Job) -> M_co:
        """A job this connection just reserved, as a message."""


class QueueDriver(_JobsToMessages[M_co], Protocol[M_co]):
    """What a generated ``Queue`` calls on its connection (``codegen.model.QUEUE_DRIVER`` names these)."""

    def _execute(self, request: Request[T], tube: str | None = None) -> T:
        """Send one command and return its decoded reply."""

    def _direct(self, head: bytes, command: Command[T]) -> T:
        """``_execute(command.request(head))``, without the request unless the general path needs it."""


class AsyncQueueDriver(_JobsToMessages[M_co], Protocol[M_co]):
    """What a generated ``AsyncQueue`` calls on its connection: ``QueueDriver``, awaitable."""

    async def _execute(self, request: Request[T], tube: str | None = None) -> T:
        """Send one command and return its decoded reply."""

    async def _direct(self, head: bytes, command: Command[T]) -> T:
        """``_execute(command.request(head))``, without the request unless the general path needs it."""


class ConnectionBase(Generic[M]):
    """What the sync and async connections share: settings, session, reader,
    turning jobs into messages, and error mapping. No I/O."""

    @property
    def _link(self) -> object | None:
        """Stands for the open connection (a new object each time it connects; None while closed): a
        message holds the one it was reserved on, so it is no longer ``reserved`` once that is gone."""
        raise NotImplementedError

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float | None = _UNSET,
        *,
        unix_socket: str | None = None,
        validate: bool | None = None,
        max_body: int = _c.BODY_MAX,
        ssl: SSLContext | None = None,
    ) -> None:
        # every setting is checked here, before the driver's _setup (before connecting)
        self.ssl = check_ssl("ssl", ssl)
        self.host = check_host("host", host)
        self.port = check_uint("port", port, 1, 65535)
        self.timeout: float | None = (
            socket.getdefaulttimeout() if timeout is _UNSET else check_seconds("timeout", timeout, MAX_TIMEOUT)
        )
        self.unix_socket = None if unix_socket is None else check_path("unix_socket", unix_socket)
        if self.ssl is not None and self.unix_socket is not None and self.ssl.check_hostname:
            raise InvalidArgument(
                "ssl",
                ssl,
                "checks the server's host name, and a UNIX socket has none: give a context with"
                " check_hostname=False (and the CA to verify against)",
            )
        self.validate = None if validate is None else check_bool("validate", validate)
        max_body = check_uint("max_body", max_body, 0, _c.BODY_MAX)
        self._session = Session()
        self._max_body = max_body  # the largest reply body taken (a quick decoder's limit, as the reader's)
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

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        timeout: float | None = _UNSET,
        ssl: SSLContext | None = None,
        validate: bool | None = None,
        max_body: int = _c.BODY_MAX,
    ) -> Self:
        """A connection to the server at ``url``: ``beanstalk://host[:port]`` (port 11300 by default),
        ``beanstalks://host[:port]`` (TLS, certificates verified by default; ``ssl`` an
        ``ssl.SSLContext`` of your own) or ``unix:///path/to/socket``. ``None``: the one server
        ``BEANSTALKD_URL`` names, else ``beanstalk://127.0.0.1:11300``. A malformed URL is an
        ``InvalidArgument`` naming it, raised before connecting."""
        if url is None:
            urls = default_urls()
            if len(urls) != 1:
                raise InvalidArgument(
                    "url",
                    None,
                    f"BEANSTALKD_URL names {len(urls)} servers and a connection takes one: name one, or use Cluster",
                )
            url = urls[0]
        target = parse_url(url)
        if ssl is not None and not target.tls:
            raise InvalidArgument("ssl", ssl, f"{target} is not TLS: a TLS connection needs a beanstalks:// URL")
        if target.path is not None:
            return cls(timeout=timeout, unix_socket=target.path, validate=validate, max_body=max_body)
        if target.tls and ssl is None:
            ssl = create_default_context()
        return cls(target.host, target.port, timeout, validate=validate, max_body=max_body, ssl=ssl)

    @property
    def url(self) -> str:
        """This connection's server as a canonical URL (``beanstalk://127.0.0.1:11300``, ``unix:///path``)."""
        return format_url(self.host, self.port, self.unix_socket, self.ssl is not None)

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
        if isinstance(exc, SSLCertVerificationError):
            return SocketError(
                f"cannot connect to beanstalkd at {self.address}: the server's TLS certificate was refused: {exc}"
            )
        return SocketError(f"cannot connect to beanstalkd at {self.address}: {exc}")

    def _failure(
        self, exc: BaseException, requests: Sequence[Request[Any]], written: bool | None = None, drop: bool = True
    ) -> BaseException:
        """The error to raise for an exchange that did not finish. The socket is dropped whatever
        happened (else a reply would be left to be read as the next command's), unless ``drop`` is
        False (it is gone already); ``written``: whether its commands were (default: the session's)."""
        if drop:
            self._drop()
            if isinstance(exc, ProtocolError):
                log.warning("%s: %s; the connection was dropped", self.address, exc)
        if isinstance(exc, OSError) and not isinstance(exc, SocketError):
            sent = self._session.written if written is None else written
            what = "timed out waiting for a reply" if isinstance(exc, TimeoutError) else "failed"
            note = " (the command was sent and may have been carried out)" if sent else ""
            command = requests[-1].command if requests else "?"
            error = SocketError(f"{command}: connection to {self.address} {what}: {exc}{note}", maybe_executed=sent)
            error.__cause__ = exc
            return error
        return exc

    def _broken(self, why: object) -> None:
        """A reply broke the protocol, or arrived for no command: the stream cannot be trusted, so the
        connection is dropped, with a warning on ``beanstalkm.connection``."""
        log.warning("%s: %s; the connection was dropped", self.address, why)
        self._drop()

    def _stray(self, requests: Sequence[Request[Any]], waiting: int) -> ProtocolError:
        """The error for bytes waiting before a command is written (a reply to no command);
        the connection is dropped, and nothing was sent."""
        self._broken(f"{waiting or 'some'} bytes were waiting before a command was written, a reply to no command")
        command = requests[-1].command if requests else "?"
        return ProtocolError(
            f"{command}: {waiting or 'some'} bytes from {self.address} were waiting before it was written, a"
            " reply to no command: the replies are out of step; the connection was dropped and the command not sent"
        )

    def _peer_gone(self, requests: Sequence[Request[Any]]) -> SocketError:
        """The error for a command not written because the server had closed the connection (the end
        of the stream was there to read before the write): the connection is dropped, and the command
        cannot have run (``maybe_executed=False``); the next call connects again."""
        self._drop()
        command = requests[-1].command if requests else "?"
        return SocketError(
            f"{command}: the server at {self.address} had closed the connection; the command was not sent"
            " (the next call connects again)",
            maybe_executed=False,
        )

    def _restore_failed(self, exc: BaseException) -> SocketError:
        """The error for a restore (the watch list, on connecting) that failed: the new connection is dropped."""
        self._drop()
        error = SocketError(
            f"connecting to {self.address}: restoring the watch list failed: {exc}; the connection was"
            " dropped and the command that needed it not sent"
        )
        error.__cause__ = exc
        return error

    # -- jobs to messages ------------------------------------------------------

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> M:
        raise NotImplementedError

    def _message(self, job: Job, reserved: bool = False) -> M:
        """A received job as a message; ``InvalidEnvelope`` (carrying it) if it fails validation."""
        kwargs, problem = MessageBase._from_job(job.id, job.body, self.validate)
        message = self._new_message(kwargs.pop("body"), kwargs)
        if reserved:
            message._held = self._link
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


def check_ssl(name: str, value: object) -> SSLContext | None:
    """``value`` if it is None or an ``ssl.SSLContext``."""
    if value is None:
        return None
    if not isinstance(value, SSLContext):
        raise ArgumentTypeError(name, value, f"must be an ssl.SSLContext or None, not {type(value).__name__}")
    return value


def _version() -> str:
    from beanstalkm import __version__

    return __version__
