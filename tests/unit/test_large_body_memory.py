"""A large body's memory in the reader: bounded by what arrived while it arrives, about twice its size at the end.

The reader gathers a large body (``BODY_APART`` bytes or more) in one buffer
grown as the bytes arrive; these tests trace the allocations (tracemalloc)
while a body is fed in pieces of several sizes, as a socket may hand them out.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from beanstalkm._generated import commands

MIB = 1024 * 1024
SLACK = 64 * 1024  # the reader's own small objects, a piece's slice


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("piece", [1460, 65536, 256 * 1024, MIB - 7])
def test_a_body_announced_far_larger_than_what_arrives_costs_about_what_arrived(piece: int) -> None:
    """1 MiB of a job announced at 1 GiB: at every step, at most 1.25 times what arrived is allocated."""
    reader = commands.new_reader(2**31)
    sent = bytes(range(256)) * (MIB // 256)
    tracemalloc.start()
    try:
        reader.feed(b"RESERVED 7 1073741824\r\n")
        assert reader.next_reply() is None
        base = tracemalloc.get_traced_memory()[0]
        arrived = 0
        for chunk in pieces(sent, piece):
            tracemalloc.reset_peak()
            reader.feed(chunk)
            arrived += len(chunk)
            assert reader.next_reply() is None
            peak = tracemalloc.get_traced_memory()[1] - base
            assert peak <= 1.25 * arrived + SLACK + len(chunk), f"{peak} bytes allocated for {arrived} that arrived"
    finally:
        tracemalloc.stop()
    assert reader.buffered == len(sent)


@pytest.mark.parametrize("piece", [4096, 65536, 300_000, MIB])
def test_a_large_body_peaks_at_about_twice_its_size(piece: int) -> None:
    """A 1 MiB body fed in pieces: the reply's bytes and the buffer they come from, nothing more."""
    body = bytes(range(256)) * (MIB // 256)
    stream = b"RESERVED 3 %d\r\n" % len(body) + body + b"\r\nINSERTED 9\r\n"
    reader = commands.new_reader(2 * MIB)
    feeds = list(pieces(stream, piece))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        replies = []
        for chunk in feeds:
            reader.feed(chunk)
            while (reply := reader.next_reply()) is not None:
                replies.append(reply)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert [(r.status, r.args) for r in replies] == [("RESERVED", ("3", str(len(body)))), ("INSERTED", ("9",))]
    assert replies[0].body == body
    assert peak <= 2.25 * len(body) + SLACK, f"a {len(body)}-byte body peaked at {peak} bytes"
