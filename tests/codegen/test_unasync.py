"""The derived sync flavour: ``codegen/unasync.py`` and its drift check."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from codegen import unasync

ROOT = Path(__file__).resolve().parents[2]
DERIVED = ROOT / "src" / "beanstalkm" / "_sync"
SOURCE = ROOT / "src" / "beanstalkm" / "_async"


def codegen(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.fixture
def derived_copy(tmp_path: Path) -> Path:
    target = tmp_path / "_sync"
    shutil.copytree(DERIVED, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_the_committed_sync_flavour_is_what_the_pass_derives() -> None:
    files = unasync.derive_all()
    assert set(files) == {p.name for p in DERIVED.glob("*.py")}
    for name, text in files.items():
        assert (DERIVED / name).read_text(encoding="utf-8") == text, name


@pytest.mark.parametrize("name", ["connection.py", "client.py", "message.py"])
def test_editing_a_derived_file_by_hand_fails_the_check(derived_copy: Path, name: str) -> None:
    assert codegen("--check", "--derived-out", derived_copy).returncode == 0
    path = derived_copy / name
    path.write_text(path.read_text(encoding="utf-8").replace("def ", "def  ", 1), encoding="utf-8")
    proc = codegen("--check", "--derived-out", derived_copy)
    assert proc.returncode == 1
    assert f"stale: {path}" in proc.stderr
    assert "make generate" in proc.stderr


def test_a_missing_or_extra_derived_file_fails_the_check(derived_copy: Path) -> None:
    (derived_copy / "client.py").unlink()
    (derived_copy / "stray.py").write_text("x = 1\n", encoding="utf-8")
    proc = codegen("--check", "--derived-out", derived_copy)
    assert proc.returncode == 1
    assert f"missing: {derived_copy / 'client.py'}" in proc.stderr
    assert f"not generated any more: {derived_copy / 'stray.py'}" in proc.stderr


def test_generate_writes_the_derived_files(derived_copy: Path) -> None:
    (derived_copy / "message.py").write_text("broken\n", encoding="utf-8")
    proc = codegen("--out", ROOT / "src" / "beanstalkm" / "_generated", "--derived-out", derived_copy)
    assert proc.returncode == 0, proc.stderr
    assert (derived_copy / "message.py").read_text(encoding="utf-8") == (DERIVED / "message.py").read_text(
        encoding="utf-8"
    )


def test_each_derived_file_names_its_source_and_says_do_not_edit() -> None:
    for name in unasync.SOURCES:
        header = (DERIVED / name).read_text(encoding="utf-8").splitlines()[0]
        assert header.startswith(f"# Derived by `python -m codegen` from src/beanstalkm/_async/{name} (sha256 ")
        assert "DO NOT EDIT" in header


def test_the_derived_code_names_no_asyncio_or_socket_api() -> None:
    for name in unasync.SOURCES:
        with (DERIVED / name).open(encoding="utf-8") as f:
            names = {t.string for t in tokenize.generate_tokens(f.readline) if t.type == tokenize.NAME}
        assert not names & {"asyncio", "await", "async", "socket", "select", "streams", "threading"}, name
        assert not [n for n in names if n.startswith("Async")], name


def test_a_substitution_that_no_longer_applies_fails_the_pass(tmp_path: Path) -> None:
    source = tmp_path / "connection.py"
    text = (SOURCE / "connection.py").read_text(encoding="utf-8")
    source.write_text(text.replace("An asyncio connection to one beanstalkd", "An asyncio link"), encoding="utf-8")
    with pytest.raises(unasync.UnasyncError, match="substitution no longer applies: 'An asyncio connection"):
        unasync.derive(source)


def test_blocks_and_tokens(tmp_path: Path) -> None:
    source = tmp_path / "client.py"
    source.write_text(
        '"""A module.\n\nMore words."""\n'
        "from beanstalkm._async import ASYNC\n"
        "from beanstalkm._async.connection import AsyncConnection\n\n\n"
        "class AsyncThing(AsyncConnection):\n"
        '    """Uses ``async with AsyncConnection(...)`` and ``await x()``; AsyncConnectionX stays."""\n\n'
        "    async def go(self) -> None:\n"
        "        if ASYNC:\n"
        "            await self.connect()\n"
        "        else:\n"
        "            self.connect()\n"
        "            self.close()\n"
        "        if not ASYNC:\n"
        "            self.reconnect()\n"
        "        async with self._lock:  # AsyncConnection's lock\n"
        "            pass\n"
        '        s = "await me"  # a string is text, not code\n'
        '        t = f"a client (AsyncConnection), not {type(AsyncConnection).__name__!r:>{len(s)}} '
        '{{AsyncConnection}}"\n',
        encoding="utf-8",
    )
    derived = unasync.derive(source)
    body = derived.split("\n", 1)[1]
    assert body.startswith('"""A module.\n\nThe sync flavour, derived from the asyncio source')
    assert "from beanstalkm._sync.connection import Connection\n" in body
    assert "from beanstalkm._async" not in body and "ASYNC" not in body  # the marker's import goes too
    assert "class AsyncThing(Connection):" in body  # only whole names in NAMES change
    assert "``with Connection(...)`` and ``x()``; AsyncConnectionX stays." in body
    assert "    def go(self) -> None:\n        self.connect()\n        self.close()\n        self.reconnect()\n" in body
    assert "        with self._lock:  # Connection's lock\n" in body
    assert 's = "await me"' in body
    # an f-string is taken whole, its text and its fields, on every Python (3.12+ splits it into tokens)
    assert 't = f"a client (Connection), not {type(Connection).__name__!r:>{len(s)}} {{Connection}}"\n' in body


def test_a_marked_block_with_no_body_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "client.py"
    source.write_text("def f() -> None:\n    if ASYNC:\n    pass\n", encoding="utf-8")
    with pytest.raises(unasync.UnasyncError, match="no body"):
        unasync.derive(source)


def test_the_queue_driver_protocol_declares_what_the_generated_queues_call() -> None:
    from beanstalkm._core.base import AsyncQueueDriver, QueueDriver
    from codegen.model import QUEUE_DRIVER

    for protocol in (QueueDriver, AsyncQueueDriver):
        for member in QUEUE_DRIVER.values():
            assert callable(getattr(protocol, member)), (protocol, member)
    for generated in ("queue.py", "aqueue.py"):
        text = (ROOT / "src" / "beanstalkm" / "_generated" / generated).read_text(encoding="utf-8")
        called = set(re.findall(r"self\._conn\.(\w+)\(", text))
        assert called <= set(QUEUE_DRIVER.values()), generated
        assert {"_execute", "_reserved_message", "_message_or_none"} <= called, generated
