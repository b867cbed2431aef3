"""Command requests and replies: a command's bytes and how to decode its reply."""

from __future__ import annotations

__all__ = ["BODY_APART", "MISS", "Command", "Job", "Miss", "Quick", "Reply", "Request", "with_body"]

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Literal, NamedTuple, TypeAlias, TypeVar

if TYPE_CHECKING:
    from beanstalkm._generated.effects import Effect


T = TypeVar("T")

BODY_APART = 65536
"""A command body from this size on is written apart from its command line (scatter-gather), and a
reply body from this size on is gathered in a buffer of its own, not in the read buffer."""


class Reply(NamedTuple):
    """One complete reply: the status word, its arguments, and the body for
    statuses that carry one (``None`` otherwise). ``trailer`` is what followed
    the body where that was not CRLF (a job damaged on the server), else None."""

    status: str
    args: tuple[str, ...]
    body: bytes | None
    trailer: bytes | None = None


class Job(NamedTuple):
    """A job as the server returned it: id and raw body bytes."""

    id: int
    body: bytes


class Miss(enum.Enum):
    """What a quick decoder returns for bytes that are not the usual success reply, alone."""

    MISS = "miss"


MISS = Miss.MISS

Quick: TypeAlias = Callable[[bytes, int], "T | Literal[Miss.MISS]"]
"""A command's quick decoder, ``quick(data, max_body)``: the value of the bytes received when they are
exactly its usual success reply, whole (``INSERTED <id>``, ``DELETED``, ``RESERVED <id> <n>`` and a
body of at most ``max_body`` bytes, ...), else ``MISS``. It accepts only what the reply reader
(``ReplyReader.one``, with that ``max_body``) and the command's decoder accept unchanged, and gives
the same value: any other bytes are decided by them (the same value, or the same error)."""


class Command(Generic[T]):
    """What every call of one command shares: its wire name, its decoders, whether it acts on the used
    tube. A command that changes no connection state, never waits and always gets a reply has one
    (``beanstalkm._generated.commands.<NAME>_COMMAND``): a generated queue method checks its arguments,
    builds its bytes and hands both to the connection (``_direct``), which builds a :class:`Request`
    only if the general path needs one (``request(head)``). The rest of a request's options are this
    class's defaults: no effect, no tube, no wait, no body apart, a reply expected."""

    __slots__ = ("command", "decode", "quick", "uses_tube")

    head: bytes = b""  # each call's own bytes (``_direct`` is handed them), a request's its own
    effect: Effect | None = None
    tube: str | None = None
    wait: float | None = 0.0
    body: bytes | None = None
    expects_reply: bool = True

    def __init__(
        self, command: str, decode: Callable[[Reply], T], quick: Quick[T] | None = None, uses_tube: bool = False
    ) -> None:
        self.command = command
        self.decode = decode
        self.quick = quick
        self.uses_tube = uses_tube

    def request(self, head: bytes) -> Request[T]:
        """The request of this command whose bytes are ``head``."""
        return Request(self.command, head, self.decode, None, self.uses_tube, None, None, 0.0, True, self.quick)


class Request(Command[T]):
    """One encoded command and how to decode its reply.

    ``data`` is everything the command writes. A large body (``put``'s, from
    ``BODY_APART`` bytes on) is kept apart from its command line so that it
    is never copied into one buffer with it: ``head`` is written first, then
    ``body`` and CRLF when ``body`` is not None (``data`` joins them only when
    asked). Otherwise ``body`` is None and ``head`` is everything.

    ``wait`` is how long, beyond the connection's own timeout, the server may
    legitimately take to answer (the reserve timeout); ``None`` means it may
    block forever (``reserve``). ``effect`` names a change of connection state
    (an :class:`~beanstalkm._generated.effects.Effect`) and ``tube`` the tube it concerns. ``quick``
    decodes the usual success reply from its bytes in one step (:data:`Quick`), for a command that
    changes no connection state.
    """

    __slots__ = ("body", "effect", "expects_reply", "head", "tube", "wait")

    def __init__(
        self,
        command: str,
        head: bytes,
        decode: Callable[[Reply], T],
        body: bytes | None = None,  # positional too: the generated encoders pass them so (quicker)
        uses_tube: bool = False,
        effect: Effect | None = None,
        tube: str | None = None,
        wait: float | None = 0.0,
        expects_reply: bool = True,
        quick: Quick[T] | None = None,
    ) -> None:
        self.command = command
        self.head = head
        self.body = body
        self.decode = decode
        self.uses_tube = uses_tube
        self.effect = effect
        self.tube = tube
        self.wait = wait
        self.expects_reply = expects_reply
        self.quick = quick

    def request(self, head: bytes) -> Request[T]:
        """This request (its bytes are ``head`` already)."""
        return self

    @property
    def data(self) -> bytes:
        """All the bytes this request writes (a large body is copied into them: write ``pieces`` instead)."""
        return self.head if self.body is None else b"".join(self.pieces)

    @property
    def pieces(self) -> tuple[bytes, ...]:
        """What this request writes, in order, without joining a large body to its command line."""
        return (self.head,) if self.body is None else (self.head, self.body, b"\r\n")

    def __repr__(self) -> str:
        return f"Request({self.command!r}, {self.head[:60]!r})"


def with_body(request: Request[T], body: bytes) -> Request[T]:
    """``request``, whose ``head`` is its command line, with ``body`` to follow it.

    A body under ``BODY_APART`` bytes joins the command line in ``head`` (one buffer, one write);
    a larger one is kept apart in ``body``, never copied into one buffer with the line.
    """
    if len(body) < BODY_APART:
        request.head = b"".join((request.head, body, b"\r\n"))
    else:
        request.body = body
    return request
