"""``Client``: messages in envelopes on top of a :class:`Connection`."""

from __future__ import annotations

__all__ = ["DEFAULT_TUBE", "Client"]

from collections.abc import Iterable
from typing import Any

from beanstalkm._connection import Connection
from beanstalkm._errors import BatchFailed, InvalidArgument, InvalidEnvelope
from beanstalkm._generated import commands as _c
from beanstalkm._generated.commands import DEFAULT_DELAY, DEFAULT_PRIORITY, DEFAULT_TTR
from beanstalkm._generated.errors import TimedOut
from beanstalkm._message import Message
from beanstalkm._wire import Request

DEFAULT_TUBE = "receive"


class Client(Connection):
    """A :class:`Connection` that sends and receives :class:`Message` envelopes.

    ``put`` wraps a JSON-serializable body in the envelope and sends it to a
    tube without changing the tube ``queue.using()`` reports; ``reserve``
    returns a :class:`Message` whose ``body`` is the body that was put.
    """

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
    ) -> Message:
        """A new, unsent message; ``message.send(tube)`` sends it."""
        if isinstance(body, Message):
            source = body
            return Message(
                self,
                source.body,
                created=dict(source.created),
                sender=dict(source.sender),
                subscribe=subscribe if subscribe is not None else source.subscribe,
                channel=channel if channel is not None else source.channel,
                errors=list(source.errors),
                priority=priority,
                delay=delay,
                ttr=ttr,
            )
        return Message(
            self,
            body,
            sender=dict(sender) if sender else None,
            subscribe=subscribe,
            channel=channel,
            priority=priority,
            delay=delay,
            ttr=ttr,
        )

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

        Every body is encoded (and checked) before anything is sent. If any
        put fails, :class:`~beanstalkm.BatchFailed` holds each item's message
        or error; the others were stored.
        """
        messages = [self(body, priority=priority, delay=delay, ttr=ttr) for body in bodies]
        requests = [_c.put(m._encode(self._sender_json), priority, delay, ttr) for m in messages]
        try:
            ids = self._batch(requests, tube)
        except BatchFailed as exc:
            exc.results = [_sent(m, r) if isinstance(r, int) else r for m, r in zip(messages, exc.results, strict=True)]
            raise
        return [_sent(m, uid) for m, uid in zip(messages, ids, strict=True)]

    def reserve_many(self, n: int, timeout: int = 0, drop: bool = True) -> list[Message]:
        """Up to ``n`` messages, fewer when fewer are ready within ``timeout`` seconds.

        One write of ``n`` reserve commands (and, with ``drop``, one more of
        the deletes). Only the first waits up to ``timeout``; the others take
        what is ready then, so the whole call waits at most ``timeout`` seconds
        (the server runs a connection's commands one after another).
        """
        if type(n) is not int or n < 0:
            raise InvalidArgument("n", n, "must be a non-negative int")
        requests = [_c.reserve_with_timeout(timeout if i == 0 else 0) for i in range(n)]
        results = self._run(requests) if n else []
        messages: list[Message] = []
        errors: list[Any] = []
        for value in results:
            if isinstance(value, TimedOut):
                continue
            if isinstance(value, BaseException):
                errors.append(value)
                continue
            try:
                message = self._reserved_message(value)
            except InvalidEnvelope as exc:  # the job stays reserved, for the caller to handle
                errors.append(exc)
                continue
            messages.append(message)
        if drop and messages:
            self.delete_many(messages)
            for message in messages:
                message.deleted = True
                message.reserved = False
        if errors:
            raise BatchFailed([*messages, *errors])
        return messages

    def delete_many(self, messages: Iterable[Message | int]) -> None:
        """Delete many jobs (messages or ids) in one pipelined write."""
        items = list(messages)
        requests: list[Request[None]] = [_c.delete(m.uid if isinstance(m, Message) else m) for m in items]
        self._batch(requests)
        for item in items:
            if isinstance(item, Message):
                item.deleted = True
                item.reserved = False


def _sent(message: Message, uid: int) -> Message:
    message.uid = uid
    return message
