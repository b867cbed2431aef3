"""Batches: ``put_many``, ``reserve_many``, ``delete_many`` and pipelines, against a real beanstalkd."""

from __future__ import annotations

import time
from typing import Any

import pytest

from beanstalkm import (
    DEFAULT_TUBE,
    BatchFailed,
    Client,
    Connection,
    NotFound,
    TubeStats,
)

from ._client_support import MISSING_ID, _state
from ._flavours import is_message

# -- batches -----------------------------------------------------------------------------------


def test_put_many(client: Client, observer: Connection) -> None:
    bodies: list[Any] = ["a", {"b": 2}, [3], None]
    messages = client.put_many(bodies, tube="batch", priority=11, ttr=33)
    assert [m.body for m in messages] == bodies
    uids = [m.uid for m in messages]
    assert all(uid > 0 for uid in uids)
    assert uids == sorted(uids) and len(set(uids)) == len(uids)
    for m in messages:
        stats = observer.queue.stats_job(m.uid)
        assert (stats.tube, stats.pri, stats.ttr) == ("batch", 11, 33)
    assert client.queue.using() == "default"
    assert client.put_many([]) == []
    observer.queue.watch("batch")
    got = [observer.queue.reserve_with_timeout(0) for _ in bodies]
    assert [(m.uid, m.body) for m in got] == [(m.uid, m.body) for m in messages]


def test_reserve_many(client: Client, observer: Connection) -> None:
    sent = client.put_many(["one", "two", "three"])
    client.watch(DEFAULT_TUBE)
    got = client.reserve_many(5)
    assert [m.body for m in got] == ["one", "two", "three"]
    assert [m.uid for m in got] == [m.uid for m in sent]
    assert all(m.deleted and not m.reserved for m in got)  # dropped: deleted
    for m in sent:
        with pytest.raises(NotFound):
            observer.queue.stats_job(m.uid)
    assert client.reserve_many(3) == []

    sent = client.put_many([1, 2, 3])
    got = client.reserve_many(2, drop=False)
    assert [(m.uid, m.body) for m in got] == [(m.uid, m.body) for m in sent[:2]]
    assert all(m.reserved for m in got)
    assert [_state(observer, m.uid) for m in sent] == ["reserved", "reserved", "ready"]
    client.delete_many(got)
    assert all(m.deleted and m.stats() is None for m in got)
    client.delete_many([sent[2].uid])
    assert observer.queue.stats().current_jobs_ready == 0
    assert observer.queue.stats().current_jobs_reserved == 0


def test_reserve_many_waits_at_most_timeout_in_all(client: Client) -> None:
    client.watch(DEFAULT_TUBE)
    start = time.monotonic()
    assert client.reserve_many(3, timeout=1) == []
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 1.8  # not one timeout per reserve
    client.put("only one")
    start = time.monotonic()
    got = client.reserve_many(3, timeout=1)
    assert [m.body for m in got] == ["only one"]
    assert time.monotonic() - start < 0.8


def test_delete_many_failure(client: Client, observer: Connection) -> None:
    a = client.put("a")
    b = client.put("b")
    with pytest.raises(BatchFailed) as info:
        client.delete_many([a.uid, MISSING_ID, b])
    results = info.value.results
    assert len(results) == 3
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], NotFound)
    assert info.value.errors == [results[1]]
    assert observer.queue.stats().current_jobs_ready == 0
    assert client.queue.using() == "default"


def test_pipeline_results_in_order(client: Client) -> None:
    with client.pipeline() as p:
        p.use("piped").put(b"first").put(b"second", priority=1)
        p.peek_ready()
        p.stats_tube("piped")
        p.using()
        p.watch("piped")
        p.reserve_with_timeout(0)
        assert len(p) == 8
        results = p.execute()
    assert results[0] == "piped"
    first, second = results[1], results[2]
    assert isinstance(first, int) and isinstance(second, int) and second == first + 1
    peeked = results[3]
    assert is_message(peeked) and peeked.uid == second  # priority 1 comes first
    tube = results[4]
    assert isinstance(tube, TubeStats) and tube.name == "piped" and tube.current_jobs_ready == 2
    assert results[5:7] == ["piped", 2]
    reserved = results[7]
    assert is_message(reserved) and (reserved.uid, reserved.raw) == (second, b"second")
    assert client.queue.using() == "piped"


def test_pipeline_uses_the_callers_tube_after_client_put(client: Client, observer: Connection) -> None:
    client.queue.use("mine")
    client.put("routed elsewhere")  # the server now uses 'receive'
    with client.pipeline() as p:
        p.put(b"raw").peek_ready().using().kick(5)
    assert p.results is not None
    job_id, peeked, using, kicked = p.results
    assert isinstance(job_id, int)
    assert observer.queue.stats_job(job_id).tube == "mine"
    assert is_message(peeked) and peeked.uid == job_id
    assert (using, kicked) == ("mine", 0)


def test_pipeline_executes_on_exit(client: Client, observer: Connection) -> None:
    with client.pipeline() as p:
        p.put(b"x").put(b"y")
    assert p.results is not None and len(p.results) == 2
    assert observer.queue.stats().cmd_put == 2


def test_pipeline_failure_mid_batch(client: Client, observer: Connection) -> None:
    with client.pipeline() as p:
        p.put(b"before")
        p.delete(MISSING_ID)
        p.put(b"after")
        with pytest.raises(BatchFailed) as info:
            p.execute()
    results = info.value.results
    assert len(results) == 3
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], NotFound)
    assert results[1].args[1] == "NOT_FOUND"
    # both puts happened, and the connection is in sync
    assert observer.queue.stats_job(results[0]).state == "ready"
    assert observer.queue.stats_job(results[2]).state == "ready"
    assert client.queue.using() == "default"
    assert client.queue.put(b"next") == results[2] + 1


def test_put_many_of_messages_keeps_their_envelope_fields(client: Client, observer: Connection) -> None:
    original = client({"n": 1}, subscribe="replies", channel="c1")
    sent = client.put_many([original, {"n": 2}], tube="forwarded")
    assert [m.body for m in sent] == [{"n": 1}, {"n": 2}]
    first = observer.queue.peek(sent[0].uid)
    assert first is not None
    assert (first.body, first.subscribe, first.channel, first.created) == (
        {"n": 1},
        "replies",
        "c1",
        original.created,
    )
    assert (sent[0].subscribe, sent[0].channel, sent[0].token) == ("replies", "c1", original.token)
