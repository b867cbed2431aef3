"""``put`` of several stdin lines where the server refuses one (a job over its ``max-job-size``): the
jobs that were stored are printed (their ids, so a re-run does not have to guess and duplicate them),
the refused ones are counted and the first named by its line, and the exit code is 1. A real
beanstalkd with ``-z 1000``, the real command as a subprocess, for the envelope and for ``--raw``."""

from __future__ import annotations

import json

import pytest

from beanstalkm.testing import ServerFactory

from ._support import client, run

LINES = '{"n":1}\n{"n":2,"pad":"' + "x" * 2000 + '"}\n{"n":3}\n'


@pytest.mark.parametrize("raw", [False, True], ids=["envelope", "raw"])
def test_put_prints_the_stored_ids_and_counts_the_refused(server_factory: ServerFactory, raw: bool) -> None:
    server = server_factory(max_job_size=1000)
    extra = ["--raw"] if raw else []
    result = run("--json", "put", "t", *extra, servers=[server], stdin=LINES)
    assert result.code == 1, result.err
    assert result.err.count("\n") == 1, result.err
    assert "1 of 3 job(s) not put (2 stored, their ids printed); first: stdin line 2:" in result.err, result.err
    assert "JOB_TOO_BIG" in result.err, result.err
    document = result.json()
    assert document["failed"] == 1
    ids = [job["id"] for job in document["jobs"]]
    with client(server) as c:
        assert c.queue.stats_tube("t").current_jobs_ready == 2 == len(ids)
        bodies = [c.queue.peek(job_id) for job_id in ids]
    got = [json.loads(m.raw or b"") if raw else m.body for m in bodies if m is not None]
    assert [b["n"] for b in got] == [1, 3]  # each id printed is the job of its line
    text = run("put", "t", *extra, servers=[server], stdin=LINES)
    assert text.code == 1 and len(text.out.split()) == 2, (text.out, text.err)  # the two refs, one a line
