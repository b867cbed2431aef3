"""The bulk commands' own connection to a server: batches written ahead of their replies, replies raw
(docs/cli.md, "Bulk commands are pipelined").

Through a ``Pipeline`` each batch is written, then every reply read and decoded, and only then the next
batch written, so each side idles while the other works. A :class:`Wire` keeps ``DEPTH`` batches in
flight and hands each reply back as the library's ``ReplyReader`` framed it. It is no second protocol
implementation: every byte goes through the library's ``SocketTransport``, and any reply but a command's
success or ``NOT_FOUND`` goes to that command's generated decoder, which raises its typed error.
"""

from __future__ import annotations

__all__ = ["BATCH", "DEPTH", "Batch", "Plan", "Wire", "drive", "failure", "stats_job_line", "stats_tube_line"]

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from beanstalkm import BeanstalkmException, Client, ProtocolError, SocketError
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Reply, Request
from beanstalkm._core.session import Session
from beanstalkm._generated import commands as _c
from beanstalkm._transport.sockets import RECV, SocketTransport

T = TypeVar("T")

BATCH = 1000
"""Commands per write."""

DEPTH = 2
"""Batches written before the first of them is read: beanstalkd works through one while the client
reads the other."""


def stats_job_line(job_id: int) -> bytes:
    """``stats-job <id>``, as ``commands.stats_job`` encodes it (``tests/cli/test_bulk.py`` checks);
    the id is one the command computed (1..2**64-1), so the check is not repeated per job."""
    return _c.STATS_JOB_FORMAT % job_id


def stats_tube_line(tube: str) -> bytes:
    """``stats-tube <tube>``, as ``commands.stats_tube`` encodes it, the name checked by the same rule
    (a name from ``list-tubes`` is the server's: a space or a line break in it is refused, never sent)."""
    return _c.STATS_TUBE_FORMAT % _c.TUBE_RULE.check("tube", tube).encode("ascii")


def failure(request: Request[Any], reply: Reply) -> BeanstalkmException:
    """The typed error of a reply that is neither the success a bulk command reads nor ``NOT_FOUND``:
    what the command's generated decoder raises for it (a ``ProtocolError`` if it would accept it)."""
    try:
        request.decode(reply)
    except BeanstalkmException as exc:
        return exc
    return ProtocolError(f"{request.command}: unexpected reply {reply.status} {' '.join(reply.args)}".rstrip())


class Wire:
    """A connection of a bulk command's own, to ``client``'s server with its settings (timeout, TLS).

    ``send`` writes a batch of commands; ``receive`` returns the replies of the oldest batch written and
    not read yet, in order. A lost connection is a ``SocketError`` naming the server; a reply that
    breaks the protocol a ``ProtocolError``: either way the caller closes the wire (``with
    contextlib.closing(Wire(client)) as wire``).
    """

    __slots__ = ("_inflight", "_reader", "_session", "_timeout", "_transport", "url")

    def __init__(self, client: Client) -> None:
        self.url = client.url
        self._timeout = client.timeout
        try:
            self._transport = SocketTransport.open(
                client.host, client.port, client.unix_socket, client.timeout, client.ssl
            )
        except OSError as exc:
            raise SocketError(f"cannot connect to beanstalkd at {self.url}: {exc}") from exc
        self._session = Session()
        self._reader: ReplyReader = _c.new_reader()
        self._inflight: deque[int] = deque()

    def send(self, data: bytes, replies: int) -> None:
        """Write a batch of ``replies`` commands (every one answered)."""
        try:
            self._transport.write(data, self._session, self._reader, self._timeout)
        except OSError as exc:
            raise self._lost(exc) from exc
        self._inflight.append(replies)

    def receive(self) -> list[Reply]:
        """The replies of the oldest batch in flight, in order."""
        count = self._inflight.popleft()
        reader, transport, timeout = self._reader, self._transport, self._timeout
        replies: list[Reply] = []
        append = replies.append
        try:
            while len(replies) < count:
                reply = reader.next_reply()
                if reply is not None:
                    append(reply)
                    continue
                chunk = transport.receive(RECV, timeout)
                if not chunk:
                    raise ConnectionResetError("the server closed the connection")
                reader.feed(chunk)
        except OSError as exc:
            raise self._lost(exc) from exc
        return replies

    def command(self, request: Request[T]) -> T:
        """One command, nothing else in flight: its decoded result (``watch``, ``ignore``, ``list-tubes``)."""
        self.send(request.head, 1)
        return request.decode(self.receive()[0])

    def _lost(self, exc: OSError) -> SocketError:
        return SocketError(f"connection to beanstalkd at {self.url} lost: {exc}", maybe_executed=True)

    def close(self) -> None:
        """Say ``quit`` and close (whatever is still in flight is dropped with the connection)."""
        self._transport.quit()


@dataclass(slots=True)
class Batch:
    """One write: its bytes, and for each command in it what the plan needs to read its reply
    (``kinds[i]``, ``ids[i]``: a command code of the plan's own and the job id or index it concerns)."""

    data: bytes = b""
    kinds: bytearray = field(default_factory=bytearray)
    ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, line: bytes, kind: int, job_id: int) -> None:
        """Queue one command (build a large batch with ``extend``: one join)."""
        self.data += line
        self.kinds.append(kind)
        self.ids.append(job_id)

    def extend(self, lines: list[bytes], kind: int, ids: list[int]) -> None:
        """Queue commands of one kind, ``lines[i]`` concerning ``ids[i]``."""
        self.data += b"".join(lines)
        self.kinds += bytes((kind,)) * len(ids)
        self.ids += ids


class Plan(Protocol):
    """What a bulk command sends and how it reads the replies, for :func:`drive`."""

    def next_batch(self) -> Batch | None:
        """The next batch to write (given every batch read so far), or None: nothing more for now."""
        ...

    def done(self, batch: Batch, replies: list[Reply]) -> None:
        """Read the replies of ``batch``."""
        ...


def drive(wire: Wire, plan: Plan, progress: Callable[[int], object] | None = None) -> None:
    """Run ``plan`` on ``wire``: up to ``DEPTH`` batches in flight, each read in turn, until the plan has
    nothing more to send and every batch written is read. ``progress`` is told how many commands each
    batch read held."""
    pending: deque[Batch] = deque()
    while True:
        while len(pending) < DEPTH:
            batch = plan.next_batch()
            if batch is None or not len(batch):
                break
            wire.send(batch.data, len(batch))
            pending.append(batch)
        if not pending:
            return
        batch = pending.popleft()
        plan.done(batch, wire.receive())
        if progress is not None:
            progress(len(batch))
