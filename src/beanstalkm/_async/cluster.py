"""Several servers: the ``Client`` verbs over N beanstalkd servers, sharded on the client.

This is the one source of both flavours: ``beanstalkm._sync.cluster`` is derived from it by
``python -m codegen``. Every choice (health, backoff, placement, the order a reserve asks the
servers) is made by the I/O-free ``beanstalkm._core.cluster``; this file only talks to the servers.
See ``docs/cluster.md`` for the design and its trade-offs.
"""

from __future__ import annotations

__all__ = ["AsyncCluster"]

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from functools import partial
from ssl import SSLContext, create_default_context
from types import TracebackType
from typing import Any, Self, TypeAlias, TypeGuard, TypeVar

from beanstalkm._async import ASYNC
from beanstalkm._async.client import AsyncClient
from beanstalkm._async.connection import AsyncConnection, converse_all
from beanstalkm._async.message import AsyncMessage
from beanstalkm._core.base import MAX_TIMEOUT, check_ssl
from beanstalkm._core.batches import PutBatch
from beanstalkm._core.checks import check_bool, check_items, check_seconds, check_uint
from beanstalkm._core.cluster import (
    BACKLOG_REFRESH,
    WAIT_SLICE,
    ClusterStats,
    Placement,
    ServerHealth,
    ServerState,
    check_placement,
    placement_order,
    reserve_order,
)
from beanstalkm._core.message import DEFAULT_TUBE, MessageBase
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Job, Request
from beanstalkm._core.session import Exchange, Session
from beanstalkm._core.urls import ServerURL, default_urls, parse_urls
from beanstalkm._errors import (
    ArgumentTypeError,
    BatchFailed,
    BeanstalkmException,
    InvalidArgument,
    InvalidEnvelope,
    ProtocolError,
    SocketError,
)
from beanstalkm._generated import commands as _c
from beanstalkm._generated.commands import DEFAULT_DELAY, DEFAULT_PRIORITY, DEFAULT_TTR
from beanstalkm._generated.errors import Draining, NotFound, NotIgnored, OutOfMemory, TimedOut
from beanstalkm._generated.stats import TubeStats

T = TypeVar("T")

log = logging.getLogger("beanstalkm.cluster")

if ASYNC:
    _OnClient: TypeAlias = Callable[[AsyncClient], Awaitable[T]]
else:
    _OnClient: TypeAlias = Callable[[AsyncClient], T]

_RESERVE_TIMEOUT_MAX = 2**31 - 1


class _Server(ServerState):
    """A server of the cluster: its state, the client its puts and admin calls use (made when first
    needed), and the consumer clients no reservation holds (a reserve borrows one)."""

    __slots__ = ("clients", "idle", "noted", "producer", "target")

    def __init__(self, url: ServerURL) -> None:
        super().__init__(str(url))
        self.target = url
        self.noted: BaseException | None = None  # the failure last counted (one failure counts once)
        self.producer: AsyncClient | None = None
        self.idle: list[AsyncClient] = []
        self.clients: list[AsyncClient] = []  # every client made, to close


class _Lease:
    """The messages a consumer client holds reserved: it goes back to its server's idle ones once the
    last of them is settled (deleted, released, buried, or void with its connection)."""

    __slots__ = ("client", "cluster", "held", "server")

    def __init__(self, cluster: AsyncCluster, server: _Server, client: AsyncClient) -> None:
        self.cluster, self.server, self.client = cluster, server, client
        self.held = 0

    def hold(self, message: AsyncMessage) -> None:
        self.held += 1
        message._lend(self.settled)

    def settled(self) -> AsyncConnection:
        self.held -= 1
        if self.held == 0:
            self.cluster._give_back(self.server, self.client)
        return self.server.producer if self.server.producer is not None else self.client


class AsyncCluster:
    """The ``Client`` verbs over several beanstalkd servers.

    ``urls`` is a list of server URLs or one comma-separated str (default: ``BEANSTALKD_URL``, else
    ``beanstalk://127.0.0.1:11300``). ``placement`` says where a put goes: ``"round-robin"`` (the
    default; servers that are down are skipped), ``"hash"`` (rendezvous hashing by ``key=``, else by
    tube: a tube's jobs stay on one server, keeping its FIFO and priority order) or a callable
    ``choose(servers_up, tube, key) -> url``. ``timeout``, ``validate`` and ``ssl`` are each server
    connection's (``ssl`` for the ``beanstalks://`` ones; certificates are verified by default).

    A put goes to another server only when it provably did not land (no connection, nothing
    written, ``DRAINING`` or ``OUT_OF_MEMORY``); an unknown outcome raises ``SocketError`` with
    ``maybe_executed=True`` naming the server, and is never resent. A server that fails is down:
    skipped, tried again after an exponential backoff with jitter (``backoff`` seconds doubling up
    to ``max_backoff``), back by itself once a call reaches it. ``cluster.servers`` reports each
    one's health. A call raises only when no server can serve it.

    ``reserve`` asks the servers in turn without waiting (``reserve-with-timeout 0``), the first
    one picked in proportion to its ready jobs, so every backlog drains at the same pace; when
    all are empty it waits on all of them at once, for a second at a time (see ``docs/cluster.md``).
    Every message remembers its server (``message.server``, ``message.ref == (server, uid)``), and
    its lifecycle calls go to the connection that reserved it.
    """

    def __init__(
        self,
        urls: str | Sequence[str] | None = None,
        *,
        placement: Placement = "round-robin",
        timeout: float | None = 10.0,
        validate: bool | None = None,
        ssl: SSLContext | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        parsed = parse_urls(default_urls() if urls is None else urls)
        self.placement = check_placement(placement)
        self.timeout = check_seconds("timeout", timeout, MAX_TIMEOUT)
        self.validate = None if validate is None else check_bool("validate", validate)
        self._ssl = check_ssl("ssl", ssl)
        if self._ssl is not None and not any(url.tls for url in parsed):
            raise InvalidArgument("ssl", ssl, "no server URL is beanstalks:// (TLS)")
        backoff_s = check_seconds("backoff", backoff, MAX_TIMEOUT)
        cap = check_seconds("max_backoff", max_backoff, MAX_TIMEOUT)
        if backoff_s is None or cap is None:
            raise InvalidArgument("backoff", (backoff, max_backoff), "the backoff and its cap must be numbers")
        self._backoff, self._max_backoff = float(backoff_s), float(cap)
        self._servers = [_Server(url) for url in parsed]
        self._by_url = {s.url: s for s in self._servers}
        self._watching = ["default"]
        self._turn = 0  # round-robin of puts
        self._sweeps = 0  # rotation of the servers thought empty
        self._backlog_at = -math.inf  # when the backlogs were last asked (time.monotonic())
        self._rng = random.Random()
        self.raced = 0
        """Jobs a server had reserved while another one's answered a wait first: handed back at once."""

    # -- servers and health ------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """The servers' URLs (canonical), in the order given."""
        return [s.url for s in self._servers]

    @property
    def ssl(self) -> SSLContext | None:
        """The TLS context given for the ``beanstalks://`` servers (None: the default, verifying)."""
        return self._ssl

    @property
    def servers(self) -> list[ServerHealth]:
        """Each server's URL and health: up or down, since when, the last error, the next try."""
        now = time.monotonic()
        return [s.health(now) for s in self._servers]

    def _available(self) -> list[_Server]:
        """The servers a call may go to: up, or down with their backoff over; if there are none, all
        of them (a call tries them all before saying that no server can serve it)."""
        now = time.monotonic()
        ready = [s for s in self._servers if s.available(now)]
        return ready if ready else list(self._servers)

    def _rest(self, tried: Iterable[_Server]) -> list[_Server]:
        """The servers not tried yet (those still in their backoff): a call tries them before it raises."""
        done = set(map(id, tried))
        return [s for s in self._servers if id(s) not in done]

    def _down(self, server: _Server, exc: BaseException) -> None:
        """A call failed on ``server``'s connection: it is down until its backoff is over."""
        if exc is server.noted:
            return
        server.noted = exc
        for client in server.idle:
            client._drop()
        if server.failed(str(exc), time.monotonic(), self._backoff, self._max_backoff, self._rng):
            log.warning(
                "server %s is down: %s (next try in %.2f s)", server.url, exc, server.retry_at - time.monotonic()
            )
        else:
            log.debug("server %s is still down: %s", server.url, exc)

    def _reached(self, server: _Server) -> None:
        since = server.since
        if server.reached():
            log.info("server %s is back (down %.1f s)", server.url, time.time() - since)

    def _no_server(self, what: str, errors: Sequence[tuple[_Server, BaseException]]) -> SocketError:
        tried = "; ".join(f"{s.url}: {e}" for s, e in errors) or "no server to try"
        return SocketError(f"{what}: no server of the cluster could serve it ({tried})")

    async def _client(self, server: _Server, consumer: bool) -> AsyncClient:
        """A new connected client of ``server`` (a consumer watches the cluster's tubes); ``SocketError``
        if it cannot connect (nothing was sent), and the server is down."""
        ssl = (self._ssl or create_default_context()) if server.target.tls else None
        client = AsyncClient.from_url(server.url, timeout=self.timeout, validate=self.validate, ssl=ssl)
        try:
            await client.connect()
            if consumer:
                await self._rewatch(client)
        except BaseException as exc:
            client._drop()
            if isinstance(exc, SocketError):
                self._down(server, exc)
            raise
        server.clients.append(client)
        log.debug("connected to %s (%s)", server.url, "consumer" if consumer else "producer")
        return client

    async def _rewatch(self, client: AsyncClient) -> None:
        """Make ``client`` watch exactly the cluster's tubes (a watch list restored on reconnect is kept)."""
        have = client._session.watching
        for tube in self._watching:
            if tube not in have:
                await client.watch(tube)
        for tube in list(have):
            if tube not in self._watching:
                await client.ignore(tube)

    async def _producer(self, server: _Server) -> AsyncClient:
        """``server``'s client for puts and admin calls, connected anew if the server closed it (so a
        put never goes out on a connection already known dead: its outcome could not be known)."""
        client = server.producer
        if client is None:
            client = server.producer = await self._client(server, consumer=False)
        elif client._peer_closed():
            client._drop()
        return client

    async def _borrow(self, server: _Server) -> AsyncClient:
        """A consumer client of ``server`` that holds no reservation, watching the cluster's tubes."""
        try:
            client: AsyncClient | None = server.idle.pop()
        except IndexError:  # none idle (another thread may have taken the last one meanwhile)
            client = None
        if client is None:
            return await self._client(server, consumer=True)
        if client._peer_closed():
            client._drop()
        if set(client._session.watching) != set(self._watching):
            await self._rewatch(client)
        return client

    def _give_back(self, server: _Server, client: AsyncClient) -> None:
        if client in server.clients and client not in server.idle:
            server.idle.append(client)

    def _keep(self, server: _Server, client: AsyncClient, messages: Iterable[AsyncMessage]) -> None:
        """Lend ``client`` to the messages it holds reserved (back to idle once all are settled)."""
        lease = _Lease(self, server, client)
        for message in messages:
            if message.reserved:  # on a connection that is open: beanstalkd holds it for this one
                lease.hold(message)
        if lease.held == 0:
            self._give_back(server, client)

    async def _on_each(self, what: str, call: _OnClient[T]) -> dict[str, T]:
        """``call(producer)`` on every server that can be reached: each one's result by URL. The
        servers that fail are marked down; ``SocketError`` if none answered."""
        results: dict[str, T] = {}
        errors: list[tuple[_Server, BaseException]] = []
        for server in self._available():
            try:
                results[server.url] = await call(await self._producer(server))
            except SocketError as exc:
                self._down(server, exc)
                errors.append((server, exc))
                continue
            self._reached(server)
        if not results and errors:
            raise self._no_server(what, errors)
        return results

    # -- putting -----------------------------------------------------------------

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
        key: str | None = None,
    ) -> AsyncMessage:
        """Put ``body`` (in the envelope) into ``tube`` on the server the placement picks; the sent
        message (``message.server`` says where).

        Tries the next server only when this one provably did not store it; raises ``SocketError``
        (``maybe_executed=True``, naming the server) when its outcome is unknown: never resent.
        """
        _c.TUBE_RULE.check("tube", tube)
        key = _check_key(key)
        errors: list[tuple[_Server, BaseException]] = []
        for server in self._put_order(tube, key):
            try:
                client = await self._producer(server)
                message = await client.put(body, tube, priority, delay, ttr, subscribe, sender, channel)
            except SocketError as exc:
                if exc.maybe_executed:
                    self._down(server, exc)
                    raise _unknown("put", server, exc) from exc
                self._down(server, exc)
                errors.append((server, exc))
                continue
            except (Draining, OutOfMemory) as exc:
                if not _refused(exc):  # the use was refused, but the put ran in the tube in force
                    raise
                server.refuse_puts(str(exc), time.monotonic(), self._backoff)
                log.info("server %s refused a put (%s): trying the next", server.url, exc.status)
                errors.append((server, exc))
                continue
            self._reached(server)
            return message
        raise self._no_server("put", errors)

    def _put_order(self, tube: str, key: str | None) -> Iterator[_Server]:
        """The servers a put tries, in order, chosen as they are needed (a callable is asked again only
        after a failure); then those still in their backoff."""
        now = time.monotonic()
        servers = [s for s in self._available() if now >= s.puts_refused_until] or self._available()
        turn, self._turn = self._turn, self._turn + 1
        tried = []
        for server in placement_order(servers, self.placement, turn, tube, key):
            tried.append(server)
            yield server
        yield from self._rest(tried)

    async def put_many(
        self,
        bodies: Iterable[Any],
        tube: str = DEFAULT_TUBE,
        priority: int = DEFAULT_PRIORITY,
        delay: int = DEFAULT_DELAY,
        ttr: int = DEFAULT_TTR,
        key: str | None = None,
    ) -> list[AsyncMessage]:
        """Put many bodies, placed one by one, grouped by server and written to all the servers at once
        (one pipelined batch each); the sent messages, in order.

        A group whose server provably stored nothing (not reached, or it refused the puts for sure:
        ``DRAINING``, ``OUT_OF_MEMORY``) goes to the others, as a single put does. If any put failed,
        :class:`~beanstalkm.BatchFailed` holds each item's message or error (``SocketError`` with
        ``maybe_executed=True`` for the items of a batch whose outcome is unknown).
        """
        items = check_items("bodies", bodies)
        _c.put(b"", priority, delay, ttr)  # refuses a bad setting even for no bodies
        _c.TUBE_RULE.check("tube", tube)
        key = _check_key(key)
        results: list[object] = [None] * len(items)
        todo = list(range(len(items)))
        tried: set[str] = set()
        errors: list[tuple[_Server, BaseException]] = []
        while todo:
            groups = self._place(todo, tube, key, tried)
            if not groups:
                error = self._no_server("put_many", errors)
                for i in todo:
                    results[i] = error
                break
            todo = []
            for server, indices, outcome in await self._put_groups(groups, items, tube, priority, delay, ttr):
                if isinstance(outcome, SocketError) and not outcome.maybe_executed:
                    tried.add(server.url)  # it stored nothing: its bodies go elsewhere
                    errors.append((server, outcome))
                    todo += indices
                    continue
                outcomes = outcome if isinstance(outcome, list) else [outcome] * len(indices)
                refused = [r for r in outcomes if _refused(r)]
                if refused:  # a definite refusal: those items were not stored, they go to the others
                    server.refuse_puts(str(refused[0]), time.monotonic(), self._backoff)
                    log.info(
                        "server %s refused %d put(s) (%s): trying the next", server.url, len(refused), refused[0].status
                    )
                    tried.add(server.url)
                    errors.append((server, refused[0]))
                for i, result in zip(indices, outcomes, strict=True):
                    if _refused(result):
                        todo.append(i)
                    else:
                        results[i] = result
            todo.sort()
        if any(isinstance(r, BaseException) for r in results):
            raise BatchFailed(results)
        return [m for m in results if isinstance(m, AsyncMessage)]

    def _place(self, todo: list[int], tube: str, key: str | None, tried: set[str]) -> list[tuple[_Server, list[int]]]:
        """Each body's server (the first of its placement order not tried), grouped by server."""
        now = time.monotonic()
        servers = [s for s in self._available() if s.url not in tried]
        accepting = [s for s in servers if now >= s.puts_refused_until] or servers
        groups: dict[_Server, list[int]] = {}
        if not accepting:
            return []
        if self.placement == "round-robin":  # body j of this call to the (turn + j)-th server
            start, count = self._turn, len(accepting)
            self._turn += len(todo)
            for j, i in enumerate(todo):
                groups.setdefault(accepting[(start + j) % count], []).append(i)
        elif self.placement == "hash":  # one key (or tube) for the whole call: one server
            groups[next(placement_order(accepting, "hash", 0, tube, key))] = list(todo)
        else:
            for i in todo:
                groups.setdefault(next(placement_order(accepting, self.placement, 0, tube, key)), []).append(i)
        return list(groups.items())

    async def _put_groups(
        self,
        groups: list[tuple[_Server, list[int]]],
        items: list[Any],
        tube: str,
        priority: int,
        delay: int,
        ttr: int,
    ) -> list[tuple[_Server, list[int], list[object] | BaseException]]:
        """Each group's batch on its server, all written at once: each item's message or error, or
        the group's ``SocketError`` (``maybe_executed`` False: none of it was stored)."""
        out: list[tuple[_Server, list[int], list[object] | BaseException]] = []
        running: list[tuple[_Server, list[int], AsyncClient, PutBatch[AsyncMessage]]] = []
        for server, indices in groups:
            try:
                client = await self._producer(server)
            except SocketError as exc:
                out.append((server, indices, exc))
                continue
            running.append(
                (server, indices, client, PutBatch(client, [items[i] for i in indices], tube, priority, delay, ttr))
            )
        if not running:
            return out
        results, _ = await converse_all(
            [r[2] for r in running],
            [partial(batch.steps, tube=tube) for _, _, _, batch in running],  # written as encoded, as Client.put_many
            [batch.encoded(0, 1) for _, _, _, batch in running],
            hold=True,  # the producers are shared (puts, stats, other put_many calls): each held for its batch
        )
        for (server, indices, client, batch), result in zip(running, results, strict=True):
            if isinstance(result, SocketError):
                self._down(server, result)
                out.append((server, indices, _unknown("put_many", server, result) if result.maybe_executed else result))
                continue
            if result is None or isinstance(result, BaseException):  # None: never (no conversation is cut short)
                out.append((server, indices, result or SocketError(f"put_many to {server.url}: not run")))
                continue
            self._reached(server)
            try:
                messages: list[object] = list(batch.sent(client._batch_results(batch.requests, result)))
            except BatchFailed as exc:
                messages = batch.failed(exc).results
            out.append((server, indices, messages))
        return out

    # -- reserving ---------------------------------------------------------------

    async def reserve(self, timeout: int | None = None, drop: bool = True) -> AsyncMessage | None:
        """A message from the watched tubes of any server; None if ``timeout`` seconds pass first
        (``None``: wait as long as it takes; ``0``: poll).

        No job is taken that cannot be handed out: the servers are asked in turn without waiting
        (the first in proportion to its ready jobs), and only when all are empty does it wait on all
        of them at once; a job another server reserved meanwhile is handed back at once (``raced``).
        With ``drop=True`` the job is deleted on receipt (at-most-once); with ``drop=False`` its
        lifecycle calls go to the connection that reserved it.
        """
        check_bool("drop", drop)
        if timeout is not None:
            check_uint("timeout", timeout, 0, _RESERVE_TIMEOUT_MAX)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = await self._sweep(drop)
            if message is not None:
                return message
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            seconds = WAIT_SLICE if left is None else max(1, min(WAIT_SLICE, math.ceil(left)))
            message = await self._wait(seconds, drop)
            if message is not None:
                return message

    async def _refresh_backlog(self, servers: list[_Server]) -> None:
        """Ask each server how many ready jobs its watched tubes hold, every ``BACKLOG_REFRESH`` s."""
        now = time.monotonic()
        if now - self._backlog_at < BACKLOG_REFRESH:
            return
        self._backlog_at = now
        for server in servers:
            try:
                client = await self._producer(server)
                ready = 0
                for tube in self._watching:
                    with suppress(NotFound):  # no such tube there (yet)
                        ready += (await client.queue.stats_tube(tube)).current_jobs_ready
            except SocketError as exc:
                self._down(server, exc)
                continue
            server.backlog = ready

    async def _sweep(self, drop: bool) -> AsyncMessage | None:
        """Ask the servers in turn for a ready job, waiting on none; the first job, or None. If none of
        them could be asked, those still in their backoff are tried before it raises."""
        servers = self._available()
        await self._refresh_backlog(servers)
        self._sweeps += 1
        errors: list[tuple[_Server, BaseException]] = []
        asked, message = await self._sweep_on(reserve_order(servers, self._sweeps), drop, errors)
        if not asked and message is None:
            asked, message = await self._sweep_on(self._rest(servers), drop, errors)
            if not asked and message is None:
                raise self._no_server("reserve", errors)
        return message

    async def _sweep_on(
        self, servers: list[_Server], drop: bool, errors: list[tuple[_Server, BaseException]]
    ) -> tuple[int, AsyncMessage | None]:
        """``reserve-with-timeout 0`` on each server in turn: how many answered, and the first job."""
        asked = 0
        for server in servers:
            try:
                client = await self._borrow(server)
            except SocketError as exc:
                errors.append((server, exc))
                continue
            try:
                message = await client.reserve(timeout=0, drop=drop)
            except SocketError as exc:
                self._down(server, exc)
                self._give_back(server, client)  # dropped: it connects again when next borrowed
                errors.append((server, exc))
                continue
            except InvalidEnvelope as exc:  # its job stays reserved, for the caller
                self._keep(server, client, [exc.message])
                raise
            except BaseException as exc:
                if isinstance(exc, ProtocolError):  # that connection was dropped; the error is the caller's
                    log.warning("reserve on %s: %s", server.url, exc)
                self._give_back(server, client)
                raise
            asked += 1
            self._reached(server)
            if message is None:
                server.backlog = 0
                self._give_back(server, client)
                continue
            if server.backlog == 0:  # thought empty: the estimates are stale, ask again next time
                self._backlog_at = -math.inf
            server.backlog = max(0, server.backlog - 1)
            self._keep(server, client, [message])
            return asked, message
        return asked, None

    async def _wait(self, seconds: int, drop: bool) -> AsyncMessage | None:
        """Wait up to ``seconds`` on every server at once; the first job, or None. The others' waits
        are cut short (their connections dropped), so they take nothing more."""
        borrowed: list[tuple[_Server, AsyncClient]] = []
        errors: list[tuple[_Server, BaseException]] = []
        for server in self._available():
            try:
                borrowed.append((server, await self._borrow(server)))
            except SocketError as exc:
                errors.append((server, exc))
        if not borrowed:
            raise self._no_server("reserve", errors)
        request = _c.reserve_with_timeout(seconds)

        def starts(session: Session, reader: ReplyReader) -> Exchange[list[Any]]:
            return session.exchange(reader, (request,))

        def first(i: int, result: list[Any] | BaseException) -> bool:  # a job, or a failure of the command
            return not isinstance(result, BaseException) and not isinstance(result[0], TimedOut)

        try:
            results, raced = await converse_all(
                [c for _, c in borrowed], [starts] * len(borrowed), [(request,)] * len(borrowed), first
            )
        except BaseException:  # cancelled (its connections were dropped): they go back, to connect again
            for server, client in borrowed:
                self._give_back(server, client)
            raise
        if raced:
            self.raced += raced
            log.info("reserve: %d job(s) reserved by another server's wait were handed back at once", raced)
        outcome: AsyncMessage | BeanstalkmException | None = None
        for (server, client), result in zip(borrowed, results, strict=True):
            if isinstance(result, SocketError):
                self._down(server, result)
            elif isinstance(result, list):
                self._reached(server)
                item = result[0]
                if isinstance(item, Job):
                    try:
                        message = client._reserved_message(item)
                    except InvalidEnvelope as exc:  # its job stays reserved, for the caller
                        outcome, message = exc, exc.message
                    else:
                        outcome = message
                        server.backlog = 0
                    self._keep(server, client, [message])
                    continue
                if isinstance(item, BeanstalkmException) and not isinstance(item, TimedOut):
                    outcome = item
            elif isinstance(result, ProtocolError):  # its connection was dropped; a job another server gave wins
                log.warning("reserve on %s: %s", server.url, result)
                self._down(server, result)
                if outcome is None:
                    outcome = result
            self._give_back(server, client)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is not None and drop:
            await outcome.delete()
        if outcome is None and not any(isinstance(r, list) for r in results):
            raise self._no_server(
                "reserve", [(s, r) for (s, _), r in zip(borrowed, results, strict=True) if isinstance(r, BaseException)]
            )
        return outcome

    async def reserve_many(self, n: int, timeout: int = 0, drop: bool = True) -> list[AsyncMessage]:
        """Up to ``n`` messages from all the servers, fewer when fewer are ready; if none is, waits up to
        ``timeout`` seconds for one (and returns it with whatever is ready then).

        Each server is asked for its share of ``n`` in proportion to its ready jobs, all at once.
        """
        n = check_uint("n", n, 0, 2**20)
        check_uint("timeout", timeout, 0, _RESERVE_TIMEOUT_MAX)
        check_bool("drop", drop)
        got: list[AsyncMessage] = []
        if n == 0:  # none asked, none taken (the sweeps below each take one; with drop=True, deleted)
            return got
        for _ in range(4):  # what a server did not have goes to the others; stale estimates are asked again
            more, full, asked = await self._reserve_shares(n - len(got), drop)
            got += more
            if len(got) >= n:
                break
            if not full:  # the servers thought empty were not asked: one of them may have jobs since
                try:
                    _, one = await self._sweep_on([s for s in self._available() if s not in asked], drop, [])
                except BeanstalkmException as exc:  # the messages taken are the caller's all the same
                    if got:
                        raise BatchFailed([*got, exc]) from exc
                    raise
                if one is None:
                    break
                got.append(one)
                if len(got) >= n:  # (else the next round's shares of 0 would sweep one more)
                    break
            self._backlog_at = -math.inf
        if not got and timeout and n:
            first = await self.reserve(timeout=timeout, drop=drop)
            if first is not None:
                got = [first, *(await self.reserve_many(n - 1, 0, drop) if n > 1 else ())]
        return got

    async def _reserve_shares(self, n: int, drop: bool) -> tuple[list[AsyncMessage], bool, list[_Server]]:
        """Each server's share of ``n`` by its estimated backlog, all asked at once: the messages,
        whether some server gave its whole share (it may hold more than was thought), and the servers
        asked."""
        servers = self._available()
        await self._refresh_backlog(servers)
        total = sum(s.backlog for s in servers)
        if total == 0:
            one = await self._sweep(drop)
            return ([], False, self._servers) if one is None else ([one], True, self._servers)
        full = False
        asked: list[_Server] = []
        got: list[AsyncMessage] = []
        errors: list[BaseException] = []
        for server in servers:
            share = min(server.backlog, math.ceil(n * server.backlog / total), n - len(got))
            if share <= 0:
                continue
            asked.append(server)
            try:
                client = await self._borrow(server)
            except SocketError:
                continue
            try:
                messages = await client.reserve_many(share, 0, drop)
            except BatchFailed as exc:
                messages = [m for m in exc.results if isinstance(m, AsyncMessage)]
                errors += [e for e in exc.results if isinstance(e, BaseException)]
            except SocketError as exc:
                self._down(server, exc)
                self._give_back(server, client)
                continue
            full = full or len(messages) == share
            server.backlog = max(0, server.backlog - len(messages)) if len(messages) == share else 0
            self._reached(server)
            self._keep(server, client, messages)
            got += messages
        if errors:
            raise BatchFailed([*got, *errors])
        return got, full, asked

    # -- messages and jobs by reference --------------------------------------------

    async def delete_many(self, items: Iterable[AsyncMessage | tuple[str, int]]) -> None:
        """Delete messages (each on its own connection) and jobs by reference ``(server, id)``."""
        listed = check_items("items", items)
        results: list[object] = [None] * len(listed)
        refs: dict[_Server, list[int]] = {}
        for index, item in enumerate(listed):
            if not isinstance(item, MessageBase):
                refs.setdefault(self._server_of(item), []).append(index)
        for index, item in enumerate(listed):
            if isinstance(item, AsyncMessage):
                try:
                    await item.delete()
                except BeanstalkmException as exc:
                    results[index] = exc
        for server, indices in refs.items():
            for index in indices:
                try:
                    await (await self._producer(server)).queue.delete(listed[index][1])
                except BeanstalkmException as exc:
                    results[index] = exc
        if any(isinstance(r, BaseException) for r in results):
            raise BatchFailed(results)

    def _server_of(self, ref: object) -> _Server:
        """The server of a job reference ``(server_url, id)``: ``InvalidArgument`` for one of no server here."""
        if not (isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], str)):
            raise ArgumentTypeError("ref", ref, "a job reference is (server_url, id), as message.ref gives")
        check_uint("ref", ref[1], 1, 2**64 - 1)
        server = self._by_url.get(ref[0])
        if server is None:
            raise InvalidArgument("ref", ref, f"{ref[0]} is not a server of this cluster: {self.urls}")
        return server

    async def peek(self, ref: tuple[str, int]) -> AsyncMessage | None:
        """The job ``ref == (server, id)`` (``message.ref``) on its server, or None if there is none."""
        server = self._server_of(ref)
        try:
            message = await (await self._producer(server)).queue.peek(ref[1])
        except SocketError as exc:
            self._down(server, exc)
            raise
        self._reached(server)
        return message

    # -- tubes and stats across the servers -----------------------------------------

    async def watch(self, tube: str) -> int:
        """Watch ``tube`` on every server (the consumers pick it up before their next reserve);
        returns how many tubes are watched."""
        tube = _c.TUBE_RULE.check("tube", tube)
        if tube not in self._watching:
            self._watching.append(tube)
            self._backlog_at = -math.inf
        return len(self._watching)

    async def ignore(self, tube: str) -> int:
        """Stop watching ``tube`` on every server; ``NotIgnored`` for the last one."""
        tube = _c.TUBE_RULE.check("tube", tube)
        if self._watching == [tube]:
            raise NotIgnored("ignore", "NOT_IGNORED")
        if tube in self._watching:
            self._watching.remove(tube)
            self._backlog_at = -math.inf
        return len(self._watching)

    @property
    def watching(self) -> list[str]:
        """The tubes every server's consumers watch."""
        return list(self._watching)

    async def stats(self) -> ClusterStats:
        """Every server's ``ServerStats`` by URL, typed totals, and the servers that did not answer."""
        per = await self._on_each("stats", lambda client: client.queue.stats())
        errors = {s.url: s.last_error or "down" for s in self._servers if s.url not in per}
        return ClusterStats(per, errors)

    async def stats_tube(self, tube: str) -> dict[str, TubeStats]:
        """``tube``'s stats on each server that has it, by URL; ``NotFound`` if none has it."""
        _c.TUBE_RULE.check("tube", tube)

        async def one(client: AsyncClient) -> TubeStats | None:
            try:
                return await client.queue.stats_tube(tube)
            except NotFound:
                return None

        found = {url: s for url, s in (await self._on_each("stats_tube", one)).items() if s is not None}
        if not found:
            raise NotFound("stats-tube", "NOT_FOUND")
        return found

    async def list_tubes(self) -> list[str]:
        """Every tube on any server, sorted."""
        per = await self._on_each("list_tubes", lambda client: client.queue.list_tubes())
        return sorted({tube for tubes in per.values() for tube in tubes})

    async def kick(self, tube: str, bound: int) -> int:
        """Kick up to ``bound`` jobs of ``tube`` in all (buried ones first on each server, else delayed
        ones); how many were kicked."""
        _c.TUBE_RULE.check("tube", tube)
        left = check_uint("bound", bound, 0, 2**32 - 1)

        async def one(client: AsyncClient) -> int:
            nonlocal left
            if left == 0:
                return 0
            # the use and the kick in one hold of the connection: no other task's use between them
            kicked = await client._execute(_c.kick(left), tube)
            left -= kicked
            return kicked

        return sum((await self._on_each("kick", one)).values())

    async def peek_ready(self, tube: str) -> AsyncMessage | None:
        """A ready job of ``tube`` (the next one of the first server, in the order given, that has one), or None."""
        return await self._peek(tube, _c.peek_ready())

    async def peek_delayed(self, tube: str) -> AsyncMessage | None:
        """A delayed job of ``tube`` (the first server's, in the order given, that has one), or None."""
        return await self._peek(tube, _c.peek_delayed())

    async def peek_buried(self, tube: str) -> AsyncMessage | None:
        """A buried job of ``tube`` (the first server's, in the order given, that has one), or None."""
        return await self._peek(tube, _c.peek_buried())

    async def _peek(self, tube: str, peek: Request[Job | None]) -> AsyncMessage | None:
        """``peek`` (of the used tube) on each server in turn, sent to ``tube`` with its ``use`` in one
        hold of the producer connection (a concurrent task's ``use`` cannot come between)."""
        _c.TUBE_RULE.check("tube", tube)
        errors: list[tuple[_Server, BaseException]] = []
        answered = False
        available = self._available()
        for servers in (available, self._rest(available)):  # those in their backoff only if none answered
            for server in servers:
                try:
                    client = await self._producer(server)
                    message = client._message_or_none(await client._execute(peek, tube))
                except SocketError as exc:
                    self._down(server, exc)
                    errors.append((server, exc))
                    continue
                self._reached(server)
                answered = True
                if message is not None:
                    return message
            if answered:
                break
        if not answered:  # no server could be asked: None would say there is no such job
            raise self._no_server(f"peek of {tube!r}", errors)
        return None

    # -- closing -----------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection (jobs still reserved by them go back to ready)."""
        for server in self._servers:
            clients, server.clients, server.idle, server.producer = server.clients, [], [], None
            for client in clients:
                await client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        up = sum(s.up for s in self._servers)
        return f"<{type(self).__name__} {up}/{len(self._servers)} up: {', '.join(self.urls)}>"


def _check_key(key: object) -> str | None:
    if key is None or isinstance(key, str):
        return key
    raise ArgumentTypeError("key", key, f"must be a str or None, not {type(key).__name__}")


def _unknown(what: str, server: _Server, exc: SocketError) -> SocketError:
    """The error for a command written to ``server`` whose reply was lost: it may have run; never resent."""
    error = SocketError(f"{what} to {server.url}: outcome unknown (not resent): {exc}", maybe_executed=True)
    error.__cause__ = exc
    return error


def _refused(result: object) -> TypeGuard[Draining | OutOfMemory]:
    """Whether a put's result is a definite refusal (``DRAINING``, ``OUT_OF_MEMORY``): nothing stored, so
    it may go to another server. Not when a ``use`` sent for it was refused but the put itself ran, in
    the tube in force (the error's ``outcome`` is the job stored there)."""
    return isinstance(result, (Draining, OutOfMemory)) and result.outcome is None
