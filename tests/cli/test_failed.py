"""``beanstalkm failed ...``, the pass-through to ``beanstalkm.worker_main``: global and trailing ``--json``
and ``-s`` alike, exit codes and one-line errors as for every other command, a traceback only with
``--debug``. Records made by a real ``Worker``; every command a real subprocess."""

from __future__ import annotations

from beanstalkm.testing import BeanstalkdServer, ServerFactory

from ._support import Result, bury_with_records, client, ok, run, url


def _one_line(result: Result, code: int, says: str) -> None:
    assert result.code == code, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("beanstalkm") and says in lines[0], result.err
    assert "Traceback" not in result.err


def test_json_and_servers_before_or_after_the_subcommand(server: BeanstalkdServer) -> None:
    ids = bury_with_records(server, "mail", 2)
    before = ok("--json", "failed", "ls", "mail", servers=[server]).json()
    after = run("failed", "ls", "mail", "--json", "-s", url(server))
    assert after.code == 0 and after.json() == before
    assert [r["job_id"] for r in before] == ids and {r["state"] for r in before} == {"buried"}
    assert all(r["reason"] == "requested" and r["tube"] == "mail" for r in before)
    text = ok("failed", "ls", "mail", servers=[server]).out
    assert "REASON" in text and "cannot send 0" in text and "{" not in text

    shown = ok("--json", "failed", "show", "mail", str(ids[0]), servers=[server]).json()
    assert shown["job_id"] == ids[0] and "BuryJob" in shown["traceback"]
    kicked = ok("--json", "failed", "retry", "mail", str(ids[0]), servers=[server]).json()
    assert kicked == {"kicked": [ids[0]]}
    purged = ok("--json", "failed", "purge", "mail", "--all", servers=[server]).json()
    assert purged == {"purged": [ids[1]]}, "purge takes the buried job and its record, not the retried one"
    with client(server) as c:
        assert c.queue.stats_job(ids[0]).state == "ready"
        assert f"mail.failed.{ids[1]}" not in c.queue.list_tubes()


def test_bad_input_is_a_usage_error_on_one_line(server: BeanstalkdServer) -> None:
    bury_with_records(server, "mail", 1)
    _one_line(run("failed", "show", "mail", "0", servers=[server]), 2, "bad job id '0'")
    _one_line(run("failed", "show", "mail", "abc", servers=[server]), 2, "bad job id 'abc'")
    _one_line(run("failed", "ls", "bad name!", servers=[server]), 2, "invalid tube 'bad name!'")
    _one_line(run("failed", "retry", "mail", servers=[server]), 2, "--all")
    _one_line(run("failed", "frobnicate", "mail", servers=[server]), 2, "invalid choice")
    _one_line(run("failed", "show", "mail", "999", servers=[server]), 1, "job 999 of mail has no failure record")
    debug = run("--debug", "failed", "show", "mail", "0", servers=[server])
    assert (
        debug.code == 2
        and "Traceback" in debug.err
        and debug.err.strip().endswith("bad job id '0': job ids are whole numbers from 1 to 2**64-1")
    )


def test_several_servers_and_unreachable(server_factory: ServerFactory) -> None:
    one, two = server_factory(), server_factory()
    _one_line(run("failed", "ls", "mail", servers=[one, two]), 2, "name one server with -s (given 2")
    port = two.port
    two.stop()
    down = run("failed", "ls", "mail", "-s", f"beanstalk://127.0.0.1:{port}")
    _one_line(down, 3, "no server reachable")
    assert f"127.0.0.1:{port}" in down.err
    _one_line(run("-s", f"beanstalk://127.0.0.1:{port}", "--json", "failed", "ls", "mail"), 3, "no server reachable")
