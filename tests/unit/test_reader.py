"""The reply reader and every command's reply decoder.

``CASES`` lists, for every encoder, a reply for its success status, for each
failure status the spec lists for it and for each general error, plus replies
the spec does not allow. Each reply is fed to a fresh reader whole, split in
two at every byte boundary, and one byte at a time, then decoded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import beanstalkm
from beanstalkm import (
    BadFormat,
    Buried,
    CommandFailed,
    CorruptJob,
    DeadlineSoon,
    Draining,
    ExpectedCrlf,
    InternalError,
    JobStats,
    JobTooBig,
    NotFound,
    NotIgnored,
    OutOfMemory,
    ProtocolError,
    ServerStats,
    TimedOut,
    TubeStats,
    UnexpectedResponse,
    UnknownCommand,
)
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Job, Reply, Request
from beanstalkm._generated import commands

from ._support import (
    GENERAL_ERRORS,
    SERVER_TEXT_112,
    SPEC,
    all_encoder_names,
    expected_stats,
    ok_reply,
    raw_variants,
    spec_command,
    stats_body,
)

C = commands

# --- fixtures -----------------------------------------------------------------------------

JOB_BODY = stats_body("JobStats", {"id": "7", "tube": "default", "state": "reserved"})
JOB_STATS = JobStats(**expected_stats("JobStats", {"id": 7, "tube": "default", "state": "reserved"}))
TUBE_BODY = stats_body("TubeStats", {"name": "default"})
TUBE_STATS = TubeStats(**expected_stats("TubeStats", {"name": "default"}))
SERVER_BODY = stats_body("ServerStats", SERVER_TEXT_112)
SERVER_STATS = ServerStats(
    **expected_stats(
        "ServerStats",
        {
            "version": "1.12",
            "rusage-utime": Decimal("0.003541"),
            "rusage-stime": Decimal("0.000000"),
            "draining": False,
            "id": "2475343b827f853a",
            "hostname": "vm",
            "os": "#1 SMP PREEMPT_DYNAMIC @0",
            "platform": "x86_64",
        },
    )
)
LIST_BODY = b"---\n- default\n- foo\n"

# One encoder call per encoder name; the reply decides everything else.
MAKE: dict[str, Callable[[], Request[Any]]] = {
    "put": lambda: C.put(b"hello"),
    "use": lambda: C.use("foo"),
    "reserve": lambda: C.reserve(),
    "reserve_with_timeout": lambda: C.reserve_with_timeout(5),
    "reserve_job": lambda: C.reserve_job(7),
    "delete": lambda: C.delete(7),
    "release": lambda: C.release(7),
    "bury": lambda: C.bury(7),
    "touch": lambda: C.touch(7),
    "watch": lambda: C.watch("foo"),
    "ignore": lambda: C.ignore("foo"),
    "peek": lambda: C.peek(7),
    "peek_ready": lambda: C.peek_ready(),
    "peek_delayed": lambda: C.peek_delayed(),
    "peek_buried": lambda: C.peek_buried(),
    "kick": lambda: C.kick(10),
    "kick_job": lambda: C.kick_job(7),
    "stats_job": lambda: C.stats_job(7),
    "stats_tube": lambda: C.stats_tube("default"),
    "stats": lambda: C.stats(),
    "list_tubes": lambda: C.list_tubes(),
    "using": lambda: C.using(),
    "watching": lambda: C.watching(),
    "pause_tube": lambda: C.pause_tube("default", 10),
    "quit": lambda: C.quit(),
    "stats_job_yaml": lambda: C.stats_job_yaml(7),
    "stats_tube_yaml": lambda: C.stats_tube_yaml("default"),
    "stats_yaml": lambda: C.stats_yaml(),
    "list_tubes_yaml": lambda: C.list_tubes_yaml(),
    "watching_yaml": lambda: C.watching_yaml(),
}

GENERAL: dict[str, type[CommandFailed]] = {
    "OUT_OF_MEMORY": OutOfMemory,
    "INTERNAL_ERROR": InternalError,
    "BAD_FORMAT": BadFormat,
    "UNKNOWN_COMMAND": UnknownCommand,
}


@dataclass(frozen=True)
class ReplyCase:
    """A reply to one encoder and what decoding it must give.

    ``kind`` is 'success', 'failure' (a status the spec lists, including the
    general errors) or 'unexpected' (a status the spec does not list).
    """

    encoder: str
    status: str
    reply: bytes
    kind: str
    expected: object = None
    raises: type[Exception] | None = None
    reply_args: tuple[str, ...] = ()
    check: Callable[[Any], None] | None = None
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.encoder}-{self.status}{'-' + self.note if self.note else ''}"


def ok(encoder: str, reply: bytes, expected: object, note: str = "") -> ReplyCase:
    return ReplyCase(encoder, reply.split(b"\r\n", 1)[0].split(b" ")[0].decode(), reply, "success", expected, note=note)


def err(
    encoder: str,
    reply: bytes,
    raises: type[Exception],
    *,
    check: Callable[[Any], None] | None = None,
    kind: str = "failure",
    note: str = "",
) -> ReplyCase:
    line = reply.split(b"\r\n", 1)[0].decode()
    status, *args = line.split(" ")
    return ReplyCase(encoder, status, reply, kind, None, raises, tuple(args), check, note)


def none(encoder: str, reply: bytes) -> ReplyCase:
    """A failure status the spec maps to a None return (peek* + NOT_FOUND)."""
    status = reply.split(b"\r\n", 1)[0].decode()
    return ReplyCase(encoder, status, reply, "failure", None)


def unexpected(encoder: str, reply: bytes, note: str = "") -> ReplyCase:
    return err(encoder, reply, UnexpectedResponse, kind="unexpected", note=note)


def _buried_id(expected: int | None) -> Callable[[Any], None]:
    def check(exc: Any) -> None:
        assert isinstance(exc, Buried)
        assert exc.id == expected

    return check


HELLO = b"RESERVED 7 5\r\nhello\r\n"
TRICKY = b"RESERVED 18446744073709551615 6\r\n\r\n\x00\xff\r\n\r\n"  # body b"\r\n\x00\xff\r\n"
FOUND = b"FOUND 7 5\r\nhello\r\n"
FOUND_EMPTY = b"FOUND 3 0\r\n\r\n"

SPECIFIC: list[ReplyCase] = [
    # put
    ok("put", b"INSERTED 42\r\n", 42),
    ok("put", b"INSERTED 18446744073709551615\r\n", 2**64 - 1, "max"),
    err("put", b"BURIED 12\r\n", Buried, check=_buried_id(12)),
    err("put", b"EXPECTED_CRLF\r\n", ExpectedCrlf),
    err("put", b"JOB_TOO_BIG\r\n", JobTooBig),
    err("put", b"DRAINING\r\n", Draining),
    unexpected("put", b"NOT_FOUND\r\n"),
    unexpected("put", b"DELETED\r\n"),
    unexpected("put", b"OK 3\r\nabc\r\n", "body"),
    # use
    ok("use", b"USING foo\r\n", "foo"),
    ok("use", b"USING 0123\r\n", "0123", "digits"),
    unexpected("use", b"NOT_FOUND\r\n"),
    unexpected("use", b"WATCHING 1\r\n"),
    # reserve family
    ok("reserve", HELLO, Job(7, b"hello")),
    ok("reserve", TRICKY, Job(2**64 - 1, b"\r\n\x00\xff\r\n"), "tricky-body"),
    err("reserve", b"DEADLINE_SOON\r\n", DeadlineSoon),
    err("reserve", b"TIMED_OUT\r\n", TimedOut),
    unexpected("reserve", b"NOT_FOUND\r\n"),
    unexpected("reserve", b"FOUND 7 5\r\nhello\r\n", "body"),
    ok("reserve_with_timeout", HELLO, Job(7, b"hello")),
    ok("reserve_with_timeout", b"RESERVED 1 0\r\n\r\n", Job(1, b""), "empty-body"),
    err("reserve_with_timeout", b"DEADLINE_SOON\r\n", DeadlineSoon),
    err("reserve_with_timeout", b"TIMED_OUT\r\n", TimedOut),
    unexpected("reserve_with_timeout", b"NOT_FOUND\r\n"),
    ok("reserve_job", HELLO, Job(7, b"hello")),
    err("reserve_job", b"NOT_FOUND\r\n", NotFound),
    unexpected("reserve_job", b"DEADLINE_SOON\r\n"),
    unexpected("reserve_job", b"TIMED_OUT\r\n"),
    # job commands
    ok("delete", b"DELETED\r\n", None),
    err("delete", b"NOT_FOUND\r\n", NotFound),
    unexpected("delete", b"BURIED\r\n"),
    ok("release", b"RELEASED\r\n", None),
    err("release", b"BURIED\r\n", Buried, check=_buried_id(None)),
    err("release", b"NOT_FOUND\r\n", NotFound),
    unexpected("release", b"DELETED\r\n"),
    ok("bury", b"BURIED\r\n", None),
    err("bury", b"NOT_FOUND\r\n", NotFound),
    unexpected("bury", b"RELEASED\r\n"),
    ok("touch", b"TOUCHED\r\n", None),
    err("touch", b"NOT_FOUND\r\n", NotFound),
    unexpected("touch", b"DEADLINE_SOON\r\n"),
    # watch list
    ok("watch", b"WATCHING 2\r\n", 2),
    unexpected("watch", b"NOT_IGNORED\r\n"),
    ok("ignore", b"WATCHING 1\r\n", 1),
    err("ignore", b"NOT_IGNORED\r\n", NotIgnored),
    unexpected("ignore", b"NOT_FOUND\r\n"),
    # peeks
    ok("peek", FOUND, Job(7, b"hello")),
    ok("peek", FOUND_EMPTY, Job(3, b""), "empty-body"),
    none("peek", b"NOT_FOUND\r\n"),
    unexpected("peek", HELLO, "reserved"),
    ok("peek_ready", FOUND, Job(7, b"hello")),
    none("peek_ready", b"NOT_FOUND\r\n"),
    unexpected("peek_ready", b"BURIED\r\n"),
    ok("peek_delayed", FOUND, Job(7, b"hello")),
    none("peek_delayed", b"NOT_FOUND\r\n"),
    unexpected("peek_delayed", b"TIMED_OUT\r\n"),
    ok("peek_buried", FOUND, Job(7, b"hello")),
    ok("peek_buried", b"FOUND 9 4\r\nOK 1\r\n", Job(9, b"OK 1"), "body-looks-like-a-reply"),
    none("peek_buried", b"NOT_FOUND\r\n"),
    unexpected("peek_buried", b"KICKED 1\r\n"),
    # kicks
    ok("kick", b"KICKED 3\r\n", 3),
    ok("kick", b"KICKED 0\r\n", 0, "zero"),
    unexpected("kick", b"NOT_FOUND\r\n"),
    ok("kick_job", b"KICKED\r\n", None),
    err("kick_job", b"NOT_FOUND\r\n", NotFound),
    unexpected("kick_job", b"BURIED\r\n"),
    # stats
    ok("stats_job", ok_reply(JOB_BODY), JOB_STATS),
    err("stats_job", b"NOT_FOUND\r\n", NotFound),
    unexpected("stats_job", b"USING x\r\n"),
    ok("stats_tube", ok_reply(TUBE_BODY), TUBE_STATS),
    err("stats_tube", b"NOT_FOUND\r\n", NotFound),
    unexpected("stats_tube", FOUND, "found"),
    ok("stats", ok_reply(SERVER_BODY), SERVER_STATS),
    unexpected("stats", b"NOT_FOUND\r\n"),
    unexpected("stats", HELLO, "reserved"),
    # tube lists
    ok("list_tubes", b"OK 14\r\n---\n- default\n\r\n", ["default"]),
    ok("list_tubes", ok_reply(LIST_BODY), ["default", "foo"], "two"),
    unexpected("list_tubes", b"NOT_FOUND\r\n"),
    unexpected("list_tubes", b"USING x\r\n"),
    ok("using", b"USING default\r\n", "default"),
    unexpected("using", b"OK 14\r\n---\n- default\n\r\n", "ok"),
    ok("watching", ok_reply(LIST_BODY), ["default", "foo"]),
    unexpected("watching", b"WATCHING 2\r\n"),
    # pause
    ok("pause_tube", b"PAUSED\r\n", None),
    err("pause_tube", b"NOT_FOUND\r\n", NotFound),
    unexpected("pause_tube", b"DELETED\r\n"),
    # raw YAML variants: the body as text, failures as the base command
    ok("stats_job_yaml", ok_reply(JOB_BODY), JOB_BODY.decode()),
    err("stats_job_yaml", b"NOT_FOUND\r\n", NotFound),
    unexpected("stats_job_yaml", b"FOUND 1 1\r\nx\r\n"),
    ok("stats_tube_yaml", ok_reply(TUBE_BODY), TUBE_BODY.decode()),
    err("stats_tube_yaml", b"NOT_FOUND\r\n", NotFound),
    unexpected("stats_tube_yaml", b"PAUSED\r\n"),
    ok("stats_yaml", ok_reply(SERVER_BODY), SERVER_BODY.decode()),
    ok("stats_yaml", ok_reply(b"---\nos: caf\xc3\xa9\n"), "---\nos: café\n", "utf8"),
    unexpected("stats_yaml", b"NOT_FOUND\r\n"),
    ok("list_tubes_yaml", ok_reply(LIST_BODY), LIST_BODY.decode()),
    unexpected("list_tubes_yaml", b"NOT_FOUND\r\n"),
    ok("watching_yaml", ok_reply(b"---\n- on\n"), "---\n- on\n"),
    unexpected("watching_yaml", b"NOT_IGNORED\r\n"),
    # statuses no beanstalkd sends
    unexpected("delete", b"WHATEVER\r\n", "unknown-word"),
    unexpected("put", b"INSERTED_ 5\r\n", "unknown-word"),
    unexpected("stats", b"ok 3\r\n", "lowercase"),
]


def _general_cases() -> list[ReplyCase]:
    cases: list[ReplyCase] = []
    for encoder in sorted(MAKE):
        if encoder == "quit":
            continue
        for status, cls in GENERAL.items():
            cases.append(err(encoder, status.encode() + b"\r\n", cls))
    return cases


CASES: list[ReplyCase] = SPECIFIC + _general_cases()


# --- coverage of the table against the spec -----------------------------------------


def _spec_statuses(encoder: str) -> set[str]:
    cmd = spec_command(raw_variants().get(encoder, encoder))
    if cmd.get("no_reply"):
        return set()
    statuses = {cmd["success"]["status"]} | {f["status"] for f in cmd["failures"]}
    return statuses | set(GENERAL_ERRORS)


def test_table_covers_every_response_of_every_command() -> None:
    assert set(MAKE) == all_encoder_names()
    covered: dict[str, set[str]] = {name: set() for name in MAKE}
    for case in CASES:
        if case.kind != "unexpected":
            covered[case.encoder].add(case.status)
    missing = {name: sorted(_spec_statuses(name) - got) for name, got in covered.items() if _spec_statuses(name) - got}
    assert missing == {}
    extra = {name: sorted(got - _spec_statuses(name)) for name, got in covered.items() if got - _spec_statuses(name)}
    assert extra == {}, "cases marked success/failure for statuses the spec does not list"
    assert set(GENERAL) == set(GENERAL_ERRORS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_agrees_with_spec(case: ReplyCase) -> None:
    """The table's expectations are those the spec implies (exception class by status, None for returns_none)."""
    cmd = spec_command(raw_variants().get(case.encoder, case.encoder))
    listed = _spec_statuses(case.encoder)
    if case.kind == "unexpected":
        assert case.status not in listed
        assert case.raises is UnexpectedResponse
        return
    assert case.status in listed
    if case.kind == "success":
        assert case.status == cmd["success"]["status"]
        assert case.raises is None
        return
    failure = next((f for f in cmd["failures"] if f["status"] == case.status), None)
    if failure is not None and failure.get("returns_none"):
        assert case.raises is None
        assert case.expected is None
    else:
        assert case.raises is not None
        assert case.raises.__name__ == SPEC["statuses"][case.status]["class"]
        assert beanstalkm.STATUS_ERRORS[case.status] is case.raises


# --- feeding ----------------------------------------------------------------------------


def _drain(reader: ReplyReader) -> list[Reply]:
    replies: list[Reply] = []
    while (reply := reader.next_reply()) is not None:
        replies.append(reply)
    return replies


def _assert_empty(reader: ReplyReader) -> None:
    assert reader.next_reply() is None
    assert reader.buffered == 0
    assert reader.missing() == 0


def feed_whole(data: bytes) -> Reply:
    reader = commands.new_reader()
    reader.feed(data)
    replies = _drain(reader)
    assert len(replies) == 1
    _assert_empty(reader)
    return replies[0]


def feed_split(data: bytes, cut: int) -> Reply:
    reader = commands.new_reader()
    reader.feed(data[:cut])
    assert reader.next_reply() is None, f"reply complete after {cut} of {len(data)} bytes"
    assert reader.buffered <= cut
    reader.feed(data[cut:])
    replies = _drain(reader)
    assert len(replies) == 1
    _assert_empty(reader)
    return replies[0]


def feed_bytewise(data: bytes) -> Reply:
    reader = commands.new_reader()
    for i in range(len(data) - 1):
        reader.feed(data[i : i + 1])
        assert reader.next_reply() is None, f"reply complete after {i + 1} of {len(data)} bytes"
    reader.feed(data[-1:])
    reply = reader.next_reply()
    assert reply is not None
    _assert_empty(reader)
    return reply


def _expected_reply(data: bytes) -> Reply:
    """The Reply the bytes stand for, worked out independently of the reader."""
    line, _, rest = data.partition(b"\r\n")
    status, *args = line.decode("ascii").split(" ")
    if status in {"RESERVED", "FOUND", "OK"}:
        size = int(args[-1])
        assert rest[size:] == b"\r\n"
        return Reply(status, tuple(args), rest[:size])
    assert rest == b""
    return Reply(status, tuple(args), None)


def check_decoded(case: ReplyCase, reply: Reply) -> None:
    req = MAKE[case.encoder]()
    if case.raises is None:
        result = req.decode(reply)
        assert result == case.expected
        assert type(result) is type(case.expected)
        return
    with pytest.raises(case.raises) as info:
        req.decode(reply)
    exc = info.value
    assert type(exc) is case.raises, f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, beanstalkm.BeanstalkmException)
    assert exc.args == (req.command, case.status, list(case.reply_args))
    assert exc.args[1] == case.status
    if isinstance(exc, (CommandFailed, UnexpectedResponse)):
        assert exc.command == req.command
        assert exc.status == case.status
        assert exc.reply_args == case.reply_args
        assert case.status in str(exc)
    if case.check is not None:
        case.check(exc)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reply_fed_whole(case: ReplyCase) -> None:
    reply = feed_whole(case.reply)
    assert reply == _expected_reply(case.reply)
    check_decoded(case, reply)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reply_split_at_every_byte(case: ReplyCase) -> None:
    expected = _expected_reply(case.reply)
    for cut in range(1, len(case.reply)):
        reply = feed_split(case.reply, cut)
        assert reply == expected, f"cut at {cut}"
        check_decoded(case, reply)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reply_one_byte_at_a_time(case: ReplyCase) -> None:
    reply = feed_bytewise(case.reply)
    assert reply == _expected_reply(case.reply)
    check_decoded(case, reply)


def test_some_decoded_values_explicitly() -> None:
    """A few results spelled out, independently of the table machinery."""
    reply = feed_whole(b"RESERVED 7 5\r\nhello\r\n")
    assert reply == Reply("RESERVED", ("7", "5"), b"hello")
    job = C.reserve().decode(reply)
    assert job.id == 7
    assert job.body == b"hello"

    with pytest.raises(Buried) as buried:
        C.put(b"x").decode(feed_whole(b"BURIED 12\r\n"))
    assert buried.value.id == 12
    assert buried.value.args == ("put", "BURIED", ["12"])

    assert C.bury(1).decode(feed_whole(b"BURIED\r\n")) is None
    assert C.peek(1).decode(feed_whole(b"NOT_FOUND\r\n")) is None

    with pytest.raises(NotIgnored) as not_ignored:
        C.ignore("default").decode(feed_whole(b"NOT_IGNORED\r\n"))
    assert not_ignored.value.args[1] == "NOT_IGNORED"

    with pytest.raises(UnexpectedResponse) as unexp:
        C.delete(1).decode(feed_whole(b"KICKED 3\r\n"))
    assert unexp.value.args == ("delete", "KICKED", ["3"])

    assert C.list_tubes().decode(feed_whole(b"OK 14\r\n---\n- default\n\r\n")) == ["default"]


def test_quit_expects_no_reply() -> None:
    req = C.quit()
    assert req.expects_reply is False
    assert spec_command("quit").get("no_reply") is True


# --- several replies --------------------------------------------------------------------

PIPELINE: list[tuple[Callable[[], Request[Any]], bytes, object]] = [
    (lambda: C.use("foo"), b"USING foo\r\n", "foo"),
    (lambda: C.put(b"hello"), b"INSERTED 1\r\n", 1),
    (lambda: C.reserve(), b"RESERVED 1 5\r\nhello\r\n", Job(1, b"hello")),
    (lambda: C.peek(1), b"FOUND 1 4\r\n\r\n\r\n\r\n", Job(1, b"\r\n\r\n")),
    (lambda: C.delete(1), b"DELETED\r\n", None),
    (lambda: C.peek(1), b"NOT_FOUND\r\n", None),
    (lambda: C.list_tubes(), b"OK 14\r\n---\n- default\n\r\n", ["default"]),
    (lambda: C.stats_job(7), ok_reply(JOB_BODY), JOB_STATS),
    (lambda: C.watch("bar"), b"WATCHING 2\r\n", 2),
    (lambda: C.kick(5), b"KICKED 0\r\n", 0),
]


def test_back_to_back_replies_come_out_in_order() -> None:
    stream = b"".join(data for _, data, _ in PIPELINE)
    reader = commands.new_reader()
    reader.feed(stream)
    replies = _drain(reader)
    assert [r.status for r in replies] == [data.split(b" ")[0].split(b"\r")[0].decode() for _, data, _ in PIPELINE]
    assert [make().decode(reply) for (make, _, _), reply in zip(PIPELINE, replies, strict=True)] == [
        expected for _, _, expected in PIPELINE
    ]
    _assert_empty(reader)


def test_back_to_back_replies_fed_one_byte_at_a_time() -> None:
    stream = b"".join(data for _, data, _ in PIPELINE)
    reader = commands.new_reader()
    replies: list[Reply] = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        replies.extend(_drain(reader))
    assert replies == [_expected_reply(data) for _, data, _ in PIPELINE]
    _assert_empty(reader)


REPLY_POOL = [data for _, data, _ in PIPELINE] + [case.reply for case in SPECIFIC[:40]]


@settings(max_examples=200, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(REPLY_POOL) - 1), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 4000), max_size=20),
)
def test_any_chunking_gives_the_same_replies(picks: list[int], cuts: list[int]) -> None:
    parts = [REPLY_POOL[i] for i in picks]
    stream = b"".join(parts)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = commands.new_reader()
    replies: list[Reply] = []
    for start, end in itertools.pairwise(points):
        reader.feed(stream[start:end])
        replies.extend(_drain(reader))
    assert replies == [_expected_reply(p) for p in parts]
    _assert_empty(reader)


def test_large_body_then_more_replies() -> None:
    """A body past the compaction threshold, followed by other replies in the same buffer."""
    body = bytes(range(256)) * 400  # 102400 bytes, includes CRLF pairs
    stream = b"RESERVED 3 %d\r\n%b\r\nINSERTED 4\r\nFOUND 5 2\r\nab\r\n" % (len(body), body)
    reader = commands.new_reader()
    reader.feed(stream[:50000])
    assert reader.next_reply() is None
    assert reader.missing() == len(body) + 2 - (50000 - len(b"RESERVED 3 102400\r\n"))
    reader.feed(stream[50000:])
    assert reader.next_reply() == Reply("RESERVED", ("3", str(len(body))), body)
    assert reader.next_reply() == Reply("INSERTED", ("4",), None)
    assert reader.next_reply() == Reply("FOUND", ("5", "2"), b"ab")
    _assert_empty(reader)


LARGE = bytes(range(256)) * 300 + b"\r\n" * 5  # 76810 bytes, past BODY_APART, with CRLF pairs and one at its end
LARGE_STREAM = b"RESERVED 3 %d\r\n%b\r\nINSERTED 4\r\nFOUND 5 %d\r\n%b\r\nDELETED\r\n" % (
    len(LARGE),
    LARGE,
    len(LARGE),
    LARGE[::-1],
)
LARGE_REPLIES = [
    Reply("RESERVED", ("3", str(len(LARGE))), LARGE),
    Reply("INSERTED", ("4",), None),
    Reply("FOUND", ("5", str(len(LARGE))), LARGE[::-1]),
    Reply("DELETED", (), None),
]


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(0, len(LARGE_STREAM)), max_size=40), read=st.booleans())
def test_large_bodies_gathered_from_any_chunking(cuts: list[int], read: bool) -> None:
    """A large body is gathered in a buffer of its own: the same replies, whatever the cuts."""
    points = sorted({*cuts, 0, len(LARGE_STREAM)})
    reader = commands.new_reader()
    replies: list[Reply] = []
    for start, end in itertools.pairwise(points):
        chunk = LARGE_STREAM[start:end]
        if read and (reply := reader.read(chunk)) is not None:
            replies.append(reply)
        elif not read:
            reader.feed(chunk)
        replies.extend(_drain(reader))
        assert 0 <= reader.buffered <= end and reader.missing() >= 0
    assert replies == LARGE_REPLIES
    _assert_empty(reader)


def test_large_body_missing_counts_what_was_gathered() -> None:
    reader = commands.new_reader()
    reader.feed(LARGE_STREAM[:1000])
    assert reader.next_reply() is None
    head = len(b"RESERVED 3 76810\r\n")
    assert reader.missing() == len(LARGE) + 2 - (1000 - head)
    reader.feed(LARGE_STREAM[1000:50000])
    assert reader.next_reply() is None
    assert (reader.buffered, reader.missing()) == (50000 - head, len(LARGE) + 2 - (50000 - head))
    reader.feed(LARGE_STREAM[50000 : head + len(LARGE) + 1])  # all but the LF after the body
    assert reader.next_reply() is None
    assert reader.missing() == 1
    reader.feed(LARGE_STREAM[head + len(LARGE) + 1 :])
    assert _drain(reader) == LARGE_REPLIES
    _assert_empty(reader)


@pytest.mark.parametrize("cut", [10, 70000, 76828, 76829])
def test_large_body_not_followed_by_crlf(cut: int) -> None:
    data = b"RESERVED 1 %d\r\n%bXY\r\nDELETED\r\n" % (len(LARGE), LARGE)
    reader = commands.new_reader()
    reader.feed(data[:cut])
    assert reader.next_reply() is None
    reader.feed(data[cut:])
    with pytest.raises(ProtocolError, match="CRLF"):
        reader.next_reply()


def test_clear_forgets_a_large_body_being_gathered() -> None:
    reader = commands.new_reader()
    reader.feed(LARGE_STREAM[:1000])
    assert reader.next_reply() is None
    reader.feed(LARGE_STREAM[1000:2000])
    reader.clear()
    assert (reader.buffered, reader.missing()) == (0, 0)
    reader.feed(b"DELETED\r\n")
    assert reader.next_reply() == Reply("DELETED", (), None)


def test_missing_counts_the_body_still_needed() -> None:
    reader = commands.new_reader()
    assert reader.missing() == 0
    reader.feed(b"RESERVED 1 10\r\nabc")
    assert reader.next_reply() is None
    assert reader.missing() == 10 + 2 - 3
    reader.feed(b"defghij\r")
    assert reader.next_reply() is None
    assert reader.missing() == 1
    reader.feed(b"\n")
    assert reader.next_reply() == Reply("RESERVED", ("1", "10"), b"abcdefghij")
    assert reader.missing() == 0


def test_clear_forgets_everything() -> None:
    reader = commands.new_reader()
    reader.feed(b"RESERVED 1 10\r\nabc")
    assert reader.next_reply() is None
    reader.clear()
    assert reader.buffered == 0
    assert reader.missing() == 0
    reader.feed(b"DELETED\r\n")
    assert reader.next_reply() == Reply("DELETED", (), None)


# --- malformed replies ------------------------------------------------------------------

MAX_LINE = SPEC["limits"]["reply_line_max"]


def test_reply_line_of_exactly_the_limit_is_accepted() -> None:
    line = b"USING " + b"a" * (MAX_LINE - len(b"USING ") - 2) + b"\r\n"
    assert len(line) == MAX_LINE
    assert feed_whole(line) == Reply("USING", ("a" * (MAX_LINE - 8),), None)
    assert feed_bytewise(line).status == "USING"


def test_reply_line_one_over_the_limit_is_rejected() -> None:
    line = b"USING " + b"a" * (MAX_LINE - len(b"USING ") - 1) + b"\r\n"
    assert len(line) == MAX_LINE + 1
    reader = commands.new_reader()
    reader.feed(line)
    with pytest.raises(ProtocolError):
        reader.next_reply()


def test_long_line_without_crlf_raises_once_the_limit_is_reached() -> None:
    reader = commands.new_reader()
    for i in range(MAX_LINE - 1):
        reader.feed(b"A")
        assert reader.next_reply() is None, f"after {i + 1} bytes"
    reader.feed(b"A")
    with pytest.raises(ProtocolError, match="longer than 224"):
        reader.next_reply()


@pytest.mark.parametrize("chunk", [1, 7, 64, 223, 224, 1000])
def test_garbage_without_crlf_stays_bounded(chunk: int) -> None:
    """Buffered bytes never grow past the line limit plus one chunk before the error."""
    reader = commands.new_reader()
    with pytest.raises(ProtocolError):
        for _ in range(100_000):
            reader.feed(b"x" * chunk)
            reader.next_reply()
            assert reader.buffered < MAX_LINE
    assert reader.buffered < MAX_LINE + chunk


def test_long_line_after_a_good_reply() -> None:
    reader = commands.new_reader()
    reader.feed(b"DELETED\r\n" + b"B" * MAX_LINE)
    assert reader.next_reply() == Reply("DELETED", (), None)
    with pytest.raises(ProtocolError):
        reader.next_reply()


@pytest.mark.parametrize(
    "header",
    [
        b"OK 1073741825\r\n",
        b"RESERVED 1 1073741825\r\n",
        b"FOUND 1 99999999999999999999999\r\n",
    ],
)
def test_body_over_the_limit_rejected_before_reading_it(header: bytes) -> None:
    reader = commands.new_reader()
    reader.feed(header)
    with pytest.raises(ProtocolError, match="limit"):
        reader.next_reply()


def test_body_limit_is_configurable() -> None:
    reader = commands.new_reader(max_body=10)
    reader.feed(b"RESERVED 1 10\r\n0123456789\r\n")
    assert reader.next_reply() == Reply("RESERVED", ("1", "10"), b"0123456789")
    reader.feed(b"RESERVED 2 11\r\n")
    with pytest.raises(ProtocolError):
        reader.next_reply()


@pytest.mark.parametrize(
    "data",
    [
        b"RESERVED 1 3\r\nhello\r\n",  # announced shorter than sent
        b"RESERVED 1 7\r\nhello\r\nINSERTED 1\r\n",  # announced longer than sent
        b"FOUND 1 2\r\nab\n\r",
        b"OK 3\r\nabcXY",
        b"OK 0\r\nX\r\n",
    ],
)
def test_body_not_followed_by_crlf(data: bytes) -> None:
    reader = commands.new_reader()
    reader.feed(data)
    with pytest.raises(ProtocolError, match="CRLF"):
        reader.next_reply()


def test_lying_length_detected_one_byte_at_a_time() -> None:
    data = b"RESERVED 1 3\r\nhello\r\n"
    reader = commands.new_reader()
    fed = 0
    with pytest.raises(ProtocolError):
        for byte in data:
            reader.feed(bytes([byte]))
            fed += 1
            reader.next_reply()
    assert fed == len(b"RESERVED 1 3\r\n") + 5  # as soon as size + 2 bytes are in


@pytest.mark.parametrize(
    "line",
    [
        b"INSERT\xc3\xa9D 1\r\n",
        b"USING caf\xe9\r\n",
        b"\xff\r\n",
        b"INSERTED  5\r\n",
        b" INSERTED 5\r\n",
        b"INSERTED 5 \r\n",
        b"RESERVED 1  5\r\nhello\r\n",
        b"\r\n",
        b" \r\n",
        b"OK\r\n",
        b"RESERVED\r\n",
        b"FOUND\r\n",
        b"OK abc\r\n",
        b"OK -1\r\n",
        b"OK +1\r\n",
        b"OK 0x10\r\n",
        b"RESERVED 1 5x\r\nhello\r\n",
        b"RESERVED 1 \xd9\xa3\r\n",
    ],
)
def test_malformed_reply_line(line: bytes) -> None:
    reader = commands.new_reader()
    reader.feed(line)
    with pytest.raises(ProtocolError):
        reader.next_reply()


@pytest.mark.parametrize(
    ("make", "data"),
    [
        (lambda: C.put(b"x"), b"INSERTED abc\r\n"),
        (lambda: C.put(b"x"), b"INSERTED\r\n"),
        (lambda: C.put(b"x"), b"INSERTED -1\r\n"),
        (lambda: C.put(b"x"), b"INSERTED 1.5\r\n"),
        (lambda: C.watch("x"), b"WATCHING two\r\n"),
        (lambda: C.ignore("x"), b"WATCHING\r\n"),
        (lambda: C.kick(1), b"KICKED x\r\n"),
        (lambda: C.use("x"), b"USING\r\n"),
        (lambda: C.reserve(), b"RESERVED abc 5\r\nhello\r\n"),
        (lambda: C.peek(1), b"FOUND -1 5\r\nhello\r\n"),
        (lambda: C.stats(), b"OK 5\r\nhello\r\n"),
        (lambda: C.stats_job(1), b"OK 4\r\n---\n\r\n"),
        (lambda: C.list_tubes(), b"OK 9\r\n---\na: b\n\r\n"),
        (lambda: C.list_tubes(), ok_reply(b"- [a, b]\n")),
        (lambda: C.stats_tube("t"), ok_reply(b"{a: [\n")),
    ],
)
def test_malformed_arguments_decode_to_protocol_error(make: Callable[[], Request[Any]], data: bytes) -> None:
    reply = feed_whole(data)
    with pytest.raises(ProtocolError):
        make().decode(reply)


@pytest.mark.parametrize(
    ("make", "data"),
    [
        (lambda: C.reserve(), b"RESERVED 5\r\nhello\r\n"),  # id missing: the length must not double as the id
        (lambda: C.peek(1), b"FOUND 5\r\nhello\r\n"),
        (lambda: C.reserve_job(1), b"RESERVED 1 2 5\r\nhello\r\n"),
        (lambda: C.stats(), b"OK 1 %d\r\n%b\r\n" % (len(SERVER_BODY), SERVER_BODY)),
        (lambda: C.list_tubes(), b"OK x %d\r\n%b\r\n" % (len(LIST_BODY), LIST_BODY)),
        (lambda: C.put(b"x"), b"INSERTED 1 2\r\n"),
        (lambda: C.delete(1), b"DELETED 1\r\n"),
        (lambda: C.watch("x"), b"WATCHING 1 2\r\n"),
        (lambda: C.use("x"), b"USING a b\r\n"),
        (lambda: C.kick_job(1), b"KICKED 1\r\n"),
    ],
)
def test_wrong_number_of_reply_arguments_is_a_protocol_error(make: Callable[[], Request[Any]], data: bytes) -> None:
    """A success reply with more or fewer arguments than the spec lists is malformed."""
    reply = feed_whole(data)
    with pytest.raises(ProtocolError):
        make().decode(reply)


@pytest.mark.parametrize("size", [3, 200, 70_000])  # 70,000: a large body, gathered in a buffer of its own
@pytest.mark.parametrize("step", [1, 7, 10**6])
def test_a_job_damaged_on_the_server_is_framed_and_decodes_to_corrupt_job(size: int, step: int) -> None:
    """beanstalkd sends a job it restored from a binlog a crash cut short as zeros, its CRLF included."""
    stream = b"RESERVED 42 %d\r\n" % size + bytes(size + 2) + b"RESERVED 43 2\r\nok\r\n"
    reader = commands.new_reader()
    replies = []
    for start in range(0, len(stream), step):
        reader.feed(stream[start : start + step])
        while (reply := reader.next_reply()) is not None:
            replies.append(reply)
    damaged, fine = replies
    assert damaged.trailer == b"\x00\x00" and damaged.body == bytes(size)
    assert fine == Reply("RESERVED", ("43", "2"), b"ok")
    assert reader.buffered == 0
    with pytest.raises(CorruptJob) as info:
        commands.reserve().decode(damaged)
    assert (info.value.job_id, info.value.body) == (42, bytes(size))
    assert isinstance(info.value, ProtocolError)
    assert commands.reserve().decode(fine) == Job(43, b"ok")


def test_a_damaged_body_that_is_no_job_is_a_protocol_error() -> None:
    reader = commands.new_reader()
    reader.feed(b"OK 4\r\n\x00\x00\x00\x00\x00\x00")
    reply = reader.next_reply()
    assert reply is not None and reply.trailer == b"\x00\x00"
    with pytest.raises(ProtocolError, match="CRLF"):
        commands.stats_yaml().decode(reply)
