"""Running the ``beanstalkm`` command as a real subprocess, and reading jobs back for comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beanstalkm import BuryJob, Client, JobStats, Message, Worker
from beanstalkm.testing import BeanstalkdServer

SRC = str(Path(__file__).resolve().parents[2] / "src")
TIMEOUT = 60


def url(server: BeanstalkdServer) -> str:
    return f"beanstalk://{server.host}:{server.port}"


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("BEANSTALKD_URL", None)
    env.update(extra or {})
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.out.strip(), f"no output; stderr: {self.err}"
        return json.loads(self.out)

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def run(
    *args: str,
    servers: list[BeanstalkdServer] | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> Result:
    """``python -m beanstalkm -s URL ... ARGS`` (or ``command``), its exit code and output."""
    prefix: list[str] = []
    for server in servers or []:
        prefix += ["-s", url(server)]
    proc = subprocess.run(
        [*(command or [sys.executable, "-m", "beanstalkm"]), *prefix, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=cli_env(env),
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def ok(*args: str, servers: list[BeanstalkdServer], stdin: str | None = None) -> Result:
    result = run(*args, servers=servers, stdin=stdin)
    assert result.code == 0, f"{args}: exit {result.code}: {result.err}"
    return result


def client(server: BeanstalkdServer) -> Client:
    return Client(server.host, server.port, timeout=10, validate=False)


COUNTERS = ("state", "reserves", "releases", "timeouts", "buries", "kicks", "pri", "ttr", "tube")


def counters(c: Client, ids: list[int]) -> dict[int, dict[str, object]]:
    """The fields an inspection must not change, for each job."""
    out: dict[int, dict[str, object]] = {}
    for job_id in ids:
        stats: JobStats = c.queue.stats_job(job_id)
        out[job_id] = {key: stats[key] for key in COUNTERS}
    return out


@dataclass
class Mixed:
    """A tube with two ready jobs, a delayed one, a buried one, and one reserved by ``holder``."""

    tube: str
    ready: list[int]
    delayed: int
    buried: int
    reserved: int
    holder: Client

    @property
    def all(self) -> list[int]:
        return [*self.ready, self.delayed, self.buried, self.reserved]


def populate(server: BeanstalkdServer, tube: str = "mixed") -> Iterator[Mixed]:
    c = client(server)
    holder = client(server)
    try:
        ready = [
            c.put({"n": 1, "text": "alpha"}, tube=tube, priority=5, ttr=30).uid,
            c.put({"n": 2, "text": "beta"}, tube=tube, priority=2000, ttr=60).uid,
        ]
        delayed = c.put({"n": 3}, tube=tube, priority=9, delay=300, ttr=45).uid
        buried = c.put({"n": 4}, tube=tube, priority=77, ttr=50).uid
        holder.queue.reserve_job(buried)
        holder.queue.bury(buried, 77)
        reserved = c.put({"n": 5}, tube=tube, priority=3, ttr=600).uid
        holder.queue.reserve_job(reserved)
        yield Mixed(tube, ready, delayed, buried, reserved, holder)
    finally:
        holder.close()
        c.close()


def bury_with_records(server: BeanstalkdServer, tube: str, n: int) -> list[int]:
    """Put ``n`` jobs into ``tube`` and let a real worker (one burst) bury each with a failure record."""
    with client(server) as c:
        ids = [c.put({"n": i}, tube=tube, priority=10 + i).uid for i in range(n)]
        c.put({"keep": True}, tube="other")
    worker = Worker(host=server.host, port=server.port)

    @worker.handler(tube)
    def fail(message: Message) -> None:
        raise BuryJob(f"cannot send {message.body['n']}")

    worker.run(burst=True)
    with client(server) as c:
        assert [c.queue.stats_job(i).state for i in ids] == ["buried"] * n
        assert sorted(t for t in c.queue.list_tubes() if ".failed." in t) == sorted(f"{tube}.failed.{i}" for i in ids)
    return ids
