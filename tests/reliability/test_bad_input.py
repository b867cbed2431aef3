"""Bad input: each bad argument is a typed error naming the value, nothing reaches the
server, and the connection is usable afterwards. Bodies over max-job-size are refused by
the server with ``JobTooBig`` and the stream stays in sync."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from beanstalkm import (
    ArgumentTypeError,
    BatchFailed,
    Client,
    Connection,
    InvalidArgument,
    JobTooBig,
    Message,
)
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import sent_commands


@dataclass(frozen=True)
class Bad:
    """One bad call: what it does, the error it must raise, the value and parameter the message must name."""

    id: str
    call: Callable[[Client], object]
    error: type[Exception]
    value: object
    param: str


def _pipeline_with_bad_use(c: Client) -> object:
    with c.pipeline() as p:
        p.put(b"queued, never sent")
        p.use("")
    return p.results


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


OBJ = object()
SET_BODY = {"a": {1, 2}}
BYTES_BODY = {"raw": b"\x00"}
TUPLE_KEY = {(1, 2): "x"}
CIRCULAR = _circular()
DEEP = _deep(100_000)

BAD: list[Bad] = [
    # tube names
    Bad("tube-empty", lambda c: c.queue.use(""), InvalidArgument, "", "tube"),
    Bad("tube-201-bytes", lambda c: c.queue.watch("a" * 201), InvalidArgument, "a" * 201, "tube"),
    Bad("tube-leading-dash", lambda c: c.queue.use("-dash"), InvalidArgument, "-dash", "tube"),
    Bad("tube-space", lambda c: c.put("x", tube="a b"), InvalidArgument, "a b", "tube"),
    Bad("tube-non-ascii", lambda c: c.watch("tübe"), InvalidArgument, "tübe", "tube"),
    Bad("tube-crlf-injection", lambda c: c.queue.use("a\r\nput 1 0 1 1"), InvalidArgument, "a\r\nput 1 0 1 1", "tube"),
    Bad("tube-lf", lambda c: c.queue.stats_tube("a\nb"), InvalidArgument, "a\nb", "tube"),
    Bad("tube-nul", lambda c: c.ignore("a\x00b"), InvalidArgument, "a\x00b", "tube"),
    Bad("tube-star", lambda c: c.queue.pause_tube("a*b", 1), InvalidArgument, "a*b", "tube"),
    Bad("tube-bytes", lambda c: c.queue.use(b"bytes"), ArgumentTypeError, b"bytes", "tube"),  # type: ignore[arg-type]
    Bad("tube-none", lambda c: c.queue.watch(None), ArgumentTypeError, None, "tube"),  # type: ignore[arg-type]
    Bad("put-many-tube", lambda c: c.put_many(["a"], tube="a\r\n"), InvalidArgument, "a\r\n", "tube"),
    # priority
    Bad("priority-negative", lambda c: c.queue.put(b"x", priority=-1), InvalidArgument, -1, "priority"),
    Bad("priority-2**32", lambda c: c.put("x", priority=2**32), InvalidArgument, 2**32, "priority"),
    Bad("priority-float", lambda c: c.queue.release(1, priority=1.5), ArgumentTypeError, 1.5, "priority"),  # type: ignore[arg-type]
    Bad("priority-str", lambda c: c.queue.bury(1, priority="1"), ArgumentTypeError, "1", "priority"),  # type: ignore[arg-type]
    Bad("priority-bool", lambda c: c.queue.put(b"x", priority=True), ArgumentTypeError, True, "priority"),
    # delay
    Bad("delay-negative", lambda c: c.queue.put(b"x", delay=-1), InvalidArgument, -1, "delay"),
    Bad("delay-2**32", lambda c: c.queue.release(1, delay=2**32), InvalidArgument, 2**32, "delay"),
    Bad("delay-float", lambda c: c.put("x", delay=1.0), ArgumentTypeError, 1.0, "delay"),  # type: ignore[arg-type]
    Bad("pause-delay-negative", lambda c: c.queue.pause_tube("t", -5), InvalidArgument, -5, "delay"),
    # ttr
    Bad("ttr-negative", lambda c: c.queue.put(b"x", ttr=-5), InvalidArgument, -5, "ttr"),
    Bad("ttr-2**32", lambda c: c.put("x", ttr=2**32), InvalidArgument, 2**32, "ttr"),
    Bad("ttr-bool", lambda c: c.put_many(["x"], ttr=True), ArgumentTypeError, True, "ttr"),
    Bad("ttr-str", lambda c: c.queue.put(b"x", ttr="60"), ArgumentTypeError, "60", "ttr"),  # type: ignore[arg-type]
    # reserve timeout
    Bad("reserve-timeout-negative", lambda c: c.queue.reserve_with_timeout(-1), InvalidArgument, -1, "timeout"),
    Bad("reserve-timeout-2**31", lambda c: c.reserve(timeout=2**31), InvalidArgument, 2**31, "timeout"),
    Bad("reserve-timeout-float", lambda c: c.queue.reserve_with_timeout(0.5), ArgumentTypeError, 0.5, "timeout"),  # type: ignore[arg-type]
    Bad("reserve-many-timeout", lambda c: c.reserve_many(3, timeout=-1), InvalidArgument, -1, "timeout"),
    Bad("reserve-many-n", lambda c: c.reserve_many(-1), InvalidArgument, -1, "n"),
    # job ids
    Bad("id-zero", lambda c: c.queue.delete(0), InvalidArgument, 0, "job_id"),
    Bad("id-negative", lambda c: c.queue.peek(-1), InvalidArgument, -1, "job_id"),
    Bad("id-2**64", lambda c: c.queue.stats_job(2**64), InvalidArgument, 2**64, "job_id"),
    Bad("id-str", lambda c: c.queue.kick_job("5"), ArgumentTypeError, "5", "job_id"),  # type: ignore[arg-type]
    Bad("id-float", lambda c: c.queue.touch(1.0), ArgumentTypeError, 1.0, "job_id"),  # type: ignore[arg-type]
    Bad("id-bool", lambda c: c.queue.reserve_job(True), ArgumentTypeError, True, "job_id"),
    Bad("id-none", lambda c: c.queue.release(None), ArgumentTypeError, None, "job_id"),  # type: ignore[arg-type]
    Bad("delete-many-zero", lambda c: c.delete_many([1, 0]), InvalidArgument, 0, "job_id"),
    # kick bound
    Bad("kick-negative", lambda c: c.queue.kick(-1), InvalidArgument, -1, "bound"),
    Bad("kick-2**32", lambda c: c.queue.kick(2**32), InvalidArgument, 2**32, "bound"),
    # bodies
    Bad("body-object", lambda c: c.put(OBJ), ArgumentTypeError, OBJ, "body"),
    Bad("body-set", lambda c: c.put(SET_BODY), ArgumentTypeError, SET_BODY, "body"),
    Bad("body-bytes-in-envelope", lambda c: c.put(BYTES_BODY), ArgumentTypeError, BYTES_BODY, "body"),
    Bad("body-tuple-key", lambda c: c.put(TUPLE_KEY), ArgumentTypeError, TUPLE_KEY, "body"),
    Bad("body-circular", lambda c: c.put(CIRCULAR), ArgumentTypeError, CIRCULAR, "body"),
    Bad("body-too-deep", lambda c: c.put(DEEP), ArgumentTypeError, DEEP, "body"),
    Bad("put-many-one-bad", lambda c: c.put_many(["fine", "also fine", OBJ]), ArgumentTypeError, OBJ, "body"),
    Bad("message-send", lambda c: c(SET_BODY).send("t"), ArgumentTypeError, SET_BODY, "body"),
    Bad("raw-body-int", lambda c: c.queue.put(123), ArgumentTypeError, 123, "body"),  # type: ignore[arg-type]
    Bad("raw-body-none", lambda c: c.queue.put(None), ArgumentTypeError, None, "body"),  # type: ignore[arg-type]
    # a batch with one bad command sends none of it
    Bad("pipeline-bad-use", _pipeline_with_bad_use, InvalidArgument, "", "tube"),
]


def test_there_are_at_least_30_bad_inputs() -> None:
    assert len(BAD) >= 30
    print(f"\nbad inputs tried: {len(BAD)}", flush=True)


@pytest.fixture
def observer(server: BeanstalkdServer) -> Iterator[Connection]:
    with Connection(server.host, server.port, timeout=10) as c:
        yield c


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_input_is_refused_before_sending(server: BeanstalkdServer, observer: Connection, bad: Bad) -> None:
    client = Client(server.host, server.port, timeout=10)
    client.queue.use("settled")  # a non-default used tube, so a stray 'use' would show
    client.watch("settled")
    before = sent_commands(observer)

    with pytest.raises(bad.error) as info:
        bad.call(client)

    after = sent_commands(observer)
    assert after == before, f"{bad.id}: something was sent: {_diff(before, after)}"
    error = info.value
    assert isinstance(error, InvalidArgument)
    assert error.name == bad.param
    assert error.value is bad.value or error.value == bad.value
    assert f"invalid {bad.param} " in str(error)
    assert _shown(bad.value) in str(error), f"the message does not show the value: {error}"
    if bad.param == "body":
        assert isinstance(error, TypeError)
        assert "not JSON serializable" in str(error) or "must be bytes or str" in str(error)

    # the connection is usable, in the state it was in
    assert client.connected
    assert client.queue.using() == "settled"
    assert sorted(client.queue.watching()) == ["default", "settled"]
    job_id = client.queue.put(b"still fine")
    peeked = client.queue.peek(job_id)
    assert peeked is not None and peeked.raw == b"still fine"
    assert observer.queue.stats().total_jobs == before["total-jobs"] + 1


def _shown(value: object) -> str:
    try:
        return repr(value)[:40]
    except RecursionError:  # too deep to show: the error names its type
        return f"<{type(value).__name__}>"


def _diff(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {k: (before[k], after[k]) for k in before if before[k] != after.get(k)}


# -- bodies over the server's max-job-size -----------------------------------------------------


@pytest.fixture
def small(server_factory: ServerFactory) -> BeanstalkdServer:
    return server_factory(max_job_size=100)


@pytest.mark.parametrize("size", [101, 102, 4096, 1024 * 1024])
def test_body_over_max_job_size(small: BeanstalkdServer, size: int) -> None:
    client = Client(small.host, small.port, timeout=10)
    client.queue.use("big")
    assert client.queue.put(b"x" * 100) > 0  # exactly the limit is fine
    with pytest.raises(JobTooBig) as info:
        client.queue.put(b"y" * size)
    assert info.value.status == "JOB_TOO_BIG"
    # the stream is in sync: the next commands get their own replies
    assert client.connected
    assert client.queue.using() == "big"
    job_id = client.queue.put(b"after")
    peeked = client.queue.peek(job_id)
    assert peeked is not None and peeked.raw == b"after"
    assert client.queue.stats_tube("big").total_jobs == 2


def test_envelope_over_max_job_size_in_a_batch(server_factory: ServerFactory) -> None:
    server = server_factory(max_job_size=1000)
    client = Client(server.host, server.port, timeout=10)
    with pytest.raises(BatchFailed) as info:
        client.put_many([1, "x" * 2000, 3], tube="big")
    first, too_big, last = info.value.results
    assert isinstance(too_big, JobTooBig)
    assert isinstance(first, Message) and isinstance(last, Message)
    assert client.queue.stats_tube("big").total_jobs == 2
    assert [m.body for m in client.reserve_many(5, drop=False)] == []  # default is watched, not big
    client.watch("big")
    assert [m.body for m in client.reserve_many(5)] == [1, 3]
