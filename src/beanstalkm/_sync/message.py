# Derived by `python -m codegen` from src/beanstalkm/_async/message.py (sha256 14a117d52fe4824d136545aa9c2aa5bcc3f9b62fdc747dcea06ce34e15a96d84). DO NOT EDIT; edit the source and run `make generate`.
"""Messages bound to a connection: a job's body, its envelope fields and its lifecycle methods (the

The sync flavour, derived from the asyncio source by ``python -m codegen``.
"""

from __future__ import annotations

__all__ = ["Message"]

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Self, Unpack

from beanstalkm._core.message import DEFAULT_TUBE, AskedSetting, MessageBase, MessageFields
from beanstalkm._core.requests import Job
from beanstalkm._errors import CommandFailed, InvalidEnvelope
from beanstalkm._generated import commands as _c
from beanstalkm._generated.commands import DEFAULT_PRIORITY
from beanstalkm._generated.errors import NotFound
from beanstalkm._generated.stats import JobStats

if TYPE_CHECKING:
    from beanstalkm._sync.connection import Connection

_NO_LEASE = contextlib.nullcontext()


class Message(MessageBase):
    """A message bound to a :class:`~beanstalkm.Connection`.

    ``priority``, ``delay`` and ``ttr`` are asked of the server once, when
    first read, for a received job; ``release()`` and ``bury()`` keep the
    job's own priority by default.
    """

    __slots__ = ("_conn", "_lease")

    def __init__(self, conn: Connection, body: Any, **kwargs: Unpack[MessageFields]) -> None:
        self._conn = conn
        self._lease: Callable[[], Connection] | None = None
        super().__init__(body, **kwargs)

    @classmethod
    def _new(
        cls,
        conn: Connection,
        body: Any,
        sender: dict[str, Any],
        priority: int,
        delay: int,
        ttr: int,
        created: dict[str, int] | None = None,
        token: str | None = None,
    ) -> Self:
        """A new message of ``body`` from ``sender``, to put: ``cls(conn, body, sender=sender, priority=...)``
        without the keywords' cost (``Client.put``'s and ``put_many``'s common case)."""
        message = cls.__new__(cls)  # ``_bound``, inline
        message._conn = conn
        message._lease = None
        message._fill(body, 0, created, sender, None, None, None, token, priority, delay, ttr, None, None, True)
        return message

    @classmethod
    def _made(cls, conn: Connection, body: Any, kwargs: dict[str, Any]) -> Self:
        """``cls(conn, body, **kwargs)``, the keywords passed on once, not twice."""
        message = cls._bound(conn)
        MessageBase.__init__(message, body, **kwargs)
        return message

    @classmethod
    def _of_job(cls, conn: Connection, job: Job, reserved: bool) -> Self:
        """``ConnectionBase._message``: a received job as a message (``reserved``: by ``conn``, just
        now); ``InvalidEnvelope``, carrying it, if it fails validation. The envelope beanstalkm writes
        is read in one pass, with no keyword dictionary (``MessageBase._receive``)."""
        message = cls._bound(conn)
        problem = message._receive(job.id, job.body, conn._link if reserved else None, conn.validate)
        if problem is not None:
            raise InvalidEnvelope(message, problem)
        return message

    @classmethod
    def _bound(cls, conn: Connection) -> Self:
        """A message bound to ``conn``, its fields to be filled (what ``__init__`` does first)."""
        message = cls.__new__(cls)
        message._conn = conn
        message._lease = None
        return message

    def _link(self) -> object | None:
        return self._conn._link

    @property
    def server(self) -> str:
        """The URL of the server this job lives on (see ``Connection.url``)."""
        return self._conn.url

    @property
    def ref(self) -> tuple[str, int]:
        """``(server, uid)``: the job's reference (ids are per server, so they collide across servers)."""
        return (self._conn.url, self.uid)

    def _lend(self, give_back: Callable[[], Connection]) -> None:
        """While this job is reserved its connection is lent to it (by a pool): once the reservation is
        over, ``give_back()`` returns the connection and says which one the message uses from then on."""
        self._lease = give_back

    def _settling(self) -> contextlib.AbstractContextManager[None]:
        """Around a delete, release, bury or touch: see ``_leased`` (nothing to do without a lease)."""
        return _NO_LEASE if self._lease is None else self._leased()

    @contextlib.contextmanager
    def _leased(self) -> Iterator[None]:
        """Once the reservation is over (settled, refused by the server, or void with a dropped
        connection) a lent connection goes back; not when the call was refused before sending,
        or cancelled in line."""
        try:
            yield
        except CommandFailed:
            self._end_lease()
            raise
        finally:
            if not self.reserved or not self._conn.connected:
                self._end_lease()

    def _end_lease(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            self._conn = lease()

    priority = AskedSetting("priority", "The job's priority (asked of the server once, for a received job).")
    delay = AskedSetting("delay", "The delay the job was put with (asked of the server once, for a received job).")
    ttr = AskedSetting("ttr", "The job's time to run (asked of the server once, for a received job).")

    def _own_priority(self, priority: int | None) -> int:
        if priority is not None:
            return priority
        if self._priority is None:
            self._job_stats()
        return self._priority if self._priority is not None else DEFAULT_PRIORITY

    def _job_stats(self) -> JobStats:
        stats = self._conn.queue.stats_job(self.uid)
        self._learn(stats)
        return stats

    def send(self, tube: str = DEFAULT_TUBE) -> int:
        """Put this message into ``tube``; returns (and sets) its ``uid``.

        The connection's used tube, as ``queue.using()`` reports it, is not changed.
        """
        if tube is None:  # not a tube (None would mean the used one, further down)
            _c.TUBE_RULE.check("tube", tube)
        conn = self._conn
        return self._sent(conn._execute(self._put_request(conn._sender_wire), tube=tube))

    def delete(self) -> None:
        """Delete the job. Afterwards ``deleted`` is True and ``stats()`` returns None; a second call does nothing."""
        with self._settling():
            if self._on_server():
                try:
                    self._conn.queue.delete(self.uid)
                except NotFound:
                    self._gone()
                    raise
            self._deleted()

    def release(self, priority: int | None = None, delay: int | None = None) -> None:
        """Release the reserved job back to ready (or delayed, with ``delay``).

        ``priority`` defaults to the job's own priority, so releasing never changes it.
        """
        with self._settling():
            delay = self._check_settling(priority, delay)
            self._still_held("release")
            try:
                own = self._own_priority(priority)  # (a stats-job: NOT_FOUND if the job is gone)
                self._conn.queue.release(self.uid, own, delay)
            except NotFound:
                self._gone()
                raise
            self._settled(priority)

    def bury(self, priority: int | None = None) -> None:
        """Bury the reserved job; ``priority`` defaults to the job's own."""
        with self._settling():
            self._still_held("bury")
            try:
                own = self._own_priority(priority)  # (a stats-job: NOT_FOUND if the job is gone)
                self._conn.queue.bury(self.uid, own)
            except NotFound:
                self._gone()
                raise
            self._settled(priority)

    def kick(self) -> None:
        """Kick this buried or delayed job to ready."""
        self._conn.queue.kick_job(self.uid)

    def touch(self) -> None:
        """Ask for more time to work on the reserved job (its TTR restarts).

        ``NotFound`` if the job is not reserved by this connection (its time to run ran out, or the
        connection that reserved it closed: then nothing is sent): ``reserved`` is then False."""
        with self._settling():  # a touch that finds the reservation over ends a pool's lease
            self._still_held("touch")
            try:
                self._conn.queue.touch(self.uid)
            except NotFound:
                self._gone()
                raise

    def stats(self) -> JobStats | None:
        """The job's statistics, or None once it is deleted (or before it is sent)."""
        return self._job_stats() if self._on_server() else None
