"""``ReplyReader.one``: the direct path's reply, when the bytes received are exactly one whole reply.

It must give exactly what the general way (``feed`` then ``next_reply``) gives, leave nothing
buffered, and give None (taking nothing) for anything else, so the general way decides: a reply in
pieces, more than one reply, anything malformed, over a limit, or damaged, and any bytes while the
reader already holds some.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beanstalkm import ProtocolError
from beanstalkm._core.reader import DAMAGED, YAML_BODY_MAX, ReplyReader
from beanstalkm._core.requests import BODY_APART, Reply
from beanstalkm._generated import commands

from .test_reader import CASES, ReplyCase, test_malformed_reply_line

_MARKS = getattr(test_malformed_reply_line, "pytestmark")  # noqa: B009 - pytest sets it; mypy does not know it
MALFORMED: list[bytes] = next(m.args[1] for m in _MARKS if m.name == "parametrize")
"""The malformed reply lines ``test_reader.py`` feeds the general way (which refuses each)."""


def _general(data: bytes) -> Reply | None:
    """What the general way makes of ``data`` as one whole reply: the reply, or None if it raises,
    is incomplete, or leaves bytes over."""
    reader = commands.new_reader()
    reader.feed(data)
    try:
        reply = reader.next_reply()
    except ProtocolError:
        return None
    if reply is None or reader.buffered:
        return None
    return reply


def _one(data: bytes, reader: ReplyReader | None = None) -> Reply | None:
    reader = commands.new_reader() if reader is None else reader
    reply = reader.one(data)
    if reply is not None:
        assert reader.buffered == 0
    return reply


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_reply_of_every_command_comes_out_as_the_general_way_gives_it(case: ReplyCase) -> None:
    """Every well-formed reply (success, failure, unexpected status) is taken whole, and equal."""
    expected = _general(case.reply)
    assert expected is not None
    if expected.trailer is not None:  # a damaged job: the general way frames it
        assert _one(case.reply) is None
        return
    reply = _one(case.reply)
    assert reply == expected
    assert type(reply) is Reply
    assert reply is not None and type(reply.args) is tuple


@pytest.mark.parametrize(
    "data",
    [
        b"INSERTED 5\r\nDELETED\r\n",  # two replies: out of step, the general way says so
        b"DELETED\r\nINSERTED 5\r\n",
        b"RESERVED 1 5\r\nhello\r\nDELETED\r\n",
        b"RESERVED 1 5\r\nhello\r\n\r\n",
        b"INSERTED 5",  # in pieces
        b"INSERTED 5\r",
        b"RESERVED 1 5\r\nhel",
        b"RESERVED 1 5\r\nhello",
        b"RESERVED 1 5\r\nhello\r",
        b"RESERVED 1 5\r\nhello\r\nD",
        b"RESERVED 1 5\r\nhellox\r\n",  # a length that lies
        b"RESERVED 1 5\r\nhel\r\n",
        b"RESERVED 1 5\r\nhelloxx",
        b"RESERVED 1 5\r\nhello" + DAMAGED,  # a damaged job: framed by the general way
        b"INSERTED \xff\r\n",
        b"",
        *MALFORMED,
    ],
)
def test_anything_but_exactly_one_whole_reply_is_left_to_the_general_way(data: bytes) -> None:
    reader = commands.new_reader()
    assert reader.one(data) is None
    assert reader.buffered == 0  # nothing taken


def test_a_reply_line_over_the_limit_is_left_to_the_general_way() -> None:
    line = b"USING " + b"a" * (commands.REPLY_LINE_MAX - 8) + b"\r\n"
    assert len(line) == commands.REPLY_LINE_MAX
    assert _one(line) == _general(line) == Reply("USING", ("a" * (commands.REPLY_LINE_MAX - 8),), None)
    longer = b"USING " + b"a" * (commands.REPLY_LINE_MAX - 7) + b"\r\n"
    assert _one(longer) is None
    assert _general(longer) is None  # the general way refuses it


@pytest.mark.parametrize("max_body", [0, 4, 5])
def test_a_body_over_max_body_is_left_to_the_general_way(max_body: int) -> None:
    data = b"RESERVED 1 5\r\nhello\r\n"
    reader = commands.new_reader(max_body)
    reply = reader.one(data)
    if max_body < 5:
        assert reply is None
        reader.feed(data)
        with pytest.raises(ProtocolError, match="5-byte body"):
            reader.next_reply()
    else:
        assert reply == Reply("RESERVED", ("1", "5"), b"hello")


def test_a_yaml_body_has_the_lower_limit() -> None:
    """A YAML body (``OK``) is bounded by ``YAML_BODY_MAX`` as well as ``max_body``; a job is not."""
    reader = ReplyReader(commands.BODY_STATUSES, commands.REPLY_LINE_MAX, 100, frozenset({"OK"}))
    small = ReplyReader(commands.BODY_STATUSES, commands.REPLY_LINE_MAX, 4, frozenset({"OK"}))
    ok = b"OK 5\r\n---\nx\r\n"
    assert reader.one(ok) == Reply("OK", ("5",), b"---\nx")
    assert small.one(ok) is None
    assert small.one(b"FOUND 1 5\r\nhello\r\n") is None
    assert YAML_BODY_MAX < commands.BODY_MAX  # what keeps a YAML body's limit the lower one


def test_nothing_is_taken_while_the_reader_holds_bytes() -> None:
    """A reply half read (the reader holds its first bytes), or a large body being gathered: the
    bytes that come belong to it, not to a reply of their own."""
    reader = commands.new_reader()
    reader.feed(b"INSERTED ")
    assert reader.one(b"5\r\n") is None
    assert reader.read(b"5\r\n") == Reply("INSERTED", ("5",), None)
    reader.feed(b"RESERVED 1 %d\r\n" % (BODY_APART + 10) + b"x" * 100)
    assert reader.next_reply() is None  # gathering apart: the read buffer is empty
    assert reader.one(b"DELETED\r\n") is None
    reader.clear()
    assert reader.one(b"DELETED\r\n") == Reply("DELETED", (), None)


def test_the_reader_is_idle_afterwards() -> None:
    reader = commands.new_reader()
    for data in (b"INSERTED 5\r\n", b"RESERVED 1 5\r\nhello\r\n", b"OK 0\r\n\r\n", b"DELETED\r\n"):
        assert reader.one(data) is not None
        assert reader.buffered == 0 and reader.missing() == 0
    reader.feed(b"TOUCHED\r\nDELETED\r\n")  # and the general way carries on as before
    assert [reader.next_reply(), reader.next_reply(), reader.next_reply()] == [
        Reply("TOUCHED", (), None),
        Reply("DELETED", (), None),
        None,
    ]


_STATUS = st.sampled_from(["INSERTED", "RESERVED", "OK", "FOUND", "DELETED", "USING", "X", ""])
_ARG = st.one_of(st.integers(0, 10**6).map(str), st.sampled_from(["", "a", "-1", " ", "\r\n", "1 2"]))


@st.composite
def _replies(draw: st.DrawFn) -> bytes:
    status = draw(_STATUS)
    args = draw(st.lists(_ARG, max_size=3))
    body = draw(st.one_of(st.none(), st.binary(max_size=40)))
    line = " ".join([status, *args]).encode()
    if body is not None:
        size = draw(st.one_of(st.just(len(body)), st.integers(0, 50)))
        line += b" %d" % size
    data = line + b"\r\n" + (b"" if body is None else body + draw(st.sampled_from([b"\r\n", DAMAGED, b"", b"\r"])))
    cut = draw(st.integers(0, len(data)))
    extra = draw(st.sampled_from([b"", b"", b"DELETED\r\n", b"\r\n"]))
    return data[: cut if draw(st.booleans()) else len(data)] + extra


@settings(max_examples=400, deadline=None)
@given(_replies())
def test_any_bytes_come_out_as_the_general_way_gives_them_or_not_at_all(data: bytes) -> None:
    reply = _one(data)
    if reply is not None:
        assert reply == _general(data)
        assert reply.trailer is None
