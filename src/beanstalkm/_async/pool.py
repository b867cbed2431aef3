"""``AsyncPool``: many concurrent tasks over a few connections (asyncio only)."""

from __future__ import annotations

__all__ = ["AsyncPool"]

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from beanstalkm._async.client import AsyncClient
from beanstalkm._async.connection import AsyncConnection
from beanstalkm._async.message import AsyncMessage
from beanstalkm._core.base import _UNSET, DEFAULT_HOST, DEFAULT_PORT
from beanstalkm._core.checks import check_bool, check_items
from beanstalkm._core.message import DEFAULT_TUBE
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Request
from beanstalkm._core.session import Exchange, Session
from beanstalkm._errors import InvalidArgument, InvalidEnvelope
from beanstalkm._generated import commands as _c
from beanstalkm._generated.commands import DEFAULT_DELAY, DEFAULT_PRIORITY, DEFAULT_TTR
from beanstalkm._generated.errors import NotFound, TimedOut

T = TypeVar("T")


def _fresh(client: AsyncClient) -> AsyncClient:
    """``client``, its connection dropped first if the server closed it while it sat idle (a command
    would fail there, unsent): it connects again on its next command, restoring its watch list."""
    if client._peer_closed():
        client._drop()
    return client


class _PoolConnection(AsyncClient):
    """Runs the commands of ``AsyncPool.put`` (and of settled messages of ``AsyncPool.reserve``):
    those that change no connection state on the pool's pipelined connection, the rest on a
    connection borrowed for that command; never behind another task's blocking reserve."""

    _pool: AsyncPool

    async def _converse(
        self, start: Callable[[Session, ReplyReader], Exchange[T]], requests: Sequence[Request[Any]]
    ) -> T:
        async with self._pool.client() as client:
            return await client._converse(start, requests)

    async def _execute(self, request: Request[T], tube: str | None = None) -> T:
        if request.effect is None:  # no reserve, no change of state: pipelined with the other tasks'
            return await _fresh(self._pool._pipelined)._execute(request, tube)
        async with self._pool.client() as client:
            return await client._execute(request, tube)


class AsyncPool:
    """A pool of :class:`AsyncClient` connections for many concurrent tasks.

    A blocking reserve holds its connection, so one connection cannot serve
    many consumers: each ``async with pool.client() as c:`` borrows one (up to
    ``size``; more callers wait). Every pooled connection watches ``watch``
    and uses ``default``; a client given back with another watch list or used
    tube leaves the pool. A ``reserve`` that waits borrows a client for the
    call; a job it leaves reserved keeps its connection until the message is
    deleted, released or buried. ``put``, ``reserve(timeout=0)`` and the
    later calls on messages (delete, release, ...) go through one more
    connection of the pool's, shared by every task and auto-pipelined (see
    ``AsyncConnection``): concurrent commands share its writes and never wait
    behind a reserve.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float | None = _UNSET,
        *,
        size: int = 10,
        watch: Sequence[str] = (),
        unix_socket: str | None = None,
        validate: bool | None = None,
    ) -> None:
        if type(size) is not int or size < 1:
            raise InvalidArgument("size", size, "must be a positive int")
        self._args = (host, port, timeout)
        self._kwargs: dict[str, Any] = {"unix_socket": unix_socket, "validate": validate}
        self._watch = list(dict.fromkeys(_c.TUBE_RULE.check("watch", tube) for tube in check_items("watch", watch)))
        self._watching = set(self._watch) if self._watch else {"default"}  # what a pooled connection watches
        self._idle: list[AsyncClient] = []
        self._all: list[AsyncClient] = []
        self._slots = asyncio.Semaphore(size)
        self.size = size
        self._shared = _PoolConnection(host, port, timeout, unix_socket=unix_socket, validate=validate)
        self._shared._pool = self
        self._pipelined = AsyncClient(host, port, timeout, unix_socket=unix_socket, validate=validate)
        self._pipe_watching = False  # whether it watches ``watch`` yet (its session restores that on reconnecting)
        self._pipe_setup = asyncio.Lock()

    async def _new(self) -> AsyncClient:
        client = AsyncClient(*self._args, **self._kwargs)
        await client.connect()
        await self._watched(client)
        self._all.append(client)
        return client

    async def _watched(self, client: AsyncClient) -> None:
        """``client`` watches ``watch`` (and not ``default``, unless it is one of them)."""
        for tube in self._watch:
            await client.watch(tube)
        if self._watch and "default" not in self._watch:
            await client.ignore("default")

    async def _borrow(self) -> AsyncClient:
        await self._slots.acquire()
        try:
            return _fresh(self._idle.pop()) if self._idle else await self._new()
        except BaseException:
            self._slots.release()
            raise

    def _give_back(self, client: AsyncClient) -> None:
        """A borrowed client back to the pool; out of it if it broke (or the pool was closed meanwhile)."""
        if client in self._all:
            session = client._session
            if client.connected and session.using == "default" and set(session.watching) == self._watching:
                self._idle.append(client)
            else:
                self._all.remove(client)
                client._drop()
        self._slots.release()

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[AsyncClient]:
        """Borrow a connected client; it goes back to the pool afterwards (out of it if it broke)."""
        client = await self._borrow()
        try:
            yield client
        finally:
            self._give_back(client)

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
        """``AsyncClient.put`` on a borrowed connection."""
        return await self._shared.put(body, tube, priority, delay, ttr, subscribe, sender, channel)

    async def reserve(self, timeout: int | None = None, drop: bool = True) -> AsyncMessage | None:
        """``AsyncClient.reserve`` on a borrowed connection; with ``timeout=0``, on the pipelined one.

        beanstalkd ties a reservation to its connection, so a job a reserve that
        waits leaves reserved (``drop=False``, or the message of an
        ``InvalidEnvelope``) keeps that connection and its place in the pool
        until the message is deleted, released or buried (or a touch finds the
        reservation over): no other task can block it in a reserve meanwhile.

        A reserve that does not wait (``timeout=0``) goes through the pool's
        pipelined connection with the other tasks' commands, and so does the
        message's delete (``drop``), release or bury. A task cancelled while
        its reserve is in flight costs no job: one the reserve took is released
        again, with its own priority. With ``drop``, once the job is reserved
        its delete goes through even if the task is cancelled meanwhile
        (at-most-once: the job is then deleted, unseen).
        """
        if timeout == 0:
            return await self._reserve_now(check_bool("drop", drop))
        client = await self._borrow()
        try:
            message = await client.reserve(timeout=timeout, drop=drop)
        except InvalidEnvelope as exc:
            self._lend(client, exc.message)
            raise
        except BaseException:
            self._give_back(client)
            raise
        self._lend(client, message)
        return message

    async def _reserve_now(self, drop: bool) -> AsyncMessage | None:
        """A reserve that does not wait, and the delete of its job with ``drop``, pipelined."""
        client = _fresh(self._pipelined)
        if not self._pipe_watching:
            await self._watch_pipelined()
        try:
            message = await client.queue.reserve_with_timeout(0)
        except TimedOut:
            return None
        if drop:  # the delete goes through even if this task is cancelled meanwhile
            try:
                await client._kept(_c.delete(message.uid))
            except NotFound:
                message._gone()
                raise
            message._deleted()
        return message

    async def _watch_pipelined(self) -> None:
        """The pipelined connection watches what the pooled ones do (once, whoever asks first)."""
        async with self._pipe_setup:
            if not self._pipe_watching:
                await self._watched(self._pipelined)
                self._pipe_watching = True

    def _lend(self, client: AsyncClient, message: object) -> None:
        """Leave ``client`` with ``message`` while it holds a reservation, else give it back."""
        if isinstance(message, AsyncMessage) and message.reserved and client.connected:
            message._lend(lambda: self._settled(client))
        else:
            self._give_back(client)

    def _settled(self, client: AsyncClient) -> AsyncConnection:
        """A lent reservation is over: the client goes back; the message borrows from now on."""
        self._give_back(client)
        return self._shared

    async def close(self) -> None:
        """Close every connection."""
        clients, self._all, self._idle = self._all, [], []
        for client in [*clients, self._pipelined]:
            await client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
