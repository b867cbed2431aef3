"""beanstalkm benchmarks: beanstalkm against greenstalk and a raw-socket loop, on private beanstalkd servers.

Usage::

    python benchmarks/run.py             # full run (make bench)
    python benchmarks/run.py --quick     # a short run
    python benchmarks/run.py --check     # exit 1 if a target in TARGETS (or a memory target) is missed

Every case is measured for three implementations in the same run, rounds
interleaved: in each round every implementation of every case runs once, the
order of the implementations rotating from round to round, each on a fresh
tube that is drained afterwards. The figure reported is the median ops/s over
the rounds; ratios are medians divided by medians. Validation is on:
beanstalkm clients are created with ``validate=True`` and jsonschema must be
installed (a preflight check makes sure an invalid envelope is refused).

``raw`` is a minimal ``sendall``/``recv`` loop with precomputed commands (no
validation, no decoding beyond the framing); in the batch cases it is the raw
*pipelined* loop: N commands in one ``sendall``, then N replies read.

By default this process and the servers are pinned to one CPU (``--pin same``):
each round trip then costs the server's and the client's CPU time and no
cross-CPU wake-up, which makes the figures stable and the ratios a measure of
client overhead. ``--pin split`` (two CPUs) adds a wake-up latency to every
round trip, as a network would, and is much noisier on small VMs.

Results (with machine information) are written to ``benchmarks/results/latest.json``.
The memory measurements (``benchmarks/memory.py``) run last, in subprocesses.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import beanstalkm
from beanstalkm.testing import BeanstalkdServer, find_beanstalkd

try:
    import greenstalk  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    sys.exit("benchmarks/run.py needs greenstalk (the `bench` extra): run `make bench`, or pip install -e '.[bench]'")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"

Address = tuple[str, int]
Timed = Callable[[], None]
Prepared = tuple[Timed, Callable[[], None]]  # the timed loop, and what closes its connection
Prepare = Callable[["Env", str, int], Prepared]  # (env, fresh tube, n) -> prepared run

IMPLS = ("beanstalkm", "greenstalk", "raw")
PRIORITY = beanstalkm.DEFAULT_PRIORITY
TTR = beanstalkm.DEFAULT_TTR
BATCH = 100  # messages per put_many / reserve_many call (and per raw pipelined write)
BIG = 1024 * 1024  # the large body: 1 MiB
BODY: dict[str, Any] = {
    "task": "send-email",
    "to": "user@example.org",
    "subject": "Your weekly report",
    "attempt": 1,
    "tags": ["report", "weekly"],
}


@dataclass(frozen=True)
class Target:
    """A ratio a case must reach: median ops/s of beanstalkm / median ops/s of ``versus``."""

    case: str
    versus: str
    minimum: float
    text: str


TARGETS: tuple[Target, ...] = (
    Target("put", "greenstalk", 0.9, "Client.put >= 0.9x greenstalk put"),
    Target("reserve_drop", "greenstalk", 0.9, "Client.reserve(drop=True) >= 0.9x greenstalk reserve+delete"),
    Target("queue_put", "greenstalk", 0.95, "raw queue.put >= 0.95x greenstalk put"),
    Target("put_many", "greenstalk", 10.0, "put_many >= 10x greenstalk sequential put"),
    Target("put_many", "raw", 0.7, "put_many >= 0.7x the raw pipelined loop"),
    Target("reserve_many", "greenstalk", 10.0, "reserve_many(drop=True) >= 10x greenstalk reserve+delete"),
)


@dataclass(frozen=True)
class Env:
    """What every case needs: the servers, and the bytes beanstalkm puts for BODY and the big body."""

    addr: Address
    big_addr: Address
    prefix: str
    envelope: bytes
    big_body: str
    big_envelope: bytes


# -- the raw-socket side ------------------------------------------------------------------------------


def put_command(body: bytes) -> bytes:
    return b"put %d 0 %d %d\r\n%b\r\n" % (PRIORITY, TTR, len(body), body)


class Raw:
    """A minimal raw connection (sendall/recv) for setup, draining and the raw loops."""

    def __init__(self, addr: Address) -> None:
        self.sock = socket.create_connection(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def _fill(self, need: int) -> None:
        chunk = self.sock.recv(max(65536, need))
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        self.buf += chunk

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill(0)
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def body(self, size: int) -> bytes:
        while len(self.buf) < size + 2:
            self._fill(size + 2 - len(self.buf))
        data = bytes(self.buf[:size])
        del self.buf[: size + 2]
        return data

    def command(self, data: bytes, expect: bytes) -> bytes:
        self.sock.sendall(data)
        line = self.line()
        if not line.startswith(expect):
            raise RuntimeError(f"{data[:40]!r}: unexpected reply {line!r}")
        return line

    def reserve_batch(self, count: int) -> list[bytes]:
        """Pipelined: ``count`` reserve-with-timeout 0 in one write; the ids of the jobs reserved."""
        self.sock.sendall(b"reserve-with-timeout 0\r\n" * count)
        ids: list[bytes] = []
        for _ in range(count):
            parts = self.line().split()
            if parts[0] == b"RESERVED":
                self.body(int(parts[2]))
                ids.append(parts[1])
            elif parts[0] != b"TIMED_OUT":
                raise RuntimeError(f"reserve: unexpected reply {parts!r}")
        return ids

    def delete_batch(self, ids: list[bytes]) -> None:
        """Pipelined: one write of ``delete`` commands, then every reply."""
        if not ids:
            return
        self.sock.sendall(b"".join([b"delete %b\r\n" % job_id for job_id in ids]))
        for _ in ids:
            line = self.line()
            if line != b"DELETED":
                raise RuntimeError(f"delete: unexpected reply {line!r}")


def raw_open(addr: Address, use: str | None = None, watch: str | None = None) -> Raw:
    raw = Raw(addr)
    if use is not None:
        raw.command(b"use %b\r\n" % use.encode(), b"USING")
    if watch is not None:
        raw.command(b"watch %b\r\n" % watch.encode(), b"WATCHING")
        raw.command(b"ignore default\r\n", b"WATCHING")
    return raw


def prefill(addr: Address, tube: str, payload: bytes, count: int) -> None:
    """Put ``count`` copies of ``payload`` into ``tube`` (pipelined, untimed)."""
    raw = raw_open(addr, use=tube)
    try:
        command = put_command(payload)
        done = 0
        while done < count:
            chunk = min(500, count - done)
            raw.sock.sendall(command * chunk)
            for _ in range(chunk):
                if not raw.line().startswith(b"INSERTED "):
                    raise RuntimeError("prefill: put failed")
            done += chunk
    finally:
        raw.close()


def drain(addr: Address, tube: str) -> int:
    """Delete every ready job of ``tube``; how many there were."""
    raw = raw_open(addr, watch=tube)
    total = 0
    try:
        while True:
            ids = raw.reserve_batch(500)
            raw.delete_batch(ids)
            total += len(ids)
            if len(ids) < 500:
                return total
    finally:
        raw.close()


def _recv_line(sock: socket.socket, expect: bytes) -> None:
    reply = sock.recv(256)
    while not reply.endswith(b"\r\n"):
        more = sock.recv(256)
        if not more:
            raise ConnectionError("beanstalkd closed the connection")
        reply += more
    if not reply.startswith(expect):
        raise RuntimeError(f"unexpected reply {reply!r}")


def _recv_job(sock: socket.socket) -> bytes:
    """Read one RESERVED reply (header and body); the job id."""
    data = sock.recv(65536)
    while (end := data.find(b"\r\n")) < 0:
        data += sock.recv(65536)
    parts = data[:end].split()
    if parts[0] != b"RESERVED":
        raise RuntimeError(f"reserve: unexpected reply {data[:end]!r}")
    need = end + 2 + int(parts[2]) + 2
    have = len(data)
    while have < need:  # the rest of the body: read and dropped
        chunk = sock.recv(need - have)
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        have += len(chunk)
    return parts[1]


def _recv_replies(sock: socket.socket, count: int, expect: bytes) -> None:
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("beanstalkd closed the connection")
        data += chunk
    if data.count(expect) != count:
        raise RuntimeError(f"expected {count} {expect!r} replies: {data[:80]!r}")


def raw_put(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, use=tube)
    sock, command = raw.sock, put_command(env.envelope)

    def timed() -> None:
        for _ in range(n):
            sock.sendall(command)
            _recv_line(sock, b"INSERTED ")

    return timed, raw.close


def raw_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, watch=tube)
    sock = raw.sock

    def timed() -> None:
        for _ in range(n):
            sock.sendall(b"reserve-with-timeout 0\r\n")
            job_id = _recv_job(sock)
            sock.sendall(b"delete %b\r\n" % job_id)
            _recv_line(sock, b"DELETED")

    return timed, raw.close


def raw_simple(command: bytes) -> Prepare:
    """A command answered ``OK <bytes>`` and a body (stats, list-tubes): the bytes read, not parsed."""

    def prepare(env: Env, tube: str, n: int) -> Prepared:
        raw = raw_open(env.addr)

        def timed() -> None:
            for _ in range(n):
                raw.sock.sendall(command)
                header = raw.line()
                raw.body(int(header[3:]))

        return timed, raw.close

    return prepare


def raw_big(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.big_addr, use=tube, watch=tube)
    sock, command = raw.sock, put_command(env.big_envelope)

    def timed() -> None:
        for _ in range(n):
            sock.sendall(command)
            _recv_line(sock, b"INSERTED ")
            sock.sendall(b"reserve-with-timeout 0\r\n")
            job_id = _recv_job(sock)
            sock.sendall(b"delete %b\r\n" % job_id)
            _recv_line(sock, b"DELETED")

    return timed, raw.close


def raw_put_pipelined(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, use=tube)
    sock, command = raw.sock, put_command(env.envelope)

    def timed() -> None:
        for _ in range(n // BATCH):
            sock.sendall(command * BATCH)
            _recv_replies(sock, BATCH, b"INSERTED ")

    return timed, raw.close


def raw_reserve_delete_pipelined(env: Env, tube: str, n: int) -> Prepared:
    raw = raw_open(env.addr, watch=tube)

    def timed() -> None:
        for _ in range(n // BATCH):
            ids = raw.reserve_batch(BATCH)
            if len(ids) != BATCH:
                raise RuntimeError("raw pipelined reserve: tube ran dry")
            raw.delete_batch(ids)

    return timed, raw.close


# -- greenstalk ---------------------------------------------------------------------------------------


def gs_put(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, use=tube)
    text = env.envelope.decode()

    def timed() -> None:
        put = client.put
        for _ in range(n):
            put(text, PRIORITY, 0, TTR)

    return timed, client.close


def gs_reserve_delete(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr, watch=tube)

    def timed() -> None:
        reserve, delete = client.reserve, client.delete
        for _ in range(n):
            delete(reserve(0))

    return timed, client.close


def gs_stats(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr)

    def timed() -> None:
        for _ in range(n):
            client.stats()

    return timed, client.close


def gs_list_tubes(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.addr)

    def timed() -> None:
        for _ in range(n):
            client.tubes()

    return timed, client.close


def gs_big(env: Env, tube: str, n: int) -> Prepared:
    client = greenstalk.Client(env.big_addr, use=tube, watch=tube)
    text = env.big_envelope.decode()

    def timed() -> None:
        for _ in range(n):
            client.put(text, PRIORITY, 0, TTR)
            client.delete(client.reserve(0))

    return timed, client.close


# -- beanstalkm ---------------------------------------------------------------------------------------


def bsm_client(addr: Address, watch: str | None = None) -> beanstalkm.Client:
    client = beanstalkm.Client(addr[0], addr[1], validate=True)
    if watch is not None:
        client.watch(watch)
        client.ignore("default")
    return client


def bsm_put(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr)

    def timed() -> None:
        put = client.put
        for _ in range(n):
            put(BODY, tube)

    return timed, client.close


def bsm_queue_put(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)
    conn.queue.use(tube)
    data = env.envelope

    def timed() -> None:
        put = conn.queue.put
        for _ in range(n):
            put(data)

    return timed, conn.close


def bsm_reserve_drop(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def timed() -> None:
        reserve = client.reserve
        for _ in range(n):
            if reserve(0, drop=True) is None:
                raise RuntimeError("reserve: tube ran dry")

    return timed, client.close


def bsm_reserve_keep(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def timed() -> None:
        reserve = client.reserve
        for _ in range(n):
            message = reserve(0, drop=False)
            if message is None:
                raise RuntimeError("reserve: tube ran dry")
            message.delete()

    return timed, client.close


def bsm_stats(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)

    def timed() -> None:
        stats = conn.queue.stats
        for _ in range(n):
            stats()

    return timed, conn.close


def bsm_list_tubes(env: Env, tube: str, n: int) -> Prepared:
    conn = beanstalkm.Connection(env.addr[0], env.addr[1], validate=True)

    def timed() -> None:
        list_tubes = conn.queue.list_tubes
        for _ in range(n):
            list_tubes()

    return timed, conn.close


def bsm_big(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.big_addr, watch=tube)
    body = env.big_body

    def timed() -> None:
        for _ in range(n):
            client.put(body, tube)
            if client.reserve(0, drop=True) is None:
                raise RuntimeError("reserve: the 1 MiB job is missing")

    return timed, client.close


def bsm_put_many(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr)
    bodies = [BODY] * BATCH

    def timed() -> None:
        for _ in range(n // BATCH):
            client.put_many(bodies, tube)

    return timed, client.close


def bsm_reserve_many(env: Env, tube: str, n: int) -> Prepared:
    client = bsm_client(env.addr, watch=tube)

    def timed() -> None:
        for _ in range(n // BATCH):
            if len(client.reserve_many(BATCH, 0, drop=True)) != BATCH:
                raise RuntimeError("reserve_many: tube ran dry")

    return timed, client.close


# -- the cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    what: str
    prepare: Prepare


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    n: int  # operations per measurement, full run
    quick_n: int
    unit: str  # what one operation is
    impls: dict[str, Impl]
    prefill: bool = False  # the tube holds n envelopes before the timed loop
    leaves_jobs: bool = False  # the timed loop puts n jobs (drained and counted afterwards)
    big: bool = False  # runs on the server started with -z 2 MiB


CASES: tuple[Case, ...] = (
    Case(
        "put",
        "put with the envelope",
        5000,
        800,
        "msg",
        {
            "beanstalkm": Impl("Client.put(body, tube)", bsm_put),
            "greenstalk": Impl("put(<the same envelope JSON str>)", gs_put),
            "raw": Impl("sendall(put)+recv", raw_put),
        },
        leaves_jobs=True,
    ),
    Case(
        "queue_put",
        "raw put (queue.put)",
        5000,
        800,
        "msg",
        {
            "beanstalkm": Impl("conn.queue.put(envelope bytes)", bsm_queue_put),
            "greenstalk": Impl("put(envelope str)", gs_put),
            "raw": Impl("sendall(put)+recv", raw_put),
        },
        leaves_jobs=True,
    ),
    Case(
        "reserve_drop",
        "reserve(drop=True) cycle",
        5000,
        800,
        "msg",
        {
            "beanstalkm": Impl("Client.reserve(0, drop=True)", bsm_reserve_drop),
            "greenstalk": Impl("reserve(0) + delete(job)", gs_reserve_delete),
            "raw": Impl("reserve-with-timeout 0 + delete", raw_reserve_delete),
        },
        prefill=True,
    ),
    Case(
        "reserve_keep",
        "reserve(drop=False) + delete",
        5000,
        800,
        "msg",
        {
            "beanstalkm": Impl("Client.reserve(0, drop=False); message.delete()", bsm_reserve_keep),
            "greenstalk": Impl("reserve(0) + delete(job)", gs_reserve_delete),
            "raw": Impl("reserve-with-timeout 0 + delete", raw_reserve_delete),
        },
        prefill=True,
    ),
    Case(
        "stats",
        "stats() parsed",
        2000,
        300,
        "call",
        {
            "beanstalkm": Impl("conn.queue.stats() -> ServerStats", bsm_stats),
            "greenstalk": Impl("stats() -> dict", gs_stats),
            "raw": Impl("stats, bytes read unparsed", raw_simple(b"stats\r\n")),
        },
    ),
    Case(
        "list_tubes",
        "list_tubes",
        5000,
        800,
        "call",
        {
            "beanstalkm": Impl("conn.queue.list_tubes()", bsm_list_tubes),
            "greenstalk": Impl("tubes()", gs_list_tubes),
            "raw": Impl("list-tubes, bytes read unparsed", raw_simple(b"list-tubes\r\n")),
        },
    ),
    Case(
        "big",
        "1 MiB body put+reserve (-z 2 MiB)",
        60,
        12,
        "cycle",
        {
            "beanstalkm": Impl("Client.put(1 MiB str) + reserve(0, drop=True)", bsm_big),
            "greenstalk": Impl("put(envelope) + reserve(0) + delete", gs_big),
            "raw": Impl("put + reserve + delete", raw_big),
        },
        big=True,
    ),
    Case(
        "put_many",
        f"batch put ({BATCH} per call)",
        10000,
        2000,
        "msg",
        {
            "beanstalkm": Impl(f"Client.put_many({BATCH} bodies, tube)", bsm_put_many),
            "greenstalk": Impl("sequential put(envelope str)", gs_put),
            "raw": Impl(f"pipelined: {BATCH} puts in one sendall, {BATCH} replies", raw_put_pipelined),
        },
        leaves_jobs=True,
    ),
    Case(
        "reserve_many",
        f"batch reserve+delete ({BATCH} per call)",
        10000,
        2000,
        "msg",
        {
            "beanstalkm": Impl(f"Client.reserve_many({BATCH}, 0, drop=True)", bsm_reserve_many),
            "greenstalk": Impl("sequential reserve(0) + delete(job)", gs_reserve_delete),
            "raw": Impl(
                f"pipelined: {BATCH} reserves in one sendall, then {BATCH} deletes", raw_reserve_delete_pipelined
            ),
        },
        prefill=True,
    ),
)


# -- running ------------------------------------------------------------------------------------------


def measure(env: Env, case: Case, impl: str, n: int, tube: str) -> float:
    """One measurement: ops/s of ``impl`` for ``case`` on a fresh ``tube``, drained afterwards."""
    addr = env.big_addr if case.big else env.addr
    if case.prefill:
        prefill(addr, tube, env.envelope, n)
    timed, close = case.impls[impl].prepare(env, tube, n)
    gc.collect()
    try:
        start = time.perf_counter()
        timed()
        elapsed = time.perf_counter() - start
    finally:
        close()
    left = drain(addr, tube)
    expected = n if case.leaves_jobs else 0
    if left != expected:
        raise RuntimeError(f"{case.name}/{impl}: {left} jobs left in {tube}, expected {expected}")
    return n / elapsed


def run_rounds(env: Env, cases: tuple[Case, ...], rounds: int, quick: bool) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {c.name: {i: [] for i in IMPLS} for c in cases}
    # Warm-up (discarded): imports, first connections, server allocations.
    for case in cases:
        warm = max(1, case.quick_n // 4) if case.n % BATCH else max(BATCH, case.quick_n // 4 // BATCH * BATCH)
        for impl in IMPLS:
            measure(env, case, impl, warm, tube_name(env, case, impl, -1))
    for r in range(rounds):
        start = time.perf_counter()
        for case in cases:
            n = case.quick_n if quick else case.n
            order = IMPLS[r % len(IMPLS) :] + IMPLS[: r % len(IMPLS)]
            for impl in order:
                samples[case.name][impl].append(measure(env, case, impl, n, tube_name(env, case, impl, r)))
        print(f"  round {r + 1}/{rounds}: {time.perf_counter() - start:.1f} s", flush=True)
    return samples


def tube_name(env: Env, case: Case, impl: str, round_index: int) -> str:
    return f"{env.prefix}.{case.name}.{impl}.r{round_index + 1}"


def preflight(env: Env) -> None:
    """Make sure the comparison is of like with like, and that validation is on."""
    tube = f"{env.prefix}.preflight"
    with bsm_client(env.addr, watch=tube) as client:
        gs = greenstalk.Client(env.addr, use=tube, watch=tube)
        try:
            gs.put(env.envelope.decode(), PRIORITY, 0, TTR)
            message = client.reserve(5, drop=True)
            if message is None or message.body != BODY or not message.envelope:
                raise RuntimeError(f"beanstalkm did not read greenstalk's envelope back: {message!r}")
            client.put(BODY, tube)
            job = gs.reserve(5)
            gs.delete(job)
            if json.loads(job.body)["body"] != BODY:
                raise RuntimeError("greenstalk did not read beanstalkm's envelope back")
        finally:
            gs.close()
        prefill(env.addr, tube, b'{"@context":"message","body":1}', 1)
        try:
            client.reserve(5, drop=True)
        except beanstalkm.InvalidEnvelope as exc:
            exc.message.delete()
        else:
            raise RuntimeError("validation is off: an invalid envelope was accepted")


def make_env(addr: Address, big_addr: Address) -> Env:
    prefix = f"bench{os.getpid()}"
    big_body = "0123456789abcdef" * (BIG // 16)
    tube = f"{prefix}.envelope"
    with bsm_client(addr, watch=tube) as client:
        client.put(BODY, tube)
        small = client.reserve(5, drop=True)
    with bsm_client(big_addr, watch=tube) as client:
        client.put(big_body, tube)
        large = client.reserve(5, drop=True)
    if small is None or small.raw is None or large is None or large.raw is None:
        raise RuntimeError("could not read back the envelopes beanstalkm puts")
    return Env(addr, big_addr, prefix, small.raw, big_body, large.raw)


# -- reporting ----------------------------------------------------------------------------------------


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        out = subprocess.run([find_beanstalkd(), "-v"], capture_output=True, text=True, timeout=10)
        server = (out.stdout or out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        server = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "beanstalkd": server,
        "beanstalkm": beanstalkm.__version__,
        "greenstalk": version_of("greenstalk"),
        "jsonschema": version_of("jsonschema"),
        "commit": commit or None,
    }


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def summarize(samples: dict[str, dict[str, list[float]]], cases: tuple[Case, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        medians = {impl: statistics.median(samples[case.name][impl]) for impl in IMPLS}
        bsm = medians["beanstalkm"]
        out[case.name] = {
            "title": case.title,
            "unit": case.unit,
            "impls": {
                impl: {
                    "what": case.impls[impl].what,
                    "ops_per_s": medians[impl],
                    "rounds": samples[case.name][impl],
                    "spread": (max(samples[case.name][impl]) - min(samples[case.name][impl])) / medians[impl],
                }
                for impl in IMPLS
            },
            "ratio_vs_greenstalk": bsm / medians["greenstalk"],
            "ratio_vs_raw": bsm / medians["raw"],
            "greenstalk_vs_raw": medians["greenstalk"] / medians["raw"],
        }
    return out


def print_table(summary: dict[str, Any], cases: tuple[Case, ...]) -> None:
    head = f"{'case':<14}{'unit':>6}{'beanstalkm':>13}{'greenstalk':>13}{'raw':>13}{'vs greenstalk':>15}{'vs raw':>9}"
    print()
    print("median ops/s over the rounds; ± is half the range (max-min) of beanstalkm's rounds, over the median")
    print(head)
    print("-" * len(head))
    for case in cases:
        s = summary[case.name]
        impls = s["impls"]
        print(
            f"{case.name:<14}{case.unit:>6}"
            + "".join(f"{fmt_rate(impls[i]['ops_per_s']):>13}" for i in IMPLS)
            + f"{s['ratio_vs_greenstalk']:>14.2f}x{s['ratio_vs_raw']:>8.2f}x"
            + f"   ±{impls['beanstalkm']['spread'] * 50:.0f}%"
        )
    print()
    print("what each column runs:")
    for case in cases:
        print(f"  {case.name} ({case.title}):")
        for impl in IMPLS:
            print(f"    {impl:<11} {case.impls[impl].what}")


def check_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for target in TARGETS:
        if target.case not in summary:
            continue
        ratio = summary[target.case]["ratio_vs_greenstalk" if target.versus == "greenstalk" else "ratio_vs_raw"]
        results.append(
            {
                "target": target.text,
                "case": target.case,
                "versus": target.versus,
                "value": ratio,
                "unit": "x",
                "kind": "min",
                "limit": target.minimum,
                "met": ratio >= target.minimum,
            }
        )
    return results


def describe(target: dict[str, Any]) -> str:
    """One target's line: met or MISSED, what, the value and the limit (the shape memory.py uses too)."""
    mark = "met   " if target["met"] else "MISSED"
    unit, limit = target["unit"], target["limit"]
    value = f"{target['value']:+,} KiB" if unit == "KiB" else f"{target['value']:.2f}x"
    need = f"{'>=' if target['kind'] == 'min' else '<='} {limit:,}{' KiB' if unit == 'KiB' else 'x'}"
    return f"  {mark} {target['target']:<78} {value:>10}  (needs {need})"


def print_targets(results: list[dict[str, Any]], title: str = "targets") -> None:
    print()
    print(title)
    for target in results:
        print(describe(target))


def pin(mode: str, server_pids: list[int]) -> str:
    """Pin this process and the servers' per ``mode``; a description of what was done."""
    if mode == "none" or not hasattr(os, "sched_setaffinity"):
        return "left to the scheduler"
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu = cpus[0]
    server_cpu = cpus[1] if mode == "split" and len(cpus) > 1 else client_cpu
    os.sched_setaffinity(0, {client_cpu})
    for pid in server_pids:
        os.sched_setaffinity(pid, {server_cpu})
    return f"client on CPU {client_cpu}, beanstalkd on CPU {server_cpu}"


def _failed(text: str) -> dict[str, Any]:
    return {"target": text, "value": 0.0, "unit": "x", "kind": "min", "limit": 1.0, "met": False}


def run_memory(quick: bool) -> dict[str, Any] | None:
    """Run benchmarks/memory.py in its own process (so RSS figures are its children's own); its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "memory.json"
        cmd = [sys.executable, str(HERE / "memory.py"), "--json", str(out)] + (["--quick"] if quick else [])
        done = subprocess.run(cmd, check=False)
        if done.returncode not in (0, 1) or not out.exists():
            print(f"memory benchmark failed (exit {done.returncode})", file=sys.stderr)
            return None
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: fewer operations and rounds")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5, or 3 with --quick)")
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument(
        "--pin",
        choices=("same", "split", "none"),
        default="same",
        help="CPU placement: client and servers on one CPU (default: stable, measures CPU cost), "
        "on two different CPUs (adds cross-CPU wake-up latency to every round trip), or left to the scheduler",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    rounds: int = args.rounds or (3 if args.quick else 5)
    cases = CASES
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {c.name for c in CASES}
        if unknown:
            parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
        cases = tuple(c for c in CASES if c.name in wanted)

    validation = importlib.util.find_spec("jsonschema") is not None
    info = machine_info()
    print(f"beanstalkm {info['beanstalkm']} vs greenstalk {info['greenstalk']} vs raw sockets; {info['beanstalkd']}")
    print(f"{info['python']} on {info['cpu']} ({info['cpus']} CPUs), {info['platform']}")
    state = f"on (validate=True, jsonschema {info['jsonschema']} installed)" if validation else "jsonschema MISSING"
    print(f"validation: {state}")
    print(f"{rounds} rounds, interleaved{' (quick)' if args.quick else ''}")

    with BeanstalkdServer() as server, BeanstalkdServer(max_job_size=2 * BIG) as big_server:
        pinned = pin(args.pin, [p for p in (server.pid, big_server.pid) if p is not None])
        print(f"CPU placement: {pinned}")
        env = make_env((server.host, server.port), (big_server.host, big_server.port))
        preflight(env)
        # Tubes that exist for the whole run, so list-tubes has something to list.
        holder = raw_open(env.addr)
        for i in range(20):
            holder.command(b"watch %b.hold%02d\r\n" % (env.prefix.encode(), i), b"WATCHING")
        try:
            samples = run_rounds(env, cases, rounds, args.quick)
        finally:
            holder.close()

    summary = summarize(samples, cases)
    print_table(summary, cases)
    targets = check_targets(summary)
    if not validation:
        targets.append(_failed("the targets hold with jsonschema installed and validation on: jsonschema is missing"))
    print_targets(targets)

    memory = None if args.no_memory else run_memory(args.quick)
    if memory is not None:
        targets += memory["targets"]
    elif not args.no_memory:
        targets.append(_failed("the memory measurements (benchmarks/memory.py) ran"))

    result = {
        "machine": info,
        "config": {
            "rounds": rounds,
            "cpu_placement": pinned,
            "quick": args.quick,
            "batch": BATCH,
            "validation": validation,
            "n": {c.name: (c.quick_n if args.quick else c.n) for c in cases},
        },
        "cases": summary,
        "memory": memory,
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {args.out}")

    missed = [t for t in targets if not t["met"]]
    if missed:
        print(f"{len(missed)} target(s) missed: " + "; ".join(str(t["target"]) for t in missed))
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
