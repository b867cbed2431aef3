"""The connection's state and batch planning, I/O-free.

:class:`Session` tracks the tube the caller uses, the tube in force on the server and the watch list;
it plans a batch (adding the ``use`` that puts the right tube in force where needed) and turns the
replies back into results. :meth:`Session.exchange` is a batch's whole conversation (an ``Exchange``),
which the drivers only pump.
"""

from __future__ import annotations

__all__ = ["Plan", "Session", "await_reply", "batch_results", "out_of_step"]

import copy
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeAlias, TypeVar

from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Command, Job, Reply, Request
from beanstalkm._errors import (
    BatchFailed,
    BeanstalkmException,
    CommandFailed,
    CorruptJob,
    InvalidEnvelope,
    ProtocolError,
)
from beanstalkm._generated import commands as _c
from beanstalkm._generated.effects import Effect

T = TypeVar("T")

Exchange: TypeAlias = Generator[bytes | float | None, bytes, T]
"""A conversation: yields bytes to write (send it ``b""`` after writing them),
or the extra seconds the server may take (``None``: forever) when it needs more
bytes (send it what arrived); returns its result (for a batch, each item's
result or exception)."""

DEFAULT_SERVER_TUBE = "default"


class Plan:
    """What to write for a batch, and which of those requests were added by the plan."""

    __slots__ = ("added", "data", "replies", "requests", "wait")

    def __init__(self, requests: list[Request[Any]], added: list[bool]) -> None:
        self.requests = requests  # everything written, in order
        self.added = added  # for each: True if the plan added it (a ``use``) for the item after it
        self.data = b"".join([piece for r in requests for piece in r.pieces])  # a large body copied once, here
        self.replies = sum(1 for r in requests if r.expects_reply)  # how many replies to read
        wait: float | None = 0.0
        for r in requests:
            wait = None if (wait is None or r.wait is None) else max(wait, r.wait)
        self.wait = wait  # how long the server may legitimately take, beyond the timeout


_NO_REPLY = Reply("", (), None)


class Session:
    """What the caller chose (``using``, ``watching``) and what the server has now (``server_using``)."""

    __slots__ = ("broken", "server_using", "using", "wait", "watching", "written")

    def __init__(self) -> None:
        self.broken = False  # a reply of the current exchange broke the protocol: the driver drops the connection
        self.written = False  # whether the current exchange's bytes were written (its commands may have run)
        self.wait: float | None = 0.0  # how long the current exchange's server may take beyond the timeout
        self.using = DEFAULT_SERVER_TUBE
        self.server_using = DEFAULT_SERVER_TUBE
        self.watching: list[str] = [DEFAULT_SERVER_TUBE]

    def simple(self, request: Command[Any], tube: str | None) -> bool:
        """Whether ``request`` can go out alone, with no ``use`` first (routed to ``tube``, or the used
        tube back first): the direct and pipelined paths' one rule."""
        if tube is not None:
            return tube == self.server_using
        return not request.uses_tube or self.server_using == self.using

    def exchange(
        self, reader: ReplyReader, requests: Sequence[Request[Any]], tube: str | None = None
    ) -> Exchange[list[Any]]:
        """The conversation for a batch: write it all at once, read every reply, decode.

        Every reply is read before anything is reported, so the stream stays
        in sync whatever fails. The batch is planned (and a bad ``tube``
        refused) here, before the driver touches its socket.
        """
        return self._converse(reader, self.plan(requests, tube))

    def write(self, data: bytes, wait: float | None) -> Generator[bytes, bytes, None]:
        """The first write of a conversation (``yield from`` it), whose server may take ``wait``
        seconds beyond the timeout: ``written`` tells the driver whether its commands may have run."""
        self.written = self.broken = False
        self.wait = wait
        yield data
        self.written = True

    def _converse(self, reader: ReplyReader, plan: Plan) -> Exchange[list[Any]]:
        yield from self.write(plan.data, plan.wait)
        replies: list[Reply] = []
        for _ in range(plan.replies):
            replies.append((yield from await_reply(reader, plan.wait)))
        if reader.buffered:
            raise out_of_step(plan.requests[-1].command, reader.buffered)
        return self.finish(plan, replies)

    def plan(self, requests: Sequence[Request[Any]], tube: str | None = None) -> Plan:
        """Plan a batch. With ``tube``, every item is routed to that tube without
        changing the caller's choice; otherwise an item acting on the used tube
        gets the caller's tube put back in force first, if another is in force."""
        if tube is not None:
            tube = _c.TUBE_RULE.check("tube", tube)
        using, current = self.using, self.server_using
        sent: list[Request[Any]] = []
        added: list[bool] = []
        for request in requests:
            target = tube if tube is not None else (using if request.uses_tube else None)
            if target is not None and target != current:
                sent.append(_c.use(target))
                added.append(True)
                current = target
            sent.append(request)
            added.append(False)
            if request.effect is Effect.USE and request.tube is not None:
                current = using = request.tube
        return Plan(sent, added)

    def finish(self, plan: Plan, replies: Sequence[Reply]) -> list[Any]:
        """Decode the replies of ``plan``: one result or exception per caller's item, in order.

        If a ``use`` the plan added failed, every item after it that acts on
        the used tube (up to the next added ``use``) reports that error, its
        ``outcome`` holding what the item did all the same in the tube that was
        in force.
        """
        results: list[Any] = []
        pending: BeanstalkmException | None = None
        remaining = iter(replies)
        for request, added in zip(plan.requests, plan.added, strict=True):
            reply = next(remaining) if request.expects_reply else _NO_REPLY
            try:
                value: Any = request.decode(reply)
            except BeanstalkmException as exc:
                value = exc
                self.note(exc)
            else:
                if added:  # a use the plan added: the tube in force changes, not the caller's choice
                    self.server_using = str(value)
                else:
                    self.applied(request, value)
            if added:
                pending = value if isinstance(value, BeanstalkmException) else None
                continue
            if pending is not None and request.uses_tube:
                error = copy.copy(pending)
                if isinstance(error, CommandFailed) and not isinstance(value, BaseException):
                    error.outcome = value  # it ran all the same, with the previous tube in force
                value = error
            results.append(value)
        return results

    def note(self, exc: BaseException) -> None:
        """A reply failed to decode: if it broke the protocol (a ``ProtocolError``, except a
        ``CorruptJob``, which is framed), the stream cannot be trusted: the driver drops it."""
        if isinstance(exc, ProtocolError) and not isinstance(exc, CorruptJob):
            self.broken = True

    def applied(self, request: Request[Any], result: object) -> None:
        """Record the effect of a command the server carried out."""
        effect = request.effect
        if effect is None:
            return
        if effect is Effect.USE:
            self.using = self.server_using = str(result)
        elif effect is Effect.WATCH and request.tube is not None and request.tube not in self.watching:
            self.watching.append(request.tube)
        elif effect is Effect.IGNORE and request.tube in self.watching:
            self.watching.remove(request.tube)

    def connected(self) -> list[Request[Any]]:
        """A new connection starts on the server's defaults: the commands that restore the caller's watch list."""
        self.server_using = DEFAULT_SERVER_TUBE
        restore: list[Request[Any]] = [_c.watch(t) for t in self.watching if t != DEFAULT_SERVER_TUBE]
        if DEFAULT_SERVER_TUBE not in self.watching and self.watching:
            restore.append(_c.ignore(DEFAULT_SERVER_TUBE))
        for request in restore:
            request.effect = None  # already recorded
        return restore


def await_reply(reader: ReplyReader, wait: float | None) -> Generator[float | None, bytes, Reply]:
    """The next reply (``yield from`` it in a conversation): what the reader holds, else what arrives,
    waiting the timeout plus ``wait`` (what the server may take) for each piece."""
    reply = reader.next_reply()
    while reply is None:
        reply = reader.read((yield wait))
    return reply


def out_of_step(command: str, extra: int) -> ProtocolError:
    """The error for bytes the server sent beyond the replies of an exchange (to no command)."""
    return ProtocolError(
        f"{command}: the server sent more than one reply per command ({extra} bytes more): the replies"
        " are out of step with the commands; the connection was dropped (the command was sent and may have run)"
    )


def batch_results(
    requests: Sequence[Request[Any]], results: list[Any], to_message: Callable[[Job, bool], Any]
) -> list[Any]:
    """A batch's results for the caller: jobs become messages (reserved ones
    marked so; an invalid envelope becomes its ``InvalidEnvelope``);
    ``BatchFailed`` if any item failed."""
    out: list[Any] = []
    for request, value in zip(requests, results, strict=True):
        if isinstance(value, Job):
            try:
                value = to_message(value, request.effect is Effect.RESERVE)
            except InvalidEnvelope as exc:
                value = exc
        out.append(value)
    if any(isinstance(value, BaseException) for value in out):
        raise BatchFailed(out)
    return out
