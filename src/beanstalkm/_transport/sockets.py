"""The sync transport: one blocking socket (TCP with ``TCP_NODELAY``, or a UNIX socket)."""

from __future__ import annotations

__all__ = ["RECV", "SocketTransport", "TLSSocketTransport", "new_lock", "receive_any"]

import contextlib
import math
import select
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Request
from beanstalkm._core.session import Session

RECV = 65536
"""The most a single receive asks for, a large body's included: a receive allocates what it asks for
before anything arrives, and larger ones fragmented the heap (docs/memory.md)."""

WRITE_AT_ONCE = 16384
"""A batch up to this size goes out in one plain send: the server's receive buffer takes it whole
even while the server is not reading. A larger one is written reading replies meanwhile."""


KERNEL_TIMEOUTS = sys.platform.startswith("linux") and hasattr(socket, "SO_RCVTIMEO")
"""Whether a plain socket's timeouts are the kernel's (``SO_RCVTIMEO``, ``SO_SNDTIMEO``) on a socket
Python sees as blocking. Python's own timeout (``settimeout``) polls before every send and every
receive: two system calls more per command, on every connection that has a timeout
(docs/hot-path.md, "Kernel timeouts"). Elsewhere, and for TLS, Python's own."""

_TIMEVAL = struct.Struct("@ll")
_FOREVER = _TIMEVAL.pack(0, 0)
_LONGEST = 2**31 - 1
"""The longest timeout given to the kernel at once, in seconds (68 years: as good as forever)."""


def _timeval(timeout: float | None) -> bytes:
    """``timeout`` (None: forever; above 0) as the kernel's ``struct timeval``. A timeout too short to
    be a microsecond is one: zero would mean forever."""
    if timeout is None or timeout >= _LONGEST:
        return _FOREVER
    seconds = int(timeout)
    micros = math.ceil((timeout - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    return _TIMEVAL.pack(seconds, micros or (0 if seconds else 1))


def new_lock() -> threading.RLock:
    """The lock a connection holds from a command's write to its last reply."""
    return threading.RLock()


class SocketTransport:
    """A connected socket and the timeout currently set on it.

    ``timeout`` is the connection's own (bounding connecting, each write and
    each wait); a wait that may legitimately take longer sets its own while it
    lasts. ``blocking`` is True while a wait for a job (a blocking reserve)
    is under way, so that ``interrupt`` from another thread may cut it short.
    """

    __slots__ = ("_kernel", "_poll", "_set", "blocking", "sock", "timeout")

    holds = False
    """Whether this transport may hold bytes received and not handed out (``buffered()`` above 0)."""

    kernel_timeouts = KERNEL_TIMEOUTS
    """Whether this class's timeouts may be the kernel's (``KERNEL_TIMEOUTS``): never for TLS, whose
    records a kernel timeout could cut in the middle."""

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        self.sock = sock
        self.timeout = timeout
        self.blocking = False
        self._poll = _poller(sock)
        # the kernel's timeouts where the connection's timeout is one it can hold (not 0: no wait at all)
        self._kernel = self.kernel_timeouts and timeout != 0.0
        if self._kernel:
            sock.settimeout(None)  # blocking for Python: no poll before each send and receive
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(timeout))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(timeout))
        self._set = timeout if self._kernel else sock.gettimeout()

    @classmethod
    def open(
        cls, host: str, port: int, unix_socket: str | None, timeout: float | None, tls: ssl.SSLContext | None = None
    ) -> SocketTransport:
        """Connect (``OSError`` if that fails); with ``tls``, over TLS (the handshake bounded by ``timeout``;
        a refused certificate is an ``ssl.SSLCertVerificationError``)."""
        if unix_socket is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(unix_socket)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is None:
            return cls(sock, timeout)
        try:
            wrapped = tls.wrap_socket(sock, server_hostname=None if unix_socket is not None else host)
        except BaseException:
            sock.close()
            raise
        return TLSSocketTransport(wrapped, timeout)

    def _settimeout(self, timeout: float | None) -> None:
        """Bound the next waits by ``timeout``: with the kernel's timeouts, the receives' (sends keep the
        connection's); a wait of 0 (no wait at all) is Python's non-blocking mode, whichever."""
        if self._set != timeout:
            if self._kernel and timeout != 0.0:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(timeout))
                if self._set == 0.0:
                    self.sock.settimeout(None)
            else:
                self.sock.settimeout(timeout)
            self._set = timeout

    def send_command(self, request: Request[Any], session: Session) -> None:
        """Write one command whole; cut short, it cannot have run (a partial command is not carried out)."""
        self._settimeout(self.timeout)  # a blocking reserve may have left another
        try:
            if request.body is None:
                self.sock.sendall(request.head)
            else:
                _send_pieces(self.sock, request.pieces)
        except BlockingIOError:  # the kernel's send timeout ran out
            raise TimeoutError("timed out") from None
        session.written = True

    def send_receive(self, head: bytes, session: Session, check: bool = True) -> bytes | None:
        """Write one command line whole (``send_command``) and receive the first bytes of its reply,
        which comes at once: the timeout bounds the wait. ``ConnectionResetError`` if the server closed.
        ``check``: first, the stray-reply check (``readable``: one ``poll(0)``): if bytes, or the end of
        the stream, wait to be read, nothing is sent and the answer is None."""
        sock = self.sock
        if check and self._poll(0):
            return None
        if self._set != self.timeout:  # a blocking reserve may have left another
            self._settimeout(self.timeout)
        try:
            sock.sendall(head)
            session.written = True
            chunk = sock.recv(RECV)
        except BlockingIOError:  # the kernel's timeout ran out
            raise TimeoutError("timed out") from None
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return chunk

    def write(self, data: bytes, session: Session, reader: ReplyReader, timeout: float | None) -> None:
        """Write a step of a conversation. A large batch, or any later write, is written reading replies
        into ``reader`` meanwhile: beanstalkd stops reading while its replies go unread, and a client that
        only wrote would deadlock with it. ``timeout`` bounds each wait without progress."""
        self._settimeout(self.timeout)
        sock = self.sock
        with memoryview(data) as view:
            if session.written or len(view) > WRITE_AT_ONCE:
                self._write_duplex(view, 0, session, reader, timeout)
                return
            try:
                done = sock.send(view)
            except BlockingIOError:  # the kernel's send timeout ran out, nothing sent
                raise TimeoutError("timed out") from None
            session.written = True  # from the first byte on, whole commands may reach the server and run
            if done < len(view):
                self._write_duplex(view, done, session, reader, timeout)

    def _write_duplex(
        self, data: memoryview, done: int, session: Session, reader: ReplyReader, timeout: float | None
    ) -> None:
        sock = self.sock
        kernel = self._kernel  # a socket blocking for Python: each send and receive told not to wait
        flags = _DONTWAIT if kernel else 0
        if not kernel:
            sock.setblocking(False)
            self._set = 0.0
        try:
            while done < len(data):
                try:
                    done += sock.send(data[done:], flags)
                    session.written = True  # whole commands may have reached the server
                    continue
                except _WOULD_BLOCK:
                    pass
                self.blocking = session.wait != 0.0  # the batch holds a reserve: interrupt() may cut it short
                try:
                    readable, writable = _wait(sock, timeout)
                finally:
                    self.blocking = False
                if not (readable or writable):
                    raise TimeoutError("timed out")
                if readable:
                    try:
                        chunk = sock.recv(RECV, flags)
                    except _WOULD_BLOCK:
                        chunk = None
                    if chunk == b"":
                        raise ConnectionResetError("the server closed the connection")
                    if chunk:
                        reader.feed(chunk)
        finally:
            self._settimeout(self.timeout)

    def receive(self, size: int, timeout: float | None) -> bytes:
        """Up to ``size`` bytes, waiting up to ``timeout`` seconds (``b""``: the server closed)."""
        self._settimeout(timeout)
        try:
            return self.sock.recv(size)
        except BlockingIOError:
            if not self._kernel or timeout == 0.0:  # Python's non-blocking mode: nothing there
                raise
            raise TimeoutError("timed out") from None  # the kernel's timeout ran out

    def readable(self) -> bool:
        """Whether bytes (or the end of the stream) wait to be read: one ``poll(0)``, about 0.3 us."""
        return bool(self._poll(0))

    def waiting(self) -> int:
        """How many bytes wait to be read (0 for the end of the stream, or none): 0 or 1 here."""
        try:
            return len(self.sock.recv(1, socket.MSG_PEEK))
        except OSError:
            return 0

    def buffered(self) -> int:
        """Bytes received and not handed out yet: none, a socket hands out what it receives."""
        return 0

    def ended(self) -> bool:
        """Whether the server closed the stream, with nothing left to read (one ``poll(0)`` when it did not)."""
        return self.readable() and self.waiting() == 0

    def interrupt(self) -> None:
        """Cut short a wait under way in another thread (it gets an error and drops the connection)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def quit(self) -> None:
        """Say ``quit`` and close."""
        with contextlib.suppress(OSError):
            self.sock.sendall(b"quit\r\n")
        self.sock.close()

    def abort(self) -> None:
        """Close at once, whatever is unsent."""
        self.sock.close()

    def receive_now(self, size: int) -> bytes | None:
        """Up to ``size`` bytes if some are there now (``b""``: the server closed), else None; never waits
        (``MSG_DONTWAIT``: the socket's own timeout is left alone)."""
        try:
            return self.sock.recv(size, _DONTWAIT)
        except _WOULD_BLOCK:
            return None


_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)  # Windows has none: after the poll said readable, recv returns at once
"""What a non-blocking send or receive raises when it would wait (a TLS record may need either)."""


class TLSSocketTransport(SocketTransport):
    """A blocking socket speaking TLS. Bytes decrypted but not yet handed out (``pending``), and those
    read ahead to see whether application data waits (TLS also sends records of its own, such as
    session tickets, that make the socket readable with nothing for the reader), count as buffered."""

    __slots__ = ("_ahead", "_eof")

    sock: ssl.SSLSocket
    holds = True
    kernel_timeouts = False

    def __init__(self, sock: ssl.SSLSocket, timeout: float | None) -> None:
        super().__init__(sock, timeout)
        self._ahead = b""
        self._eof = False  # a read ahead found the end of the stream (or the connection failed)

    def send_command(self, request: Request[Any], session: Session) -> None:
        self._settimeout(self.timeout)
        self.sock.sendall(request.data)  # TLS sockets have no sendmsg: the pieces are joined
        session.written = True

    def send_receive(self, head: bytes, session: Session, check: bool = True) -> bytes | None:
        if check and self.readable():
            return None
        self._settimeout(self.timeout)
        self.sock.sendall(head)
        session.written = True
        chunk = self.receive(RECV, self.timeout)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return chunk

    def receive(self, size: int, timeout: float | None) -> bytes:
        if self._ahead:
            chunk, self._ahead = self._ahead, b""
            return chunk
        return super().receive(size, timeout)

    def receive_now(self, size: int) -> bytes | None:
        if self._ahead:
            chunk, self._ahead = self._ahead, b""
            return chunk
        self._settimeout(0.0)  # a TLS socket takes no flags: non-blocking for this one read
        try:
            return self.sock.recv(size)
        except _WOULD_BLOCK:
            return None

    def readable(self) -> bool:  # the end, once a read ahead found it (a close_notify may leave nothing to poll)
        return bool(self._ahead) or self._eof or self.sock.pending() > 0 or bool(self._poll(0))

    def waiting(self) -> int:
        if not self._ahead:
            try:
                chunk = self.receive_now(RECV)
            except OSError:  # the connection failed: the end, as a plain socket's peek reports it
                chunk = b""
            self._settimeout(self.timeout)
            if chunk == b"":
                self._eof = True
            self._ahead = chunk or b""
        return len(self._ahead)

    def ended(self) -> bool:
        return self.readable() and self.waiting() == 0 and self._eof  # not a TLS record of its own

    def buffered(self) -> int:
        return len(self._ahead) + self.sock.pending()


def receive_any(
    transports: Sequence[SocketTransport], size: int, timeout: float | None
) -> list[tuple[int, bytes | BaseException]]:
    """Wait until one of the transports has bytes (or the end of its stream), at most ``timeout``
    seconds, with no thread: what each ready one has, by its index (``b""``: the server closed; an
    ``OSError`` if its socket failed). An empty list when the time ran out."""
    ready = [i for i, transport in enumerate(transports) if transport.buffered()]
    if not ready:
        ready = _readable([transport.sock for transport in transports], timeout)
    out: list[tuple[int, bytes | BaseException]] = []
    for i in sorted(ready):
        try:
            chunk = transports[i].receive_now(size)
        except OSError as exc:
            out.append((i, exc))
            continue
        if chunk is not None:  # None: a TLS record of its own, no data for the reader yet
            out.append((i, chunk))
    return out


_POLL_MAX = 2**31 - 1
"""The longest wait ``_wait`` passes to the system at once (poll's milliseconds, select's seconds)."""

if hasattr(select, "poll"):

    def _poller(sock: socket.socket) -> Callable[[int], object]:
        """``poll(0)`` on ``sock`` for reading: a non-empty list when bytes (or the end) wait."""
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return poller.poll

    def _wait(sock: socket.socket, timeout: float | None) -> tuple[bool, bool]:
        """Wait until ``sock`` is readable or writable (or ``timeout`` seconds pass): which it is."""
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLOUT)
        # poll takes a C int of milliseconds: a longer wait (timeout plus a long reserve's) is cut to 24.8 days
        events = poller.poll(None if timeout is None else min(max(0, math.ceil(timeout * 1000)), _POLL_MAX))
        flags = events[0][1] if events else 0
        # an error or hang-up counts as readable: the recv reports it
        return bool(flags & (select.POLLIN | select.POLLERR | select.POLLHUP)), bool(flags & select.POLLOUT)

    def _readable(socks: Sequence[socket.socket], timeout: float | None) -> list[int]:
        """Wait until some of ``socks`` are readable (or ``timeout`` seconds pass): their indexes. One
        ``poll`` call (a selector would cost several system calls each time)."""
        poller = select.poll()
        fds = {}
        for i, sock in enumerate(socks):
            fds[sock.fileno()] = i
            poller.register(sock, select.POLLIN)
        events = poller.poll(None if timeout is None else min(max(0, math.ceil(timeout * 1000)), _POLL_MAX))
        return [fds[fd] for fd, _ in events]

else:  # pragma: no cover - Windows

    def _poller(sock: socket.socket) -> Callable[[int], object]:
        """``select`` on ``sock`` for reading, at once: a non-empty list when bytes (or the end) wait."""
        return lambda timeout: select.select([sock], [], [], timeout)[0]

    def _wait(sock: socket.socket, timeout: float | None) -> tuple[bool, bool]:
        """Wait until ``sock`` is readable or writable (or ``timeout`` seconds pass): which it is."""
        readable, writable, _ = select.select([sock], [sock], [], None if timeout is None else min(timeout, _POLL_MAX))
        return bool(readable), bool(writable)

    def _readable(socks: Sequence[socket.socket], timeout: float | None) -> list[int]:
        """Wait until some of ``socks`` are readable (or ``timeout`` seconds pass): their indexes."""
        readable, _, _ = select.select(list(socks), [], [], None if timeout is None else min(timeout, _POLL_MAX))
        return [i for i, sock in enumerate(socks) if sock in readable]


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
