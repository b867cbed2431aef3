"""``JobInfo``: the fields of a ``stats-job`` reply that the worker and the CLI's bulk commands use.

The fully typed ``JobStats`` decodes every field through the spec's general flat-YAML reader (about
11 us a job); a worker asks one ``stats-job`` per job and a CLI walk may ask 100,000, so this reads
the one layout beanstalkd prints (``---`` then ``key: value`` lines, in its order) with one anchored
regular-expression match (about 1.5 us); the same lines in another order or with more fields, with a
pass over the lines (about 4 us). Anything else (a missing field, a field that is not a number, an unknown state, a
layout the pass does not recognise) goes to the full ``JobStats`` decoder, whose answer (or typed
error) is used instead: nothing is guessed, and a reply this fast path cannot read gets exactly
the full decoder's result.
"""

from __future__ import annotations

__all__ = ["JOB_STATES", "STATS_JOB_LAYOUT", "JobInfo", "decode_job_info", "stats_job_info"]

import re
from dataclasses import dataclass

from beanstalkm._core.requests import Reply, Request
from beanstalkm._generated import commands as _c
from beanstalkm._generated.stats import JobStats

JOB_STATES = frozenset({"ready", "delayed", "reserved", "buried"})

_NUMBER = rb"(\d{1,20})"  # beanstalkd's counters are 64-bit: at most 20 digits
STATS_JOB_LAYOUT = re.compile(
    rb"---\nid: %(n)s\ntube: (\"?)([!#-~]+)\2\nstate: (ready|delayed|reserved|buried)\npri: %(n)s\nage: %(n)s\n"
    rb"delay: %(n)s\nttr: %(n)s\ntime-left: %(n)s\nfile: %(n)s\nreserves: %(n)s\ntimeouts: %(n)s\n"
    rb"releases: %(n)s\nburies: %(n)s\nkicks: %(n)s\n" % {b"n": _NUMBER}
)
"""The body beanstalkd (1.10 to 1.13) prints, field by field in its order (1.13 quotes the tube): groups 1 id,
3 tube, 4 state, 5 pri, 6 age, 7 delay, 8 ttr, 9 time-left, 10 file, 11 reserves, 12 timeouts, 13 releases,
14 buries, 15 kicks (the CLI's bulk commands read them too)."""
_LINE = re.compile(r"^([a-z-]+): ([^\n]*)$", re.MULTILINE)
_INT_KEYS = ("id", "pri", "age", "delay", "ttr", "time-left", "reserves", "timeouts", "releases", "buries", "kicks")
_DIGITS_MAX = 20  # beanstalkd's counters are 64-bit
_FULL_DECODE = _c.stats_job(1).decode  # the generated decoder: typed failures, and any layout


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job's ``stats-job``, every field but ``file``: all integers but ``tube`` and ``state``."""

    id: int
    tube: str
    state: str
    pri: int
    age: int
    delay: int
    ttr: int
    time_left: int
    reserves: int
    timeouts: int
    releases: int
    buries: int
    kicks: int

    @classmethod
    def of(cls, stats: JobStats) -> JobInfo:
        """The fields of a fully decoded ``JobStats``."""
        return cls(
            stats.id,
            stats.tube,
            stats.state,
            stats.pri,
            stats.age,
            stats.delay,
            stats.ttr,
            stats.time_left,
            stats.reserves,
            stats.timeouts,
            stats.releases,
            stats.buries,
            stats.kicks,
        )

    @classmethod
    def from_yaml(cls, text: str | bytes) -> JobInfo:
        """Decode a ``stats-job`` body (the server's YAML, as bytes or text); ``ProtocolError`` if it is
        not one."""
        body = text.encode("utf-8") if isinstance(text, str) else text
        info = _fast(body)
        return info if info is not None else cls.of(JobStats.from_yaml(body))


def _fast(body: bytes) -> JobInfo | None:
    """The usual layout at once; None for anything else (the full decoder then decides)."""
    match = STATS_JOB_LAYOUT.fullmatch(body)
    if match is not None:
        n = [int(number) for number in match.group(1, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15)]
        tube, state = match.group(3, 4)
        return JobInfo(n[0], tube.decode("ascii"), state.decode("ascii"), *n[1:])
    return _lines(body)


def _lines(body: bytes) -> JobInfo | None:
    """The ``key: value`` lines in any order (the fields beanstalkd prints, perhaps more); None for anything
    else."""
    if not body.startswith(b"---\n") or not body.isascii():
        return None
    text = body.decode("ascii")
    pairs = _LINE.findall(text, 4)
    fields = dict(pairs)
    if len(fields) != len(pairs):  # a key twice: not beanstalkd's layout
        return None
    try:
        numbers = [fields[key] for key in _INT_KEYS]
        tube, state = fields["tube"], fields["state"]
    except KeyError:
        return None
    for number in numbers:
        if not number.isdigit() or len(number) > _DIGITS_MAX:
            return None
    if len(tube) >= 2 and tube[0] == tube[-1] == '"':  # 1.13 quotes it; a tube name holds no quote
        tube = tube[1:-1]
    if state not in JOB_STATES or not tube or '"' in tube:
        return None
    n = [int(number) for number in numbers]
    return JobInfo(n[0], tube, state, n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9], n[10])


def decode_job_info(reply: Reply) -> JobInfo:
    """A ``stats-job`` reply as a :class:`JobInfo` (its failures as ``stats_job``'s: ``NOT_FOUND``, ...)."""
    if reply.status == "OK" and len(reply.args) == 1 and reply.body is not None and reply.trailer is None:
        info = _fast(reply.body)
        if info is not None:
            return info
    return JobInfo.of(_FULL_DECODE(reply))  # or the command's typed failure (NOT_FOUND, ...), or ProtocolError


def stats_job_info(job_id: int) -> Request[JobInfo]:
    """Encode ``stats-job job_id``, decoded as a :class:`JobInfo` (its failures as ``stats_job``'s)."""
    request = _c.stats_job(job_id)
    return Request(request.command, request.head, decode_job_info)
