"""Every documented element of spec/api.json carries a non-empty description.

The generated docstrings are built from these descriptions, so a missing one
would silently give an undocumented method, argument, exception or field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._support import SPEC, load_spec


def described(spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``(JSON path, element)`` for every element that must have a description."""
    yield "$.protocol", spec["protocol"]
    for name, typ in spec["types"].items():
        yield f"$.types.{name}", typ
    for status, info in spec["statuses"].items():
        yield f"$.statuses.{status}", info
    for ci, cmd in enumerate(spec["commands"]):
        path = f"$.commands[{ci}]({cmd.get('wire')})"
        yield path, cmd
        for ai, arg in enumerate(cmd.get("args", [])):
            yield f"{path}.args[{ai}]", arg
        if "success" in cmd:
            success = cmd["success"]
            yield f"{path}.success", success
            for ai, arg in enumerate(success.get("args", [])):
                yield f"{path}.success.args[{ai}]", arg
        for fi, failure in enumerate(cmd.get("failures", [])):
            yield f"{path}.failures[{fi}]", failure
            for ai, arg in enumerate(failure.get("args", [])):
                yield f"{path}.failures[{fi}].args[{ai}]", arg
    for name, stats in spec["stats"].items():
        yield f"$.stats.{name}", stats
        for fi, fld in enumerate(stats["fields"]):
            yield f"$.stats.{name}.fields[{fi}]({fld.get('key')})", fld


def missing_descriptions(spec: dict[str, Any]) -> list[str]:
    bad: list[str] = []
    for path, element in described(spec):
        if not isinstance(element, dict):
            bad.append(f"{path}: not an object")
            continue
        text = element.get("description")
        if not isinstance(text, str) or not text.strip():
            bad.append(path)
    return bad


def test_every_element_has_a_description() -> None:
    assert missing_descriptions(SPEC) == []


def test_walk_reaches_every_kind_of_element() -> None:
    """The walk covers all 25 commands, their arguments and replies, statuses, types and all stats fields."""
    paths = [path for path, _ in described(SPEC)]
    assert sum(1 for p in paths if p.startswith("$.commands[") and p.endswith(")")) == 25
    assert sum(1 for p in paths if ".fields[" in p) == 51 + 14 + 14
    assert sum(1 for p in paths if p.startswith("$.statuses.")) == len(SPEC["statuses"]) == 12
    assert sum(1 for p in paths if p.startswith("$.types.")) == len(SPEC["types"]) == 8
    assert any(".success.args[" in p for p in paths)
    assert any(".failures[0].args[" in p for p in paths)  # put's BURIED <id>
    assert any(p.endswith(".args[0]") and ".success" not in p and ".failures" not in p for p in paths)


def _without_description(path: tuple[str | int, ...]) -> dict[str, Any]:
    spec = load_spec()
    node: Any = spec
    for step in path:
        node = node[step]
    node["description"] = "  "
    return spec


@pytest.mark.parametrize(
    "path",
    [
        ("protocol",),
        ("types", "tube"),
        ("statuses", "NOT_IGNORED"),
        ("commands", 0),
        ("commands", 0, "args", 1),
        ("commands", 0, "success"),
        ("commands", 0, "success", "args", 0),
        ("commands", 0, "failures", 0),
        ("commands", 0, "failures", 0, "args", 0),
        ("stats", "JobStats"),
        ("stats", "ServerStats", "fields", 50),
    ],
)
def test_a_blank_description_is_caught(path: tuple[str | int, ...]) -> None:
    """The check can fail: blanking any one description makes it report that element."""
    bad = missing_descriptions(_without_description(path))
    assert len(bad) == 1


def test_a_removed_description_is_caught() -> None:
    spec = load_spec()
    del spec["commands"][-1]["description"]
    assert missing_descriptions(spec) == ["$.commands[24](quit)"]


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


IDENTIFYING_KEYS = frozenset({"name", "wire", "status", "key", "kind", "class"})


def test_generic_walk_every_named_object_is_described() -> None:
    """Independently of the explicit walk: any JSON object that names something has a description."""
    bad = [
        path
        for path, node in _walk(SPEC, "$")
        if IDENTIFYING_KEYS & node.keys()
        and not (isinstance(node.get("description"), str) and node["description"].strip())
    ]
    assert bad == []
    # ... and the explicit walk reaches every one of them (it also covers the stats types, which name nothing).
    named = {id(node) for _, node in _walk(SPEC, "$") if IDENTIFYING_KEYS & node.keys()}
    explicit = {id(node) for _, node in described(SPEC)}
    assert named <= explicit
    assert len(explicit - named) == len(SPEC["stats"])
