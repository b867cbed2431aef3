"""Ctrl-C: a real SIGINT to the ``beanstalkm`` command while it waits on a server that accepted the
connection and never answers (a listening socket that reads nothing: what a real beanstalkd cannot do
on demand). The command stops at once with exit 1 and one line, ``beanstalkm: aborted``."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

from ._support import TIMEOUT, cli_env


def test_ctrl_c_while_waiting_on_a_silent_server_aborts_with_exit_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "beanstalkm", "-s", f"beanstalk://127.0.0.1:{port}", "--timeout", "60", "stats"],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            silent.settimeout(TIMEOUT)
            conn, _ = silent.accept()  # connected: the command is now waiting for its reply
            with conn:
                conn.settimeout(TIMEOUT)
                assert conn.recv(64).startswith(b"stats")  # its command came; no reply will
                time.sleep(0.2)  # inside its wait for the reply
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(TIMEOUT)
    assert proc.returncode == 1, err
    assert err.strip().splitlines() == ["beanstalkm: aborted"] and out == ""
