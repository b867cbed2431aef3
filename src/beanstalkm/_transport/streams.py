"""The asyncio transport: one asyncio protocol over TCP (``TCP_NODELAY``) or a UNIX socket, TLS or not.

What arrives goes, as the event loop reads it, to the commands pipelined on the connection while
any await their replies, else it is kept in order for ``receive`` (docs/async-dispatch.md).
"""

from __future__ import annotations

__all__ = ["RECV", "StreamTransport", "new_lock", "receive_any"]

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Request
from beanstalkm._core.session import Session

if TYPE_CHECKING:
    from beanstalkm._transport.pipelined import Pipelined

RECV = 65536
"""The most a single receive asks for, a large body's included: a receive allocates what it asks for
before anything arrives, and larger ones fragmented the heap (docs/memory.md)."""

KEPT_MAX = 2 * RECV
"""The most bytes kept for ``receive`` before the stream stops reading from the socket (as asyncio's
``StreamReader`` does at twice its limit): a conversation that does not read cannot make it grow."""


def new_lock() -> asyncio.Lock:
    """The lock a connection holds from a command's write to its last reply."""
    return asyncio.Lock()


class _Stream(asyncio.Protocol):
    """The asyncio protocol under a ``StreamTransport``: bytes to the sink, or kept for ``receive``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.sink: Pipelined | None = None  # what arrives goes there while replies are awaited (``inflight``)
        self.kept: deque[bytes] = deque()  # bytes for ``receive``, in order
        self.size = 0  # how many bytes ``kept`` holds
        self.eof = False  # the server closed the stream (or it was closed here)
        self.error: BaseException | None = None  # the stream failed
        self.waiter: asyncio.Future[None] | None = None  # a receive waiting for bytes
        self.paused = False  # reading paused: ``kept`` is full
        self.writable: asyncio.Future[None] | None = None  # a drain waiting for the write buffer to empty
        self.write_paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            self.transport = transport

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None and sink.inflight:  # replies awaited: what arrives is theirs
            sink.received(data)
            return
        self.kept.append(data)
        self.size += len(data)
        self._wake()
        if self.size > KEPT_MAX and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        if self.sink is not None:
            self.sink.lost(ConnectionResetError("the server closed the connection"))
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self.eof = True
        elif self.error is None:
            self.error = exc
        self._wake()
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)  # the drain sees the end
        if self.sink is not None:
            self.sink.lost(exc if exc is not None else ConnectionResetError("the server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self, size: int) -> bytes:
        """Up to ``size`` of the bytes kept (the first piece that arrived, or its start)."""
        kept = self.kept
        first = kept[0]
        if len(first) <= size:
            kept.popleft()
        else:
            kept[0] = first[size:]
            first = first[:size]
        self.size -= len(first)
        if self.paused and self.size <= KEPT_MAX // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return first


class StreamWriter:
    """The writing side of a ``StreamTransport`` (the part of asyncio's ``StreamWriter`` it uses)."""

    def __init__(self, transport: asyncio.Transport, stream: _Stream) -> None:
        self.transport = transport
        self._stream = stream
        self.write: Callable[[bytes], None] = transport.write
        """Hand bytes to the transport, which sends what the socket takes at once (its own method: no call more)."""

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark (as asyncio's ``StreamWriter.drain``:
        the stream's error, or ``ConnectionResetError`` once it is gone)."""
        stream = self._stream
        if self.transport.is_closing():
            await asyncio.sleep(0)  # let the loop report the end (connection_lost)
        while True:
            if stream.error is not None:
                raise stream.error
            if stream.closed.done():
                raise ConnectionResetError("Connection lost")
            if not stream.write_paused:
                return
            writable = stream.writable
            if writable is None or writable.done():  # (one a cancelled drain waited on is cancelled)
                writable = stream.writable = asyncio.get_running_loop().create_future()
            await writable


class StreamTransport:
    """An open stream. ``timeout`` is the connection's own (bounding connecting, each write and each
    wait); ``blocking`` is True while a wait for a job (a blocking reserve) is under way."""

    __slots__ = ("_stream", "blocking", "timeout", "writer")

    holds = True
    """Whether this transport may hold bytes received and not handed out (``buffered()`` above 0)."""

    def __init__(self, transport: asyncio.Transport, stream: _Stream, timeout: float | None) -> None:
        self._stream = stream
        self.writer = StreamWriter(transport, stream)
        self.timeout = timeout
        self.blocking = False
        if isinstance(getattr(transport, "max_size", None), int):
            # asyncio's socket transport receives up to 256 KiB at a time into a new bytes object,
            # shrunk to what came: glibc serves that size with mmap, and an mmap, mremap and munmap per
            # reply cost more than the rest of a small command. 64 KiB comes from the heap.
            vars(transport)["max_size"] = RECV

    @classmethod
    async def open(
        cls, host: str, port: int, unix_socket: str | None, timeout: float | None, tls: ssl.SSLContext | None = None
    ) -> StreamTransport:
        """Connect (``OSError`` if that fails, ``TimeoutError`` after ``timeout``); with ``tls``, over TLS
        (the handshake included in ``timeout``; a refused certificate is an ``ssl.SSLCertVerificationError``)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            if unix_socket is not None:
                # no host name to send or check (the constructor refuses a context that checks one)
                hostname = None if tls is None else ""
                transport, stream = await loop.create_unix_connection(
                    _Stream, unix_socket, ssl=tls, server_hostname=hostname
                )
            else:
                transport, stream = await loop.create_connection(_Stream, host, port, ssl=tls)
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not isinstance(transport, asyncio.Transport):  # pragma: no cover - what asyncio always returns
            raise OSError("asyncio returned no stream transport")
        return cls(transport, stream, timeout)

    def attach(self, sink: Pipelined | None) -> None:
        """Hand what arrives to ``sink`` while it expects replies (None: keep everything for ``receive``)."""
        self._stream.sink = sink

    async def send_command(self, request: Request[Any], session: Session) -> None:
        """Write one command (whole commands may reach the server from here on)."""
        writer = self.writer
        writer.write(request.data)
        session.written = True
        if writer.transport.get_write_buffer_size():
            await self._drain()

    async def send_receive(self, head: bytes, session: Session, check: bool = True) -> bytes | None:
        """Write one command line whole (``send_command``) and receive the first bytes of its reply,
        which comes at once: the timeout bounds the wait. ``ConnectionResetError`` if the server closed.
        ``check``: first, the stray-reply check (``readable``): if bytes wait to be read, nothing is
        sent and the answer is None."""
        stream = self._stream
        if check and (stream.kept or stream.eof or stream.error is not None):  # bytes, or the end: not sent
            return None
        writer = self.writer
        writer.write(head)
        session.written = True
        if writer.transport.get_write_buffer_size():
            await self._drain()
        chunk = await self.receive(RECV, self.timeout)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return chunk

    async def write(self, data: bytes, session: Session, reader: ReplyReader, timeout: float | None) -> None:
        """Write a step of a conversation. No drain: the transport sends the rest as the server takes it
        while the conversation reads the replies (waiting here for the whole batch to go out would
        deadlock with a server that stops reading until its replies are read)."""
        self.writer.write(data)  # sends what the socket takes at once: whole commands may reach the server
        session.written = True

    async def _drain(self) -> None:
        """Wait until the write buffer drains; ``TimeoutError`` after ``timeout`` seconds without progress
        (as the sync transport's timeout bounds each send), so a stopped server cannot hold a big write."""
        writer = self.writer
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

    async def receive(self, size: int, timeout: float | None) -> bytes:
        """Up to ``size`` bytes, waiting up to ``timeout`` seconds (``b""``: the server closed)."""
        stream = self._stream
        if not stream.kept:
            if stream.error is not None:
                raise stream.error
            if stream.eof:
                return b""
            waiter = stream.waiter = asyncio.get_running_loop().create_future()
            try:
                if timeout is None:
                    await waiter
                else:
                    async with asyncio.timeout(timeout):
                        await waiter
            finally:
                stream.waiter = None
            if not stream.kept:
                if stream.error is not None:
                    raise stream.error
                return b""
        return stream.take(size)

    def readable(self) -> bool:
        """Whether bytes (or the end of the stream) wait to be read: the event loop reads eagerly, so
        they are kept here."""
        stream = self._stream
        return bool(stream.kept) or stream.eof or stream.error is not None

    def waiting(self) -> int:
        """How many bytes wait to be read."""
        return self._stream.size

    def buffered(self) -> int:
        """Bytes received and not handed out yet."""
        return self._stream.size

    def ended(self) -> bool:
        """Whether the server closed the stream (or it failed), with nothing left to read."""
        stream = self._stream
        return (stream.eof or stream.error is not None) and not stream.kept

    def interrupt(self) -> None:
        """Cut short a wait under way in another task (it gets an error and drops the connection)."""
        self.abort()

    async def quit(self) -> None:
        """Say ``quit`` and close."""
        with contextlib.suppress(OSError):
            self.writer.write(b"quit\r\n")
            self.writer.transport.close()
            await self._stream.closed

    def abort(self) -> None:
        """Close at once: ``abort()`` closes the socket now and discards what asyncio had not yet written
        (a ``close()`` would keep both until the server took it all)."""
        self.writer.transport.abort()


async def receive_any(
    transports: Sequence[StreamTransport], size: int, timeout: float | None
) -> list[tuple[int, bytes | BaseException]]:
    """Wait until one of the transports has bytes (or the end of its stream), at most ``timeout``
    seconds: what each ready one has, by its index (``b""``: the server closed; the error if its
    stream failed). An empty list when the time ran out. Nothing is taken from a stream that was
    not ready, so no byte is lost."""
    streams = [transport._stream for transport in transports]

    def ready() -> list[int]:
        return [i for i, s in enumerate(streams) if s.kept or s.eof or s.error is not None]

    if not ready():
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for stream in streams:
            stream.waiter = waiter
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            return []
        finally:
            for stream in streams:
                if stream.waiter is waiter:
                    stream.waiter = None
    out: list[tuple[int, bytes | BaseException]] = []
    for i in ready():
        stream = streams[i]
        if stream.kept:
            out.append((i, stream.take(size)))
        else:
            out.append((i, stream.error if stream.error is not None else b""))
    return out
