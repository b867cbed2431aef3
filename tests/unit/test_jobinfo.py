"""``JobInfo``: the fast ``stats-job`` decoder the worker and the CLI use gives the full decoder's answer."""

from __future__ import annotations

import pytest

from beanstalkm import NotFound, ProtocolError
from beanstalkm._core.jobinfo import JobInfo, stats_job_info
from beanstalkm._core.requests import Reply
from beanstalkm._generated.stats import JobStats

BODY_112 = (
    b"---\nid: 12345\ntube: emails\nstate: reserved\npri: 4294967295\nage: 3\ndelay: 0\nttr: 120\n"
    b"time-left: 119\nfile: 0\nreserves: 4\ntimeouts: 2\nreleases: 1\nburies: 0\nkicks: 7\n"
)
BODY_113 = BODY_112.replace(b"tube: emails", b'tube: "emails"')
ODD = [
    BODY_112.replace(b"---\n", b""),  # no document start: the general reader's business
    BODY_112.replace(b"tube: emails", b"tube: on"),  # a YAML parser's True: the server's text, here
    BODY_112.replace(b"kicks: 7\n", b"kicks: 7\nfuture-field: x\n"),
    b"---\n" + b"\n".join(reversed(BODY_112[4:].rstrip(b"\n").split(b"\n"))) + b"\n",
    BODY_112.replace(b"tube: emails", b"tube: 0123"),  # an octal-looking name stays text
]
BROKEN = [
    BODY_112.replace(b"reserves: 4", b"reserves: four"),
    BODY_112.replace(b"reserves: 4\n", b""),
    BODY_112.replace(b"state: reserved", b"state: sleeping"),
    BODY_112.replace(b"pri: 4294967295", b"pri: " + b"9" * 21),
]


def full(body: bytes) -> JobInfo:
    return JobInfo.of(JobStats.from_yaml(body))


@pytest.mark.parametrize("body", [BODY_112, BODY_113, *ODD])
def test_the_fast_decoder_gives_the_full_decoders_answer(body: bytes) -> None:
    assert JobInfo.from_yaml(body) == full(body)
    assert JobInfo.from_yaml(body.decode()) == full(body)
    reply = Reply("OK", (str(len(body)),), body)
    assert stats_job_info(12345).decode(reply) == full(body)


def test_the_fields() -> None:
    info = JobInfo.from_yaml(BODY_113)
    assert (info.id, info.tube, info.state, info.pri, info.ttr) == (12345, "emails", "reserved", 2**32 - 1, 120)
    assert (info.reserves, info.timeouts, info.releases, info.buries, info.kicks) == (4, 2, 1, 0, 7)
    assert (info.age, info.delay, info.time_left) == (3, 0, 119)


@pytest.mark.parametrize("body", BROKEN)
def test_a_broken_reply_is_the_full_decoders_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        JobStats.from_yaml(body)
    with pytest.raises(ProtocolError):
        JobInfo.from_yaml(body)
    with pytest.raises(ProtocolError):
        stats_job_info(1).decode(Reply("OK", (str(len(body)),), body))


def test_failures_are_the_commands_typed_errors() -> None:
    request = stats_job_info(42)
    assert request.head == b"stats-job 42\r\n"
    with pytest.raises(NotFound):
        request.decode(Reply("NOT_FOUND", (), None))
    with pytest.raises(ProtocolError):  # a body not followed by CRLF
        request.decode(Reply("OK", (str(len(BODY_112)),), BODY_112, trailer=b"xx"))


def test_the_servers_layout_takes_the_one_match_and_other_orders_the_line_pass() -> None:
    from beanstalkm._core.jobinfo import STATS_JOB_LAYOUT, _lines

    assert STATS_JOB_LAYOUT.fullmatch(BODY_112) is not None and STATS_JOB_LAYOUT.fullmatch(BODY_113) is not None
    reordered = ODD[3]
    assert STATS_JOB_LAYOUT.fullmatch(reordered) is None and _lines(reordered) == full(reordered)
