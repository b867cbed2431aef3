"""The benchmark environment: constants, the shared ``Env``, CPU placement (``--pin``), the load meter, and
the facts about the machine the results record."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import beanstalkm
from beanstalkm.testing import find_beanstalkd

HERE = Path(__file__).resolve().parent.parent  # benchmarks/


RESULTS = HERE / "results"


Address = tuple[str, int]


Run = Callable[[int], None]  # runs k operations


Prepared = tuple[Run, Callable[[], None]]  # the operations, and what closes their connections


Prepare = Callable[["Env", str, int], Prepared]  # (env, fresh tube, n) -> prepared run


IMPLS = ("beanstalkm", "other", "raw")  # "other" is greenstalk (sync cases) or aiostalk (async cases)


PRIORITY = beanstalkm.DEFAULT_PRIORITY


TTR = beanstalkm.DEFAULT_TTR


BATCH = 100  # messages per put_many / reserve_many call (and per raw pipelined write)


BIG = 1024 * 1024  # the large body: 1 MiB


TASKS = 100  # concurrent asyncio tasks in the async cases


TO = "user@example.org"  # the body every put sends: {"n": i, "to": TO}


ROUNDS, QUICK_ROUNDS, CHUNKS, ASYNC_CHUNKS = 9, 3, 20, 6


@dataclass(frozen=True)
class Env:
    """What every case needs: the servers, the bytes beanstalkm puts, the event loop of the async cases."""

    addr: Address
    big_addr: Address
    prefix: str
    envelope: bytes  # what Client.put writes for {"n": 0, "to": TO}: prefilled for the reserve cases
    big_body: str
    big_envelope: bytes
    loop: asyncio.AbstractEventLoop
    pool_size: int


# -- placement ----------------------------------------------------------------------------------------

REGIMES = {
    "split": (
        "this process on CPU {client}, the beanstalkd servers on CPU {server}: every round trip crosses CPUs\n"
        "  (a real loopback round trip with a wake-up, as between a client and a server in a deployment);\n"
        "  the regime the targets are stated for"
    ),
    "same": (
        "this process and the beanstalkd servers all on CPU {client}: no cross-CPU wake-up, a round trip costs\n"
        "  only both sides' CPU time, so the figures are CPU-bound and the ratios measure per-operation\n"
        "  client overhead (a secondary figure: the targets are stated for the split regime)"
    ),
    "none": "placement left to the scheduler (figures vary with where it runs each side)",
}


_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
"""The CPUs this process may use, as it started: a later case pins again from these, not from an earlier pin."""


def pin(mode: str, server_pids: list[int]) -> tuple[str, str]:
    """Pin this process and the servers per ``mode``; the regime in effect and its description."""
    if mode == "none" or not hasattr(os, "sched_setaffinity"):
        return "none", REGIMES["none"]
    cpus = _CPUS
    if mode == "split" and len(cpus) < 2:
        mode = "same"
        note = " (split asked for, but only one CPU is available)"
    else:
        note = ""
    client_cpu = cpus[0]
    server_cpu = cpus[1] if mode == "split" else client_cpu
    os.sched_setaffinity(0, {client_cpu})
    for pid in server_pids:
        os.sched_setaffinity(pid, {server_cpu})
    return mode, REGIMES[mode].format(client=client_cpu, server=server_cpu) + note


# -- other load on the machine ------------------------------------------------------------------------


class LoadMeter:
    """CPU time the rest of the machine used meanwhile: all CPUs' busy time minus this process's and the
    servers' (Linux /proc), and the time the hypervisor stole; in CPUs (1.0 = one CPU kept busy)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self._sample()

    @staticmethod
    def _machine() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        return user + nice + system + irq + softirq, steal

    def _ours(self) -> int:
        total = 0
        for pid in [os.getpid(), *self.pids]:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total

    def _sample(self) -> tuple[float, int, int, int] | None:
        try:
            busy, steal = self._machine()
            return time.perf_counter(), busy, steal, self._ours()
        except (OSError, ValueError, IndexError):
            return None

    def other_cpus(self) -> dict[str, float] | None:
        """{"other": CPUs used by other processes, "steal": CPUs stolen}, since the start; None off Linux."""
        end = self._sample()
        if self.start is None or end is None:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        wall = end[0] - self.start[0]
        other = (end[1] - self.start[1]) - (end[3] - self.start[3])
        return {"other": max(0, other) / tick / wall, "steal": (end[2] - self.start[2]) / tick / wall}


# -- what the results record about the machine --------------------------------------------------------


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
        "aiostalk": version_of("aiostalk"),
        "jsonschema": version_of("jsonschema"),
        "commit": commit or None,
    }
