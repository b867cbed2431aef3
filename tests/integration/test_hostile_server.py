"""Fuzzing the drivers against a hostile server (both flavours).

A loopback fake server answers a random sequence of commands (``put``, ``peek``,
``delete``, pipelines of puts) with, for each call, one of: the correct replies; the
correct replies with a stray reply after or before them; the replies cut short and
the connection closed; the last reply replaced by one that breaks the protocol (wrong
arity, a negative number, a body longer or shorter than announced, no body length,
garbage) or by a well-formed reply of the wrong kind; a damaged job (CorruptJob).
The replies of one call go out in one write, so the client sees them together.

Checked, for every call: it returns exactly what the server's own state says, or
raises a typed error (``BeanstalkmException``). A call the server answered
correctly returns the right result whenever the call before it raised or was
answered correctly: after any error the connection was dropped or is still in step.
A call the server never saw (refused before sending) must have raised.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beanstalkm import BatchFailed, BeanstalkmException, Connection

from ._fake import LoopbackServer
from ._flavours import ConnectionFactory

EXAMPLES = 200
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

STRAY = b"INSERTED 999999\r\n"
BROKEN = [
    b"INSERTED 5 3\r\n",
    b"INSERTED -1\r\n",
    b"FOUND -1 3\r\nabc\r\n",
    b"FOUND 1 2\r\nabcd\r\n",  # a body longer than announced
    b"OK x\r\n",
    b"\xff\xfe\r\n",
    b"INSERTED  1\r\n",
    b"DELETED\r\n",  # well-formed, of the wrong kind (UnexpectedResponse for put/peek)
    b"USING x\r\n",
]
BEHAVIOURS = ["ok", "ok", "ok", "stray_after", "stray_before", "truncated", "broken", "damaged"]


class HostileServer(LoopbackServer):
    """Answers each call's commands from its own job store, then misbehaves as told for that call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[int, bytes] = {}
        self.next_id = 0
        self.plan: tuple[int, str, int, int] = (1, "ok", 0, 0)  # commands, behaviour, cut, broken reply
        self.seen: list[Any] | None = None  # the correct results of the current call, once answered
        super().__init__()

    def _answer(self, parts: list[bytes], body: bytes | None) -> tuple[bytes, Any]:
        command = parts[0]
        with self.lock:
            if command == b"put" and body is not None:
                self.next_id += 1
                self.jobs[self.next_id] = body
                return b"INSERTED %d\r\n" % self.next_id, self.next_id
            if command == b"peek":
                uid = int(parts[1])
                if uid in self.jobs:
                    data = self.jobs[uid]
                    return b"FOUND %d %d\r\n%b\r\n" % (uid, len(data), data), (uid, data)
                return b"NOT_FOUND\r\n", None
            if command == b"delete":
                uid = int(parts[1])
                if self.jobs.pop(uid, None) is not None:
                    return b"DELETED\r\n", None
                return b"NOT_FOUND\r\n", "NOT_FOUND"
        return b"UNKNOWN_COMMAND\r\n", "UNKNOWN_COMMAND"

    def serve(self, conn: socket.socket, f: BinaryIO) -> None:
        while True:
            line = f.readline()
            if not line:
                return
            count, behaviour, cut, broken = self.plan  # the call's, now that it has begun
            replies: list[bytes] = []
            results: list[Any] = []
            last: list[bytes] = []
            for index in range(count):
                if index:
                    line = f.readline()
                if not line:
                    return
                parts = line.split()
                if parts[0] == b"quit":
                    return
                body = f.read(int(parts[4]) + 2)[:-2] if parts[0] == b"put" else None
                reply, result = self._answer(parts, body)
                replies.append(reply)
                results.append(result)
                last = parts
            self.seen = results
            if behaviour == "stray_after":
                replies.append(STRAY)
            elif behaviour == "stray_before":
                replies.insert(0, STRAY)
            elif behaviour == "broken":
                replies[-1] = BROKEN[broken % len(BROKEN)]
                if last[0] == b"delete" and replies[-1] == b"DELETED\r\n":
                    results[-1] = None  # a well-formed success for a delete: no client can tell the lie
            elif behaviour == "damaged" and last[0] == b"peek":
                size = 5
                replies[-1] = b"FOUND %s %d\r\n%b\x00\x00" % (last[1], size, bytes(size))
            data = b"".join(replies)
            if behaviour == "truncated":
                conn.sendall(data[: cut % len(data)])
                return
            conn.sendall(data)


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    try:
        yield server
    finally:
        server.close()


OP = st.tuples(
    st.sampled_from(["put", "peek", "peek-missing", "delete", "pipeline"]),
    st.sampled_from(BEHAVIOURS),
    st.integers(0, 10_000),  # where a truncated reply is cut
    st.integers(0, len(BROKEN) - 1),
    st.integers(0, 10_000),  # which job a peek or delete picks
    st.integers(2, 4),  # how many puts a pipeline holds
)


def _call(conn: Connection, server: HostileServer, op: str, pick: int, size: int) -> tuple[int, Any]:
    """Run one call; how many commands it sends, and what it returned (or the exception it raised)."""
    with server.lock:
        ids = sorted(server.jobs)
    uid = ids[pick % len(ids)] if ids and op in ("peek", "delete") else 10**6 + pick
    try:
        if op == "put":
            return 1, conn.queue.put(b"job %d" % pick)
        if op in ("peek", "peek-missing"):
            message = conn.queue.peek(uid)
            return 1, None if message is None else (message.uid, message.raw)
        if op == "delete":
            conn.queue.delete(uid)
            return 1, None
        with conn.pipeline() as p:
            for i in range(size):
                p.put(b"batch %d" % i)
        return size, p.results
    except BeanstalkmException as exc:
        return (size if op == "pipeline" else 1), exc


def _expected(op: str, seen: list[Any]) -> Any:
    if op == "pipeline":
        return seen
    return seen[0]


@FUZZ
@given(ops=st.lists(OP, min_size=1, max_size=12))
@example(ops=[("delete", "broken", 0, BROKEN.index(b"DELETED\r\n"), 0, 2)])  # a lie the client cannot tell
def test_the_driver_against_a_hostile_server(
    hostile: HostileServer, make_connection: ConnectionFactory, ops: list[tuple[str, str, int, int, int, int]]
) -> None:
    conn = make_connection("127.0.0.1", hostile.port, timeout=5, validate=False)
    try:
        _run(conn, hostile, ops)
    finally:
        conn.close()


def _run(conn: Connection, hostile: HostileServer, ops: list[tuple[str, str, int, int, int, int]]) -> None:
    clean = True  # the call before raised, or was answered correctly
    for op, behaviour, cut, broken, pick, size in ops:
        count = size if op == "pipeline" else 1
        hostile.plan = (count, behaviour, cut, broken)
        hostile.seen = None
        _, result = _call(conn, hostile, op, pick, size)
        seen = hostile.seen
        failed = isinstance(result, BaseException)
        where = f"{op} answered {behaviour!r}: got {result!r}, the server says {seen!r}"
        if seen is None:
            assert failed, f"a call the server never saw returned: {where}"
        elif not failed:
            assert result == _expected(op, seen), f"a wrong result: {where}"
        elif isinstance(result, BatchFailed) and behaviour == "ok":
            pytest.fail(f"a correctly answered batch failed: {where}")
        if behaviour == "ok" and clean:
            if op == "delete" and seen == ["NOT_FOUND"]:  # a delete of a job already gone: NotFound is right
                assert failed and "NOT_FOUND" in str(result), where
            else:
                assert not failed, f"a correctly answered call after a clean one failed: {where}"
        clean = failed or behaviour == "ok"
