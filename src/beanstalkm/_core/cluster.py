"""What a cluster decides with no I/O: each server's health and backoff, where a put goes, which
server a reserve asks first, and the typed totals of ``stats()``.

The flavoured ``AsyncCluster`` (``beanstalkm._async.cluster``) and the sync ``Cluster`` derived
from it only talk to the servers; every choice is made here, and is tested without a socket.
"""

from __future__ import annotations

__all__ = [
    "BACKLOG_REFRESH",
    "WAIT_SLICE",
    "ClusterStats",
    "Placement",
    "ServerHealth",
    "ServerState",
    "check_placement",
    "placement_order",
    "reserve_order",
]

import hashlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TypeVar

from beanstalkm._errors import ArgumentTypeError, InvalidArgument
from beanstalkm._generated.stats import ServerStats

S = TypeVar("S", bound="ServerState")

Placement = str | Callable[[list[str], str, str | None], str]
"""``"round-robin"``, ``"hash"``, or ``choose(servers_up, tube, key) -> one of servers_up``."""

WAIT_SLICE = 1
"""The longest (seconds) a blocking reserve waits on every server at once before it looks again at the
servers (one that came back joins the next wait); each slice costs one ``reserve-with-timeout`` each."""

BACKLOG_REFRESH = 0.5
"""How often (seconds) a consuming cluster asks each server how many ready jobs its watched tubes
hold (one ``stats-tube`` per watched tube): between two asks it counts down what it took."""


@dataclass(frozen=True, slots=True)
class ServerHealth:
    """One server's health, as ``cluster.servers`` reports it.

    ``up`` is False from the failure that marked it down until a call reaches it again; ``since``
    (seconds since the epoch) is when it last changed; ``last_error`` the last failure's text (kept
    after it is back); ``failures`` the failures in a row; ``retry_in`` the seconds until the next
    try while down (0: the next call tries it); ``accepting_puts`` False while it refuses puts
    (``DRAINING``, ``OUT_OF_MEMORY``): puts go elsewhere, its jobs are still reserved.
    """

    url: str
    up: bool
    since: float
    last_error: str | None
    failures: int
    retry_in: float
    accepting_puts: bool


@dataclass(slots=True, eq=False)
class ServerState:
    """A server's health, backoff and ready-job estimate (mutable; the cluster's alone)."""

    url: str
    up: bool = True
    since: float = field(default_factory=time.time)
    last_error: str | None = None
    failures: int = 0
    retry_at: float = 0.0  # time.monotonic() from which a down server is tried again
    puts_refused_until: float = 0.0
    backlog: int = 0  # ready jobs in the watched tubes, as last asked and counted down since
    credit: int = 0  # the smooth weighted round robin's running credit

    def available(self, now: float) -> bool:
        """Whether a call may go to it: up, or down with its backoff over."""
        return self.up or now >= self.retry_at

    def failed(self, error: str, now: float, base: float, cap: float, rng: random.Random) -> bool:
        """A call failed on its connection: down, the next try after an exponential backoff with
        jitter (``base * 2**(failures-1)``, at most ``cap``, times 0.5 to 1). True if it was up."""
        was_up = self.up
        self.failures += 1
        self.last_error = error
        self.retry_at = now + min(cap, base * 2 ** min(self.failures - 1, 62)) * rng.uniform(0.5, 1.0)
        self.backlog = 0
        if was_up:
            self.up = False
            self.since = time.time()
        return was_up

    def reached(self) -> bool:
        """A call reached it: up, failures forgotten. True if it was down (it is back)."""
        self.failures = 0
        if self.up:
            return False
        self.up = True
        self.since = time.time()
        return True

    def refuse_puts(self, error: str, now: float, base: float) -> None:
        """It refused a put (``DRAINING``, ``OUT_OF_MEMORY``): puts go elsewhere for ``base`` seconds or more."""
        self.last_error = error
        self.puts_refused_until = now + base * 4

    def health(self, now: float) -> ServerHealth:
        return ServerHealth(
            self.url,
            self.up,
            self.since,
            self.last_error,
            self.failures,
            0.0 if self.up else max(0.0, self.retry_at - now),
            now >= self.puts_refused_until,
        )


def check_placement(value: object) -> Placement:
    """``value`` if it is a placement policy, else a typed error naming it."""
    if value in ("round-robin", "hash"):
        return str(value)
    if isinstance(value, str):
        raise InvalidArgument("placement", value, "must be 'round-robin', 'hash' or a callable")
    if not callable(value):
        raise ArgumentTypeError(
            "placement", value, f"must be 'round-robin', 'hash' or a callable, not {type(value).__name__}"
        )
    return value


def _score(url: str, key: str) -> int:
    digest = hashlib.blake2b(f"{url}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def placement_order(servers: Sequence[S], placement: Placement, turn: int, tube: str, key: str | None) -> Iterator[S]:
    """The servers a put tries, in order (the next one only if the one before provably did not store it).

    ``round-robin``: from the ``turn``-th on. ``hash``: rendezvous hashing of ``key`` (else the tube):
    each server scores ``blake2b(url, key)`` and the highest takes it, so adding or removing a server
    moves only the keys it wins or held. A callable chooses among those not tried yet.
    """
    if not servers:
        return
    if placement == "round-robin":
        start = turn % len(servers)
        yield from [*servers[start:], *servers[:start]]
    elif placement == "hash":
        by = tube if key is None else key
        yield from sorted(servers, key=lambda s: _score(s.url, by), reverse=True)
    elif callable(placement):
        left = list(servers)
        while left:
            urls = [s.url for s in left]
            chosen = placement(urls, tube, key)
            if chosen not in urls:
                raise InvalidArgument("placement", chosen, f"chose a server that is not one of those offered: {urls}")
            yield left.pop(urls.index(chosen))


def reserve_order(servers: Sequence[S], turn: int) -> list[S]:
    """The order a reserve sweep asks the servers (each with ``reserve-with-timeout 0``).

    First the pick of a smooth weighted round robin over the estimated backlogs (nginx's: every server
    gains its backlog in credit, the richest is picked and pays the total), so each server is asked
    in proportion to its ready jobs and every backlog drains at the same pace; then the others with
    jobs by backlog, then the ones thought empty (a job may have come since), from the ``turn``-th on.
    """
    weighted = [s for s in servers if s.backlog > 0]
    ordered: list[S] = []
    if weighted:
        total = sum(s.backlog for s in weighted)
        for s in weighted:
            s.credit += s.backlog
        pick = max(weighted, key=lambda s: s.credit)
        pick.credit -= total
        ordered.append(pick)
        ordered += sorted((s for s in weighted if s is not pick), key=lambda s: s.backlog, reverse=True)
    empty = [s for s in servers if s.backlog <= 0]
    if empty:
        start = turn % len(empty)
        ordered += empty[start:] + empty[:start]
    return ordered


@dataclass(frozen=True, slots=True)
class ClusterStats:
    """``cluster.stats()``: each server's ``ServerStats`` by URL, the servers that did not answer
    (``errors``: URL -> why), and typed totals over those that did."""

    servers: Mapping[str, ServerStats]
    errors: Mapping[str, str]
    current_jobs_urgent: int = field(init=False)
    current_jobs_ready: int = field(init=False)
    current_jobs_reserved: int = field(init=False)
    current_jobs_delayed: int = field(init=False)
    current_jobs_buried: int = field(init=False)
    total_jobs: int = field(init=False)
    current_connections: int = field(init=False)
    current_producers: int = field(init=False)
    current_workers: int = field(init=False)
    current_waiting: int = field(init=False)
    cmd_put: int = field(init=False)
    cmd_reserve: int = field(init=False)
    cmd_reserve_with_timeout: int = field(init=False)
    cmd_delete: int = field(init=False)
    job_timeouts: int = field(init=False)

    def __post_init__(self) -> None:
        for name in (f.name for f in fields(self) if not f.init):  # the totals
            object.__setattr__(self, name, sum(getattr(stats, name) for stats in self.servers.values()))
