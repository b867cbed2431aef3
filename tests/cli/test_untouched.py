"""Inspection never reserves: ``ls``, ``peek``, ``stats*``, ``tubes``, ``top --once`` and a plain ``export``
leave every job's ``reserves``, ``releases``, state (and the other counters) as they were."""

from __future__ import annotations

from beanstalkm.testing import BeanstalkdServer

from ._support import Mixed, client, counters, ok


def test_inspection_leaves_every_job_as_it_was(server: BeanstalkdServer, mixed: Mixed) -> None:
    with client(server) as c:
        before = counters(c, mixed.all)
        cmd_reserve = c.queue.stats().cmd_reserve
    assert [before[i]["state"] for i in mixed.all] == ["ready", "ready", "delayed", "buried", "reserved"]
    inspections = [
        ["ls", mixed.tube],
        ["--json", "ls", mixed.tube, "--body", "alpha"],
        ["--json", "ls", mixed.tube, "--state", "reserved"],
        ["peek", mixed.tube, "--ready"],
        ["--json", "peek", mixed.tube, "--delayed"],
        ["peek", mixed.tube, "--buried"],
        *[["--json", "peek", str(i)] for i in mixed.all],
        *[["stats-job", str(i)] for i in mixed.all],
        ["stats"],
        ["--json", "stats-tube", mixed.tube],
        ["tubes"],
        ["--json", "top", "--once", "--interval", "0.2"],
        ["top", "--once", "--interval", "0.2"],
        ["export", mixed.tube],
        ["export", mixed.tube, "--state", "reserved"],
    ]
    outputs = [ok(*args, servers=[server]) for args in inspections]
    assert len(outputs[1].ndjson()) == 1 and len(outputs[-2].ndjson()) == 4
    with client(server) as c:
        after = counters(c, mixed.all)
        assert c.queue.stats().cmd_reserve == cmd_reserve, "an inspection sent a reserve"
    assert after == before
    # the reserved job is still held by its worker's connection: only it can release it
    mixed.holder.queue.release(mixed.reserved, 3, 0)
