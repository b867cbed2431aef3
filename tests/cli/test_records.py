"""The worker's failure-record tubes (``TUBE.failed.ID``) in the CLI: grouped under their tube in ``tubes``
and ``top`` (raw with ``--all``), still usable by name, and ``flush --records``; records made by a real
``Worker`` burying real jobs, every command a real subprocess."""

from __future__ import annotations

import json

from beanstalkm.testing import BeanstalkdServer

from ._support import bury_with_records as _bury
from ._support import client, ok, run


def test_tubes_and_top_group_the_records_under_their_tube(server: BeanstalkdServer) -> None:
    ids = _bury(server, "mail", 3)
    records = {f"mail.failed.{i}" for i in ids}

    grouped = ok("--json", "tubes", servers=[server]).json()
    by_name = {row["tube"]: row for row in grouped["tubes"]}
    assert set(by_name) == {"default", "mail", "other"}, "no record tube is a row of its own"
    assert by_name["mail"]["failed"] == 3 and by_name["other"]["failed"] == 0
    assert by_name["mail"]["stats"]["current-jobs-buried"] == 3
    assert grouped["total"]["failed"] == 3
    assert grouped["total"]["current-jobs-ready"] == 1, "the records' own ready jobs are counted as failed, not ready"
    text = ok("tubes", servers=[server]).out
    assert "failed" in text.splitlines()[0] and ".failed." not in text

    raw = ok("--json", "tubes", "--all", servers=[server]).json()
    assert records <= {row["tube"] for row in raw["tubes"]}
    assert all(row["failed"] is None for row in raw["tubes"]) and "failed" not in raw["total"]
    assert raw["total"]["current-jobs-ready"] == 4
    assert ".failed." in ok("tubes", "--all", servers=[server]).out

    top = ok("--json", "top", "--once", "--interval", "0.2", servers=[server]).json()
    rows = {row["tube"]: row for row in top["tubes"]}
    assert set(rows) == {"default", "mail", "other"} and rows["mail"]["failed"] == 3
    assert top["total"]["failed"] == 3
    frame = ok("top", "--once", "--interval", "0.2", servers=[server]).out
    assert "failed" in frame and ".failed." not in frame
    top_all = ok("--json", "top", "--once", "--all", "--interval", "0.2", servers=[server]).json()
    assert records <= {row["tube"] for row in top_all["tubes"]}
    by_failed = ok("--json", "top", "--once", "--sort", "failed", "--interval", "0.2", servers=[server]).json()
    assert by_failed["tubes"][0]["tube"] == "mail"


def test_a_record_tube_named_explicitly_still_works(server: BeanstalkdServer) -> None:
    ids = _bury(server, "mail", 2)
    name = f"mail.failed.{ids[0]}"
    (listed,) = ok("--json", "ls", name, servers=[server]).ndjson()
    assert listed["tube"] == name and listed["state"] == "ready"
    peeked = ok("--json", "peek", name, "--ready", servers=[server]).json()
    record = peeked["body"]
    assert record["job_id"] == ids[0] and record["tube"] == "mail" and record["message"] == "cannot send 0"
    (exported,) = ok("export", name, servers=[server]).ndjson()
    assert json.loads(exported["data"])["body"]["job_id"] == ids[0]
    assert ok("--json", "stats-tube", name, servers=[server]).json()["servers"][0]["stats"]["current-jobs-ready"] == 1
    flushed = ok("--json", "flush", name, "--yes", servers=[server]).json()
    assert flushed["deleted"] == 1
    with client(server) as c:
        assert name not in c.queue.list_tubes() and c.queue.stats_job(ids[0]).state == "buried"


def test_flush_keeps_the_records_unless_asked_and_never_those_of_jobs_still_there(server: BeanstalkdServer) -> None:
    ids = _bury(server, "mail", 3)
    ready = ok("--json", "flush", "mail", "--ready", "--records", "--yes", servers=[server]).json()
    assert (ready["deleted"], ready["records_deleted"]) == (0, 0), "a record of a buried job that stays is kept"

    flushed = run("flush", "mail", "--buried", "--yes", servers=[server])
    assert flushed.code == 0 and "kept 3 failure record(s)" in flushed.out and "--records" in flushed.out
    as_json = ok("--json", "flush", "mail", "--buried", "--yes", servers=[server]).json()
    assert (as_json["deleted"], as_json["records_kept"], as_json["records_deleted"]) == (0, 3, 0)
    with client(server) as c:
        assert {f"mail.failed.{i}" for i in ids} <= set(c.queue.list_tubes())

    gone = {row["tube"]: row for row in ok("--json", "tubes", servers=[server]).json()["tubes"]}
    assert gone["mail"]["failed"] == 3 and gone["mail"]["stats"] == {"name": "mail"}, "a gone tube keeps its count"
    assert ok("--json", "top", "--once", "--interval", "0.2", servers=[server]).json()["total"]["failed"] == 3

    purged = ok("--json", "flush", "mail", "--records", "--yes", servers=[server]).json()
    assert purged["records_deleted"] == 3
    with client(server) as c:
        assert not [t for t in c.queue.list_tubes() if ".failed." in t]
        assert c.queue.stats_tube("other").current_jobs_ready == 1, "another tube's jobs are untouched"
    assert ok("flush", "mail", "--records", "--yes", servers=[server]).out.strip() == (
        "deleted 0 job(s) from tube 'mail' and 0 failure record(s)"
    )
