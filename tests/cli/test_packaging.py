"""The CLI's packaging: the installed ``beanstalkm`` script, the install hint without the ``cli`` extra,
and a library that never imports click or rich."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from beanstalkm.testing import BeanstalkdServer

from ._support import TIMEOUT, cli_env, run, url

# Runs `python -m beanstalkm` with the imports of click and rich made to fail, as without the extra.
BLOCKED = textwrap.dedent(
    """
    import runpy, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("click", "rich"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    sys.argv = ["beanstalkm", *sys.argv[1:]]
    runpy.run_module("beanstalkm", run_name="__main__", alter_sys=True)
    """
)


def test_without_the_extra_the_script_names_it(server: BeanstalkdServer) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, "-s", url(server), "tubes"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=cli_env(),
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "pip install 'beanstalkm[cli]'" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_library_never_imports_the_cli_dependencies() -> None:
    child = textwrap.dedent(
        """
        import json, sys
        import beanstalkm, beanstalkm.aio, beanstalkm.testing
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("click", "rich")
                                or m.startswith("beanstalkm.cli"))))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=TIMEOUT, env=cli_env(), check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def _script() -> Path:
    """The installed console script: next to this interpreter (``make test`` installs the project with its
    ``cli`` extra), or ``$BEANSTALKM_SCRIPT``."""
    named = os.environ.get("BEANSTALKM_SCRIPT")
    return Path(named) if named else Path(sys.executable).parent / "beanstalkm"


def test_the_installed_console_script(server: BeanstalkdServer) -> None:
    script = _script()
    assert script.is_file(), (
        f"no console script at {script}: install the project with its cli extra (pip install -e '.[dev]', "
        "as make test does) or set $BEANSTALKM_SCRIPT"
    )
    put = run("--json", "put", "scripted", '{"a": 1}', servers=[server], command=[str(script)])
    assert put.code == 0, put.err
    job_id = put.json()["jobs"][0]["id"]
    peek = run("--json", "peek", str(job_id), servers=[server], command=[str(script)])
    assert peek.code == 0 and peek.json()["body"] == {"a": 1}
    version = run("--version", command=[str(script)])
    assert version.code == 0 and "2.0.0" in version.out
    assert run("stats-job", "0", servers=[server], command=[str(script)]).code == 2
