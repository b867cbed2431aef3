"""``flush`` takes no other tube's job, no job a worker holds, no delayed or buried job unless asked,
whichever way it goes (the id walk here, a dense tube; the walk giving up for reserves on a sparse tube in
``test_bulk.py``); a paused tube's ready jobs (which no reserve gets) still go. Real server, real
subprocess."""

from __future__ import annotations

from beanstalkm.testing import BeanstalkdServer

from ._support import client, ok


def test_flush_ready_takes_only_that_tubes_ready_jobs(server: BeanstalkdServer) -> None:
    with client(server) as c, client(server) as holder:
        ready = [c.put({"n": i}, tube="bulk", priority=i).uid for i in range(2500)]
        c.queue.use("bulk")
        raw = [c.queue.put(b"not an envelope {"), c.queue.put(b'{"body": 1, "beanstalkm": "bad"}')]
        delayed = c.put({"d": 1}, tube="bulk", delay=300).uid
        buried = c.put({"b": 1}, tube="bulk").uid
        holder.queue.reserve_job(buried)
        holder.queue.bury(buried, 5)
        held = c.put({"h": 1}, tube="bulk").uid
        holder.queue.reserve_job(held)
        others = [c.put({"o": i}, tube="other").uid for i in range(3)] + [c.put({"o": 9}, tube="default").uid]
        flushed = ok("--json", "flush", "bulk", "--ready", "--yes", servers=[server]).json()
        assert flushed["deleted"] == len(ready) + len(raw)
        for job_id in [*ready, *raw]:
            assert c.queue.peek(job_id) is None
        assert [c.queue.stats_job(i).state for i in (delayed, buried, held)] == ["delayed", "buried", "reserved"]
        assert [c.queue.stats_job(i).state for i in others] == ["ready"] * 4, "another tube's jobs stay"
        everything = ok("--json", "flush", "bulk", "--yes", servers=[server]).json()
        assert everything["deleted"] == 2 and everything["servers"][0]["skipped"] == 0
        stats = c.queue.stats_tube("bulk")
        assert (stats.current_jobs_reserved, stats.current_jobs_ready + stats.current_jobs_delayed) == (1, 0)


def test_flush_ready_of_a_paused_tube_and_of_default(server: BeanstalkdServer) -> None:
    with client(server) as c:
        paused = [c.put({"n": i}, tube="paused").uid for i in range(5)]
        c.queue.pause_tube("paused", 600)
        default = [c.put({"n": i}, tube="default").uid for i in range(5)]
        kept = c.put({"k": 1}, tube="kept").uid
        assert ok("--json", "flush", "paused", "--ready", "--yes", servers=[server]).json()["deleted"] == 5
        assert ok("--json", "flush", "default", "--ready", "--yes", servers=[server]).json()["deleted"] == 5
        assert all(c.queue.peek(i) is None for i in [*paused, *default])
        assert c.queue.stats_job(kept).state == "ready"
