"""Auto-pipelining over the asyncio transport (asyncio only).

Commands that concurrent tasks issue on one connection are queued here and
written together, one write per event-loop turn; beanstalkd answers a
connection's commands strictly in order, so the replies are matched to them
first in, first out. Nobody runs a reader task: a task waiting for its reply
reads for everyone while nobody else does (the first one to wait, usually),
hands each reply to its command, and when its own has come passes the
reading on to the next task still waiting.

A task cancelled while its command is queued unsent takes the command back:
it is never written (``Task.cancel()`` cancels the future the task waits on at
once, which the write sees). One cancelled once its command was written leaves an
*abandoned* entry: its reply is still read (by whoever reads) and dropped, so
the stream stays in step. Only commands with no effect on the connection's
state, which always answer at once, come here (see
``AsyncConnection._execute``); everything else holds the connection alone,
after the replies in flight are in (:meth:`Pipelined.drain`).
"""

from __future__ import annotations

__all__ = ["Alone", "Cancelled", "Pipelined", "shielded"]

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Reply
from beanstalkm._core.session import out_of_step
from beanstalkm._transport.streams import StreamTransport

Cancelled = asyncio.CancelledError
"""What a cancelled task gets: not a connection failure (its reply, if its command was written, is dropped)."""

T = TypeVar("T")

_DRAINED = Reply("", (), None)
"""The "reply" of a marker: every command before it has its reply."""


async def shielded(work: Coroutine[Any, Any, T]) -> T:
    """``await work``, which goes on to its end even if the awaiting task is cancelled meanwhile."""
    return await asyncio.shield(work)


class Entry:
    """A queued command (``data``; None for a marker), its reply once read, and the task waiting for it.

    ``on_drop`` is called with the reply if the task stopped waiting for it (cancelled): a reserve's
    job, reserved by the connection and seen by nobody, must be handed back."""

    __slots__ = ("abandoned", "data", "on_drop", "reply", "waiter", "written")

    def __init__(self, data: bytes | None) -> None:
        self.data = data
        self.reply: Reply | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.written = False
        self.abandoned = False
        self.on_drop: Callable[[Reply], None] | None = None


class Pipelined:
    """The queue of commands of one open stream: unsent ones, then those written and awaiting replies."""

    __slots__ = (
        "_flush_handle",
        "_inflight",
        "_loop",
        "_reading",
        "_receive",
        "_tasks",
        "_unsent",
        "error",
        "reader",
        "transport",
    )

    def __init__(
        self, transport: StreamTransport, reader: ReplyReader, receive: Callable[[StreamTransport], Awaitable[bytes]]
    ) -> None:
        self.transport = transport
        self.reader = reader
        self._receive = receive  # the next bytes from the stream (the connection's timeout bounds the wait)
        self._loop = asyncio.get_running_loop()
        self._unsent: list[Entry] = []
        self._inflight: deque[Entry] = deque()
        self._flush_handle: asyncio.Handle | None = None
        self._reading = False
        self.error: BaseException | None = None  # the stream failed: every entry gets it
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        """Whether any command is queued or awaits its reply (abandoned ones included)."""
        return bool(self._unsent or self._inflight)

    def submit(self, data: bytes) -> Entry:
        """Queue a command; it is written this event-loop turn, with the others queued meanwhile.

        The caller awaits :meth:`reply` at once (no ``await`` between): if nobody is
        reading, it becomes the reader, and writes what is queued before it reads.
        """
        if self.error is not None:
            raise ConnectionResetError(f"the connection was dropped: {self.error}")
        entry = Entry(data)
        self._unsent.append(entry)
        if self._reading and self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)
        return entry

    def _flush(self) -> None:
        """Write every queued command in one write (those taken back are skipped)."""
        handle, self._flush_handle = self._flush_handle, None
        if handle is not None:
            handle.cancel()
        unsent, self._unsent = self._unsent, []
        if self.error is not None:
            return
        if len(unsent) == 1:  # the usual case of a task alone: one command, one write
            entry = unsent[0]
            waiter = entry.waiter
            if entry.data is not None and not entry.abandoned and (waiter is None or not waiter.cancelled()):
                entry.written = True
                self._inflight.append(entry)
                self.transport.writer.write(entry.data)
                return
        live = []
        for entry in unsent:
            waiter = entry.waiter
            if waiter is not None and waiter.cancelled():  # its task is being cancelled: take it back
                entry.abandoned = True
            if not entry.abandoned:
                live.append(entry)
        if not live:
            return
        chunks = []
        for entry in live:
            entry.written = True
            if entry.data:
                chunks.append(entry.data)
        self._inflight.extend(live)
        if chunks:
            self.transport.writer.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        self._pop_markers()

    def _pop_markers(self) -> None:
        inflight = self._inflight
        while inflight and inflight[0].data is None:
            self._done(inflight.popleft(), _DRAINED)

    def _done(self, entry: Entry, reply: Reply) -> None:
        entry.reply = reply
        waiter = entry.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def reply(self, entry: Entry) -> Reply:
        """The reply to ``entry``, reading for everyone while nobody else does.

        Cancelled, the entry is taken back if it is still unsent, else abandoned
        (its reply is read and dropped); a reader cancelled passes the reading on.
        """
        try:
            while entry.reply is None:
                if self.error is not None:
                    raise ConnectionResetError(f"the connection was dropped: {self.error}")
                if self._reading:
                    waiter = entry.waiter = self._loop.create_future()
                    try:
                        await waiter
                    finally:
                        entry.waiter = None
                    continue
                self._reading = True
                try:
                    if self._unsent:
                        self._flush()
                    while entry.reply is None:
                        self._dispatch(await self._receive(self.transport))
                except Cancelled:
                    raise
                except BaseException as exc:  # the stream failed, or broke the protocol: nothing more is read
                    self.fail(exc)
                    raise
                finally:
                    self._reading = False
                    self._hand_off()
        except BaseException:
            if entry.reply is None:
                entry.abandoned = True
            elif entry.on_drop is not None:  # the reply came, but its task is cancelled before it takes it
                entry.on_drop(entry.reply)
            if not self._reading:  # it may have been woken to read, and cancelled before it could
                self._hand_off()
            raise
        return entry.reply

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in a task of its own (kept until it ends)."""
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every command queued so far has its reply (reading if need be)."""
        if not self.busy:
            return
        marker = Entry(None)
        if self._unsent:
            self._unsent.append(marker)
        else:
            marker.written = True
            self._inflight.append(marker)
        await self.reply(marker)

    def _dispatch(self, chunk: bytes) -> None:
        """Hand each complete reply in ``chunk`` (and what was buffered) to its command, in order."""
        reader, inflight = self.reader, self._inflight
        reply = reader.read(chunk)
        while reply is not None:
            if not inflight:
                raise out_of_step("pipelined commands", len(chunk))
            entry = inflight.popleft()
            self._done(entry, reply)
            if entry.abandoned and entry.on_drop is not None:
                entry.on_drop(reply)
            if inflight and inflight[0].data is None:
                self._pop_markers()
            reply = reader.next_reply() if reader.buffered else None
        if not inflight and reader.buffered:
            raise out_of_step("pipelined commands", reader.buffered)

    def _hand_off(self) -> None:
        """The reader stopped: the next task still waiting for a reply reads from now on. If none is, and
        a cancelled reserve's reply is still to come, a task of its own reads it (its job is handed back)."""
        if self.error is not None or not (self._inflight or self._unsent):
            return
        for entries in (self._inflight, self._unsent):
            for entry in entries:
                waiter = entry.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                    return
        if any(entry.on_drop is not None for entry in self._inflight):
            self.spawn(self._read_dropped())

    async def _read_dropped(self) -> None:
        try:
            await self.drain()
        except Exception:  # noqa: S110 - the stream failed: fail() told every task waiting on it
            pass

    def fail(self, error: BaseException) -> None:
        """The stream is gone: every task waiting here gets an error (its command may have run if written)."""
        if self.error is not None:
            return
        self.error = error
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for entries in (self._inflight, self._unsent):
            for entry in entries:
                waiter = entry.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)


class Alone:
    """``async with``: hold the connection alone (its lock). ``holding`` counts the tasks that hold or
    wait for it: while any do, pipelined commands wait (:meth:`released`) rather than pass them, and
    once none do, those waiting all go on together, so they share a write again."""

    __slots__ = ("_released", "holding", "lock")

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.holding = 0
        self._released: asyncio.Future[None] | None = None

    async def released(self) -> None:
        """Wait until nobody holds or waits for the connection alone (a cancelled waiter leaves the others be)."""
        if self._released is None:
            self._released = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._released)

    async def __aenter__(self) -> None:
        self.holding += 1
        try:
            await self.lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self.lock.release()
        self._leave()

    def _leave(self) -> None:
        self.holding -= 1
        released = self._released
        if not self.holding and released is not None:
            self._released = None
            if not released.done():
                released.set_result(None)
