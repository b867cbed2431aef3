"""What the client does with no I/O: building messages, and the batch conversations.

``PutBatch`` encodes a ``put_many``; ``reserve_many_steps`` is the conversation of ``reserve_many``
(a generator the drivers pump).
"""

from __future__ import annotations

__all__ = ["MAX_RESERVE_MANY", "PutBatch", "message_kwargs", "reserve_many_steps"]

from collections.abc import Callable, Generator, Iterable
from time import time as _time
from typing import Any, Generic, Protocol, TypeVar

from beanstalkm._core import envelope as _envelope
from beanstalkm._core.checks import check_bool, check_items, check_uint
from beanstalkm._core.message import MessageBase
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import BODY_APART, Job, Reply, Request
from beanstalkm._core.session import Exchange, Session, await_reply, out_of_step
from beanstalkm._errors import (
    ArgumentTypeError,
    BatchFailed,
    BeanstalkmException,
    CorruptJob,
    InvalidEnvelope,
)
from beanstalkm._generated import commands as _c
from beanstalkm._generated.errors import DeadlineSoon, NotFound, TimedOut

M = TypeVar("M", bound=MessageBase)
M_co = TypeVar("M_co", bound=MessageBase, covariant=True)


# -- building messages and batches --------------------------------------------


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
    problem = _envelope.VALIDATION.problem(probe)  # the generated check decides; jsonschema explains
    if problem is not None:
        raise ArgumentTypeError("sender", sender, f"does not satisfy message.json: {problem}")


class PutsMessages(Protocol[M_co]):
    """The client a ``PutBatch`` puts with (``AsyncClient``, ``Client``)."""

    _sender: dict[str, Any]
    _sender_wire: tuple[dict[str, Any], str]

    def _new_message(self, body: Any, kwargs: dict[str, Any]) -> M_co:
        """A message of ``body`` with these fields (a message given as a body, copied)."""

    def _unsent(
        self,
        body: Any,
        sender: dict[str, Any],
        priority: int,
        delay: int,
        ttr: int,
        created: dict[str, int],
        token: str,
    ) -> M_co:
        """A new message of a plain ``body``, its envelope encoded already (``token``)."""


class PutBatch(Generic[M]):
    """A ``put_many``: every body checked (its canonical JSON made) before anything is sent, the
    envelopes encoded chunk by chunk as they are written (:meth:`steps`; docs/async-dispatch.md). A
    body that is a message is sent with its own envelope fields, as ``Client.put`` does."""

    __slots__ = (
        "_canon",
        "_heads",
        "_requests",
        "bodies",
        "conn",
        "created",
        "delay",
        "made",
        "messages",
        "priority",
        "tokens",
        "ttr",
    )

    def __init__(
        self, conn: PutsMessages[M], bodies: Iterable[Any], tube: str, priority: int, delay: int, ttr: int
    ) -> None:
        _c.put(b"", priority, delay, ttr)  # refuses a bad setting even for no bodies
        _c.TUBE_RULE.check("tube", tube)  # and a bad tube
        self.conn = conn
        self.bodies = check_items("bodies", bodies)
        self.priority, self.delay, self.ttr = int(priority), int(delay), int(ttr)  # (what ``_c.put`` writes)
        self.created = int(_time() * 1000)
        count = len(self.bodies)
        self.tokens: list[str] = [""] * count  # each plain body's token ("" for a message and a body not yet encoded)
        self._requests: list[Request[int] | None] = [None] * count  # each body's put, once encoded
        self._heads: list[bytes | None] = [None] * count  # or, once encoded, the bytes of a plain body's small put
        if not any(isinstance(body, MessageBase) for body in self.bodies):  # the usual batch: plain bodies
            self.made: list[M | None] = [None] * count
            # each plain body's canonical JSON (the check, as below), until its envelope is encoded ("" then)
            self._canon: list[str] = _envelope.canonical_all(self.bodies)
            self.messages: list[M] = []
            return
        canonical = _envelope.canonical
        self.made = []  # each body that was a message: the one sent, with its own envelope fields
        self._canon = []
        for index, body in enumerate(self.bodies):
            if isinstance(body, MessageBase):
                source, kwargs = message_kwargs(body, None, None, None, priority, delay, ttr, conn._sender)
                message = conn._new_message(source, kwargs)
                self.made.append(message)
                self._requests[index] = message._put_request(conn._sender_wire)
                self._canon.append("")
            else:
                self.made.append(None)
                self._canon.append(canonical(body))  # the check: ArgumentTypeError before anything is sent
        self.messages = []

    @property
    def requests(self) -> list[Request[int]]:
        """Every body's ``put`` (those not yet encoded are encoded now)."""
        return self.encoded(0, len(self._requests))

    def encoded(self, start: int, stop: int) -> list[Request[int]]:
        """The ``put`` of the bodies from ``start`` to ``stop``, encoding those not yet encoded."""
        requests, heads = self._requests, self._heads
        request_of = _c.PUT_COMMAND.request
        out: list[Request[int]] = []
        for i in range(start, min(stop, len(requests))):
            if requests[i] is None and heads[i] is None:
                self.pieces(i, i + 1)  # encoded now: its put's bytes, or (a large body) its request
            request, head = requests[i], heads[i]
            if request is None:
                if head is None:  # pragma: no cover - ``pieces`` encoded it
                    raise RuntimeError(f"put_many: body {i} was not encoded")
                request = requests[i] = request_of(head)
            out.append(request)
        return out

    def pieces(self, start: int, stop: int) -> list[bytes]:
        """What the puts of the bodies from ``start`` to ``stop`` write, in order, encoding those
        not yet encoded: a plain body's small put is one ``bytes`` (made here, its settings checked
        once for the batch: no :class:`Request` per body); a large body stays apart from its line."""
        requests, heads, canons, bodies = self._requests, self._heads, self._canon, self.bodies
        sender_json, created = self.conn._sender_wire[1], self.created
        priority, delay, ttr, encode = self.priority, self.delay, self.ttr, _envelope.encode
        out: list[bytes] = []
        for i in range(start, min(stop, len(requests))):
            head = heads[i]
            if head is None:
                request = requests[i]
                if request is None:
                    token, data = encode(bodies[i], created, sender_json, canon=canons[i])
                    canons[i] = ""
                    self.tokens[i] = token
                    if len(data) < BODY_APART:  # ``_c.put``'s bytes (its checks made in ``__init__``)
                        head = heads[i] = _c.PUT_FORMAT % (priority, delay, ttr, len(data), data)
                        out.append(head)
                        continue
                    request = requests[i] = _c.put(data, priority, delay, ttr)
                out.extend(request.pieces)
                continue
            out.append(head)
        return out

    def steps(self, session: Session, reader: ReplyReader, tube: str) -> Exchange[list[Any]]:
        """The conversation of the ``put_many``: ``PUT_FIRST`` envelopes written (after a ``use`` if
        need be), then chunks twice as large each time; the messages built; then every reply read.
        Each body's result, in order (its id, or its error). The plan lists one shared ``put``
        request per body (each reply is decoded by it; a put changes no connection state)."""
        size, count = PUT_FIRST, len(self._requests)
        plan = session.plan([_ANY_PUT] if count else [], tube)  # the ``use`` first, if another tube is in force
        first = min(size, count)
        yield from session.write(b"".join([plan.data, *self.pieces(0, first)]), 0.0)
        plan.requests.extend([_ANY_PUT] * (first - 1))
        plan.added.extend([False] * (first - 1))
        start = first
        while start < count:
            size *= 2
            chunk = self.pieces(start, start + size)
            yield b"".join(chunk)
            taken = min(size, count - start)
            plan.requests.extend([_ANY_PUT] * taken)
            plan.added.extend([False] * taken)
            start += size
        try:
            self.build()  # while the server stores the last ones
        except Exception:  # noqa: S110 - built again (by ``sent`` or ``failed``) once every reply is read
            pass
        replies = yield from batch_replies(reader, len(plan.requests))  # the puts', and the plan's ``use``'s
        if reader.buffered:
            raise out_of_step("put", reader.buffered)
        if len(replies) == count:  # no ``use`` added: each reply is its put's
            ids = _inserted(replies)
            if ids is not None:
                return ids
        return session.finish(plan, replies)

    def build(self) -> None:
        """The messages (unsent as yet)."""
        new, sender = self.conn._unsent, self.conn._sender
        priority, delay, ttr, created = self.priority, self.delay, self.ttr, self.created
        self.messages = [
            made if made is not None else new(body, dict(sender), priority, delay, ttr, {"$data": created}, token)
            for body, token, made in zip(self.bodies, self.tokens, self.made, strict=True)
        ]

    def sent(self, results: list[Any]) -> list[M]:
        """The messages with their ids, from each put's result (:meth:`steps`); ``BatchFailed`` (see
        :meth:`failed`) if any put failed. (What ``batch_results`` does: a put's result is never a job.)"""
        if not self.messages:
            self.build()
        if any(isinstance(result, BaseException) for result in results):
            raise self.failed(BatchFailed(results))
        for message, uid in zip(self.messages, results, strict=True):
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


def _inserted(replies: list[Reply]) -> list[int] | None:
    """The ids of puts whose replies are all the usual ``INSERTED <id>`` (what ``session.finish`` makes
    of them: a put changes no connection state); None if any is another, for ``finish`` to decide."""
    ids: list[int] = []
    for status, args, _, _ in replies:
        if status != "INSERTED" or len(args) != 1 or not args[0].isdigit():
            return None
        ids.append(int(args[0]))
    return ids


def batch_replies(reader: ReplyReader, count: int) -> Generator[float | None, bytes, list[Reply]]:
    """The next ``count`` replies, to commands answered at once (``yield from`` it in a conversation):
    ``await_reply`` ``count`` times, but what arrives as whole reply lines with no body, nothing
    buffered before it and no more replies than are awaited, is read in one split
    (``ReplyReader.lines``: a batch's ``INSERTED`` or ``DELETED`` replies). Anything else is read
    the general way, which decides as before (the same replies, the same errors)."""
    replies: list[Reply] = []
    while len(replies) < count:
        if reader.buffered:
            replies.append((yield from await_reply(reader, 0.0)))
            continue
        data = yield 0.0
        lines = reader.lines(data)
        if lines is not None and len(replies) + len(lines) <= count:
            replies.extend(lines)
            continue
        reply = reader.read(data)
        replies.append(reply if reply is not None else (yield from await_reply(reader, 0.0)))
    return replies


_ANY_PUT: Request[int] = _c.PUT_COMMAND.request(b"")
"""A ``put_many``'s plan lists this for each body: the decoder of its reply (its bytes are written apart)."""

PUT_FIRST = 8
"""A ``put_many`` writes its first this many envelopes as soon as they are encoded, then chunks twice
as large each time: the server gets to work at once, and a batch of 100 is four writes."""


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


_ID_MAX = 2**64 - 1  # the largest job id ``delete`` takes (the spec's)

DELETE_CHUNK = 16  # reserve_many(drop=True) writes the deletes of this many messages at a time


def reserve_many_steps(
    session: Session, reader: ReplyReader, requests: list[Request[Job]], drop: bool, to_message: Callable[[Job], M]
) -> Generator[bytes | float | None, bytes, tuple[list[M], list[object]]]:
    """The conversation of a ``reserve_many``: the reserved messages, and each reserve's outcome in
    order (its message, None for a timeout, or its exception). With ``drop`` the deletes follow in
    chunks as the replies are decoded; a message whose envelope is invalid is never deleted, and a
    delete that fails becomes that item's outcome. If the conversation fails part-way, the jobs whose
    deletes were written may be deleted without being returned (at-most-once); the error says so.
    """
    wait = requests[0].wait if requests else 0.0
    yield from session.write(b"".join([r.data for r in requests]), wait)
    messages: list[M] = []
    outcomes: list[object] = []
    deletes: list[tuple[bytes, M, int]] = []  # each delete written (its bytes), its message and its item
    pending = 0  # of those, how many are not written yet
    holding = False  # whether this batch reserved a job (DEADLINE_SOON may then be its own doing)
    for request in requests:
        try:
            reply = reader.next_reply()  # ``yield from await_reply(reader, wait)``, inline: no generator per reply
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
        except DeadlineSoon as exc:
            # a job this batch reserved is near its time to run: the end of what it can take now
            outcomes.append(None if holding else exc)
            continue
        except BeanstalkmException as exc:  # an InvalidEnvelope's job stays reserved, for the caller
            holding = holding or isinstance(exc, (InvalidEnvelope, CorruptJob))
            session.note(exc)
            outcomes.append(exc)
            continue
        holding = True
        messages.append(message)
        outcomes.append(message)
        if drop:
            uid = message.uid  # (an id ``delete`` refuses, 0, goes to its encoder, which says so)
            deletes.append(
                (_c.DELETE_FORMAT % uid if 0 < uid <= _ID_MAX else _c.delete(uid).head, message, len(outcomes) - 1)
            )
            pending += 1
            if pending == DELETE_CHUNK:
                yield b"".join([d[0] for d in deletes[-pending:]])
                pending = 0
    if pending:
        yield b"".join([d[0] for d in deletes[-pending:]])
    replies = yield from batch_replies(reader, len(deletes))
    for (_, message, item), reply in zip(deletes, replies, strict=True):
        if reply.status == "DELETED" and not reply.args:  # the usual reply (``_c.delete``'s decoder: None)
            message._deleted()
            continue
        error = _deleted(session, reply, message)
        if error is not None:
            outcomes[item] = error
    if reader.buffered:
        raise out_of_step(requests[-1].command, reader.buffered)
    return messages, outcomes


def _deleted(session: Session, reply: Reply, message: M) -> BeanstalkmException | None:
    """Decode the reply to a reserved ``message``'s delete: None once it is deleted, else the error
    (``NotFound``: the job is not reserved by us any more; a reply that broke the protocol is noted)."""
    try:
        _c.DELETE_COMMAND.decode(reply)
    except BeanstalkmException as exc:
        session.note(exc)
        if isinstance(exc, NotFound):
            message._gone()
        return exc
    message._deleted()
    return None


def deleted(items: list[Any], results: list[object] | None = None) -> None:
    """Mark the messages among ``items`` deleted (with ``results``, those whose delete succeeded; those
    answered ``NOT_FOUND`` are no longer reserved, as after ``message.delete()``)."""
    for index, item in enumerate(items):
        if isinstance(item, MessageBase):
            if results is None or results[index] is None:
                item._deleted()
            elif isinstance(results[index], NotFound):
                item._gone()
