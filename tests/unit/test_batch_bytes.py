"""The batches' bytes made without a ``Request`` per item (docs/hot-path.md, "Round three"): a
``put_many`` writes what ``_c.put`` of each envelope would, and ``reserve_many(drop=True)`` writes
what ``_c.delete`` of each id would, with the same errors for what those encoders refuse."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import pytest

from beanstalkm import Buried, InvalidArgument, NotFound
from beanstalkm._core import envelope
from beanstalkm._core.batches import DELETE_CHUNK, PutBatch, reserve_many_requests, reserve_many_steps
from beanstalkm._core.requests import BODY_APART
from beanstalkm._core.session import Exchange, Session
from beanstalkm._generated import commands as _c
from beanstalkm.aio import AsyncClient, AsyncMessage

T = TypeVar("T")


class _Priority(enum.IntEnum):
    URGENT = 7


def _client() -> AsyncClient:
    return AsyncClient("127.0.0.1", 1, validate=True)  # never connected: the batch only encodes


def _expected(
    client: AsyncClient, batch: PutBatch[AsyncMessage], bodies: list[Any], settings: tuple[Any, ...]
) -> bytes:
    """What ``_c.put`` makes of each body's envelope, joined (the tokens are the batch's own)."""
    sender_json = client._sender_wire[1]
    out = []
    for body in bodies:
        _, data = envelope.encode(body, batch.created, sender_json)
        out.append(b"".join(_c.put(data, *settings).pieces))
    return b"".join(out)


@pytest.mark.parametrize("settings", [(1024, 0, 60), (0, 4294967295, 1), (_Priority.URGENT, 0, 60)])
def test_put_many_s_pieces_are_c_put_s_bytes(settings: tuple[Any, ...]) -> None:
    client = _client()
    bodies: list[Any] = [
        {"n": 1},
        "text",
        "x" * (BODY_APART - 200),  # its envelope just under the line apart
        "y" * BODY_APART,  # a large one: its line, body and CRLF apart
        [1, 2, {"é": None}],
    ]
    batch = PutBatch(client, bodies, "tube", *settings)
    pieces = batch.pieces(0, 2) + batch.pieces(2, len(bodies))
    assert b"".join(pieces) == _expected(client, batch, bodies, settings)
    assert any(len(piece) >= BODY_APART for piece in pieces[3:6])  # the large body stayed a piece of its own
    tokens = [envelope.token_of(envelope.canonical(body)) for body in bodies]
    assert batch.tokens == tokens


def test_put_many_s_requests_are_c_put_s_requests_whatever_was_written_first() -> None:
    client = _client()
    bodies: list[Any] = [{"n": i} for i in range(5)] + ["z" * BODY_APART]
    batch = PutBatch(client, bodies, "tube", 5, 6, 7)
    batch.pieces(0, 2)  # some written first (their bytes made), the rest encoded by ``requests``
    requests = batch.requests
    sender_json = client._sender_wire[1]
    for body, request in zip(bodies, requests, strict=True):
        expected = _c.put(envelope.encode(body, batch.created, sender_json)[1], 5, 6, 7)
        assert (request.head, request.body, request.command) == (expected.head, expected.body, "put")
        assert request.decode is expected.decode and request.uses_tube
    assert b"".join(batch.pieces(0, len(bodies))) == b"".join(p for r in requests for p in r.pieces)


def test_a_message_body_keeps_its_own_envelope() -> None:
    client = _client()
    message = client({"own": True}, channel="c")
    batch = PutBatch(client, [{"n": 0}, message], "tube", 1, 2, 3)
    own = b"".join(batch.pieces(1, 2))
    assert b'"channel":"c"' in own and own.startswith(b"put 1 2 3 ")


def _drive(replies: list[bytes], n: int) -> tuple[list[bytes], list[object]]:
    """``reserve_many(n, drop=True)``'s conversation fed ``replies`` one read at a time: the bytes it
    wrote, and each reserve's outcome."""
    client = _client()
    session, reader = Session(), _c.new_reader()
    steps = reserve_many_steps(session, reader, reserve_many_requests(n, 0, True), True, client._reserved_message)
    written, (_, outcomes) = _pumped(steps, replies)
    return written, outcomes


def _pumped(steps: Exchange[T], reads: list[bytes]) -> tuple[list[bytes], T]:
    """A conversation pumped by hand: what it wrote, and its result, fed ``reads`` one at a time."""
    written: list[bytes] = []
    feed = iter(reads)
    step = next(steps)
    try:
        while True:
            if isinstance(step, bytes):
                written.append(step)
                step = steps.send(b"")
            else:
                step = steps.send(next(feed))
    except StopIteration as done:
        result: T = done.value
        return written, result


def _job(job_id: int) -> bytes:
    return b"RESERVED %d 4\r\nbody\r\n" % job_id


def test_reserve_many_s_deletes_are_c_delete_s_bytes() -> None:
    ids = [1, 2**64 - 1, *range(3, 3 + DELETE_CHUNK)]
    written, outcomes = _drive([b"".join(_job(i) for i in ids), b"DELETED\r\n" * len(ids)], len(ids))
    assert written[0] == b"reserve-with-timeout 0\r\n" * len(ids)
    assert b"".join(written[1:]) == b"".join(_c.delete(i).data for i in ids)
    assert [o.uid for o in outcomes if isinstance(o, AsyncMessage)] == ids
    assert all(isinstance(o, AsyncMessage) and o.deleted for o in outcomes)


def test_reserve_many_s_delete_of_an_id_delete_refuses_raises_as_c_delete_does() -> None:
    with pytest.raises(InvalidArgument) as info:
        _drive([_job(0)], 1)
    with pytest.raises(InvalidArgument) as general:
        _c.delete(0)
    assert str(info.value) == str(general.value)


def test_reserve_many_s_delete_refused_is_that_item_s_error() -> None:
    written, outcomes = _drive([_job(5) + _job(6), b"NOT_FOUND\r\nDELETED\r\n"], 2)
    assert isinstance(outcomes[0], NotFound)
    assert isinstance(outcomes[1], AsyncMessage) and outcomes[1].deleted
    assert b"".join(written[1:]) == b"delete 5\r\ndelete 6\r\n"


def test_reserve_many_s_delete_reply_with_arguments_is_decoded_the_general_way() -> None:
    """``DELETED 1`` is no usual reply: the generated decoder decides (a protocol error, noted)."""
    _, outcomes = _drive([_job(5), b"DELETED 1\r\n"], 1)
    assert isinstance(outcomes[0], Exception) and "argument" in str(outcomes[0])


def _put_results(replies: bytes, count: int, in_force: str = "tube") -> tuple[list[bytes], list[object]]:
    """``put_many`` of ``count`` bodies to ``tube`` (with ``in_force`` the tube in force) fed
    ``replies`` in one read: what it wrote, and each body's result."""
    client = _client()
    session, reader = Session(), _c.new_reader()
    session.server_using = session.using = in_force
    batch = PutBatch(client, [{"n": i} for i in range(count)], "tube", 1, 0, 60)
    return _pumped(batch.steps(session, reader, "tube"), [replies])


def test_put_many_s_usual_replies_are_their_ids() -> None:
    written, results = _put_results(b"".join(b"INSERTED %d\r\n" % (i + 10) for i in range(20)), 20)
    assert results == list(range(10, 30))
    assert b"".join(written).count(b"put 1 0 60 ") == 20 and not b"".join(written).startswith(b"use ")


def test_put_many_s_other_replies_are_decoded_by_finish() -> None:
    """A ``BURIED <id>`` among them (stored, buried): that item's error; the others their ids."""
    replies = b"INSERTED 1\r\nBURIED 2\r\nINSERTED 3\r\n"
    _, results = _put_results(replies, 3)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], Buried)


def test_put_many_with_a_use_first_reads_its_reply_apart() -> None:
    written, results = _put_results(b"USING tube\r\nINSERTED 1\r\nINSERTED 2\r\n", 2, in_force="other")
    assert written[0].startswith(b"use tube\r\nput 1 0 60 ")
    assert results == [1, 2]
