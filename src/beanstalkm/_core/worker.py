"""What both flavours of worker share, with no I/O: handlers, backoff, attempts, failure records, stats.

Where failure records live (one record tube per buried job: found with a ``peek-ready``, never a
reserve) and how attempts are counted (the server's ``reserves``; a kick grants a fresh budget):
docs/worker.md, "Failure records" and "Retries and backoff".
"""

from __future__ import annotations

__all__ = [
    "RECORD_MARK",
    "Backoff",
    "BuryJob",
    "DurationStats",
    "FailureReason",
    "FailureRecord",
    "HandlerOptions",
    "LeaseLost",
    "Lookahead",
    "RetryAfter",
    "WorkerStats",
    "attempts_of",
    "backoff_delay",
    "failed_slot",
    "record_prefix",
    "record_tube",
    "slot_failed",
    "take_steps",
]

import dataclasses
import hashlib
import json
import math
import os
import random
import socket
import time as _time
import traceback
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Literal, TypeVar, get_args

from beanstalkm._core.checks import check_uint
from beanstalkm._core.message import MessageBase
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import BODY_APART, Job, Request
from beanstalkm._core.session import Session, await_reply, out_of_step
from beanstalkm._errors import ArgumentTypeError, BeanstalkmException, CorruptJob, InvalidArgument, ProtocolError, cut
from beanstalkm._generated import commands as _c
from beanstalkm._generated.commands import TUBE_RULE
from beanstalkm._generated.errors import NotFound, TimedOut
from beanstalkm._generated.stats import JobStats

Backoff = Sequence[float] | Callable[[int], float] | None
"""How long a failed job waits before its next attempt: ``None`` (exponential with jitter), a list of
delays in seconds (the n-th failure waits the n-th; the last repeats), or ``f(attempt) -> seconds``."""

FailureReason = Literal["raised", "crashed", "requested", "invalid"]
"""Why a job was buried: its handler ``raised`` past its retries; its attempts ran out without a
handler finishing (the worker ``crashed`` or its TTR ran out); the handler ``requested`` it
(``BuryJob``); its body was ``invalid`` (not decodable, or a failed envelope check)."""

RECORD_MARK = "beanstalkm-failure"
"""The key every failure record's JSON carries (its value: the record format's version)."""

MAX_TRACEBACK = 16384
"""The most of a traceback a record keeps (the end of it, where the error is)."""
MAX_MESSAGE = 4096
"""The most of an error's text a record keeps (its start); the rest is cut, ``...`` marking the cut."""
SHRUNK = 512
"""What a record too big for its server (``JOB_TOO_BIG``) keeps of its message and traceback when it is
stored again (``FailureRecord.shrunk``)."""

MAX_DELAY = 2**32 - 1
BACKOFF_BASE = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP = 3600.0
BACKOFF_JITTER = 0.5
"""The default backoff: ``BASE * FACTOR**(n-1)`` seconds after the n-th failure, at most ``CAP``, times a
random factor in ``[1 - JITTER, 1]`` (so workers failing together do not retry together)."""
TUBE_RULE_MAX = 200
"""The longest tube name, in bytes."""
_RECORD_SUFFIX = ".failed."
_ID_ROOM = len(_RECORD_SUFFIX) + 20  # a job id has at most 20 digits


class RetryAfter(Exception):
    """Raised by a handler: release the job to run again after ``seconds`` (its own priority kept).

    It counts as an attempt: past the handler's retries the job is buried as for any exception.
    """

    def __init__(self, seconds: float, reason: str = "") -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_DELAY:
            raise InvalidArgument("seconds", seconds, f"must be a number of seconds from 0 to {MAX_DELAY}")
        super().__init__(reason or f"retry after {seconds} s")
        self.seconds = seconds
        self.reason = reason


class BuryJob(Exception):
    """Raised by a handler: bury the job at once (its own priority kept) with a failure record."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or "the handler asked to bury the job")
        self.reason = reason


class LeaseLost(BeanstalkmException):
    """The job is no longer reserved by its worker: a touch got ``NOT_FOUND`` (its TTR ran out) or the
    connection that reserved it was lost (beanstalkd made it ready again). Passed to ``on_lease_lost``;
    the worker never deletes, releases or buries such a job."""

    def __init__(self, job_id: int, tube: str, why: str) -> None:
        super().__init__(f"job {job_id} ({tube}): lease lost: {why}")
        self.job_id = job_id
        self.tube = tube
        self.why = why


def check_backoff(backoff: Backoff) -> Backoff:
    """``backoff`` checked: None, a non-empty list of delays (0 to 2**32-1 s), or a callable."""
    if backoff is None:
        return None
    if isinstance(backoff, (str, bytes)) or not (callable(backoff) or isinstance(backoff, Sequence)):
        raise ArgumentTypeError(
            "backoff", backoff, "must be None, a list of delays in seconds, or a callable of the attempt number"
        )
    if not isinstance(backoff, Sequence):
        return backoff
    if not backoff:
        raise InvalidArgument("backoff", backoff, "a list of delays cannot be empty")
    return tuple(_check_delay("backoff", delay) for delay in backoff)


def _check_delay(name: str, delay: object) -> float:
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise ArgumentTypeError(name, delay, f"a delay is a number of seconds, not {type(delay).__name__}")
    if not 0 <= delay <= MAX_DELAY:  # NaN is refused too
        raise InvalidArgument(name, delay, f"a delay is from 0 to {MAX_DELAY} seconds")
    return float(delay)


def backoff_delay(backoff: Backoff, failures: int, rng: random.Random) -> int:
    """The delay (whole seconds, what ``release`` takes) after the ``failures``-th failure.

    ``InvalidArgument`` if a callable returned something that is not a delay.
    """
    if backoff is None:
        exponent = min(failures - 1, 64)
        delay = min(BACKOFF_CAP, BACKOFF_BASE * BACKOFF_FACTOR**exponent)
        delay *= rng.uniform(1.0 - BACKOFF_JITTER, 1.0)
    elif callable(backoff):
        delay = _check_delay("backoff(attempt)", backoff(failures))
    else:
        delay = backoff[min(failures, len(backoff)) - 1]
    return min(MAX_DELAY, math.ceil(delay))


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerOptions:
    """A tube's handler settings: ``retries`` (attempts after the first), ``backoff``, ``limit`` (at most
    this many of the tube's jobs at once; None: up to the worker's concurrency)."""

    tube: str
    retries: int
    backoff: Backoff
    limit: int | None

    @classmethod
    def checked(cls, tube: object, retries: object, backoff: Backoff, limit: object) -> HandlerOptions:
        return cls(
            TUBE_RULE.check("tube", tube),
            check_uint("retries", retries, 0, 2**31),
            check_backoff(backoff),
            None if limit is None else check_uint("limit", limit, 1, 2**31),
        )


def record_prefix(tube: str) -> str:
    """The start of the names of ``tube``'s record tubes (a long tube name is cut and hashed to fit)."""
    if len(tube) + _ID_ROOM <= TUBE_RULE_MAX:
        return tube + _RECORD_SUFFIX
    digest = hashlib.sha256(tube.encode("ascii")).hexdigest()[:16]
    return f"{tube[: TUBE_RULE_MAX - _ID_ROOM - 17]}${digest}{_RECORD_SUFFIX}"


def record_tube(tube: str, job_id: int) -> str:
    """The tube that holds the failure record of job ``job_id`` of ``tube``."""
    return f"{record_prefix(tube)}{job_id}"


def attempts_of(stats: JobStats, record: FailureRecord | None) -> int:
    """How many attempts the job has had, this one included: its ``reserves``, counted from its record's
    once it has been kicked since it was buried (a fresh budget)."""
    if record is not None and stats.kicks > record.kicks and stats.reserves >= record.reserves:
        return stats.reserves - record.reserves
    return stats.reserves


M = TypeVar("M", bound=MessageBase)
T = TypeVar("T")


LOOKAHEAD_REST = (3, 64)
"""After this many misses in a row (several slots on one tube take each other's guesses), a slot makes
no guess, and sends no ``peek-ready``, for this many reserves: a miss costs a wasted reply or two."""
SEQUENTIAL_AFTER = 4
"""How many times in a row ``peek-ready`` must show the reserved job's id + 1 before a slot guesses id + 1
without a peek (``Lookahead.sequential``)."""


@dataclasses.dataclass(slots=True)
class Lookahead:
    """A slot's guess of the job its next reserve gets on the tube it polls alone (docs/worker.md, "Speed"):
    the id ``peek-ready`` showed at the head of the tube (None: none known), or, ``sequential`` (ids came
    in sequence ``SEQUENTIAL_AFTER`` times), the last job's id + 1 with no peek, until the first miss."""

    tube: str
    guess: int | None = None
    hits: int = 0
    misses: int = 0
    off: bool = False  # the tube's jobs are large (a peek would copy each body twice): no more guesses
    sequential: bool = False
    streak: int = 0  # peeks in a row that showed the reserved job's id + 1
    missed: int = 0  # misses in a row
    rest: int = 0  # reserves to make without a guess (``LOOKAHEAD_REST``)


_PEEK_READY = _c.peek_ready()
_DELETE = _c.delete(1).decode
_STATS_JOB = _c.stats_job(1).decode


def take_steps(
    session: Session,
    reader: ReplyReader,
    delete: Request[None] | None,
    reserve: Request[Job],
    to_message: Callable[[Job], M],
    ahead: Lookahead | None = None,
    before: Sequence[Request[Any]] = (),
    with_stats: bool = True,
) -> Generator[
    bytes | float | None, bytes, tuple[BeanstalkmException | None, M | BeanstalkmException | None, JobStats | None]
]:
    """A worker slot's conversation for its next job: the delete of the job it finished (if any), the
    commands ``before`` (a watch-list change: their effects are recorded) and the reserve in one write,
    then the ``stats-job`` of the job reserved, in one hold of the connection. Returns the delete's
    error (None: deleted, or no delete), the message (None: timed out; or the error to handle:
    ``InvalidEnvelope``, ``CorruptJob``, ...), and the job's stats (None if they could not be read: the
    caller asks again).

    With ``ahead`` (a slot polling one tube), the same write also carries a ``stats-job`` of the guessed
    id (read after the reserve, so it counts this reserve) and a ``peek-ready`` of the tube (after a
    ``use`` of it if needed) for the next guess; on a miss the guess's stats are dropped and the job's
    own are asked as without ``ahead`` (docs/worker.md, "Speed").

    With ``with_stats`` False the conversation ends at the reserve's reply (the caller asks the stats): a
    slot's wait on several servers, whose conversations cut short must each be waiting for that reply,
    so that a job one of them reserves as it is cut short is seen (``converse_all``'s ``raced_ids``).
    """
    peek = ahead is not None and not ahead.sequential
    use = _c.use(ahead.tube) if peek and ahead is not None and session.server_using != ahead.tube else None
    guess = None if ahead is None else ahead.guess
    head = b"" if delete is None else delete.head
    for request in before:
        head += request.head
    head += reserve.head
    if guess is not None:
        head += _c.STATS_JOB_FORMAT % guess
    if use is not None:
        head += use.head
    if peek:
        head += _PEEK_READY.head
    yield from session.write(head, reserve.wait)
    # each reply of the common path read inline, not through await_reply: a generator less per reply
    delete_error: BeanstalkmException | None = None
    if delete is not None:
        reply = reader.next_reply()
        while reply is None:
            reply = reader.read((yield 0.0))
        try:
            _DELETE(reply)
        except BeanstalkmException as exc:
            _unless_broken(exc)
            delete_error = exc
    for request in before:
        yield from _apply(session, reader, request)
    reply = reader.next_reply()
    while reply is None:
        reply = reader.read((yield reserve.wait))
    job: Job | BeanstalkmException | None
    try:
        job = reserve.decode(reply)
    except TimedOut:
        job = None
    except BeanstalkmException as exc:
        _unless_broken(exc)
        job = exc
    info: JobStats | BeanstalkmException | None = None
    if guess is not None:  # every reply is read, whatever the reserve got
        reply = reader.next_reply()
        while reply is None:
            reply = reader.read((yield 0.0))
        try:
            info = _STATS_JOB(reply)
        except BeanstalkmException as exc:  # NOT_FOUND: gone since it was peeked
            _unless_broken(exc)
            info = exc
    if use is not None:
        yield from _apply(session, reader, use)
    reserved = job.id if isinstance(job, Job) else None
    if ahead is not None:
        if peek:
            reply = reader.next_reply()
            while reply is None:
                reply = reader.read((yield 0.0))
            try:
                head_job = _PEEK_READY.decode(reply)
            except BeanstalkmException as exc:
                _unless_broken(exc)
                head_job = None
            ahead.guess = None if head_job is None else head_job.id
            if head_job is not None and len(head_job.body) >= BODY_APART:
                ahead.off, ahead.guess, ahead.streak = True, None, 0
            elif reserved is not None and ahead.guess == reserved + 1:
                ahead.streak += 1
                ahead.sequential = ahead.streak >= SEQUENTIAL_AFTER
            else:
                ahead.streak = 0
        elif reserved is not None and reserved == guess:
            ahead.guess = reserved + 1
        else:  # a miss, or nothing ready: peek again
            ahead.sequential, ahead.guess, ahead.streak = False, None, 0
    if not isinstance(job, Job):
        return delete_error, job, None
    if guess is not None and ahead is not None:
        if isinstance(info, JobStats) and info.id == reserved:
            ahead.hits += 1
            try:
                message = to_message(job)
            except BeanstalkmException as exc:  # InvalidEnvelope (it carries the message), ...: the caller buries it
                _unless_broken(exc)
                return delete_error, exc, None
            if reader.buffered:
                raise out_of_step(reserve.command, reader.buffered)
            ahead.missed = 0
            message._learn(info)
            return delete_error, message, info
        ahead.misses += 1
        ahead.missed += 1
        if ahead.missed >= LOOKAHEAD_REST[0]:
            ahead.missed, ahead.rest, ahead.guess, ahead.sequential = 0, LOOKAHEAD_REST[1], None, False
    if not with_stats:
        try:
            return delete_error, to_message(job), None
        except BeanstalkmException as exc:  # InvalidEnvelope (it carries the message), ...: the caller buries it
            _unless_broken(exc)
            return delete_error, exc, None
    stats_request = _c.stats_job(job.id)
    yield stats_request.head  # in flight while the body is decoded
    try:
        message = to_message(job)
    except BeanstalkmException as exc:  # InvalidEnvelope (it carries the message), ...: the caller buries it
        _unless_broken(exc)
        yield from await_reply(reader, 0.0)  # its stats-job reply, not needed: the caller asks again
        return delete_error, exc, None
    reply = yield from await_reply(reader, 0.0)
    if reader.buffered:
        raise out_of_step(stats_request.command, reader.buffered)
    try:
        stats = stats_request.decode(reply)
    except BeanstalkmException as exc:
        _unless_broken(exc)
        if isinstance(exc, NotFound):
            message._gone()
        return delete_error, message, None
    message._learn(stats)
    return delete_error, message, stats


def _unless_broken(exc: BeanstalkmException) -> None:
    """A reply's error, kept for the slot to handle; raised instead if it broke the protocol (a
    ``ProtocolError`` other than a framed ``CorruptJob``). The conversation then ends: the driver drops the
    connection, and nothing read after that reply is handed out, so a job reserved in the same write is
    never run (the server takes it back with the connection) and a delete before it is told unknown."""
    if isinstance(exc, ProtocolError) and not isinstance(exc, CorruptJob):
        raise exc


def _apply(session: Session, reader: ReplyReader, request: Request[Any]) -> Generator[float | None, bytes, None]:
    """Read the reply of a ``watch``, ``ignore`` or ``use`` sent in a slot's write, and record its effect."""
    reply = yield from await_reply(reader, 0.0)
    try:
        session.applied(request, request.decode(reply))
    except BeanstalkmException as exc:
        _unless_broken(exc)


def format_exception(exc: BaseException) -> str:
    """The traceback of ``exc``, its last ``MAX_TRACEBACK`` characters; each part of it (a frame, an
    error's text) cut to ``MAX_MESSAGE`` (a huge error text would leave nothing but itself)."""
    text = "".join(
        part if len(part) <= MAX_MESSAGE else part[: MAX_MESSAGE - 4] + "...\n"
        for part in traceback.TracebackException.from_exception(exc).format()
    )
    return text if len(text) <= MAX_TRACEBACK else "...\n" + text[-MAX_TRACEBACK:]


@dataclasses.dataclass(frozen=True, slots=True)
class FailureRecord:
    """Why a buried job was buried: what ``worker.failures(tube)`` and ``failed ls|show`` tell.

    ``job_id``/``tube``/``priority`` name the buried job; ``reason`` is a :data:`FailureReason`;
    ``exception`` and ``message`` the error's type and text, ``traceback`` its traceback (empty
    when the handler never finished); ``attempts``, ``reserves`` and ``kicks`` the job's counts when
    it was buried; ``host``, ``pid`` and ``time`` (seconds since the epoch) the burying worker's.
    ``record_id`` is the record's own job id (0 before it is stored); ``state`` is the buried job's
    state when the record was read (``"buried"``; ``"ready"``, ``"delayed"`` or ``"reserved"`` once
    retried; ``"gone"`` once deleted), ``None`` when not asked. ``server`` is the URL of the server
    that holds the record and its job (job ids are per server), set by ``worker.failures``.
    """

    job_id: int
    tube: str
    priority: int
    reason: FailureReason
    exception: str
    message: str
    traceback: str
    attempts: int
    reserves: int
    kicks: int
    host: str
    pid: int
    time: float
    record_id: int = 0
    state: str | None = None
    server: str | None = None

    @classmethod
    def of(
        cls,
        stats: JobStats,
        reason: FailureReason,
        attempts: int,
        error: BaseException | None = None,
        why: str = "",
        exception: str = "",
    ) -> FailureRecord:
        """The record of burying the job ``stats`` describe, now, by this process: for ``error``
        (its type, text and traceback), or for ``why`` (with the type name ``exception``, if any)."""
        return cls(
            job_id=stats.id,
            tube=stats.tube,
            priority=stats.pri,
            reason=reason,
            exception=exception if error is None else type(error).__name__,
            message=cut(why if error is None else str(error), MAX_MESSAGE),
            traceback="" if error is None else format_exception(error),
            attempts=attempts,
            reserves=stats.reserves,
            kicks=stats.kicks,
            host=socket.gethostname(),
            pid=os.getpid(),
            time=_time.time(),
        )

    def to_json(self) -> dict[str, object]:
        """The record as stored (without ``record_id``, ``state`` and ``server``, which the server knows)."""
        data = dataclasses.asdict(self)
        del data["record_id"], data["state"], data["server"]
        data[RECORD_MARK] = 1
        return data

    @classmethod
    def from_json(cls, data: object, record_id: int = 0) -> FailureRecord | None:
        """A stored record; None for anything that is not one."""
        if not isinstance(data, Mapping) or data.get(RECORD_MARK) != 1:
            return None
        try:
            return cls(
                job_id=_of(data["job_id"], int),
                tube=_of(data["tube"], str),
                priority=_of(data["priority"], int),
                reason=_reason(data["reason"]),
                exception=_of(data["exception"], str),
                message=_of(data["message"], str),
                traceback=_of(data["traceback"], str),
                attempts=_of(data["attempts"], int),
                reserves=_of(data["reserves"], int),
                kicks=_of(data["kicks"], int),
                host=_of(data["host"], str),
                pid=_of(data["pid"], int),
                time=float(_of(data["time"], (int, float))),
                record_id=record_id,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def shrunk(self) -> FailureRecord:
        """The record with its message and traceback cut to ``SHRUNK`` characters (the start of the message,
        the end of the traceback): what is stored when the whole record is too big for its server."""
        traceback = self.traceback
        if len(traceback) > SHRUNK:
            traceback = "...\n" + traceback[-SHRUNK:]
        return dataclasses.replace(self, message=cut(self.message, SHRUNK), traceback=traceback)

    def with_state(self, state: str | None) -> FailureRecord:
        return dataclasses.replace(self, state=state)

    def summary(self) -> str:
        """One line: the job, why, and the error."""
        error = f"{self.exception}: {self.message}" if self.exception else self.message
        return f"job {self.job_id} ({self.tube}) {self.reason} after {self.attempts} attempt(s): {cut(error, 200)}"

    def __str__(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def _of(value: object, kind: type[T] | tuple[type[T], ...]) -> T:
    """``value`` if it is a ``kind`` (a bool is no number), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(value)
    return value


_REASONS: dict[object, FailureReason] = {reason: reason for reason in get_args(FailureReason)}


def _reason(value: object) -> FailureReason:
    try:
        return _REASONS[value]
    except (KeyError, TypeError):
        raise ValueError(value) from None


@dataclasses.dataclass(slots=True)
class DurationStats:
    """Handler run times of one tube, in seconds."""

    count: int = 0
    total: float = 0.0
    max: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclasses.dataclass(slots=True)
class WorkerStats:
    """A worker's counters (``worker.stats`` is a snapshot of them).

    ``reserved``: jobs taken; ``succeeded``: handler returned and the job was deleted; ``failed``:
    handler raised; ``retried``: released for another attempt; ``buried``: buried with a record
    (``crashed`` of them because their attempts ran out without a handler finishing, ``invalid``
    because their body could not be used); ``lease_lost``: jobs no longer ours when the handler
    ended (never settled by us); ``released``: unfinished jobs released at shutdown; ``returned``:
    jobs received as the worker stopped, handed back unrun; ``touches``: lease-keeper touches;
    ``hook_errors``: hooks that raised; ``connection_errors``: lost connections and failed
    reconnects; ``durations``: handler run times by tube.
    """

    reserved: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    buried: int = 0
    crashed: int = 0
    invalid: int = 0
    lease_lost: int = 0
    released: int = 0
    returned: int = 0
    touches: int = 0
    hook_errors: int = 0
    connection_errors: int = 0
    durations: dict[str, DurationStats] = dataclasses.field(default_factory=dict)

    def snapshot(self) -> WorkerStats:
        durations = {tube: dataclasses.replace(d) for tube, d in self.durations.items()}
        return dataclasses.replace(self, durations=durations)

    def counters(self) -> dict[str, int]:
        """Every counter by name (``durations`` aside)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "durations"}


for _cls in (BuryJob, DurationStats, FailureRecord, LeaseLost, RetryAfter, WorkerStats):
    _cls.__module__ = "beanstalkm"  # tracebacks and reprs name the public path


_SLOT_NOTE = "beanstalkm: worker slot {index} ended on this exception; the worker stopped"
"""The note (PEP 678) ``run()`` adds to the exception a slot ended on, which it raises."""


def slot_failed(error: BaseException, index: int) -> BaseException:
    """``error``, noted as the one slot ``index`` ended on (``failed_slot`` reads it back)."""
    error.add_note(_SLOT_NOTE.format(index=index))
    return error


def failed_slot(error: BaseException) -> int | None:
    """The index of the worker slot that ended on ``error`` (as ``slot_failed`` noted it), else None."""
    prefix, _, rest = _SLOT_NOTE.partition("{index}")
    for note in getattr(error, "__notes__", ()):
        if isinstance(note, str) and note.startswith(prefix) and note.endswith(rest):
            index = note[len(prefix) : len(note) - len(rest)]
            if index.isdigit():
                return int(index)
    return None
