"""``export``, ``flush`` and ``tubes`` on a :class:`~beanstalkm.cli._wire.Wire`: the commands they send
per job (or tube), written ``DEPTH`` batches ahead, and the replies read as bytes (docs/cli.md, "Bulk
commands are pipelined", says what each sends and why).

A ``stats-job`` reply is read by one regular expression for beanstalkd's own layout; anything else goes
to the library's ``JobStats.from_yaml`` (its full decoder behind it), whose answer or typed error is
used: nothing is guessed.
"""

from __future__ import annotations

__all__ = [
    "ExportPlan",
    "FlushWalk",
    "ReadyDrain",
    "export_lines",
    "flush_ready",
    "flush_walk",
    "tube_entry",
    "tube_rows",
]

import base64
import re
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing
from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) writes, at C speed
from operator import itemgetter
from typing import TextIO

from beanstalkm import Client, JobStats, TubeStats
from beanstalkm._core.jobinfo import STATS_JOB_LAYOUT
from beanstalkm._core.requests import Reply
from beanstalkm._generated import commands as _c
from beanstalkm.cli._common import json_text
from beanstalkm.cli._jobs import STATES, RecordGroups, record_groups
from beanstalkm.cli._wire import BATCH, Batch, Wire, drive, failure, stats_job_line, stats_tube_line

_STATE_INDEX = {state.encode("ascii"): i for i, state in enumerate(STATES)}
_DELAYED = STATES.index("delayed")

STATS, PEEK, DELETE, RESERVE, STATS_TUBE = range(5)
"""What a command of a batch is, for reading its reply."""

DRAIN_BATCH = 250
"""Reserves per write in ``flush``'s drain. beanstalkd forgets a connection's soonest deadline at each
delete of a job it holds and finds it again by walking every job the connection holds: a delete costs
about 3 ns per job held, so the drain holds at most ``DEPTH`` x this many."""

_N = r"(0|[1-9][0-9]{0,19})"  # a number as beanstalkd prints one (64 bits at most)
_NAME = r"(\"?)([A-Za-z0-9+/;.$_()\-]{1,200})"  # a tube name, quoted by 1.13: the quote is closed by \N


def job_numbers(body: bytes) -> tuple[str, int, list[int]]:
    """A ``stats-job`` body: the tube, the state (its index in ``STATES``) and the numbers of an export
    line (id, priority, ttr, time-left, age, reserves, releases, timeouts, buries, kicks)."""
    m = STATS_JOB_LAYOUT.fullmatch(body)
    if m is not None:
        return m[3].decode("ascii"), _STATE_INDEX[m[4]], _numbers(m)
    info = JobStats.from_yaml(body)  # any other layout: the library decides (or raises ProtocolError)
    return (
        info.tube,
        STATES.index(info.state),
        [info.id, info.pri, info.ttr, info.time_left, info.age, info.reserves, info.releases, info.timeouts,
         info.buries, info.kicks],
    )  # fmt: skip


def _numbers(m: re.Match[bytes]) -> list[int]:
    return [int(m[1]), int(m[5]), int(m[8]), int(m[9]), int(m[6]), int(m[11]), int(m[13]), int(m[12]), int(m[14]),
            int(m[15])]  # fmt: skip


# -- the id walk ---------------------------------------------------------------------------------


SPARSE_AFTER = 2 * BATCH
"""Ids a ``dense`` walk reads before it may give up on a sparse tube."""


class _Walk:
    """``stats-job`` for every id from ``high`` down, ``BATCH`` a write, until ``wanted`` jobs of
    ``tube`` were seen or id 1 was asked about. A further range goes out ahead of the replies only while
    the ids in flight are fewer than the jobs still to see. ``found`` is told each job of the tube;
    commands it queues in ``follow`` go out with the next write.

    With ``dense``, the walk gives up (``gave_up``) once ``SPARSE_AFTER`` ids are read and fewer than
    half of them were the tube's jobs: then another way costs less (``flush``'s reserves).
    """

    numbers = True
    """Whether ``found`` needs every number of ``job_numbers`` (else the id first is enough)."""

    def __init__(self, tube: str, high: int, wanted: int, *, dense: bool = False) -> None:
        self.tube = tube
        self._tube = tube.encode("ascii")
        self.high = high
        self.wanted = wanted
        self.seen = 0
        self.asked = 0
        self.read = 0  # stats-job replies read
        self.dense = dense
        self.gave_up = False
        self.follow = Batch()

    def next_batch(self) -> Batch:
        batch, self.follow = self.follow, Batch()
        if self.dense and not self.gave_up and self.read >= SPARSE_AFTER and 2 * self.seen < self.read:
            self.gave_up = True
        if self.high >= 1 and self.asked < self.wanted - self.seen and not self.gave_up:
            low = max(1, self.high - BATCH + 1)
            ids = list(range(low, self.high + 1))  # ascending within the batch: an export keeps the order
            batch.extend([stats_job_line(i) for i in ids], STATS, ids)
            self.asked += len(ids)
            self.high = low - 1
        return batch

    def done(self, batch: Batch, replies: list[Reply]) -> None:
        tube = self._tube
        for kind, job_id, reply in zip(batch.kinds, batch.ids, replies, strict=True):
            if kind != STATS:
                self.followed(kind, job_id, reply)
                continue
            self.asked -= 1
            self.read += 1
            if reply.status != "OK" or reply.body is None or reply.trailer is not None:
                if reply.status != "NOT_FOUND":
                    raise failure(_c.stats_job(job_id), reply)
                continue
            m = STATS_JOB_LAYOUT.fullmatch(reply.body)
            if m is not None:  # beanstalkd's layout: read at once
                if m[3] != tube:
                    continue
                state, numbers = _STATE_INDEX[m[4]], (_numbers(m) if self.numbers else [int(m[1])])
            else:
                name, state, numbers = job_numbers(reply.body)
                if name != self.tube:
                    continue
            self.seen += 1
            self.found(state, numbers)
        self.batch_done()

    def found(self, state: int, numbers: list[int]) -> None:
        """A job of the tube: its state and numbers (``job_numbers``)."""

    def followed(self, kind: int, job_id: int, reply: Reply) -> None:
        """The reply to a command ``found`` queued."""

    def batch_done(self) -> None:
        """A batch was read."""


# -- export ----------------------------------------------------------------------------------------

_WIDTH = 12  # per job kept: state, the 10 numbers of job_numbers, the walk's clock in ms


class ExportPlan(_Walk):
    """The walk of an export: keeps the numbers of each job in a wanted state (``_WIDTH`` integers)."""

    def __init__(self, tube: str, high: int, wanted: int, states: tuple[str, ...]) -> None:
        super().__init__(tube, high, wanted)
        self.states = {STATES.index(s) for s in states}
        self.kept: list[array[int]] = []  # one array per batch read: ascending ids; batches newest first
        self._batch: array[int] = array("Q")
        self._clock = 0

    def done(self, batch: Batch, replies: list[Reply]) -> None:
        self._clock = int(time.monotonic() * 1000)
        super().done(batch, replies)

    def found(self, state: int, numbers: list[int]) -> None:
        if state in self.states:
            self._batch.append(state)
            self._batch.extend(numbers)
            self._batch.append(self._clock)

    def batch_done(self) -> None:
        if self._batch:
            self.kept.append(self._batch)
            self._batch = array("Q")

    def jobs(self) -> Iterator[array[int]]:
        """The kept jobs, oldest first, in runs of at most ``BATCH``: ``_WIDTH`` integers each."""
        run: array[int] = array("Q")
        for kept in reversed(self.kept):
            for start in range(0, len(kept), _WIDTH * BATCH):
                run.extend(kept[start : start + _WIDTH * BATCH])
                if len(run) >= _WIDTH * BATCH:
                    yield run[: _WIDTH * BATCH]
                    run = run[_WIDTH * BATCH :]
        if run:
            yield run


class _Peeks:
    """The second pass of an export: ``peek`` each kept job, oldest first, and write its line."""

    def __init__(self, plan: ExportPlan, url: str, out: TextIO) -> None:
        self._runs = plan.jobs()
        self._out = out
        self._tube = encode_basestring(plan.tube)
        self._head = '{"server":' + encode_basestring(url) + ',"id":'
        self._pending: deque[array[int]] = deque()  # the runs of the batches in flight
        self.written = 0

    def next_batch(self) -> Batch | None:
        run = next(self._runs, None)
        if run is None:
            return None
        ids = list(run[1::_WIDTH])
        batch = Batch(b"".join([b"peek %d\r\n" % i for i in ids]), bytearray([PEEK]) * len(ids), ids)
        self._pending.append(run)
        return batch

    def done(self, batch: Batch, replies: list[Reply]) -> None:
        run = self._pending.popleft()
        now = int(time.monotonic() * 1000)
        lines: list[str] = []
        head, tube = self._head, self._tube
        for k, (job_id, reply) in enumerate(zip(batch.ids, replies, strict=True)):
            if reply.status != "FOUND" or reply.body is None or reply.trailer is not None:
                if reply.status != "NOT_FOUND":
                    raise failure(_c.peek(job_id), reply)
                continue  # deleted since the walk
            state, _, pri, ttr, time_left, age, reserves, releases, timeouts, buries, kicks, clock = run[
                k * _WIDTH : (k + 1) * _WIDTH
            ]
            gone = (now - clock) // 1000  # whole seconds since the walk read these
            delay = max(0, time_left - gone) if state == _DELAYED else 0
            lines.append(
                f'{head}{job_id},"tube":{tube},"state":"{STATES[state]}","priority":{pri},"ttr":{ttr},'
                f'"delay":{delay},"age":{age + gone},"reserves":{reserves},"releases":{releases},'
                f'"timeouts":{timeouts},"buries":{buries},"kicks":{kicks},{_data(reply.body)}}}\n'
            )
        self._out.write("".join(lines))
        self.written += len(lines)


def _data(raw: bytes) -> str:
    """The job's bytes as ``job_record`` writes them: ``"data"`` (UTF-8 text) or ``"data_base64"``."""
    try:
        return '"data":' + encode_basestring(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return '"data_base64":"' + base64.b64encode(raw).decode("ascii") + '"'


def export_lines(
    client: Client,
    url: str,
    tube: str,
    high: int,
    wanted: int,
    states: tuple[str, ...],
    out: TextIO,
    progress: Callable[[int], object],
) -> int:
    """Write the NDJSON lines of ``tube``'s jobs in ``states`` to ``out``, oldest first, reserving
    nothing: the walk, then the peeks (see the module's note); ``url`` names the server in each line.
    Returns how many lines were written."""
    with closing(Wire(client)) as wire:
        plan = ExportPlan(tube, high, wanted, states)
        drive(wire, plan)
        peeks = _Peeks(plan, url, out)
        drive(wire, peeks, progress=progress)
    return peeks.written


# -- flush -----------------------------------------------------------------------------------------


class FlushWalk(_Walk):
    """The walk of a flush: each job of the tube in one of ``states`` is deleted with the next write."""

    numbers = False

    def __init__(self, tube: str, high: int, wanted: int, states: tuple[str, ...], *, dense: bool = False) -> None:
        super().__init__(tube, high, wanted, dense=dense)
        self.states = {STATES.index(s) for s in states}
        self.deleted = 0
        self.skipped = 0

    def found(self, state: int, numbers: list[int]) -> None:
        if state in self.states:
            self.follow.add(_c.DELETE_FORMAT % numbers[0], DELETE, numbers[0])

    def followed(self, kind: int, job_id: int, reply: Reply) -> None:
        if reply.status == "DELETED":
            self.deleted += 1
        elif reply.status == "NOT_FOUND":  # gone meanwhile, or a worker reserved it
            self.skipped += 1
        else:
            raise failure(_c.delete(job_id), reply)


def flush_walk(
    client: Client,
    tube: str,
    high: int,
    wanted: int,
    states: tuple[str, ...],
    progress: Callable[[int], object],
    *,
    dense: bool = False,
) -> FlushWalk:
    """Delete ``tube``'s jobs in ``states`` by the id walk (``dense``: giving up on a sparse tube); the
    walk's ``deleted``, ``skipped`` (gone or reserved meanwhile) and ``gave_up``."""
    plan = FlushWalk(tube, high, wanted, states, dense=dense)
    told = 0

    def tell(_: int) -> None:
        nonlocal told
        progress(plan.deleted + plan.skipped - told)
        told = plan.deleted + plan.skipped

    with closing(Wire(client)) as wire:
        drive(wire, plan, progress=tell)
    return plan


class ReadyDrain:
    """Reserve ``tube``'s ready jobs with ``reserve-with-timeout 0`` (the wire watches only the tube) and
    delete each with the next write, newest first, until ``limit`` are deleted or a reserve finds none."""

    _RESERVE = _c.reserve_with_timeout(0).head

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.asked = 0
        self.taken = 0
        self.deleted = 0
        self.more = True
        self.follow = Batch()

    def next_batch(self) -> Batch:
        batch, self.follow = self.follow, Batch()
        want = min(DRAIN_BATCH, self.limit - self.taken - self.asked)
        if self.more and want > 0:
            batch.extend([self._RESERVE] * want, RESERVE, [0] * want)
            self.asked += want
        return batch

    def done(self, batch: Batch, replies: list[Reply]) -> None:
        taken: list[int] = []
        for kind, job_id, reply in zip(batch.kinds, batch.ids, replies, strict=True):
            status = reply.status
            if kind == RESERVE:
                self.asked -= 1
                if status == "RESERVED" and reply.trailer is None:
                    taken.append(int(reply.args[0]))
                elif status == "TIMED_OUT":  # no ready job left (or the tube is paused)
                    self.more = False
                elif status != "DEADLINE_SOON":  # a job held is due within a second: its delete comes next
                    raise failure(_c.reserve_with_timeout(0), reply)
            elif status == "DELETED":
                self.deleted += 1
            elif status != "NOT_FOUND":  # NOT_FOUND: its TTR ran out before the delete, and it went back
                raise failure(_c.delete(job_id), reply)
        self.taken += len(taken)
        taken.reverse()
        self.follow.extend([_c.DELETE_FORMAT % i for i in taken], DELETE, taken)


def flush_ready(client: Client, tube: str, limit: int, progress: Callable[[int], object]) -> int:
    """Delete up to ``limit`` of ``tube``'s ready jobs by reserve and delete, on a wire of their own that
    watches only the tube (closed after: a job still held goes back to ready). How many were deleted."""
    with closing(Wire(client)) as wire:
        wire.command(_c.watch(tube))
        if tube != "default":
            wire.command(_c.ignore("default"))
        plan = ReadyDrain(limit)
        drive(wire, plan, progress=lambda n: progress(n // 2))
    return plan.deleted


# -- tubes -----------------------------------------------------------------------------------------

_TUBE_KEYS = tuple(key for key in TubeStats.KEYS if key != "name")  # the spec's fields, in beanstalkd's order
_STATS_TUBE = re.compile(
    (rf"---\nname: {_NAME}\1\n" + "".join(rf"{key}: {_N}\n" for key in _TUBE_KEYS)).encode("ascii")
)
"""beanstalkd's ``stats-tube`` (1.12 and 1.13: the name quoted or not), every field in its place."""


def tube_row(body: bytes) -> dict[str, int | str]:
    """A ``stats-tube`` body as the server's keys and values: ``name`` text, every field that is a number
    an integer (a field a newer server adds that is not a number stays text)."""
    m = _STATS_TUBE.fullmatch(body)
    if m is not None:  # beanstalkd's layout: read at once
        row: dict[str, int | str] = {"name": m[2].decode("ascii")}
        row.update(zip(_TUBE_KEYS, map(int, m.groups()[2:]), strict=True))
        return row
    # any other layout: the library's decoder decides (a field a newer server adds stays text), or raises
    return {
        key: value if isinstance(value, int | str) else str(value) for key, value in TubeStats.from_yaml(body).items()
    }


TUBES_BATCH = 250
"""``stats-tube`` commands per write: a listing of 1,000 tubes is four writes, so beanstalkd answers the
next while the client reads the last (one write of 1,000 would have each side wait for the other)."""

_ROW = ("name", *_TUBE_KEYS)
_ENTRY = '{"server":%s,"tube":%s,"stats":{"name":%s,' + ",".join(f'"{key}":%d' for key in _TUBE_KEYS) + '},"failed":%s}'


def tube_entry(server: str, row: dict[str, int | str], server_json: str | None = None) -> str:
    """``{"server", "tube", "stats", "failed"}`` of ``tubes --json`` for one row, as ``json.dumps`` writes
    it (``tests/cli/test_bulk.py`` checks): a row in beanstalkd's layout, all numbers, by one template.
    ``server_json`` is ``server`` as JSON, if the caller has it."""
    keys = tuple(row)
    failed = row.get("failed")
    if keys == _ROW or (keys[:-1] == _ROW and keys[-1] == "failed" and type(failed) is int):
        stats = _STATS_OF(row)
        name = row["name"]
        if set(map(type, stats)) == _INT and type(name) is str:  # not a bool, not text: %d writes what dumps does
            text = encode_basestring(name)
            url = encode_basestring(server) if server_json is None else server_json
            return _ENTRY % (url, text, text, *stats, "null" if failed is None else failed)
    stats_only = {k: v for k, v in row.items() if k != "failed"}
    return json_text({"server": server, "tube": row["name"], "stats": stats_only, "failed": failed})


_STATS_OF = itemgetter(*_TUBE_KEYS)
_INT = {int}


class _TubeStats:
    """``stats-tube`` for each of ``names`` (sorted: the rows come in that order). With ``groups`` the
    worker's failure-record tubes are left out and each row gets ``failed``; with ``server`` each row's
    ``--json`` entry is written as it arrives, while beanstalkd answers the next batch."""

    def __init__(self, names: list[str], groups: RecordGroups | None, server: str | None) -> None:
        self._names = names
        self._groups = groups
        self._server = server
        self._server_json = None if server is None else json_text(server)
        self._next = 0
        self.rows: list[dict[str, int | str]] = []
        self.entries: list[str] = []

    def next_batch(self) -> Batch | None:
        names = self._names[self._next : self._next + TUBES_BATCH]
        if not names:
            return None
        index = list(range(self._next, self._next + len(names)))
        self._next += len(names)
        return Batch(b"".join([stats_tube_line(n) for n in names]), bytearray([STATS_TUBE]) * len(names), index)

    def done(self, batch: Batch, replies: list[Reply]) -> None:
        groups, server = self._groups, self._server
        for i, reply in zip(batch.ids, replies, strict=True):
            if reply.status != "OK" or reply.body is None:
                if reply.status != "NOT_FOUND":  # NOT_FOUND: the tube went away since list-tubes
                    raise failure(_c.stats_tube(self._names[i]), reply)
                continue
            row = tube_row(reply.body)
            if groups is not None:
                name = str(row["name"])
                if groups.is_record(name):
                    continue
                row["failed"] = groups.failed.get(name, 0)
            self.rows.append(row)
            if server is not None:
                self.entries.append(tube_entry(server, row, self._server_json))

    def finish(self) -> None:
        """Give a row of its own to each tube that has failure records but no row (its jobs all gone)."""
        if self._groups is None:
            return
        present = {str(row["name"]) for row in self.rows}
        extra: list[dict[str, int | str]] = [
            {"name": tube, "failed": n} for tube, n in self._groups.failed.items() if tube not in present
        ]
        if not extra:
            return
        self.rows += extra
        if self._server is not None:
            self.entries += [tube_entry(self._server, row, self._server_json) for row in extra]
        order = sorted(range(len(self.rows)), key=lambda k: str(self.rows[k]["name"]))
        self.rows = [self.rows[k] for k in order]
        self.entries = [self.entries[k] for k in order] if self.entries else []


def tube_rows(
    client: Client, *, grouped: bool = False, server: str | None = None
) -> tuple[list[dict[str, int | str]], list[str]]:
    """Every tube's ``stats-tube`` on this server as the server's keys and values, by name (``list-tubes``,
    then ``stats-tube`` written ``DEPTH`` batches ahead); ``grouped``: the failure-record tubes counted in
    their tube's ``failed``, not listed. With ``server`` (its URL), each row's ``--json`` entry too."""
    with closing(Wire(client)) as wire:
        listed: list[str] = wire.command(_c.list_tubes())
        names = sorted(listed)
        plan = _TubeStats(names, record_groups(names) if grouped else None, server)
        drive(wire, plan)
    plan.finish()
    return plan.rows, plan.entries
