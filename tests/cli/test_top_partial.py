"""``top --once`` with a server down (docs/cli.md, "Exit codes and errors"): the frame of the others, exit
1 (a partial result), and one line on stderr naming the server that is missing, as every other command
says it. Real servers, the real command as a subprocess."""

from __future__ import annotations

from beanstalkm.testing import ServerFactory

from ._support import run, url


def test_top_once_with_a_server_down_names_it_on_stderr(server_factory: ServerFactory) -> None:
    """Failed before the fix: exit 1 with nothing on stderr, so a monitoring script saw a failure it could
    not explain (the JSON's ``error`` field aside)."""
    a, b = server_factory(), server_factory()
    b.stop()
    for args in (["--json", "top", "--once", "--interval", "0.1"], ["top", "--once", "--interval", "0.1"]):
        down = run(*args, servers=[a, b])
        assert down.code == 1, down.err
        lines = down.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"beanstalkm: server {url(b)} unreachable: "), down.err
        assert url(a) in down.out
