"""``ReplyReader.lines``: many body-less replies read at once, by one split. It must give exactly what
the general way (``read`` then ``next_reply``) gives, or None and take nothing, so that the general
way decides (the same replies, or the same error). No socket, no mock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Reply
from beanstalkm._errors import ProtocolError
from beanstalkm._generated.commands import new_reader


def _general(data: bytes) -> list[Reply] | type[ProtocolError]:
    """What the general way makes of ``data``: every complete reply, or the error it raises."""
    reader = new_reader()
    out: list[Reply] = []
    try:
        reply = reader.read(data)
        while reply is not None:
            out.append(reply)
            reply = reader.next_reply()
    except ProtocolError:
        return ProtocolError
    return out if not reader.buffered else ProtocolError  # a reply cut short: not whole lines


LINES = [
    b"INSERTED 12\r\n",
    b"DELETED\r\n",
    b"RELEASED\r\n",
    b"TIMED_OUT\r\n",
    b"USING default\r\n",
    b"WATCHING 2\r\n",
    b"NOT_FOUND\r\n",
    b"BURIED 7\r\n",
    b"KICKED 3\r\n",
]
ODD = [
    b"RESERVED 5 3\r\nabc\r\n",  # a body: the general way's
    b"OK 4\r\na: 1\r\n",
    b"INSERTED  5\r\n",  # an empty part
    b"INSERT\xc3\xa9D 5\r\n",  # not ASCII
    b"INSERTED 5",  # cut short
    b"INSERTED 5\r",
    b"\r\n",  # an empty line
    b"FOUND 9 1\r\nx\r\n",
    b"INSERTED 5\nX\r\n",  # a lone LF stays in the line (as the general way leaves it)
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(LINES + ODD), min_size=1, max_size=30))
def test_lines_is_the_general_way_or_none(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    reader = new_reader()
    got = reader.lines(data)
    if got is None:
        assert not reader.buffered  # nothing taken: the general way reads it all
        return
    assert got == _general(data)
    assert not reader.buffered


def test_a_chunk_of_whole_lines_is_split_at_once() -> None:
    data = b"".join(LINES) * 20
    replies = new_reader().lines(data)
    assert replies is not None and len(replies) == 20 * len(LINES)
    assert replies[:2] == [Reply("INSERTED", ("12",), None), Reply("DELETED", (), None)]


def test_not_with_bytes_buffered_or_a_line_too_long() -> None:
    reader = new_reader()
    assert reader.read(b"INSERT") is None  # a reply in pieces is buffered
    assert reader.lines(b"ED 5\r\n") is None  # so the general way goes on with it
    assert reader.read(b"ED 5\r\n") == Reply("INSERTED", ("5",), None)
    small = ReplyReader(frozenset({"RESERVED"}), max_line=16, max_body=100)
    assert small.lines(b"INSERTED 1234\r\n") == [Reply("INSERTED", ("1234",), None)]  # 15 bytes with CRLF
    assert small.lines(b"INSERTED 123456\r\n") is None  # longer than max_line: the general way refuses it
