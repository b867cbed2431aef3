"""``import`` of a file where the server refuses some lines (a job over its ``max-job-size``): the jobs
imported are counted, the refused ones named by their line in the file (so a re-run can take those alone
instead of putting the others twice), exit 1. A real beanstalkd with ``-z 500``, the real command."""

from __future__ import annotations

import json
from pathlib import Path

from beanstalkm.testing import ServerFactory

from ._support import client, run


def test_import_names_the_lines_it_could_not_import(server_factory: ServerFactory, tmp_path: Path) -> None:
    """Failed before the fix: ``{"imported": 2, "failed": 2}`` and ``first: tube 't' on ...: JOB_TOO_BIG``,
    with no word of which line it was."""
    server = server_factory(max_job_size=500)
    job = {"priority": 5, "ttr": 30, "delay": 0, "state": "ready", "tube": "t"}
    lines = [
        {**job, "data": "a"},
        None,  # a blank line: the numbers are the file's own
        {**job, "data": "b" * 900},
        {**job, "data": "c", "state": "buried"},
        {**job, "data": "d" * 900, "state": "delayed", "delay": 40},
    ]
    path = tmp_path / "jobs.ndjson"
    path.write_text("".join("\n" if line is None else json.dumps(line) + "\n" for line in lines))
    done = run("--json", "import", str(path), servers=[server])
    assert done.code == 1, done.err
    document = done.json()
    assert (document["imported"], document["failed"], document["failed_lines"]) == (2, 2, [3, 5])
    assert done.err.strip().startswith(
        "beanstalkm: 2 job(s) not imported (line(s) 3, 5; the others were); first: line 3:"
    )
    assert "JOB_TOO_BIG" in done.err
    with client(server) as made:
        stats = made.queue.stats_tube("t")
        assert (stats.current_jobs_ready, stats.current_jobs_buried, stats.total_jobs) == (1, 1, 2)
