"""``peek TUBE --ready|--delayed|--buried --json`` with several servers (docs/cli.md, "Servers and job
ids"): one JSON document, as ``--json`` promises for every command but ``ls`` and ``export``. Real
servers, the real command as a subprocess."""

from __future__ import annotations

from beanstalkm.testing import ServerFactory

from ._support import client, ok, run, url


def test_peek_of_a_tube_on_several_servers_is_one_json_document(server_factory: ServerFactory) -> None:
    """Failed before the fix: one JSON line per server that had a job (NDJSON), so ``json.loads`` of the
    output failed ("Extra data"). One server keeps its one record (checked too)."""
    a, b, c = server_factory(), server_factory(), server_factory()
    for server, n in ((a, 1), (b, 2)):  # c has no job in the tube
        with client(server) as made:
            made.put({"n": n}, tube="t", priority=10 + n)
    peeked = ok("--json", "peek", "t", "--ready", servers=[a, b, c]).json()
    assert (peeked["tube"], peeked["state"]) == ("t", "ready")
    assert [(j["server"], j["ref"], j["body"], j["priority"]) for j in peeked["jobs"]] == [
        (url(a), "1:1", {"n": 1}, 11),
        (url(b), "2:1", {"n": 2}, 12),
    ]
    one = ok("--json", "peek", "t", "--ready", servers=[a]).json()
    assert (one["ref"], one["body"]) == ("1", {"n": 1})
    b.stop()
    partial = run("--json", "peek", "t", "--ready", servers=[a, b])
    assert partial.code == 1 and url(b) in partial.err  # a partial result, still one document
    assert [j["ref"] for j in partial.json()["jobs"]] == ["1:1"]
    text = ok("peek", "t", "--ready", servers=[a, c])
    assert 'body: {"n": 1}' in text.out
