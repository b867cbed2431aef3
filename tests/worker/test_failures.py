"""Failures through the CLI, both flavours: a poison job that kills its worker every time is buried
after its budget with a record saying so; a raising job is retried with the configured backoff (the
delays read from ``stats-job``), then buried with its traceback; a kick grants a fresh budget."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from beanstalkm import Client
from beanstalkm.testing import BeanstalkdServer

from ._support import FLAVOUR_IDS, FLAVOURS, WAIT, Workers, failed_cli, read_runlog, url


@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
def test_a_poison_job_is_buried_after_its_budget(
    server: BeanstalkdServer, workers: Workers, tmp_path: Path, flavour: str
) -> None:
    runlog = tmp_path / "run.log"
    with Client(server.host, server.port) as client:
        job = client.put({"poison": True}, tube="poison", priority=77).uid
        codes = []
        for _ in range(6):  # retries=2: three attempts die; the fourth reservation buries it unrun
            proc = workers.start(f"worker._apps:poison{flavour}", ["-s", url(server), "--burst"], runlog)
            codes.append(proc.wait(WAIT))
            if codes[-1] == 0:
                break
        assert codes == [17, 17, 17, 0], workers.logs()
        stats = client.queue.stats_job(job)
        assert (stats.state, stats.pri, stats.reserves) == ("buried", 77, 4)
    assert len(read_runlog(runlog).starts[job]) == 3

    shown = failed_cli("show", "poison", str(job), "-s", url(server), "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["reason"] == "crashed"
    assert record["attempts"] == 4 and record["state"] == "buried" and record["priority"] == 77
    assert "reserved 4 times (its budget is 3 attempts) without a handler finishing" in record["message"]


def _delays_until_buried(client: Client, job: int, releases_before: int) -> list[int]:
    """The delay of each release after ``releases_before``, read from stats-job, until the job is buried."""
    delays: list[int] = []
    seen = releases_before
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        stats = client.queue.stats_job(job)
        if stats.releases > seen:
            assert stats.releases == seen + 1, "a release was missed by the polling"
            delays.append(stats.delay)
            seen = stats.releases
        if stats.state == "buried":
            return delays
        time.sleep(0.01)
    raise AssertionError("the job was never buried")


@pytest.mark.parametrize("flavour", FLAVOURS, ids=FLAVOUR_IDS)
def test_a_raising_job_is_retried_with_its_backoff_then_buried_with_its_traceback(
    server: BeanstalkdServer, workers: Workers, tmp_path: Path, flavour: str
) -> None:
    with Client(server.host, server.port) as client:
        job = client.put({"n": 1}, tube="raising", priority=123).uid
        proc = workers.start(f"worker._apps:raising{flavour}", ["-s", url(server)], tmp_path / "run.log")
        assert _delays_until_buried(client, job, 0) == [1, 2, 3]  # backoff=[1, 2, 3], retries=3
        stats = client.queue.stats_job(job)
        assert (stats.pri, stats.reserves, stats.releases, stats.buries) == (123, 4, 3, 1)

        listed = failed_cli("ls", "raising", "-s", url(server), "--json")
        assert listed.returncode == 0, listed.stderr
        [entry] = json.loads(listed.stdout)
        assert (entry["job_id"], entry["state"], entry["reason"], entry["attempts"]) == (job, "buried", "raised", 4)
        shown = failed_cli("show", "raising", str(job), "-s", url(server))
        assert shown.returncode == 0, shown.stderr
        assert "Traceback (most recent call last)" in shown.stdout
        assert f"ValueError: boom on job {job}" in shown.stdout

        if flavour == "":  # a kick (failed retry) grants a fresh budget: four more attempts, then buried again
            retried = failed_cli("retry", "raising", str(job), "-s", url(server), "--json")
            assert retried.returncode == 0, retried.stderr
            assert json.loads(retried.stdout) == {"kicked": [job]}
            assert _delays_until_buried(client, job, 3) == [1, 2, 3]
            stats = client.queue.stats_job(job)
            assert (stats.pri, stats.reserves, stats.kicks, stats.buries) == (123, 8, 1, 2)
            [entry] = json.loads(failed_cli("ls", "raising", "-s", url(server), "--json").stdout)
            assert (entry["attempts"], entry["reserves"], entry["kicks"]) == (4, 8, 1)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0, workers.logs()

        purged = failed_cli("purge", "raising", "--all", "-s", url(server))
        assert purged.returncode == 0 and f"purged 1 job(s): {job}" in purged.stdout
        assert client.queue.peek(job) is None
        assert json.loads(failed_cli("ls", "raising", "-s", url(server), "--json").stdout) == []


def test_failed_cli_usage_and_unreachable(server: BeanstalkdServer) -> None:
    assert failed_cli("retry", "raising", "-s", url(server)).returncode == 2  # neither ids nor --all
    assert failed_cli("ls", "-s", url(server)).returncode == 2
    assert failed_cli("ls", "t", "-s", "beanstalk://127.0.0.1:notaport").returncode == 2
    missing = failed_cli("show", "t", "12345", "-s", url(server))
    assert missing.returncode == 1 and "has no failure record" in missing.stderr
    port = server.port
    server.stop()
    assert failed_cli("ls", "t", "-s", f"beanstalk://127.0.0.1:{port}").returncode == 3
