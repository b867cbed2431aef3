"""``beanstalkm worker pkg.module:worker`` whose module fails as it is imported (docs/worker.md, "The
command line and exit codes"): a target that cannot be imported is a usage error, exit 2, one line naming
the module and its error (the traceback with ``--debug``). Real subprocesses, both commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._support import run_command

MODULES = {
    "raises_at_import": ('import beanstalkm\nraise RuntimeError("config missing")\n', "RuntimeError: config missing"),
    "bad_syntax": ("def broken(:\n    pass\n", "SyntaxError: "),
}


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("command", ["beanstalkm", "worker_main"])
def test_a_module_that_fails_as_it_is_imported_is_a_usage_error(tmp_path: Path, command: str, name: str) -> None:
    """Failed before the fix: ``beanstalkm`` said ``internal error: RuntimeError: ...`` and ``python -m
    beanstalkm.worker_main`` ended on a raw traceback, both with exit 1 (only an ImportError was exit 2)."""
    text, says = MODULES[name]
    (tmp_path / f"{name}.py").write_text(text)
    for debug in ([], ["--debug"] if command == "beanstalkm" else []):
        done = run_command(command, [*debug, "worker", f"{name}:worker", "-s", "beanstalk://127.0.0.1:1"], tmp_path)
        assert done.returncode == 2, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"beanstalkm worker: cannot import '{name}': it raised {says}"), done.stderr
        assert ("Traceback" in done.stderr) == bool(debug), done.stderr
