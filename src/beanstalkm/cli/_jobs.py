"""Jobs in bulk, pipelined: the non-destructive listing (an id walk: docs/cli.md, "Looking without
touching"), export records, putting jobs back with their priority, TTR, delay and state, and the
race-free claim (``reserve-job``).
"""

from __future__ import annotations

__all__ = [
    "STATES",
    "Claimed",
    "JobRecord",
    "RecordGroups",
    "all_tube_stats",
    "claim",
    "delete_ids",
    "found",
    "inspect",
    "job_record",
    "jobs_in",
    "outcomes_of",
    "put_jobs",
    "record_groups",
    "restore",
    "snapshot",
    "stale_records",
    "tube_count",
    "walk_bounds",
]

import base64
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from beanstalkm import BatchFailed, Client, JobStats, Message, NotFound, Pipeline, ServerStats, TubeStats
from beanstalkm._core.worker import record_prefix
from beanstalkm.cli._wire import BATCH

HOLD = 365 * 86400
"""A buried copy is put delayed this long, claimed with ``reserve-job`` and buried: no worker can take it
in between. A crash between the two steps leaves it delayed (visible in ``ls``), never running."""

STATES = ("ready", "delayed", "reserved", "buried")


def all_tube_stats(client: Client) -> list[TubeStats]:
    """Every tube's stats on this server: ``list-tubes``, then ``stats-tube`` pipelined in batches."""
    names = client.queue.list_tubes()
    tubes: list[TubeStats] = []
    for start in range(0, len(names), BATCH):
        pipeline = client.pipeline()
        for name in names[start : start + BATCH]:
            pipeline.stats_tube(name)
        tubes += [r for r in found(pipeline) if isinstance(r, TubeStats)]  # NotFound: vanished since list-tubes
    return tubes


_RECORD_TUBE = re.compile(r"(?P<prefix>.+\.failed\.)(?P<id>[0-9]{1,20})")


@dataclass(frozen=True, slots=True)
class RecordGroups:
    """Which tubes are the worker's failure-record tubes (``<tube>.failed.<id>``, see docs/worker.md) and
    how many records each tube has. ``owner`` maps each record tube to the tube it belongs to: a tube of
    ``names`` whose ``record_prefix`` it starts with, else the name before ``.failed.`` (a tube that is gone
    since, its jobs deleted; a long name's hashed prefix stays as it is)."""

    owner: dict[str, str]
    failed: dict[str, int]

    def is_record(self, name: str) -> bool:
        return name in self.owner


def record_groups(names: Iterable[str]) -> RecordGroups:
    """Group the failure-record tubes among ``names`` under the tubes they belong to."""
    names = list(names)
    records = {name: match["prefix"] for name in names if (match := _RECORD_TUBE.fullmatch(name))}
    owners = {record_prefix(name): name for name in names if name not in records}
    owner = {name: owners.get(prefix, prefix[: -len(".failed.")]) for name, prefix in records.items()}
    return RecordGroups(owner, dict(Counter(owner.values())))


def stale_records(client: Client, tube: str, *, purge: bool) -> int:
    """The failure records of ``tube`` whose job is gone (``stats-job`` says not found), deleted if ``purge``
    (``use`` + ``peek-ready`` for each record's id, then ``delete``, pipelined); how many there are."""
    prefix = record_prefix(tube)
    names = {  # the record tubes of ``tube``, by the id of the job each records
        int(name[len(prefix) :]): name
        for name in client.queue.list_tubes()
        if name.startswith(prefix) and name[len(prefix) :].isdigit()
    }
    gone: list[str] = []
    ids = sorted(names)
    for start in range(0, len(ids), BATCH):
        pipeline = client.pipeline()
        for job_id in ids[start : start + BATCH]:
            pipeline.stats_job_yaml(job_id)
        results = found(pipeline)
        gone += [names[i] for i, r in zip(ids[start : start + BATCH], results, strict=True) if isinstance(r, NotFound)]
    if not purge or not gone:
        return len(gone)
    purged = 0
    for start in range(0, len(gone), BATCH):
        pipeline = client.pipeline()
        for name in gone[start : start + BATCH]:
            pipeline.use(name).peek_ready()
        heads = [r.uid for r in found(pipeline)[1::2] if isinstance(r, Message)]
        purged += len(heads) - len(delete_ids(client, heads))
    return purged


def tube_count(client: Client, tube: str) -> TubeStats | None:
    """The tube's stats on this server, None if it does not exist there."""
    try:
        return client.queue.stats_tube(tube)
    except NotFound:
        return None


def jobs_in(stats: TubeStats | None, states: Sequence[str]) -> int:
    """How many jobs a tube's ``stats-tube`` counts in ``states`` (0 if the tube is not there)."""
    return 0 if stats is None else sum(int(str(stats[f"current-jobs-{state}"])) for state in states)


def _newest_id(client: Client, tube: str) -> int:
    pipeline = client.pipeline().stats().use(tube).peek_ready().peek_delayed().peek_buried()
    results = pipeline.execute()
    ids = [r.uid if isinstance(r, Message) else r.total_jobs for r in results if isinstance(r, Message | ServerStats)]
    return max(ids, default=0)


def outcomes_of(pipeline: Pipeline) -> list[object]:
    """Run a pipeline: each command's result, or its typed error in its place."""
    try:
        return pipeline.execute()
    except BatchFailed as exc:
        return exc.results


def found(pipeline: Pipeline) -> list[object]:
    """Run a pipeline: each command's result, ``NotFound`` in the place of a job or tube that is not
    there; any other failure is raised."""
    results = outcomes_of(pipeline)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, NotFound):
            raise result
    return results


def _infos(results: list[object]) -> list[JobStats | None]:
    return [JobStats.from_yaml(r.encode("utf-8", "surrogateescape")) if isinstance(r, str) else None for r in results]


def walk_bounds(client: Client, tube: str) -> tuple[int, int] | None:
    """Where the id walk of ``tube`` starts and how many jobs it is to find: (the newest id, the tube's
    jobs in every state), from ``stats-tube`` and ``_newest_id``; None if the tube has no job here."""
    wanted = jobs_in(tube_count(client, tube), STATES)
    return (_newest_id(client, tube), wanted) if wanted else None


def snapshot(client: Client, tube: str) -> list[int]:
    """The ids of ``tube``'s jobs on this server now, oldest first, reserving nothing: the id walk from
    the newest down, ``stats-job`` for ``BATCH`` ids a write, until every job ``stats-tube`` counted is seen."""
    bounds = walk_bounds(client, tube)
    high, wanted = bounds if bounds is not None else (0, 0)
    ids: list[int] = []
    while high >= 1 and len(ids) < wanted:
        low = max(high - BATCH + 1, 1)
        pipeline = client.pipeline()
        for job_id in range(high, low - 1, -1):
            pipeline.stats_job_yaml(job_id)
        ids += [info.id for info in _infos(found(pipeline)) if info is not None and info.tube == tube]
        high = low - 1
    return sorted(ids)


def _jobs_of(pipeline: Pipeline) -> list[tuple[JobStats, Message]]:
    """Run a pipeline of ``stats-job`` and a command giving the job (``peek``, ``reserve-job``), id after
    id: the stats and job of each one still there, in order."""
    results = found(pipeline)
    pairs = zip(_infos(results[::2]), results[1::2], strict=True)
    return [(stats, job) for stats, job in pairs if stats is not None and isinstance(job, Message)]


def inspect(client: Client, ids: Sequence[int]) -> list[tuple[JobStats, Message]]:
    """``stats-job`` and ``peek`` for each id, pipelined in batches: the jobs still there, in order."""
    jobs: list[tuple[JobStats, Message]] = []
    for start in range(0, len(ids), BATCH):
        pipeline = client.pipeline()
        for job_id in ids[start : start + BATCH]:
            pipeline.stats_job_yaml(job_id).peek(job_id)
        jobs += _jobs_of(pipeline)
    return jobs


def remaining_delay(stats: JobStats) -> int:
    """Seconds until a delayed job becomes ready; 0 in any other state."""
    return stats.time_left if stats.state == "delayed" else 0


def job_record(stats: JobStats, message: Message | None, *, body: bool, data: bool) -> dict[str, object]:
    """A job as a JSON object: where it is, its state and settings, and (asked for) its body and bytes."""
    record: dict[str, object] = {
        "id": stats.id,
        "tube": stats.tube,
        "state": stats.state,
        "priority": stats.pri,
        "ttr": stats.ttr,
        "delay": remaining_delay(stats),
        "age": stats.age,
        "reserves": stats.reserves,
        "releases": stats.releases,
        "timeouts": stats.timeouts,
        "buries": stats.buries,
        "kicks": stats.kicks,
    }
    if message is not None:
        if body:
            record["envelope"] = message.envelope
            record["body"] = message.body if _json_able(message.body) else None
        if data and message.raw is not None:
            try:
                record["data"] = message.raw.decode("utf-8")
            except UnicodeDecodeError:
                record["data_base64"] = base64.b64encode(message.raw).decode("ascii")
    return record


def _json_able(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job to put: its bytes and how it should stand (priority, TTR, remaining delay, state)."""

    data: bytes
    priority: int
    ttr: int
    delay: int = 0
    buried: bool = False


def put_jobs(client: Client, tube: str, jobs: Sequence[JobRecord]) -> list[int | BaseException]:
    """Put ``jobs`` into ``tube``, pipelined; buried ones put held back, claimed and buried at their
    priority. Returns each job's new id, or its error, in order."""
    if not jobs:
        return []
    pipeline = client.pipeline().use(tube)
    for job in jobs:
        pipeline.put(job.data, job.priority, HOLD if job.buried else job.delay, job.ttr)
    results = outcomes_of(pipeline)[1:]
    outcomes: list[int | BaseException] = [
        r if isinstance(r, int | BaseException) else TypeError(f"put gave {r!r}") for r in results
    ]
    to_bury = [(i, outcome) for i, outcome in enumerate(outcomes) if isinstance(outcome, int) and jobs[i].buried]
    if to_bury:
        pipeline = client.pipeline()
        for i, job_id in to_bury:
            pipeline.reserve_job(job_id).bury(job_id, jobs[i].priority)
        steps = outcomes_of(pipeline)
        for k, (i, job_id) in enumerate(to_bury):
            for step in steps[2 * k : 2 * k + 2]:
                if isinstance(step, BaseException):
                    outcomes[i] = RuntimeError(f"the copy {job_id} could not be buried: {step}")
    return outcomes


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job this connection claimed with ``reserve-job``: its stats just before, and its bytes."""

    stats: JobStats
    message: Message

    def record(self) -> JobRecord:
        raw = self.message.raw if self.message.raw is not None else b""
        stats = self.stats
        return JobRecord(raw, stats.pri, stats.ttr, remaining_delay(stats), stats.state == "buried")


def claim(client: Client, ids: Sequence[int]) -> list[Claimed]:
    """Claim each job with ``reserve-job`` (beanstalkd 1.12+), its ``stats-job`` read just before in the
    same write. A job a worker holds, or that is gone, is skipped."""
    pipeline = client.pipeline()
    for job_id in ids:
        pipeline.stats_job_yaml(job_id).reserve_job(job_id)
    return [Claimed(stats, message) for stats, message in _jobs_of(pipeline) if stats.state != "reserved"]


def restore(client: Client, claimed: Sequence[Claimed]) -> None:
    """Give claimed jobs back as they were: buried ones buried, the others at their priority and delay."""
    if not claimed:
        return
    pipeline = client.pipeline()
    for job in claimed:
        stats = job.stats
        if stats.state == "buried":
            pipeline.bury(stats.id, stats.pri)
        else:
            pipeline.release(stats.id, stats.pri, remaining_delay(stats))
    pipeline.execute()


def delete_ids(client: Client, ids: Sequence[int]) -> list[int]:
    """Delete jobs by id, pipelined; the ids that were not found (gone, or a worker holds them)."""
    missing: list[int] = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        pipeline = client.pipeline()
        for job_id in chunk:
            pipeline.delete(job_id)
        missing += [job_id for job_id, r in zip(chunk, found(pipeline), strict=True) if isinstance(r, NotFound)]
    return missing
