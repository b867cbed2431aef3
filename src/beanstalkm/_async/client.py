"""The client: messages in envelopes on top of a connection (the one source of both flavours,
docs/architecture.md; its I/O-free batch conversations are in ``beanstalkm._core.batches``)."""

from __future__ import annotations

__all__ = ["AsyncClient"]

from collections.abc import Iterable
from typing import Any

from beanstalkm._async.connection import AsyncConnection
from beanstalkm._async.message import AsyncMessage
from beanstalkm._core.batches import PutBatch, deleted, message_kwargs, reserve_many_requests, reserve_many_steps
from beanstalkm._core.checks import check_bool, check_items
from beanstalkm._core.message import DEFAULT_TUBE, MessageBase
from beanstalkm._core.requests import Job
from beanstalkm._errors import BatchFailed, BeanstalkmException
from beanstalkm._generated import commands as _c
from beanstalkm._generated.commands import DEFAULT_DELAY, DEFAULT_PRIORITY, DEFAULT_TTR
from beanstalkm._generated.errors import NotFound, TimedOut


class AsyncClient(AsyncConnection):
    """A connection that sends and receives message envelopes.

    ``put`` wraps a JSON-serializable body in the envelope and sends it to a
    tube without changing the tube ``queue.using()`` reports; ``reserve``
    returns a message whose ``body`` is the body that was put.
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
    ) -> AsyncMessage:
        """A new, unsent message; ``message.send(tube)`` sends it. ``body`` may be another message."""
        body, kwargs = message_kwargs(body, subscribe, sender, channel, priority, delay, ttr, self._sender)
        return self._new_message(body, kwargs)

    async def put(
        self,
        body: Any,
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
        subscribe: str | None = None,
        sender: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> AsyncMessage:
        """Wrap ``body`` in the envelope and put it into ``tube``; returns the sent message.

        Raises ``TypeError`` before sending if ``body`` is not JSON-serializable.
        One round trip; the tube ``queue.using()`` reports is not changed.
        """
        if tube is None:  # not a tube (None would mean the used one, further down): refused, as put_many does
            _c.TUBE_RULE.check("tube", tube)
        if sender is None and subscribe is None and channel is None and not isinstance(body, MessageBase):
            # the common case: ``message.send(tube)`` without its layers (docs/sync-cpu.md)
            default_sender, sender_json = self._sender_wire
            message = AsyncMessage._new(self, body, dict(default_sender), priority, delay, ttr)
            request = message._plain_put(sender_json, priority, delay, ttr)
            message._sent(await self._direct(request.head, request, tube))
            return message
        body, kwargs = message_kwargs(body, subscribe, sender, channel, priority, delay, ttr, self._sender)
        message = AsyncMessage(self, body, **kwargs)  # ``self(...)``, one call less
        await message.send(tube)
        return message

    async def reserve(self, timeout: int | None = None, drop: bool = True) -> AsyncMessage | None:
        """Reserve a message from the watched tubes; None if ``timeout`` seconds pass first.

        ``timeout=None`` waits for as long as it takes; ``0`` polls. With
        ``drop=True`` the job is deleted on receipt (at-most-once delivery);
        with ``drop=False`` the caller deletes, releases or buries it
        (at-least-once). A job that fails envelope validation raises
        :class:`~beanstalkm.InvalidEnvelope` and is never deleted.
        Raises :class:`~beanstalkm.DeadlineSoon` when a job this connection
        holds is about to time out.

        With ``drop``, the reserve and its delete hold the connection together:
        no other command comes between them, and a caller interrupted before
        the delete is answered drops the connection, so beanstalkd releases
        the job (unless the delete had reached it).
        """
        if drop is not True and drop is not False:  # a valid flag costs no call
            check_bool("drop", drop)
        if not drop:
            try:
                return await (self.queue.reserve() if timeout is None else self.queue.reserve_with_timeout(timeout))
            except TimedOut:
                return None
        request = _c.reserve() if timeout is None else _c.reserve_with_timeout(timeout)
        async with self._alone:  # the reserve and its delete: one hold of the connection
            try:
                try:
                    message = self._reserved_message(await self._command(request))
                except TimedOut:
                    return None
                try:
                    await self._command(_c.delete(message.uid), follows=True)
                except NotFound:  # not reserved by us any more
                    message._gone()
                    raise
            except BeanstalkmException:
                raise  # a reply (an invalid envelope's job stays reserved), or a failed stream (dropped)
            except BaseException:  # interrupted (between the two, say): dropped, so beanstalkd releases the job
                self._drop()
                raise
            message._deleted()
            return message

    def _unsent(
        self,
        body: Any,
        sender: dict[str, Any],
        priority: int,
        delay: int,
        ttr: int,
        created: dict[str, int],
        token: str,
    ) -> AsyncMessage:
        return AsyncMessage._new(self, body, sender, priority, delay, ttr, created, token)

    def _message(self, job: Job, reserved: bool = False) -> AsyncMessage:
        return AsyncMessage._of_job(self, job, reserved)

    def _reserved_message(self, job: Job) -> AsyncMessage:
        return AsyncMessage._of_job(self, job, True)

    async def watch(self, tube: str) -> int:
        """Watch ``tube``; returns how many tubes are watched. Restored after a reconnect."""
        return await self.queue.watch(tube)

    async def ignore(self, tube: str) -> int:
        """Stop watching ``tube``; returns how many tubes are watched. Raises ``NotIgnored`` for the last one."""
        return await self.queue.ignore(tube)

    # -- batches ---------------------------------------------------------------

    async def put_many(
        self,
        bodies: Iterable[Any],
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
    ) -> list[AsyncMessage]:
        """Put many bodies into ``tube`` in one pipelined write; the sent messages, in order.

        ``bodies`` is an iterable of bodies; a str, bytes or dict is refused
        (``ArgumentTypeError``), not taken for a batch of its letters or keys.

        Every body is checked (``ArgumentTypeError``) before anything is sent; the
        envelopes are written in chunks as they are encoded, so the server stores
        the first while the client encodes the next. If any put fails,
        :class:`~beanstalkm.BatchFailed` holds each item's message or error; the
        others were stored.
        """
        batch = PutBatch(self, bodies, tube, priority, delay, ttr)
        if not batch.bodies:
            return []
        try:
            results = await self._converse(
                lambda session, reader: batch.steps(session, reader, tube), batch.encoded(0, 1)
            )
        except BatchFailed as exc:
            raise batch.failed(exc) from None
        return batch.sent(results)

    async def reserve_many(self, n: int, timeout: int = 0, drop: bool = True) -> list[AsyncMessage]:
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
        messages, outcomes = await self._converse(
            lambda session, reader: reserve_many_steps(session, reader, requests, drop, to_message), requests
        )
        if any(isinstance(outcome, BaseException) for outcome in outcomes):
            raise BatchFailed(outcomes)
        return messages

    async def delete_many(self, messages: Iterable[AsyncMessage | int]) -> None:
        """Delete many jobs (messages or ids) in one pipelined write."""
        items = check_items("messages", messages)
        try:
            await self._batch([_c.delete(m.uid if isinstance(m, MessageBase) else m) for m in items])
        except BatchFailed as exc:
            deleted(items, exc.results)
            raise
        deleted(items)
