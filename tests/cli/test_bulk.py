"""The bulk commands' wire (``beanstalkm.cli._wire``, ``_bulk``): batches in flight, replies read as bytes.

Each fast reading is checked against the library's own (``JobStats`` + ``job_record`` + ``json.dumps``,
the generated encoders and decoders) on a real server; the ways a flush chooses (one walk, the walk giving
up on a sparse tube for reserves, the reserves meeting ``DEADLINE_SOON``, a paused tube) each run for real.
A fake server only where a real one cannot fail on demand: a connection closed half-way through a batch.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import closing

import pytest
from rich.console import Console
from rich.table import Table

from beanstalkm import Client, CorruptJob, JobStats, OutOfMemory, ProtocolError, SocketError, TubeStats
from beanstalkm._core.requests import Reply
from beanstalkm._generated import commands as _c
from beanstalkm.cli import _bulk
from beanstalkm.cli._app import _totals
from beanstalkm.cli._common import PlainTable
from beanstalkm.cli._jobs import job_record, walk_bounds
from beanstalkm.cli._wire import Plan, Wire, failure, stats_job_line, stats_tube_line
from beanstalkm.testing import BeanstalkdServer

from ._support import client, ok

BODIES = [
    b'{"to": "someone@example.com", "n": 0}',
    'caf\u00e9 \u2603 \U0001f600 "quoted" back\\slash\ttab\nnewline\x01'.encode(),
    b"",
    b"\xff\xfe not UTF-8 \x00",
    b"x" * 65000,  # near the server's largest (65,535 bytes by default)
]


def _expected_lines(c: Client, url: str, ids: list[int]) -> list[str]:
    """Each job's export line the slow way: the library's stats and peek, ``job_record``, ``json.dumps``."""
    lines = []
    for job_id in ids:
        stats = c.queue.stats_job(job_id)
        message = c.queue.peek(job_id)
        record = {"server": url, **job_record(stats, message, body=False, data=True)}
        lines.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    return lines


def test_export_lines_are_the_library_reading_oldest_first(server: BeanstalkdServer) -> None:
    with client(server) as c:
        c.queue.use("exp")
        ids = []
        for i, body in enumerate(BODIES * 3):
            c.queue.use("other" if i % 4 == 3 else "exp")  # another tube's jobs in between
            job_id = c.queue.put(body, i, 300 if i == 5 else 0, 60 + i)
            if i % 4 != 3:
                ids.append(job_id)
        c.queue.reserve_job(ids[1])
        c.queue.bury(ids[1], 7)
        expected = _expected_lines(c, c.url, ids)
        bounds = walk_bounds(c, "exp")
        assert bounds is not None and bounds[1] == len(ids)
        out = io.StringIO()
        written = _bulk.export_lines(c, c.url, "exp", *bounds, ("ready", "delayed", "buried"), out, lambda n: None)
        assert written == len(ids)
        got = out.getvalue().splitlines()
        assert [json.loads(line)["id"] for line in got] == ids, "oldest first"
        for line, want in zip(got, expected, strict=True):
            assert line == want


def test_stats_job_other_layouts_go_to_the_library() -> None:
    quoted = b'---\nid: 9\ntube: "a.b"\nstate: delayed\npri: 1\nage: 2\ndelay: 3\nttr: 4\ntime-left: 5\nfile: 0\n'
    quoted += b"reserves: 6\ntimeouts: 7\nreleases: 8\nburies: 9\nkicks: 10\n"
    assert _bulk.job_numbers(quoted) == ("a.b", 1, [9, 1, 4, 5, 2, 6, 8, 7, 9, 10])
    reordered = quoted.replace(b"pri: 1\nage: 2\n", b"age: 2\npri: 1\n") + b"new-field: x\n"
    info = JobStats.from_yaml(reordered)
    assert _bulk.job_numbers(reordered) == (info.tube, 1, [9, 1, 4, 5, 2, 6, 8, 7, 9, 10])


def test_stats_tube_other_layouts_go_to_the_library() -> None:
    keys = ("current-jobs-urgent", "current-jobs-ready", "current-jobs-reserved", "current-jobs-delayed",
            "current-jobs-buried", "total-jobs", "current-using", "current-watching", "current-waiting",
            "cmd-delete", "cmd-pause-tube", "pause", "pause-time-left")  # fmt: skip
    body = b"---\nname: t\n" + b"".join(b"%s: %d\n" % (k.encode(), i) for i, k in enumerate(keys))
    assert _bulk.tube_row(body) == {"name": "t", **{k: i for i, k in enumerate(keys)}}
    reordered = body.replace(b"name: t\n", b"") + b"name: t\nnew-field: x\n"
    assert _bulk.tube_row(reordered) == dict(TubeStats.from_yaml(reordered))
    assert _bulk.tube_row(reordered)["new-field"] == "x"
    with pytest.raises(ProtocolError):  # not a stats-tube body: the library's typed error, nothing guessed
        _bulk.tube_row(body.replace(b"total-jobs: 5", b"total-jobs: many"))


def test_encoders_are_the_generated_ones() -> None:
    for job_id in (1, 42, 2**64 - 1):
        assert stats_job_line(job_id) == _c.stats_job(job_id).head
    assert stats_tube_line("a-b") == _c.stats_tube("a-b").head


def test_a_reply_other_than_success_or_not_found_is_the_generated_error() -> None:
    assert isinstance(failure(_c.stats_job(1), Reply("OUT_OF_MEMORY", (), None)), OutOfMemory)
    assert isinstance(failure(_c.peek(1), Reply("FOUND", ("1", "2"), b"ab", b"\x00\x00")), CorruptJob)


def test_tube_entries_are_json_dumps(server: BeanstalkdServer) -> None:
    with client(server) as c:
        c.queue.use("t-1")
        c.queue.put(b"x")
        rows, entries = _bulk.tube_rows(c, server="beanstalk://h:1")
    assert [row["name"] for row in rows] == ["default", "t-1"]
    assert entries == [_bulk.tube_entry("beanstalk://h:1", row) for row in rows], "written as the replies came"
    odd: dict[str, int | str] = {"name": 'we"ird', "current-jobs-ready": "many", "new": 1}
    for row in [*rows, {**rows[0], "failed": 3}, odd, {**rows[0], "pause": True}]:
        entry = {
            "server": "beanstalk://h:1",
            "tube": row["name"],
            "stats": {k: v for k, v in row.items() if k != "failed"},
        }
        want = json.dumps({**entry, "failed": row.get("failed")}, separators=(",", ":"), ensure_ascii=False)
        assert _bulk.tube_entry("beanstalk://h:1", row) == want


def test_flush_of_a_dense_tube_is_one_walk(server: BeanstalkdServer) -> None:
    with client(server) as c:
        ids = [c.put({"n": i}, tube="dense", priority=i).uid for i in range(1500)]
        other = c.put({"o": 1}, tube="other").uid
        report = ok("--json", "flush", "dense", "--yes", servers=[server]).json()
        assert report["deleted"] == 1500 and report["servers"][0]["by_reserve"] == 0
        assert all(c.queue.peek(i) is None for i in ids) and c.queue.peek(other) is not None


def test_flush_of_a_sparse_tube_gives_up_the_walk_for_reserves(server: BeanstalkdServer) -> None:
    with client(server) as c:
        sparse, others = [], []
        for i in range(3300):
            if i % 10 == 0:
                sparse.append(c.put({"s": i}, tube="sparse").uid)
            else:
                others.append(c.put({"o": i}, tube="busy").uid)
        report = ok("--json", "flush", "sparse", "--ready", "--yes", servers=[server]).json()
        assert report["deleted"] == len(sparse)
        assert 0 < report["servers"][0]["by_reserve"] < len(sparse), "the walk began, the reserves finished"
        assert all(c.queue.peek(i) is None for i in sparse)
        assert c.queue.stats_tube("busy").current_jobs_ready == len(others), "no other tube's job"


def test_flush_of_a_sparse_paused_tube_walks_it_all(server: BeanstalkdServer) -> None:
    with client(server) as c:
        sparse = []
        for i in range(2200):
            if i % 10 == 0:
                sparse.append(c.put({"s": i}, tube="sparse").uid)
            else:
                c.put({"o": i}, tube="busy")
        c.queue.pause_tube("sparse", 600)
        report = ok("--json", "flush", "sparse", "--ready", "--yes", servers=[server]).json()
        assert report["deleted"] == len(sparse) and report["servers"][0]["by_reserve"] == 0
        assert c.queue.stats_tube("busy").current_jobs_ready == 2200 - len(sparse)


def test_reserves_meeting_deadline_soon_still_delete_every_job(server: BeanstalkdServer) -> None:
    with client(server) as c:
        c.queue.use("short")
        ids = [c.queue.put(b"x", 0, 0, 1) for _ in range(30)]  # TTR 1 s: every reserve after one is DEADLINE_SOON
        c.queue.use("keep")
        kept = c.queue.put(b"k")
        assert _bulk.flush_ready(c, "short", 30, lambda n: None) == 30
        assert all(c.queue.peek(i) is None for i in ids) and c.queue.peek(kept) is not None


@pytest.fixture
def closing_server() -> Iterator[tuple[str, int]]:
    """Accepts connections; on each, answers the first command it reads with NOT_FOUND and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                if conn.recv(65536):
                    conn.sendall(b"NOT_FOUND\r\n")
            except OSError:
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    listener.close()
    thread.join(10)


def test_a_connection_lost_half_way_is_a_socket_error_naming_the_server(closing_server: tuple[str, int]) -> None:
    host, port = closing_server
    with Client(host, port, timeout=10) as c, closing(Wire(c)) as wire:
        wire.send(b"stats-job 1\r\nstats-job 2\r\n", 2)
        with pytest.raises(SocketError, match=f"beanstalk://{host}:{port} lost"):
            wire.receive()


def test_totals_sum_only_whole_numbers_of_counters() -> None:
    rows: list[dict[str, object]] = [
        {"name": "a", "current-jobs-ready": 2, "total-jobs": 5, "pause": 1},
        {"name": "b", "current-jobs-ready": 3, "total-jobs": 1, "pause": 0},
        {"name": "c", "current-jobs-ready": True, "total-jobs": "many", "cmd-delete": 4},
        {"name": "d", "current-jobs-ready": None, "cmd-delete": 1.5},
    ]
    assert _totals(rows) == {"current-jobs-ready": 5, "total-jobs": 6, "cmd-delete": 4}


def test_plain_table_prints_what_a_rich_table_would() -> None:
    columns = [("tube", False), ("server", False), ("ready", True), ("buried", True), ("paused", True)]
    rows = [
        ["default", "beanstalk://127.0.0.1:1", "0", "0", "0"],
        ["a-much-longer-tube-name", "unix:///tmp/b\u00e9", "12345", "3", "600"],
        ["TOTAL (2)", "2 up", "12345", "3", ""],
    ]
    table = Table(box=None, header_style="bold", pad_edge=False)
    plain = PlainTable(columns)
    for title, right in columns:
        table.add_column(title, justify="right" if right else "left")
    for row in rows:
        table.add_row(*row[:3], f"[bold red]{row[3]}[/]", row[4])
        plain.add_row(*row[:3], (row[3], "bold red"), row[4])
    printed = []
    for renderable in (table, plain):
        console = Console(file=io.StringIO(), width=200, soft_wrap=False)
        console.print(renderable)
        out = console.file
        assert isinstance(out, io.StringIO)
        printed.append(out.getvalue())
    assert printed[0] == printed[1]


def _step(wire: Wire, plan: Plan) -> None:
    """One write of ``plan`` and its replies, by hand: a test acts between two writes."""
    batch = plan.next_batch()
    assert batch is not None and len(batch)
    wire.send(batch.data, len(batch))
    plan.done(batch, wire.receive())


def test_a_job_gone_between_the_walk_and_its_peek_is_not_written(server: BeanstalkdServer) -> None:
    with client(server) as c:
        ids = [c.put({"n": i}, tube="gone").uid for i in range(3)]
        bounds = walk_bounds(c, "gone")
        assert bounds is not None
        plan = _bulk.ExportPlan("gone", *bounds, ("ready",))
        with closing(Wire(c)) as wire:
            _step(wire, plan)
            c.queue.delete(ids[1])
            out = io.StringIO()
            peeks = _bulk._Peeks(plan, c.url, out)
            _step(wire, peeks)
        assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [ids[0], ids[2]]


def test_a_job_reserved_between_the_walk_and_its_delete_is_skipped(server: BeanstalkdServer) -> None:
    with client(server) as c, client(server) as worker:
        ids = [c.put({"n": i}, tube="raced").uid for i in range(3)]
        bounds = walk_bounds(c, "raced")
        assert bounds is not None
        plan = _bulk.FlushWalk("raced", *bounds, ("ready",))
        with closing(Wire(c)) as wire:
            _step(wire, plan)  # the walk: each job's delete queued for the next write
            worker.queue.reserve_job(ids[0])  # a worker takes one meanwhile
            _step(wire, plan)  # the deletes
        assert (plan.deleted, plan.skipped) == (2, 1)
        assert c.queue.stats_job(ids[0]).state == "reserved", "the worker keeps its job"


def test_a_reserve_whose_ttr_ran_out_before_its_delete_is_not_counted(server: BeanstalkdServer) -> None:
    """The job goes back to its tube between the reserve and the delete, and a worker takes it. The going
    back is a ``release`` on the wire: beanstalkd times out the jobs an idle connection holds only at
    its own pace (seconds late, or not until the connection speaks again, in runs of this suite)."""
    with client(server) as c, client(server) as worker:
        c.queue.use("brief")
        job_id = c.queue.put(b"x", 0, 0, 1)
        plan = _bulk.ReadyDrain(1)
        with closing(Wire(c)) as wire:
            wire.command(_c.watch("brief"))
            wire.command(_c.ignore("default"))
            _step(wire, plan)  # reserved; its delete queued
            wire.command(_c.release(job_id, 0, 0))  # back in its tube, as when its TTR runs out
            worker.watch("brief")
            worker.ignore("default")
            taken = worker.queue.reserve_with_timeout(10)
            assert taken.uid == job_id
            _step(wire, plan)  # the delete: NOT_FOUND, since the worker holds it now
        assert (plan.taken, plan.deleted) == (1, 0)
        assert c.queue.stats_job(job_id).state == "reserved"
