"""Helpers of the worker tests: the worker command line (built here only), its processes, the run log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from beanstalkm.testing import BeanstalkdServer

ROOT = Path(__file__).resolve().parents[2]
FLAVOURS = ["", "_async"]
"""The suffixes of the two flavours of each worker in ``_apps`` (threads, tasks)."""
FLAVOUR_IDS = ["threads", "tasks"]
WAIT = 60.0
"""The longest any test waits for a process or a condition (a bound against hangs, not a timing)."""


def worker_argv() -> list[str]:
    """The command that runs ``beanstalkm worker ...`` / ``beanstalkm failed ...``: the ``beanstalkm``
    command line itself (``python -m beanstalkm``), which hands both to ``beanstalkm.worker_main``."""
    return [sys.executable, "-m", "beanstalkm"]


def worker_env(runlog: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    env.pop("BEANSTALKD_URL", None)
    if runlog is not None:
        env["BSM_RUNLOG"] = str(runlog)
    return env


def run_command(command: str, args: Sequence[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``args`` run by ``command``: ``"beanstalkm"`` (the command line, ``worker_argv``) or ``"worker_main"``
    (``python -m beanstalkm.worker_main``), with the tests' environment, in ``cwd``, bounded by WAIT."""
    argv = worker_argv() if command == "beanstalkm" else [sys.executable, "-m", "beanstalkm.worker_main"]
    return subprocess.run([*argv, *args], env=worker_env(), capture_output=True, text=True, timeout=WAIT, cwd=cwd)


def url(server: BeanstalkdServer) -> str:
    return f"beanstalk://{server.host}:{server.port}"


@dataclass
class Run:
    """A parsed run log: each handler run's start and end, by job (a run is (pid, start, end or None,
    timeouts seen at its end))."""

    starts: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    ends: dict[int, list[tuple[int, float, int]]] = field(default_factory=dict)
    runs: dict[int, list[tuple[int, float, float | None, int]]] = field(default_factory=dict)


def read_runlog(path: Path) -> Run:
    run = Run()
    if not path.exists():
        return run
    opened: dict[str, tuple[int, int, float]] = {}
    finished: dict[str, tuple[float, int]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue  # a line being written
        job, pid, at = int(parts[1]), int(parts[2]), float(parts[3])
        token = parts[4] if len(parts) > 4 else "-"
        if parts[0] == "S":
            run.starts.setdefault(job, []).append((pid, at))
            if token != "-":
                opened[token] = (job, pid, at)
        else:
            timeouts = int(parts[5]) if len(parts) > 5 and parts[5].lstrip("-").isdigit() else 0
            run.ends.setdefault(job, []).append((pid, at, timeouts))
            if token != "-":
                finished[token] = (at, timeouts)
    for token, (job, pid, at) in opened.items():
        end, timeouts = finished.get(token, (None, 0))
        run.runs.setdefault(job, []).append((pid, at, end, timeouts))
    return run


class Workers:
    """Worker processes started through the CLI; all stopped at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, target: str, args: Sequence[str], runlog: Path | None = None) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed at teardown
        proc = subprocess.Popen(
            [*worker_argv(), "worker", target, *args], env=worker_env(runlog), stdout=log, stderr=log, cwd=ROOT
        )
        log.close()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(WAIT)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("worker-*.log")))


def wait_for(condition: Callable[[], object], timeout: float = WAIT, what: str = "condition") -> None:
    """Poll ``condition()`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def failed_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*worker_argv(), "failed", *args], env=worker_env(), capture_output=True, text=True, timeout=WAIT, cwd=ROOT
    )


def terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
