"""``batches.batch_replies`` (a batch's replies, body-less lines read a receive at a time with
``ReplyReader.lines``) reads what ``await_reply`` read one at a time would: the same replies, the
same bytes left over, the same errors, however the bytes are cut into receives."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beanstalkm._core.batches import batch_replies
from beanstalkm._core.reader import ReplyReader
from beanstalkm._core.requests import Reply
from beanstalkm._core.session import await_reply
from beanstalkm._generated import commands as _c

REPLIES = [
    b"INSERTED 1\r\n",
    b"INSERTED 18446744073709551615\r\n",
    b"DELETED\r\n",
    b"NOT_FOUND\r\n",
    b"BURIED 3\r\n",
    b"USING t\r\n",
    b"RESERVED 5 3\r\nabc\r\n",
    b"OUT_OF_MEMORY\r\n",
    b"INSERTED  2\r\n",  # an empty field: the general way decides
    b"UNKNOWN_COMMAND\r\n",
    b"\xff\xfe\r\n",  # not ASCII
    b"X" * 300 + b"\r\n",  # longer than a reply line may be
]


def _general(reader: ReplyReader, count: int) -> Generator[float | None, bytes, list[Reply]]:
    replies: list[Reply] = []
    for _ in range(count):
        replies.append((yield from await_reply(reader, 0.0)))
    return replies


def _run(
    read: Callable[[ReplyReader, int], Generator[float | None, bytes, list[Reply]]], chunks: list[bytes], count: int
) -> tuple[str, Any, int]:
    """What the conversation returned (or raised) and the bytes left in the reader."""
    reader = _c.new_reader(1000)
    steps = read(reader, count)
    pending = list(chunks)
    try:
        wait = next(steps)
        while True:
            assert wait == 0.0
            if not pending:
                return "starved", None, reader.buffered
            wait = steps.send(pending.pop(0))
    except StopIteration as done:
        return "done", done.value, reader.buffered + sum(map(len, pending))
    except Exception as exc:  # compared with the general way's
        return "raised", (type(exc), str(exc)), reader.buffered


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], int]:
    data = b"".join(draw(st.lists(st.sampled_from(REPLIES), min_size=1, max_size=12)))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6, unique=True)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if data[a:b]]
    count = draw(st.integers(0, 14))
    return chunks, count


@settings(max_examples=1000, deadline=None)
@given(streams())
def test_batch_replies_reads_what_await_reply_reads(stream: tuple[list[bytes], int]) -> None:
    chunks, count = stream
    assert _run(batch_replies, chunks, count) == _run(_general, chunks, count)


@pytest.mark.parametrize("extra", [b"", b"INSERTED 9\r\n", b"INSER"])
def test_a_receive_holding_more_replies_than_awaited_leaves_them_for_the_out_of_step_check(extra: bytes) -> None:
    chunks = [b"INSERTED 1\r\nINSERTED 2\r\n" + extra]
    outcome, replies, left = _run(batch_replies, chunks, 2)
    assert outcome == "done" and [r.args for r in replies] == [("1",), ("2",)] and left == len(extra)
