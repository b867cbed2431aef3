# Derived by `python -m codegen` from src/beanstalkm/_async/worker.py (sha256 2a8bc2cd07f4c49131b1d5b27c9cfed40423cd43e815231710e4d508f222df28). DO NOT EDIT; edit the source and run `make generate`.
"""The worker: handlers per tube, run with retries, a lease keeper and a graceful shutdown.

The sync flavour, derived from the asyncio source by ``python -m codegen``.
"""

from __future__ import annotations

__all__ = ["Worker"]

import contextlib
import dataclasses
import functools
import logging
import math
import random
import signal
import time
from collections.abc import Callable, Sequence
from ssl import SSLContext
from typing import Any, TypeVar

from beanstalkm._core.base import DEFAULT_HOST, DEFAULT_PORT, MAX_TIMEOUT, check_ssl
from beanstalkm._core.checks import check_bool, check_host, check_path, check_seconds, check_uint
from beanstalkm._core.requests import Request
from beanstalkm._core.urls import default_urls, parse_urls
from beanstalkm._core.worker import (
    Backoff,
    BuryJob,
    DurationStats,
    FailureReason,
    FailureRecord,
    HandlerOptions,
    LeaseLost,
    Lookahead,
    RetryAfter,
    WorkerStats,
    attempts_of,
    backoff_delay,
    slot_failed,
    take_steps,
)
from beanstalkm._errors import (
    ArgumentTypeError,
    BeanstalkmException,
    CommandFailed,
    CorruptJob,
    InvalidArgument,
    InvalidEnvelope,
    ProtocolError,
    SocketError,
    UnexpectedResponse,
)
from beanstalkm._generated import commands as _c
from beanstalkm._generated.errors import Buried, DeadlineSoon, JobTooBig, NotFound, TimedOut
from beanstalkm._generated.stats import JobStats
from beanstalkm._sync.client import Client
from beanstalkm._sync.cluster import Cluster
from beanstalkm._sync.connection import converse_all
from beanstalkm._sync.failures import delete_record, find_record, list_records, store_record
from beanstalkm._sync.message import Message
from beanstalkm._transport import threads
from beanstalkm._transport.sockets import new_lock

Handler = Callable[[Message], None]
"""A tube's handler: ``def handle(message) -> None``."""

H = TypeVar("H", bound=Handler)
Source = str | Sequence[str] | Client | Cluster | Callable[[], Client] | None
"""Where the slots' connections come from (see ``Worker``)."""

logger = logging.getLogger("beanstalkm.worker")

POLL = 5.0
"""The longest a slot's blocking reserve waits before it looks again (a stop cuts it short)."""
CONNECT_TIMEOUT = 10.0
"""The slots' connection timeout (connecting, each write, each wait for a reply) unless given."""
RECONNECT_PAUSE = (0.05, 2.0)
"""A slot whose connection failed waits this long before trying again, doubling up to the second figure."""
KEEPER_IDLE = 1.0
"""The longest the lease keeper (``run``'s own task or thread, while the slots run) sleeps: it wakes when
the next running job's touch is due (at half its TTR), or when a job starts whose touch is due sooner."""
LIMIT_PAUSE = 0.02
"""How long a slot waits when every tube is at its limit."""
HANDED_BACK_KEPT = 4096
"""How many jobs handed back by a slot's cut-short waits the worker remembers (the oldest forgotten first)."""
LANES_WAIT = 1
"""How long (seconds) a slot of several servers waits on all of them at once before it sweeps again."""
TOUCH_LEAST = 0.1
"""The least a touch is given for its answer (asyncio), even when the job's time left is less: beanstalkd
still takes a touch that comes a moment past the deadline, before its next tick times the job out."""
TOUCH_RETRY = (0.05, 1.0)
"""A touch the server refused is tried again after an eighth of the job's TTR, within these bounds (s)."""
LOST = (SocketError, ProtocolError)
"""What ends a slot's connection: it failed, or a reply broke the protocol (the client drops the connection
for that, so the server takes back what it held, as for a lost one). Both count as ``connection_errors``;
neither ends the slot. (``CorruptJob``, a damaged job, is framed: a reserve hands it to the slot to bury.)"""
REFUSED = (CommandFailed, UnexpectedResponse)
"""A server's framed refusal of a slot's reserve (``OUT_OF_MEMORY``: beanstalkd could not queue the waiting
reserve; ``INTERNAL_ERROR``; a status the spec does not list): the connection stays in step. Logged at ERROR,
counted in ``connection_errors``; the slot (the lane, of several) waits its reconnect pause and goes on."""
REFUSED_PAUSE = 0.5
"""How long a slot waits after the server refused a job's ``stats-job`` (the job released unrun)."""
_RESERVE_NOW = _c.reserve_with_timeout(0)


@dataclasses.dataclass(slots=True)
class _Job:
    """A job a slot holds: its message, what the server said of it, and who settles it."""

    message: Message
    client: Client  # the connection that reserved it: its settling and its record go there
    stats: JobStats
    options: HandlerOptions
    attempts: int
    record: FailureRecord | None
    next_touch: float
    running: bool = True  # the handler has not returned (the keeper touches only then)
    claimed: bool = False  # settled, or being settled, by the slot or the shutdown: nobody else may
    lost: bool = False
    started: float = 0.0
    touching: bool = False  # a touch of it is in flight (in a task or thread of its own)
    expires: float = 0.0  # when its lease ends as this side counts (from its start, then from each touch sent)


_Taken = tuple[Message, JobStats | None, Client]
"""A reserved job, its stats (None if they are still to be asked), and the connection that reserved it."""


@dataclasses.dataclass(slots=True)
class _Lane:
    """One connection of a slot, to one server: what it watches, its lookahead, its pause while down."""

    address: str  # its server's URL
    make: Callable[[], Client]
    opened: Client | None = None  # its connection, once made
    watching: frozenset[str] = frozenset({"default"})
    tubes: tuple[str, ...] = ("default",)  # the tubes of the last reserve (watching, in order)
    unsure: bool = False  # a conversation failed midway: the next reserve sets the whole watch list
    ahead: dict[str, Lookahead] = dataclasses.field(default_factory=dict)  # by tube: its next reserve's likely job
    down_until: float = 0.0  # a lane whose server failed is left alone until then (several lanes only)
    pause: float = RECONNECT_PAUSE[0]

    @property
    def client(self) -> Client:
        """Its connection, made on first use (the sync flavour connects then: ``SocketError`` if its server
        is down; a later use tries again)."""
        if self.opened is None:
            self.opened = self.make()
        return self.opened


class _Slot:
    """One concurrent consumer: its connections (one per server of its share), the job it holds, and
    what it claimed."""

    __slots__ = ("claims", "error", "finished", "index", "job", "lanes", "lock", "reserving", "task", "ticket", "turn")

    def __init__(self, index: int, lanes: list[_Lane]) -> None:
        self.index = index
        self.lanes = lanes
        self.turn = 0  # which lane a sweep asks first (each in turn: no server starves)
        self.lock = new_lock()  # held to settle or touch its job: one at a time, never on a new connection
        self.claims: tuple[str, ...] = ()
        self.ticket = False  # one of max_jobs, taken before reserving
        self.reserving = False  # in a blocking reserve (a stop cuts it short)
        self.job: _Job | None = None
        self.finished = False
        self.error: Exception | None = None  # what ended it, if not a stop or the end of a burst
        self.task: threads.Task | None = None


class Worker:
    """Consume jobs: a handler per tube, ``concurrency`` slots, each with its own connection.

    ``source`` says where the slots' connections come from: a server URL or a list of them (or a
    comma-separated str), an :class:`Cluster` (its servers), an :class:`Client` (each slot
    opens a connection like it: the client itself is not used), or a callable returning a new
    connected ``Client`` per slot; with several servers the slots take them in turn, each slot
    its own connection to one. ``None``: ``host``/``port``/``unix_socket`` if given, else
    ``BEANSTALKD_URL``, else ``beanstalk://127.0.0.1:11300``. ``timeout`` and ``validate`` apply to
    the connections the worker opens, and ``ssl`` (an ``ssl.SSLContext``) to its ``beanstalks://`` ones
    (``InvalidArgument`` beside a client, cluster or callable source: those bring their own). ``grace``
    is how long a stop lets running handlers finish before their jobs are released.

    Delivery is at least once: a job is deleted only after its handler returns. A handler that
    raises has its job released (its own priority, a ``backoff`` delay) until its attempts, counted
    from the server's ``reserves``, pass ``retries + 1``; then the job is buried (own priority) with a
    :class:`FailureRecord`. ``RetryAfter(seconds)`` asks for a given delay, ``BuryJob(reason)`` for a
    bury at once. Hooks (``on_success``, ``on_failure``, ``on_retry``, ``on_bury``,
    ``on_lease_lost``) are plain functions, called in the slot, kept quick; one that raises is
    logged and counted (``stats.hook_errors``).
    """

    def __init__(
        self,
        source: Source = None,
        *,
        concurrency: int = 1,
        grace: float = 30.0,
        host: str | None = None,
        port: int | None = None,
        unix_socket: str | None = None,
        timeout: float | None = CONNECT_TIMEOUT,
        validate: bool | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        self._tls = check_ssl("ssl", ssl)  # the TLS context of the worker's own URLs (and host/port)
        self._handlers: dict[str, tuple[HandlerOptions, Handler]] = {}
        self._hooks: dict[str, list[Callable[..., object]]] = {
            name: [] for name in ("success", "failure", "retry", "bury", "lease_lost")
        }
        self._named = host is not None or port is not None or unix_socket is not None
        self._host = DEFAULT_HOST if host is None else check_host("host", host)
        self._port = DEFAULT_PORT if port is None else check_uint("port", port, 1, 65535)
        self._unix_socket = None if unix_socket is None else check_path("unix_socket", unix_socket)
        self._timeout = check_seconds("timeout", timeout, MAX_TIMEOUT)
        self._validate = None if validate is None else check_bool("validate", validate)
        self.configure(source=source, concurrency=concurrency, grace=grace)
        self._mutex = threads.new_mutex()
        self._stats = WorkerStats()
        self._rng = random.Random()
        self._stopping = threads.new_event()
        self._now = threads.new_event()
        self._wake = threads.new_event()
        self._keeper_at = 0.0  # when the lease keeper wakes next (a job due sooner wakes it)
        self._running: dict[str, int] = {}
        self._claimed: dict[str, int] = {}
        self._tickets: int | None = None
        self._rotation = 0
        self._names: tuple[str, ...] = ()
        self._aheads: dict[tuple[int, str], dict[str, Lookahead]] = {}  # by slot and server: kept across runs
        self._limited = False
        self._slots: list[_Slot] = []
        self._touches: list[tuple[threads.Task, _Job]] = []  # the touches in flight, each in its own task or thread
        self._handed_back: dict[tuple[str, int], int] = {}  # (server, job id): reserves of waits cut short

    def configure(
        self,
        *,
        source: Source = None,
        concurrency: int | None = None,
        grace: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """Change the source, the concurrency, the grace or the connections' timeout before ``run``
        (``None`` keeps each as it is)."""
        if timeout is not None:
            self._timeout = check_seconds("timeout", timeout, MAX_TIMEOUT)
        if source is not None or not hasattr(self, "_source"):
            self._urls: list[str] | None = None
            self._source: Client | Callable[[], Client] | None = None
            self._ssl: SSLContext | None = self._tls
            if self._tls is not None and source is not None and not isinstance(source, (str, list, tuple)):
                raise InvalidArgument(
                    "ssl",
                    self._tls,
                    f"is for the worker's own URLs: a source that makes its connections ({type(source).__name__})"
                    " brings its own TLS context",
                )
            if isinstance(source, Cluster):  # each slot a connection to one of its servers, in turn
                self._urls = source.urls
                self._timeout, self._validate, self._ssl = source.timeout, source.validate, source.ssl
            elif isinstance(source, (str, list, tuple)):
                self._urls = self._tls_checked([str(url) for url in parse_urls(source, "source")])
            elif source is None or isinstance(source, Client) or callable(source):
                self._source = source
            else:
                raise ArgumentTypeError(
                    "source",
                    source,
                    "must be None, a URL or a list of URLs, a client (Client), a cluster (Cluster),"
                    " or a callable returning a new client",
                )
        if concurrency is not None:
            self.concurrency = check_uint("concurrency", concurrency, 1, 4096)
        if grace is not None:
            if isinstance(grace, bool) or not isinstance(grace, (int, float)):
                raise ArgumentTypeError("grace", grace, f"must be a number of seconds, not {type(grace).__name__}")
            if not 0 <= grace <= MAX_TIMEOUT:  # NaN is refused too
                raise InvalidArgument("grace", grace, f"must be from 0 to {MAX_TIMEOUT} seconds")
            self.grace = float(grace)

    # -- registration ----------------------------------------------------------

    def handler(
        self, tube: str, *, retries: int = 3, backoff: Backoff = None, limit: int | None = None
    ) -> Callable[[H], H]:
        """Register the decorated function as ``tube``'s handler.

        ``retries``: attempts after the first (the job is buried once its attempts pass
        ``retries + 1``); ``backoff``: None (exponential with jitter: about 1, 2, 4, ... s, at most an
        hour), a list of delays in seconds (the last repeats), or ``f(attempt) -> seconds``;
        ``limit``: at most this many of the tube's jobs at once (None: up to ``concurrency``).
        """
        options = HandlerOptions.checked(tube, retries, backoff, limit)
        if options.tube in self._handlers:
            raise InvalidArgument("tube", tube, "already has a handler")

        def register(function: H) -> H:
            if not callable(function):
                raise ArgumentTypeError("handler", function, "must be a callable taking the message")
            self._handlers[options.tube] = (options, function)
            return function

        return register

    def on_success(self, hook: Callable[[Message], object]) -> Callable[[Message], object]:
        """Register ``hook(message)``: called once a job's handler returned and the job was deleted."""
        self._hooks["success"].append(hook)
        return hook

    def on_failure(
        self, hook: Callable[[Message, BaseException], object]
    ) -> Callable[[Message, BaseException], object]:
        """Register ``hook(message, exc)``: called when a handler raised (before the retry or bury)."""
        self._hooks["failure"].append(hook)
        return hook

    def on_retry(
        self, hook: Callable[[Message, BaseException, int], object]
    ) -> Callable[[Message, BaseException, int], object]:
        """Register ``hook(message, exc, delay)``: called once a failed job was released for a retry."""
        self._hooks["retry"].append(hook)
        return hook

    def on_bury(
        self, hook: Callable[[Message | None, FailureRecord], object]
    ) -> Callable[[Message | None, FailureRecord], object]:
        """Register ``hook(message, record)``: called once a job was buried with its record (``message``
        is None for a job whose body could not even be read)."""
        self._hooks["bury"].append(hook)
        return hook

    def on_lease_lost(self, hook: Callable[[Message, LeaseLost], object]) -> Callable[[Message, LeaseLost], object]:
        """Register ``hook(message, error)``: called when a running job is found no longer ours."""
        self._hooks["lease_lost"].append(hook)
        return hook

    @property
    def tubes(self) -> list[str]:
        """The tubes that have handlers, in the order they were registered."""
        return list(self._handlers)

    @property
    def stats(self) -> WorkerStats:
        """A snapshot of the counters and handler durations."""
        with self._mutex:
            return self._stats.snapshot()

    # -- connections -----------------------------------------------------------

    def _connect_lanes(self, index: int) -> list[tuple[str, Callable[[], Client]]]:
        """Slot ``index``'s connections, each as its server's URL and how to make it: one per server of its
        share (docs/worker.md, "Fewer slots than servers")."""
        urls = self._server_urls()
        if urls is not None and len(urls) <= self.concurrency:  # one server: made (connected) in _open_slots
            url = urls[index % len(urls)]
            return [(url, functools.partial(self._from_url, url))]
        if urls is None:
            client = self._connect(index)
            return [(client.url, lambda: client)]
        return [(url, functools.partial(self._from_url, url)) for url in urls[index :: self.concurrency]]

    def _server_urls(self) -> list[str] | None:
        """The URLs of the servers the worker consumes; None when its connections come from a client, a
        callable, or ``host``/``port``/``unix_socket`` (one kind of connection, which ``_connect`` makes)."""
        if self._urls is not None:
            return self._urls
        return self._tls_checked(default_urls()) if self._source is None and not self._named else None

    def _tls_checked(self, urls: list[str]) -> list[str]:
        """``urls``; ``InvalidArgument`` if the worker was given ``ssl=`` and none of them is TLS (as a
        cluster's and a connection's ``ssl=``: a context that nothing would use is a mistake to say)."""
        if self._tls is not None and not any(url.startswith("beanstalks://") for url in urls):
            raise InvalidArgument("ssl", self._tls, f"no server URL is beanstalks:// (TLS): {', '.join(urls)}")
        return urls

    def _from_url(self, url: str) -> Client:
        """A new connection to ``url`` with the worker's settings (a cluster's TLS context for ``beanstalks://``)."""
        ssl = self._ssl if url.startswith("beanstalks://") else None
        return Client.from_url(url, timeout=self._timeout, validate=self._validate, ssl=ssl)

    def _connect(self, index: int) -> Client:
        """A new connection for slot ``index``: the URLs (or the cluster's servers) are taken in turn."""
        urls = self._server_urls()
        if urls is not None:
            return self._from_url(urls[index % len(urls)])
        source = self._source
        if source is None or isinstance(source, Client):  # a client is copied: its TLS context, its reply limit
            host, port, timeout, unix_socket, validate, ssl = (
                (self._host, self._port, self._timeout, self._unix_socket, self._validate, self._tls)
                if source is None
                else (source.host, source.port, source.timeout, source.unix_socket, source.validate, source.ssl)
            )
            limit = _c.BODY_MAX if source is None else source._max_body
            return Client(host, port, timeout, unix_socket=unix_socket, validate=validate, max_body=limit, ssl=ssl)
        client = source()
        if not isinstance(client, Client):
            raise ArgumentTypeError("source", source, f"must return a client (Client), not {type(client).__name__}")
        return client

    def failures(self, tube: str) -> list[FailureRecord]:
        """The failure records of ``tube``'s buried jobs, by job id, each with its job's ``state`` now
        and its ``server``: every server the worker consumes, in their order (a server that cannot be
        reached raises ``SocketError``, never a silent part of the answer)."""
        urls = self._server_urls()
        makers: list[Callable[[], Client]] = (
            [functools.partial(self._connect, 0)]
            if urls is None
            else [functools.partial(self._from_url, u) for u in urls]
        )
        records: list[FailureRecord] = []
        for make in makers:
            client = make()
            try:
                records += [dataclasses.replace(r, server=client.url) for r in list_records(client, tube)]
            finally:
                client.close()
        return records

    # -- running ---------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Stop: reserve no more, let running handlers finish within ``grace``, release the rest.

        A second call (or ``now=True``) releases the running jobs at once. Call it from any thread or a
        signal handler.
        """
        if now or self._stopping.is_set():
            self._now.set()
        self._stopping.set()
        self._wake.set()

    def _on_signal(self, signum: signal.Signals) -> None:
        again = self._stopping.is_set()
        logger.warning(
            "%s: %s",
            signum.name,
            "releasing the running jobs now" if again else f"stopping; running handlers have {self.grace:g} s",
        )
        self.stop(now=again)

    def run(self, *, burst: bool = False, max_jobs: int | None = None, handle_signals: bool = True) -> WorkerStats:
        """Consume until stopped (``stop()``, SIGTERM or SIGINT), then shut down gracefully.

        ``burst``: stop once no job is ready. ``max_jobs``: stop after taking that many jobs.
        ``handle_signals``: install SIGTERM and SIGINT handlers while running (main thread only).
        Raises ``SocketError`` if no slot can connect at the start; a slot that ends on an exception (a
        bug: what the servers do is handled) stops the worker and ``run`` raises it once the others are
        shut down. Returns the final stats.
        """
        check_bool("burst", burst)
        check_bool("handle_signals", handle_signals)
        if max_jobs is not None:
            max_jobs = check_uint("max_jobs", max_jobs, 1, 2**63)
        if not self._handlers:
            raise InvalidArgument("handlers", {}, "register a handler (worker.handler(tube)) before run()")
        self._stopping.clear()
        self._now.clear()
        self._tickets = max_jobs
        self._running = dict.fromkeys(self._handlers, 0)
        self._names = tuple(self._handlers)
        self._limited = any(options.limit is not None for options, _ in self._handlers.values())
        self._claimed = dict.fromkeys(self._handlers, 0)
        slots = self._open_slots()
        self._slots = slots
        restore = threads.install_signals((signal.SIGTERM, signal.SIGINT), self._on_signal) if handle_signals else None
        logger.info(
            "worker started: %d slot(s) on %s, tubes %s",
            len(slots),
            ", ".join(dict.fromkeys(lane.address for slot in slots for lane in slot.lanes)),
            ", ".join(self._handlers),
        )
        try:
            for slot in slots:
                slot.task = threads.spawn(
                    functools.partial(self._slot_main, slot, burst), f"beanstalkm-slot-{slot.index}"
                )
            while True:  # this task (thread) is the lease keeper while the slots run
                self._wake.clear()
                if self._stopping.is_set() or all(slot.finished for slot in slots):
                    break
                now = time.monotonic()
                self._keeper_at = min(
                    [now + KEEPER_IDLE, *(job.next_touch for _, job in self._leases() if not job.touching)]
                )
                threads.wait_event(self._wake, max(0.005, self._keeper_at - now))
                self._keep_leases()
            if self._stopping.is_set():
                self._shut_down(slots)
        finally:
            if restore is not None:
                restore()
            self._join_touches()
        logger.info("worker stopped: %s", _counters(self._stats))
        for slot in slots:
            if slot.error is not None:
                raise slot_failed(slot.error, slot.index)
        return self.stats

    def _open_slots(self) -> list[_Slot]:
        """Connect every slot: each starts with the servers it reaches, the others (all of a slot's, for a
        slot of one server) tried again after the usual pause; ``SocketError`` if no slot reaches any."""
        slots: list[_Slot] = []
        downs: list[tuple[_Slot, _Lane, SocketError]] = []
        reached = False
        try:
            for index in range(self.concurrency):
                slot = _Slot(index, [_Lane(address, make) for address, make in self._connect_lanes(index)])
                slots.append(slot)
                for lane in slot.lanes:  # a lane's guesses carry over to the next run (each is checked)
                    lane.ahead = self._aheads.setdefault((index, lane.address), lane.ahead)
                for lane in slot.lanes:
                    try:
                        lane.client.connect()
                        reached = True
                    except SocketError as exc:
                        downs.append((slot, lane, exc))
            if not reached:
                raise downs[0][2]
            for slot, lane, error in downs:
                self._lane_down(slot, lane, error)
        except BaseException:
            for slot in slots:
                self._close_lanes(slot)
            raise
        return slots

    def _close_lanes(self, slot: _Slot) -> None:
        for lane in slot.lanes:
            if lane.opened is not None:
                with contextlib.suppress(BeanstalkmException):
                    lane.opened.close()

    def _lane_down(self, slot: _Slot, lane: _Lane, exc: BaseException) -> None:
        """A lane of a slot of several servers failed: the others go on; it is tried again after a pause."""
        self._count("connection_errors")
        lane.unsure = True
        lane.down_until = time.monotonic() + lane.pause
        logger.warning("slot %d: %s: %s; trying it again in %.2f s", slot.index, lane.address, exc, lane.pause)
        lane.pause = min(lane.pause * 2, RECONNECT_PAUSE[1])

    def _shut_down(self, slots: list[_Slot]) -> None:
        """Interrupt the waiting reserves, let the handlers finish within the grace, release the rest."""
        deadline = time.monotonic() + self.grace
        while True:
            self._interrupt_reserves(slots)
            if all(slot.finished for slot in slots):
                return
            left = deadline - time.monotonic()
            if left <= 0 or self._now.is_set():
                break
            threads.wait_event(self._now, min(left, 0.05))
            self._keep_leases()  # the running handlers keep their leases through the grace
        for slot in slots:
            job = slot.job
            if job is not None and not slot.finished:
                self._release_unfinished(slot, job)
        for slot in slots:
            if slot.task is not None and not slot.finished:
                self._interrupt_reserves([slot])
                if not threads.join(slot.task, 0.2):
                    threads.abandon(slot.task)
                    threads.join(slot.task, 1.0)

    def _interrupt_reserves(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.reserving and not slot.finished:
                for lane in slot.lanes:  # cuts a waiting reserve short: the server keeps its job
                    if lane.opened is not None:
                        lane.opened.close()

    def _release_unfinished(self, slot: _Slot, job: _Job) -> None:
        with slot.lock:
            if job.claimed:
                return
            job.claimed = True
            message = job.message
            if not message.reserved:
                return
            try:
                message.release()  # its own priority, no delay
            except (NotFound, *LOST, *REFUSED) as exc:
                logger.warning("job %d (%s): release at shutdown failed: %s", message.uid, job.options.tube, exc)
                return
        self._count("released")
        logger.warning(
            "job %d (%s): released unfinished after the %g s grace", message.uid, job.options.tube, self.grace
        )

    # -- a slot ----------------------------------------------------------------

    def _slot_main(self, slot: _Slot, burst: bool) -> None:
        done: _Job | None = None  # the handler returned: its delete goes with the next reserve
        pause = RECONNECT_PAUSE[0]
        try:
            while True:
                tubes = self._claim(slot)
                if not tubes:  # None: stop; (): every tube at its limit
                    if done is not None:
                        self._delete(done)
                        done = None
                    if tubes is None:
                        break
                    threads.wait_event(self._stopping, LIMIT_PAUSE)
                    continue
                try:
                    taken = self._take(slot, tubes, done, burst)
                    pause = RECONNECT_PAUSE[0]
                except (*LOST, *REFUSED) as exc:  # a delete sent with it was told unconfirmed (or done) already
                    self._unclaim(slot)
                    done = None
                    if self._stopping.is_set():
                        break
                    self._count("connection_errors")
                    if isinstance(exc, REFUSED):  # the server's doing, not a bug: the slot goes on
                        logger.error(
                            "slot %d: the server refused its reserve (%s); trying again in %.2f s",
                            slot.index,
                            exc,
                            pause,
                        )
                    else:
                        logger.warning("slot %d: %s; trying again in %.2f s", slot.index, exc, pause)
                    threads.wait_event(self._stopping, pause)
                    pause = min(pause * 2, RECONNECT_PAUSE[1])
                    continue
                done = None
                if not isinstance(taken, tuple):
                    self._unclaim(slot)
                    if taken is None and burst and not self._stopping.is_set():
                        logger.info("slot %d: no job ready (burst): done", slot.index)
                        break
                    continue
                done = self._handle(slot, *taken)
        except Exception as exc:  # not a server's doing (those are handled): the worker stops, run() raises it
            logger.exception("slot %d failed; the worker stops", slot.index)
            slot.error = exc
            self.stop()
        finally:
            self._unclaim(slot)
            slot.finished = True
            slot.job = None
            self._wake.set()
            self._close_lanes(slot)

    def _claim(self, slot: _Slot) -> tuple[str, ...] | None:
        """The tubes this slot may reserve from now (claimed: per-tube limits hold), in the order to try
        them; ``()`` if every tube is at its limit; None to stop (stopping, or ``max_jobs`` taken)."""
        with self._mutex:
            if self._stopping.is_set():
                return None
            if not slot.ticket and self._tickets is not None:
                if self._tickets <= 0:
                    return None
                self._tickets -= 1
                slot.ticket = True
            names = self._names
            if len(names) > 1:
                self._rotation = (self._rotation + 1) % len(names)
                names = names[self._rotation :] + names[: self._rotation]
            if not self._limited:  # no tube has a limit: nothing to count
                return names
            eligible = tuple(
                tube
                for tube in names
                if (limit := self._handlers[tube][0].limit) is None or self._running[tube] + self._claimed[tube] < limit
            )
            for tube in eligible:
                self._claimed[tube] += 1
            slot.claims = eligible
            return eligible

    def _unclaim(self, slot: _Slot) -> None:
        with self._mutex:
            for tube in slot.claims:
                self._claimed[tube] -= 1
            slot.claims = ()
            if slot.ticket:
                slot.ticket = False
                if self._tickets is not None:
                    self._tickets += 1

    def _take(self, slot: _Slot, tubes: tuple[str, ...], done: _Job | None, burst: bool) -> _Taken | bool | None:
        """Reserve a job from ``tubes`` (sending ``done``'s delete first): its message and stats, True
        when a job whose body cannot be used was buried, or None (nothing, or a stop).

        A slot of several servers sweeps them from a rotating start (no server starves), skipping one
        that failed until its pause is over, and waits on all of them at once when none has a job."""
        lanes = slot.lanes
        if len(lanes) == 1 and lanes[0].down_until > time.monotonic():  # its server was down at the start
            if burst:
                return None
            threads.wait_event(self._stopping, lanes[0].down_until - time.monotonic())
            lanes[0].down_until = 0.0  # from now on a failure takes the slot's own reconnect pause
            return None
        if len(lanes) > 1:
            now = time.monotonic()
            start = slot.turn % len(lanes)
            slot.turn += 1
            lanes = [lane for lane in lanes[start:] + lanes[:start] if lane.down_until <= now]
            if done is not None and (not lanes or lanes[0].opened is not done.client):
                self._delete(done)  # on its own connection: the next reserve goes to another
                done = None
        polls = [tubes] if len(tubes) == 1 else [(tube,) for tube in tubes]
        for lane in lanes:
            for group in polls:
                try:
                    taken = self._reserve(slot, lane, group, done, 0)
                except (*LOST, *REFUSED) as exc:
                    if len(slot.lanes) == 1:
                        raise
                    self._lane_down(slot, lane, exc)
                    break
                finally:
                    done = None
                lane.pause = RECONNECT_PAUSE[0]
                if taken is not None:
                    return taken
        if burst:
            return None
        if not lanes:  # every server of the slot is down: wait for the first to be tried again
            pause = min(lane.down_until for lane in slot.lanes) - time.monotonic()
            threads.wait_event(self._stopping, max(0.0, pause))
            return None
        slot.reserving = True
        try:
            if self._stopping.is_set():
                return None
            if len(slot.lanes) == 1:
                return self._reserve(slot, lanes[0], tubes, None, POLL)
            return self._wait_lanes(slot, lanes, tubes)
        except LOST:
            if self._stopping.is_set():
                return None  # cut short by the stop: the server kept (or got back) its job
            raise
        finally:
            slot.reserving = False

    def _watch_change(self, lane: _Lane, tubes: tuple[str, ...]) -> Sequence[Request[Any]]:
        """The watches and ignores that make ``lane`` watch ``tubes`` (all of them, if it is unsure)."""
        if tubes == lane.tubes and not lane.unsure:
            return []
        wanted = frozenset(tubes)
        watching = lane.watching if not lane.unsure else frozenset(self._names) | {"default"}
        watch = wanted if lane.unsure else wanted - watching
        return [_c.watch(tube) for tube in sorted(watch)] + [_c.ignore(tube) for tube in sorted(watching - wanted)]

    def _reserve(
        self, slot: _Slot, lane: _Lane, tubes: tuple[str, ...], done: _Job | None, timeout: float
    ) -> _Taken | bool | None:
        """One reserve on ``lane`` (with ``done``'s delete before it): the job and its stats, True when a
        job whose body cannot be used was buried, or None (nothing within ``timeout``)."""
        client = lane.client
        delete = None
        if done is not None:
            if done.message.reserved:
                delete = _c.delete(done.message.uid)
            else:
                self._lose(done, "the connection that reserved it was lost before its delete")
                done = None
        reserve = _RESERVE_NOW if timeout == 0 else _c.reserve_with_timeout(int(timeout))
        changes = tubes != lane.tubes or lane.unsure
        before = self._watch_change(lane, tubes) if changes else ()
        requests = (reserve,) if delete is None else (delete, reserve)
        to_message = client._reserved_message  # looked up once, out of the conversation
        ahead = None
        if timeout == 0 and len(tubes) == 1:  # the lookahead: the guess of the one tube's next job
            ahead = lane.ahead.get(tubes[0])
            if ahead is None:
                ahead = lane.ahead[tubes[0]] = Lookahead(tubes[0])
            elif ahead.off:
                ahead = None
            elif ahead.rest:  # it kept missing: a rest from guessing
                ahead.rest -= 1
                ahead = None
        stats: JobStats | None
        outcome: object
        try:
            deleted, outcome, stats = client._converse(
                lambda session, reader: take_steps(session, reader, delete, reserve, to_message, ahead, before),
                requests,
            )
        except LOST as exc:
            lane.unsure = True
            if done is not None:
                self._delete_unknown(done, exc)
            raise
        if changes:
            lane.watching, lane.tubes, lane.unsure = frozenset(tubes), tubes, False
        if done is not None:
            self._deleted(done, deleted)
        if isinstance(outcome, Message):
            return outcome, stats, client
        return self._taken(client, outcome, stats)

    def _wait_lanes(self, slot: _Slot, lanes: list[_Lane], tubes: tuple[str, ...]) -> _Taken | bool | None:
        """Wait up to ``LANES_WAIT`` for a job on every lane at once: the first job (the others' waits
        are cut short, their connections dropped: a job one of them had just reserved goes back)."""
        reserve = _c.reserve_with_timeout(int(LANES_WAIT))
        opened: list[_Lane] = []
        for lane in lanes:
            try:
                lane.client  # noqa: B018 - made (and, in the sync flavour, connected) here: a failure is the lane's
            except LOST as exc:
                self._lane_down(slot, lane, exc)
                continue
            opened.append(lane)
        lanes = opened
        if not lanes:
            return None
        starts = [  # each lane's watch-list change and a waiting reserve (no lookahead)
            functools.partial(
                take_steps,
                delete=None,
                reserve=reserve,
                to_message=lane.client._reserved_message,
                before=self._watch_change(lane, tubes),
                with_stats=False,  # each waits for its reserve's reply only: a job raced in the cut is seen
            )
            for lane in lanes
        ]

        def first(i: int, result: object) -> bool:
            return isinstance(result, tuple) and result[1] is not None

        handed: list[tuple[int, int]] = []
        clients = [lane.client for lane in lanes]
        results, raced = converse_all(clients, starts, [(reserve,)] * len(lanes), first, raced_ids=handed)
        if raced:
            logger.info("slot %d: %d job(s) reserved by another server's wait were handed back", slot.index, raced)
            with self._mutex:  # each counted a reserve on the server that was no attempt: not against its budget
                for i, job_id in handed:
                    key = (clients[i].url, job_id)
                    self._handed_back[key] = self._handed_back.pop(key, 0) + 1
                while len(self._handed_back) > HANDED_BACK_KEPT:
                    del self._handed_back[next(iter(self._handed_back))]
        taken: tuple[Client, object, JobStats | None] | None = None
        for lane, result in zip(lanes, results, strict=True):
            if isinstance(result, tuple):
                lane.watching, lane.tubes, lane.unsure = frozenset(tubes), tubes, False
                if taken is None and result[1] is not None:
                    taken = (lane.client, result[1], result[2])
            elif isinstance(result, LOST) and not self._stopping.is_set():
                self._lane_down(slot, lane, result)
            else:  # cut short (its connection dropped: by the stop, no failure), or an error to no command
                lane.unsure = True
                if isinstance(result, BaseException) and taken is None:
                    taken = (lane.client, result, None)
        if taken is None:
            return None
        return self._taken(*taken)

    def _taken(self, client: Client, outcome: object, stats: JobStats | None) -> _Taken | bool | None:
        """What a reserve on ``client`` got: the job and its stats; True when a job whose body cannot be
        used was buried; None for nothing; the error raised for anything else."""
        if isinstance(outcome, Message):
            return outcome, stats, client
        if isinstance(outcome, InvalidEnvelope):
            message = outcome.message
            if isinstance(message, Message):
                self._bury_unreadable(client, message.uid, message, f"invalid envelope: {outcome.reason}")
            return True
        if isinstance(outcome, CorruptJob):
            self._bury_unreadable(client, outcome.job_id, None, str(outcome))
            return True
        if isinstance(outcome, BaseException) and not isinstance(outcome, (TimedOut, DeadlineSoon)):
            raise outcome
        return None  # nothing reserved

    def _handle(self, slot: _Slot, message: Message, stats: JobStats | None, client: Client) -> _Job | None:
        """Run a reserved job's handler and settle it; the job, if its delete is still to be sent."""
        record = None
        try:
            if stats is None:
                stats = message.stats()
            if stats is not None and stats.kicks and stats.tube in self._handlers:  # kicked: its record counts
                record = find_record(client, stats.tube, message.uid)
        except NotFound:
            stats = None
        except LOST as exc:  # the job went back with the connection: a later reserve has it again
            self._unclaim(slot)
            self._count("connection_errors")
            logger.warning("job %d: lost with the connection before it ran: %s", message.uid, exc)
            return None
        except REFUSED as exc:  # its stats (or its record) cannot be read now: back it goes, unrun; the slot pauses
            self._unclaim(slot)
            self._count("connection_errors")
            logger.error(
                "job %d: its stats-job or record lookup was refused (%s); released unrun, trying again in %.2f s",
                message.uid,
                exc,
                REFUSED_PAUSE,
            )
            with contextlib.suppress(NotFound, *LOST, *REFUSED):
                message.release()
            threads.wait_event(self._stopping, REFUSED_PAUSE)
            return None
        if stats is None:  # gone at once (a TTR of 1 s on a slow link)
            self._unclaim(slot)
            return None
        if not message.reserved:  # its connection was dropped meanwhile: the server has the job again
            self._unclaim(slot)
            self._count("connection_errors")
            logger.warning("job %d: its connection was dropped before it ran; it was not run", message.uid)
            return None
        if stats.tube not in self._handlers:  # not ours (a watch list changed by hand): back it goes
            self._unclaim(slot)
            with contextlib.suppress(NotFound, *LOST, *REFUSED):
                message.release()
            return None
        options, function = self._handlers[stats.tube]
        with self._mutex:
            for tube in slot.claims:
                self._claimed[tube] -= 1
            slot.claims = ()
            slot.ticket = False
            self._running[options.tube] += 1
            self._stats.reserved += 1
        try:
            return self._run_job(slot, _Job(message, client, stats, options, 0, record, 0.0), function)
        finally:
            with self._mutex:
                self._running[options.tube] -= 1
            slot.job = None

    def _run_job(self, slot: _Slot, job: _Job, function: Handler) -> _Job | None:
        """Run ``job`` (its attempts and lease set here) and settle it."""
        message, stats, options = job.message, job.stats, job.options
        job.attempts = attempts = self._attempts(job)
        job.started = now = time.monotonic()
        job.next_touch = now + stats.ttr / 2
        job.expires = now + stats.ttr  # later than the server's end (it began at the reserve): never early
        slot.job = job
        if job.next_touch < self._keeper_at:  # due before the keeper wakes: wake it
            self._wake.set()
        if self._stopping.is_set():  # taken as the stop came: hand it back unrun
            job.running = False
            self._hand_back(slot, job)
            return None
        if attempts > options.retries + 1:
            job.running = False
            why = (
                f"reserved {attempts} times (its budget is {options.retries + 1} attempts) without a handler"
                f" finishing: its worker died or lost its connection, or its time to run ran out"
                f" ({stats.timeouts} TTR expiries)"
            )
            self._bury(slot, job, "crashed", None, why)
            return None
        error: BaseException | None = None
        try:
            function(message)
        except Exception as exc:
            error = exc
        except BaseException as exc:  # SystemExit, KeyboardInterrupt, a CancelledError the handler raised itself
            if threads.cancelling():  # the worker's own cancel (past the grace): the slot ends
                raise
            error = exc  # a failure like any other (before, it ended the slot silently: run() returned)
        finally:
            job.running = False
            took = time.monotonic() - job.started
            with self._mutex:
                durations = self._stats.durations.get(options.tube)
                if durations is None:
                    durations = self._stats.durations[options.tube] = DurationStats()
                durations.add(took)
        if error is None:
            return self._succeeded(slot, job)
        self._failed(slot, job, error)
        return None

    def _attempts(self, job: _Job) -> int:
        """The job's attempts: its ``reserves`` (since its record's, if kicked), less those of this worker's
        waits that were cut short with it just reserved (handed back unrun: not an attempt)."""
        counted = attempts_of(job.stats, job.record)
        if not self._handed_back:
            return counted
        with self._mutex:
            handed = self._handed_back.pop((job.client.url, job.stats.id), 0)
        return max(1, counted - handed)

    def _succeeded(self, slot: _Slot, job: _Job) -> _Job | None:
        """The handler returned: the job is deleted (now, or with the next reserve)."""
        with slot.lock:
            if job.claimed:
                return None
            job.claimed = True
        message = job.message
        if not message.reserved:
            if message.deleted:  # the handler deleted it itself
                self._count("succeeded")
                self._hook("success", message)
            else:
                self._lose(job, "it was no longer reserved when its handler returned")
            return None
        if job.lost:  # its lease was lost (a touch unanswered within its time left): the server may hand it on
            return None
        if job.record is not None or self._stopping.is_set():
            self._delete(job)
            return None
        return job

    def _delete(self, job: _Job) -> None:
        message = job.message
        if not message.reserved:
            self._lose(job, "the connection that reserved it was lost before its delete")
            return
        try:
            job.client.queue.delete(message.uid)
        except NotFound as exc:
            self._deleted(job, exc)
            return
        except LOST as exc:
            self._delete_unknown(job, exc)
            return
        self._deleted(job, None)
        if job.record is not None:  # a kicked job that succeeded: its record is done with
            _drop_record(job.client, job.record)

    def _deleted(self, job: _Job, result: object) -> None:
        message = job.message
        if isinstance(result, NotFound):
            message.lease_lost = True
            self._lose(job, "its delete got NOT_FOUND (its time to run ran out)")
            return
        if isinstance(result, BaseException):  # the server refused the delete (out of memory, ...): not done
            logger.error(
                "job %d (%s): its handler returned but its delete failed (%s): it runs again once its time to run"
                " is out",
                message.uid,
                job.options.tube,
                result,
            )
            return
        message.deleted = True
        message.reserved = False
        with self._mutex:
            self._stats.succeeded += 1
        if logger.isEnabledFor(logging.INFO):
            logger.info("job %d (%s) done in %.3f s", message.uid, job.options.tube, time.monotonic() - job.started)
        if self._hooks["success"]:
            self._hook("success", message)

    def _delete_unknown(self, job: _Job, exc: BaseException) -> None:
        self._count("connection_errors")
        logger.warning(
            "job %d (%s): its handler returned but the connection was lost with its delete (%s): it may run again",
            job.message.uid,
            job.options.tube,
            exc,
        )

    def _failed(self, slot: _Slot, job: _Job, error: BaseException) -> None:
        message, options = job.message, job.options
        self._count("failed")
        self._hook("failure", message, error)
        if isinstance(error, BuryJob):
            self._bury(slot, job, "requested", error, error.reason or "the handler asked to bury it")
            return
        if job.attempts > options.retries:
            self._bury(slot, job, "raised", error, f"{type(error).__name__}: {error}")
            return
        if isinstance(error, RetryAfter):
            delay = math.ceil(error.seconds)  # whole seconds, never shorter than asked (as the backoff)
        else:
            try:
                delay = backoff_delay(options.backoff, job.attempts, self._rng)
            except Exception as exc:  # a backoff callable that failed: the default
                logger.error("tube %s: backoff failed (%s); using the default", options.tube, exc)
                delay = backoff_delay(None, job.attempts, self._rng)
        with slot.lock:
            if not self._settles(job, "its handler failed"):
                return
            try:
                message.release(delay=delay)
            except NotFound:
                self._lose(job, "its release got NOT_FOUND (its time to run ran out)")
                return
            except LOST as exc:
                self._count("connection_errors")
                logger.warning("job %d (%s): release failed: %s", message.uid, options.tube, exc)
                return
            except Buried:  # out of memory queueing it again: the server buried it instead (its own priority)
                message.reserved = False
                self._count("buried")
                logger.error(
                    "job %d (%s): its release for a retry was refused: the server buried it (out of memory),"
                    " without a failure record",
                    message.uid,
                    options.tube,
                )
                return
            except REFUSED as exc:  # still reserved by us: it runs again once its time to run is out
                logger.error(
                    "job %d (%s): its release for a retry was refused (%s): it runs again once its time to run is out",
                    message.uid,
                    options.tube,
                    exc,
                )
                return
        self._count("retried")
        logger.warning(
            "job %d (%s) failed (attempt %d of %d), retrying in %d s: %s: %s",
            message.uid,
            options.tube,
            job.attempts,
            options.retries + 1,
            delay,
            type(error).__name__,
            error,
        )
        self._hook("retry", message, error, delay)

    def _bury(self, slot: _Slot, job: _Job, reason: FailureReason, error: BaseException | None, why: str) -> None:
        message, stats = job.message, job.stats
        record = FailureRecord.of(stats, reason, job.attempts, error, why)
        with slot.lock:
            if not self._settles(job, "it was to be buried"):
                return
            try:
                record = _store(job.client, record)
                try:
                    message.bury()  # its own priority
                except NotFound:
                    if record.record_id:
                        job.client.queue.delete(record.record_id)
                    self._lose(job, "its bury got NOT_FOUND (its time to run ran out)")
                    return
                except REFUSED as exc:  # not buried: still reserved by us, it runs again once its TTR is out
                    logger.error(
                        "job %d (%s): its bury was refused (%s): it runs again once its time to run is out",
                        message.uid,
                        job.options.tube,
                        exc,
                    )
                    if record.record_id:  # the record of a bury that did not happen
                        _drop_record(job.client, record)
                    return
            except (NotFound, *LOST) as exc:
                self._count("connection_errors")
                logger.warning("job %d (%s): bury failed: %s", message.uid, job.options.tube, exc)
                return
            if job.record is not None:  # buried: the record it replaces is done with
                _drop_record(job.client, job.record)
        self._buried(record, message)

    def _bury_unreadable(self, client: Client, job_id: int, message: Message | None, why: str) -> None:
        """Bury a job ``client`` reserved whose body cannot be used (never deleted, never run), with a record."""
        queue = client.queue
        try:
            stats = queue.stats_job(job_id)
            old = find_record(client, stats.tube, job_id) if stats.kicks else None
            exception = "InvalidEnvelope" if message is not None else "CorruptJob"
            record = FailureRecord.of(stats, "invalid", attempts_of(stats, old), why=why, exception=exception)
            record = _store(client, record)
            queue.bury(job_id, stats.pri)
        except (NotFound, *LOST, *REFUSED) as exc:
            self._count("connection_errors")
            logger.warning("job %d: could not bury its unreadable body: %s", job_id, exc)
            return
        if old is not None:
            _drop_record(client, old)
        if message is not None:
            message.reserved = False
        self._count("invalid")
        self._buried(record, message)

    def _buried(self, record: FailureRecord, message: Message | None) -> None:
        with self._mutex:
            self._stats.buried += 1
            if record.reason == "crashed":
                self._stats.crashed += 1
        logger.error("buried: %s\n%s", record.summary(), record.traceback.rstrip() or "(no traceback)")
        self._hook("bury", message, record)

    def _hand_back(self, slot: _Slot, job: _Job) -> None:
        """A job taken as the worker stopped goes back unrun, at its own priority."""
        with slot.lock:
            if job.claimed:
                return
            job.claimed = True
            if job.message.reserved:
                with contextlib.suppress(NotFound, *LOST, *REFUSED):
                    job.message.release()
        self._count("returned")

    def _settles(self, job: _Job, when: str) -> bool:
        """Under the slot's lock: whether the caller is the one to settle ``job`` (nobody else is, and it is
        still reserved by its connection; if not, it is lost)."""
        if job.claimed:
            return False
        job.claimed = True
        if job.lost:
            return False
        if not job.message.reserved:
            self._lose(job, f"it was no longer reserved when {when}")
            return False
        return True

    def _lose(self, job: _Job, why: str) -> None:
        """The job is not ours any more: never settled by us, counted, logged, told."""
        if job.lost:
            return
        job.lost = True
        message = job.message
        message.lease_lost = True
        self._count("lease_lost")
        error = LeaseLost(message.uid, job.options.tube, why)
        logger.warning("%s", error)
        self._hook("lease_lost", message, error)

    # -- the lease keeper ------------------------------------------------------

    def _leases(self) -> list[tuple[_Slot, _Job]]:
        """The slots whose handler runs, with their jobs (the keeper touches them)."""
        return [
            (slot, job)
            for slot in self._slots
            if (job := slot.job) is not None and job.running and not job.claimed and not job.lost
        ]

    def _keep_leases(self) -> None:
        """Touch the running jobs whose lease is due (``run`` calls it when the next is due), side by side:
        each touch in a task (thread) of its own, so one stuck on a hung server (until the connection's
        timeout) holds up no other job's; a job has one touch in flight at most."""
        now = time.monotonic()
        self._touches = [(task, job) for task, job in self._touches if job.touching]
        for slot, job in self._leases():
            if job.next_touch <= now and not job.touching:
                job.touching = True
                touch = functools.partial(self._touch_apart, slot, job)
                self._touches.append((threads.spawn(touch, f"beanstalkm-touch-{slot.index}"), job))

    def _touch_apart(self, slot: _Slot, job: _Job) -> None:
        try:
            self._touch(slot, job)  # it checks the job again, under the slot's lock
        except Exception as exc:  # a server's refusal (INTERNAL_ERROR, ...): tried again after a pause
            pause = max(TOUCH_RETRY[0], min(TOUCH_RETRY[1], job.stats.ttr / 8))
            job.next_touch = time.monotonic() + pause
            logger.error(
                "job %d (%s): its touch failed (%s); trying again in %.2f s",
                job.message.uid,
                job.options.tube,
                exc,
                pause,
            )
        finally:
            job.touching = False
            self._wake.set()  # the keeper counts with its next touch again

    def _join_touches(self) -> None:
        """Wait for the touches still in flight as ``run`` ends (each is bounded by its connection's timeout)."""
        deadline = time.monotonic() + (CONNECT_TIMEOUT if self._timeout is None else self._timeout) + 1.0
        for task, _ in self._touches:
            if not threads.join(task, max(0.0, deadline - time.monotonic())):
                threads.abandon(task)
        self._touches = []

    def _touch(self, slot: _Slot, job: _Job) -> None:
        with slot.lock:
            if not job.running or job.claimed or job.lost:
                return
            message = job.message
            if not message.reserved:
                self._lose(job, "the connection that reserved it was lost")
                return
            sent = time.monotonic()
            left = max(TOUCH_LEAST, job.expires - sent)
            try:
                # asyncio: bounded by the job's time left (past it the lease is gone whatever the answer);
                # threads: a blocking call cannot be cut short, so by the connection's timeout
                message.touch()
            except NotFound:
                self._lose(job, "a touch got NOT_FOUND (its time to run ran out)")
                return
            except LOST as exc:
                self._lose(job, f"the connection that reserved it was lost ({exc})")
                return
            except TimeoutError:  # (asyncio) the server did not answer within the job's time left
                self._lose(job, f"its touch got no answer within its time left ({left:.2f} s): the server is hung")
                return
            job.expires = sent + job.stats.ttr
            job.next_touch = time.monotonic() + job.stats.ttr / 2
        self._count("touches")

    # -- bookkeeping -----------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._mutex:
            setattr(self._stats, name, getattr(self._stats, name) + 1)

    def _hook(self, name: str, *args: object) -> None:
        for hook in self._hooks[name]:
            try:
                hook(*args)
            except BaseException as exc:  # SystemExit and the like too: a hook never ends its slot
                if not isinstance(exc, Exception) and threads.cancelling():
                    raise
                self._count("hook_errors")
                logger.exception("the %s hook %r raised", name, hook)


def _store(client: Client, record: FailureRecord) -> FailureRecord:
    """Store a buried job's record: the record with its ``record_id``. One too big for the server
    (``JOB_TOO_BIG``) is stored again shrunk; one the server refuses (draining, out of memory, still too big)
    is logged and the job is buried without it (``record_id`` 0). A lost connection is raised."""
    try:
        return _put_record(client, record)
    except JobTooBig:
        try:
            return _put_record(client, record.shrunk())
        except CommandFailed as exc:
            refused = exc
    except CommandFailed as exc:
        refused = exc
    logger.error(
        "job %d (%s): buried without its failure record: the server refused it (%s)",
        record.job_id,
        record.tube,
        refused,
    )
    return record


def _put_record(client: Client, record: FailureRecord) -> FailureRecord:
    """``record`` stored, with its ``record_id``. One the server stored buried (``BURIED <id>``: out of
    memory growing a priority queue) is kicked to ready, where the record lookups find it (if the kick
    fails too it stays buried, its id kept, so it is still deleted once done with)."""
    try:
        return dataclasses.replace(record, record_id=store_record(client, record))
    except Buried as exc:
        record_id = int(exc.reply_args[0]) if exc.reply_args and exc.reply_args[0].isdigit() else 0
        if record_id:
            with contextlib.suppress(CommandFailed):
                client.queue.kick_job(record_id)
        logger.warning("job %d (%s): its failure record %d was stored buried", record.job_id, record.tube, record_id)
        return dataclasses.replace(record, record_id=record_id)


def _drop_record(client: Client, record: FailureRecord) -> None:
    """Delete a job's failure record that is done with; one left behind (a lost connection) is logged,
    and the newer record stays the one read (``store_record``'s priorities)."""
    try:
        delete_record(client, record)
    except (*LOST, *REFUSED) as exc:
        logger.warning("job %d: its failure record %d was not deleted: %s", record.job_id, record.record_id, exc)


def _counters(stats: WorkerStats) -> str:
    return ", ".join(f"{name} {value}" for name, value in stats.counters().items() if value) or "no jobs"
