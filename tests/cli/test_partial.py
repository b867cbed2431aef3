"""A partial result (docs/cli.md, "Exit codes and errors"): with several servers, some down, the others'
output is printed, each server down is named on stderr, and the exit code is 1 (3 only if all are down)."""

from __future__ import annotations

from beanstalkm.testing import ServerFactory

from ._support import client, run, url


def test_some_servers_down_print_the_others_and_exit_1(server_factory: ServerFactory) -> None:
    up, dead = server_factory(), server_factory()
    with client(up) as c:
        c.put({"n": 1}, "partial")
    dead_url = url(dead)
    dead.stop()
    servers = ["-s", url(up), "-s", dead_url]
    tubes = run(*servers, "--json", "tubes")
    assert tubes.code == 1, tubes.err
    document = tubes.json()
    assert [t["stats"]["current-jobs-ready"] for t in document["tubes"] if t["tube"] == "partial"] == [1]
    assert {s["server"]: s["up"] for s in document["servers"]} == {url(up): True, dead_url: False}
    assert f"server {dead_url} unreachable" in tubes.err and "Traceback" not in tubes.err
    stats = run(*servers, "stats", "current-jobs-ready")
    assert stats.code == 1 and f"{url(up)}\t1" in stats.out and dead_url in stats.err
    top = run(*servers, "--json", "top", "--once", "--interval", "0.1")
    assert top.code == 1 and [s["up"] for s in top.json()["servers"]] == [True, False]
    assert run("-s", dead_url, "tubes").code == 3
