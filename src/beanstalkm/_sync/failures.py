# Derived by `python -m codegen` from src/beanstalkm/_async/failures.py (sha256 e0d9260017995a121bd955bd8a5191b629919ca1f45c62c516e86d5df9859f79). DO NOT EDIT; edit the source and run `make generate`.
"""Failure records: stored, found, listed, retried and purged, in beanstalkd itself (docs/worker.md).

The sync flavour, derived from the asyncio source by ``python -m codegen``.
"""

from __future__ import annotations

__all__ = ["delete_record", "find_record", "list_records", "purge_records", "retry_records", "store_record"]

import contextlib
from collections.abc import Collection

from beanstalkm._core.worker import FailureRecord, record_prefix, record_tube
from beanstalkm._errors import BatchFailed
from beanstalkm._generated.errors import NotFound
from beanstalkm._generated.stats import JobStats
from beanstalkm._sync.client import Client
from beanstalkm._sync.connection import Pipeline
from beanstalkm._sync.message import Message

RECORD_TTR = 60
"""The record jobs' time to run (nobody reserves them)."""
RECORD_PRIORITY = 2**31
"""A first record's priority in its record tube; each later one of the same job is more urgent."""


def store_record(client: Client, record: FailureRecord) -> int:
    """Put ``record`` into its record tube; its record job's id.

    Its priority falls as the job's ``kicks`` grow (a job is buried again only after a kick), so the
    newest record is the one ``peek-ready`` shows when an older one was left behind (its delete lost
    with a connection)."""
    priority = max(0, RECORD_PRIORITY - record.kicks)
    message = client.put(
        record.to_json(), tube=record_tube(record.tube, record.job_id), priority=priority, ttr=RECORD_TTR
    )
    return message.uid


def find_record(client: Client, tube: str, job_id: int) -> FailureRecord | None:
    """The failure record of job ``job_id`` of ``tube``, if it has one (one round trip, no reserve)."""
    records = _peek(client, [record_tube(tube, job_id)])
    return next((r for r in records if r.job_id == job_id and r.tube == tube), None)


def delete_record(client: Client, record: FailureRecord) -> None:
    """Delete a record's job (one already gone is fine)."""
    if record.record_id:
        with contextlib.suppress(NotFound):
            client.queue.delete(record.record_id)


def list_records(client: Client, tube: str, ids: Collection[int] | None = None) -> list[FailureRecord]:
    """The failure records of ``tube`` (those of ``ids`` only, when given), by job id, each with the
    buried job's ``state`` now: ``"buried"``, ``"ready"``/``"delayed"``/``"reserved"`` once retried,
    ``"gone"`` once deleted. Two round trips and a ``list-tubes``; nothing is reserved."""
    if ids is not None:
        names = [record_tube(tube, job_id) for job_id in sorted(set(ids))]
    else:
        prefix = record_prefix(tube)
        names = [name for name in client.queue.list_tubes() if name.startswith(prefix)]
    records = [r for r in _peek(client, names) if r.tube == tube and (ids is None or r.job_id in ids)]
    # a job buried again has its older record replaced: keep the newest (highest record id) only
    newest = {record.job_id: record for record in sorted(records, key=lambda r: r.record_id)}
    records = sorted(newest.values(), key=lambda r: r.job_id)
    if not records:
        return []
    p = client.pipeline()
    for record in records:
        p.stats_job(record.job_id)
    results = _execute(p)
    return [
        record.with_state(stats.state if isinstance(stats, JobStats) and stats.tube == record.tube else "gone")
        for record, stats in zip(records, results, strict=True)
    ]


def retry_records(client: Client, tube: str, ids: Collection[int] | None = None) -> list[FailureRecord]:
    """Kick ``tube``'s buried jobs that have records (those of ``ids`` only, when given): each gets a
    fresh budget of attempts. The records stay until the job succeeds or is buried again (they
    hold the count the fresh budget starts from). The records of the jobs kicked."""
    kicked = []
    for record in list_records(client, tube, ids):
        if record.state != "buried":
            continue
        try:
            client.queue.kick_job(record.job_id)
        except NotFound:
            continue  # deleted or kicked meanwhile
        kicked.append(record.with_state("ready"))
    return kicked


def purge_records(client: Client, tube: str, ids: Collection[int] | None = None) -> list[FailureRecord]:
    """Delete ``tube``'s buried jobs that have records, and their records (those of ``ids`` only,
    when given); records of jobs already gone are deleted too. A job retried and not buried
    again is left alone, record and all. The records purged."""
    purged = []
    for record in list_records(client, tube, ids):
        if record.state == "buried":
            try:
                client.queue.delete(record.job_id)
            except NotFound:
                continue  # kicked or deleted meanwhile: look again next time
        elif record.state != "gone":
            continue
        delete_record(client, record)
        purged.append(record.with_state("gone"))
    return purged


def _peek(client: Client, names: list[str]) -> list[FailureRecord]:
    """The records at the head of the record tubes ``names`` (one pipelined write)."""
    if not names:
        return []
    p = client.pipeline()
    for name in names:
        p.use(name)
        p.peek_ready()
    results = _execute(p)
    found = (FailureRecord.from_json(value.body, value.uid) for value in results[1::2] if isinstance(value, Message))
    return [record for record in found if record is not None]


def _execute(pipeline: Pipeline) -> list[object]:
    """A pipeline's results, whether or not some item failed (its error is its result)."""
    try:
        return pipeline.execute()
    except BatchFailed as exc:
        return exc.results
