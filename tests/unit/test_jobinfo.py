"""``stats-job`` as the worker and the CLI read it: the generated ``JobStats`` decoder (and its request, the
worker's), and ``STATS_JOB_LAYOUT``, the CLI bulk commands' one match, giving the same fields."""

from __future__ import annotations

import re

import pytest

from beanstalkm import NotFound, ProtocolError
from beanstalkm._core.jobinfo import STATS_JOB_LAYOUT
from beanstalkm._core.requests import Reply
from beanstalkm._generated import commands as _c
from beanstalkm._generated.stats import JobStats

BODY_112 = (
    b"---\nid: 12345\ntube: emails\nstate: reserved\npri: 4294967295\nage: 3\ndelay: 0\nttr: 120\n"
    b"time-left: 119\nfile: 0\nreserves: 4\ntimeouts: 2\nreleases: 1\nburies: 0\nkicks: 7\n"
)
BODY_113 = BODY_112.replace(b"tube: emails", b'tube: "emails"')
LAYOUT = [
    (BODY_112, "emails"),
    (BODY_113, "emails"),
    (BODY_112.replace(b"tube: emails", b"tube: on"), "on"),  # a YAML parser's True: the server's text, here
    (BODY_112.replace(b"tube: emails", b"tube: 0123"), "0123"),  # an octal-looking name stays text
]
ODD = [
    BODY_112.replace(b"---\n", b""),  # no document start: the general reader's business
    BODY_112.replace(b"kicks: 7\n", b"kicks: 7\nfuture-field: x\n"),
    b"---\n" + b"\n".join(reversed(BODY_112[4:].rstrip(b"\n").split(b"\n"))) + b"\n",
]
BROKEN = [
    BODY_112.replace(b"reserves: 4", b"reserves: four"),
    BODY_112.replace(b"reserves: 4\n", b""),
    BODY_112.replace(b"state: reserved", b"state: sleeping"),
    BODY_112.replace(b"pri: 4294967295", b"pri: " + b"9" * 21),
]
_GROUPS = {"id": 1, "pri": 5, "age": 6, "delay": 7, "ttr": 8, "time_left": 9, "file": 10, "reserves": 11}
_GROUPS |= {"timeouts": 12, "releases": 13, "buries": 14, "kicks": 15}


def layout_fields(match: re.Match[bytes]) -> dict[str, object]:
    """The fields ``STATS_JOB_LAYOUT``'s groups give, as the CLI reads them."""
    numbers = {name: int(match[group]) for name, group in _GROUPS.items()}
    return {"tube": match[3].decode("ascii"), "state": match[4].decode("ascii"), **numbers}


@pytest.mark.parametrize(("body", "tube"), LAYOUT)
def test_the_servers_layout_is_one_match_and_reads_as_job_stats(body: bytes, tube: str) -> None:
    stats = JobStats.from_yaml(body)
    assert (stats.id, stats.tube, stats.state, stats.pri, stats.ttr) == (12345, tube, "reserved", 2**32 - 1, 120)
    assert (stats.reserves, stats.timeouts, stats.releases, stats.buries, stats.kicks) == (4, 2, 1, 0, 7)
    assert (stats.age, stats.delay, stats.time_left, stats.extra) == (3, 0, 119, {})
    match = STATS_JOB_LAYOUT.fullmatch(body)
    assert match is not None
    assert layout_fields(match) == {name: getattr(stats, name) for name in ("tube", "state", *_GROUPS)}
    reply = Reply("OK", (str(len(body)),), body)
    assert _c.stats_job(12345).decode(reply) == stats


@pytest.mark.parametrize("body", ODD)
def test_other_layouts_miss_the_match_and_read_by_the_general_path(body: bytes) -> None:
    assert STATS_JOB_LAYOUT.fullmatch(body) is None
    stats = JobStats.from_yaml(body)
    assert (stats.id, stats.tube, stats.state, stats.pri) == (12345, "emails", "reserved", 2**32 - 1)
    assert (stats.time_left, stats.kicks) == (119, 7)
    assert stats.extra == ({"future-field": "x"} if b"future-field" in body else {})


@pytest.mark.parametrize("body", BROKEN)
def test_a_broken_reply_is_a_protocol_error(body: bytes) -> None:
    assert STATS_JOB_LAYOUT.fullmatch(body) is None
    with pytest.raises(ProtocolError):
        JobStats.from_yaml(body)
    with pytest.raises(ProtocolError):
        _c.stats_job(1).decode(Reply("OK", (str(len(body)),), body))


def test_failures_are_the_commands_typed_errors() -> None:
    request = _c.stats_job(42)
    assert request.head == b"stats-job 42\r\n"
    with pytest.raises(NotFound):
        request.decode(Reply("NOT_FOUND", (), None))
    with pytest.raises(ProtocolError):  # a body not followed by CRLF
        request.decode(Reply("OK", (str(len(BODY_112)),), BODY_112, trailer=b"xx"))
