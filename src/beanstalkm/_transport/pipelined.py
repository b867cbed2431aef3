"""Auto-pipelining over the asyncio transport (asyncio only): concurrent tasks' commands written
together, one write per event-loop turn, their replies handed to them first in, first out as the
loop reads them (:meth:`Pipelined.received`; no task wakes to read).

Only commands with no effect on the connection's state, which always answer at once, come here
(``AsyncConnection._execute``). A cancelled task's command is taken back unsent, or its reply read
and dropped (a reserve's job handed back: ``Entry.on_drop``); one timer per stream bounds the wait
for replies. The design and its guarantees by name: docs/async-dispatch.md.
"""

from __future__ import annotations

__all__ = ["QUICK", "Alone", "Cancelled", "Entry", "Pipelined"]

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Literal, overload

from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import MISS, Quick, Reply
from beanstalkm._core.session import out_of_step
from beanstalkm._transport.streams import StreamTransport

Cancelled = asyncio.CancelledError
"""What a cancelled task gets: not a connection failure (its reply, if its command was written, is dropped)."""


class Entry:
    """A queued command (``data``) and the future of its reply, which its task awaits.

    ``on_drop`` is called with the reply if the task stopped waiting for it (cancelled): a reserve's
    job, reserved by the connection and seen by nobody, must be handed back.

    ``quick``: the command's quick decoder (for a command with no ``on_drop``). A reply that comes
    alone, whole, in one read, for the only command in flight, is decoded by it as it is read: if it
    is the usual success reply, its value goes in ``value`` and the future's result is :data:`QUICK`
    (no :class:`Reply` is built, nor decoded again)."""

    __slots__ = ("data", "future", "on_drop", "quick", "value", "written")

    def __init__(self, data: bytes, future: asyncio.Future[Reply]) -> None:
        self.data = data
        self.future = future
        self.written = False
        self.on_drop: Callable[[Reply], None] | None = None
        self.quick: Quick[Any] | None = None
        self.value: Any = None


QUICK = Reply("", (), None)
"""An entry's result when its reply was decoded as it was read (its value is ``entry.value``)."""


class Pipelined:
    """The queue of commands of one open stream: unsent ones, then those written and awaiting replies.

    ``lost(pipe, error)`` is told once when the stream fails with commands in flight (or a reply
    breaks the protocol): every command still waiting has been given an error by then."""

    __slots__ = (
        "_clock",
        "_flush_handle",
        "_future",
        "_idle",
        "_loop",
        "_lost",
        "_progress",
        "_stream",
        "_tasks",
        "_timer",
        "_unsent",
        "error",
        "inflight",
        "max_body",
        "reader",
        "timeout",
        "transport",
    )

    def __init__(
        self,
        transport: StreamTransport,
        reader: ReplyReader,
        timeout: float | None,
        lost: Callable[[Pipelined, BaseException], None],
        max_body: int,
    ) -> None:
        self.transport = transport
        self.reader = reader
        self.max_body = max_body
        self.timeout = timeout
        self._lost = lost
        self._loop = loop = asyncio.get_running_loop()
        # asyncio's own loop's clock is ``time.monotonic``: read with no Python call between (another
        # loop's own ``time`` is used as it is)
        self._clock: Callable[[], float] = (
            time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        )
        self._future = loop.create_future
        self._stream = transport._stream
        self._unsent: list[Entry] = []
        self.inflight: deque[Entry] = deque()
        """The commands written, awaiting their replies, in order (what arrives is theirs)."""
        self._flush_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._progress = 0.0  # when the last reply came, or the wait for one began
        self._idle: asyncio.Future[None] | None = None  # set once nothing is queued or in flight
        self.error: BaseException | None = None  # the stream failed: every entry got it
        self._tasks: set[asyncio.Task[None]] = set()
        transport.attach(self)

    @property
    def busy(self) -> bool:
        """Whether any command is queued or awaits its reply (abandoned ones included)."""
        return bool(self._unsent or self.inflight)

    @overload
    def submit(self, data: bytes, check: Literal[False]) -> Entry: ...

    @overload
    def submit(self, data: bytes, check: bool = True) -> Entry | None: ...

    def submit(self, data: bytes, check: bool = True) -> Entry | None:
        """Queue a command; the caller awaits ``entry.future`` at once (no ``await`` between).

        Written at once if nothing else is queued or in flight, else at the end of this
        event-loop turn with the others queued meanwhile. ``ConnectionResetError`` (nothing
        written) if the stream is gone. ``check``: when nothing is queued or in flight, the
        stray-reply check first (the connection's reader or the stream holds bytes: a reply to no
        command): then nothing is queued and the answer is None.
        """
        if self.error is not None:
            raise ConnectionResetError(f"the connection was dropped: {self.error}")
        stream = self._stream
        if self._unsent or self.inflight:
            if (stream.eof or stream.error is not None) and not stream.kept:  # ``transport.ended()``, inline
                raise ConnectionResetError("the server closed the connection")
            entry = Entry(data, self._future())
            self._unsent.append(entry)
            if self._flush_handle is None:
                self._flush_handle = self._loop.call_soon(self._flush)
            return entry
        if stream.kept:  # bytes wait: a reply to no command (or the end, once they are read)
            if check:
                return None
        elif stream.eof or stream.error is not None:
            raise ConnectionResetError("the server closed the connection")
        if check and self.reader.buffered:
            return None
        entry = Entry(data, self._future())
        self._write([entry], data)
        return entry

    def _write(self, entries: list[Entry], data: bytes) -> None:
        inflight = self.inflight
        if not inflight and self.timeout is not None:  # the wait for replies begins
            self._progress = self._clock()
            if self._timer is None:
                self._timer = self._loop.call_at(self._progress + self.timeout, self._check)
        for entry in entries:
            entry.written = True
        inflight.extend(entries)
        self.transport.writer.write(data)

    def _flush(self) -> None:
        """Write every queued command in one write (those taken back are skipped)."""
        self._flush_handle = None
        unsent, self._unsent = self._unsent, []
        if self.error is not None:
            return
        live = [entry for entry in unsent if not entry.future.cancelled()]  # cancelled: taken back
        if len(live) > 1:
            self._write(live, b"".join([entry.data for entry in live]))
        elif live:
            self._write(live, live[0].data)
        elif not self.inflight:
            self._became_idle()

    def received(self, data: bytes) -> None:
        """Bytes that arrived while replies are awaited: each complete reply to its command, in order.
        A reply that breaks the protocol, or one more than was awaited, fails the stream."""
        inflight, reader = self.inflight, self.reader
        try:
            if self.timeout is not None:
                self._progress = self._clock()
            if len(inflight) == 1:  # one command in flight, its reply whole in this read: decoded at once
                entry = inflight[0]
                quick, future = entry.quick, entry.future
                if quick is not None and not future.done() and not reader.buffered:
                    value = quick(data, self.max_body)
                    if value is not MISS:  # exactly its usual success reply, nothing more (else: below)
                        inflight.popleft()
                        entry.value = value
                        future.set_result(QUICK)
                        if not self._unsent and self._idle is not None:
                            self._became_idle()
                        return
            replies = reader.lines(data)  # the usual case: whole lines, no body (one split for them all)
            if replies is not None:
                if len(replies) > len(inflight):  # a reply to no command: none of them can be trusted
                    raise out_of_step("pipelined commands", len(data))
                hand = self._hand
                for line in replies:
                    hand(inflight.popleft(), line)
            else:
                first = reader.read(data)
                if first is None:  # a reply in pieces: more to come
                    return
                self._dispatch(first, len(data))
                return
            if not inflight and not self._unsent and self._idle is not None:  # someone waits for that
                self._became_idle()
        except Exception as exc:
            self.fail(exc)

    def _hand(self, entry: Entry, reply: Reply) -> None:
        future = entry.future
        if not future.done():
            future.set_result(reply)
        elif entry.on_drop is not None:  # its task was cancelled: abandoned
            entry.on_drop(reply)

    def _dispatch(self, reply: Reply, size: int) -> None:
        """Several replies (``reply`` the first): every complete one is parsed first, and if there are
        more than commands in flight (a reply to no command), none is handed out, as none of them can
        be trusted to be its command's."""
        reader, inflight = self.reader, self.inflight
        replies = [reply]
        broken: Exception | None = None
        try:
            while reader.buffered and (more := reader.next_reply()) is not None:
                replies.append(more)
        except Exception as exc:  # a reply that broke the protocol: those before it are handed out
            broken = exc
        if len(replies) > len(inflight) or (broken is None and len(replies) == len(inflight) and reader.buffered):
            raise out_of_step("pipelined commands", size)
        for reply in replies:
            self._hand(inflight.popleft(), reply)
        if broken is not None:
            raise broken
        if not inflight and not self._unsent:
            self._became_idle()

    def abandon(self, entry: Entry, kept: bool = False) -> None:
        """``entry``'s task was cancelled. A reply that came before it could take it is dropped (handed
        back, for a reserve); an error is taken (it was told to the others). Else, if written (or
        ``kept``: written all the same), its reply will be dropped when it comes; if not, it never is."""
        future = entry.future
        if not future.done():
            if kept:
                future.add_done_callback(_dropped)
            return
        if not future.cancelled() and future.exception() is None and entry.on_drop is not None:
            entry.on_drop(future.result())

    def _check(self) -> None:
        """The timer: replies awaited and none for ``timeout`` seconds fails the stream."""
        self._timer = None
        if not self.inflight or self.error is not None or self.timeout is None:
            return
        due = self._progress + self.timeout
        if self._clock() >= due:
            self.fail(TimeoutError("no reply came in time"))
        else:
            self._timer = self._loop.call_at(due, self._check)

    def _became_idle(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None and not idle.done():
            idle.set_result(None)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in a task of its own (kept until it ends)."""
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every command queued so far has its reply, or the stream failed (a cancelled
        caller leaves the others be)."""
        while self.busy and self.error is None:
            if self._idle is None:
                self._idle = self._loop.create_future()
            await asyncio.shield(self._idle)

    def lost(self, error: BaseException) -> None:
        """The stream ended or failed: with commands queued or in flight, they fail."""
        if self.busy:
            self.fail(error)

    def fail(self, error: BaseException) -> None:
        """The stream is gone: every task waiting here gets an error (its command may have run if written):
        the first, ``error`` itself; the others, a ``ConnectionResetError`` saying so."""
        if self.error is not None:
            return
        self.error = error
        for handle in (self._flush_handle, self._timer):
            if handle is not None:
                handle.cancel()
        self._flush_handle = self._timer = None
        entries = [*self.inflight, *self._unsent]
        self.inflight.clear()
        self._unsent = []
        told = False
        for entry in entries:
            future = entry.future
            if not future.done():
                future.set_exception(
                    error if not told else ConnectionResetError(f"the connection was dropped: {error}")
                )
                told = True
        self._became_idle()
        self._lost(self, error)


def _dropped(future: asyncio.Future[Reply]) -> None:
    """The reply of a kept command whose task was cancelled: dropped (an error taken, so none is logged)."""
    if not future.cancelled():
        future.exception()


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
