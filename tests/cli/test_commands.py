"""Every command of the ``beanstalkm`` CLI as a real subprocess against real servers: output, --json, exit codes."""

from __future__ import annotations

import json

from beanstalkm import NotFound
from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import Mixed, client, ok, run, url


def test_put_then_every_inspection_in_json(server: BeanstalkdServer) -> None:
    put = ok("--json", "put", "jobs", '{"to": "x"}', "--priority", "7", "--ttr", "33", servers=[server]).json()
    (job,) = put["jobs"]
    job_id = job["id"]
    assert put["tube"] == "jobs" and job["ref"] == str(job_id) and job["server"] == url(server)

    peek = ok("--json", "peek", str(job_id), servers=[server]).json()
    assert (peek["body"], peek["priority"], peek["ttr"], peek["state"]) == ({"to": "x"}, 7, 33, "ready")
    assert peek["envelope"] is True and json.loads(peek["data"])["body"] == {"to": "x"}
    head = ok("--json", "peek", "jobs", "--ready", servers=[server]).json()
    assert head["id"] == job_id

    stats_job = ok("--json", "stats-job", str(job_id), servers=[server]).json()
    assert stats_job["stats"]["state"] == "ready" and stats_job["stats"]["pri"] == 7

    stats_tube = ok("--json", "stats-tube", "jobs", servers=[server]).json()
    assert stats_tube["servers"][0]["stats"]["current-jobs-ready"] == 1

    assert ok("stats", "current-jobs-ready", servers=[server]).out.strip() == "1"
    stats = ok("--json", "stats", servers=[server]).json()
    assert stats["servers"][0]["stats"]["total-jobs"] == 1 and stats["total"] is None
    field = ok("--json", "stats", "cmd-put", servers=[server]).json()
    assert field["servers"][0]["value"] == 1

    tubes = ok("--json", "tubes", servers=[server]).json()
    row = next(t for t in tubes["tubes"] if t["tube"] == "jobs")
    assert row["stats"]["current-jobs-ready"] == 1 and tubes["total"]["current-jobs-ready"] == 1
    text = ok("tubes", servers=[server]).out
    assert "jobs" in text and "TOTAL" in text and "ready" in text


def test_put_from_stdin_ndjson_and_raw(server: BeanstalkdServer) -> None:
    lines = "\n".join(json.dumps({"n": i}) for i in range(5)) + "\n"
    ids = [j["id"] for j in ok("--json", "put", "many", "--delay", "0", servers=[server], stdin=lines).json()["jobs"]]
    assert len(ids) == 5
    raw = ok("--json", "put", "many", "plain text", "--raw", servers=[server]).json()["jobs"][0]["id"]
    with client(server) as c:
        bodies = [c.queue.peek(i) for i in ids]
        assert [m.body for m in bodies if m is not None] == [{"n": i} for i in range(5)]
        plain = c.queue.peek(raw)
        assert plain is not None and plain.raw == b"plain text" and not plain.envelope
    bad = run("put", "many", servers=[server], stdin='{"n": 1}\nnot json\n')
    assert bad.code == 2 and "stdin line 2" in bad.err
    with client(server) as c:
        assert c.queue.stats_tube("many").current_jobs_ready == 6, "a bad line must stop the put before sending"


def test_kick_bury_kick_job_delete_pause(server: BeanstalkdServer) -> None:
    with client(server) as c:
        ids = [c.put({"n": i}, tube="work", priority=40 + i).uid for i in range(3)]
    for job_id in ids:
        result = ok("--json", "bury", str(job_id), servers=[server]).json()
        assert result["buried"] and result["was"] == "ready"
    with client(server) as c:
        assert [c.queue.stats_job(i).state for i in ids] == ["buried"] * 3
        assert [c.queue.stats_job(i).pri for i in ids] == [40, 41, 42], "bury keeps each job's priority"
    assert ok("--json", "kick", "work", "2", servers=[server]).json()["kicked"] == 2
    assert ok("--json", "kick-job", str(ids[2]), servers=[server]).json()["kicked"] is True
    missing = run("kick-job", str(ids[2]), servers=[server])
    assert missing.code == 1 and f"job {ids[2]}" in missing.err

    paused = ok("--json", "pause", "work", "30", servers=[server]).json()
    assert paused["seconds"] == 30
    with client(server) as c:
        assert c.queue.stats_tube("work").pause == 30
    assert run("pause", "no-such-tube", "5", servers=[server]).code == 1

    deleted = run("--json", "delete", str(ids[0]), str(ids[1]), "999", servers=[server])
    assert deleted.code == 1 and "999" in deleted.err
    assert sorted(deleted.json()["deleted"]) == sorted([str(ids[0]), str(ids[1])])
    with client(server) as c:
        for job_id in ids[:2]:
            try:
                c.queue.stats_job(job_id)
            except NotFound:
                continue
            raise AssertionError(f"job {job_id} still there after delete")


def test_flush_asks_unless_yes_and_keeps_reserved(server: BeanstalkdServer, mixed: Mixed) -> None:
    refused = run("flush", mixed.tube, servers=[server])
    assert refused.code == 2 and "--yes" in refused.err
    with client(server) as c:
        assert c.queue.stats_tube(mixed.tube).current_jobs_ready == 2
    buried_only = ok("--json", "flush", mixed.tube, "--buried", "--yes", servers=[server]).json()
    assert buried_only["deleted"] == 1
    everything = ok("--json", "flush", mixed.tube, "--yes", servers=[server]).json()
    assert everything["deleted"] == 3
    with client(server) as c:
        stats = c.queue.stats_tube(mixed.tube)
        assert (stats.current_jobs_ready, stats.current_jobs_delayed, stats.current_jobs_buried) == (0, 0, 0)
        assert stats.current_jobs_reserved == 1, "a job a worker holds is not flushed"


def test_ls_filters(server: BeanstalkdServer, mixed: Mixed) -> None:
    every = ok("--json", "ls", mixed.tube, servers=[server]).ndjson()
    assert [j["id"] for j in every] == mixed.all
    assert [j["state"] for j in every] == ["ready", "ready", "delayed", "buried", "reserved"]
    assert every[2]["delay"] > 290 and every[0]["body"] == {"n": 1, "text": "alpha"}

    def ids(*args: str) -> list[int]:
        return [j["id"] for j in ok("--json", "ls", mixed.tube, *args, servers=[server]).ndjson()]

    assert ids("--state", "buried", "--state", "delayed") == [mixed.delayed, mixed.buried]
    assert ids("--min-priority", "6", "--max-priority", "100") == [mixed.delayed, mixed.buried]
    assert ids("--body", "bet[a]") == [mixed.ready[1]]
    assert ids("--limit", "2") == mixed.ready
    assert ids("--min-age", "3600") == []
    text = ok("ls", mixed.tube, servers=[server]).out
    assert "alpha" in text and "5 job(s)" in text
    assert run("ls", mixed.tube, "--body", "(", servers=[server]).code == 2


def test_bad_input_is_a_usage_error_naming_the_value(server: BeanstalkdServer) -> None:
    for tube in ("bad tube", "-leading", "x" * 201, "caf\u00e9", "semi;colon!"):
        result = run("stats-tube", "--", tube, servers=[server])
        assert result.code == 2, (tube, result.err)
        assert repr(tube)[:40] in result.err or tube[:40] in result.err
        assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    for job in ("0", "-3", "abc", "1:0", "0:5", str(2**64)):
        result = run("stats-job", "--", job, servers=[server])
        assert result.code == 2 and job in result.err, (job, result.err)
    assert run("stats", "no-such-field", servers=[server]).code == 2
    bad_url = run("-s", "http://example.invalid", "tubes")
    assert bad_url.code == 2 and "http://example.invalid" in bad_url.err
    assert run("no-such-command", servers=[server]).code == 2
    missing = run("stats-job", "424242", servers=[server])
    assert missing.code == 1 and "424242" in missing.err and url(server) in missing.err


def test_unreachable_server_exits_3(server_factory: ServerFactory) -> None:
    dead = server_factory()
    dead_url = url(dead)
    dead.stop()
    for args in (["tubes"], ["stats"], ["stats-job", "1"], ["put", "t", "x"], ["top", "--once"], ["ls", "t"]):
        result = run("-s", dead_url, *args)
        assert result.code == 3, (args, result.err)
        assert dead_url in result.err and "Traceback" not in result.err
    debug = run("--debug", "-s", dead_url, "stats-job", "1")
    assert debug.code == 3 and "Traceback" in debug.err
    env = run("tubes", env={"BEANSTALKD_URL": dead_url})
    assert env.code == 3 and dead_url in env.err


def test_several_servers(server_factory: ServerFactory) -> None:
    a, b = server_factory(), server_factory()
    put = ok("--json", "put", "spread", servers=[a, b], stdin='{"n": 0}\n{"n": 1}\n{"n": 2}\n').json()
    assert [j["server"] for j in put["jobs"]] == [url(a), url(b), url(a)]
    assert [j["ref"] for j in put["jobs"]] == ["1:1", "2:1", "1:2"]
    tubes = ok("--json", "tubes", servers=[a, b]).json()
    rows = {(t["server"], t["tube"]): t["stats"]["current-jobs-ready"] for t in tubes["tubes"]}
    assert rows[(url(a), "spread")] == 2 and rows[(url(b), "spread")] == 1
    assert tubes["total"]["current-jobs-ready"] == 3
    stats = ok("--json", "stats", "current-jobs-ready", servers=[a, b]).json()
    assert stats["total"] == 3 and [s["value"] for s in stats["servers"]] == [2, 1]
    ambiguous = run("stats-job", "1", servers=[a, b])
    assert ambiguous.code == 2 and "ambiguous" in ambiguous.err
    assert ok("--json", "stats-job", "2:1", servers=[a, b]).json()["server"] == url(b)
    assert ok("--json", "peek", f"{url(b)}#1", servers=[a, b]).json()["body"] == {"n": 1}
    ls = ok("--json", "ls", "spread", servers=[a, b]).ndjson()
    assert [j["ref"] for j in ls] == ["1:1", "1:2", "2:1"]
    top = ok("--json", "top", "--once", "--interval", "0.2", servers=[a, b]).json()
    assert [s["up"] for s in top["servers"]] == [True, True] and top["total"]["ready"] == 3
    b.stop()
    partial = run("--json", "tubes", servers=[a, b])
    assert partial.code == 1 and url(b) in partial.err
    assert {t["server"] for t in partial.json()["tubes"]} == {url(a)}
    down = run("--json", "top", "--once", "--interval", "0.2", servers=[a, b])
    assert down.code == 1 and [s["up"] for s in down.json()["servers"]] == [True, False]


def test_top_once(server: BeanstalkdServer, mixed: Mixed) -> None:
    frame = ok("--json", "top", "--once", "--interval", "0.3", servers=[server]).json()
    row = next(t for t in frame["tubes"] if t["tube"] == mixed.tube)
    assert (row["ready"], row["delayed"], row["buried"], row["reserved"]) == (2, 1, 1, 1)
    assert row["urgent"] == 1 and row["put_per_s"] == 0.0 and row["oldest_ready_age"] is not None
    text = ok("top", "--once", "--interval", "0.2", servers=[server]).out
    assert mixed.tube in text and "put/s" in text and "up 1." in text


def test_missing_worker_module_is_one_line(server: BeanstalkdServer) -> None:
    # `worker`/`failed` pass through to beanstalkm.worker_main (another issue); without it, one line, exit 1
    import importlib.util

    if importlib.util.find_spec("beanstalkm.worker_main") is None:
        result = run("worker", "pkg:worker", servers=[server])
        assert result.code == 1 and "worker_main" in result.err and len(result.err.strip().splitlines()) == 1
