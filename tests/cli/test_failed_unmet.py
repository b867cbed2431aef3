"""``failed retry|purge TUBE ID ...`` with ids that cannot be acted on (docs/worker.md, "Failure
records"): each such id is named on stderr with why, and the exit code is 1, as for ``failed show`` of
a job with no record and ``delete`` of a missing id. Records made by a real ``Worker``; every command a
real subprocess."""

from __future__ import annotations

from beanstalkm.testing import BeanstalkdServer

from ._support import bury_with_records, client, run


def test_retry_and_purge_of_ids_not_acted_on_exit_1_naming_each(server: BeanstalkdServer) -> None:
    """Failed before the fix: ``{"kicked": []}`` (or ``purged``) with exit 0 and nothing on stderr, so a
    script retrying a job it named learnt nothing of the job not being kicked."""
    gone, kicked, buried = bury_with_records(server, "mail", 3)
    with client(server) as c:
        c.queue.delete(gone)  # its record is left behind
    retried = run("--json", "failed", "retry", "mail", str(kicked), str(gone), "999", servers=[server])
    assert retried.code == 1, retried.err
    assert retried.json() == {"kicked": [kicked]}  # what was done is still printed
    assert retried.err.strip().splitlines() == [
        f"beanstalkm failed retry: job {gone} of mail is gone (deleted): not kicked; failed purge removes its record",
        "beanstalkm failed retry: job 999 of mail has no failure record",
    ]
    again = run("failed", "retry", "mail", str(kicked), servers=[server])
    assert again.code == 1 and again.out.strip() == "kicked 0 job(s)"
    assert f"job {kicked} of mail is ready, not buried (retried already?): not kicked" in again.err
    purged = run("--json", "failed", "purge", "mail", str(kicked), str(buried), servers=[server])
    assert purged.code == 1 and purged.json() == {"purged": [buried]}
    assert purged.err.strip() == (
        f"beanstalkm failed purge: job {kicked} of mail is ready, not buried (retried and not failed again):"
        " left alone with its record"
    )
    whole = run("--json", "failed", "purge", "mail", "--all", servers=[server])  # --all names no id
    assert whole.code == 0 and whole.json() == {"purged": [gone]} and whole.err == ""
    with client(server) as c:
        assert c.queue.stats_job(kicked).state == "ready"
