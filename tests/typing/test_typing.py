"""Run mypy over the typing fixtures: assert_types.py must pass, wrong_usage.py must fail exactly as expected."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WRONG_USAGE = HERE / "wrong_usage.py"
EXPECTED = HERE / "wrong_usage.expected"
ASSERT_TYPES = HERE / "assert_types.py"


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(cache: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    """mypy --strict with the project's configuration, output in a stable form."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            "--no-color-output",
            "--cache-dir",
            str(cache),
            *(f.relative_to(ROOT).as_posix() if f.is_relative_to(ROOT) else str(f) for f in files),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def normalized(output: str) -> list[str]:
    return [line.replace("\\", "/").rstrip() for line in output.splitlines() if line.strip()]


@pytest.mark.slow
def test_wrong_usage_fails_exactly_as_expected(mypy_cache: Path) -> None:
    proc = mypy(mypy_cache, WRONG_USAGE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert normalized(proc.stdout) == normalized(EXPECTED.read_text(encoding="utf-8"))


def test_expected_errors_cover_every_marked_line() -> None:
    # Each misuse line carries a comment; each must have an error, and nothing else may.
    marked = {
        number
        for number, line in enumerate(WRONG_USAGE.read_text(encoding="utf-8").splitlines(), start=1)
        if line.startswith("    ") and "  # " in line
    }
    errors = set()
    for line in normalized(EXPECTED.read_text(encoding="utf-8")):
        match = re.fullmatch(r"tests/typing/wrong_usage\.py:(\d+): (error|note): .+", line)
        assert match is not None, line
        if match[2] == "error":
            errors.add(int(match[1]))
    assert len(marked) >= 20
    assert errors == marked


@pytest.mark.slow
def test_assert_types_pass(mypy_cache: Path) -> None:
    proc = mypy(mypy_cache, ASSERT_TYPES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert normalized(proc.stdout) == []


@pytest.mark.slow
def test_a_wrong_assert_type_is_caught(mypy_cache: Path, tmp_path: Path) -> None:
    # Guard against a vacuous pass: flip one expectation of assert_types.py and mypy must object.
    source = ASSERT_TYPES.read_text(encoding="utf-8")
    original = "assert_type(q.peek(1), Message | None)"
    assert original in source
    flipped = tmp_path / "flipped.py"
    flipped.write_text(source.replace(original, "assert_type(q.peek(1), Message)"), encoding="utf-8")
    proc = mypy(mypy_cache, flipped)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = source[: source.index(original)].count("\n") + 1
    assert normalized(proc.stdout) == [
        f'{flipped.as_posix()}:{line}: error: Expression is of type "Message | None", not "Message"  [assert-type]'
    ]
