"""``delete ID...`` with a job named twice (docs/cli.md, "Commands"): deleted once, reported deleted. A
real server, the real command as a subprocess."""

from __future__ import annotations

from beanstalkm.testing import ServerFactory

from ._support import client, run, url


def test_a_job_named_twice_is_deleted_and_reported_deleted(server_factory: ServerFactory) -> None:
    """Failed before the fix: the second delete of the id got NOT_FOUND, and the report went by id, so
    the job that was deleted was listed twice as ``not_found`` and the exit code was 1."""
    a, b = server_factory(), server_factory()
    with client(a) as made:
        first, second = made.put({"n": 0}, tube="t").uid, made.put({"n": 1}, tube="t").uid
    done = run("--json", "delete", f"1:{first}", f"{url(a)}#{first}", f"1:{second}", servers=[a, b])
    assert done.code == 0, done.err
    assert done.json() == {"deleted": [f"1:{first}", f"1:{second}"], "not_found": []}
    with client(a) as made:
        assert made.queue.stats().current_jobs_ready == 0
    again = run("--json", "delete", f"1:{first}", f"1:{first}", servers=[a, b])  # gone now: said once
    assert again.code == 1 and again.json() == {"deleted": [], "not_found": [f"1:{first}"]}
