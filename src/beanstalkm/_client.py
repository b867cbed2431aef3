"""``Client``: messages in envelopes on top of a :class:`Connection`.

The helpers below the class hold what the sync and async clients share (no I/O).
"""

from __future__ import annotations

__all__ = ["DEFAULT_TUBE", "MAX_RESERVE_MANY", "Client", "ClientCore"]

from collections.abc import Callable, Generator, Iterable
from time import time as _time
from typing import Any, Generic, TypeVar

from beanstalkm import _envelope
from beanstalkm._connection import Connection, ConnectionBase
from beanstalkm._envelope import envelope_problem
from beanstalkm._errors import ArgumentTypeError, BatchFailed, BeanstalkmException
from beanstalkm._generated import commands as _c
from beanstalkm._generated.commands import DEFAULT_DELAY, DEFAULT_PRIORITY, DEFAULT_TTR
from beanstalkm._generated.errors import TimedOut
from beanstalkm._message import DEFAULT_TUBE, Message, MessageBase
from beanstalkm._session import Session
from beanstalkm._wire import Job, ReplyReader, Request, check_bool, check_items, check_uint

M = TypeVar("M", bound=MessageBase)


class ClientCore(ConnectionBase[M]):
    """What :class:`Client` and the async client share: building messages."""

    def __call__(
        self,
        body: Any,
        *,
        subscribe: str | None = None,
        sender: dict[str, Any] | None = None,
        channel: str | None = None,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
    ) -> M:
        """A new, unsent message; ``message.send(tube)`` sends it. ``body`` may be another message."""
        body, kwargs = message_kwargs(body, subscribe, sender, channel, priority, delay, ttr, self._sender)
        return self._new_message(body, kwargs)


class Client(ClientCore[Message], Connection):
    """A :class:`Connection` that sends and receives :class:`Message` envelopes.

    ``put`` wraps a JSON-serializable body in the envelope and sends it to a
    tube without changing the tube ``queue.using()`` reports; ``reserve``
    returns a :class:`Message` whose ``body`` is the body that was put.
    """

    def put(
        self,
        body: Any,
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
        subscribe: str | None = None,
        sender: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> Message:
        """Wrap ``body`` in the envelope and put it into ``tube``; returns the sent message.

        Raises ``TypeError`` before sending if ``body`` is not JSON-serializable.
        One round trip; the tube ``queue.using()`` reports is not changed.
        """
        message = self(
            body, subscribe=subscribe, sender=sender, channel=channel, priority=priority, delay=delay, ttr=ttr
        )
        message.send(tube)
        return message

    def reserve(self, timeout: int | None = None, drop: bool = True) -> Message | None:
        """Reserve a message from the watched tubes; None if ``timeout`` seconds pass first.

        ``timeout=None`` waits for as long as it takes; ``0`` polls. With
        ``drop=True`` the job is deleted on receipt (at-most-once delivery);
        with ``drop=False`` the caller deletes, releases or buries it
        (at-least-once). A job that fails envelope validation raises
        :class:`~beanstalkm.InvalidEnvelope` and is never deleted.
        Raises :class:`~beanstalkm.DeadlineSoon` when a job this connection
        holds is about to time out.
        """
        check_bool("drop", drop)
        try:
            message = self.queue.reserve() if timeout is None else self.queue.reserve_with_timeout(timeout)
        except TimedOut:
            return None
        if drop:
            message.delete()
        return message

    def watch(self, tube: str) -> int:
        """Watch ``tube``; returns how many tubes are watched. Restored after a reconnect."""
        return self.queue.watch(tube)

    def ignore(self, tube: str) -> int:
        """Stop watching ``tube``; returns how many tubes are watched. Raises ``NotIgnored`` for the last one."""
        return self.queue.ignore(tube)

    # -- batches ---------------------------------------------------------------

    def put_many(
        self,
        bodies: Iterable[Any],
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
    ) -> list[Message]:
        """Put many bodies into ``tube`` in one pipelined write; the sent messages, in order.

        ``bodies`` is an iterable of bodies; a str, bytes or dict is refused
        (``ArgumentTypeError``), not taken for a batch of its letters or keys.

        Every body is encoded (and checked) before anything is sent. If any
        put fails, :class:`~beanstalkm.BatchFailed` holds each item's message
        or error; the others were stored.
        """
        batch = PutBatch(self, bodies, tube, priority, delay, ttr)
        try:
            ids = self._batch(batch.requests, tube, batch.build)
        except BatchFailed as exc:
            raise batch.failed(exc) from None
        return batch.sent(ids)

    def reserve_many(self, n: int, timeout: int = 0, drop: bool = True) -> list[Message]:
        """Up to ``n`` messages, fewer when fewer are ready within ``timeout`` seconds.

        ``n`` is at most ``MAX_RESERVE_MANY`` (2**20): that many reserves are one 25 MB write.

        If a reserve fails (say, an invalid envelope, whose job stays reserved),
        ``BatchFailed.results`` holds each reserve's outcome in order: its
        message, None for a timeout, or its error.

        One write of ``n`` reserve commands; with ``drop``, the deletes follow
        in chunks as the messages are decoded (a delete that fails is that
        item's error). Only the first reserve waits up to ``timeout``; the
        others take what is ready then, so the whole call waits at most
        ``timeout`` seconds (the server runs a connection's commands one after
        another).
        """
        requests = reserve_many_requests(n, timeout, drop)
        if not requests:
            return []
        to_message = self._reserved_message
        messages, outcomes = self._converse(
            lambda session, reader: reserve_many_steps(session, reader, requests, drop, to_message), requests
        )
        return finish_reserve_many(messages, outcomes)

    def delete_many(self, messages: Iterable[Message | int]) -> None:
        """Delete many jobs (messages or ids) in one pipelined write."""
        items = check_items("messages", messages)
        try:
            self._batch(delete_requests(items))
        except BatchFailed as exc:
            deleted(items, exc.results)
            raise
        deleted(items)


# -- shared by Client and AsyncClient (no I/O) ---------------------------------


def message_kwargs(
    body: Any,
    subscribe: str | None,
    sender: dict[str, Any] | None,
    channel: str | None,
    priority: int,
    delay: int,
    ttr: int,
    default_sender: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """The body and keyword arguments of a new message.

    The caller's ``sender`` fields are merged into the connection's sender (as
    beanstalkm 1.0 did); ``subscribe``, ``channel`` and the merged sender are
    checked against ``message.json`` before anything is sent, so a message we
    write always passes our own validation. ``body`` may be another message,
    whose envelope fields are copied.
    """
    kwargs: dict[str, Any] = {"priority": priority, "delay": delay, "ttr": ttr}
    if isinstance(body, MessageBase):
        source = body
        kwargs.update(
            created=dict(source.created),
            sender=dict(source.sender or default_sender),  # a job that was no envelope has none: ours
            subscribe=subscribe if subscribe is not None else source.subscribe,
            channel=channel if channel is not None else source.channel,
            errors=list(source.errors),
        )
        _check_envelope_fields(kwargs["subscribe"], kwargs["channel"], kwargs["sender"])
        return source.body, kwargs
    merged = dict(default_sender)
    if sender is not None or subscribe is not None or channel is not None:
        if sender is not None:
            if not isinstance(sender, dict):
                raise ArgumentTypeError("sender", sender, "must be a dict of sender fields")
            _envelope.sender_json(sender)  # JSON (no NaN, no object), or refused naming the caller's fields
            merged.update(sender)
        _check_envelope_fields(subscribe, channel, merged)
    kwargs.update(sender=merged, subscribe=subscribe, channel=channel)
    return body, kwargs


def _check_envelope_fields(subscribe: object, channel: object, sender: dict[str, Any]) -> None:
    """``ArgumentTypeError`` naming the first field ``message.json`` would reject."""
    for name, value in (("subscribe", subscribe), ("channel", channel)):
        if value is not None and not isinstance(value, str):
            raise ArgumentTypeError(name, value, "must be a str (message.json)")
    probe = {"@context": "message", "body": None, "created": {"$data": 0}, "sender": sender, "token": ""}
    problem = envelope_problem(probe)
    if problem is not None:
        raise ArgumentTypeError("sender", sender, f"does not satisfy message.json: {problem}")


class PutBatch(Generic[M]):
    """A ``put_many``: every body encoded (and checked) before anything is
    sent; the messages are built while the server stores them. A body that
    is a message is sent with its own envelope fields, as ``Client.put`` does."""

    __slots__ = ("bodies", "conn", "created", "delay", "made", "messages", "priority", "requests", "tokens", "ttr")

    def __init__(
        self, conn: ConnectionBase[M], bodies: Iterable[Any], tube: str, priority: int, delay: int, ttr: int
    ) -> None:
        _c.put(b"", priority, delay, ttr)  # refuses a bad setting even for no bodies
        _c.TUBE_RULE.check("tube", tube)  # and a bad tube
        self.conn = conn
        self.bodies = check_items("bodies", bodies)
        self.priority, self.delay, self.ttr = priority, delay, ttr
        self.created = int(_time() * 1000)
        sender_json = conn._sender_wire[1]
        put, encode = _c.put, _envelope.encode
        self.tokens: list[str] = []  # each plain body's token ("" for a message)
        self.made: list[M | None] = []  # each body that was a message: the one sent, with its own envelope fields
        self.requests: list[Request[int]] = []
        for body in self.bodies:
            if isinstance(body, MessageBase):
                source, kwargs = message_kwargs(body, None, None, None, priority, delay, ttr, conn._sender)
                message = conn._new_message(source, kwargs)
                self.tokens.append("")
                self.made.append(message)
                self.requests.append(message._put_request(conn._sender_wire))
                continue
            token, data = encode(body, self.created, sender_json)
            self.tokens.append(token)
            self.made.append(None)
            self.requests.append(put(data, priority, delay, ttr))
        self.messages: list[M] = []

    def build(self) -> None:
        """The messages (unsent as yet)."""
        new, sender = self.conn._new_message, self.conn._sender
        priority, delay, ttr, created = self.priority, self.delay, self.ttr, self.created
        self.messages = [
            made
            if made is not None
            else new(
                body,
                {
                    "created": {"$data": created},
                    "sender": dict(sender),
                    "token": token,
                    "priority": priority,
                    "delay": delay,
                    "ttr": ttr,
                },
            )
            for body, token, made in zip(self.bodies, self.tokens, self.made, strict=True)
        ]

    def sent(self, ids: list[Any]) -> list[M]:
        """The messages with their ids."""
        if not self.messages:
            self.build()
        for message, uid in zip(self.messages, ids, strict=True):
            message._sent(uid)
        return self.messages

    def failed(self, exc: BatchFailed) -> BatchFailed:
        """The ``BatchFailed`` to raise: each stored item's message (with its id) or error."""
        if not self.messages:
            self.build()
        results: list[object] = []
        for message, result in zip(self.messages, exc.results, strict=True):
            if isinstance(result, int):
                message._sent(result)
                results.append(message)
            else:
                results.append(result)
        return BatchFailed(results)


MAX_RESERVE_MANY = 2**20
"""The most reserves one ``reserve_many`` sends: a write of 25 MB (24 bytes each), the replies to read
at most one each. ``n`` is checked against it before anything is built."""


def reserve_many_requests(n: int, timeout: int, drop: bool) -> list[Request[Job]]:
    """``n`` reserves in one write: only the first may wait, so the batch waits at most ``timeout``.

    Every argument is checked first, even for ``n == 0``. The reserves after the first are one
    request, listed ``n - 1`` times (they are never changed): 8 bytes each, not a request each.
    """
    n = check_uint("n", n, 0, MAX_RESERVE_MANY)
    check_bool("drop", drop)
    first = _c.reserve_with_timeout(timeout)
    if n == 0:
        return []
    return [first, *[_c.reserve_with_timeout(0)] * (n - 1)]


DELETE_CHUNK = 16  # reserve_many(drop=True) writes the deletes of this many messages at a time


def reserve_many_steps(
    session: Session, reader: ReplyReader, requests: list[Request[Job]], drop: bool, to_message: Callable[[Job], M]
) -> Generator[bytes | float | None, bytes, tuple[list[M], list[object]]]:
    """The conversation of a ``reserve_many`` (an exchange, pumped by the driver):
    the reserved messages, and each reserve's outcome in order: its message,
    None for a timeout (just fewer messages), or its exception.

    All the reserves go in one write. Each reply is decoded as it arrives;
    with ``drop``, the deletes of the valid messages follow in chunks while
    the rest are decoded, so the server deletes while the client decodes.
    A message whose envelope is invalid is never deleted; a delete that
    fails becomes that item's outcome. If the conversation fails part-way
    (the connection, a malformed reply, a cancellation), the jobs whose
    deletes were written may be deleted without being returned: at-most-once,
    as ``drop`` says; the error says so.
    """
    wait = requests[0].wait if requests else 0.0
    yield from session.write(b"".join([r.data for r in requests]), wait)
    messages: list[M] = []
    outcomes: list[object] = []
    deletes: list[tuple[Request[None], M, int]] = []  # each delete written, its message and its item
    pending = 0  # of those, how many are not written yet
    for request in requests:
        reply = reader.next_reply()
        try:
            while reply is None:
                reply = reader.read((yield wait))
        except BaseException as exc:
            if deletes:
                exc.add_note(
                    f"reserve_many(drop=True): the deletes of {len(deletes) - pending} jobs reserved before"
                    " this failure were sent; those jobs may be deleted (at-most-once)"
                )
            raise
        try:
            message = to_message(request.decode(reply))
        except TimedOut:
            outcomes.append(None)
            continue
        except BeanstalkmException as exc:  # an InvalidEnvelope's job stays reserved, for the caller
            outcomes.append(exc)
            continue
        messages.append(message)
        outcomes.append(message)
        if drop:
            deletes.append((_c.delete(message.uid), message, len(outcomes) - 1))
            pending += 1
            if pending == DELETE_CHUNK:
                yield b"".join([d[0].data for d in deletes[-pending:]])
                pending = 0
    if pending:
        yield b"".join([d[0].data for d in deletes[-pending:]])
    for delete, message, item in deletes:
        reply = reader.next_reply()
        while reply is None:
            reply = reader.read((yield 0.0))
        try:
            delete.decode(reply)
        except BeanstalkmException as exc:
            outcomes[item] = exc
        else:
            message._deleted()
    return messages, outcomes


def finish_reserve_many(messages: list[M], outcomes: list[object]) -> list[M]:
    """The messages, or ``BatchFailed`` whose ``results`` are the outcomes in order."""
    if any(isinstance(outcome, BaseException) for outcome in outcomes):
        raise BatchFailed(outcomes)
    return messages


def delete_requests(items: list[Any]) -> list[Request[None]]:
    """``delete`` of each message or id."""
    return [_c.delete(m.uid if isinstance(m, MessageBase) else m) for m in items]


def deleted(items: list[Any], results: list[object] | None = None) -> None:
    """Mark the messages among ``items`` deleted (with ``results``, those whose delete succeeded)."""
    for index, item in enumerate(items):
        if isinstance(item, MessageBase) and (results is None or results[index] is None):
            item._deleted()
