"""The code generator: naming, drift check, reproducibility, spec errors, and a spec edit end to end."""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

from beanstalkm import Connection
from beanstalkm._core.requests import Reply, Request
from beanstalkm._core.yaml import flat_values, parse_mapping
from codegen import render
from codegen.model import SpecError, load
from codegen.naming import RESERVED_ATTRIBUTES, export_order, python_name
from codegen.unasync import SOURCES

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "spec" / "api.json"
SCHEMA = ROOT / "spec" / "api.schema.json"
MESSAGE_SCHEMA = ROOT / "spec" / "message.json"
GENERATED = ROOT / "src" / "beanstalkm" / "_generated"
# The generator's own list, in the order it writes (message.json last); checked against the tree below.
OUTPUT_ORDER = [out for _, out, _ in render.OUTPUTS] + ["message.json"]
GENERATED_FILES = set(OUTPUT_ORDER)
# Generated from spec/message.json (their stamp names its hash); the rest come from spec/api.json.
FROM_MESSAGE_SCHEMA = {"envelope_check.py", "message.json"}

T = TypeVar("T")


def codegen(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m codegen`` as a user would, from the project root. A run that writes puts the sync
    flavour it derives in a scratch folder, never over the checkout's ``_sync``: a test must not rewrite
    the tree (under another Python its output may differ; that is the drift check's to say)."""
    if "--check" not in args and "--derived-out" not in args:
        args = (*args, "--derived-out", tempfile.mkdtemp(prefix="beanstalkm-derived-"))
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def generate(out: Path, spec: Path = SPEC) -> Path:
    proc = codegen("--spec", spec, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def check(out: Path) -> subprocess.CompletedProcess[str]:
    return codegen("--check", "--out", out)


def spec_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return data


def command_index(data: dict[str, Any], name: str) -> int:
    return next(i for i, c in enumerate(data["commands"]) if c["name"] == name)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine generation from spec/api.json (do not modify: copy it)."""
    return generate(tmp_path_factory.mktemp("generated") / "out")


@pytest.fixture
def out(generated: Path, tmp_path: Path) -> Path:
    """A fresh copy of the pristine generation, free to break."""
    target = tmp_path / "out"
    target.mkdir()
    for path in generated.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    return target


# -- naming -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("current-jobs-urgent", "current_jobs_urgent"),
        ("reserve-with-timeout", "reserve_with_timeout"),
        ("cmd-list-tubes-watched", "cmd_list_tubes_watched"),
        ("id", "id"),
        ("pid", "pid"),
        ("stats", "stats"),
        ("import", "import_"),
        ("class", "class_"),
        ("pass", "pass_"),
        ("None", "None_"),
        ("keys", "keys_"),
        ("items", "items_"),
        ("values", "values_"),
        ("get", "get_"),
        ("extra", "extra_"),
        ("from-yaml", "from_yaml_"),
    ],
)
def test_python_name(wire: str, expected: str) -> None:
    assert python_name(wire) == expected


def test_reserved_attributes_cover_the_mapping_api() -> None:
    # A stats dataclass is also a Mapping; a field may not shadow a Mapping method.
    assert {"keys", "items", "values", "get", "extra", "from_yaml"} <= RESERVED_ATTRIBUTES
    for name in RESERVED_ATTRIBUTES:
        assert python_name(name) == name + "_"


@pytest.mark.parametrize("wire", ["", "9lives", "a b", "a.b", "x/y"])
def test_python_name_rejects_non_identifiers(wire: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        python_name(wire)


def test_stats_attributes_are_python_names_of_the_keys() -> None:
    for st in load(SPEC, SCHEMA).stats:
        for f in st.fields:
            assert f.attr == python_name(f.key)
            assert f.attr.isidentifier()


# -- the drift check ----------------------------------------------------------


def test_check_passes_on_a_fresh_generation(out: Path) -> None:
    proc = check(out)
    assert proc.returncode == 0, proc.stderr
    derived = len(SOURCES) + 1  # each flavoured source, and the package's __init__.py
    assert (
        proc.stdout.strip() == f"generated code is current ({len(GENERATED_FILES)} files; {derived} derived sync files)"
    )
    assert {p.name for p in out.iterdir()} == GENERATED_FILES


def assert_check_fails(out: Path, *problems: str) -> None:
    proc = check(out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line.strip() for line in proc.stderr.splitlines()]
    assert lines[0] == "generated code is out of date:"
    assert lines[1:-1] == list(problems)
    assert "make generate" in lines[-1]


@pytest.mark.parametrize("name", ["commands.py", "queue.py", "stats.py", "__init__.py", "message.json"])
def test_check_catches_one_changed_byte(out: Path, name: str) -> None:
    path = out / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    position = data.index(b"e", middle)
    data[position] = ord("E")
    path.write_bytes(bytes(data))
    assert_check_fails(out, f"stale: {path}")


@pytest.mark.parametrize("replacement", [b"\r", b"\r\n"], ids=["LF-to-CR", "LF-to-CRLF"])
def test_check_compares_bytes_not_decoded_text(out: Path, replacement: bytes) -> None:
    # Universal-newline reading would take these for the same text.
    path = out / "pipeline.py"
    data = path.read_bytes()
    position = data.index(b"\n", len(data) // 2)
    path.write_bytes(data[:position] + replacement + data[position + 1 :])
    assert_check_fails(out, f"stale: {path}")


def test_check_catches_a_trailing_extra_line(out: Path) -> None:
    path = out / "errors.py"
    path.write_bytes(path.read_bytes() + b"\n")
    assert_check_fails(out, f"stale: {path}")


def test_check_catches_a_missing_trailing_newline(out: Path) -> None:
    path = out / "errors.py"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert_check_fails(out, f"stale: {path}")


def test_check_catches_a_missing_file(out: Path) -> None:
    path = out / "stats.py"
    path.unlink()
    assert_check_fails(out, f"missing: {path}")


def test_check_catches_a_file_not_generated_any_more(out: Path) -> None:
    path = out / "old_module.py"
    path.write_text("# Generated by an older spec.\n")
    assert_check_fails(out, f"not generated any more: {path}")


def test_check_reports_every_problem(out: Path) -> None:
    (out / "queue.py").write_bytes((out / "queue.py").read_bytes() + b"# edited\n")
    (out / "errors.py").unlink()
    (out / "zzz.py").write_text("")
    assert_check_fails(
        out,
        f"missing: {out / 'errors.py'}",
        f"stale: {out / 'queue.py'}",
        f"not generated any more: {out / 'zzz.py'}",
    )


def test_check_of_a_missing_directory(tmp_path: Path) -> None:
    out = tmp_path / "nowhere"
    assert_check_fails(out, *(f"missing: {out / name}" for name in sorted(GENERATED_FILES, key=_output_order)))


def _output_order(name: str) -> int:
    return OUTPUT_ORDER.index(name)


def test_generating_repairs_a_broken_directory(out: Path, generated: Path) -> None:
    (out / "queue.py").write_bytes((out / "queue.py").read_bytes().replace(b"\n", b"\r\n"))
    (out / "stats.py").unlink()
    (out / "leftover.py").write_text("")
    proc = codegen("--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "queue.py" in proc.stdout
    assert "stats.py" in proc.stdout
    assert "leftover.py (removed)" in proc.stdout
    assert check(out).returncode == 0
    assert _snapshot(out) == _snapshot(generated)
    again = codegen("--out", out)
    assert again.stdout.startswith(f"wrote 0 of {len(GENERATED_FILES)} files")


# -- reproducibility ----------------------------------------------------------


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_generation_is_reproducible(generated: Path, tmp_path: Path) -> None:
    second = generate(tmp_path / "second")
    first_files = _snapshot(generated)
    assert set(first_files) == GENERATED_FILES
    assert _snapshot(second) == first_files


def test_committed_files_match_a_fresh_generation_byte_for_byte(generated: Path) -> None:
    assert _snapshot(GENERATED) == _snapshot(generated)


def test_header_names_the_spec_hash_and_nothing_variable(generated: Path) -> None:
    py_files = sorted(generated.glob("*.py"))
    assert {p.name for p in py_files} == GENERATED_FILES - {"message.json"}
    for path in py_files:
        source = MESSAGE_SCHEMA if path.name in FROM_MESSAGE_SCHEMA else SPEC
        sha = hashlib.sha256(source.read_bytes()).hexdigest()
        expected = (
            f"# Generated by `python -m codegen` from spec/{source.name} (sha256 {sha}). "
            "DO NOT EDIT; run `make generate`.\n"
        )
        text = path.read_text(encoding="utf-8")
        first, rest = text.split("\n", 1)
        assert first + "\n" == expected, path.name
        assert "DO NOT EDIT" not in rest, path.name
        assert sha not in rest, path.name
        assert not rest.startswith("#"), path.name
        # No dates, times or host-specific paths in the output.
        assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b|\b\d\d:\d\d:\d\d\b", text), path.name
        assert str(ROOT) not in text, path.name
        assert str(generated) not in text, path.name


def test_message_schema_stamp_names_its_own_source_hash(generated: Path) -> None:
    stamped = json.loads((generated / "message.json").read_text(encoding="utf-8"))
    sha = hashlib.sha256(MESSAGE_SCHEMA.read_bytes()).hexdigest()
    assert stamped["$comment"] == (
        f"Generated by `python -m codegen` from spec/message.json (sha256 {sha}). DO NOT EDIT; run `make generate`."
    )
    source = json.loads(MESSAGE_SCHEMA.read_text(encoding="utf-8"))
    assert {k: v for k, v in stamped.items() if k != "$comment"} == source


def test_header_hash_follows_the_spec_bytes(generated: Path, tmp_path: Path) -> None:
    # A change that means nothing (trailing whitespace) still changes the stamp: the hash is of the bytes.
    spec = tmp_path / "api.json"
    spec.write_bytes(SPEC.read_bytes() + b"\n")
    other = generate(tmp_path / "other", spec)
    sha = hashlib.sha256(spec.read_bytes()).hexdigest()
    for name in GENERATED_FILES - FROM_MESSAGE_SCHEMA:
        old_lines = (generated / name).read_text(encoding="utf-8").split("\n")
        new_lines = (other / name).read_text(encoding="utf-8").split("\n")
        assert sha in new_lines[0]
        assert old_lines[1:] == new_lines[1:]
    for name in FROM_MESSAGE_SCHEMA:
        assert (other / name).read_bytes() == (generated / name).read_bytes()


def test_envelope_check_header_follows_the_message_schema_bytes(generated: Path, tmp_path: Path) -> None:
    schema = tmp_path / "message.json"
    schema.write_bytes(MESSAGE_SCHEMA.read_bytes() + b"\n")
    proc = codegen("--message-schema", schema, "--out", tmp_path / "other")
    assert proc.returncode == 0, proc.stderr
    sha = hashlib.sha256(schema.read_bytes()).hexdigest()
    old_lines = (generated / "envelope_check.py").read_text(encoding="utf-8").split("\n")
    new_lines = (tmp_path / "other" / "envelope_check.py").read_text(encoding="utf-8").split("\n")
    assert sha in new_lines[0]
    assert old_lines[1:] == new_lines[1:]
    for name in GENERATED_FILES - FROM_MESSAGE_SCHEMA:
        assert (tmp_path / "other" / name).read_bytes() == (generated / name).read_bytes()


def ruff_check(directory: Path) -> dict[str, str]:
    """``ruff check`` of each generated module with the project's configuration, as if it were committed."""
    problems: dict[str, str] = {}
    for path in sorted(directory.glob("*.py")):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--no-fix",
                "--output-format",
                "concise",
                "--stdin-filename",
                f"src/beanstalkm/_generated/{path.name}",
                "-",
            ],
            input=path.read_text(encoding="utf-8"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            problems[path.name] = proc.stdout + proc.stderr
    return problems


def test_generated_code_passes_the_project_lint(generated: Path) -> None:
    # `make lint` runs `ruff check src`: a lint fix applied to generated files would make them stale.
    assert ruff_check(generated) == {}


def test_export_order_is_the_order_ruff_wants_for_dunder_all(tmp_path: Path) -> None:
    names = ["zeta", "Beta", "item10", "ALPHA", "item2", "Item", "T", "STATUS_ERRORS", "StatValue", "_private", "a"]
    ordered = export_order(names)
    assert ordered == [
        "ALPHA",
        "STATUS_ERRORS",
        "Beta",
        "Item",
        "StatValue",
        "T",
        "_private",
        "a",
        "item2",
        "item10",
        "zeta",
    ]
    for order, verdict in ((ordered, 0), (sorted(names), 1)):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--isolated",
                "--select",
                "RUF022",
                "--stdin-filename",
                "x.py",
                "-",
            ],
            input="__all__ = [" + ", ".join(json.dumps(name) for name in order) + "]\n",
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == verdict, proc.stdout + proc.stderr


def test_committed_generation_is_current() -> None:
    proc = codegen("--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generated code is current" in proc.stdout


# -- broken specs -------------------------------------------------------------


def _set(*keys: str | int, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def _delete(*keys: str | int) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return edit


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "unknown-argument-type",
        _set("commands", 0, "args", 1, "type", value="prio"),
        "$.commands[0].args[1].type",
        "unknown type 'prio'",
    ),
    (
        "missing-argument-description",
        _delete("commands", 0, "args", 1, "description"),
        "$.commands[0].args[1]",
        "'description' is a required property",
    ),
    (
        "missing-command-description",
        _delete("commands", 3, "description"),
        "$.commands[3]",
        "'description' is a required property",
    ),
    (
        "empty-description",
        _set("stats", "JobStats", "fields", 2, "description", value=""),
        "$.stats.JobStats.fields[2].description",
        "'' is too short",
    ),
    (
        "placeholder-names-no-argument",
        _set("commands", 1, "line", value="use {tube} {nope}"),
        "$.commands[1].line",
        "placeholders ['tube', 'nope'] do not match the arguments ['tube']",
    ),
    (
        "argument-missing-from-line",
        _set("commands", 0, "line", value="put {priority} {delay}"),
        "$.commands[0].line",
        "do not match the arguments ['priority', 'delay', 'ttr']",
    ),
    (
        "failure-status-not-defined",
        _set("commands", 0, "failures", 1, "status", value="NOT_A_STATUS"),
        "$.commands[0].failures[1].status",
        "status 'NOT_A_STATUS' is not defined in $.statuses",
    ),
    (
        "general-error-not-defined",
        _set("general_errors", 2, value="NO_SUCH_ERROR"),
        "$.general_errors[2]",
        "status 'NO_SUCH_ERROR' is not defined in $.statuses",
    ),
    (
        "priority-max-is-a-string",
        _set("types", "priority", "max", value="4294967295"),
        "$.types.priority.max",
        "'4294967295' is not of type 'integer'",
    ),
    (
        "min-above-max",
        _set("types", "priority", "min", value=4294967296),
        "$.types.priority",
        "min 4294967296 is above max 4294967295",
    ),
    (
        "unknown-stats-type",
        _set("commands", 17, "success", "stats", value="NopeStats"),
        "$.commands[17].success.stats",
        "unknown stats type 'NopeStats'",
    ),
    (
        "duplicate-command-name",
        _set("commands", 1, "name", value="put"),
        "$.commands[1].name",
        "'put' is also the name of $.commands[0]",
    ),
    (
        "keyword-command-name",
        _set("commands", 1, "name", value="import"),
        "$.commands[1].name",
        "'import' is a Python keyword or reserved name",
    ),
    (
        "default-out-of-range",
        _set("commands", 0, "args", 1, "default", "value", value=4294967296),
        "$.commands[0].args[1].default.value",
        "4294967296 is not a valid priority",
    ),
]


@pytest.mark.parametrize(("edit", "path", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_spec_is_rejected_naming_the_json_path(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], path: str, message: str
) -> None:
    data = spec_data()
    original = copy.deepcopy(data)
    edit(data)
    assert data != original, "the edit changed nothing"
    spec = tmp_path / "broken.json"
    spec.write_text(json.dumps(data, indent=2), encoding="utf-8")
    out = tmp_path / "out"

    proc = codegen("--spec", spec, "--out", out)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    prefix = f"{spec}: invalid spec: {path}: "
    assert proc.stderr.startswith(prefix), proc.stderr
    assert message in proc.stderr
    assert not out.exists(), "nothing is written from a broken spec"

    with pytest.raises(SpecError) as info:
        load(spec, SCHEMA)
    assert info.value.path == path
    assert message in info.value.message


def test_spec_that_is_not_json(tmp_path: Path) -> None:
    spec = tmp_path / "broken.json"
    spec.write_text(SPEC.read_text(encoding="utf-8")[:-20], encoding="utf-8")
    proc = codegen("--spec", spec, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{spec}: invalid spec: $: not valid JSON")


def test_the_real_spec_passes_every_check() -> None:
    spec = load(SPEC, SCHEMA)
    assert len(spec.protocol_commands) == 25
    assert spec.sha256 == hashlib.sha256(SPEC.read_bytes()).hexdigest()


# -- a spec edit, end to end --------------------------------------------------


FOO_COMMAND: dict[str, Any] = {
    "wire": "stats-foo",
    "name": "stats_foo",
    "description": "Statistics about the foo of a tube (a made-up command).",
    "line": "stats-foo {tube}",
    "args": [{"name": "tube", "type": "tube", "description": "The tube to describe."}],
    "success": {
        "status": "OK",
        "description": "The foo statistics follow as a YAML body.",
        "args": [{"name": "bytes", "description": "The body's length in bytes."}],
        "returns": "stats",
        "stats": "FooStats",
    },
    "failures": [{"status": "NOT_FOUND", "description": "The tube does not exist."}],
}
FOO_STATS: dict[str, Any] = {
    "description": "Foo statistics, the reply to stats-foo.",
    "fields": [
        {"key": "name", "type": "str", "description": "The tube's name."},
        {"key": "current-foo", "type": "int", "ctype": "u64", "description": "How much foo there is."},
    ],
}
FOO_BODY = b"---\nname: default\ncurrent-foo: 42\nnew-field: x\n"


class FooPackage:
    def __init__(self, root: Path, name: str, module: ModuleType) -> None:
        self.root = root
        self.name = name
        self.module = module

    def submodule(self, name: str) -> ModuleType:
        module: ModuleType = getattr(self.module, name)
        return module


@pytest.fixture(scope="module")
def foogen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FooPackage]:
    root = tmp_path_factory.mktemp("foo")
    data = spec_data()
    data["commands"].append(FOO_COMMAND)
    data["stats"]["FooStats"] = FOO_STATS
    spec = root / "api.json"
    spec.write_text(json.dumps(data, indent=2), encoding="utf-8")
    name = f"foogen_{uuid.uuid4().hex[:12]}"
    generate(root / name, spec)
    assert (root / name / "__init__.py").is_file()
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(name)
        for sub in ("commands", "errors", "stats", "queue", "pipeline"):
            importlib.import_module(f"{name}.{sub}")
        yield FooPackage(root, name, package)
    finally:
        sys.path.remove(str(root))
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def test_generated_code_for_an_edited_spec_passes_the_project_lint(foogen: FooPackage) -> None:
    assert ruff_check(foogen.root / foogen.name) == {}


def test_new_command_encodes(foogen: FooPackage) -> None:
    commands = foogen.submodule("commands")
    request = commands.stats_foo("default")
    assert isinstance(request, Request)
    assert request.data == b"stats-foo default\r\n"
    assert request.command == "stats-foo"
    assert "stats-foo" in commands.COMMANDS
    assert commands.COMMANDS[: len(commands.COMMANDS) - 1] == _committed_commands().COMMANDS
    assert "OK" in commands.BODY_STATUSES


def _committed_commands() -> ModuleType:
    from beanstalkm._generated import commands

    return commands


def test_new_command_checks_its_argument(foogen: FooPackage) -> None:
    from beanstalkm import ArgumentTypeError, InvalidArgument

    commands = foogen.submodule("commands")
    with pytest.raises(ArgumentTypeError):
        commands.stats_foo(1)
    with pytest.raises(InvalidArgument):
        commands.stats_foo("-leading-dash")


def test_new_stats_type_is_exported(foogen: FooPackage) -> None:
    stats = foogen.submodule("stats")
    assert "FooStats" in stats.__all__
    assert "FooStats" in foogen.module.__all__
    assert foogen.module.FooStats is stats.FooStats


def test_queue_has_the_command_and_its_raw_variant(foogen: FooPackage) -> None:
    queue_class = foogen.submodule("queue").Queue
    assert callable(queue_class.stats_foo)
    assert callable(queue_class.stats_foo_yaml)
    pipeline_class = foogen.submodule("pipeline").PipelineCommands
    assert callable(pipeline_class.stats_foo)
    assert callable(pipeline_class.stats_foo_yaml)
    # The committed layer is untouched by the experiment.
    from beanstalkm._generated.queue import Queue

    assert not hasattr(Queue, "stats_foo")


class FakeConnection(Connection):
    """A Connection that never connects: every command gets the same reply."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.sent: list[bytes] = []

    def _execute(self, request: Request[T], tube: str | None = None) -> T:
        self.sent.append(request.data)
        return request.decode(self.reply)


def _read_reply(foogen: FooPackage, data: bytes) -> Reply:
    reader = foogen.submodule("commands").new_reader()
    reader.feed(data)
    reply = reader.next_reply()
    assert isinstance(reply, Reply)
    return reply


def test_queue_decodes_an_ok_reply_into_foo_stats(foogen: FooPackage) -> None:
    reply = _read_reply(foogen, b"OK %d\r\n%b\r\n" % (len(FOO_BODY), FOO_BODY))
    assert reply.body == FOO_BODY
    conn = FakeConnection(reply)
    queue = foogen.submodule("queue").Queue(conn)

    stats = queue.stats_foo("default")

    assert conn.sent == [b"stats-foo default\r\n"]
    assert type(stats) is foogen.submodule("stats").FooStats
    assert stats.name == "default"
    assert stats.current_foo == 42
    assert stats["current-foo"] == 42
    assert dict(stats) == {"name": "default", "current-foo": 42, "new-field": "x"}
    assert stats.extra == {"new-field": "x"}

    raw = queue.stats_foo_yaml("default")
    assert raw == FOO_BODY.decode()
    assert conn.sent[-1] == b"stats-foo default\r\n"


def test_new_stats_type_reads_its_own_layout_at_once(foogen: FooPackage) -> None:
    """The fast path is generated from the spec's fields: the new type's exact layout takes it, and a
    body with a field it does not know goes to the general path (which keeps it in ``extra``)."""
    foo_stats = foogen.submodule("stats").FooStats
    exact = b'---\nname: "default"\ncurrent-foo: 42\n'
    assert flat_values(foo_stats._FLAT, exact) == ('"default"', "42")
    assert foo_stats.from_yaml(exact) == foo_stats._from_mapping(parse_mapping(exact))
    assert foo_stats.from_yaml(exact).name == "default"
    assert flat_values(foo_stats._FLAT, FOO_BODY) is None
    assert foo_stats.from_yaml(FOO_BODY).extra == {"new-field": "x"}
    assert flat_values(foo_stats._FLAT, b"---\nname: default\ncurrent-foo: x\n") is None


def test_queue_raises_the_new_commands_failures(foogen: FooPackage) -> None:
    errors = foogen.submodule("errors")
    queue = foogen.submodule("queue").Queue(FakeConnection(Reply("NOT_FOUND", (), None)))
    with pytest.raises(errors.NotFound) as info:
        queue.stats_foo("nope")
    assert info.value.args[:2] == ("stats-foo", "NOT_FOUND")
    queue = foogen.submodule("queue").Queue(FakeConnection(Reply("BAD_FORMAT", (), None)))
    with pytest.raises(errors.BadFormat):
        queue.stats_foo("nope")


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(foogen: FooPackage, cache: Path, tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    snippet_dir = tmp_path / "snippet"
    snippet_dir.mkdir()
    snippet = snippet_dir / "snippet.py"
    snippet.write_text(source.replace("foogen", foogen.name), encoding="utf-8")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n", encoding="utf-8")
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(foogen.root), str(ROOT / "src")])}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(config),
            "--cache-dir",
            str(cache),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            "--no-color-output",
            "snippet.py",
        ],
        cwd=snippet_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


GOOD_SNIPPET = """\
from __future__ import annotations

from typing import assert_type

from foogen.queue import Queue
from foogen.stats import FooStats


def f(q: Queue) -> None:
    s = q.stats_foo("x")
    reveal_type(s)
    assert_type(s, FooStats)
    assert_type(s.current_foo, int)
    assert_type(s.name, str)
    assert_type(q.stats_foo_yaml("x"), str)
"""

BAD_SNIPPET = """\
from __future__ import annotations

from foogen.queue import Queue


def f(q: Queue) -> None:
    q.stats_foo(1)
"""


@pytest.mark.slow
def test_new_command_type_checks(foogen: FooPackage, mypy_cache: Path, tmp_path: Path) -> None:
    proc = run_mypy(foogen, mypy_cache, tmp_path, GOOD_SNIPPET)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f'snippet.py:11: note: Revealed type is "{foogen.name}.stats.FooStats"']


@pytest.mark.slow
def test_misusing_the_new_command_fails_type_checking(foogen: FooPackage, mypy_cache: Path, tmp_path: Path) -> None:
    proc = run_mypy(foogen, mypy_cache, tmp_path, BAD_SNIPPET)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        'snippet.py:7: error: Argument 1 to "stats_foo" of "Queue" has incompatible type "int"; '
        'expected "str"  [arg-type]'
    ]


def test_reserved_command_names_cover_the_generated_namespaces() -> None:
    """Every lower-case public name of the generated modules and pipeline classes that is not a
    command is reserved, so a spec command can never shadow (or be shadowed by) it."""
    import beanstalkm._generated.aqueue as aqueue
    import beanstalkm._generated.commands as commands
    import beanstalkm._generated.pipeline as pipeline
    import beanstalkm._generated.queue as queue
    from beanstalkm import Pipeline
    from beanstalkm.aio import AsyncPipeline
    from codegen.model import RESERVED_COMMAND_NAMES

    spec = load(SPEC, SCHEMA)
    commands_names = {c.name for c in spec.commands}
    used: set[str] = set()
    for module in (commands, queue, aqueue, pipeline):
        used |= {n for n in dir(module) if n.islower() and not n.startswith("_")}
    for cls in (Pipeline, AsyncPipeline):
        used |= {n for n in dir(cls) if not n.startswith("_")}
    assert used - commands_names <= RESERVED_COMMAND_NAMES


@pytest.mark.parametrize("name", ["fail", "execute", "results", "reply_int"])
def test_a_command_named_like_generated_code_is_refused(tmp_path: Path, name: str) -> None:
    data = json.loads(SPEC.read_text())
    data["commands"][0]["name"] = name
    broken = tmp_path / "api.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(SpecError) as info:
        load(broken, SCHEMA)
    assert info.value.path == "$.commands[0].name"
    assert "clash" in info.value.message
