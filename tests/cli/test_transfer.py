"""``export`` then ``import`` into another server, and ``move`` across tubes and across servers, keep each
job's bytes, priority, TTR, state and remaining delay (within 1 s), for ready, delayed and buried jobs."""

from __future__ import annotations

from pathlib import Path

from beanstalkm import Client, NotFound
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import Mixed, client, ok, populate, run, url


def _jobs(c: Client, tube: str) -> list[dict[str, object]]:
    """The jobs of ``tube`` (by a peek-free id walk through the library), oldest first, field by field."""
    out: list[dict[str, object]] = []
    stats = c.queue.stats()
    for job_id in range(1, stats.total_jobs + 1):
        try:
            job = c.queue.stats_job(job_id)
        except NotFound:
            continue
        if job.tube != tube:
            continue
        message = c.queue.peek(job_id)
        assert message is not None
        out.append(
            {
                "state": job.state,
                "priority": job.pri,
                "ttr": job.ttr,
                "delay": job.time_left if job.state == "delayed" else 0,
                "raw": message.raw,
            }
        )
    return out


def _same(moved: list[dict[str, object]], original: list[dict[str, object]]) -> None:
    assert len(moved) == len(original)
    for copy, job in zip(moved, original, strict=True):
        for key in ("state", "priority", "ttr", "raw"):
            assert copy[key] == job[key], (key, copy, job)
        delay, was = copy["delay"], job["delay"]
        assert isinstance(delay, int) and isinstance(was, int)
        assert was - 1 <= delay <= was, ("remaining delay", copy, job)


def test_export_then_import_into_another_server(server_factory: ServerFactory, tmp_path: Path) -> None:
    a, b = server_factory(), server_factory()
    for mixed in populate(a):
        with client(a) as c:
            original = [j for j in _jobs(c, mixed.tube) if j["state"] != "reserved"]
        exported = ok("export", mixed.tube, servers=[a])
        lines = exported.ndjson()
        assert [line["state"] for line in lines] == ["ready", "ready", "delayed", "buried"]
        assert "exported 4 job(s)" in exported.err
        dump = tmp_path / "dump.ndjson"
        dump.write_text(exported.out)
        imported = ok("--json", "import", str(dump), servers=[b]).json()
        assert imported["imported"] == 4 and imported["failed"] == 0
        with client(b) as c:
            _same(_jobs(c, mixed.tube), original)
        with client(a) as c:
            assert c.queue.stats_tube(mixed.tube).current_jobs_ready == 2, "a plain export changes nothing"
        # into another tube, from stdin
        ok("import", "-", "--tube", "copy", servers=[b], stdin=exported.out)
        with client(b) as c:
            _same(_jobs(c, "copy"), original)


def test_export_delete_drains_what_it_wrote(server: BeanstalkdServer, mixed: Mixed, tmp_path: Path) -> None:
    drained = ok("export", mixed.tube, "--delete", servers=[server]).ndjson()
    assert len(drained) == 4
    with client(server) as c:
        stats = c.queue.stats_tube(mixed.tube)
        assert stats.current_jobs_reserved == 1 and stats.total_jobs - stats.cmd_delete == 1


def test_move_across_tubes(server: BeanstalkdServer, mixed: Mixed) -> None:
    with client(server) as c:
        original = [j for j in _jobs(c, mixed.tube) if j["state"] != "reserved"]
    moved = ok("--json", "move", mixed.tube, "elsewhere", servers=[server]).json()
    assert moved["moved"] == 4 and moved["servers"][0]["left_reserved"] == 1
    with client(server) as c:
        _same(_jobs(c, "elsewhere"), original)
        left = _jobs(c, mixed.tube)
        assert [j["state"] for j in left] == ["reserved"], "a job a worker holds stays where it is"
        assert c.queue.stats().cmd_reserve == 0
    assert run("move", "elsewhere", "elsewhere", servers=[server]).code == 2


def test_move_across_servers(server_factory: ServerFactory) -> None:
    a, b = server_factory(), server_factory()
    for mixed in populate(a):
        with client(a) as c:
            original = [j for j in _jobs(c, mixed.tube) if j["state"] != "reserved"]
        moved = ok("--json", "move", mixed.tube, mixed.tube, "--to", url(b), servers=[a]).json()
        assert moved["moved"] == 4
        with client(b) as c:
            _same(_jobs(c, mixed.tube), original)
        with client(a) as c:
            assert [j["state"] for j in _jobs(c, mixed.tube)] == ["reserved"]
    dead = server_factory()
    dead_url = url(dead)
    dead.stop()
    assert run("move", "x", "y", "--to", dead_url, servers=[a]).code == 3
    two = run("move", "x", "y", "--to", f"{url(a)},{url(b)}", servers=[a])  # one destination, not a list
    assert two.code == 2 and "--to" in two.err and "must be one server URL" in two.err


def test_import_of_hand_written_lines(server: BeanstalkdServer) -> None:
    lines = (
        '{"tube": "hand", "body": {"a": 1}, "priority": 3, "ttr": 9, "state": "buried"}\n'
        '{"tube": "hand", "data": "plain", "delay": 120, "state": "delayed"}\n'
    )
    assert ok("--json", "import", "-", servers=[server], stdin=lines).json()["imported"] == 2
    with client(server) as c:
        jobs = _jobs(c, "hand")
        assert [(j["state"], j["priority"], j["ttr"]) for j in jobs] == [("buried", 3, 9), ("delayed", 2**31, 120)]
        first = c.queue.peek_buried()
        assert first is None  # peek-buried acts on the used tube ("default")
        c.queue.use("hand")
        buried = c.queue.peek_buried()
        assert buried is not None and buried.envelope and buried.body == {"a": 1}
        assert jobs[1]["raw"] == b"plain"
    bad = run("import", "-", servers=[server], stdin='{"tube": "hand", "data": "x"}\n{"tube": "bad tube"}\n')
    assert bad.code == 1 and "line 2" in bad.err
    with client(server) as c:
        assert c.queue.stats_tube("hand").total_jobs == 2, "a bad line stops the import before anything is sent"
