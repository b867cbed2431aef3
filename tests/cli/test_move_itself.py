"""``move SRC SRC`` onto the same server is refused as a usage error, whether or not ``--to`` names that
server (docs/cli.md, "Commands"). A real server, the real command as a subprocess."""

from __future__ import annotations

from beanstalkm.testing import BeanstalkdServer

from ._support import client, run, url


def test_move_a_tube_to_itself_with_to_naming_the_same_server_is_refused(server: BeanstalkdServer) -> None:
    """Failed before the fix: with ``--to`` the check was skipped, so every job was copied into the tube
    it was in and the original deleted ("moved 3 job(s)"): each got a new id, its counters lost."""
    with client(server) as made:
        ids = [made.put({"n": n}, tube="t").uid for n in range(3)]
        for args in (["move", "t", "t"], ["move", "t", "t", "--to", url(server)]):
            refused = run(*args, servers=[server])
            assert refused.code == 2 and "to itself" in refused.err, (args, refused.err)
        assert made.queue.stats().total_jobs == 3  # nothing was copied
        assert [made.queue.stats_job(i).state for i in ids] == ["ready"] * 3
