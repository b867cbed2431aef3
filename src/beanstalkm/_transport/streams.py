"""The asyncio transport: a stream reader and writer (TCP with ``TCP_NODELAY``, or a UNIX socket)."""

from __future__ import annotations

__all__ = ["RECV", "StreamTransport", "new_lock", "receive_any"]

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Sequence
from typing import Any

from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Request
from beanstalkm._core.session import Session

RECV = 65536
"""The most a single receive asks for, a large body's included. A receive allocates what it asks
for before anything arrives; receives of up to 1 MiB, interleaved with a large body's growing buffer,
left the heap fragmented so that a 1 MiB put and reserve peaked at 3.4x the body in extra RSS, and
at 1.9x received 64 KiB at a time (1.6x with the body gathered in one growing buffer;
benchmarks/memory.py, docs/memory.md)."""


def new_lock() -> asyncio.Lock:
    """The lock a connection holds from a command's write to its last reply."""
    return asyncio.Lock()


class StreamTransport:
    """An open stream pair. ``timeout`` is the connection's own (bounding connecting, each write and each
    wait); ``blocking`` is True while a wait for a job (a blocking reserve) is under way."""

    __slots__ = ("_inbox", "blocking", "reader", "timeout", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float | None) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.blocking = False
        inbox = getattr(reader, "_buffer", None)  # asyncio's StreamReader: bytes read ahead, not yet taken
        self._inbox = inbox if isinstance(inbox, bytearray) else bytearray()
        transport = writer.transport
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
        async with asyncio.timeout(timeout):
            if unix_socket is not None:
                reader, writer = await asyncio.open_unix_connection(unix_socket, ssl=tls)
            else:
                reader, writer = await asyncio.open_connection(host, port, ssl=tls)
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, timeout)

    async def send_command(self, request: Request[Any], session: Session) -> None:
        """Write one command (whole commands may reach the server from here on)."""
        writer = self.writer
        writer.write(request.data)
        session.written = True
        if writer.transport.get_write_buffer_size():
            await self._drain()

    async def send_receive(self, head: bytes, session: Session) -> bytes:
        """Write one command line whole (``send_command``) and receive the first bytes of its reply,
        which comes at once: the timeout bounds the wait. ``ConnectionResetError`` if the server closed."""
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
        if timeout is None:
            return await self.reader.read(size)
        async with asyncio.timeout(timeout):
            return await self.reader.read(size)

    def readable(self) -> bool:
        """Whether bytes wait to be read: the event loop reads eagerly, so they are in the stream's buffer."""
        return bool(self._inbox)

    def waiting(self) -> int:
        """How many bytes wait to be read."""
        return len(self._inbox)

    def buffered(self) -> int:
        """Bytes received and not handed out yet (in the stream's buffer)."""
        return len(self._inbox)

    def ended(self) -> bool:
        """Whether the server closed the stream, with nothing left to read."""
        return self.reader.at_eof()

    def interrupt(self) -> None:
        """Cut short a wait under way in another task (it gets an error and drops the connection)."""
        self.abort()

    async def quit(self) -> None:
        """Say ``quit`` and close."""
        writer = self.writer
        with contextlib.suppress(OSError):
            writer.write(b"quit\r\n")
            writer.close()
            await writer.wait_closed()

    def abort(self) -> None:
        """Close at once: ``abort()`` closes the socket now and discards what asyncio had not yet written
        (a ``close()`` would keep both until the server took it all)."""
        self.writer.transport.abort()


async def receive_any(
    transports: Sequence[StreamTransport], size: int, timeout: float | None
) -> list[tuple[int, bytes | BaseException]]:
    """Wait until one of the transports has bytes (or the end of its stream), at most ``timeout``
    seconds: what each ready one has, by its index (``b""``: the server closed; the error if its
    stream failed). An empty list when the time ran out. A read still waiting at the end is
    cancelled before it takes anything, so no byte is lost: it stays in its stream's buffer."""
    ready = [i for i, transport in enumerate(transports) if transport.buffered()]
    if ready:
        return [(i, await transports[i].reader.read(size)) for i in ready]  # buffered: at once
    reads = {asyncio.ensure_future(transport.reader.read(size)): i for i, transport in enumerate(transports)}
    try:
        await asyncio.wait(reads, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for read in reads:
            read.cancel()
        await asyncio.wait(reads)
    out: list[tuple[int, bytes | BaseException]] = []
    for read, i in reads.items():
        if read.cancelled():
            continue
        error = read.exception()
        out.append((i, error if error is not None else read.result()))
    return sorted(out, key=lambda item: item[0])
