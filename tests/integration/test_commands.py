"""Every low-level command of ``conn.queue`` against a real beanstalkd.

Each command is checked for its typed result, and every failure status the
server can be made to produce for its typed exception.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

import beanstalkm
from beanstalkm import (
    CommandFailed,
    Connection,
    DeadlineSoon,
    Draining,
    JobStats,
    JobTooBig,
    NotFound,
    NotIgnored,
    ServerStats,
    SocketError,
    TimedOut,
    TubeStats,
)
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._flavours import ClientFactory, ConnectionFactory, is_message

MISSING_ID = 987654321

# Tube names a type-resolving YAML loader turns into True, None, 83, 1.5, 1000.0 (protocol-notes §6).
TRAP_TUBES = ["on", "yes", "null", "0123", "1.5", "1e3"]


@pytest.fixture
def conn(server: BeanstalkdServer, make_connection: ConnectionFactory) -> Iterator[Connection]:
    with make_connection(server.host, server.port, timeout=10) as c:
        yield c


def _call(fn: Callable[..., object], *args: object) -> object:
    """``fn(*args)``, so a test can check that a command typed ``-> None`` really returns None."""
    return fn(*args)


def _raw_mapping(text: str) -> dict[str, str]:
    """beanstalkd's flat YAML mapping, read by hand: every value the server's text."""
    lines = text.split("\n")
    assert lines[0] == "---"
    result: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(": ")
        assert sep, line
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        result[key] = value
    return result


def _raw_list(text: str) -> list[str]:
    lines = text.split("\n")
    assert lines[0] == "---"
    return [line[2:] for line in lines[1:] if line]


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the success path of every command -------------------------------------------------------------


def test_use_using_put(conn: Connection) -> None:
    q = conn.queue
    assert q.using() == "default"
    assert q.use("cmd-tube") == "cmd-tube"
    assert q.using() == "cmd-tube"
    job_id = q.put(b"hello", priority=5, delay=0, ttr=30)
    assert type(job_id) is int and job_id > 0
    stats = q.stats_job(job_id)
    assert (stats.tube, stats.state, stats.pri, stats.ttr) == ("cmd-tube", "ready", 5, 30)
    assert q.put("str body") == job_id + 1


def test_put_sends_utf8_bytes_unchanged(conn: Connection) -> None:
    q = conn.queue
    text = "日本語 ☃ \r\n end"
    cases: list[tuple[str | bytes, bytes]] = [
        (text, text.encode()),
        (b"\x00\xff\r\n\xfe", b"\x00\xff\r\n\xfe"),
        (b"", b""),
    ]
    for body, raw in cases:
        job_id = q.put(body)
        peeked = q.peek(job_id)
        assert peeked is not None
        assert peeked.raw == raw
        q.delete(job_id)
    assert q.using() == "default"  # still in sync


def test_reserve_variants(conn: Connection) -> None:
    q = conn.queue
    first = q.put(b"one")
    second = q.put(b"two")
    third = q.put(b"three", delay=3600)

    m = q.reserve()
    assert is_message(m)
    assert (m.uid, m.raw, m.body) == (first, b"one", "one")
    assert q.stats_job(first).state == "reserved"

    m = q.reserve_with_timeout(0)
    assert (m.uid, m.body) == (second, "two")

    m = q.reserve_job(third)  # reserve-job takes a delayed job too
    assert (m.uid, m.body) == (third, "three")
    assert q.stats_job(third).state == "reserved"
    with pytest.raises(NotFound):  # already reserved
        q.reserve_job(third)


def test_delete(conn: Connection) -> None:
    q = conn.queue
    ready = q.put(b"a")
    reserved = q.put(b"b")
    assert q.reserve_job(reserved).uid == reserved
    assert _call(q.delete, ready) is None
    assert _call(q.delete, reserved) is None
    for job_id in (ready, reserved):
        assert q.peek(job_id) is None
        with pytest.raises(NotFound):
            q.stats_job(job_id)


def test_release_bury_touch_kick(conn: Connection) -> None:
    q = conn.queue
    job_id = q.put(b"x", priority=100, ttr=60)
    q.reserve()
    assert _call(q.release, job_id, 7, 0) is None
    stats = q.stats_job(job_id)
    assert (stats.state, stats.pri, stats.releases) == ("ready", 7, 1)

    q.reserve()
    assert _call(q.release, job_id, 8, 3600) is None
    stats = q.stats_job(job_id)
    assert (stats.state, stats.pri, stats.delay) == ("delayed", 8, 3600)
    assert _call(q.kick_job, job_id) is None
    assert q.stats_job(job_id).state == "ready"

    q.reserve()
    assert _call(q.touch, job_id) is None
    assert q.stats_job(job_id).state == "reserved"
    assert _call(q.bury, job_id, 9) is None
    stats = q.stats_job(job_id)
    assert (stats.state, stats.pri, stats.buries) == ("buried", 9, 1)

    assert q.kick(10) == 1
    assert q.kick(10) == 0
    stats = q.stats_job(job_id)
    assert (stats.state, stats.kicks) == ("ready", 2)  # kick-job of the delayed job, then kick


def test_kick_moves_delayed_jobs_when_none_are_buried(conn: Connection) -> None:
    q = conn.queue
    ids = [q.put(b"d", delay=3600) for _ in range(3)]
    assert q.kick(2) == 2
    assert [q.stats_job(i).state for i in ids] == ["ready", "ready", "delayed"]


def test_watch_ignore_watching(conn: Connection) -> None:
    q = conn.queue
    assert q.watching() == ["default"]
    assert q.watch("w1") == 2
    assert q.watch("w1") == 2
    assert q.watch("w2") == 3
    assert sorted(q.watching()) == ["default", "w1", "w2"]
    assert q.ignore("default") == 2
    assert q.ignore("not-watched") == 2  # not an error
    assert sorted(q.watching()) == ["w1", "w2"]
    assert q.ignore("w1") == 1
    with pytest.raises(NotIgnored) as info:
        q.ignore("w2")
    assert isinstance(info.value, CommandFailed)
    assert info.value.args[1] == "NOT_IGNORED"
    assert q.watching() == ["w2"]


def test_reserve_takes_from_watched_tubes_only(conn: Connection) -> None:
    q = conn.queue
    q.use("elsewhere")
    job_id = q.put(b"x")
    with pytest.raises(TimedOut):
        q.reserve_with_timeout(0)
    q.watch("elsewhere")
    assert q.reserve_with_timeout(0).uid == job_id


def test_peek_commands(conn: Connection) -> None:
    q = conn.queue
    q.use("peeks")
    assert q.peek_ready() is None
    assert q.peek_delayed() is None
    assert q.peek_buried() is None

    ready = q.put(b"ready")
    delayed = q.put(b"delayed", delay=3600)
    buried = q.put(b"buried")
    q.watch("peeks")
    q.ignore("default")
    assert q.reserve_job(buried).uid == buried
    q.bury(buried)

    peeked = q.peek(ready)
    assert is_message(peeked)
    assert (peeked.uid, peeked.body, peeked.raw) == (ready, "ready", b"ready")
    found = [q.peek_ready(), q.peek_delayed(), q.peek_buried()]
    assert [(m.uid, m.body) if m else None for m in found] == [
        (ready, "ready"),
        (delayed, "delayed"),
        (buried, "buried"),
    ]
    # peeking reserves nothing
    assert q.stats_job(ready).state == "ready"
    assert q.stats_job(delayed).state == "delayed"
    assert q.stats_job(buried).state == "buried"
    # the peek-* commands act on the used tube
    q.use("other")
    assert q.peek_ready() is None
    assert q.peek_delayed() is None
    assert q.peek_buried() is None


def test_peek_message_lifecycle(conn: Connection) -> None:
    """A peeked message is a full Message: its lifecycle methods reach the job."""
    q = conn.queue
    job_id = q.put(b"x", delay=3600)
    peeked = q.peek_delayed()
    assert peeked is not None and peeked.uid == job_id
    stats = peeked.stats()
    assert stats is not None and stats.state == "delayed"
    peeked.kick()
    stats = peeked.stats()
    assert stats is not None and stats.state == "ready"
    peeked.delete()
    assert peeked.stats() is None
    assert q.peek(job_id) is None


def test_stats_job_typed(conn: Connection) -> None:
    q = conn.queue
    job_id = q.put(b"x", priority=1023, delay=0, ttr=77)
    stats = q.stats_job(job_id)
    assert isinstance(stats, JobStats)
    assert stats.id == job_id
    assert stats.tube == "default"
    assert stats.state == "ready"
    assert stats.pri == 1023
    assert stats.ttr == 77
    assert (stats.reserves, stats.timeouts, stats.releases, stats.buries, stats.kicks) == (0, 0, 0, 0, 0)
    assert stats.extra == {}
    # also a Mapping by the server's own keys
    assert stats["state"] == "ready"
    assert stats["time-left"] == stats.time_left
    assert dict(stats)["pri"] == 1023
    assert set(stats) == {
        "id",
        "tube",
        "state",
        "pri",
        "age",
        "delay",
        "ttr",
        "time-left",
        "file",
        "reserves",
        "timeouts",
        "releases",
        "buries",
        "kicks",
    }


def test_stats_tube_typed(conn: Connection) -> None:
    q = conn.queue
    q.use("st")
    q.put(b"a", priority=5)
    q.put(b"b", delay=3600)
    stats = q.stats_tube("st")
    assert isinstance(stats, TubeStats)
    assert stats.name == "st"
    assert stats.current_jobs_ready == 1
    assert stats.current_jobs_urgent == 1
    assert stats.current_jobs_delayed == 1
    assert stats.total_jobs == 2
    assert stats.current_using == 1
    assert stats.current_watching == 0
    assert stats["current-jobs-ready"] == 1
    assert stats["name"] == "st"
    assert stats.extra == {}
    assert len(stats) == 14


def test_stats_server_typed(server: BeanstalkdServer, conn: Connection) -> None:
    stats = conn.queue.stats()
    assert isinstance(stats, ServerStats)
    assert stats.version == "1.12"
    assert stats.draining is False
    assert stats["draining"] is False
    assert stats.current_connections == 1
    assert stats.max_job_size == 65535
    assert isinstance(stats.rusage_utime, Decimal)
    assert isinstance(stats.uptime, int)
    assert isinstance(stats.pid, int) and stats.pid > 0
    assert stats.extra == {}
    assert len(stats) == 51


def test_server_stats_id_and_os_are_the_servers_text(conn: Connection) -> None:
    stats = conn.queue.stats()
    raw = _raw_mapping(conn.queue.stats_yaml())
    # id: 16 hex digits, a str even when all digits
    assert isinstance(stats.id, str)
    assert len(stats.id) == 16 and all(c in "0123456789abcdef" for c in stats.id)
    assert stats.id == raw["id"]
    # os: 1.12 prints uname's version unquoted, typically '#1 SMP ...': a YAML parser reads a comment
    uname = os.uname()
    assert stats.os == raw["os"] == uname.version
    assert stats.hostname == uname.nodename
    assert stats.platform == uname.machine
    if "#" in uname.version:
        assert stats.os.startswith("#") or "#" in stats.os


def test_list_tubes(conn: Connection) -> None:
    q = conn.queue
    assert q.list_tubes() == ["default"]
    q.use("lt-used")
    q.watch("lt-watched")
    assert sorted(q.list_tubes()) == ["default", "lt-used", "lt-watched"]
    q.use("default")
    q.ignore("lt-watched")
    # empty, unreferenced tubes vanish
    assert q.list_tubes() == ["default"]


def test_pause_tube(conn: Connection) -> None:
    q = conn.queue
    q.use("paused")
    job_id = q.put(b"x")
    assert _call(q.pause_tube, "paused", 3600) is None
    stats = q.stats_tube("paused")
    assert stats.pause == 3600
    assert 3598 <= stats.pause_time_left <= 3600
    assert stats.cmd_pause_tube == 1
    q.watch("paused")
    with pytest.raises(TimedOut):  # the job is ready but the tube is paused
        q.reserve_with_timeout(0)
    assert q.stats_job(job_id).state == "ready"


def test_quit_closes_and_next_command_reconnects(server: BeanstalkdServer, conn: Connection) -> None:
    conn.queue.use("kept")
    conn.queue.watch("kept-too")
    assert _call(conn.queue.quit) is None
    assert not conn.connected
    # a later command connects again, with the used tube and the watch list restored
    assert conn.queue.using() == "kept"
    assert sorted(conn.queue.watching()) == ["default", "kept-too"]
    assert conn.queue.stats().total_connections == 2


# -- raw YAML ------------------------------------------------------------------------------------


def test_yaml_variants_return_the_servers_text(conn: Connection) -> None:
    q = conn.queue
    for tube in TRAP_TUBES:
        q.watch(tube)
    q.use("null")
    job_id = q.put(b"x", priority=3, ttr=50)

    text = q.list_tubes_yaml()
    assert isinstance(text, str)
    assert text.startswith("---\n")
    assert _raw_list(text) == q.list_tubes()
    assert sorted(_raw_list(text)) == sorted(["default", *TRAP_TUBES])

    text = q.watching_yaml()
    assert _raw_list(text) == q.watching()

    text = q.stats_job_yaml(job_id)
    raw = _raw_mapping(text)
    typed_job = {k: _as_text(v) for k, v in q.stats_job(job_id).items()}
    clock = ("age", "time-left")  # may tick between the two calls
    assert {k: v for k, v in typed_job.items() if k not in clock} == {k: v for k, v in raw.items() if k not in clock}
    assert set(typed_job) == set(raw)
    assert (raw["id"], raw["tube"], raw["pri"], raw["ttr"]) == (str(job_id), "null", "3", "50")

    text = q.stats_tube_yaml("0123")
    assert {k: _as_text(v) for k, v in q.stats_tube("0123").items()} == _raw_mapping(text)

    text = q.stats_yaml()
    raw = _raw_mapping(text)
    typed = q.stats()
    assert set(raw) == set(typed)
    for key in ("id", "os", "version", "hostname", "platform", "pid", "max-job-size", "draining", "current-tubes"):
        assert _as_text(typed[key]) == raw[key], key
    assert q.using() == "null"  # the stream is in sync after every raw body


def test_yaml_variant_failure(conn: Connection) -> None:
    with pytest.raises(NotFound):
        conn.queue.stats_job_yaml(MISSING_ID)
    with pytest.raises(NotFound):
        conn.queue.stats_tube_yaml("no-such-tube")
    assert conn.queue.using() == "default"


# -- tube names that YAML would mistype (protocol-notes §6) ---------------------------------------


def test_trap_tube_names_stay_strings(conn: Connection) -> None:
    q = conn.queue
    for tube in TRAP_TUBES:
        q.watch(tube)
    watching = q.watching()
    assert watching == ["default", *TRAP_TUBES]
    assert all(type(name) is str for name in watching)
    assert sorted(q.list_tubes()) == sorted(["default", *TRAP_TUBES])
    for tube in TRAP_TUBES:
        stats = q.stats_tube(tube)
        assert type(stats.name) is str and stats.name == tube
        assert stats.current_watching == 1
        assert q.use(tube) == tube
        assert q.using() == tube
        job_id = q.put(b"x")
        job = q.stats_job(job_id)
        assert type(job.tube) is str and job.tube == tube
        assert q.reserve_with_timeout(0).uid == job_id
        q.delete(job_id)


# -- failures ------------------------------------------------------------------------------------


NOT_FOUND_CASES: dict[str, Callable[[Connection], object]] = {
    "delete": lambda c: c.queue.delete(MISSING_ID),
    "touch": lambda c: c.queue.touch(MISSING_ID),
    "release": lambda c: c.queue.release(MISSING_ID, 1, 0),
    "bury": lambda c: c.queue.bury(MISSING_ID, 1),
    "kick-job": lambda c: c.queue.kick_job(MISSING_ID),
    "stats-job": lambda c: c.queue.stats_job(MISSING_ID),
    "stats-tube": lambda c: c.queue.stats_tube("no-such-tube"),
    "pause-tube": lambda c: c.queue.pause_tube("no-such-tube", 1),
    "reserve-job": lambda c: c.queue.reserve_job(MISSING_ID),
}


@pytest.mark.parametrize("command", sorted(NOT_FOUND_CASES))
def test_not_found(conn: Connection, command: str) -> None:
    with pytest.raises(NotFound) as info:
        NOT_FOUND_CASES[command](conn)
    assert isinstance(info.value, CommandFailed)
    assert info.value.args[0] == command
    assert info.value.args[1] == "NOT_FOUND"
    assert conn.queue.using() == "default"  # the connection is still in sync


def test_not_found_for_jobs_in_the_wrong_state(conn: Connection, make_connection: ConnectionFactory) -> None:
    q = conn.queue
    job_id = q.put(b"x")
    # ready, not reserved by us: release/bury/touch fail
    with pytest.raises(NotFound):
        q.release(job_id, 1, 0)
    with pytest.raises(NotFound):
        q.bury(job_id, 1)
    with pytest.raises(NotFound):
        q.touch(job_id)
    # kick-job of a ready job
    with pytest.raises(NotFound):
        q.kick_job(job_id)
    # delete of a job reserved by another connection
    with make_connection(conn.host, conn.port, timeout=10) as other:
        assert other.queue.reserve_job(job_id).uid == job_id
        with pytest.raises(NotFound):
            q.delete(job_id)
        with pytest.raises(NotFound):
            q.reserve_job(job_id)
    # the other connection closed: the job is ready again
    assert q.stats_job(job_id).state == "ready"


def test_peek_of_missing_returns_none(conn: Connection) -> None:
    q = conn.queue
    assert q.peek(MISSING_ID) is None
    assert q.peek_ready() is None
    assert q.peek_delayed() is None
    assert q.peek_buried() is None
    assert q.using() == "default"


def test_timed_out(conn: Connection) -> None:
    with pytest.raises(TimedOut) as info:
        conn.queue.reserve_with_timeout(0)
    assert info.value.args[1] == "TIMED_OUT"
    start = time.monotonic()
    with pytest.raises(TimedOut):
        conn.queue.reserve_with_timeout(1)
    assert time.monotonic() - start >= 0.9
    assert conn.queue.using() == "default"


def test_job_too_big(server_factory: ServerFactory, make_connection: ConnectionFactory) -> None:
    small = server_factory(max_job_size=10)
    with make_connection(small.host, small.port, timeout=10) as c:
        q = c.queue
        assert q.stats().max_job_size == 10
        with pytest.raises(JobTooBig) as info:
            q.put(b"x" * 11)
        assert info.value.args[1] == "JOB_TOO_BIG"
        # the server read and discarded the body: the stream is in sync
        job_id = q.put(b"y" * 10)
        peeked = q.peek(job_id)
        assert peeked is not None and peeked.raw == b"y" * 10
        # the limit counts UTF-8 bytes, not characters
        with pytest.raises(JobTooBig):
            q.put("日本語☃")  # 4 characters, 12 bytes
        assert q.put("日本語") > job_id  # 9 bytes
        with pytest.raises(JobTooBig):
            q.put(b"z" * 70000)
        assert q.using() == "default"
        assert q.stats().current_jobs_ready == 2


def test_draining(server: BeanstalkdServer, conn: Connection) -> None:
    q = conn.queue
    job_id = q.put(b"before")
    server.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not q.stats().draining:
        assert time.monotonic() < deadline, "server never started draining"
        time.sleep(0.01)
    assert q.stats()["draining"] is True
    with pytest.raises(Draining) as info:
        q.put(b"after")
    assert isinstance(info.value, CommandFailed)
    assert info.value.args[1] == "DRAINING"
    # existing jobs are still served and the stream is in sync
    assert q.reserve_with_timeout(0).uid == job_id
    q.delete(job_id)


def test_deadline_soon(conn: Connection) -> None:
    q = conn.queue
    job_id = q.put(b"short", ttr=1)
    assert q.reserve_with_timeout(0).uid == job_id
    # ttr=1: the job is inside its one-second safety margin at once
    with pytest.raises(DeadlineSoon) as info:
        q.reserve_with_timeout(5)
    assert info.value.args[1] == "DEADLINE_SOON"
    with pytest.raises(DeadlineSoon):
        q.reserve()
    assert q.stats_job(job_id).state == "reserved"


def test_connection_refused_names_host_and_port(make_connection: ConnectionFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on `port` now
    with pytest.raises(SocketError) as info:
        make_connection("127.0.0.1", port, timeout=5)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, beanstalkm.BeanstalkmException)
    assert "127.0.0.1" in str(info.value)
    assert str(port) in str(info.value)


def test_unix_socket_end_to_end(
    unix_server: BeanstalkdServer, make_connection: ConnectionFactory, make_client: ClientFactory
) -> None:
    assert unix_server.unix_path is not None
    with make_connection(unix_socket=unix_server.unix_path, timeout=10) as c:
        q = c.queue
        assert q.use("unix") == "unix"
        job_id = q.put("über")
        q.watch("unix")
        m = q.reserve_with_timeout(0)
        assert (m.uid, m.body) == (job_id, "über")
        assert q.stats_job(job_id).state == "reserved"
        q.delete(job_id)
        assert q.peek(job_id) is None
        assert q.stats().current_connections == 1
    with make_client(unix_socket=unix_server.unix_path, timeout=10) as client:
        sent = client.put({"via": "unix"})
        client.watch(beanstalkm.DEFAULT_TUBE)
        got = client.reserve(timeout=0)
        assert got is not None and got.body == {"via": "unix"} and got.token == sent.token
