"""``beanstalkm top`` in a real terminal (tmux): it shows the tubes, its rates follow jobs as they flow, its keys
sort, pause and kick, and ``q`` quits. Every wait is bounded."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from beanstalkm.testing import BeanstalkdServer

from ._support import SRC, client, url

WAIT = 20.0


class Tmux:
    def __init__(self, name: str) -> None:
        self.socket = name
        self.session = "top"

    def __call__(self, *args: str) -> str:
        tmux = shutil.which("tmux")
        assert tmux is not None, "tmux is not installed (make test installs it: apt-get install -y tmux)"
        proc = subprocess.run([tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=10, check=False)
        if proc.returncode != 0 and args[0] not in ("has-session", "kill-server"):
            raise AssertionError(f"tmux {args}: {proc.stderr}")
        return proc.stdout if proc.returncode == 0 else ""

    def alive(self) -> bool:
        tmux = shutil.which("tmux") or "tmux"
        return (
            subprocess.run(
                [tmux, "-L", self.socket, "has-session", "-t", self.session], capture_output=True, timeout=10
            ).returncode
            == 0
        )

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.session, *keys)

    def wait_for(self, what: str, check: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"top never showed {what}; last screen:\n{screen}")


def _row(screen: str, tube: str) -> list[str] | None:
    for line in screen.splitlines():
        cells = line.split()
        if cells and cells[0] == tube:
            return cells
    return None


def _rates(screen: str, tube: str) -> tuple[float, float] | None:
    cells, header = _row(screen, tube), _row(screen, "tube")
    if cells is None or header is None or "done/s" not in header or len(cells) <= header.index("done/s"):
        return None
    try:
        return float(cells[header.index("put/s")]), float(cells[header.index("done/s")])
    except ValueError:
        return None


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    term = Tmux(f"bsm-top-{os.getpid()}-{time.monotonic_ns()}")
    try:
        yield term
    finally:
        term("kill-server")


def test_top_in_a_real_terminal(server: BeanstalkdServer, tmux: Tmux) -> None:
    with client(server) as c:
        c.put({"stuck": True}, tube="stuck", priority=11)
        c.watch("stuck")
        job = c.reserve(timeout=5, drop=False)
        assert job is not None
        job.bury()
    command = (
        f"env -u COLUMNS -u LINES PYTHONPATH={shlex.quote(SRC)} {shlex.quote(sys.executable)} "
        f"-m beanstalkm -s {url(server)} top --interval 0.5"
    )
    tmux("new-session", "-d", "-s", tmux.session, "-x", "160", "-y", "40", command)
    tmux.wait_for("the tubes", lambda s: _row(s, "stuck") is not None and "q quit" in s)

    stop = threading.Event()

    def flow() -> None:
        with client(server) as producer, client(server) as consumer:
            consumer.watch("flow")
            while not stop.is_set():
                producer.put({"n": 1}, tube="flow")
                message = consumer.reserve(timeout=1, drop=False)
                if message is not None:
                    message.delete()
                time.sleep(0.01)

    thread = threading.Thread(target=flow, daemon=True)
    thread.start()
    try:
        screen = tmux.wait_for(
            "put/s and done/s moving for the flow tube",
            lambda s: (r := _rates(s, "flow")) is not None and r[0] > 0 and r[1] > 0,
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    assert _row(screen, "stuck") is not None

    # s cycles the sort: tube -> ready -> buried; the tube with a buried job is then first (selected)
    tmux.keys("s")
    tmux.wait_for("sort by ready", lambda s: "sort (ready)" in s)
    tmux.keys("s")
    tmux.wait_for("sort by buried", lambda s: "sort (buried)" in s)
    tmux.keys("p")
    tmux.wait_for("the pause message", lambda s: "paused 'stuck'" in s)
    with client(server) as c:
        assert c.queue.stats_tube("stuck").pause == 60
    tmux.keys("k")
    tmux.wait_for("the kick message", lambda s: "kicked 1 job(s) in 'stuck'" in s)
    with client(server) as c:
        stats = c.queue.stats_tube("stuck")
        assert (stats.current_jobs_buried, stats.current_jobs_ready) == (0, 1)

    tmux.keys("q")
    deadline = time.monotonic() + WAIT
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), "top did not quit on q"
